//! The shapes the api can talk to the provider in (`PROVIDER_DIALECT`), and the pure
//! function that builds the request for each ([`provider_request`]).
//!
//! | dialect | path | body | source |
//! |---|---|---|---|
//! | `current` (default) | `POST /v1/predictions` | `{"model", "input", "webhook": {"url", "events": [...]}}` | the provider's API reference: <https://learn.skytells.ai/docs/api/v1/webhooks> ("Webhooks are configured per-prediction by including a webhook object") and <https://learn.skytells.ai/docs/api/v1/predictions/create> |
//! | `course` | `POST /v1/predictions` | `{"model_id", "inputs", "webhook_url", "webhook_events"}` | the course's seed, hookvault's first shape |
//! | `legacy` | `POST /v1/predict` | `{"model", "input", "webhook": "<url>"}` | the older path: `ENDPOINTS.PREDICT = "/predict"` in the provider's SDK (`Skytells/ts-sdk`, `src/endpoints.ts`); the plain-string webhook: `PredictionCreateRequest.webhook?: string` in the provider's CLI (`Skytells/cli`, `src/types/index.ts`, sent by `src/commands/predictions.ts`) |
//!
//! The legacy form names no events: the provider then sends what it sends by default.

use std::fmt;
use std::str::FromStr;

use serde_json::{json, Map, Value};

/// The events asked for in the current dialect
/// (<https://learn.skytells.ai/docs/api/v1/webhooks>, "Webhook Events": `prediction.started`,
/// `prediction.succeeded`, `prediction.failed`, `prediction.cancelled`).
///
/// The three terminal ones, not `prediction.started`: a started event would cost a whole
/// trip through the pipeline (an edge request, an SQS message, an archiver invocation, the
/// raw event, its evidence and an event-log entry in S3) for each prediction, where the
/// archiver only keeps it (`ignored`: nothing to archive for a non-terminal status), and
/// what it tells (when processing began) also arrives with the terminal event, whose
/// Prediction object carries `started_at`. A non-terminal webhook that comes anyway (the
/// provider documents one on every status change) is recorded as the prediction's state,
/// which `GET /predictions/{id}` answers. `prediction.cancelled` is asked for because a cancelled
/// prediction gets a `failure.json` in the archive.
pub const CURRENT_EVENTS: [&str; 3] = [
    "prediction.succeeded",
    "prediction.failed",
    "prediction.cancelled",
];

/// The events asked for in the course's shape (its names, unchanged).
pub const COURSE_EVENTS: [&str; 2] = ["prediction.completed", "prediction.failed"];

/// How the api talks to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The provider's current API reference: `POST /v1/predictions` with
    /// `{model, input, webhook: {url, events}}`.
    #[default]
    Current,
    /// The course's shape: `POST /v1/predictions` with
    /// `{model_id, inputs, webhook_url, webhook_events}`.
    Course,
    /// The legacy form: `POST /v1/predict` with `{model, input, webhook: "<url>"}`.
    Legacy,
}

/// A `PROVIDER_DIALECT` value that names no dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider dialect: expected current, course or legacy")]
pub struct UnknownDialect;

impl Dialect {
    /// Every dialect, in the order documented.
    pub const ALL: [Dialect; 3] = [Dialect::Current, Dialect::Course, Dialect::Legacy];

    /// Its name, as `PROVIDER_DIALECT` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Current => "current",
            Dialect::Course => "course",
            Dialect::Legacy => "legacy",
        }
    }

    /// The path of the create call, under the provider's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Dialect::Current | Dialect::Course => "/v1/predictions",
            Dialect::Legacy => "/v1/predict",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = UnknownDialect;

    /// `current`, `course` or `legacy`, in any case, spaces around ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Dialect::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
            .ok_or(UnknownDialect)
    }
}

/// The create call in `dialect`: its path and its JSON body, for `model` with `input`,
/// and `webhook_url` (the edge) as the webhook.
pub fn provider_request(
    dialect: Dialect,
    model: &str,
    input: &Map<String, Value>,
    webhook_url: &str,
) -> (&'static str, Value) {
    let body = match dialect {
        Dialect::Current => json!({
            "model": model,
            "input": input,
            "webhook": {"url": webhook_url, "events": CURRENT_EVENTS},
        }),
        Dialect::Course => json!({
            "model_id": model,
            "inputs": input,
            "webhook_url": webhook_url,
            "webhook_events": COURSE_EVENTS,
        }),
        Dialect::Legacy => json!({
            "model": model,
            "input": input,
            "webhook": webhook_url,
        }),
    };
    (dialect.path(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = "https://hooks.example.com/webhooks/skytells";

    fn input() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("prompt".into(), json!("a lake at dawn"));
        m.insert("seed".into(), json!(7));
        m
    }

    #[test]
    fn current_is_the_reference_shape() {
        let (path, body) = provider_request(Dialect::Current, "truefusion", &input(), HOOK);
        assert_eq!(path, "/v1/predictions");
        assert_eq!(
            body,
            json!({
                "model": "truefusion",
                "input": {"prompt": "a lake at dawn", "seed": 7},
                "webhook": {
                    "url": HOOK,
                    "events": ["prediction.succeeded", "prediction.failed", "prediction.cancelled"],
                },
            })
        );
    }

    #[test]
    fn course_is_the_first_shape() {
        let (path, body) = provider_request(Dialect::Course, "truefusion", &input(), HOOK);
        assert_eq!(path, "/v1/predictions");
        assert_eq!(
            body,
            json!({
                "model_id": "truefusion",
                "inputs": {"prompt": "a lake at dawn", "seed": 7},
                "webhook_url": HOOK,
                "webhook_events": ["prediction.completed", "prediction.failed"],
            })
        );
    }

    #[test]
    fn legacy_sends_the_url_as_a_string_to_predict() {
        let (path, body) = provider_request(Dialect::Legacy, "truefusion", &input(), HOOK);
        assert_eq!(path, "/v1/predict");
        assert_eq!(
            body,
            json!({
                "model": "truefusion",
                "input": {"prompt": "a lake at dawn", "seed": 7},
                "webhook": HOOK,
            })
        );
    }

    #[test]
    fn dialects_are_read_by_name_and_current_is_the_default() {
        assert_eq!(Dialect::default(), Dialect::Current);
        for d in Dialect::ALL {
            assert_eq!(d.name().parse::<Dialect>(), Ok(d));
            assert_eq!(d.to_string(), d.name());
        }
        assert_eq!(" Legacy ".parse::<Dialect>(), Ok(Dialect::Legacy));
        for bad in ["", "v1", "courses", "current,legacy"] {
            assert_eq!(bad.parse::<Dialect>(), Err(UnknownDialect), "{bad:?}");
        }
    }
}
