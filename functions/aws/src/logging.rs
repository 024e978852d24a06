//! Logs as Lambda's advanced logging controls expect
//! (<https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html>):
//!
//! * `AWS_LAMBDA_LOG_FORMAT`: `JSON` (and when unset) writes one JSON object per line with
//!   `timestamp` (RFC 3339, milliseconds), `level`, `message`, the event's fields, and the
//!   fields of every enclosing span **at the top level**: the runtime's `requestId` and
//!   `xrayTraceId`, and hookvault's own (`trace_id`, `message_id`, `event_id`), so a
//!   CloudWatch Logs Insights query filters on `requestId` or `trace_id` directly.
//!   `Text` writes tracing's plain lines.
//! * `AWS_LAMBDA_LOG_LEVEL` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) sets the
//!   level; without it `RUST_LOG` (an `EnvFilter` directive) does; the default is `INFO`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The filter from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`. Lambda's `FATAL`
/// is tracing's `error`.
pub fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    let directive = match lambda_level.map(str::to_ascii_lowercase).as_deref() {
        Some("fatal") => "error".to_owned(),
        Some(l @ ("trace" | "debug" | "info" | "warn" | "error")) => l.to_owned(),
        _ => rust_log.unwrap_or("info").to_owned(),
    };
    EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// True unless `AWS_LAMBDA_LOG_FORMAT` says `Text`.
pub fn json_format(lambda_format: Option<&str>) -> bool {
    !lambda_format.is_some_and(|f| f.eq_ignore_ascii_case("text"))
}

/// What the environment asks of the logs: JSON lines or text (`AWS_LAMBDA_LOG_FORMAT`),
/// and the filter (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`), as Lambda's
/// logging controls set them.
pub fn from_env() -> (bool, EnvFilter) {
    let var = |name: &str| std::env::var(name).ok();
    let level = var("AWS_LAMBDA_LOG_LEVEL");
    let rust_log = var("RUST_LOG");
    let format = var("AWS_LAMBDA_LOG_FORMAT");
    (
        json_format(format.as_deref()),
        filter(level.as_deref(), rust_log.as_deref()),
    )
}

/// Installs the subscriber ([`from_env`]); call once at start. A second call does nothing.
pub fn init() {
    let (json, filter) = from_env();
    if json {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .fmt_fields(JsonFields::new())
            .event_format(LambdaJson)
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(false)
            .try_init();
    }
}

/// The JSON line format described in the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct LambdaJson;

impl<S, N> FormatEvent<S, N> for LambdaJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp()));
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().as_str().to_owned()),
        );
        // Spans from the outermost in, so an inner span's field wins.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&fields.fields) {
                        line.extend(m);
                    }
                }
            }
        }
        let mut visitor = Fields(&mut line);
        event.record(&mut visitor);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

/// Now, RFC 3339 UTC with milliseconds.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = hookvault_core::time::rfc3339(now.as_secs() as i64);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), now.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_lambda_level_wins_then_rust_log_then_info() {
        assert_eq!(filter(Some("DEBUG"), Some("error")).to_string(), "debug");
        assert_eq!(filter(Some("FATAL"), None).to_string(), "error");
        assert_eq!(filter(None, Some("warn")).to_string(), "warn");
        assert_eq!(filter(Some("nonsense"), None).to_string(), "info");
        assert_eq!(filter(None, None).to_string(), "info");
        assert!(json_format(None) && json_format(Some("JSON")));
        assert!(!json_format(Some("Text")));
    }

    /// The variables Lambda sets for a function's `LoggingConfig` are the ones read. The
    /// only test of this binary that sets them.
    #[test]
    fn lambda_s_logging_controls_are_read_from_the_environment() {
        std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "Text");
        std::env::set_var("AWS_LAMBDA_LOG_LEVEL", "WARN");
        let (json, filter) = from_env();
        assert!(!json);
        assert_eq!(filter.to_string(), "warn");
        std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
        std::env::set_var("AWS_LAMBDA_LOG_LEVEL", "FATAL");
        let (json, filter) = from_env();
        assert!(json);
        assert_eq!(filter.to_string(), "error");
        std::env::remove_var("AWS_LAMBDA_LOG_FORMAT");
        std::env::remove_var("AWS_LAMBDA_LOG_LEVEL");
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_fields_such_as_the_request_id_are_at_the_top_level() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || buf.clone())
            .fmt_fields(JsonFields::new())
            .event_format(LambdaJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("Lambda runtime invoke", requestId = "req-1");
            let _o = outer.enter();
            let inner = tracing::info_span!("record", trace_id = "abc", message_id = "m-1");
            let _i = inner.enter();
            tracing::warn!(bytes = 5u64, ok = true, "stored");
        });
        let text = String::from_utf8(out.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let v: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
        assert_eq!(v["requestId"], "req-1", "{text}");
        assert_eq!(v["trace_id"], "abc");
        assert_eq!(v["message_id"], "m-1");
        assert_eq!(v["message"], "stored");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["bytes"], 5);
        assert_eq!(v["ok"], true);
        assert!(
            v["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('.')),
            "{text}"
        );
    }
}
