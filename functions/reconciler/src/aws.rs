//! The I/O of [`crate::io`] for real: the provider's API over HTTP ([`HttpProvider`]), the
//! archive bucket through the S3 SDK ([`S3Archive`]), the two queues through the SQS SDK
//! ([`SqsQueues`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault_aws::http::{self, Answer};
use hookvault_aws::secrets::SecretCache;
use hookvault_core::archive;
use hookvault_core::event::WebhookEvent;
use hookvault_core::reconcile::{list_page_query, provider_api_key, Check, CheckChain, ListPage};
use hookvault_core::records::{IndexEntry, StalledRecord};
use hookvault_core::retry::RetryPolicy;
use hookvault_core::state::StateRecord;

use crate::io::{Archive, Fetched, IoError, ListAnswer, Provider, Queues};
use crate::reconcile::now_ms;

/// Largest `state.json` read, bytes (a record is a few hundred).
const MAX_STATE_BYTES: i64 = 64 * 1024;

/// The provider's API, with the key from Secrets Manager.
#[derive(Debug, Clone)]
pub struct HttpProvider {
    /// The HTTP client (no redirects, `HTTP_TIMEOUT_MS` per attempt).
    pub http: reqwest::Client,
    /// The key's cache.
    pub secrets: Arc<SecretCache>,
    /// `API_KEY_SECRET_ID`.
    pub secret_id: String,
    /// `PROVIDER_API_URL`, without a trailing `/`.
    pub base_url: String,
    /// `HTTP_TIMEOUT_MS`: the retries of one call stop after twice this.
    pub timeout: Duration,
    /// `MAX_ANSWER_BYTES`: the largest answer read.
    pub max_answer_bytes: u64,
}

/// Why a call got no answer to read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CallError {
    /// The answer is larger than `MAX_ANSWER_BYTES` (the cap).
    TooLarge(u64),
    /// No answer (the key unreadable, the network, the retries spent), and why.
    Other(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::TooLarge(max) => write!(
                f,
                "the answer is larger than {max} bytes (MAX_ANSWER_BYTES)"
            ),
            CallError::Other(reason) => f.write_str(reason),
        }
    }
}

/// What a fetch of prediction `id` at `url` answered, read ([`Fetched`]): a 2xx must be a
/// prediction (bare or wrapped in `data`) with that very id.
pub fn classify(id: &str, url: &str, answer: &Answer, fetched_at_ms: i64) -> Fetched {
    match answer.status {
        200..=299 => match WebhookEvent::parse(&answer.body) {
            Ok(e) if e.prediction.id == id => Fetched::Prediction {
                status: e.prediction.status,
                body: answer.body.clone(),
                url: url.to_owned(),
                request_id: answer
                    .header("x-request-id")
                    .or_else(|| answer.header("request-id"))
                    .map(str::to_owned),
                fetched_at_ms,
            },
            Ok(e) => Fetched::Transient(format!(
                "HTTP {}: the answer names another prediction ({:?})",
                answer.status,
                e.prediction.id.chars().take(64).collect::<String>()
            )),
            Err(e) => Fetched::Transient(format!("HTTP {}: {e}", answer.status)),
        },
        404 => Fetched::NotFound,
        401 | 403 => Fetched::Unauthorized(answer.status),
        429 | 500..=599 => Fetched::Transient(format!("HTTP {}", answer.status)),
        other => Fetched::Refused(other),
    }
}

impl HttpProvider {
    /// `GET url` with the key (read again from Secrets Manager when `reread`), retried as
    /// the api retries (`RetryPolicy::provider_api`: 429/5xx and no answer, with
    /// `Retry-After`) for up to twice the timeout.
    async fn call(&self, url: &str, reread: bool) -> Result<Answer, CallError> {
        let secret = if reread {
            self.secrets.refresh(&self.secret_id).await
        } else {
            self.secrets.get(&self.secret_id).await
        }
        .map_err(|e| {
            CallError::Other(format!(
                "the API key secret {} could not be read: {e}",
                self.secret_id
            ))
        })?;
        let key = provider_api_key(secret.expose()).ok_or_else(|| {
            CallError::Other(format!(
                "the API key secret {} has no \"api_key\" field",
                self.secret_id
            ))
        })?;
        let deadline = Some(Instant::now() + self.timeout.saturating_mul(2));
        let max_body = usize::try_from(self.max_answer_bytes).unwrap_or(usize::MAX);
        http::send_large(
            &RetryPolicy::provider_api(),
            deadline,
            "provider: get prediction",
            max_body,
            || {
                self.http
                    .get(url)
                    .header("x-api-key", &key)
                    .header("accept", "application/json")
            },
        )
        .await
        .map_err(|e| match e {
            http::HttpError::TooLarge { .. } => CallError::TooLarge(self.max_answer_bytes),
            other => CallError::Other(other.to_string()),
        })
    }

    /// [`HttpProvider::call`], again with the key read anew after a 401 or 403 (it may
    /// have just been rotated).
    async fn call_rereading(&self, url: &str) -> Result<Answer, CallError> {
        let answer = self.call(url, false).await?;
        if matches!(answer.status, 401 | 403) {
            tracing::warn!(
                secret = %self.secret_id,
                "the provider refused the API key: reading it again (it may have just been rotated)"
            );
            return self.call(url, true).await;
        }
        Ok(answer)
    }
}

impl Provider for HttpProvider {
    async fn get(&self, id: &str) -> Fetched {
        // `id` passed archive::check_id ([A-Za-z0-9_.-], not `.`/`..`): a path segment.
        let url = format!("{}/v1/predictions/{id}", self.base_url);
        match self.call_rereading(&url).await {
            Ok(answer) => classify(id, &url, &answer, now_ms()),
            Err(CallError::TooLarge(max)) => Fetched::TooLarge(max),
            Err(e) => Fetched::Transient(e.to_string()),
        }
    }

    async fn list(&self, page: u32, per_page: u32, from: &str, to: &str) -> ListAnswer {
        // Every value is digits, `-`, `:`, `T` or `Z`: nothing to escape in a query.
        let query: Vec<String> = list_page_query(page, per_page, from, to)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let url = format!("{}/v1/predictions?{}", self.base_url, query.join("&"));
        let answer = self.call_rereading(&url).await.map_err(|e| e.to_string())?;
        if !answer.is_success() {
            return Err(format!("HTTP {}", answer.status));
        }
        ListPage::parse(&answer.body)
            .ok_or_else(|| "the answer is neither {\"data\": [...]} nor a list".to_owned())
    }
}

/// The archive bucket through the SDK.
#[derive(Debug, Clone)]
pub struct S3Archive {
    /// The client.
    pub client: aws_sdk_s3::Client,
    /// `ARCHIVE_BUCKET`.
    pub bucket: String,
}

fn s3_error<E, R>(op: &'static str) -> impl Fn(aws_sdk_s3::error::SdkError<E, R>) -> IoError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    move |e| IoError {
        op,
        reason: hookvault_aws::sdk_error::short(&e),
    }
}

impl S3Archive {
    /// True when `key` exists (`HeadObject`; 404 is false).
    async fn exists(&self, key: &str) -> Result<bool, IoError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(s3_error("S3 HeadObject")(e)),
        }
    }

    /// A small JSON record at `key`, parsed, with its ETag; `None` when absent, the
    /// record unreadable or larger than [`MAX_STATE_BYTES`].
    async fn record<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        op: &'static str,
    ) -> Result<Option<(T, String)>, IoError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(s3_error(op)(e)),
        };
        if out.content_length().unwrap_or(0) > MAX_STATE_BYTES {
            return Ok(None);
        }
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out.body.collect().await.map_err(|e| IoError {
            op,
            reason: e.to_string(),
        })?;
        Ok(serde_json::from_slice(&bytes.into_bytes())
            .ok()
            .map(|r| (r, etag)))
    }

    /// `PutObject` of `body` at `key`, with no condition, create-only (`If-None-Match: *`)
    /// or over an ETag (`If-Match`): false when the condition did not hold (412, or 409
    /// for a racing write).
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Condition<'_>,
    ) -> Result<bool, IoError> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into());
        let put = match condition {
            Condition::None => put,
            Condition::Absent => put.if_none_match("*"),
            Condition::Matches(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if !matches!(condition, Condition::None)
                    && e.raw_response()
                        .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Ok(false)
            }
            Err(e) => Err(IoError {
                op: "S3 PutObject",
                reason: format!("{key}: {}", hookvault_aws::sdk_error::short(&e)),
            }),
        }
    }
}

/// A `PutObject`'s condition (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>).
#[derive(Debug, Clone, Copy)]
enum Condition<'a> {
    /// None.
    None,
    /// `If-None-Match: *`: only if there is no such key.
    Absent,
    /// `If-Match: {etag}`: only over that version.
    Matches(&'a str),
}

fn key_error(e: archive::LayoutError) -> IoError {
    IoError {
        op: "archive key",
        reason: e.to_string(),
    }
}

impl Archive for S3Archive {
    async fn terminal_known(&self, id: &str) -> Result<bool, IoError> {
        let key = |k: Result<String, archive::LayoutError>| {
            k.map_err(|e| IoError {
                op: "archive key",
                reason: e.to_string(),
            })
        };
        let state: Option<(StateRecord, String)> = self
            .record(&key(archive::state_key(id))?, "S3 GetObject (state)")
            .await?;
        if let Some((state, _)) = state {
            if state.terminal {
                return Ok(true);
            }
        }
        // A prediction archived before state.json existed.
        Ok(self.exists(&key(archive::manifest_key(id))?).await?
            || self.exists(&key(archive::failure_key(id))?).await?)
    }

    async fn put_claim_check(&self, key: &str, body: Vec<u8>) -> Result<(), IoError> {
        self.put(key, body, "application/octet-stream", Condition::None)
            .await
            .map(|_| ())
    }

    async fn write_stalled(
        &self,
        record: &StalledRecord,
        entry: &IndexEntry,
    ) -> Result<bool, IoError> {
        let key = archive::stalled_key(&record.prediction_id).map_err(key_error)?;
        let body = serde_json::to_vec(record).unwrap_or_default();
        if !self
            .put(&key, body, "application/json", Condition::Absent)
            .await?
        {
            return Ok(false);
        }
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let keys = [
            archive::index_log_key(
                entry.received_at_ms,
                &entry.provider,
                entry.outcome,
                &entry.body_sha256,
            ),
            archive::index_id_key(&entry.event_id, &entry.provider, &entry.body_sha256),
            archive::index_prediction_key(
                &record.prediction_id,
                &entry.provider,
                &entry.body_sha256,
            ),
        ];
        for k in keys {
            self.put(&k, line.clone(), "application/x-ndjson", Condition::None)
                .await?;
        }
        Ok(true)
    }

    async fn read_chain(&self, id: &str) -> Result<Option<(CheckChain, String)>, IoError> {
        let key = archive::check_chain_key(id).map_err(key_error)?;
        self.record(&key, "S3 GetObject (check chain)").await
    }

    async fn write_chain(
        &self,
        id: &str,
        chain: &CheckChain,
        etag: Option<&str>,
    ) -> Result<bool, IoError> {
        let key = archive::check_chain_key(id).map_err(key_error)?;
        let body = serde_json::to_vec(chain).unwrap_or_default();
        let condition = etag.map_or(Condition::Absent, Condition::Matches);
        self.put(&key, body, "application/json", condition).await
    }
}

/// The events queue and the check queue through the SDK.
#[derive(Debug, Clone)]
pub struct SqsQueues {
    /// The client.
    pub client: aws_sdk_sqs::Client,
    /// `QUEUE_URL`.
    pub queue_url: String,
    /// `CHECK_QUEUE_URL`.
    pub check_queue_url: String,
}

impl Queues for SqsQueues {
    async fn send_event(
        &self,
        body: String,
        fifo: Option<(String, String)>,
    ) -> Result<(), IoError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body);
        if let Some((group, dedup)) = fifo {
            send = send.message_group_id(group).message_deduplication_id(dedup);
        }
        send.send().await.map(|_| ()).map_err(|e| IoError {
            op: "SQS SendMessage (event)",
            reason: hookvault_aws::sdk_error::short(&e),
        })
    }

    async fn send_check(&self, check: &Check, delay_secs: u64) -> Result<(), IoError> {
        self.client
            .send_message()
            .queue_url(&self.check_queue_url)
            .message_body(check.to_json())
            .delay_seconds(i32::try_from(delay_secs).unwrap_or(900))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| IoError {
                op: "SQS SendMessage (check)",
                reason: hookvault_aws::sdk_error::short(&e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, request_id: Option<&str>) -> Answer {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(r) = request_id {
            if let Ok(v) = reqwest::header::HeaderValue::from_str(r) {
                headers.insert("x-request-id", v);
            }
        }
        Answer {
            status,
            retry_after: None,
            headers,
            body: body.as_bytes().to_vec(),
            attempts: 1,
        }
    }

    #[test]
    fn answers_are_read_by_status_and_a_2xx_must_be_this_prediction() {
        let url = "https://api/v1/predictions/p1";
        let body = r#"{"id":"p1","status":"succeeded","output":"https://cdn/x.png"}"#;
        assert_eq!(
            classify("p1", url, &answer(200, body, Some("req_9")), 5),
            Fetched::Prediction {
                status: hookvault_core::event::PredictionStatus::Succeeded,
                body: body.as_bytes().to_vec(),
                url: url.into(),
                request_id: Some("req_9".into()),
                fetched_at_ms: 5,
            }
        );
        // Wrapped in `data`, as the provider's envelope may be.
        let wrapped = r#"{"data":{"id":"p1","status":"processing"}}"#;
        assert!(matches!(
            classify("p1", url, &answer(200, wrapped, None), 5),
            Fetched::Prediction {
                request_id: None,
                ..
            }
        ));
        assert!(matches!(
            classify(
                "p1",
                url,
                &answer(200, r#"{"id":"p2","status":"succeeded"}"#, None),
                5
            ),
            Fetched::Transient(_)
        ));
        assert!(matches!(
            classify("p1", url, &answer(200, "<html>", None), 5),
            Fetched::Transient(_)
        ));
        let not_found =
            r#"{"status":false,"error":{"http_status":404,"error_id":"PREDICTION_NOT_FOUND"}}"#;
        assert_eq!(
            classify("p1", url, &answer(404, not_found, None), 5),
            Fetched::NotFound
        );
        assert_eq!(
            classify("p1", url, &answer(401, "", None), 5),
            Fetched::Unauthorized(401)
        );
        assert_eq!(
            classify("p1", url, &answer(403, "", None), 5),
            Fetched::Unauthorized(403)
        );
        for s in [429, 500, 502, 503] {
            assert_eq!(
                classify("p1", url, &answer(s, "", None), 5),
                Fetched::Transient(format!("HTTP {s}"))
            );
        }
        assert_eq!(
            classify("p1", url, &answer(400, "", None), 5),
            Fetched::Refused(400)
        );
    }
}
