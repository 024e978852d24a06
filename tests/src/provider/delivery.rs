//! How the stand-in loses webhooks, on purpose: [`Delivery`] decides, for the `n`-th
//! prediction it accepts, whether its completion webhook is sent, when, or never. The
//! prediction completes all the same, and polling ([`super::polling`]) finds it.
//!
//! | setting | effect |
//! |---|---|
//! | [`Loss::None`] (default) | every webhook is sent |
//! | [`Loss::EveryKth`]`(k)` | the webhooks of the k-th, 2k-th, … accepted predictions are dropped (k = 4: exactly 25 %) |
//! | [`Loss::Share`]`{percent, seed}` | each is dropped when `splitmix64(seed ^ n) % 100 < percent`: a share, the same one for the same seed |
//! | [`Loss::All`] | none is sent: the provider answers only to polling |
//! | [`Delivery::delay`] | a webhook that is sent leaves this long after the prediction completes (e.g. past the outputs' window) |

use std::time::Duration;

/// Which completion webhooks are dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Loss {
    /// None.
    #[default]
    None,
    /// Those of every `k`-th accepted prediction (`k` of 0 drops none).
    EveryKth(u32),
    /// A seeded share, deterministic for the seed.
    Share {
        /// Percent dropped (0 to 100).
        percent: u8,
        /// The seed.
        seed: u64,
    },
    /// All: the provider answers only to polling.
    All,
}

/// The webhook settings of the stand-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Which webhooks are dropped.
    pub loss: Loss,
    /// How long after its prediction completes a webhook is sent (none: at once).
    pub delay: Option<Duration>,
}

/// What happens to one completion webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Sent this long after the prediction completes.
    Send(Duration),
    /// Never sent.
    Drop,
}

/// SplitMix64's output function (Steele, Lea, Flood 2014): a well-mixed 64-bit value.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Delivery {
    /// The fate of the webhook of the `n`-th accepted prediction (from 1).
    pub fn fate(&self, n: u32) -> Fate {
        let dropped = match self.loss {
            Loss::None => false,
            Loss::EveryKth(k) => k > 0 && n % k == 0,
            Loss::Share { percent, seed } => {
                splitmix64(seed ^ u64::from(n)) % 100 < u64::from(percent)
            }
            Loss::All => true,
        };
        if dropped {
            Fate::Drop
        } else {
            Fate::Send(self.delay.unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(d: &Delivery, n: u32) -> Vec<u32> {
        (1..=n).filter(|&i| d.fate(i) == Fate::Drop).collect()
    }

    #[test]
    fn by_default_every_webhook_is_sent_at_once() {
        let d = Delivery::default();
        assert!(dropped(&d, 100).is_empty());
        assert_eq!(d.fate(7), Fate::Send(Duration::ZERO));
    }

    #[test]
    fn every_kth_drops_exactly_one_in_k() {
        let d = Delivery {
            loss: Loss::EveryKth(4),
            ..Default::default()
        };
        assert_eq!(dropped(&d, 20), vec![4, 8, 12, 16, 20], "25 % of 20");
        let none = Delivery {
            loss: Loss::EveryKth(0),
            ..Default::default()
        };
        assert!(dropped(&none, 20).is_empty());
    }

    #[test]
    fn a_seeded_share_is_the_same_for_the_same_seed_and_near_its_percent() {
        let d = |seed| Delivery {
            loss: Loss::Share { percent: 25, seed },
            ..Default::default()
        };
        assert_eq!(dropped(&d(7), 1000), dropped(&d(7), 1000), "deterministic");
        assert_ne!(
            dropped(&d(7), 1000),
            dropped(&d(8), 1000),
            "the seed matters"
        );
        let n = dropped(&d(7), 1000).len();
        assert!((200..=300).contains(&n), "{n} of 1000 at 25 %");
        let all = Delivery {
            loss: Loss::Share {
                percent: 100,
                seed: 1,
            },
            ..Default::default()
        };
        assert_eq!(dropped(&all, 50).len(), 50);
        let none = Delivery {
            loss: Loss::Share {
                percent: 0,
                seed: 1,
            },
            ..Default::default()
        };
        assert!(dropped(&none, 50).is_empty());
    }

    #[test]
    fn polling_only_sends_none_and_a_delay_holds_what_is_sent() {
        let d = Delivery {
            loss: Loss::All,
            delay: None,
        };
        assert_eq!(dropped(&d, 30).len(), 30);
        let late = Delivery {
            loss: Loss::EveryKth(2),
            delay: Some(Duration::from_secs(301)),
        };
        assert_eq!(late.fate(1), Fate::Send(Duration::from_secs(301)));
        assert_eq!(late.fate(2), Fate::Drop);
    }
}
