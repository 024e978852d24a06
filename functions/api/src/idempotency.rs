//! Idempotent submits: `POST /predictions` with the caller's `Idempotency-Key` creates at
//! most one prediction per key and caller within 24 hours, and answers every repeat with
//! the first answer.
//!
//! **The header** follows the IETF draft "The Idempotency-Key HTTP Header Field"
//! (<https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/>) with
//! Stripe's semantics (<https://docs.stripe.com/api/idempotent_requests>): optional; a key
//! is 1 to 255 bytes of visible ASCII (0x21 to 0x7E), taken as sent (a draft-style quoted
//! string `"abc"` is not the key `abc`); a repeat with the same key and the same request
//! gets the stored answer with `Idempotent-Replayed: true`; the same key with another
//! request body is refused (422, the draft's "reused key"); a repeat while the first is
//! still running is refused (409, the draft's "concurrent request"), with `Retry-After: 1`.
//! A request refused before it reaches the provider (a bad body, a bad key) is not
//! remembered.
//!
//! **The storage** is the archive bucket; there is no database. Each key has one object,
//! `idempotency/{sha256_hex(caller_key_sha256 + "\n" + key)}.json` ([`Scope`]): the key is
//! scoped to the caller (the SHA-256 of its bearer key, [`crate::auth::Caller`]), and
//! neither the caller's key nor the idempotency key is stored, only that hash. The object
//! is a [`Record`]:
//!
//! ```json
//! {"v": 1, "key_sha256": "…", "request_sha256": "…", "state": "pending" | "done",
//!  "created_at": "2026-11-25T17:00:00Z", "created_at_ms": 1795626000000,
//!  "lease_until_ms": 1795626035000, "response": {"status": 201, "headers": [["location", "…"]], "body": {…}}}
//! ```
//!
//! **The race** is settled by S3's conditional writes
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>): the
//! first request writes a `pending` record with `If-None-Match: *`, which S3 accepts for
//! exactly one writer of a key and refuses for the others with 412 Precondition Failed (or
//! 409 ConditionalRequestConflict when two writes overlap, which AWS says to retry). The
//! winner calls the provider once, with a provider `Idempotency-Key` derived from the
//! caller's ([`Scope::provider_key`]), then replaces its record, `If-Match` on its ETag,
//! with `done` and the answer. A loser reads the record: another body is 422, `done` is
//! replayed, `pending` is read again every 200 ms for up to 5 s (less if the invocation's
//! deadline is nearer), then 409.
//!
//! **Retry-able failures are forgotten.** When the answer is one the caller may retry (429,
//! a 5xx such as the provider being unreachable or our API key being refused), the winner
//! deletes its record (`If-Match` on its ETag), so the same key can go again; the provider
//! gets the same derived key again and, if it honours it, does not create a second
//! prediction. Any other answer (2xx, 4xx) is kept ([`is_final`]).
//!
//! **Expiry.** A record older than 24 hours ([`WINDOW`]) is expired: the next request with
//! its key replaces it with a conditional write on its ETag (`If-Match`), so two racers
//! cannot both win. The bucket's lifecycle rule deletes `idempotency/` objects after one
//! day, but S3 lifecycle works in whole days and runs late; the 24-hour guarantee rests on
//! this check, not on the rule. A `pending` record whose owner's invocation has ended (its
//! `lease_until_ms`, the owner's deadline plus a margin, has passed: the instance died or
//! could not write its answer) is abandoned and taken over the same way.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::submit::SubmitRequest;
use crate::{Api, Reply};

/// The request header (matched case-insensitively).
pub const HEADER: &str = "idempotency-key";
/// The answer header that marks a stored answer given again (Stripe's name).
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted, bytes.
pub const MAX_KEY_LEN: usize = 255;
/// Where the records live in the archive bucket.
pub const PREFIX: &str = "idempotency/";
/// How long a key is remembered.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The record format's version (`v`).
pub const RECORD_VERSION: u32 = 1;
/// How often a `pending` record is read again while waiting for it.
pub const POLL: Duration = Duration::from_millis(200);
/// How long a request waits for a concurrent one with the same key (less if the deadline
/// is nearer).
pub const PENDING_WAIT: Duration = Duration::from_secs(5);
/// Added to the owner's deadline for its lease: time to write its answer.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// The lease when the invocation reports no deadline (the local emulator): Lambda's
/// longest timeout, so no running invocation loses its record.
pub const LEASE_WITHOUT_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// Largest record read (a record holds at most a 1 MiB provider answer).
const MAX_RECORD_BYTES: i64 = 4 * 1024 * 1024;

/// A caller's idempotency key, checked. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdempotencyKey({} bytes)", self.0.len())
    }
}

impl IdempotencyKey {
    /// Checks a header value: 1 to [`MAX_KEY_LEN`] bytes of visible ASCII (0x21 to 0x7E).
    pub fn parse(value: &[u8]) -> Result<Self, ApiError> {
        let ok = (1..=MAX_KEY_LEN).contains(&value.len())
            && value.iter().all(|b| (0x21..=0x7E).contains(b));
        match std::str::from_utf8(value) {
            Ok(s) if ok => Ok(IdempotencyKey(s.to_owned())),
            _ => Err(invalid_key(&format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters of visible ASCII (0x21 to 0x7E), without spaces"
            ))),
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The request's key from the values of its `Idempotency-Key` headers: none is `None`;
/// more than one is refused (400), as is a value that is not a key.
pub fn from_headers(values: &[&[u8]]) -> Result<Option<IdempotencyKey>, ApiError> {
    match values {
        [] => Ok(None),
        [one] => IdempotencyKey::parse(one).map(Some),
        _ => Err(invalid_key("send at most one Idempotency-Key header")),
    }
}

fn invalid_key(message: &str) -> ApiError {
    ApiError::new(400, "invalid_idempotency_key", message)
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One caller's key: its hash, and where its record lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `sha256_hex(caller_key_sha256 + "\n" + key)`.
    pub key_sha256: String,
    /// `idempotency/{key_sha256}.json`.
    pub object_key: String,
}

impl Scope {
    /// The scope of `key` for `caller`.
    pub fn new(caller: &Caller, key: &IdempotencyKey) -> Self {
        let key_sha256 = sha256_hex(format!("{}\n{}", caller.key_sha256, key.0).as_bytes());
        Scope {
            object_key: format!("{PREFIX}{key_sha256}.json"),
            key_sha256,
        }
    }

    /// The provider's `Idempotency-Key` for this key: `hv-` and the first 32 hex digits of
    /// [`Scope::key_sha256`]. The same for every attempt and every retry within the window,
    /// so a provider that honours it dedups them too; it reveals neither key.
    pub fn provider_key(&self) -> String {
        format!(
            "hv-{}",
            self.key_sha256.get(..32).unwrap_or(&self.key_sha256)
        )
    }

    /// The start of the hash, for logs.
    fn short(&self) -> &str {
        self.key_sha256.get(..16).unwrap_or(&self.key_sha256)
    }
}

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
    /// `now_ms`, its owner running until `lease_until_ms` at the latest.
    pub fn pending(scope: &Scope, request_sha256: &str, now_ms: u64, lease_until_ms: u64) -> Self {
        Record {
            v: RECORD_VERSION,
            key_sha256: scope.key_sha256.clone(),
            request_sha256: request_sha256.to_owned(),
            state: State::Pending,
            created_at: hookvault_core::time::rfc3339((now_ms / 1000) as i64),
            created_at_ms: now_ms,
            lease_until_ms: Some(lease_until_ms),
            response: None,
        }
    }

    /// This record, `done`, with `reply` as its answer (its window unchanged).
    pub fn done(&self, reply: &Reply) -> Result<Self, serde_json::Error> {
        Ok(Record {
            state: State::Done,
            lease_until_ms: None,
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
}

/// The verdict on `record` for a request whose body hashes to `request_sha256`, at
/// `now_ms`.
pub fn judge(record: Record, request_sha256: &str, now_ms: u64) -> Verdict {
    if record.expired(now_ms) {
        return Verdict::Replace;
    }
    if record.request_sha256 != request_sha256 {
        return Verdict::Mismatch;
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

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn reused() -> ApiError {
    ApiError::new(
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body in the last 24 hours: send the same body again, or use a new key",
    )
}

fn in_progress() -> ApiError {
    ApiError {
        retry_after: Some("1".into()),
        ..ApiError::new(
            409,
            "idempotency_key_in_progress",
            "a request with this Idempotency-Key is still being processed: retry after a second with the same key and body",
        )
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::new(
        503,
        "idempotency_unavailable",
        "the Idempotency-Key record could not be read or written, so nothing was submitted; retry later with the same key",
    )
}

/// The condition of a record write.
enum Condition {
    /// `If-None-Match: *`: only if there is no record.
    Absent,
    /// `If-Match: <etag>`: only if the record is still that one.
    Match(String),
}

/// The outcome of a conditional write.
enum Put {
    /// Written; its ETag.
    Written(String),
    /// Refused: the record exists, or changed (412), or another write overlapped (409).
    Taken,
    /// `If-Match` on a record that is gone (404).
    Missing,
}

impl Api {
    /// Submits `req` (whose exact bytes are `body`) at most once for `caller`'s `key`:
    /// see the module's documentation.
    pub async fn submit_once(
        &self,
        caller: &Caller,
        key: &IdempotencyKey,
        req: &SubmitRequest,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Reply, ApiError> {
        let scope = Scope::new(caller, key);
        let request_sha256 = sha256_hex(body);
        let wait = deadline.map_or(PENDING_WAIT, |d| {
            PENDING_WAIT.min(d.saturating_duration_since(Instant::now()))
        });
        let wait_until = Instant::now() + wait;
        let mut condition = Condition::Absent;
        loop {
            let now = now_ms();
            let lease = deadline.map_or(LEASE_WITHOUT_DEADLINE, |d| {
                d.saturating_duration_since(Instant::now()) + LEASE_MARGIN
            });
            let pending =
                Record::pending(&scope, &request_sha256, now, now + lease.as_millis() as u64);
            if let Put::Written(etag) = self.put_record(&scope, &pending, &condition).await? {
                return self
                    .run_claimed(&scope, &pending, etag, req, deadline)
                    .await;
            }
            // Someone else holds the key, or the record changed since it was read.
            condition = loop {
                match self.get_record(&scope).await? {
                    None => break Condition::Absent,
                    Some((record, etag)) => match judge(record, &request_sha256, now_ms()) {
                        Verdict::Replace => break Condition::Match(etag),
                        Verdict::Mismatch => return Err(reused()),
                        Verdict::Replay(r) => {
                            tracing::info!(
                                idempotency = scope.short(),
                                status = r.status,
                                "idempotent replay"
                            );
                            return Ok(replay(r));
                        }
                        Verdict::Wait => {}
                    },
                }
                if Instant::now() + POLL > wait_until {
                    tracing::info!(idempotency = scope.short(), "the key is still pending: 409");
                    return Err(in_progress());
                }
                tokio::time::sleep(POLL).await;
            };
            if Instant::now() >= wait_until {
                return Err(in_progress());
            }
            if matches!(condition, Condition::Absent) {
                // It was deleted (a retry-able failure) just now: claim it again, after a
                // pause so that racing requests do not spin.
                tokio::time::sleep(POLL / 4).await;
            }
        }
    }

    /// The key is ours (`pending`, ETag `etag`): call the provider once, then keep the
    /// answer, or forget the key if the caller may retry.
    async fn run_claimed(
        &self,
        scope: &Scope,
        pending: &Record,
        etag: String,
        req: &SubmitRequest,
        deadline: Option<Instant>,
    ) -> Result<Reply, ApiError> {
        let outcome = self.submit(req, &scope.provider_key(), deadline).await;
        let (reply, keep) = match &outcome {
            Ok(r) => (r.clone(), true),
            Err(e) => (Reply::from(e.clone()), is_final(e.status, &e.code)),
        };
        let done = keep.then(|| pending.done(&reply));
        match done {
            Some(Ok(done)) => {
                match self.put_record(scope, &done, &Condition::Match(etag)).await {
                    Ok(Put::Written(_)) => {
                        tracing::info!(
                            idempotency = scope.short(),
                            status = reply.status,
                            "answer kept for the idempotency key"
                        );
                    }
                    Ok(Put::Taken | Put::Missing) => tracing::warn!(
                        idempotency = scope.short(),
                        "the idempotency record was taken over before the answer was kept"
                    ),
                    // Logged by put_record; the key stays pending until its lease ends.
                    Err(_) => {}
                }
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "the answer is not JSON: the idempotency key is forgotten");
                self.delete_record(scope, &etag).await;
            }
            None => {
                tracing::info!(
                    idempotency = scope.short(),
                    status = reply.status,
                    "retry-able answer: the idempotency key is forgotten"
                );
                self.delete_record(scope, &etag).await;
            }
        }
        outcome
    }

    /// Writes `record` under `condition`.
    async fn put_record(
        &self,
        scope: &Scope,
        record: &Record,
        condition: &Condition,
    ) -> Result<Put, ApiError> {
        let body = serde_json::to_vec(record)
            .map_err(|e| unavailable("idempotency record not serialisable", e))?;
        let put = self
            .s3
            .put_object()
            .bucket(&self.cfg.bucket)
            .key(&scope.object_key)
            .content_type("application/json")
            .body(body.into());
        let put = match condition {
            Condition::Absent => put.if_none_match("*"),
            Condition::Match(etag) if !etag.is_empty() => put.if_match(etag),
            // S3 always sends an ETag; without one there is nothing to match.
            Condition::Match(_) => put,
        };
        match put.send().await {
            Ok(out) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_owned())),
            Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
                Some(409 | 412) => Ok(Put::Taken),
                Some(404) if matches!(condition, Condition::Match(_)) => Ok(Put::Missing),
                _ => Err(unavailable(
                    "S3 PutObject (idempotency record)",
                    hookvault_aws::sdk_error::short(&e),
                )),
            },
        }
    }

    /// The record and its ETag; `None` if there is none.
    async fn get_record(&self, scope: &Scope) -> Result<Option<(Record, String)>, ApiError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.cfg.bucket)
            .key(&scope.object_key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(unavailable(
                    "S3 GetObject (idempotency record)",
                    hookvault_aws::sdk_error::short(&e),
                ))
            }
        };
        if out.content_length().unwrap_or(0) > MAX_RECORD_BYTES {
            return Err(unavailable(
                "idempotency record too large",
                &scope.object_key,
            ));
        }
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| unavailable("S3 read (idempotency record)", e))?
            .into_bytes();
        let record = Record::from_json(&bytes)
            .map_err(|e| unavailable("idempotency record unreadable", e))?;
        Ok(Some((record, etag)))
    }

    /// Deletes the record if it is still `etag`; failures are logged (the record then
    /// stays pending until its lease ends).
    async fn delete_record(&self, scope: &Scope, etag: &str) {
        let mut del = self
            .s3
            .delete_object()
            .bucket(&self.cfg.bucket)
            .key(&scope.object_key);
        if !etag.is_empty() {
            del = del.if_match(etag);
        }
        if let Err(e) = del.send().await {
            match e.raw_response().map(|r| r.status().as_u16()) {
                Some(404 | 412) => tracing::info!(
                    idempotency = scope.short(),
                    "the idempotency record had already changed"
                ),
                _ => tracing::error!(
                    error = %hookvault_aws::sdk_error::short(&e),
                    idempotency = scope.short(),
                    "S3 DeleteObject (idempotency record): the key stays pending until its lease ends"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(k: &str) -> Caller {
        Caller {
            key_sha256: sha256_hex(k.as_bytes()),
        }
    }

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::parse(k.as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_one_to_255_bytes_of_visible_ascii() {
        for ok in [
            "a".to_owned(),
            "8e03978e-40d5-43e8-bc93-6894a57f9324".to_owned(),
            "!~\"quoted\"".to_owned(),
            "k".repeat(255),
        ] {
            assert_eq!(key(&ok).as_str(), ok);
        }
        let too_long = "k".repeat(256);
        for bad in [
            &b""[..],
            too_long.as_bytes(),
            b"has space",
            b"tab\t",
            b"\x7f",
            b"nul\0",
            "caf\u{e9}".as_bytes(),
            b"\xff\xfe",
        ] {
            let e = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (400, "invalid_idempotency_key")
            );
        }
        // The key is never echoed back, nor shown by Debug.
        let e = IdempotencyKey::parse(b"secret key").unwrap_err();
        assert!(!e.body().contains("secret"), "{}", e.body());
        assert!(!format!("{:?}", key("secret-key")).contains("secret"));
    }

    #[test]
    fn one_header_at_most() {
        assert_eq!(from_headers(&[]).unwrap(), None);
        assert_eq!(from_headers(&[b"k1"]).unwrap(), Some(key("k1")));
        let e = from_headers(&[b"k1", b"k1"]).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "invalid_idempotency_key")
        );
    }

    #[test]
    fn scopes_are_per_caller_and_keep_no_key() {
        let a = Scope::new(&caller("caller-key-a-0123456789"), &key("order-1"));
        let expected =
            sha256_hex(format!("{}\norder-1", sha256_hex(b"caller-key-a-0123456789")).as_bytes());
        assert_eq!(a.key_sha256, expected);
        assert_eq!(a.object_key, format!("idempotency/{expected}.json"));
        assert_eq!(a.provider_key(), format!("hv-{}", &expected[..32]));
        assert_eq!(
            a,
            Scope::new(&caller("caller-key-a-0123456789"), &key("order-1"))
        );
        let b = Scope::new(&caller("caller-key-b-0123456789"), &key("order-1"));
        assert_ne!(a.key_sha256, b.key_sha256, "another caller, another scope");
        let c = Scope::new(&caller("caller-key-a-0123456789"), &key("order-2"));
        assert_ne!(a.key_sha256, c.key_sha256);
        assert!(!a.object_key.contains("order-1"));
    }

    fn reply() -> Reply {
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
        );
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
        assert_eq!(back.lease_until_ms, None);
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
        let pending = Record::pending(&scope, "req-a", t0, t0 + 35_000);
        let done = pending.done(&reply()).unwrap();
        let v = |r: &Record, req: &str, now: u64| judge(r.clone(), req, now);

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
