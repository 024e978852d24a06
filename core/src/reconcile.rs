//! Reconciliation (issue 23): what the api and the reconciler share to find the
//! predictions whose webhooks never came.
//!
//! * [`Check`]: the message the api puts on the check queue (`CHECK_QUEUE_URL`) when it
//!   submits a prediction, with SQS's `DelaySeconds`; the reconciler reads it, and puts it
//!   back with the next [`Check::attempt`] while the prediction runs.
//! * [`next_delay_secs`]: the back-off between two checks of one prediction.
//! * [`CheckChain`] and [`ChainTurn`]: the one chain of checks a prediction has
//!   (`predictions/{id}/check.json`), so that a check delivered twice, or one more from
//!   `hookvault reconcile` or the sweep, does not start a second chain.
//! * [`ListPage`]: one page of the provider's `GET /v1/predictions`, for the sweep.
//! * [`provider_api_key`]: the provider API key from its secret's value (the rotator's
//!   format), for the api and the reconciler alike.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{PredictionStatus, WebhookEvent};

/// The check message's version.
pub const CHECK_VERSION: u32 = 1;

/// SQS's largest `DelaySeconds`: 15 minutes
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
pub const MAX_SQS_DELAY_SECS: u64 = 900;

/// The first back-off step, seconds: the `10` of `10·2^attempt`.
pub const BACKOFF_BASE_SECS: u64 = 10;

/// The largest `per_page` the provider's list endpoint takes.
pub const MAX_PER_PAGE: u32 = 50;

/// Who scheduled a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckSource {
    /// The api, when it submitted the prediction.
    Api,
    /// The reconciler's sweep of the provider's list, for a terminal prediction the
    /// archive does not hold (one hookvault may not have submitted).
    Sweep,
    /// An operator's `hookvault reconcile`, for a submission in the ledger without a
    /// terminal state.
    Cli,
}

/// One check of one prediction, as JSON on the check queue:
///
/// ```json
/// {"v":1,"provider":"skytells","prediction_id":"pred_abc","submitted_at_ms":1764000000000,
///  "attempt":0,"source":"api"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// [`CHECK_VERSION`].
    pub v: u32,
    /// The provider's name as the edge's route names it: the `provider` of the
    /// prediction's envelopes.
    pub provider: String,
    /// The provider's prediction id.
    pub prediction_id: String,
    /// When it was submitted (a sweep: when the sweep found it), Unix milliseconds: the
    /// start of `CHECK_MAX_AGE_SECS`.
    pub submitted_at_ms: i64,
    /// Checks made before this one (0 for the first).
    pub attempt: u32,
    /// Who scheduled the first check.
    pub source: CheckSource,
}

/// Why a check message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Not the JSON above.
    #[error("not a check message: {0}")]
    Malformed(String),
    /// A version this code does not read.
    #[error("check version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u32),
    /// The prediction id is not a safe key segment ([`crate::archive::check_id`]).
    #[error("prediction id is not a safe key segment")]
    BadId,
    /// The provider is not a token of `A-Z a-z 0-9 - _` (1 to 64).
    #[error("provider is not a token of A-Z a-z 0-9 - _")]
    BadProvider,
}

/// True for a provider name the edge accepts: 1 to 64 of `A-Z a-z 0-9 - _`.
pub fn is_provider_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
}

impl Check {
    /// The first check of a prediction: attempt 0.
    pub fn first(
        provider: &str,
        prediction_id: &str,
        submitted_at_ms: i64,
        source: CheckSource,
    ) -> Self {
        Check {
            v: CHECK_VERSION,
            provider: provider.to_owned(),
            prediction_id: prediction_id.to_owned(),
            submitted_at_ms,
            attempt: 0,
            source,
        }
    }

    /// The check after this one (the attempt counted up).
    pub fn next(&self) -> Self {
        Check {
            attempt: self.attempt.saturating_add(1),
            ..self.clone()
        }
    }

    /// The message body (JSON, ASCII: ids and provider names are checked tokens).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a message body, checking the version, the provider name and the prediction
    /// id (a check of an id that cannot be a key is refused here, never fetched).
    pub fn from_json(text: &str) -> Result<Self, CheckError> {
        let check: Check =
            serde_json::from_str(text).map_err(|e| CheckError::Malformed(e.to_string()))?;
        if check.v != CHECK_VERSION {
            return Err(CheckError::UnsupportedVersion(check.v));
        }
        if !is_provider_name(&check.provider) {
            return Err(CheckError::BadProvider);
        }
        crate::archive::check_id(&check.prediction_id).map_err(|_| CheckError::BadId)?;
        Ok(check)
    }
}

/// The delay before the check after `attempt` (0 for the first check made), seconds:
/// `min(max_interval_secs, 10·2^attempt)`, and never more than SQS's
/// [`MAX_SQS_DELAY_SECS`]. With the default `CHECK_MAX_INTERVAL_SECS` of 60: 10, 20, 40,
/// 60, 60, … seconds.
pub fn next_delay_secs(attempt: u32, max_interval_secs: u64) -> u64 {
    let backoff = BACKOFF_BASE_SECS.saturating_mul(1u64.checked_shl(attempt).unwrap_or(u64::MAX));
    backoff.min(max_interval_secs).min(MAX_SQS_DELAY_SECS)
}

/// How long past its due time a chain's next check may still come (SQS delivering it late:
/// a failed check comes back after the queue's 70-second visibility, up to 5 receives),
/// seconds: 10 minutes. A first check (attempt 0) finding a chain older than that takes it
/// over ([`ChainTurn::TakeOver`]); a younger one is left to it ([`ChainTurn::Stop`]).
pub const CHAIN_STALE_SECS: u64 = 600;

/// `predictions/{id}/check.json`: the one chain of checks of a prediction. The check that
/// schedules the next one first advances this record, with a conditional write from the
/// value it read (`If-None-Match: *` for the first, `If-Match` its ETag after): of two
/// checks of the same attempt, one advances it and the other stops.
///
/// ```json
/// {"next_attempt":3,"due_at_ms":1764000070000,"message_id":"5f0c…"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckChain {
    /// The attempt of the check expected next (the one the writer sent).
    pub next_attempt: u32,
    /// When it is due, Unix milliseconds.
    pub due_at_ms: i64,
    /// The SQS message id of the check that wrote this record: the same message received
    /// again (its send may have failed after the write) sends the next check again.
    pub message_id: String,
}

/// What a check that would schedule the next one may do, given the chain it read
/// ([`ChainTurn::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainTurn {
    /// No chain yet: create it (`If-None-Match: *`) and send the next check.
    Start,
    /// This check is the one the chain expects: advance it (`If-Match`) and send the next.
    Advance,
    /// This very message wrote the chain already (a delivery again after a failure between
    /// the write and the send): send the next check again, without writing.
    Resend,
    /// A first check (from `hookvault reconcile`, the sweep, or the api's check delivered
    /// twice) while the chain's next check is over [`CHAIN_STALE_SECS`] late: the chain
    /// died (its check in the DLQ or lost); take it over (`If-Match`).
    TakeOver,
    /// Another check follows this prediction (a live chain, or a later attempt): schedule
    /// nothing.
    Stop,
}

impl ChainTurn {
    /// The turn of the check of `attempt` (its SQS `message_id`) at `now_ms`, given the
    /// chain read (`None`: no `check.json`).
    pub fn of(attempt: u32, message_id: &str, chain: Option<&CheckChain>, now_ms: i64) -> Self {
        let Some(chain) = chain else {
            return ChainTurn::Start;
        };
        if chain.next_attempt == attempt {
            return ChainTurn::Advance;
        }
        if chain.message_id == message_id && chain.next_attempt == attempt.saturating_add(1) {
            return ChainTurn::Resend;
        }
        let stale_ms = (CHAIN_STALE_SECS as i64).saturating_mul(1000);
        if attempt == 0 && now_ms > chain.due_at_ms.saturating_add(stale_ms) {
            return ChainTurn::TakeOver;
        }
        ChainTurn::Stop
    }
}

/// One listed prediction: the members a sweep reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The prediction id.
    pub id: String,
    /// Its status in the list.
    pub status: PredictionStatus,
}

/// One page of `GET /v1/predictions?page=&per_page=&from=&to=`, in either form the
/// provider documents: the SDK's `PaginatedResponse` (`{"data": [...], "pagination":
/// {"current_page", "per_page", "total", "last_page"}}`, `Skytells/ts-sdk`) or the API
/// reference's bare array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The predictions of the page that read as predictions (the others are skipped).
    pub items: Vec<Listed>,
    /// How many entries the page had, readable or not.
    pub len: usize,
    /// `pagination.last_page`, when the answer has it.
    pub last_page: Option<u32>,
}

impl ListPage {
    /// Reads an answer; `None` when it is neither form.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value = crate::event::parse_json(body).ok()?;
        let (entries, last_page) = match value {
            Value::Array(entries) => (entries, None),
            Value::Object(mut o) => {
                let last = o
                    .get("pagination")
                    .and_then(|p| p.get("last_page"))
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok());
                match o.remove("data") {
                    Some(Value::Array(entries)) => (entries, last),
                    _ => return None,
                }
            }
            _ => return None,
        };
        let len = entries.len();
        let items = entries
            .into_iter()
            .filter_map(|e| WebhookEvent::from_value(e).ok())
            .map(|e| Listed {
                id: e.prediction.id,
                status: e.prediction.status,
            })
            .collect();
        Some(ListPage {
            items,
            len,
            last_page,
        })
    }

    /// True when `page` (from 1) of `per_page` was the last: `last_page` says so, or,
    /// without it, the page was not full.
    pub fn is_last(&self, page: u32, per_page: u32) -> bool {
        match self.last_page {
            Some(last) => page >= last || self.len == 0,
            None => self.len < per_page as usize,
        }
    }
}

/// The query of one page of the provider's list: `page` (from 1), `per_page` (1 to
/// [`MAX_PER_PAGE`], clamped), `from` and `to` ([`list_bound`]).
pub fn list_page_query(
    page: u32,
    per_page: u32,
    from: &str,
    to: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("page", page.max(1).to_string()),
        ("per_page", per_page.clamp(1, MAX_PER_PAGE).to_string()),
        ("from", from.to_owned()),
        ("to", to.to_owned()),
    ]
}

/// The provider API key in its secret's value, `{"kind":"provider-api-key","key_id":…,
/// "api_key":…}` as the rotator keeps it; `None` when there is no string `api_key`.
pub fn provider_api_key(secret_value: &str) -> Option<String> {
    let v: Value = serde_json::from_str(secret_value).ok()?;
    v.get("api_key")?.as_str().map(str::to_owned)
}

/// The list's `from`/`to` bound for Unix seconds `secs`: `YYYY-MM-DDTHH:MM:SSZ`, a form the
/// provider's list endpoint takes.
pub fn list_bound(secs: i64) -> String {
    crate::time::rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_reads_back_and_refuses_what_cannot_be_a_key() {
        let c = Check::first("skytells", "pred_1", 1_764_000_000_000, CheckSource::Api);
        let text = c.to_json();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            serde_json::json!({"v": 1, "provider": "skytells", "prediction_id": "pred_1",
                "submitted_at_ms": 1_764_000_000_000i64, "attempt": 0, "source": "api"})
        );
        assert_eq!(Check::from_json(&text), Ok(c.clone()));
        assert_eq!(c.next().attempt, 1);
        assert_eq!(c.next().prediction_id, "pred_1");
        let sweep = Check::first("skytells", "p", 0, CheckSource::Sweep).to_json();
        assert!(sweep.contains(r#""source":"sweep""#), "{sweep}");
        let cli = Check::first("skytells", "p", 0, CheckSource::Cli);
        assert!(cli.to_json().contains(r#""source":"cli""#), "{cli:?}");
        assert_eq!(Check::from_json(&cli.to_json()), Ok(cli));
        for (text, err) in [
            (
                r#"{"v":2,"provider":"s","prediction_id":"p","submitted_at_ms":0,"attempt":0,"source":"api"}"#,
                CheckError::UnsupportedVersion(2),
            ),
            (
                r#"{"v":1,"provider":"s","prediction_id":"../x","submitted_at_ms":0,"attempt":0,"source":"api"}"#,
                CheckError::BadId,
            ),
            (
                r#"{"v":1,"provider":"a/b","prediction_id":"p","submitted_at_ms":0,"attempt":0,"source":"api"}"#,
                CheckError::BadProvider,
            ),
        ] {
            assert_eq!(Check::from_json(text), Err(err), "{text}");
        }
        assert!(matches!(
            Check::from_json(
                r#"{"v":1,"provider":"s","prediction_id":"p","submitted_at_ms":0,"attempt":0,"source":"cron"}"#
            ),
            Err(CheckError::Malformed(_))
        ));
        assert!(matches!(
            Check::from_json("nope"),
            Err(CheckError::Malformed(_))
        ));
    }

    #[test]
    fn one_chain_per_prediction_whatever_the_duplicates() {
        let chain = CheckChain {
            next_attempt: 3,
            due_at_ms: 1_000_000,
            message_id: "m2".into(),
        };
        let now = 1_000_000;
        assert_eq!(ChainTurn::of(0, "m0", None, now), ChainTurn::Start);
        assert_eq!(
            ChainTurn::of(3, "m3", Some(&chain), now),
            ChainTurn::Advance
        );
        // m2 wrote it: m2 again means its send may not have happened.
        assert_eq!(ChainTurn::of(2, "m2", Some(&chain), now), ChainTurn::Resend);
        // Another copy of attempt 2 (another message), an older attempt, a first check
        // while the chain lives: nothing scheduled.
        assert_eq!(ChainTurn::of(2, "m2b", Some(&chain), now), ChainTurn::Stop);
        assert_eq!(ChainTurn::of(1, "m1", Some(&chain), now), ChainTurn::Stop);
        assert_eq!(ChainTurn::of(0, "cli", Some(&chain), now), ChainTurn::Stop);
        let late = now + (CHAIN_STALE_SECS as i64) * 1000;
        assert_eq!(ChainTurn::of(0, "cli", Some(&chain), late), ChainTurn::Stop);
        // Over CHAIN_STALE_SECS late, the chain is dead: a first check takes it over, and
        // only a first check.
        assert_eq!(
            ChainTurn::of(0, "cli", Some(&chain), late + 1),
            ChainTurn::TakeOver
        );
        assert_eq!(
            ChainTurn::of(1, "m1", Some(&chain), late + 1),
            ChainTurn::Stop
        );
        let json = serde_json::to_string(&chain).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"next_attempt":3,"due_at_ms":1000000,"message_id":"m2"}"#
        );
        assert_eq!(serde_json::from_str::<CheckChain>(&json).ok(), Some(chain));
    }

    #[test]
    fn checks_back_off_from_seconds_to_the_longest_interval() {
        let delays: Vec<u64> = (0..7).map(|a| next_delay_secs(a, 60)).collect();
        assert_eq!(delays, vec![10, 20, 40, 60, 60, 60, 60]);
        assert_eq!(next_delay_secs(200, 60), 60);
        assert_eq!(next_delay_secs(u32::MAX, 3600), MAX_SQS_DELAY_SECS);
        assert_eq!(next_delay_secs(0, 5), 5);
    }

    #[test]
    fn list_pages_read_in_both_forms() {
        let sdk = br#"{"data":[{"id":"p2","status":"succeeded","output":"https://c/x.png"},
            {"id":"p1","status":"processing"},{"nope":1}],
            "pagination":{"current_page":1,"per_page":50,"total":3,"last_page":2}}"#;
        let page = ListPage::parse(sdk).unwrap();
        assert_eq!(
            page.items,
            vec![
                Listed {
                    id: "p2".into(),
                    status: PredictionStatus::Succeeded
                },
                Listed {
                    id: "p1".into(),
                    status: PredictionStatus::Processing
                }
            ]
        );
        assert_eq!((page.len, page.last_page), (3, Some(2)));
        assert!(!page.is_last(1, 50));
        assert!(page.is_last(2, 50));
        let bare = br#"[{"id":"p1","status":"failed"}]"#;
        let page = ListPage::parse(bare).unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.is_last(1, 50));
        assert!(!ListPage {
            items: vec![],
            len: 50,
            last_page: None
        }
        .is_last(1, 50));
        assert_eq!(ListPage::parse(br#"{"data":3}"#), None);
        assert_eq!(ListPage::parse(b"x"), None);
    }

    #[test]
    fn the_api_key_is_read_from_the_rotators_format() {
        assert_eq!(
            provider_api_key(r#"{"kind":"provider-api-key","key_id":"k","api_key":"sk-1"}"#)
                .as_deref(),
            Some("sk-1")
        );
        assert_eq!(provider_api_key("sk-1"), None);
        assert_eq!(provider_api_key(r#"{"api_key":1}"#), None);
        assert_eq!(list_bound(0), "1970-01-01T00:00:00Z");
        let q = list_page_query(0, 500, "a", "b");
        assert_eq!(
            q,
            vec![
                ("page", "1".to_owned()),
                ("per_page", "50".to_owned()),
                ("from", "a".to_owned()),
                ("to", "b".to_owned())
            ]
        );
    }
}
