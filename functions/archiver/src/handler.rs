//! One SQS batch in, one `SqsBatchResponse` out.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_s3::primitives::ByteStream;
use futures_util::stream::{self, StreamExt};
use hookvault_core::archive;
use hookvault_core::envelope::Envelope;
use hookvault_core::event::{Prediction, PredictionStatus};

use crate::config::ArchiverConfig;
use crate::download::{redact, Downloader};
use hookvault_core::records::{FailureRecord, Manifest, OutputRecord, RejectedRecord};

/// Now as RFC 3339 UTC (second precision).
fn now_rfc3339() -> String {
    hookvault_core::time::rfc3339(hookvault_core::time::unix_now())
}
use crate::upload::{self, Target, UploadError};

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every output stored and the manifest written.
    Archived {
        /// How many outputs.
        outputs: usize,
    },
    /// The manifest already existed: a duplicate or a redelivery.
    AlreadyArchived,
    /// `failure.json` written (failed/cancelled prediction, or outputs lost for good).
    FailureRecorded {
        /// The error id recorded.
        error_id: String,
    },
    /// A status with nothing to archive (`starting`, `processing`, unknown).
    Ignored,
    /// Unreadable: kept under `rejected/`.
    Rejected,
}

/// A failure worth a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

/// The archiver, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct Archiver {
    s3: aws_sdk_s3::Client,
    cfg: Arc<ArchiverConfig>,
    downloader: Downloader,
}

fn s3_error<E: std::error::Error + 'static>(
    op: &str,
    e: aws_sdk_s3::error::SdkError<E>,
) -> Transient {
    Transient(format!(
        "S3 {op} failed: {}",
        aws_sdk_s3::error::DisplayErrorContext(e)
    ))
}

impl Archiver {
    /// An archiver writing to `cfg.bucket` through `s3`.
    pub fn new(s3: aws_sdk_s3::Client, cfg: ArchiverConfig) -> Result<Self, reqwest::Error> {
        let downloader = Downloader::new(&cfg)?;
        Ok(Archiver {
            s3,
            cfg: Arc::new(cfg),
            downloader,
        })
    }

    /// Replaces the downloader (tests shorten its back-off).
    pub fn with_downloader(mut self, d: Downloader) -> Self {
        self.downloader = d;
        self
    }

    /// Handles a batch; every record that may succeed later is in `batch_item_failures`.
    pub async fn handle(&self, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            match self.process(&record, deadline).await {
                Ok(outcome) => tracing::info!(message_id = %id, outcome = ?outcome, "record done"),
                Err(Transient(reason)) => {
                    tracing::warn!(message_id = %id, reason = %reason, "record failed; SQS will redeliver it");
                    response.add_failure(id);
                }
            }
        }
        response
    }

    /// Handles one record.
    pub async fn process(
        &self,
        record: &SqsMessage,
        deadline: Option<Instant>,
    ) -> Result<Outcome, Transient> {
        let message_id = record.message_id.clone().unwrap_or_default();
        let body = record.body.clone().unwrap_or_default();
        let envelope = match Envelope::from_json(&body) {
            Ok(e) => e,
            Err(e) => return self.reject(&message_id, &body, &e.to_string()).await,
        };
        let event = match envelope.event() {
            Ok(e) => e,
            Err(e) => return self.reject(&message_id, &body, &e.to_string()).await,
        };
        let p = event.prediction;
        if let Err(e) = archive::check_id(&p.id) {
            return self.reject(&message_id, &body, &e.to_string()).await;
        }
        match p.status {
            PredictionStatus::Succeeded => self.archive(&p, &envelope.event_id, deadline).await,
            PredictionStatus::Failed | PredictionStatus::Cancelled => {
                let (error_id, error_message) = provider_error(&p);
                tracing::info!(prediction = %p.id, status = p.status.as_str(), error_id = ?error_id, "prediction did not succeed; recording it");
                self.record_failure(&p, &envelope.event_id, error_id, error_message, None)
                    .await
            }
            _ => {
                tracing::info!(prediction = %p.id, status = p.status.as_str(), "nothing to archive for this status");
                Ok(Outcome::Ignored)
            }
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, Transient> {
        match self
            .s3
            .head_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(s3_error("HeadObject", e)),
        }
    }

    async fn put_json<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), Transient> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| Transient(e.to_string()))?;
        self.s3
            .put_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", e))?;
        Ok(())
    }

    async fn reject(
        &self,
        message_id: &str,
        body: &str,
        reason: &str,
    ) -> Result<Outcome, Transient> {
        tracing::error!(
            message_id,
            reason,
            "unreadable queue message; kept under rejected/ and acknowledged"
        );
        let record = RejectedRecord {
            message_id: message_id.to_owned(),
            reason: reason.to_owned(),
            body: body.to_owned(),
            rejected_at: now_rfc3339(),
        };
        self.put_json(&archive::rejected_key(message_id), &record)
            .await?;
        Ok(Outcome::Rejected)
    }

    async fn record_failure(
        &self,
        p: &Prediction,
        event_id: &str,
        error_id: Option<String>,
        error_message: Option<String>,
        output_index: Option<usize>,
    ) -> Result<Outcome, Transient> {
        let key = archive::failure_key(&p.id).map_err(|e| Transient(e.to_string()))?;
        let record = FailureRecord {
            id: p.id.clone(),
            status: p.status.as_str().to_owned(),
            error_id: error_id.clone(),
            error_message,
            output_index,
            event_id: event_id.to_owned(),
            recorded_at: now_rfc3339(),
        };
        self.put_json(&key, &record).await?;
        Ok(Outcome::FailureRecorded {
            error_id: error_id.unwrap_or_default(),
        })
    }

    async fn archive(
        &self,
        p: &Prediction,
        event_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Outcome, Transient> {
        let manifest_key = archive::manifest_key(&p.id).map_err(|e| Transient(e.to_string()))?;
        if self.exists(&manifest_key).await? {
            tracing::info!(prediction = %p.id, "already archived (manifest exists); skipping");
            return Ok(Outcome::AlreadyArchived);
        }
        // Owned (index, url) pairs: futures that borrow their arguments defeat the `Send`
        // inference lambda_runtime needs.
        let jobs = p
            .output
            .iter()
            .cloned()
            .enumerate()
            .map(|(index, url)| async move {
                self.archive_output(p, index, &url, deadline)
                    .await
                    .map_err(|e| (index, e))
            });
        let results: Vec<Result<OutputRecord, (usize, UploadError)>> = stream::iter(jobs)
            .buffered(self.cfg.outputs_in_flight)
            .collect()
            .await;
        let mut outputs = Vec::with_capacity(results.len());
        let mut permanent = None;
        for r in results {
            match r {
                Ok(o) => outputs.push(o),
                Err((index, e)) if e.is_transient() => {
                    return Err(Transient(format!("output {index}: {e}")));
                }
                Err((index, e)) => {
                    tracing::error!(prediction = %p.id, output = index, error = %e, "output cannot be archived");
                    permanent.get_or_insert((index, e));
                }
            }
        }
        if let Some((index, e)) = permanent {
            let id = match &e {
                UploadError::Download(d) => d.error_id(),
                UploadError::S3 { .. } => "OUTPUT_STORE_FAILED",
            };
            return self
                .record_failure(
                    p,
                    event_id,
                    Some(id.to_owned()),
                    Some(e.to_string()),
                    Some(index),
                )
                .await;
        }
        let count = outputs.len();
        let manifest = Manifest {
            id: p.id.clone(),
            status: "succeeded".to_owned(),
            model: p.model.clone(),
            event_id: event_id.to_owned(),
            archived_at: now_rfc3339(),
            outputs,
        };
        // Last: the manifest is the commit point.
        self.put_json(&manifest_key, &manifest).await?;
        tracing::info!(prediction = %p.id, outputs = count, "archived");
        Ok(Outcome::Archived { outputs: count })
    }

    async fn archive_output(
        &self,
        p: &Prediction,
        index: usize,
        url: &str,
        deadline: Option<Instant>,
    ) -> Result<OutputRecord, UploadError> {
        let key = archive::output_key(&p.id, index, url).map_err(|e| UploadError::S3 {
            op: "key",
            message: e.to_string(),
        })?;
        let download = self.downloader.open(url, deadline).await?;
        let content_type = download
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let target = Target {
            s3: &self.s3,
            bucket: &self.cfg.bucket,
            key: &key,
            content_type: &content_type,
            part_bytes: self.cfg.part_bytes,
            parts_in_flight: self.cfg.parts_in_flight,
            max_bytes: self.downloader.max_bytes(),
        };
        let stored = upload::store(download, &target).await?;
        tracing::info!(prediction = %p.id, output = index, key = %key, bytes = stored.bytes, "output stored");
        Ok(OutputRecord {
            index,
            source_url: redact(url).to_owned(),
            key,
            bytes: stored.bytes,
            sha256: stored.sha256,
            content_type,
        })
    }
}

/// The provider's error for a failed prediction: top-level `error_id`/`error_message`
/// (Prediction API) or the nested `error` object (Inference API style).
fn provider_error(p: &Prediction) -> (Option<String>, Option<String>) {
    if p.error_id.is_some() || p.error_message.is_some() {
        return (p.error_id.clone(), p.error_message.clone());
    }
    let nested = p.error.as_ref().filter(|e| e.is_object());
    let field = |k: &str| {
        nested
            .and_then(|e| e.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    (
        field("code").or_else(|| field("error_id")),
        field("message"),
    )
}

/// The batch future must be `Send` for lambda_runtime; this fails to compile if not.
#[allow(dead_code)]
fn assert_send(
    a: &Archiver,
    e: SqsEvent,
) -> impl std::future::Future<Output = SqsBatchResponse> + Send + '_ {
    a.handle(e, None)
}
