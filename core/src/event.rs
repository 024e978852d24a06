//! The provider's webhook payload: the Prediction object.
//!
//! The provider sends it in several dialects (`docs/verification.md` lists them with their
//! sources), and [`WebhookEvent::parse`] reads them all:
//!
//! * wrapped, `{"type": "prediction.succeeded", "created_at": …, "data": {<prediction>}}`
//!   (learn.skytells.ai, docs/api/v1/webhooks), or bare, the Prediction object itself (the
//!   provider's SDK, `Skytells/ts-sdk` `src/webhooks.ts`, and the course text);
//! * event names of two families, `prediction.started|succeeded|failed|cancelled` and
//!   `started|completed|failed|canceled`;
//! * statuses `queued`, `pending`, `starting`, `started`, `processing`, `succeeded`,
//!   `failed`, `canceled`/`cancelled` ([`PredictionStatus`]);
//! * `model` as a string or as an object `{"name", "type"}`, `output` as a list or one
//!   string, `error` as a string, an object, or `error_id` + `error_message`.
//!
//! Archiving needs only `id`, `status` and `output`, so only those three are typed: every
//! other member is kept as sent in [`Prediction::extra`], whatever its shape, and read
//! leniently by [`Prediction::model_name`], [`Prediction::provider_error`] and
//! [`Prediction::completed_at`]. A field hookvault does not understand can never stop an
//! archive.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Where a prediction stands. The provider's statuses, from its API reference
/// (learn.skytells.ai, docs/api/v1/predictions) and SDK (`Skytells/ts-sdk`
/// `src/types/predict.types.ts`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PredictionStatus {
    /// `queued`: accepted, waiting for capacity.
    Queued,
    /// `pending`: accepted, not yet scheduled.
    Pending,
    /// `starting`: the model is being started.
    Starting,
    /// `started`: running has begun.
    Started,
    /// `processing`: running.
    Processing,
    /// `succeeded`: finished; `output` holds the result.
    Succeeded,
    /// `failed`: finished with an error.
    Failed,
    /// `cancelled` or `canceled` (both spellings are the provider's).
    Cancelled,
    /// A status this version does not know, kept as sent; never terminal.
    Other(String),
}

impl PredictionStatus {
    /// The status as the provider writes it (`cancelled` for both spellings).
    pub fn as_str(&self) -> &str {
        match self {
            PredictionStatus::Queued => "queued",
            PredictionStatus::Pending => "pending",
            PredictionStatus::Starting => "starting",
            PredictionStatus::Started => "started",
            PredictionStatus::Processing => "processing",
            PredictionStatus::Succeeded => "succeeded",
            PredictionStatus::Failed => "failed",
            PredictionStatus::Cancelled => "cancelled",
            PredictionStatus::Other(s) => s,
        }
    }

    /// True for `succeeded`, `failed` and `cancelled`: the provider sends nothing after
    /// these but copies ([`crate::state`] keeps the first).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            PredictionStatus::Succeeded | PredictionStatus::Failed | PredictionStatus::Cancelled
        )
    }

    /// The status an event name announces, for a wrapped body whose `data` carries no
    /// `status`: `prediction.succeeded` / `completed` → succeeded, and so on for both
    /// families. `None` for a name it does not know.
    pub fn from_event_type(event_type: &str) -> Option<Self> {
        let name = event_type.strip_prefix("prediction.").unwrap_or(event_type);
        Some(match name {
            "queued" => PredictionStatus::Queued,
            "pending" => PredictionStatus::Pending,
            "starting" => PredictionStatus::Starting,
            "started" | "start" => PredictionStatus::Started,
            "processing" => PredictionStatus::Processing,
            "succeeded" | "completed" => PredictionStatus::Succeeded,
            "failed" => PredictionStatus::Failed,
            "cancelled" | "canceled" => PredictionStatus::Cancelled,
            _ => return None,
        })
    }
}

impl From<&str> for PredictionStatus {
    /// The status named `s`, in any ASCII case; anything else is [`PredictionStatus::Other`],
    /// kept as sent.
    fn from(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "queued" => PredictionStatus::Queued,
            "pending" => PredictionStatus::Pending,
            "starting" => PredictionStatus::Starting,
            "started" => PredictionStatus::Started,
            "processing" => PredictionStatus::Processing,
            "succeeded" => PredictionStatus::Succeeded,
            "failed" => PredictionStatus::Failed,
            "cancelled" | "canceled" => PredictionStatus::Cancelled,
            _ => PredictionStatus::Other(s.to_owned()),
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

/// The Prediction object: the three members archiving needs, and every other one as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The prediction's id, e.g. `pred_abc123` or a UUID.
    pub id: String,
    /// Where it stands.
    pub status: PredictionStatus,
    /// The output, whatever its shape: one URL string (the provider's API reference), a
    /// list of URLs (temporary CDN links, purged 5 minutes after completion), an object
    /// (Cog-style models: `{"image": "https://…", "coords": …}`), nested lists, text (LLM
    /// tokens), numbers, `data:` URIs. `null` when absent. [`crate::output::files`] finds
    /// the files in it.
    #[serde(default)]
    pub output: Value,
    /// Every other member (`model`, `input`, `error`, `error_id`, `error_message`,
    /// `metrics`, `webhook`, `created_at`, `completed_at`, `data_removed`, …), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The provider's account of why a prediction did not succeed, read from whichever form
/// the body uses ([`Prediction::provider_error`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderFailure {
    /// The error's code (`error_id`, or `error.error_id` / `error.code` / `error.type`).
    pub error_id: Option<String>,
    /// A readable message (`error_message`, `error` as a string, `error.message` /
    /// `error.detail`, or the `error` object itself as compact JSON).
    pub message: Option<String>,
}

/// A member's text: a string as it is, any other non-null value as compact JSON.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Prediction {
    /// The model's name: `model` when a string, `model.name` when an object (the API
    /// reference's Prediction object), else `model_id` (the course's dialect).
    pub fn model_name(&self) -> Option<String> {
        let model = self.extra.get("model");
        model
            .and_then(Value::as_str)
            .or_else(|| model.and_then(|m| m.get("name")).and_then(Value::as_str))
            .or_else(|| self.extra.get("model_id").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The provider's error in any of its forms: top-level `error_id` + `error_message`
    /// (the Prediction API), `error` as a string (the API reference's Prediction object),
    /// `error` as an object (`{"error_id"|"code"|"type", "message"|"detail"}`, the
    /// Inference API's and the SDK's error envelope), or `response` as a string (the SDK's
    /// field). An `error` object with none of those names is kept whole as its message.
    pub fn provider_error(&self) -> ProviderFailure {
        let get = |k: &str| self.extra.get(k);
        let mut out = ProviderFailure {
            error_id: get("error_id").and_then(text),
            message: get("error_message").and_then(text),
        };
        match get("error") {
            Some(Value::Object(o)) => {
                let field = |names: &[&str]| names.iter().find_map(|n| o.get(*n).and_then(text));
                out.error_id = out
                    .error_id
                    .or_else(|| field(&["error_id", "code", "type"]));
                out.message = out
                    .message
                    .or_else(|| field(&["message", "detail", "details"]))
                    .or_else(|| Some(Value::Object(o.clone()).to_string()));
            }
            Some(other) => out.message = out.message.or_else(|| text(other)),
            None => {}
        }
        out.message = out.message.or_else(|| get("response").and_then(text));
        out
    }

    /// `completed_at` as the provider wrote it, when a non-empty string.
    pub fn completed_at(&self) -> Option<&str> {
        self.extra
            .get("completed_at")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// True when the provider marks the record purged (`"data_removed": true`, the API
    /// reference's failed-prediction example): its outputs are gone.
    pub fn data_removed(&self) -> bool {
        self.extra.get("data_removed") == Some(&Value::Bool(true))
    }
}

/// A webhook as received: the prediction, and the event type when the payload is wrapped
/// as `{"type": …, "data": {…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// `type` (or `event`) of a wrapped payload, e.g. `prediction.succeeded`.
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

    /// As [`WebhookEvent::parse`], from an already-parsed value. A wrapped body whose
    /// `data` has no string `status` takes the status its event name announces
    /// ([`PredictionStatus::from_event_type`]).
    pub fn from_value(mut value: Value) -> Result<Self, EventError> {
        let Some(obj) = value.as_object_mut() else {
            return Err(EventError::Shape("expected a JSON object".into()));
        };
        // Wrapped: an object `data` and no prediction id of its own (a bare Prediction
        // may carry a `data` member of its own, and stays bare).
        let wrapped = obj.get("data").is_some_and(Value::is_object)
            && !obj.get("id").is_some_and(Value::is_string);
        let (event_type, mut inner) = if wrapped {
            let event_type = obj
                .get("type")
                .or_else(|| obj.get("event"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            (event_type, obj.remove("data").unwrap_or_default())
        } else {
            (None, value)
        };
        if let (Some(t), Some(data)) = (&event_type, inner.as_object_mut()) {
            if !data.get("status").is_some_and(Value::is_string) {
                if let Some(status) = PredictionStatus::from_event_type(t) {
                    data.insert("status".into(), Value::String(status.as_str().to_owned()));
                }
            }
        }
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
        id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        output: Option<&'a RawValue>,
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
    }
    let text = std::str::from_utf8(strip_bom(body)).ok()?;
    let outer: Outer<'_> = serde_json::from_str(text).ok()?;
    let own_id = outer.id.is_some_and(|i| i.get().starts_with('"'));
    if let Some(data) = outer
        .data
        .filter(|d| !own_id && d.get().trim_start().starts_with('{'))
    {
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
/// JSON object with a non-empty string `id` and a status: a string `status`, or, in a
/// wrapped body, the one its event name announces (as [`WebhookEvent::from_value`]).
pub fn prediction_head(body: &[u8]) -> Option<PredictionHead> {
    let outer = Head::read(body)?;
    let (head, event_type) = match outer.data.filter(|_| outer.id.is_none()) {
        Some(data) => (
            Head::read(data.get().as_bytes())?,
            outer.event_type.or(outer.event_name),
        ),
        None => (outer, None),
    };
    let id = head.id?;
    let status = match head.status {
        Some(s) => PredictionStatus::from(s.as_ref()),
        None => PredictionStatus::from_event_type(event_type.as_deref()?)?,
    };
    (!id.is_empty()).then(|| PredictionHead {
        id: id.into_owned(),
        status,
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
    /// `type` of a wrapped payload, when a string (any other value is skipped).
    #[serde(rename = "type", borrow, default, deserialize_with = "string_only")]
    pub event_type: Option<std::borrow::Cow<'a, str>>,
    /// `event`, the other name some senders give `type`, when a string.
    #[serde(rename = "event", borrow, default, deserialize_with = "string_only")]
    pub event_name: Option<std::borrow::Cow<'a, str>>,
}

fn string_only<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::borrow::Cow<'de, str>>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    Ok(serde_json::from_str(raw.get()).ok())
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
            ev.prediction.provider_error(),
            ProviderFailure {
                error_id: Some("INSUFFICIENT_CREDITS".into()),
                message: Some("out".into())
            }
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
        assert_eq!(ev.prediction.model_name().as_deref(), Some("m"));
    }

    /// Every status the provider documents, its terminal flag, and both cancel spellings.
    #[test]
    fn every_documented_status_is_known() {
        for (s, terminal) in [
            ("queued", false),
            ("pending", false),
            ("starting", false),
            ("started", false),
            ("processing", false),
            ("succeeded", true),
            ("failed", true),
            ("canceled", true),
            ("cancelled", true),
        ] {
            let st = PredictionStatus::from(s);
            assert!(!matches!(st, PredictionStatus::Other(_)), "{s}");
            assert_eq!(st.is_terminal(), terminal, "{s}");
        }
        assert_eq!(PredictionStatus::from("canceled").as_str(), "cancelled");
    }

    /// `model` as an object, `error` as a string and many unknown members of any shape
    /// do not stop the parse, and are read leniently.
    #[test]
    fn fields_of_any_shape_never_stop_the_parse() {
        let body = br#"{"type":"prediction.succeeded","created_at":"2026-03-06T20:15:23.000000Z","data":{"id":"d05b96fc","status":"succeeded","model":{"name":"truefusion-pro","type":"image"},"input":{"prompt":"x"},"output":"https://cdn.skytells.ai/o.png","metrics":{"predict_time":4.2},"webhook":{"url":"https://e","events":["prediction.succeeded"]},"stream":false,"type":"inference","privacy":"private","source":"api","error_id":7,"error_message":["odd"],"error":{"x":1},"completed_at":"2026-03-06T20:15:22Z"}}"#;
        let p = WebhookEvent::parse(body).unwrap().prediction;
        assert_eq!(p.status, PredictionStatus::Succeeded);
        assert_eq!(p.output, "https://cdn.skytells.ai/o.png");
        assert_eq!(p.model_name().as_deref(), Some("truefusion-pro"));
        assert_eq!(p.completed_at(), Some("2026-03-06T20:15:22Z"));
        assert_eq!(p.extra["type"], "inference");
        let e = p.provider_error();
        assert_eq!(e.error_id.as_deref(), Some("7"));
        assert_eq!(e.message.as_deref(), Some(r#"["odd"]"#));
    }

    /// `error` in each of its forms reaches a readable message.
    #[test]
    fn the_provider_error_in_every_form() {
        let read = |body: &str| {
            WebhookEvent::parse(body.as_bytes())
                .unwrap()
                .prediction
                .provider_error()
        };
        assert_eq!(
            read(r#"{"id":"p","status":"failed","error":"Failed to generate image."}"#),
            ProviderFailure {
                error_id: None,
                message: Some("Failed to generate image.".into())
            }
        );
        assert_eq!(
            read(
                r#"{"id":"p","status":"failed","error":{"error_id":"CONTENT_POLICY","message":"refused"}}"#
            ),
            ProviderFailure {
                error_id: Some("CONTENT_POLICY".into()),
                message: Some("refused".into())
            }
        );
        assert_eq!(
            read(r#"{"id":"p","status":"failed","error":{"code":"E1","detail":"d"}}"#),
            ProviderFailure {
                error_id: Some("E1".into()),
                message: Some("d".into())
            }
        );
        assert_eq!(
            read(r#"{"id":"p","status":"failed","error":{"http_status":500}}"#)
                .message
                .as_deref(),
            Some(r#"{"http_status":500}"#)
        );
        assert_eq!(
            read(
                r#"{"id":"p","status":"failed","error_id":"X","error_message":"m","error":"ignored"}"#
            ),
            ProviderFailure {
                error_id: Some("X".into()),
                message: Some("m".into())
            }
        );
        assert_eq!(
            read(r#"{"id":"p","status":"failed","response":"from the SDK"}"#)
                .message
                .as_deref(),
            Some("from the SDK")
        );
        assert_eq!(
            read(r#"{"id":"p","status":"failed","error":null}"#),
            ProviderFailure::default()
        );
    }

    /// A wrapped body without a status takes its event name's, in both families; the head
    /// reader agrees with the full parse.
    #[test]
    fn a_wrapped_body_without_status_takes_the_event_name_s() {
        for (t, want) in [
            ("prediction.succeeded", "succeeded"),
            ("completed", "succeeded"),
            ("prediction.cancelled", "cancelled"),
            ("canceled", "cancelled"),
            ("started", "started"),
            ("prediction.started", "started"),
            ("failed", "failed"),
        ] {
            let body = format!(r#"{{"type":"{t}","data":{{"id":"p","output":null}}}}"#);
            let p = WebhookEvent::parse(body.as_bytes()).unwrap().prediction;
            assert_eq!(p.status.as_str(), want, "{t}");
            assert_eq!(
                prediction_head(body.as_bytes()).unwrap().status.as_str(),
                want,
                "{t}"
            );
        }
        // The body's own status wins over the name.
        let body = br#"{"type":"prediction.succeeded","data":{"id":"p","status":"processing"}}"#;
        assert_eq!(
            prediction_head(body).unwrap().status,
            PredictionStatus::Processing
        );
        // An unknown name and no status is not a prediction.
        assert!(prediction_head(br#"{"type":"x","data":{"id":"p"}}"#).is_none());
        // `event` names the event as `type` does.
        let body = br#"{"event":"prediction.failed","data":{"id":"p"}}"#;
        assert_eq!(
            prediction_head(body).unwrap().status,
            PredictionStatus::Failed
        );
        assert_eq!(
            WebhookEvent::parse(body).unwrap().prediction.status,
            PredictionStatus::Failed
        );
        // A bare Prediction with a `data` member of its own stays bare, in all three readers.
        let body = br#"{"id":"p","status":"succeeded","output":["https://a/x.png"],"data":{"id":"q","status":"failed","output":"no"}}"#;
        let p = WebhookEvent::parse(body).unwrap().prediction;
        assert_eq!(
            (p.id.as_str(), &p.status),
            ("p", &PredictionStatus::Succeeded)
        );
        let head = prediction_head(body).unwrap();
        assert_eq!(
            (head.id.as_str(), head.status),
            ("p", PredictionStatus::Succeeded)
        );
        assert_eq!(raw_output(body), Some(r#"["https://a/x.png"]"#));
        // Statuses in capitals are the same statuses.
        assert_eq!(
            PredictionStatus::from("SUCCEEDED"),
            PredictionStatus::Succeeded
        );
        assert_eq!(
            PredictionStatus::from("Paused"),
            PredictionStatus::Other("Paused".into())
        );
        // A non-string type does not hide the head.
        assert_eq!(
            prediction_head(br#"{"type":5,"data":{"id":"p","status":"failed"}}"#)
                .unwrap()
                .status,
            PredictionStatus::Failed
        );
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
