//! Both provider error formats mapped to one error type.
//!
//! * Prediction API: HTTP 200 with the Prediction object, `status: "failed"` and a
//!   top-level `error_id` / `error_message` (or an HTTP error status with the same fields).
//! * Inference API: HTTP 4xx/5xx with a nested `{"error": {"code", "message", "status", …}}`.
//!
//! Every code of the seed's two tables is in [`CODES`] with its status, whether a retry
//! can help, and what to do about it.

use serde_json::Value;

/// Which of the provider's APIs answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `/v1/predictions`: errors at the top level of the Prediction object.
    Prediction,
    /// `/v1/chat/completions`, `/v1/embeddings`, …: errors nested under `error`.
    Inference,
}

/// What the provider documents about one error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The API that uses the code.
    pub api: Api,
    /// The code as sent (`error_id` or `error.code`).
    pub code: &'static str,
    /// The HTTP status the provider documents for it.
    pub status: u16,
    /// Whether retrying the same request can succeed.
    pub retryable: bool,
    /// The most retries worth making, when lower than the policy's own limit.
    pub max_retries: Option<u32>,
    /// What to do about it, for people.
    pub advice: &'static str,
}

const fn info(
    api: Api,
    code: &'static str,
    status: u16,
    retryable: bool,
    max_retries: Option<u32>,
    advice: &'static str,
) -> CodeInfo {
    CodeInfo {
        api,
        code,
        status,
        retryable,
        max_retries,
        advice,
    }
}

/// Every code of the seed's two tables.
pub const CODES: &[CodeInfo] = &[
    info(Api::Prediction, "UNAUTHORIZED", 401, false, None, "the API key is invalid or missing: check that x-api-key is set and not expired or rotated out"),
    info(Api::Prediction, "MODEL_NOT_FOUND", 404, false, None, "model_id does not exist: check the model catalog, the id may have changed"),
    info(Api::Prediction, "INSUFFICIENT_CREDITS", 402, false, None, "the account has run out of credits: top up in the Dashboard or enable auto-recharge"),
    info(Api::Prediction, "INVALID_INPUT", 422, false, None, "the inputs do not match the model's input_schema: see the provider's message for the failing field"),
    info(Api::Prediction, "RATE_LIMIT_EXCEEDED", 429, true, None, "too many requests: retried with back-off, honouring Retry-After"),
    info(Api::Prediction, "PREDICTION_FAILED", 500, true, Some(1), "the model failed at inference time: retried once; if it persists, contact support with the prediction id"),
    info(Api::Prediction, "TIMEOUT", 504, false, None, "the prediction exceeded its time limit: use webhooks for long-running (video, audio) jobs"),
    info(Api::Inference, "invalid_api_key", 401, false, None, "the API key is invalid, revoked or missing: check x-api-key"),
    info(Api::Inference, "insufficient_quota", 402, false, None, "the account has run out of token quota: top up in the Dashboard"),
    info(Api::Inference, "model_not_found", 404, false, None, "the requested model is not available: check the model name"),
    info(Api::Inference, "context_length_exceeded", 400, false, None, "prompt plus completion exceed the context window: shorten the messages or lower max_tokens"),
    info(Api::Inference, "invalid_request_error", 400, false, None, "the request body is malformed: see the provider's message and param"),
    info(Api::Inference, "rate_limit_exceeded", 429, true, None, "too many requests per minute or day: retried with back-off, honouring Retry-After"),
    info(Api::Inference, "server_error", 500, true, None, "provider infrastructure error: safe to retry"),
    info(Api::Inference, "service_unavailable", 503, true, None, "the model is temporarily offline: retried with back-off"),
];

/// HTTP statuses a retry can help with, whatever the body says.
pub const RETRYABLE_STATUSES: &[u16] = &[429, 500, 503];
/// HTTP statuses never retried.
pub const NON_RETRYABLE_STATUSES: &[u16] = &[400, 401, 402, 404, 422];

/// Looks a code up in [`CODES`].
pub fn code_info(api: Api, code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.api == api && c.code == code)
}

/// One error from either API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} (HTTP {status}): {message}; {advice}")]
pub struct ProviderError {
    /// Which API answered.
    pub api: Api,
    /// `error_id` or `error.code`; `HTTP_<status>` when the body names none.
    pub code: String,
    /// The documented status for the code, else the HTTP status received.
    pub status: u16,
    /// The provider's own message.
    pub message: String,
    /// What to do about it.
    pub advice: &'static str,
    /// Whether a retry can help.
    pub retryable: bool,
    /// The most retries worth making for this code, if limited.
    pub max_retries: Option<u32>,
    /// The prediction's id (Prediction API).
    pub prediction_id: Option<String>,
    /// The request id (Inference API).
    pub request_id: Option<String>,
    /// The offending parameter (Inference API).
    pub param: Option<String>,
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl ProviderError {
    /// The error an HTTP response carries, if any. A 2xx is an error only when it is a
    /// failed prediction (`"status": "failed"`): the provider's documented Prediction
    /// object carries an `error` member on every answer, succeeded ones too (`"error":
    /// "string"` in learn.skytells.ai, docs/api/v1/predictions/create), and a 2xx means the
    /// prediction exists, so nothing else in it may turn it into a refusal.
    pub fn from_response(http_status: u16, body: &[u8]) -> Option<Self> {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        if let Some(v) = &json {
            let failed = v.get("status").and_then(Value::as_str) == Some("failed");
            if (200..300).contains(&http_status) && !failed {
                return None;
            }
            if let Some(err) = v.get("error").filter(|e| e.is_object()) {
                return Some(Self::inference(http_status, err));
            }
            let failed = v.get("status").and_then(Value::as_str) == Some("failed");
            if failed || v.get("error_id").is_some_and(Value::is_string) {
                if let Some(e) = Self::prediction(http_status, v) {
                    return Some(e);
                }
            }
        }
        if (200..300).contains(&http_status) {
            return None;
        }
        Some(Self::bare(http_status))
    }

    /// The error in a Prediction object (`status: failed`, top-level `error_id`).
    pub fn prediction(http_status: u16, v: &Value) -> Option<Self> {
        let code = str_field(v, "error_id")?;
        let message = str_field(v, "error_message").unwrap_or_default();
        let mut e = Self::with_code(Api::Prediction, code, http_status, message);
        e.prediction_id = str_field(v, "id");
        Some(e)
    }

    /// The error in an Inference API `error` object.
    pub fn inference(http_status: u16, err: &Value) -> Self {
        let code = str_field(err, "code")
            .or_else(|| str_field(err, "error_id"))
            .unwrap_or_else(|| format!("HTTP_{http_status}"));
        let status = err
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(http_status);
        let message = str_field(err, "message").unwrap_or_default();
        let mut e = Self::with_code(Api::Inference, code, status, message);
        e.request_id = str_field(err, "request_id");
        e.param = str_field(err, "param");
        e
    }

    fn with_code(api: Api, code: String, http_status: u16, message: String) -> Self {
        match code_info(api, &code) {
            Some(info) => ProviderError {
                api,
                status: info.status,
                retryable: info.retryable,
                max_retries: info.max_retries,
                advice: info.advice,
                code,
                message,
                prediction_id: None,
                request_id: None,
                param: None,
            },
            None => {
                let mut e = Self::bare(http_status);
                e.api = api;
                e.code = code;
                e.message = message;
                e
            }
        }
    }

    fn bare(status: u16) -> Self {
        let retryable = RETRYABLE_STATUSES.contains(&status);
        ProviderError {
            api: Api::Prediction,
            code: format!("HTTP_{status}"),
            status,
            message: String::new(),
            advice: if retryable {
                "transient provider error: retried with back-off"
            } else if NON_RETRYABLE_STATUSES.contains(&status) {
                "the request was refused: fix it before sending it again"
            } else {
                "unexpected provider response"
            },
            retryable,
            max_retries: None,
            prediction_id: None,
            request_id: None,
            param: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_code_maps_with_its_status_and_retryability() {
        for info in CODES {
            let body = match info.api {
                Api::Prediction => format!(
                    r#"{{"id":"pred_1","status":"failed","error_id":"{}","error_message":"m","error":null}}"#,
                    info.code
                ),
                Api::Inference => format!(
                    r#"{{"error":{{"error_id":"{0}","type":"InferenceError","code":"{0}","message":"m","param":"messages","status":{1},"request_id":"req_1"}}}}"#,
                    info.code, info.status
                ),
            };
            let http = if info.api == Api::Prediction {
                200
            } else {
                info.status
            };
            let e = ProviderError::from_response(http, body.as_bytes()).unwrap();
            assert_eq!(
                (e.api, e.code.as_str(), e.status),
                (info.api, info.code, info.status)
            );
            assert_eq!(
                e.retryable,
                RETRYABLE_STATUSES.contains(&info.status),
                "{}",
                info.code
            );
            assert!(!NON_RETRYABLE_STATUSES.contains(&info.status) || !e.retryable);
            assert!(e.to_string().contains(info.advice));
        }
        assert_eq!(CODES.len(), 15);
    }

    #[test]
    fn success_is_not_an_error_and_unknown_bodies_fall_back_to_status() {
        assert_eq!(
            ProviderError::from_response(200, br#"{"id":"p","status":"succeeded"}"#),
            None
        );
        // A 2xx that is not a failed prediction is never an error, whatever `error` or
        // `error_id` it carries (the documented Prediction object has `"error": "string"`).
        for body in [
            &br#"{"id":"p","status":"starting","error":{"message":"none"}}"#[..],
            br#"{"id":"p","status":"succeeded","error":"string"}"#,
            br#"{"id":"p","status":"processing","error_id":""}"#,
            br#"{"data":{"id":"p","status":"starting"},"error":{"code":"x"}}"#,
        ] {
            assert_eq!(ProviderError::from_response(201, body), None, "{body:?}");
        }
        // A failed prediction's 200 is one.
        let e = ProviderError::from_response(
            200,
            br#"{"id":"p","status":"failed","error_id":"INSUFFICIENT_CREDITS","error_message":"top up"}"#,
        )
        .unwrap();
        assert_eq!(e.code, "INSUFFICIENT_CREDITS");
        let e = ProviderError::from_response(503, b"<html>busy</html>").unwrap();
        assert_eq!((e.code.as_str(), e.retryable), ("HTTP_503", true));
        let e = ProviderError::from_response(422, b"").unwrap();
        assert!(!e.retryable);
        let e =
            ProviderError::from_response(500, br#"{"error":{"code":"new_code","message":"x"}}"#)
                .unwrap();
        assert_eq!(
            (e.code.as_str(), e.status, e.retryable),
            ("new_code", 500, true)
        );
    }

    #[test]
    fn insufficient_credits_reads_helpfully() {
        let e = ProviderError::from_response(402, br#"{"id":"p","status":"failed","error_id":"INSUFFICIENT_CREDITS","error_message":"Your account has run out of credits."}"#).unwrap();
        assert_eq!(e.prediction_id.as_deref(), Some("p"));
        assert!(e.to_string().contains("top up"), "{e}");
    }
}
