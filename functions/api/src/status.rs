//! `GET /predictions/{id}`: the archive's record of a prediction.
//!
//! | record | answer |
//! |---|---|
//! | `predictions/{id}/manifest.json` | 200 `{"id","status":"archived","model","archived_at","outputs":[{index,url,expires_in,bytes,sha256,content_type}]}`, each `url` presigned for `PRESIGN_EXPIRY_SECS` |
//! | `predictions/{id}/failure.json` | 200 `{"id","status":<the prediction's>,"error":{"id","message","output_index"},"recorded_at"}` |
//! | neither | 404: unknown, still running, or not archived yet |

use aws_sdk_s3::presigning::PresigningConfig;
use hookvault_core::archive;
use hookvault_core::records::{FailureRecord, Manifest};
use serde_json::json;

use crate::error::ApiError;
use crate::Api;

/// Largest record read.
const MAX_RECORD_BYTES: i64 = 4 * 1024 * 1024;

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::new(
        503,
        "archive_unavailable",
        "the archive could not be read; retry later",
    )
}

impl Api {
    /// The archive status of prediction `id`.
    pub async fn status(&self, id: &str) -> Result<serde_json::Value, ApiError> {
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
        if let Some(bytes) = self.read(&key(archive::manifest_key(id))?).await? {
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| unavailable("manifest unreadable", e))?;
            let mut outputs = Vec::with_capacity(m.outputs.len());
            let presigning = PresigningConfig::expires_in(self.cfg.presign_expiry)
                .map_err(|e| unavailable("presign config", e))?;
            for o in &m.outputs {
                let url = self
                    .s3
                    .get_object()
                    .bucket(&self.cfg.bucket)
                    .key(&o.key)
                    .presigned(presigning.clone())
                    .await
                    .map_err(|e| {
                        unavailable("presign", aws_sdk_s3::error::DisplayErrorContext(e))
                    })?;
                outputs.push(json!({
                    "index": o.index,
                    "url": url.uri(),
                    "expires_in": self.cfg.presign_expiry.as_secs(),
                    "bytes": o.bytes,
                    "sha256": o.sha256,
                    "content_type": o.content_type,
                }));
            }
            return Ok(json!({
                "id": m.id,
                "status": "archived",
                "model": m.model,
                "archived_at": m.archived_at,
                "outputs": outputs,
            }));
        }
        if let Some(bytes) = self.read(&key(archive::failure_key(id))?).await? {
            let f: FailureRecord = serde_json::from_slice(&bytes)
                .map_err(|e| unavailable("failure record unreadable", e))?;
            return Ok(json!({
                "id": f.id,
                "status": f.status,
                "error": {"id": f.error_id, "message": f.error_message, "output_index": f.output_index},
                "recorded_at": f.recorded_at,
            }));
        }
        Err(ApiError::new(
            404,
            "not_found",
            format!("no archive record for prediction {id}: it is unknown, still running, or not archived yet"),
        ))
    }

    /// The object at `key`, `None` if there is none.
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(unavailable(
                    "S3 GetObject",
                    aws_sdk_s3::error::DisplayErrorContext(e),
                ))
            }
        };
        if out.content_length().unwrap_or(0) > MAX_RECORD_BYTES {
            return Err(unavailable("record too large", key));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| unavailable("S3 read", e))?;
        Ok(Some(bytes.to_vec()))
    }
}
