//! Telling the app (issue 22, item 5): one EventBridge event per prediction outcome.
//!
//! On every archived prediction (a manifest, now or found by a redelivery) and every
//! output lost for good (`failure.json` with one of our error ids), the archiver puts one
//! event on the bus `EVENT_BUS_NAME` (unset: no events):
//!
//! | `detail-type` | when | `detail` |
//! |---|---|---|
//! | `Prediction Archived` | a manifest | provider, prediction id, status, `manifest_key`, `files` (key, sha256, bytes), `output_expires_at`, trace id, event id |
//! | `Prediction Archive Failed` | an output lost (`OUTPUT_*`) | provider, prediction id, status, `failure_key`, `error_id`, `error_message`, `output_expires_at`, trace id, event id |
//!
//! `source` is `EVENT_SOURCE` (default `hookvault`). `docs/archiver.md` has the JSON
//! Schema of `detail`; `events/archiver/prediction-archived.json` is an example.
//!
//! **Exactly one per outcome, under redelivery too.** After `PutEvents` takes the event,
//! `predictions/{id}/notified/{archived|failed}.json` is written (`If-None-Match: *`);
//! an outcome whose marker exists is not published again. Only a crash between
//! `PutEvents` and the marker can publish twice; `detail.notification_id` (the prediction
//! id and the outcome, hashed) is the same both times, for the app to drop the copy.
//!
//! **Failed entries are resent.** `PutEvents` can take a request and refuse some of its
//! entries (`FailedEntryCount`, each with an `ErrorCode`,
//! <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>);
//! those are sent again, up to [`PUT_ATTEMPTS`] times with a short pause, then the record
//! fails and its redelivery publishes (the marker was not written).
//!
//! The call is `PutEvents` over HTTPS, signed with SigV4 (`aws-sigv4`, the SDK's own
//! signer) with the credentials Lambda puts in the environment, at
//! `https://events.{region}.amazonaws.com` or `AWS_ENDPOINT_URL` (moto).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hookvault_core::records::{FailureRecord, Manifest, Windowed};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How many times a `PutEvents` entry is sent before the record fails.
pub const PUT_ATTEMPTS: u32 = 3;

/// `detail-type` of an archived prediction.
pub const ARCHIVED: &str = "Prediction Archived";

/// `detail-type` of an output lost for good.
pub const ARCHIVE_FAILED: &str = "Prediction Archive Failed";

/// One event to put.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// `detail-type`.
    pub detail_type: &'static str,
    /// `detail`.
    pub detail: Value,
}

/// Why events could not be put.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("EventBridge PutEvents failed: {0}")]
pub struct PublishError(pub String);

/// A boxed future of a `PutEvents` call: per entry, `None` when it was taken, else its
/// error code.
pub type Putting<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Option<String>>, PublishError>> + Send + 'a>>;

/// Puts events on a bus: EventBridge, or a fake in tests.
pub trait Publisher: std::fmt::Debug + Send + Sync {
    /// `PutEvents` of `entries` (source, detail-type, detail) on `bus`.
    fn put<'a>(&'a self, bus: &'a str, source: &'a str, entries: &'a [Notice]) -> Putting<'a>;
}

/// Puts `notices` on `bus`, resending the entries the bus refused, up to [`PUT_ATTEMPTS`]
/// times. Errors: the call failed, or some entry was still refused.
pub async fn put_all(
    publisher: &dyn Publisher,
    bus: &str,
    source: &str,
    notices: Vec<Notice>,
) -> Result<(), PublishError> {
    let mut pending = notices;
    let mut last = String::new();
    for attempt in 1..=PUT_ATTEMPTS {
        let answer = publisher.put(bus, source, &pending).await?;
        let refused: Vec<Notice> = pending
            .into_iter()
            .zip(
                answer
                    .iter()
                    .chain(std::iter::repeat(&Some("NoAnswer".to_owned()))),
            )
            .filter_map(|(n, code)| code.as_ref().map(|c| (n, c.clone())))
            .map(|(n, c)| {
                last = c;
                n
            })
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            refused = refused.len(),
            attempt,
            error_code = %last,
            "EventBridge refused entries; sending them again"
        );
        pending = refused;
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    Err(PublishError(format!(
        "{} entries still refused after {PUT_ATTEMPTS} attempts ({last})",
        pending.len()
    )))
}

/// The members of a "Prediction Archived" event's `detail` (docs/archiver.md has the
/// JSON Schema; `events/archiver/prediction-archived.json` is an example).
pub const ARCHIVED_DETAIL_KEYS: [&str; 11] = [
    "notification_id",
    "provider",
    "prediction_id",
    "status",
    "bucket",
    "manifest_key",
    "files",
    "archived_at",
    "output_expires_at",
    "event_id",
    "trace_id",
];

/// The members of a "Prediction Archive Failed" event's `detail`.
pub const FAILED_DETAIL_KEYS: [&str; 14] = [
    "notification_id",
    "provider",
    "prediction_id",
    "status",
    "bucket",
    "failure_key",
    "error_id",
    "error_message",
    "output_index",
    "output_pointer",
    "recorded_at",
    "output_expires_at",
    "event_id",
    "trace_id",
];

/// The members of each of `detail.files`.
pub const FILE_KEYS: [&str; 5] = ["key", "sha256", "bytes", "content_type", "pointer"];

/// `detail` of "Prediction Archived" for the manifest `m` at `bucket`/`key`.
pub fn archived_detail(
    notification_id: &str,
    provider: &str,
    bucket: &str,
    key: &str,
    m: &Windowed<Manifest>,
) -> Value {
    let files: Vec<Value> = m
        .record
        .outputs
        .iter()
        .map(|o| {
            json!({
                "key": o.key, "sha256": o.sha256, "bytes": o.bytes,
                "content_type": o.content_type, "pointer": o.pointer,
            })
        })
        .collect();
    json!({
        "notification_id": notification_id,
        "provider": provider,
        "prediction_id": m.record.id,
        "status": m.record.status,
        "bucket": bucket,
        "manifest_key": key,
        "files": files,
        "archived_at": m.record.archived_at,
        "output_expires_at": m.window.as_ref().map(|w| w.output_expires_at.clone()),
        "event_id": m.record.event_id,
        "trace_id": m.record.trace_id,
    })
}

/// `detail` of "Prediction Archive Failed" for the `failure.json` `f` at `bucket`/`key`.
pub fn failed_detail(
    notification_id: &str,
    provider: &str,
    bucket: &str,
    key: &str,
    f: &Windowed<FailureRecord>,
) -> Value {
    json!({
        "notification_id": notification_id,
        "provider": provider,
        "prediction_id": f.record.id,
        "status": f.record.status,
        "bucket": bucket,
        "failure_key": key,
        "error_id": f.record.error_id,
        "error_message": f.record.error_message,
        "output_index": f.record.output_index,
        "output_pointer": f.record.output_pointer,
        "recorded_at": f.record.recorded_at,
        "output_expires_at": f.window.as_ref().map(|w| w.output_expires_at.clone()),
        "event_id": f.record.event_id,
        "trace_id": f.record.trace_id,
    })
}

/// The bus and source from the environment: `EVENT_BUS_NAME` (unset or empty: no events)
/// and `EVENT_SOURCE` (default `hookvault`), read through `get`.
pub fn settings(get: impl Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let bus = get("EVENT_BUS_NAME").filter(|b| !b.trim().is_empty())?;
    let source = get("EVENT_SOURCE")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "hookvault".to_owned());
    Some((bus, source))
}

/// The id an app can drop duplicates by: SHA-256 of `provider`, the prediction id and the
/// detail-type, hex.
pub fn notification_id(provider: &str, prediction: &str, detail_type: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{provider}\n{prediction}\n{detail_type}").as_bytes(),
    ))
}

/// `PutEvents` over HTTPS with SigV4.
#[derive(Debug, Clone)]
pub struct HttpPublisher {
    http: reqwest::Client,
    endpoint: String,
    region: String,
}

impl HttpPublisher {
    /// The publisher of this Lambda's region (`AWS_REGION`), at `AWS_ENDPOINT_URL` when
    /// set. Errors: no region, or the HTTP client cannot be built.
    pub fn from_env() -> Result<Self, PublishError> {
        let region = hookvault_aws::env::region().map_err(|e| PublishError(e.to_string()))?;
        let endpoint = hookvault_aws::env::endpoint_url()
            .unwrap_or_else(|| format!("https://events.{region}.amazonaws.com"));
        Self::new(&endpoint, &region)
    }

    /// The publisher of `region` at `endpoint` (credentials from the environment).
    /// Errors: the HTTP client cannot be built.
    pub fn new(endpoint: &str, region: &str) -> Result<Self, PublishError> {
        let region = region.to_owned();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| PublishError(e.to_string()))?;
        Ok(HttpPublisher {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned() + "/",
            region,
        })
    }

    async fn call(&self, body: Vec<u8>) -> Result<Value, PublishError> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let env = |n: &str| hookvault_aws::env::optional(n);
        let creds = aws_credential_types::Credentials::new(
            env("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            env("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            env("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("events")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| PublishError(e.to_string()))?
            .into();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AWSEvents.PutEvents"),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| PublishError(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| PublishError(e.to_string()))?
            .into_parts();
        let mut req = self.http.post(&self.endpoint);
        for (k, v) in headers.iter().copied().chain(instructions.headers()) {
            req = req.header(k, v);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| PublishError(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| PublishError(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            return Err(PublishError(format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        serde_json::from_str(&text).map_err(|e| PublishError(format!("answer: {e}")))
    }
}

impl Publisher for HttpPublisher {
    fn put<'a>(&'a self, bus: &'a str, source: &'a str, entries: &'a [Notice]) -> Putting<'a> {
        Box::pin(async move {
            let entries: Vec<Value> = entries
                .iter()
                .map(|n| {
                    json!({
                        "EventBusName": bus,
                        "Source": source,
                        "DetailType": n.detail_type,
                        "Detail": n.detail.to_string(),
                    })
                })
                .collect();
            let body = serde_json::to_vec(&json!({ "Entries": entries }))
                .map_err(|e| PublishError(e.to_string()))?;
            let answer = self.call(body).await?;
            Ok(answer
                .get("Entries")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|e| {
                            e.get("ErrorCode")
                                .and_then(Value::as_str)
                                .filter(|c| !c.is_empty())
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default())
        })
    }
}

/// A fake bus that records what it takes and refuses the first `refuse_first` entries
/// it is sent (tests).
#[derive(Debug, Default)]
pub struct RecordedBus {
    /// (bus, source, notice) of each entry taken.
    pub taken: std::sync::Mutex<Vec<(String, String, Notice)>>,
    /// How many entries to refuse (`ThrottlingException`) before taking any.
    pub refuse_first: std::sync::atomic::AtomicUsize,
    /// When set, every call fails with this message.
    pub fail_with: Option<String>,
}

impl Publisher for RecordedBus {
    fn put<'a>(&'a self, bus: &'a str, source: &'a str, entries: &'a [Notice]) -> Putting<'a> {
        Box::pin(async move {
            if let Some(m) = &self.fail_with {
                return Err(PublishError(m.clone()));
            }
            let mut out = Vec::new();
            for n in entries {
                let refuse = self
                    .refuse_first
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |r| r.checked_sub(1),
                    )
                    .is_ok();
                if refuse {
                    out.push(Some("ThrottlingException".to_owned()));
                } else {
                    if let Ok(mut t) = self.taken.lock() {
                        t.push((bus.to_owned(), source.to_owned(), n.clone()));
                    }
                    out.push(None);
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(n: u64) -> Notice {
        Notice {
            detail_type: ARCHIVED,
            detail: json!({ "n": n }),
        }
    }

    #[tokio::test]
    async fn refused_entries_are_sent_again_and_only_they() {
        let bus = RecordedBus {
            refuse_first: 1.into(),
            ..RecordedBus::default()
        };
        put_all(&bus, "b", "hookvault", vec![notice(1), notice(2)])
            .await
            .unwrap();
        let taken: Vec<Value> = bus
            .taken
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, n)| n.detail.clone())
            .collect();
        // The second was taken at once; the first, refused, came back alone.
        assert_eq!(taken, [json!({"n": 2}), json!({"n": 1})]);
    }

    #[tokio::test]
    async fn entries_refused_every_time_fail_the_call() {
        let bus = RecordedBus {
            refuse_first: 10.into(),
            ..RecordedBus::default()
        };
        let e = put_all(&bus, "b", "s", vec![notice(1)]).await.unwrap_err();
        assert!(e.0.contains("ThrottlingException"), "{e}");
        let down = RecordedBus {
            fail_with: Some("HTTP 500".into()),
            ..RecordedBus::default()
        };
        assert!(put_all(&down, "b", "s", vec![notice(1)]).await.is_err());
    }

    #[test]
    fn settings_name_the_bus_and_default_the_source() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(settings(env(&[])), None);
        assert_eq!(settings(env(&[("EVENT_BUS_NAME", " ")])), None);
        assert_eq!(
            settings(env(&[("EVENT_BUS_NAME", "app")])),
            Some(("app".into(), "hookvault".into()))
        );
        assert_eq!(
            settings(env(&[
                ("EVENT_BUS_NAME", "app"),
                ("EVENT_SOURCE", "acme.archive")
            ])),
            Some(("app".into(), "acme.archive".into()))
        );
    }

    #[test]
    fn details_have_their_documented_members() {
        use hookvault_core::records::OutputRecord;
        let m = Windowed {
            record: Manifest {
                id: "p".into(),
                status: "succeeded".into(),
                model: None,
                event_id: "e".into(),
                archived_at: "t".into(),
                outputs: vec![OutputRecord {
                    index: 0,
                    pointer: "/0".into(),
                    source_url: "u".into(),
                    key: "predictions/p/0.png".into(),
                    bytes: 1,
                    sha256: "ab".into(),
                    content_type: "image/png".into(),
                }],
                output_key: None,
                raw_event: None,
                trace_id: None,
            },
            window: None,
        };
        let d = archived_detail("n", "skytells", "b", "predictions/p/manifest.json", &m);
        let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = ARCHIVED_DETAIL_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        let file: Vec<&str> = d["files"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = FILE_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(file, want);
        let f = Windowed {
            record: FailureRecord {
                id: "p".into(),
                status: "succeeded".into(),
                error_id: Some("OUTPUT_EXPIRED".into()),
                error_message: None,
                output_index: Some(0),
                output_pointer: None,
                raw_event: None,
                event_id: "e".into(),
                recorded_at: "t".into(),
                trace_id: None,
            },
            window: None,
        };
        let d = failed_detail("n", "skytells", "b", "k", &f);
        let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = FAILED_DETAIL_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
    }

    #[test]
    fn notification_ids_are_stable_per_outcome() {
        let a = notification_id("skytells", "p1", ARCHIVED);
        assert_eq!(a, notification_id("skytells", "p1", ARCHIVED));
        assert_ne!(a, notification_id("skytells", "p1", ARCHIVE_FAILED));
        assert_eq!(a.len(), 64);
    }
}
