//! The edge's request flow, generic over its I/O ([`Io`]): route, configuration, size
//! cap, body, signature, envelope, claim check, `SendMessage`, answer. The Worker runs it
//! with the runtime (`worker_entry`); the tests run it natively with a fake whose clock
//! is virtual (`flow/tests.rs`), so retries, claim checks and timeouts are tested here.
//!
//! **Writes are retried within the request.** A `SendMessage` or a claim-check
//! `PutObject` that fails for a reason a retry can fix (throttling, a 5xx, no answer) is
//! sent again after a jittered exponential back-off ([`retry_policy`], decided by
//! hookvault-core's [`RetryPolicy`]), for as long as the request's budget
//! (`RETRY_BUDGET_MS`, counted from the request's arrival) leaves time; a refusal no
//! retry can fix (a 4xx other than throttling: `InvalidParameterValue`, `AccessDenied`,
//! a queue or bucket that does not exist) is answered at once. The first attempt of each
//! write always has its whole timeout (`SQS_TIMEOUT_MS`, `CLAIM_CHECK_TIMEOUT_MS`); a
//! retry has at most what is left of the budget.
//!
//! A retry resends the request as first signed: a SigV4 signature stays valid for five
//! minutes after its `x-amz-date`
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html>), far longer
//! than any budget the configuration accepts ([`crate::config::MAX_RETRY_BUDGET_MS`]).

use std::time::Duration;

use hookvault_core::archive::claim_check_key;
use hookvault_core::envelope::{needs_claim_check, Envelope, Received, S3Object};
use hookvault_core::retry::{Decision, Failure, RetryPolicy};

use crate::config::EdgeConfig;
use crate::handler::{self, Rejection};
use crate::io::{Body, Io};
use crate::log::RequestLog;
use crate::route::{route, Route};
use crate::s3::{self, ClaimCheck, S3Error};
use crate::sqs::{self, SqsError};
use crate::trace::{self, RequestTrace};

/// An answer to send: status, body, headers. The Worker builds the runtime's `Response`
/// from it in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body, if any.
    pub body: Option<String>,
    /// The headers, besides the runtime's own.
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn json(status: u16, body: String) -> Self {
        Answer {
            status,
            body: Some(body),
            headers: vec![("content-type", "application/json".to_owned())],
        }
    }

    /// A refusal's answer: its JSON body, `Retry-After` and `Allow` when it has them, and
    /// `traceresponse` (the request's trace header value) on the webhook route.
    pub fn refusal(r: &Rejection, traceresponse: Option<&str>) -> Self {
        let mut answer = Answer::json(r.status, r.body());
        if let Some(secs) = r.retry_after {
            answer.headers.push(("retry-after", secs.to_string()));
        }
        if let Some(allow) = r.allow {
            answer.headers.push(("allow", allow.to_owned()));
        }
        if let Some(value) = traceresponse {
            answer
                .headers
                .push((trace::RESPONSE_HEADER, value.to_owned()));
        }
        answer
    }
}

/// Where a verified event went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// SQS took the message: its message id.
    Queued(String),
    /// SQS did not; the envelope is in the spool bucket under this key, for the drainer
    /// to queue.
    Spooled(String),
}

/// The spool key of an event: `spool/{provider}/{body_sha256}`. One key per event (the
/// provider and the body's digest, as a FIFO queue's deduplication id): a sender's retry
/// of the same bytes while SQS is still down finds the key taken (412) and is answered
/// as spooled, without a second object.
pub fn spool_key(provider: &str, body_sha256: &[u8; 32]) -> String {
    format!("spool/{provider}/{}", hex::encode(body_sha256))
}

/// The statuses a write is retried on: 429, and every 5xx (SQS's and S3's own faults,
/// S3's `503 SlowDown`). SQS's throttling answers are HTTP 400s with a throttling code,
/// counted as 429 ([`sqs_failure`]).
pub fn retryable_statuses() -> Vec<u16> {
    std::iter::once(429).chain(500..=599).collect()
}

/// The edge's retry policy for its writes: at most 5 attempts, back-off 100 ms, 200 ms,
/// 400 ms, 800 ms (each ×0.5 to ×1.5 at random: jitter spreads the retries of a burst
/// that was throttled together), capped at 2 s; the request's budget bounds the whole.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        // SQS and S3 send no Retry-After; none is read.
        max_retry_after: Duration::from_secs(2),
        jitter: 0.5,
        retryable: retryable_statuses(),
    }
}

/// The error codes of a throttled request: SQS's `RequestThrottled` and
/// `ThrottlingException`, and the KMS throttles of an encrypted queue (`KmsThrottled`, in
/// the query protocol `KMS.ThrottlingException`), all HTTP 400
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html#API_SendMessage_Errors>,
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html>);
/// S3's `SlowDown` (503, <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>).
pub const THROTTLING_CODES: [&str; 6] = [
    "RequestThrottled",
    "ThrottlingException",
    "Throttling",
    "KmsThrottled",
    "KMS.ThrottlingException",
    "SlowDown",
];

/// True for a throttling error code, bare or with its JSON protocol's namespace
/// (`com.amazonaws.sqs#RequestThrottled`).
pub fn is_throttling(code: &str) -> bool {
    let bare = code.rsplit_once('#').map_or(code, |(_, c)| c);
    THROTTLING_CODES.contains(&bare)
}

/// How the retry policy sees an SQS error; `None` when no retry can help (the request
/// could not be signed, or the message is larger than the queue takes).
pub fn sqs_failure(e: &SqsError) -> Option<Failure<'static>> {
    match e {
        SqsError::Sign(_) | SqsError::TooLarge { .. } => None,
        SqsError::Refused { kind, .. } if is_throttling(kind) => Some(Failure::Status {
            status: 429,
            retry_after: None,
        }),
        SqsError::Refused { status, .. } => Some(Failure::Status {
            status: *status,
            retry_after: None,
        }),
        // No answer, or an answer that is not SendMessage's (a 2xx without a message id,
        // a body that arrived changed): the same bytes sent again.
        SqsError::Unreachable(_) | SqsError::BadResponse | SqsError::Md5Mismatch => {
            Some(Failure::Transport)
        }
    }
}

/// How the retry policy sees an S3 error; `None` when no retry can help.
pub fn s3_failure(e: &S3Error) -> Option<Failure<'static>> {
    match e {
        S3Error::Sign(_) => None,
        S3Error::Refused { code, .. } if is_throttling(code) => Some(Failure::Status {
            status: 429,
            retry_after: None,
        }),
        S3Error::Refused { status, .. } => Some(Failure::Status {
            status: *status,
            retry_after: None,
        }),
        S3Error::Unreachable(_) => Some(Failure::Transport),
    }
}

/// Runs `attempt` (given its timeout, milliseconds) until it succeeds, fails for a reason
/// `classify` says no retry fixes, or `cfg.retry` gives up: attempts spent, or the next
/// back-off would end past the budget (`cfg.retry_budget_ms` after `started_ms`). The
/// first attempt has `timeout_ms`; a retry at most what is left of the budget. Returns
/// the outcome and the number of attempts made.
async fn with_retries<I: Io, T, E>(
    io: &I,
    cfg: &EdgeConfig,
    started_ms: u64,
    timeout_ms: u32,
    classify: fn(&E) -> Option<Failure<'static>>,
    mut attempt: impl AsyncFnMut(u32) -> Result<T, E>,
) -> (Result<T, E>, u32) {
    let deadline = started_ms.saturating_add(u64::from(cfg.retry_budget_ms));
    let mut attempts = 0u32;
    let mut timeout = timeout_ms;
    loop {
        attempts += 1;
        let err = match attempt(timeout).await {
            Ok(value) => return (Ok(value), attempts),
            Err(e) => e,
        };
        let Some(failure) = classify(&err) else {
            return (Err(err), attempts);
        };
        let now = io.now_ms();
        let left = Duration::from_millis(deadline.saturating_sub(now));
        let now_secs = i64::try_from(now / 1000).unwrap_or(i64::MAX);
        let delay = match cfg
            .retry
            .decide(attempts, failure, now_secs, Some(left), &mut || io.random())
        {
            Decision::Retry(delay) => delay,
            Decision::GiveUp(_) => return (Err(err), attempts),
        };
        io.sleep(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
            .await;
        let left = deadline.saturating_sub(io.now_ms());
        timeout = timeout_ms.min(u32::try_from(left).unwrap_or(u32::MAX));
        if timeout == 0 {
            return (Err(err), attempts);
        }
    }
}

/// Sends `envelope` to the queue (signed at `now_ms`), retried as [`with_retries`] says;
/// SQS's message id once it took the message, and the attempts made.
async fn enqueue<I: Io>(
    io: &I,
    cfg: &EdgeConfig,
    envelope: &Envelope,
    now_ms: u64,
) -> (Result<String, SqsError>, u32) {
    match send_message(io, cfg, envelope, now_ms).await {
        Ok(sent) => sent,
        Err(e) => (Err(e), 0),
    }
}

/// [`enqueue`]'s work; `Err` if the message could not be built or signed (nothing sent).
async fn send_message<I: Io>(
    io: &I,
    cfg: &EdgeConfig,
    envelope: &Envelope,
    now_ms: u64,
) -> Result<(Result<String, SqsError>, u32), SqsError> {
    let unsigned = sqs::unsigned_send_message(&cfg.sqs, envelope, cfg.max_message)?;
    // The body crosses into the runtime once: WebCrypto hashes it and fetch sends it.
    let body = io.blob(unsigned.body.as_bytes());
    let (body_sha256, message_md5) = io.send_message_hashes(&unsigned, &body).await;
    let signed = sqs::sign_send_message(
        &cfg.sqs,
        cfg.sqs_signer.as_ref(),
        unsigned,
        &body_sha256,
        &message_md5,
        now_ms,
    )?;
    Ok(with_retries(
        io,
        cfg,
        now_ms,
        cfg.sqs_timeout_ms,
        sqs_failure,
        async |timeout| {
            let (status, text) = io
                .send("POST", &signed.url, &body, &signed.headers, timeout)
                .await
                .map_err(SqsError::Unreachable)?;
            sqs::parse_response(status, &text, &signed)
        },
    )
    .await)
}

/// Writes a claim-checked body (`blob`, its SHA-256 `body_sha256`) to `key` in `claim`'s
/// bucket, signed at `now_ms`, each attempt waiting up to `CLAIM_CHECK_TIMEOUT_MS` (a
/// large body takes long: 25 MiB in 30 s needs about 7 Mbit/s), retried as
/// [`with_retries`] says. The outcome and the attempts made.
async fn put_claim_check<I: Io>(
    io: &I,
    cfg: &EdgeConfig,
    claim: &ClaimCheck,
    key: &str,
    blob: &I::Blob,
    body_sha256: &[u8; 32],
    now_ms: u64,
) -> (Result<(), S3Error>, u32) {
    let signed = match s3::put_object(&cfg.sqs, claim, key, body_sha256, now_ms) {
        Ok(signed) => signed,
        Err(e) => return (Err(e), 0),
    };
    with_retries(
        io,
        cfg,
        now_ms,
        cfg.claim_check_timeout_ms,
        s3_failure,
        async |timeout| {
            let (status, text) = io
                .send("PUT", &signed.url, blob, &signed.headers, timeout)
                .await
                .map_err(S3Error::Unreachable)?;
            s3::check_put_response(status, &text)
        },
    )
    .await
}

/// A spool write's failures, for the retry policy: as any S3 write's, and S3's
/// `409 ConditionalRequestConflict` (a concurrent conditional write to the key), which S3
/// asks to retry (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>).
fn spool_failure(e: &S3Error) -> Option<Failure<'static>> {
    match e {
        S3Error::Refused { status: 409, .. } => Some(Failure::Transport),
        other => s3_failure(other),
    }
}

/// Writes `envelope` (of the event whose body's SHA-256 is `body_sha256`) to the spool,
/// create-only, retried within what is left of the budget after a first attempt of
/// `SPOOL_TIMEOUT_MS`. The key once S3 has the envelope (or had it already), and the
/// attempts made.
async fn spool<I: Io>(
    io: &I,
    cfg: &EdgeConfig,
    bucket: &ClaimCheck,
    envelope: &Envelope,
    body_sha256: &[u8; 32],
    now_ms: u64,
) -> (Result<String, S3Error>, u32) {
    let key = spool_key(&envelope.provider, body_sha256);
    let json = envelope.to_json();
    let blob = io.blob(json.as_bytes());
    let json_sha256 = io.sha256(json.as_bytes(), &blob).await;
    let signed = match s3::put_spooled(&cfg.sqs, bucket, &key, &json_sha256, now_ms) {
        Ok(signed) => signed,
        Err(e) => return (Err(e), 0),
    };
    let (outcome, attempts) = with_retries(
        io,
        cfg,
        now_ms,
        cfg.spool_timeout_ms,
        spool_failure,
        async |timeout| {
            let (status, text) = io
                .send("PUT", &signed.url, &blob, &signed.headers, timeout)
                .await
                .map_err(S3Error::Unreachable)?;
            s3::check_spool_response(status, &text)
        },
    )
    .await;
    (outcome.map(|_| key), attempts)
}

/// Answers a request: `log` holds its method and path and, on the webhook route, its
/// trace id; `trace` is, on the webhook route, its trace and that trace's `traceresponse`
/// header value (the envelope and the message attribute carry the trace id, the answers
/// the header). `started_ms` is when it arrived (Unix milliseconds): the envelope's time,
/// and where the retry budget starts. Fills `log` as it goes.
pub async fn handle<I: Io>(
    io: &I,
    started_ms: u64,
    trace: Option<(&RequestTrace, &str)>,
    log: &mut RequestLog,
) -> Result<Answer, Rejection> {
    let route = route(&log.method, &log.path);
    match route {
        Route::NotFound => return Err(handler::not_found()),
        Route::MethodNotAllowed(allow) => return Err(handler::method_not_allowed(allow)),
        Route::Health => return Ok(Answer::json(200, r#"{"ok":true}"#.to_owned())),
        Route::Webhook(_) | Route::Probe(_) => {}
    }
    let cfg = io.config().map_err(|e| {
        // The edge's own fault (a var, secret or binding missing or invalid): an error,
        // as is the request's 503 line that follows.
        io.log_error(
            &serde_json::json!({"msg": "config_error", "error": e, "trace_id": log.trace_id})
                .to_string(),
        );
        handler::misconfigured(10)
    })?;
    let content_length = io.header("content-length");
    handler::check_declared_length(content_length.as_deref(), cfg.max_body)?;
    // Only the headers the provider's scheme reads; an unknown provider is refused by
    // handler::prepare once the body is read, as for any other bad request.
    let provider = match route {
        Route::Webhook(p) => Some(p),
        Route::Probe(p) => p,
        _ => None,
    };
    let provider_cfg = handler::target(&cfg, provider).ok();
    let names = provider_cfg
        .map(|p| p.scheme.header_names())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = names
        .iter()
        .filter_map(|n| io.header(n).map(|v| ((*n).to_owned(), v)))
        .collect();
    let webhook = matches!(route, Route::Webhook(_));
    // The MAC starts with the read only if there is a signature to check it against.
    let signed = provider_cfg.filter(|p| {
        let header = p.scheme.signature_header();
        headers.iter().any(|(name, _)| name.as_str() == header)
    });
    let body = io
        .read_body(content_length.is_some(), cfg.max_body, signed, webhook)
        .await?;
    log.provider = provider.map(str::to_owned);
    let (target, pending) = handler::prepare(&cfg, provider, &headers, &body.bytes, started_ms)?;
    // A webhook's envelope carries the body's SHA-256: if the runtime did not compute it
    // with the read, it does now, while the signature is checked.
    let body_sha256 = match (webhook, body.sha256) {
        (false, _) => None,
        (true, Some(known)) => Some(Ok(known)),
        (true, None) => Some(Err(io.sha256(&body.bytes, &body.blob))),
    };
    let verified = io
        .verify(target, pending, &body.blob, body.first_mac)
        .await?;
    log.key_id = Some(verified.key_id.clone());
    log.key_slot = Some(verified.slot.as_str());
    let body_sha256 = match body_sha256 {
        // The probe: verified, nothing queued.
        None => {
            return Ok(Answer {
                status: 204,
                body: None,
                headers: vec![
                    ("x-hookvault-key", verified.key_id.clone()),
                    ("x-hookvault-key-slot", verified.slot.as_str().to_owned()),
                ],
            })
        }
        Some(Ok(known)) => known,
        Some(Err(computing)) => computing.await,
    };
    let content_type = io.header("content-type");
    let received = handler::received(
        target,
        &verified,
        &headers,
        content_type.as_deref(),
        started_ms,
    );
    log.scheme = Some(target.scheme.name());
    log.body_bytes = Some(body.bytes.len());
    let trace_id = trace.map(|(t, _)| t.trace_id.as_str());
    let (envelope, kept) = queue(
        io,
        &cfg,
        &received,
        &body,
        &body_sha256,
        trace_id,
        started_ms,
        log,
    )
    .await?;
    log.event_id = Some(envelope.event_id.clone());
    let accepted = match &kept {
        Kept::Queued(message_id) => {
            log.sqs_message_id = Some(message_id.clone());
            handler::accepted_body(&envelope.event_id, message_id)
        }
        Kept::Spooled(key) => {
            log.spooled = Some(key.clone());
            handler::spooled_body(&envelope.event_id)
        }
    };
    let mut answer = Answer::json(202, accepted);
    if let Some((_, value)) = trace {
        answer
            .headers
            .push((trace::RESPONSE_HEADER, value.to_owned()));
    }
    Ok(answer)
}

/// Queues a verified body: inline when its envelope fits in one message, else by claim
/// check (the body to S3 first, then the envelope that points at it). The envelope and the
/// message carry `trace_id` (the envelope's field, the `TraceId` attribute). If SQS has
/// not taken the message when the budget runs out (or refused it outright), the envelope
/// goes to the spool. Where the event went; 503 if S3 did not take a claim-checked body,
/// or if neither SQS nor the spool took the envelope.
#[allow(clippy::too_many_arguments)]
async fn queue<I: Io>(
    io: &I,
    cfg: &EdgeConfig,
    received: &Received<'_>,
    body: &Body<I::Blob>,
    body_sha256: &[u8; 32],
    trace_id: Option<&str>,
    now_ms: u64,
    log: &mut RequestLog,
) -> Result<(Envelope, Kept), Rejection> {
    let envelope_of = |claim_check: Option<S3Object>| Envelope {
        trace_id: trace_id.map(str::to_owned),
        ..Envelope::with_digest(received, &body.bytes, body_sha256, claim_check)
    };
    if !needs_claim_check(body.bytes.len(), cfg.max_message) {
        let envelope = envelope_of(None);
        let (sent, attempts) = enqueue(io, cfg, &envelope, now_ms).await;
        log.sqs_attempts = (attempts > 1).then_some(attempts);
        match sent {
            Ok(message_id) => return Ok((envelope, Kept::Queued(message_id))),
            // Checked before anything is sent: the headers made the envelope larger than
            // the reserve allows for. The claim check carries the body instead.
            Err(SqsError::TooLarge { .. }) if cfg.claim_check.is_some() => {}
            Err(e) => return spool_or_refuse(io, cfg, envelope, body_sha256, now_ms, log, e).await,
        }
    }
    let Some(claim) = &cfg.claim_check else {
        // The cap keeps such bodies out (config::largest_inline_body); only headers far
        // beyond the reserve get here.
        log.reason = Some(
            "the envelope does not fit in one message and CLAIM_CHECK_BUCKET is not set".into(),
        );
        return Err(handler::misconfigured(cfg.retry_after_secs));
    };
    let key = claim_check_key(&hex::encode(body_sha256));
    let (put, attempts) =
        put_claim_check(io, cfg, claim, &key, &body.blob, body_sha256, now_ms).await;
    log.s3_attempts = (attempts > 1).then_some(attempts);
    put.map_err(|e| {
        log.reason = Some(e.to_string());
        handler::claim_check_failure(&e, cfg.retry_after_secs)
    })?;
    let object = S3Object {
        bucket: claim.bucket.clone(),
        key,
    };
    log.claim_check = Some(object.key.clone());
    log.wasm_memory_bytes = io.memory_bytes();
    let envelope = envelope_of(Some(object));
    let (sent, attempts) = enqueue(io, cfg, &envelope, now_ms).await;
    log.sqs_attempts = (attempts > 1).then_some(attempts);
    match sent {
        Ok(message_id) => Ok((envelope, Kept::Queued(message_id))),
        Err(e) => spool_or_refuse(io, cfg, envelope, body_sha256, now_ms, log, e).await,
    }
}

/// SQS did not take `envelope` (`sqs_error`): it goes to the spool if there is one, else,
/// or if the spool does not take it either, 503 `queue_unavailable`. The log's reason is
/// SQS's error either way (and the spool's, when both failed).
async fn spool_or_refuse<I: Io>(
    io: &I,
    cfg: &EdgeConfig,
    envelope: Envelope,
    body_sha256: &[u8; 32],
    now_ms: u64,
    log: &mut RequestLog,
    sqs_error: SqsError,
) -> Result<(Envelope, Kept), Rejection> {
    log.reason = Some(sqs_error.to_string());
    let Some(bucket) = &cfg.spool else {
        return Err(handler::queue_failure(&sqs_error, cfg.retry_after_secs));
    };
    let (written, attempts) = spool(io, cfg, bucket, &envelope, body_sha256, now_ms).await;
    log.spool_attempts = (attempts > 1).then_some(attempts);
    match written {
        Ok(key) => Ok((envelope, Kept::Spooled(key))),
        Err(e) => {
            log.reason = Some(format!("{sqs_error}; the spool: {e}"));
            Err(handler::queue_failure(&sqs_error, cfg.retry_after_secs))
        }
    }
}

#[cfg(test)]
mod tests;
