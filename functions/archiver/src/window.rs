//! The provider's output window (issue 22): how long a prediction's outputs stay on the
//! provider's CDN after it completes, and so the archiver's deadline for them.
//!
//! | provider | retention | source |
//! |---|---|---|
//! | `skytells` | 300 s | "Skytells does not retain output data more than 5 minutes after a prediction is completed" (<https://learn.skytells.ai/docs/api/v1/webhooks>); the data-retention page (<https://learn.skytells.ai/docs/foundations/security/data-retention>): the timer starts when the prediction is `succeeded`, `failed` or `canceled`, the URLs then answer 404 and "there is no recovery mechanism" |
//! | any other | 3600 s | Replicate's API outputs, deleted after an hour (<https://replicate.com/docs/topics/predictions/data-retention>): the shortest other retention we know of |
//!
//! `OUTPUT_RETENTION_SECS` replaces or adds entries: `skytells:300,acme:900,*:3600`
//! (`*` is every provider not named). The window starts at the prediction's
//! `completed_at` when it parses as RFC 3339 (never later than the edge's receipt of the
//! event: an output cannot complete after the webhook announcing it arrived), else at the
//! edge's receipt (`received_at_ms`).
//!
//! `DOWNLOAD_RETRY_BUDGET_MS` (default 60 000) is the longest one record retries its
//! downloads inside one invocation; after it, the record goes back to the queue and comes
//! back in seconds ([`crate::visibility`]).

use std::time::Duration;

use hookvault_aws::env::{self, EnvError};
use hookvault_core::records::OutputWindow;

/// Skytells' output retention, seconds (the table above).
pub const SKYTELLS_RETENTION_SECS: u64 = 300;

/// The retention of a provider the table does not name, seconds (the table above).
pub const DEFAULT_RETENTION_SECS: u64 = 3600;

/// `DOWNLOAD_RETRY_BUDGET_MS`'s default: 60 s, half the template's function timeout
/// (120 s), so a record still failing has time to answer and go back to the queue.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Output retention by provider, seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    by_provider: Vec<(String, u64)>,
    default: u64,
}

impl Default for Retention {
    /// Skytells 300 s, every other provider 3600 s.
    fn default() -> Self {
        Retention {
            by_provider: vec![("skytells".to_owned(), SKYTELLS_RETENTION_SECS)],
            default: DEFAULT_RETENTION_SECS,
        }
    }
}

impl Retention {
    /// The defaults with `list`'s entries (`provider:seconds`, comma-separated; `*` for
    /// every other provider) replacing or added. `None` when an entry is not
    /// `name:seconds` with seconds a whole number from 1. (A colon, not `=`: env files,
    /// cargo-lambda's among them, refuse a `=` in a value.)
    pub fn parse(list: &str) -> Option<Self> {
        let mut r = Retention::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, secs) = entry.split_once(':')?;
            let (name, secs) = (name.trim(), secs.trim().parse::<u64>().ok()?);
            if name.is_empty() || secs == 0 {
                return None;
            }
            if name == "*" {
                r.default = secs;
            } else {
                r.by_provider.retain(|(p, _)| p != name);
                r.by_provider.push((name.to_owned(), secs));
            }
        }
        Some(r)
    }

    /// The retention of `provider`'s outputs, seconds.
    pub fn secs(&self, provider: &str) -> u64 {
        self.by_provider
            .iter()
            .find(|(p, _)| p == provider)
            .map_or(self.default, |(_, s)| *s)
    }
}

/// The window settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowConfig {
    /// Output retention by provider.
    pub retention: Retention,
    /// The longest one record retries its downloads in one invocation.
    pub retry_budget: Duration,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            retention: Retention::default(),
            retry_budget: DEFAULT_RETRY_BUDGET,
        }
    }
}

impl WindowConfig {
    /// `OUTPUT_RETENTION_SECS` and `DOWNLOAD_RETRY_BUDGET_MS` from the environment.
    ///
    /// Errors: [`EnvError::Invalid`] for a retention list that does not parse or a budget
    /// that is not a number of milliseconds.
    pub fn from_env() -> Result<Self, EnvError> {
        let retention = match env::optional("OUTPUT_RETENTION_SECS") {
            None => Retention::default(),
            Some(list) => Retention::parse(&list).ok_or_else(|| EnvError::Invalid {
                name: "OUTPUT_RETENTION_SECS".into(),
                expected: "provider:seconds entries, comma-separated (skytells:300,*:3600)",
            })?,
        };
        let budget_ms: u64 = env::number(
            "DOWNLOAD_RETRY_BUDGET_MS",
            DEFAULT_RETRY_BUDGET.as_millis() as u64,
        )?;
        Ok(WindowConfig {
            retention,
            retry_budget: Duration::from_millis(budget_ms),
        })
    }

    /// The window of a prediction of `provider` whose body says `completed_at`, received by
    /// the edge at `received_at_ms` (Unix milliseconds): the [`OutputWindow`] to record,
    /// and its deadline in Unix milliseconds.
    pub fn window(
        &self,
        provider: &str,
        completed_at: Option<&str>,
        received_at_ms: i64,
    ) -> (OutputWindow, i64) {
        let retention = self.retention.secs(provider);
        let (start_ms, from) = match completed_at.and_then(parse_rfc3339_ms) {
            Some(c) => (c.min(received_at_ms), "completed_at"),
            None => (received_at_ms, "received_at"),
        };
        let expires_ms = start_ms
            .saturating_add(i64::try_from(retention.saturating_mul(1000)).unwrap_or(i64::MAX));
        let window = OutputWindow {
            output_expires_at: rfc3339_ms(expires_ms),
            output_retention_secs: retention,
            output_window_from: from.to_owned(),
        };
        (window, expires_ms)
    }
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-12-06T00:05:00.250Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let whole = hookvault_core::time::rfc3339(secs);
    match whole.strip_suffix('Z') {
        Some(head) => format!("{head}.{frac:03}Z"),
        None => whole,
    }
}

/// An RFC 3339 date-time (`2026-03-06T20:15:22Z`, `…22.123456Z`, `…22+01:00`; `t`, `z`
/// and a space for the `T` accepted) as Unix milliseconds; `None` for anything else,
/// out-of-range fields included.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 3)];
        let mut m = 0i64;
        for (k, c) in digits.iter().enumerate() {
            m += i64::from(c - b'0') * [100, 10, 1][k];
        }
        millis = m;
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = hookvault_core::time::days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_secs;
    secs.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_in_the_providers_spellings() {
        let base = parse_rfc3339_ms("2026-03-06T20:15:22Z").unwrap();
        assert_eq!(base, 1_772_828_122_000);
        assert_eq!(parse_rfc3339_ms("2026-03-06T20:15:22.000000Z"), Some(base));
        assert_eq!(
            parse_rfc3339_ms("2026-03-06T20:15:22.25Z"),
            Some(base + 250)
        );
        assert_eq!(parse_rfc3339_ms("2026-03-06T21:15:22+01:00"), Some(base));
        assert_eq!(parse_rfc3339_ms("2026-03-06 20:15:22z"), Some(base));
        for bad in [
            "",
            "2026-03-06",
            "2026-03-06T20:15:22",
            "2026-13-06T20:15:22Z",
            "2026-03-06T20:15:22.Z",
            "2026-03-06T20:15:22+0100",
            "2026-03-06T20:15:22Zjunk",
            "２026-03-06T20:15:22Z",
            "9999999-03-06T20:15:22Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad:?}");
        }
        assert_eq!(rfc3339_ms(base + 250), "2026-03-06T20:15:22.250Z");
    }

    #[test]
    fn the_window_counts_from_completion_else_receipt_with_each_providers_retention() {
        let cfg = WindowConfig::default();
        let received = parse_rfc3339_ms("2026-03-06T20:15:30Z").unwrap();
        let (w, at) = cfg.window("skytells", Some("2026-03-06T20:15:22Z"), received);
        assert_eq!(w.output_expires_at, "2026-03-06T20:20:22.000Z");
        assert_eq!(
            (w.output_retention_secs, w.output_window_from.as_str()),
            (300, "completed_at")
        );
        assert_eq!(at, received - 8_000 + 300_000);
        // No completed_at, or one that does not parse: the edge's receipt.
        let (w, at) = cfg.window("skytells", Some("yesterday"), received);
        assert_eq!(
            (w.output_window_from.as_str(), at),
            ("received_at", received + 300_000)
        );
        // A completion after the receipt (a clock ahead) counts from the receipt.
        let (_, at) = cfg.window("skytells", Some("2026-03-06T20:30:00Z"), received);
        assert_eq!(at, received + 300_000);
        // Other providers: the default, unless named.
        assert_eq!(cfg.window("replicate", None, 0).1, 3_600_000);
        let r = Retention::parse("skytells:20, acme:900,*:120").unwrap();
        assert_eq!(
            (r.secs("skytells"), r.secs("acme"), r.secs("x")),
            (20, 900, 120)
        );
        for bad in [
            "skytells",
            "skytells:0",
            ":5",
            "skytells:-1",
            "skytells:5s",
            "skytells=5",
        ] {
            assert_eq!(Retention::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Retention::parse(""), Some(Retention::default()));
    }
}
