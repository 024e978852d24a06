//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout that
//! CloudWatch Logs turns into metrics, with no API call and no extra latency
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! ```json
//! {"_aws":{"Timestamp":1764435600000,"CloudWatchMetrics":[{"Namespace":"hookvault",
//!   "Dimensions":[["Function"],["Function","ErrorId"]],
//!   "Metrics":[{"Name":"PermanentFailures","Unit":"Count"}]}]},
//!  "Function":"archiver","ErrorId":"OUTPUT_EXPIRED","PermanentFailures":1,
//!  "trace_id":"4bf9…"}
//! ```
//!
//! Why a module and not a crate: `metrics_cloudwatch_embedded` (maintained, 0.10) is a
//! backend for the `metrics` facade: a global recorder that aggregates until a flush per
//! invocation, with properties set per flush. hookvault writes one line per queue record
//! instead, carrying that record's `trace_id` and `event_id` as properties, so a failure
//! metric leads straight to its event in the same log; the facade has no per-record
//! properties. The format is one JSON object, written here with `serde_json`.
//!
//! The namespace comes from `METRICS_NAMESPACE` (the template sets `hookvault/{stack}`),
//! default [`DEFAULT_NAMESPACE`]. Every metric has the dimension `Function`; a line with
//! extra dimensions (`ErrorId`) is also published under `Function` alone, so one alarm
//! covers every error id.

use serde_json::{json, Map, Value};

/// The namespace without `METRICS_NAMESPACE`.
pub const DEFAULT_NAMESPACE: &str = "hookvault";

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Where a function's metrics go: its namespace and its `Function` dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emf {
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The `Function` dimension's value (`archiver`, `api`, `rotator`).
    pub function: String,
}

impl Emf {
    /// For `function`, in `METRICS_NAMESPACE` or [`DEFAULT_NAMESPACE`].
    pub fn from_env(function: &str) -> Self {
        Emf {
            namespace: std::env::var("METRICS_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            function: function.to_owned(),
        }
    }

    /// One EMF line: `metrics` (name, unit, value) at `timestamp_ms`, with the extra
    /// dimensions `dims` (published both with and without them), and `properties` that
    /// are searchable in the log but are not dimensions (a trace id). Metrics with a zero
    /// value are left out; `None` when none is left.
    pub fn line(
        &self,
        timestamp_ms: i64,
        metrics: &[(&str, Unit, f64)],
        dims: &[(&str, &str)],
        properties: &[(&str, &str)],
    ) -> Option<String> {
        let metrics: Vec<&(&str, Unit, f64)> = metrics.iter().filter(|m| m.2 != 0.0).collect();
        if metrics.is_empty() {
            return None;
        }
        let base = vec!["Function".to_owned()];
        let mut sets = vec![base.clone()];
        if !dims.is_empty() {
            let mut full = base;
            full.extend(dims.iter().map(|(k, _)| (*k).to_owned()));
            sets.push(full);
        }
        let mut root = Map::new();
        for (k, v) in properties {
            root.insert((*k).to_owned(), Value::String((*v).to_owned()));
        }
        root.insert("_aws".into(), json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": self.namespace,
                "Dimensions": sets,
                "Metrics": metrics.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u.as_str()})).collect::<Vec<_>>(),
            }],
        }));
        root.insert("Function".into(), Value::String(self.function.clone()));
        for (k, v) in dims {
            root.insert((*k).to_owned(), Value::String((*v).to_owned()));
        }
        for (n, _, v) in &metrics {
            root.insert((*n).to_owned(), json!(v));
        }
        serde_json::to_string(&root).ok()
    }

    /// [`Emf::line`] now, printed on stdout (where Lambda sends it to CloudWatch Logs).
    pub fn emit(
        &self,
        metrics: &[(&str, Unit, f64)],
        dims: &[(&str, &str)],
        properties: &[(&str, &str)],
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        if let Some(line) = self.line(now, metrics, dims, properties) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_follows_the_specification() {
        let emf = Emf {
            namespace: "hookvault/test".into(),
            function: "archiver".into(),
        };
        let line = emf
            .line(
                1_764_435_600_000,
                &[
                    ("PermanentFailures", Unit::Count, 1.0),
                    ("BytesArchived", Unit::Bytes, 0.0),
                ],
                &[("ErrorId", "OUTPUT_EXPIRED")],
                &[("trace_id", "ab")],
            )
            .unwrap_or_default();
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_764_435_600_000i64);
        assert_eq!(d["Namespace"], "hookvault/test");
        assert_eq!(
            d["Dimensions"],
            json!([["Function"], ["Function", "ErrorId"]])
        );
        assert_eq!(
            d["Metrics"],
            json!([{"Name": "PermanentFailures", "Unit": "Count"}])
        );
        assert_eq!(v["Function"], "archiver");
        assert_eq!(v["ErrorId"], "OUTPUT_EXPIRED");
        assert_eq!(v["PermanentFailures"], 1.0);
        assert_eq!(v["trace_id"], "ab");
        // A zero metric is not published, and nothing at all makes no line.
        assert!(v.get("BytesArchived").is_none());
        assert_eq!(emf.line(0, &[("X", Unit::Count, 0.0)], &[], &[]), None);
    }
}
