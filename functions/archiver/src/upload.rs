//! Streams one download into S3 with bounded memory.
//!
//! Bytes are gathered into parts of `part_bytes`. A body that ends within the first part
//! is one `PutObject`. A longer body is a multipart upload with at most `parts_in_flight`
//! parts uploading while the next one fills: peak memory is about
//! `(parts_in_flight + 1) × part_bytes`, whatever the output's size. SHA-256 and the size
//! are computed on the way. Any error aborts the multipart upload, so no half-written
//! object is ever visible.

use aws_sdk_s3::types::CompletedPart;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::data_uri::DataUriError;
use crate::download::{Download, DownloadError};
use crate::store::{Store, StoreError};

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Bytes written.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of those bytes.
    pub sha256: String,
}

/// Why an output could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The download failed, before or while streaming.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// A `data:` URI could not be decoded, or is too large.
    #[error(transparent)]
    DataUri(#[from] DataUriError),
    /// S3 refused or failed.
    #[error(transparent)]
    S3(#[from] StoreError),
}

impl UploadError {
    /// True when a later redelivery may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            UploadError::Download(d) => d.is_transient(),
            UploadError::DataUri(_) => false,
            UploadError::S3(_) => true,
        }
    }

    /// The `error_id` written to `failure.json` when the error is permanent.
    pub fn error_id(&self) -> &'static str {
        match self {
            UploadError::Download(d) => d.error_id(),
            UploadError::DataUri(d) => d.error_id(),
            UploadError::S3(_) => "OUTPUT_STORE_FAILED",
        }
    }
}

/// A failure of `op` that is not S3's answer (a task that panicked or was cancelled).
fn task_err(op: &'static str) -> impl Fn(String) -> UploadError {
    move |message| UploadError::S3(StoreError::other(op, message))
}

/// Where and how to store.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The bucket.
    pub store: &'a Store,
    /// The key.
    pub key: &'a str,
    /// The content type to store.
    pub content_type: &'a str,
    /// Part size.
    pub part_bytes: usize,
    /// Parts in flight.
    pub parts_in_flight: usize,
    /// Size cap.
    pub max_bytes: u64,
}

struct Reader {
    stream: futures_util::stream::BoxStream<'static, Result<Bytes, reqwest::Error>>,
    hasher: Sha256,
    total: u64,
    max: u64,
    leftover: Option<Bytes>,
}

impl Reader {
    /// The next part of up to `size` bytes; `None` at the end.
    async fn part(&mut self, size: usize) -> Result<Option<Bytes>, UploadError> {
        let mut buf = BytesMut::with_capacity(size);
        if let Some(rest) = self.leftover.take() {
            self.take(&mut buf, rest, size);
        }
        while buf.len() < size {
            match self.stream.next().await {
                None => break,
                Some(Err(e)) => {
                    return Err(DownloadError::Unavailable(format!(
                        "download interrupted: {}",
                        e.without_url()
                    ))
                    .into());
                }
                Some(Ok(chunk)) => {
                    self.total += chunk.len() as u64;
                    if self.total > self.max {
                        return Err(DownloadError::TooLarge(self.max).into());
                    }
                    self.hasher.update(&chunk);
                    self.take(&mut buf, chunk, size);
                }
            }
        }
        Ok(if buf.is_empty() {
            None
        } else {
            Some(buf.freeze())
        })
    }

    fn take(&mut self, buf: &mut BytesMut, mut chunk: Bytes, size: usize) {
        let room = size - buf.len();
        if chunk.len() > room {
            self.leftover = Some(chunk.split_off(room));
        }
        buf.extend_from_slice(&chunk);
    }
}

/// Streams `download` into `t.key`.
pub async fn store(download: Download, t: &Target<'_>) -> Result<Stored, UploadError> {
    let mut reader = Reader {
        stream: download.response.bytes_stream().boxed(),
        hasher: Sha256::new(),
        total: 0,
        max: t.max_bytes,
        leftover: None,
    };
    let first = reader.part(t.part_bytes).await?.unwrap_or_default();
    if first.len() < t.part_bytes {
        // The whole output fits in one part: a single PutObject.
        t.store
            .put_bytes(t.key, first, t.content_type, "PutObject")
            .await?;
        return Ok(Stored {
            bytes: reader.total,
            sha256: hex::encode(reader.hasher.finalize()),
        });
    }
    let upload_id = t.store.create_multipart(t.key, t.content_type).await?;
    match multipart(&mut reader, first, t, &upload_id).await {
        Ok(parts) => {
            t.store
                .complete_multipart(t.key, &upload_id, parts, reader.total)
                .await?;
            Ok(Stored {
                bytes: reader.total,
                sha256: hex::encode(reader.hasher.finalize()),
            })
        }
        Err(e) => {
            // Nothing half-written stays: abort (and the bucket's lifecycle rule cleans up
            // after an abort that itself fails).
            if let Err(abort) = t.store.abort_multipart(t.key, &upload_id).await {
                tracing::error!(key = t.key, error = %abort, "abort of a failed multipart upload failed");
            }
            Err(e)
        }
    }
}

async fn multipart(
    reader: &mut Reader,
    first: Bytes,
    t: &Target<'_>,
    upload_id: &str,
) -> Result<Vec<CompletedPart>, UploadError> {
    let slots = std::sync::Arc::new(Semaphore::new(t.parts_in_flight));
    let mut tasks: JoinSet<Result<CompletedPart, UploadError>> = JoinSet::new();
    let mut parts = Vec::new();
    let mut next = Some(first);
    let mut number = 0i32;
    while let Some(part) = next.take() {
        number += 1;
        let permit = std::sync::Arc::clone(&slots)
            .acquire_owned()
            .await
            .map_err(|e| task_err("UploadPart")(e.to_string()))?;
        let (store, key, upload_id) = (t.store.clone(), t.key.to_owned(), upload_id.to_owned());
        tasks.spawn(async move {
            let done = store.upload_part(&key, &upload_id, number, part).await?;
            drop(permit);
            Ok(done)
        });
        // Collect what finished; a part that failed stops the upload now.
        while let Some(done) = tasks.try_join_next() {
            parts.push(done.map_err(|e| task_err("UploadPart")(e.to_string()))??);
        }
        next = reader.part(t.part_bytes).await?;
    }
    while let Some(done) = tasks.join_next().await {
        parts.push(done.map_err(|e| task_err("UploadPart")(e.to_string()))??);
    }
    parts.sort_by_key(|p| p.part_number);
    Ok(parts)
}
