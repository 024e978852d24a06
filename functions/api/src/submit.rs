//! `POST /predictions`: the caller's `{model, input}` (or `{model_id, inputs}`) forwarded
//! to the provider in the dialect `PROVIDER_DIALECT` names ([`crate::dialect`]), with the
//! API key and the edge as the webhook: by default the provider's current API reference,
//! `POST /v1/predictions` with `{model, input, webhook: {url, events}}`.
//!
//! 429/500/503 are retried with the core's policy (honouring `Retry-After`, within the
//! Lambda's deadline; `PREDICTION_FAILED` once only); 400/401/402/404/422 never. A 401
//! rereads the key from Secrets Manager once (it may have just been rotated) and tries
//! again. Every attempt carries the same `Idempotency-Key` and ends by the deadline: a
//! fresh one per submission ([`fresh_provider_key`]), or, when the caller sent its own
//! `Idempotency-Key`, one derived from it ([`crate::idempotency`]), so the provider also
//! sees a retried submission under one key.
//!
//! The provider's answer is read leniently ([`accepted`]): only `id` and `status` matter,
//! and it is passed on unchanged.

use std::time::Instant;

use hookvault_aws::http::{self, Answer};
use hookvault_core::provider_error::ProviderError;
use hookvault_core::retry::RetryPolicy;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::dialect::provider_request;
use crate::error::ApiError;
use crate::idempotency::store::S3Store;
use crate::ledger::{self, Submitter};
use crate::{Api, Reply};

/// Longest model id accepted.
pub const MAX_MODEL_ID_LEN: usize = 128;

/// What a caller sends, checked: `{model, input}` or `{model_id, inputs}`, whichever
/// names it used.
#[derive(Debug)]
pub struct SubmitRequest {
    /// The model.
    pub model_id: String,
    /// The model's inputs.
    pub inputs: serde_json::Map<String, Value>,
}

/// The body as sent, each field `Some` when present (`null` included), so that a field
/// sent twice under its two names is seen.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default, deserialize_with = "present")]
    model: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    model_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    input: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    inputs: Option<Value>,
}

/// A present field, `null` included (plain `Option` reads `null` as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "invalid_request", message)
}

/// One of a pair of names for the same field: `(name, value)` of the one sent; a 400
/// naming the problem when both or neither were sent.
fn one_of(
    (a, va): (&'static str, Option<Value>),
    (b, vb): (&'static str, Option<Value>),
    what: &str,
) -> Result<(&'static str, Value), ApiError> {
    match (va, vb) {
        (Some(v), None) => Ok((a, v)),
        (None, Some(v)) => Ok((b, v)),
        (Some(_), Some(_)) => Err(invalid(format!(
            "the body has both \"{a}\" and \"{b}\": send {what} once, as \"{a}\" (or \"{b}\")"
        ))),
        (None, None) => Err(invalid(format!(
            "the body has no \"{a}\" (or \"{b}\"): {what} is required"
        ))),
    }
}

/// Parses and checks a request body: `{"model": string, "input": object}`, or the same
/// as `{"model_id", "inputs"}`; each of the two once, under either of its names; no other
/// field.
pub fn parse(body: &[u8]) -> Result<SubmitRequest, ApiError> {
    let raw: RawRequest = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the body must be JSON {{\"model\": string, \"input\": object}} (or {{\"model_id\", \"inputs\"}}) and nothing else ({} at line {}, column {})",
            match e.classify() {
                serde_json::error::Category::Data => "an unknown or repeated field",
                _ => "not JSON",
            },
            e.line(),
            e.column()
        ))
    })?;
    let (model_name, model) = one_of(
        ("model", raw.model),
        ("model_id", raw.model_id),
        "the model's id",
    )?;
    let (input_name, input) = one_of(
        ("input", raw.input),
        ("inputs", raw.inputs),
        "the model's input (an object)",
    )?;
    let Value::String(model_id) = model else {
        return Err(invalid(format!("\"{model_name}\" must be a string")));
    };
    let Value::Object(inputs) = input else {
        return Err(invalid(format!(
            "\"{input_name}\" must be an object of the model's inputs"
        )));
    };
    let ok = !model_id.is_empty()
        && model_id.len() <= MAX_MODEL_ID_LEN
        && model_id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b':'));
    if !ok {
        return Err(ApiError::new(
            400,
            "invalid_model_id",
            format!(
                "{model_name} must be 1 to {MAX_MODEL_ID_LEN} characters of A-Z a-z 0-9 - _ . / :"
            ),
        ));
    }
    Ok(SubmitRequest { model_id, inputs })
}

/// What the api needs from the provider's 2xx answer: the prediction's `id` and its
/// `status` (when it is a string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The prediction id.
    pub id: String,
    /// Its status, if the answer has one as a string.
    pub status: Option<String>,
}

/// Reads a 2xx answer leniently: a JSON object with a string `id` is a prediction,
/// whatever else it holds. `model` may be an object (`{"name", "type"}`, as in the
/// provider's Prediction schema, <https://docs.skytells.ai/prediction>) or a string (as in
/// the reference's examples, <https://learn.skytells.ai/docs/api/v1/predictions/create>);
/// neither it nor any other field is read.
pub fn accepted(answer: &Value) -> Option<Accepted> {
    let id = answer.get("id")?.as_str()?.to_owned();
    let status = answer
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Accepted { id, status })
}

/// A fresh idempotency key for the provider: `hv-` and a random (v4) UUID as 32 lowercase
/// hex digits, from the operating system's random source (`getrandom`). Unique, not
/// secret.
pub fn fresh_provider_key() -> String {
    format!("hv-{}", uuid::Uuid::new_v4().simple())
}

/// The provider API key from its secret's value.
fn api_key(value: &str) -> Option<String> {
    hookvault_core::reconcile::provider_api_key(value)
}

impl Api {
    /// Submits the checked request `req` with `provider_key` as the provider's
    /// `Idempotency-Key`; `Ok` is the answer to give: 201 with the provider's prediction
    /// and `Location: /predictions/{id}`. Before answering, the prediction is recorded in
    /// the ledger and its first check scheduled ([`crate::ledger`], for `who`).
    pub async fn submit(
        &self,
        req: &SubmitRequest,
        provider_key: &str,
        who: &Submitter<'_>,
        deadline: Option<Instant>,
    ) -> Result<Reply, ApiError> {
        let prediction = self.create(req, provider_key, deadline).await?;
        if let Some(id) = prediction["id"].as_str() {
            // One reading of the clock for both: the check's submitted_at_ms is the
            // ledger's submitted_at, in milliseconds.
            let now_secs = hookvault_core::time::unix_now();
            let now_ms = now_secs.saturating_mul(1000);
            let entry = ledger::submission(&self.cfg.provider(), id, &req.model_id, now_secs, who);
            let store = S3Store {
                s3: &self.s3,
                bucket: &self.cfg.bucket,
            };
            ledger::after_submit(
                &store,
                self.checks.as_ref(),
                &entry,
                now_ms,
                self.cfg.check_first_delay_secs,
            )
            .await;
        }
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
    ) -> Result<Value, ApiError> {
        let (path, body) = provider_request(
            self.cfg.provider_dialect,
            &req.model_id,
            &req.inputs,
            &self.cfg.edge_webhook_url,
        );
        let payload = body.to_string();
        let url = format!("{}{path}", self.cfg.provider_api_url);
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
        let prediction: Value = answer.json().unwrap_or_default();
        let Some(found) = accepted(&prediction) else {
            return Err(ApiError::new(
                502,
                "bad_provider_answer",
                "the provider answered without a prediction id",
            ));
        };
        if found.status.as_deref() == Some("failed") {
            // A failed prediction without a documented error id is still a failure.
            return Err(ApiError::new(
                502,
                "prediction_failed",
                format!(
                    "the provider reports prediction {:?} as failed without an error id",
                    found.id
                ),
            ));
        }
        tracing::info!(prediction = %found.id, model = %req.model_id, dialect = %self.cfg.provider_dialect, attempts = answer.attempts, "prediction submitted");
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
            (
                br#"{"model":"m","input":{},"webhook":"http://evil"}"#,
                "invalid_request",
            ),
            (
                br#"{"model_id":"m","model_id":"n","inputs":{}}"#,
                "invalid_request",
            ),
            (br#"not json"#, "invalid_request"),
            (br#"[]"#, "invalid_request"),
            (br#"{"model_id":"","inputs":{}}"#, "invalid_model_id"),
            (br#"{"model_id":"a b","inputs":{}}"#, "invalid_model_id"),
            (br#"{"model":"a b","input":{}}"#, "invalid_model_id"),
            (br#"{"model":"","input":{}}"#, "invalid_model_id"),
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
    fn both_the_reference_names_and_the_course_names_are_accepted() {
        for body in [
            &br#"{"model":"truefusion","input":{"prompt":"a lake"}}"#[..],
            br#"{"model_id":"truefusion","inputs":{"prompt":"a lake"}}"#,
            // Each of the two under either of its names.
            br#"{"model":"truefusion","inputs":{"prompt":"a lake"}}"#,
            br#"{"input":{"prompt":"a lake"},"model_id":"truefusion"}"#,
        ] {
            let r = parse(body).unwrap();
            assert_eq!(
                r.model_id,
                "truefusion",
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(r.inputs["prompt"], "a lake");
        }
    }

    #[test]
    fn malformed_mixes_are_refused_with_a_message_naming_the_problem() {
        for (body, message) in [
            (
                &br#"{"model":"a","model_id":"a","input":{}}"#[..],
                r#"the body has both "model" and "model_id": send the model's id once, as "model" (or "model_id")"#,
            ),
            (
                br#"{"model":"a","input":{},"inputs":{}}"#,
                r#"the body has both "input" and "inputs": send the model's input (an object) once, as "input" (or "inputs")"#,
            ),
            (
                br#"{"input":{}}"#,
                r#"the body has no "model" (or "model_id"): the model's id is required"#,
            ),
            (
                br#"{"model":"a"}"#,
                r#"the body has no "input" (or "inputs"): the model's input (an object) is required"#,
            ),
            // `null` counts as sent: it is not a way to send both.
            (
                br#"{"model":"a","model_id":null,"input":{}}"#,
                r#"the body has both "model" and "model_id": send the model's id once, as "model" (or "model_id")"#,
            ),
            (br#"{"model":7,"input":{}}"#, r#""model" must be a string"#),
            (
                br#"{"model_id":"a","inputs":"x"}"#,
                r#""inputs" must be an object of the model's inputs"#,
            ),
            (
                br#"{"model":"a","input":null}"#,
                r#""input" must be an object of the model's inputs"#,
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str(), e.message.as_str()),
                (400, "invalid_request", message),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let e = parse(br#"{"model":"a b","input":{}}"#).unwrap_err();
        assert!(
            e.message.starts_with("model must be 1 to 128"),
            "{}",
            e.message
        );
        let e = parse(br#"{"model":"a","input":{},"extra":1}"#).unwrap_err();
        assert!(
            e.message.contains("an unknown or repeated field"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_provider_answer_is_read_leniently() {
        for answer in [
            // The Prediction schema: model as an object.
            serde_json::json!({"id": "p1", "status": "starting", "model": {"name": "truefusion", "type": "image"},
                "input": {"prompt": "x"}, "output": null, "created_at": "2026-03-07T12:00:00Z",
                "webhook": {"url": "https://h", "events": []}, "metrics": {}, "urls": {"get": "https://g"}}),
            // The reference's example: model as a string, output as a string.
            serde_json::json!({"id": "p1", "status": "starting", "model": "truefusion", "output": "https://cdn/x.png", "error": "string"}),
            // Fields of any shape.
            serde_json::json!({"id": "p1", "status": "starting", "model": 7, "input": [1], "created_at": 0, "webhook": "https://h"}),
        ] {
            assert_eq!(
                accepted(&answer),
                Some(Accepted {
                    id: "p1".into(),
                    status: Some("starting".into())
                }),
                "{answer}"
            );
        }
        assert_eq!(
            accepted(&serde_json::json!({"id": "p1", "status": {"code": 1}})),
            Some(Accepted {
                id: "p1".into(),
                status: None
            })
        );
        for answer in [
            serde_json::json!({"status": "starting"}),
            serde_json::json!({"id": 1}),
            serde_json::json!([{"id": "p1"}]),
            serde_json::json!("p1"),
        ] {
            assert_eq!(accepted(&answer), None, "{answer}");
        }
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
