//! The record kept under a key (`idempotency/{key_sha256}.json`), what a request does with
//! the record it finds ([`judge`]), and which answers are kept ([`is_final`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::key::Scope;
use crate::Reply;

/// The answer header that marks a stored answer given again (Stripe's name).
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a key is remembered.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The record format's version (`v`).
pub const RECORD_VERSION: u32 = 1;

/// A record's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The first request is running.
    Pending,
    /// The first request was answered; `response` is that answer.
    Done,
}

/// An answer as kept: status, headers, and the JSON body as it was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `content-type` (`[name, value]` pairs).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The JSON body, byte for byte.
    pub body: Box<RawValue>,
}

/// The object `idempotency/{key_sha256}.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Format version, [`RECORD_VERSION`].
    pub v: u32,
    /// [`Scope::key_sha256`].
    pub key_sha256: String,
    /// SHA-256 of the exact request body, hex.
    pub request_sha256: String,
    /// Running or answered.
    pub state: State,
    /// When the first request claimed the key, RFC 3339 UTC.
    pub created_at: String,
    /// The same, Unix milliseconds: the 24-hour window starts here.
    pub created_at_ms: u64,
    /// For `pending`: Unix milliseconds after which the owner's invocation has surely
    /// ended, and the record may be taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<u64>,
    /// For `pending`: a random token of the request that wrote it (not secret), so that a
    /// request whose write was made but whose answer was lost (the SDK's retry then gets
    /// 412) knows the record for its own claim. Absent in records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// For `done`: the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<StoredResponse>,
}

/// Why a stored record cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not a record.
    #[error("not an idempotency record: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a format this code does not know.
    #[error("idempotency record version {0} is not {RECORD_VERSION}")]
    Version(u32),
    /// `done` without an answer.
    #[error("idempotency record is done but has no response")]
    NoResponse,
}

impl Record {
    /// A `pending` record for the request whose body hashes to `request_sha256`, claimed at
    /// `now_ms`, its owner running until `lease_until_ms` at the latest. Without an
    /// [`Record::owner`]: see [`Record::owned_by`].
    pub fn pending(scope: &Scope, request_sha256: &str, now_ms: u64, lease_until_ms: u64) -> Self {
        Record {
            v: RECORD_VERSION,
            key_sha256: scope.key_sha256.clone(),
            request_sha256: request_sha256.to_owned(),
            state: State::Pending,
            created_at: hookvault_core::time::rfc3339((now_ms / 1000) as i64),
            created_at_ms: now_ms,
            lease_until_ms: Some(lease_until_ms),
            owner: None,
            response: None,
        }
    }

    /// This record, written by the request whose token is `owner`.
    pub fn owned_by(self, owner: &str) -> Self {
        Record {
            owner: Some(owner.to_owned()),
            ..self
        }
    }

    /// This record, `done`, with `reply` as its answer (its window unchanged).
    pub fn done(&self, reply: &Reply) -> Result<Self, serde_json::Error> {
        Ok(Record {
            state: State::Done,
            lease_until_ms: None,
            owner: None,
            response: Some(StoredResponse {
                status: reply.status,
                headers: reply.headers.clone(),
                body: RawValue::from_string(reply.body.clone())?,
            }),
            ..self.clone()
        })
    }

    /// A stored record, checked.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        let r: Record = serde_json::from_slice(bytes)?;
        if r.v != RECORD_VERSION {
            return Err(RecordError::Version(r.v));
        }
        if r.state == State::Done && r.response.is_none() {
            return Err(RecordError::NoResponse);
        }
        Ok(r)
    }

    /// True once [`WINDOW`] has passed since the key was claimed.
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.created_at_ms.saturating_add(WINDOW.as_millis() as u64)
    }
}

/// What a request does with the record it found under its key.
#[derive(Debug)]
pub enum Verdict {
    /// Expired, or pending past its owner's lease: take it over (`If-Match` its ETag).
    Replace,
    /// The key was used with another request body: 422.
    Mismatch,
    /// Answered: give this answer again.
    Replay(StoredResponse),
    /// Still running: read it again later.
    Wait,
    /// This request's own claim, whose write answer was lost: it is ours (its ETag).
    Mine,
}

/// The verdict on `record` for the request whose token is `owner` and whose body hashes
/// to `request_sha256`, at `now_ms`.
pub fn judge(record: Record, request_sha256: &str, owner: &str, now_ms: u64) -> Verdict {
    if record.expired(now_ms) {
        return Verdict::Replace;
    }
    if record.request_sha256 != request_sha256 {
        return Verdict::Mismatch;
    }
    if record.state == State::Pending && record.owner.as_deref() == Some(owner) {
        return Verdict::Mine;
    }
    match (record.state, record.response) {
        (State::Done, Some(r)) => Verdict::Replay(r),
        (State::Done, None) => Verdict::Replace,
        (State::Pending, _) if record.lease_until_ms.is_some_and(|l| now_ms > l) => {
            Verdict::Replace
        }
        (State::Pending, _) => Verdict::Wait,
    }
}

/// True when an answer is kept for its key: a definitive one, 2xx or 4xx (a 2xx from the
/// provider that we answer as 502 too). False when the caller may retry it (429, 408, 409,
/// any other 5xx): then the key is forgotten, so a retry with it goes through.
pub fn is_final(status: u16, code: &str) -> bool {
    match status {
        408 | 409 | 429 => false,
        200..=499 => true,
        _ => matches!(code, "bad_provider_answer" | "prediction_failed"),
    }
}

/// A stored answer, given again.
pub fn replay(r: StoredResponse) -> Reply {
    let mut headers = r.headers;
    headers.push((REPLAYED_HEADER.to_owned(), "true".to_owned()));
    Reply {
        status: r.status,
        headers,
        body: r.body.get().to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::idempotency::key::sha256_hex;
    use crate::idempotency::key::tests::{caller, key};

    pub(crate) fn reply() -> Reply {
        Reply {
            status: 201,
            headers: vec![("location".into(), "/predictions/pred_1".into())],
            body: r#"{"id":"pred_1","status":"starting"}"#.into(),
        }
    }

    #[test]
    fn records_have_the_documented_shape_and_no_key() {
        let scope = Scope::new(&caller("caller-key-a-0123456789"), &key("order-1"));
        let p = Record::pending(
            &scope,
            &sha256_hex(b"{}"),
            1_795_626_000_123,
            1_795_626_035_000,
        )
        .owned_by("8e03978e40d543e8bc936894a57f9324");
        let v: serde_json::Value = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "v": 1,
                "key_sha256": scope.key_sha256,
                "request_sha256": sha256_hex(b"{}"),
                "state": "pending",
                "created_at": "2026-11-25T17:00:00Z",
                "created_at_ms": 1_795_626_000_123u64,
                "lease_until_ms": 1_795_626_035_000u64,
                "owner": "8e03978e40d543e8bc936894a57f9324",
            })
        );
        let d = p.done(&reply()).unwrap();
        let text = serde_json::to_string(&d).unwrap();
        assert!(
            !text.contains("order-1") && !text.contains("caller-key"),
            "{text}"
        );
        // The body is embedded as it was sent, not as a string.
        assert!(
            text.contains(r#""body":{"id":"pred_1","status":"starting"}"#),
            "{text}"
        );
        let back = Record::from_json(text.as_bytes()).unwrap();
        assert_eq!(back.state, State::Done);
        assert_eq!(
            back.created_at_ms, p.created_at_ms,
            "the window is the claim's"
        );
        assert_eq!((back.lease_until_ms, back.owner), (None, None));
        let r = replay(back.response.unwrap());
        assert_eq!(r.status, 201);
        assert_eq!(r.body, reply().body);
        assert_eq!(
            r.headers,
            vec![
                ("location".to_owned(), "/predictions/pred_1".to_owned()),
                ("idempotent-replayed".to_owned(), "true".to_owned())
            ]
        );
        for bad in [
            text.replace(r#""v":1"#, r#""v":2"#),
            r#"{"v":1,"key_sha256":"k","request_sha256":"r","state":"done","created_at":"x","created_at_ms":1}"#.to_owned(),
            "not json".to_owned(),
        ] {
            assert!(Record::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn verdicts() {
        let scope = Scope::new(&caller("caller-key-a-0123456789"), &key("order-1"));
        let t0 = 1_795_626_000_000u64;
        let day = WINDOW.as_millis() as u64;
        let pending = Record::pending(&scope, "req-a", t0, t0 + 35_000).owned_by("o1");
        let done = pending.done(&reply()).unwrap();
        let v = |r: &Record, req: &str, now: u64| judge(r.clone(), req, "o2", now);

        assert!(matches!(v(&done, "req-a", t0 + 1), Verdict::Replay(r) if r.status == 201));
        assert!(matches!(v(&done, "req-b", t0 + 1), Verdict::Mismatch));
        assert!(matches!(v(&pending, "req-a", t0 + 1), Verdict::Wait));
        assert!(matches!(v(&pending, "req-b", t0 + 1), Verdict::Mismatch));
        // The owner's lease ended (its instance died): taken over.
        assert!(matches!(
            v(&pending, "req-a", t0 + 35_001),
            Verdict::Replace
        ));
        // 24 hours on, the key is new, whatever the body.
        assert!(matches!(
            v(&done, "req-a", t0 + day - 1),
            Verdict::Replay(_)
        ));
        assert!(matches!(v(&done, "req-a", t0 + day), Verdict::Replace));
        assert!(matches!(v(&done, "req-b", t0 + day), Verdict::Replace));
        // A pending record written without a lease waits out the window.
        let no_lease = Record {
            lease_until_ms: None,
            ..pending.clone()
        };
        assert!(matches!(v(&no_lease, "req-a", t0 + day - 1), Verdict::Wait));
        // The request's own claim (its write answer was lost) is its own, and no one
        // else's; a record without an owner (older) is no one's.
        assert!(matches!(
            judge(pending.clone(), "req-a", "o1", t0 + 1),
            Verdict::Mine
        ));
        assert!(matches!(
            judge(done.clone(), "req-a", "o1", t0 + 1),
            Verdict::Replay(_)
        ));
        let unowned = Record {
            owner: None,
            ..pending.clone()
        };
        assert!(matches!(
            judge(unowned, "req-a", "o1", t0 + 1),
            Verdict::Wait
        ));
    }

    #[test]
    fn retry_able_answers_are_not_kept() {
        assert!(is_final(201, ""));
        for s in [400, 402, 404, 413, 422] {
            assert!(is_final(s, "X"), "{s}");
        }
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(!is_final(s, "X"), "{s}");
        }
        // The provider answered 2xx: a prediction may exist, so this is not retried.
        assert!(is_final(502, "bad_provider_answer"));
        assert!(is_final(502, "prediction_failed"));
        assert!(!is_final(502, "UNAUTHORIZED"));
        assert!(!is_final(503, "provider_unreachable"));
    }
}
