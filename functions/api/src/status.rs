//! `GET /predictions/{id}`: the archive's record of a prediction.
//!
//! | record | answer |
//! |---|---|
//! | `predictions/{id}/manifest.json` | 200 `{"id","status":"archived","model","event_id","archived_at","outputs":[{index,pointer,source_url,url,expires_in,bytes,sha256,content_type}],"output","output_url","event"}` |
//! | `predictions/{id}/failure.json` | 200 `{"id","status":<the prediction's>,"event_id","error":{"id","message","output_index","output_pointer"},"recorded_at","event"}` |
//! | `predictions/{id}/state.json` only | 200 `{"id","status":<the prediction's latest status: queued, starting, started, processing, … or a terminal one whose archive is not written yet>,"archived":false,"event_id","updated_at","event"}` |
//! | none | 404: unknown, or no webhook of it archived yet |
//!
//! The first terminal state wins (`hookvault_core::state`): a `started` after `succeeded`,
//! or a `failed` after `succeeded`, never changes the answer.
//!
//! * `output` is the parsed content of `output.json` (the prediction's `output` value as
//!   the provider sent it, whatever its shape), and `output_url` a presigned URL of it;
//!   `output` is `null` when the file is over 4 MiB (`output_url` still serves it).
//! * `event` is the raw event's evidence, from `events/{provider}/{sha256}/event.json`:
//!   `event_id`, `scheme`, `key_id`, `key_slot`, `received_at_ms`, `body_sha256`,
//!   `body_bytes` (bytes), `signature_headers` (`[name, value]` pairs as received),
//!   `content_type`, and `body_url`, a presigned URL of the exact bytes.
//! * Every presigned URL is valid `PRESIGN_EXPIRY_SECS` (`expires_in`, seconds).
//! * A record written before these fields existed gives `null` for `output`,
//!   `output_url` and `event`, and `""` for `pointer`.

use aws_sdk_s3::presigning::PresigningConfig;
use hookvault_core::archive;
use hookvault_core::records::{EventRecord, FailureRecord, Manifest};
use hookvault_core::state::StateRecord;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::Api;

/// Largest record read (and largest `output.json` inlined as `output`), bytes.
const MAX_RECORD_BYTES: i64 = 4 * 1024 * 1024;

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::new(
        503,
        "archive_unavailable",
        "the archive could not be read; retry later",
    )
}

/// An object read from the archive.
enum Read {
    /// No such key.
    Missing,
    /// Larger than [`MAX_RECORD_BYTES`]: not read.
    TooLarge,
    /// Its bytes.
    Bytes(Vec<u8>),
}

/// The answer's `event`: the evidence of `r`, with `body_url` presigned for `expires_in`
/// seconds.
pub fn event_json(r: &EventRecord, body_url: &str, expires_in: u64) -> Value {
    json!({
        "event_id": r.event_id,
        "provider": r.provider,
        "scheme": r.scheme,
        "key_id": r.key_id,
        "key_slot": r.key_slot,
        "received_at_ms": r.received_at_ms,
        "body_sha256": r.body_sha256,
        "body_bytes": r.body_bytes,
        "content_type": r.content_type,
        "signature_headers": r.signature_headers,
        "body_url": body_url,
        "expires_in": expires_in,
    })
}

impl Api {
    /// The archive status of prediction `id`.
    pub async fn status(&self, id: &str) -> Result<Value, ApiError> {
        let id = archive::check_id(id).map_err(|_| {
            ApiError::new(
                400,
                "invalid_prediction_id",
                format!("a prediction id is 1 to {} characters of A-Z a-z 0-9 _ - ., starting with a letter or digit", archive::MAX_ID_LEN),
            )
        })?;
        let key = |k: Result<String, archive::LayoutError>| {
            k.map_err(|_| ApiError::new(400, "invalid_prediction_id", "bad prediction id"))
        };
        let expires_in = self.cfg.presign_expiry.as_secs();
        if let Some(bytes) = self.read(&key(archive::manifest_key(id))?).await? {
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| unavailable("manifest unreadable", e))?;
            let mut outputs = Vec::with_capacity(m.outputs.len());
            for o in &m.outputs {
                outputs.push(json!({
                    "index": o.index,
                    "pointer": o.pointer,
                    "source_url": o.source_url,
                    "url": self.presign(&o.key).await?,
                    "expires_in": expires_in,
                    "bytes": o.bytes,
                    "sha256": o.sha256,
                    "content_type": o.content_type,
                }));
            }
            let (output, output_url) = match &m.output_key {
                Some(k) => (self.output_value(k).await?, Some(self.presign(k).await?)),
                None => (Value::Null, None),
            };
            return Ok(json!({
                "id": m.id,
                "status": "archived",
                "model": m.model,
                "event_id": m.event_id,
                "archived_at": m.archived_at,
                "outputs": outputs,
                "output": output,
                "output_url": output_url,
                "event": self.event(m.raw_event.as_deref()).await?,
            }));
        }
        if let Some(bytes) = self.read(&key(archive::failure_key(id))?).await? {
            let f: FailureRecord = serde_json::from_slice(&bytes)
                .map_err(|e| unavailable("failure record unreadable", e))?;
            return Ok(json!({
                "id": f.id,
                "status": f.status,
                "event_id": f.event_id,
                "error": {
                    "id": f.error_id,
                    "message": f.error_message,
                    "output_index": f.output_index,
                    "output_pointer": f.output_pointer,
                },
                "recorded_at": f.recorded_at,
                "event": self.event(f.raw_event.as_deref()).await?,
            }));
        }
        if let Some(bytes) = self.read(&key(archive::state_key(id))?).await? {
            let st: StateRecord = serde_json::from_slice(&bytes)
                .map_err(|e| unavailable("state record unreadable", e))?;
            return Ok(json!({
                "id": st.id,
                "status": st.status,
                "archived": false,
                "event_id": st.event_id,
                "updated_at": st.updated_at,
                "event": self.event(st.raw_event.as_deref()).await?,
            }));
        }
        Err(ApiError::new(
            404,
            "not_found",
            format!("no archive record for prediction {id}: it is unknown, or no webhook of it is archived yet"),
        ))
    }

    /// A presigned `GET` of `key`, valid `PRESIGN_EXPIRY_SECS`.
    async fn presign(&self, key: &str) -> Result<String, ApiError> {
        let presigning = PresigningConfig::expires_in(self.cfg.presign_expiry)
            .map_err(|e| unavailable("presign config", e))?;
        let url = self
            .s3
            .get_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| unavailable("presign", hookvault_aws::sdk_error::short(&e)))?;
        Ok(url.uri().to_owned())
    }

    /// The parsed `output.json` at `key`; `null` when it is missing or over
    /// [`MAX_RECORD_BYTES`] (logged).
    async fn output_value(&self, key: &str) -> Result<Value, ApiError> {
        match self.read_within(key).await? {
            Read::Bytes(bytes) => serde_json::from_slice(hookvault_core::event::strip_bom(&bytes))
                .map_err(|e| unavailable("output.json unreadable", e)),
            Read::TooLarge => {
                tracing::info!(
                    key,
                    "output.json is over 4 MiB; answered by output_url only"
                );
                Ok(Value::Null)
            }
            Read::Missing => {
                tracing::warn!(key, "the manifest names an output.json that is not there");
                Ok(Value::Null)
            }
        }
    }

    /// The answer's `event` for the raw event whose `event.json` is `key`; `null` for a
    /// record without one, or when it is missing (logged).
    async fn event(&self, key: Option<&str>) -> Result<Value, ApiError> {
        let Some(key) = key else {
            return Ok(Value::Null);
        };
        let Some(bytes) = self.read(key).await? else {
            tracing::warn!(key, "the record names a raw event that is not there");
            return Ok(Value::Null);
        };
        let r: EventRecord =
            serde_json::from_slice(&bytes).map_err(|e| unavailable("event.json unreadable", e))?;
        let body_url = self.presign(&r.body_key).await?;
        Ok(event_json(&r, &body_url, self.cfg.presign_expiry.as_secs()))
    }

    /// The record at `key`, `None` if there is none; 503 when over [`MAX_RECORD_BYTES`].
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        match self.read_within(key).await? {
            Read::Missing => Ok(None),
            Read::TooLarge => Err(unavailable("record too large", key)),
            Read::Bytes(b) => Ok(Some(b)),
        }
    }

    /// The object at `key`, read only when at most [`MAX_RECORD_BYTES`].
    async fn read_within(&self, key: &str) -> Result<Read, ApiError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(Read::Missing)
            }
            Err(e) => {
                return Err(unavailable(
                    "S3 GetObject",
                    hookvault_aws::sdk_error::short(&e),
                ))
            }
        };
        if out.content_length().unwrap_or(0) > MAX_RECORD_BYTES {
            return Ok(Read::TooLarge);
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| unavailable("S3 read", e))?;
        Ok(Read::Bytes(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookvault_core::{KeySlot, Scheme};

    #[test]
    fn the_event_shows_the_evidence_and_the_body_url() {
        let r = EventRecord {
            envelope_version: 2,
            provider: "skytells".into(),
            scheme: Scheme::Skytells,
            event_id: "skytells:p:succeeded".into(),
            received_at_ms: 1_800_000_000_000,
            key_id: "k1".into(),
            key_slot: KeySlot::Current,
            signature_headers: vec![("x-skytells-signature".into(), "sha256=ab".into())],
            content_type: Some("application/json".into()),
            body_sha256: "ab".repeat(32),
            body_bytes: 12,
            body_key: "events/skytells/x/body".into(),
            prediction_id: Some("p".into()),
            status: Some("succeeded".into()),
            message_id: "m".into(),
            archived_at: "2026-01-01T00:00:00Z".into(),
            trace_id: None,
            reconciled: None,
        };
        let v = event_json(&r, "https://s3/x", 900);
        assert_eq!(v["scheme"], "skytells");
        assert_eq!(v["key_slot"], "current");
        assert_eq!(v["body_bytes"], 12);
        assert_eq!(
            v["signature_headers"],
            json!([["x-skytells-signature", "sha256=ab"]])
        );
        assert_eq!(v["body_url"], "https://s3/x");
        assert_eq!(v["expires_in"], 900);
    }
}
