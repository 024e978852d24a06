//! The provider's webhook payload: the Prediction object.
//!
//! The seed's handler reads `event["data"]`, while its prose says the provider POSTs "the
//! full Prediction Object"; [`WebhookEvent::parse`] accepts both shapes. Unknown fields are
//! kept in `extra`, never refused.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Where a prediction stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PredictionStatus {
    /// Queued, not yet running.
    Starting,
    /// Running.
    Processing,
    /// Finished; `output` holds the result URLs.
    Succeeded,
    /// Finished with an error (`error_id`, `error_message`).
    Failed,
    /// Cancelled before it finished.
    Cancelled,
    /// A status this version does not know, kept as sent.
    Other(String),
}

impl PredictionStatus {
    /// The status as the provider writes it.
    pub fn as_str(&self) -> &str {
        match self {
            PredictionStatus::Starting => "starting",
            PredictionStatus::Processing => "processing",
            PredictionStatus::Succeeded => "succeeded",
            PredictionStatus::Failed => "failed",
            PredictionStatus::Cancelled => "cancelled",
            PredictionStatus::Other(s) => s,
        }
    }

    /// True for `succeeded`, `failed` and `cancelled`.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            PredictionStatus::Succeeded | PredictionStatus::Failed | PredictionStatus::Cancelled
        )
    }
}

impl From<&str> for PredictionStatus {
    fn from(s: &str) -> Self {
        match s {
            "starting" => PredictionStatus::Starting,
            "processing" => PredictionStatus::Processing,
            "succeeded" => PredictionStatus::Succeeded,
            "failed" => PredictionStatus::Failed,
            "cancelled" | "canceled" => PredictionStatus::Cancelled,
            other => PredictionStatus::Other(other.to_owned()),
        }
    }
}

impl Serialize for PredictionStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PredictionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(PredictionStatus::from(s.as_ref()))
    }
}

/// The Prediction object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The prediction's id, e.g. `pred_abc123`.
    pub id: String,
    /// Where it stands.
    pub status: PredictionStatus,
    /// The model, where the payload names it (`model` or `model_id`).
    #[serde(default, alias = "model_id", skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The output, whatever its shape: a URL, a list of URLs (temporary CDN links, valid
    /// 24 hours), an object (Cog-style models: `{"image": "https://…", "coords": …}`),
    /// nested lists, text (LLM tokens), numbers, `data:` URIs. `null` when absent.
    /// [`crate::output::files`] finds the files in it.
    #[serde(default)]
    pub output: Value,
    /// Prediction API error code, when failed.
    #[serde(default)]
    pub error_id: Option<String>,
    /// Prediction API error message, when failed.
    #[serde(default)]
    pub error_message: Option<String>,
    /// An Inference-style nested error object, when present.
    #[serde(default)]
    pub error: Option<Value>,
    /// Every other field, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A webhook as received: the prediction, and the event type when the payload is wrapped
/// as `{"type": …, "data": {…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// `type` (or `event`) of a wrapped payload, e.g. `prediction.completed`.
    pub event_type: Option<String>,
    /// The prediction.
    pub prediction: Prediction,
}

/// Why a body is not a provider webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or not the Prediction object's shape.
    #[error("body is not a prediction webhook: {0}")]
    Shape(String),
}

impl WebhookEvent {
    /// Parses a webhook body, bare or wrapped in `data`, with [`parse_json`]'s leniency
    /// (a UTF-8 BOM and surrounding whitespace are not the JSON's business).
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let value = parse_json(body).map_err(|e| EventError::Shape(e.to_string()))?;
        Self::from_value(value)
    }

    /// As [`WebhookEvent::parse`], from an already-parsed value.
    pub fn from_value(mut value: Value) -> Result<Self, EventError> {
        let Some(obj) = value.as_object_mut() else {
            return Err(EventError::Shape("expected a JSON object".into()));
        };
        let (event_type, inner) = if obj.get("data").is_some_and(Value::is_object) {
            let event_type = obj
                .get("type")
                .or_else(|| obj.get("event"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            (event_type, obj.remove("data").unwrap_or_default())
        } else {
            (None, value)
        };
        let prediction: Prediction =
            serde_json::from_value(inner).map_err(|e| EventError::Shape(e.to_string()))?;
        if prediction.id.is_empty() {
            return Err(EventError::Shape("empty prediction id".into()));
        }
        Ok(WebhookEvent {
            event_type,
            prediction,
        })
    }
}

/// The UTF-8 byte order mark, which some senders put before a JSON body.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `body` without a leading UTF-8 BOM.
pub fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(UTF8_BOM).unwrap_or(body)
}

/// Parses a body as JSON after [`strip_bom`]; JSON's own whitespace around the value
/// (space, tab, CR, LF) is allowed, as RFC 8259 allows it. The bytes kept in the archive
/// are always the body as received, never this reading of it.
pub fn parse_json(body: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(strip_bom(body))
}

/// The prediction's `output` exactly as the body spells it (bare or wrapped in `data`),
/// for the archive's `output.json`; `None` when the body has none or cannot be read that
/// way (a duplicated key, for one): the caller then writes [`Prediction::output`].
pub fn raw_output(body: &[u8]) -> Option<&str> {
    #[derive(Deserialize)]
    struct Outer<'a> {
        #[serde(borrow, default)]
        output: Option<&'a RawValue>,
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
    }
    let text = std::str::from_utf8(strip_bom(body)).ok()?;
    let outer: Outer<'_> = serde_json::from_str(text).ok()?;
    if let Some(data) = outer.data.filter(|d| d.get().trim_start().starts_with('{')) {
        let inner: Outer<'_> = serde_json::from_str(data.get()).ok()?;
        return inner.output.map(RawValue::get);
    }
    outer.output.map(RawValue::get)
}

/// A prediction's id and status, read without building the body's whole value
/// ([`prediction_head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionHead {
    /// The prediction's id (not empty).
    pub id: String,
    /// Its status.
    pub status: PredictionStatus,
}

/// The id and status of a prediction webhook, bare or wrapped in a `data` object, read
/// with [`Head`]: every other member is skipped without being allocated, so reading them
/// costs no second copy of a large body (a full `serde_json::Value` of a 25 MB body took
/// the edge's WASM memory to 101 MB; docs/benchmarks.md). `None` when the body is not a
/// JSON object with a non-empty string `id` and a string `status`.
pub fn prediction_head(body: &[u8]) -> Option<PredictionHead> {
    let head = Head::read(body)?;
    let head = match head.data {
        Some(data) => Head::read(data.get().as_bytes())?,
        None => head,
    };
    let (id, status) = (head.id?, head.status?);
    (!id.is_empty()).then(|| PredictionHead {
        id: id.into_owned(),
        status: PredictionStatus::from(status.as_ref()),
    })
}

/// The few members of a JSON object body that ids need: `id`, `status`, and `data` when it
/// is an object (a wrapped payload, as [`WebhookEvent::from_value`] reads it). Other
/// members are skipped by serde without being allocated.
#[derive(Deserialize)]
pub struct Head<'a> {
    /// `id`, when a string.
    #[serde(borrow, default)]
    pub id: Option<std::borrow::Cow<'a, str>>,
    /// `status`, when a string.
    #[serde(borrow, default)]
    pub status: Option<std::borrow::Cow<'a, str>>,
    /// `data`, when an object.
    #[serde(borrow, default, deserialize_with = "object_only")]
    pub data: Option<&'a RawValue>,
}

fn object_only<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    Ok(raw.get().starts_with('{').then_some(raw))
}

impl<'a> Head<'a> {
    /// The head of a JSON object body ([`strip_bom`] first); `None` if the body is not
    /// UTF-8, not a JSON object, has a duplicated member, or a non-string `id`/`status`.
    pub fn read(body: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(strip_bom(body)).ok()?;
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_and_wrapped_payloads() {
        let bare = br#"{"id":"pred_1","status":"succeeded","output":["https://a/x.png"],"created_at":"2026-01-01","metrics":{"t":1}}"#;
        let ev = WebhookEvent::parse(bare).unwrap();
        assert_eq!(ev.prediction.status, PredictionStatus::Succeeded);
        assert_eq!(ev.prediction.output, serde_json::json!(["https://a/x.png"]));
        assert!(ev.prediction.extra.contains_key("metrics"));
        assert_eq!(ev.event_type, None);

        let wrapped = br#"{"type":"prediction.failed","data":{"id":"pred_2","status":"failed","error_id":"INSUFFICIENT_CREDITS","error_message":"out","output":null}}"#;
        let ev = WebhookEvent::parse(wrapped).unwrap();
        assert_eq!(ev.event_type.as_deref(), Some("prediction.failed"));
        assert_eq!(
            ev.prediction.error_id.as_deref(),
            Some("INSUFFICIENT_CREDITS")
        );
        assert!(ev.prediction.output.is_null());
    }

    #[test]
    fn keeps_unknown_statuses_and_single_outputs() {
        let ev = WebhookEvent::parse(
            br#"{"id":"p","status":"paused","output":"https://a/b","model_id":"m"}"#,
        )
        .unwrap();
        assert_eq!(
            ev.prediction.status,
            PredictionStatus::Other("paused".into())
        );
        assert!(!ev.prediction.status.is_terminal());
        assert_eq!(ev.prediction.output, "https://a/b");
        assert_eq!(ev.prediction.model.as_deref(), Some("m"));
    }

    #[test]
    fn refuses_what_is_not_a_prediction() {
        for body in [
            &b"[]"[..],
            b"{}",
            b"{\"id\":\"\",\"status\":\"failed\"}",
            b"\xff",
            b"{\"id\":1,\"status\":\"x\"}",
            b"\xEF\xBB\xBF",
        ] {
            assert!(WebhookEvent::parse(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn a_bom_and_surrounding_whitespace_do_not_hide_the_prediction() {
        for body in [
            &b"\xEF\xBB\xBF{\"id\":\"p\",\"status\":\"succeeded\"}"[..],
            b"\r\n  {\"id\":\"p\",\"status\":\"succeeded\"}\r\n",
            b"{\"id\":\"p\",\"status\":\"succeeded\"}\n",
        ] {
            assert_eq!(WebhookEvent::parse(body).unwrap().prediction.id, "p");
        }
    }

    #[test]
    fn the_raw_output_is_the_body_s_own_spelling() {
        let body = b"\xEF\xBB\xBF{\"id\":\"p\",\"output\": { \"z\" : 1.50, \"a\": [\"t\"] } }";
        assert_eq!(raw_output(body), Some(r#"{ "z" : 1.50, "a": ["t"] }"#));
        let wrapped = br#"{"type":"x","data":{"id":"p","output":"tok"}}"#;
        assert_eq!(raw_output(wrapped), Some(r#""tok""#));
        assert_eq!(raw_output(br#"{"id":"p"}"#), None);
        assert_eq!(raw_output(b"\xff"), None);
        assert_eq!(raw_output(br#"{"output":1,"output":2}"#), None);
    }

    #[test]
    fn outputs_of_every_shape_are_read() {
        for output in [
            r#"{"image":"https://a/x.png","coords":[1,2]}"#,
            r#"[{"url":"https://a/x.png"},{"url":"https://a/y.png"}]"#,
            r#"[["https://a/x.png"],["https://a/y.png"]]"#,
            r#"["Hello"," world"]"#,
            r#""data:text/plain;base64,aGk=""#,
            "42",
        ] {
            let body = format!(r#"{{"id":"p","status":"succeeded","output":{output}}}"#);
            let ev = WebhookEvent::parse(body.as_bytes()).unwrap();
            assert_eq!(
                ev.prediction.output,
                serde_json::from_str::<Value>(output).unwrap()
            );
        }
    }

    #[test]
    fn serde_round_trip_keeps_every_field() {
        let body = br#"{"id":"p","status":"canceled","output":[],"error_id":null,"error_message":null,"error":null,"urls":{"get":"x"}}"#;
        let ev = WebhookEvent::parse(body).unwrap();
        let again: Prediction =
            serde_json::from_str(&serde_json::to_string(&ev.prediction).unwrap()).unwrap();
        assert_eq!(again, ev.prediction);
        assert_eq!(again.status, PredictionStatus::Cancelled);
    }
}
