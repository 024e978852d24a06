//! `POST /predictions`: `{model_id, inputs}` forwarded to the provider's
//! `POST /v1/predictions` with the API key, `webhook_url` set to the edge and
//! `webhook_events` to completed and failed.
//!
//! 429/500/503 are retried with the core's policy (honouring `Retry-After`, within the
//! Lambda's deadline; `PREDICTION_FAILED` once only); 400/401/402/404/422 never. A 401
//! rereads the key from Secrets Manager once (it may have just been rotated) and tries
//! again. Every attempt carries the same `Idempotency-Key` and ends by the deadline: a
//! fresh one per submission ([`fresh_provider_key`]), or, when the caller sent its own
//! `Idempotency-Key`, one derived from it ([`crate::idempotency`]), so the provider also
//! sees a retried submission under one key.

use std::time::Instant;

use hookvault_aws::http::{self, Answer};
use hookvault_core::provider_error::ProviderError;
use hookvault_core::retry::RetryPolicy;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::{Api, Reply};

/// The events the provider is asked to send.
pub const WEBHOOK_EVENTS: [&str; 2] = ["prediction.completed", "prediction.failed"];
/// Longest model id accepted.
pub const MAX_MODEL_ID_LEN: usize = 128;

/// What a caller sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The model.
    pub model_id: String,
    /// The model's inputs.
    pub inputs: serde_json::Map<String, serde_json::Value>,
}

/// Parses and checks a request body.
pub fn parse(body: &[u8]) -> Result<SubmitRequest, ApiError> {
    let req: SubmitRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            "invalid_request",
            format!(
                "the body must be JSON {{\"model_id\": string, \"inputs\": object}} ({} at line {}, column {})",
                match e.classify() {
                    serde_json::error::Category::Data => "wrong or missing field",
                    _ => "not JSON",
                },
                e.line(),
                e.column()
            ),
        )
    })?;
    let ok = !req.model_id.is_empty()
        && req.model_id.len() <= MAX_MODEL_ID_LEN
        && req
            .model_id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b':'));
    if !ok {
        return Err(ApiError::new(
            400,
            "invalid_model_id",
            format!("model_id must be 1 to {MAX_MODEL_ID_LEN} characters of A-Z a-z 0-9 - _ . / :"),
        ));
    }
    Ok(req)
}

/// A fresh idempotency key for the provider: `hv-` and a random (v4) UUID as 32 lowercase
/// hex digits, from the operating system's random source (`getrandom`). Unique, not
/// secret.
pub fn fresh_provider_key() -> String {
    format!("hv-{}", uuid::Uuid::new_v4().simple())
}

/// The provider API key from its secret's value.
fn api_key(value: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(value).ok()?;
    v.get("api_key")?.as_str().map(str::to_owned)
}

impl Api {
    /// Submits the checked request `req` with `provider_key` as the provider's
    /// `Idempotency-Key`; `Ok` is the answer to give: 201 with the provider's prediction
    /// and `Location: /predictions/{id}`.
    pub async fn submit(
        &self,
        req: &SubmitRequest,
        provider_key: &str,
        deadline: Option<Instant>,
    ) -> Result<Reply, ApiError> {
        let prediction = self.create(req, provider_key, deadline).await?;
        let location = prediction["id"]
            .as_str()
            .map(|i| ("location".to_owned(), format!("/predictions/{i}")));
        Ok(Reply {
            status: 201,
            headers: location.into_iter().collect(),
            body: prediction.to_string(),
        })
    }

    /// The provider's prediction for `req`.
    async fn create(
        &self,
        req: &SubmitRequest,
        provider_key: &str,
        deadline: Option<Instant>,
    ) -> Result<serde_json::Value, ApiError> {
        let payload = json!({
            "model_id": req.model_id,
            "inputs": req.inputs,
            "webhook_url": self.cfg.edge_webhook_url,
            "webhook_events": WEBHOOK_EVENTS,
        })
        .to_string();
        let url = format!("{}/v1/predictions", self.cfg.provider_api_url);
        // The same key on every attempt: a provider that honours it creates the prediction
        // once even when an answer is lost and the call retried.
        let mut answer = self
            .post_with_key(&url, &payload, provider_key, deadline, false)
            .await?;
        if answer.status == 401 {
            tracing::warn!(
                "the provider refused the API key: rereading it (it may have just been rotated)"
            );
            answer = self
                .post_with_key(&url, &payload, provider_key, deadline, true)
                .await?;
        }
        if let Some(e) = ProviderError::from_response(answer.status, &answer.body) {
            tracing::warn!(code = %e.code, status = answer.status, attempts = answer.attempts, model = %req.model_id, "the provider refused the prediction");
            return Err(ApiError::from_provider(
                &e,
                answer.attempts,
                answer.retry_after.clone(),
            ));
        }
        let prediction: serde_json::Value = answer
            .json()
            .filter(|v| v.get("id").and_then(|i| i.as_str()).is_some())
            .ok_or_else(|| {
                ApiError::new(
                    502,
                    "bad_provider_answer",
                    "the provider answered without a prediction id",
                )
            })?;
        if prediction["status"] == "failed" {
            // A failed prediction without a documented error id is still a failure.
            return Err(ApiError::new(
                502,
                "prediction_failed",
                format!(
                    "the provider reports prediction {} as failed without an error id",
                    prediction["id"]
                ),
            ));
        }
        tracing::info!(prediction = %prediction["id"], model = %req.model_id, attempts = answer.attempts, "prediction submitted");
        Ok(prediction)
    }

    async fn post_with_key(
        &self,
        url: &str,
        payload: &str,
        idempotency_key: &str,
        deadline: Option<Instant>,
        reread: bool,
    ) -> Result<Answer, ApiError> {
        let id = &self.cfg.api_key_secret_id;
        let secret = if reread {
            self.secrets.refresh(id).await
        } else {
            self.secrets.get(id).await
        }
        .map_err(|e| {
            tracing::error!(error = %e, "provider API key unavailable");
            ApiError::new(
                503,
                "api_key_unavailable",
                "the provider API key could not be read; retry later",
            )
        })?;
        let key = api_key(secret.expose()).ok_or_else(|| {
            tracing::error!(secret = %id, "the API key secret has no \"api_key\" field");
            ApiError::new(
                500,
                "api_key_invalid",
                "the provider API key secret is not {\"api_key\": …}",
            )
        })?;
        let cap = |a: &Answer| {
            ProviderError::from_response(a.status, &a.body)
                .and_then(|e| e.max_retries)
                .map(|m| m + 1)
        };
        let timeout = self.cfg.http_timeout;
        http::send_capped(
            &RetryPolicy::provider_api(),
            deadline,
            "provider: create prediction",
            || {
                // Each attempt ends by the deadline, so the caller gets our answer, not
                // Lambda's timeout.
                let left =
                    deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
                self.http
                    .post(url)
                    .timeout(timeout.min(left).max(std::time::Duration::from_millis(100)))
                    .header("x-api-key", &key)
                    .header("idempotency-key", idempotency_key)
                    .header("content-type", "application/json")
                    .body(payload.to_owned())
            },
            cap,
        )
        .await
        .map_err(|e| match e {
            http::HttpError::TooLarge { .. } => ApiError::new(
                502,
                "bad_provider_answer",
                "the provider's answer is larger than 1 MiB",
            ),
            http::HttpError::Unreachable { .. } => {
                tracing::error!(error = %e, "provider unreachable");
                ApiError::new(
                    503,
                    "provider_unreachable",
                    "the provider did not answer; retry later",
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        let ok = parse(br#"{"model_id":"stable-video-6s","inputs":{"prompt":"a lake"}}"#).unwrap();
        assert_eq!(ok.model_id, "stable-video-6s");
        for (body, code) in [
            (&br#"{"model_id":"m"}"#[..], "invalid_request"),
            (br#"{"model_id":"m","inputs":[]}"#, "invalid_request"),
            (
                br#"{"model_id":"m","inputs":{},"webhook_url":"http://evil"}"#,
                "invalid_request",
            ),
            (br#"not json"#, "invalid_request"),
            (br#"{"model_id":"","inputs":{}}"#, "invalid_model_id"),
            (br#"{"model_id":"a b","inputs":{}}"#, "invalid_model_id"),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (400, code),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            api_key(r#"{"kind":"provider-api-key","key_id":"k","api_key":"sk-1"}"#).as_deref(),
            Some("sk-1")
        );
        assert_eq!(api_key("sk-1"), None);
    }

    #[test]
    fn fresh_provider_keys_are_random_uuids() {
        let a = fresh_provider_key();
        let b = fresh_provider_key();
        assert_ne!(a, b);
        for k in [&a, &b] {
            let hex = k.strip_prefix("hv-").unwrap();
            assert_eq!(hex.len(), 32, "{k}");
            assert!(hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
            // Version 4, variant RFC 9562: the UUID's fixed bits.
            assert_eq!(&hex[12..13], "4", "{k}");
            assert!(matches!(&hex[16..17], "8" | "9" | "a" | "b"), "{k}");
        }
    }
}
