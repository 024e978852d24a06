//! The api's error answer: `{"error": code, "message": …}` with a status, one shape for
//! our own errors and for both provider error formats.

use hookvault_core::provider_error::ProviderError;
use serde_json::json;

/// An error answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Machine-readable code.
    pub code: String,
    /// For people: what happened and what to do.
    pub message: String,
    /// `Retry-After` to send, if any.
    pub retry_after: Option<String>,
    /// More JSON fields (`provider`, `attempts`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    /// An error of our own.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            retry_after: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The provider's error, as the caller should see it. Its documented status is kept
    /// for the caller's own mistakes (400, 402, 404, 422) and for 429/503/504; a refused
    /// API key or a provider failure is ours to fix, so the caller gets 502.
    pub fn from_provider(e: &ProviderError, attempts: u32, retry_after: Option<String>) -> Self {
        let status = match e.status {
            400 | 402 | 404 | 409 | 413 | 422 | 429 | 503 | 504 => e.status,
            _ => 502,
        };
        let message = if e.message.is_empty() {
            e.advice.to_owned()
        } else {
            format!("{} (the provider said: {})", e.advice, e.message)
        };
        let mut extra = serde_json::Map::new();
        extra.insert(
            "provider".into(),
            json!({
                "api": e.api,
                "code": e.code,
                "status": e.status,
                "retryable": e.retryable,
                "prediction_id": e.prediction_id,
                "request_id": e.request_id,
                "param": e.param,
            }),
        );
        extra.insert("attempts".into(), attempts.into());
        ApiError {
            status,
            code: e.code.clone(),
            message,
            retry_after: retry_after.filter(|_| matches!(status, 429 | 503)),
            extra,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let mut v = serde_json::Map::new();
        v.insert("error".into(), self.code.clone().into());
        v.insert("message".into(), self.message.clone().into());
        v.extend(self.extra.clone());
        serde_json::Value::Object(v).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookvault_core::provider_error::CODES;

    #[test]
    fn every_documented_code_maps_to_a_status_and_advice() {
        for c in CODES {
            let body = match c.api {
                hookvault_core::provider_error::Api::Prediction => {
                    json!({"id": "p1", "status": "failed", "error_id": c.code, "error_message": "boom"})
                }
                hookvault_core::provider_error::Api::Inference => {
                    json!({"error": {"code": c.code, "message": "boom", "status": c.status}})
                }
            };
            let e = ProviderError::from_response(c.status, body.to_string().as_bytes()).unwrap();
            let a = ApiError::from_provider(&e, 1, Some("3".into()));
            assert_eq!(a.code, c.code);
            assert!(
                a.message.starts_with(c.advice) && a.message.contains("boom"),
                "{}",
                a.message
            );
            match c.status {
                401 | 500 => assert_eq!(a.status, 502, "{}", c.code),
                s => assert_eq!(a.status, s, "{}", c.code),
            }
            assert_eq!(
                a.retry_after.is_some(),
                matches!(c.status, 429 | 503),
                "{}",
                c.code
            );
        }
        let credits = ProviderError::from_response(402, br#"{"status":"failed","error_id":"INSUFFICIENT_CREDITS","error_message":"no credits"}"#).unwrap();
        assert!(ApiError::from_provider(&credits, 1, None)
            .message
            .contains("top up"));
    }
}
