//! Streams one download into S3 with bounded memory.
//!
//! Bytes are gathered into parts of `part_bytes`. A body that ends within the first part
//! is one `PutObject`. A longer body is a multipart upload with at most `parts_in_flight`
//! parts uploading while the next one fills: peak memory is about
//! `(parts_in_flight + 1) × part_bytes`, whatever the output's size. SHA-256 and the size
//! are computed on the way. Any error aborts the multipart upload, so no half-written
//! object is ever visible.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::data_uri::DataUriError;
use crate::download::{Download, DownloadError};

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
    #[error("S3 {op} failed: {message}")]
    S3 {
        /// The operation.
        op: &'static str,
        /// What S3 said.
        message: String,
    },
}

impl UploadError {
    /// True when a later redelivery may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            UploadError::Download(d) => d.is_transient(),
            UploadError::DataUri(_) => false,
            UploadError::S3 { .. } => true,
        }
    }

    /// The `error_id` written to `failure.json` when the error is permanent.
    pub fn error_id(&self) -> &'static str {
        match self {
            UploadError::Download(d) => d.error_id(),
            UploadError::DataUri(d) => d.error_id(),
            UploadError::S3 { .. } => "OUTPUT_STORE_FAILED",
        }
    }
}

/// An SDK error of `op`, short: the service's code and message ([`hookvault_aws::sdk_error::short`]).
fn sdk_err<E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static>(
    op: &'static str,
) -> impl Fn(aws_sdk_s3::error::SdkError<E>) -> UploadError {
    move |e| UploadError::S3 {
        op,
        message: hookvault_aws::sdk_error::short(&e),
    }
}

fn s3_err(op: &'static str) -> impl Fn(String) -> UploadError {
    move |message| UploadError::S3 { op, message }
}

/// Where and how to store.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The client.
    pub s3: &'a aws_sdk_s3::Client,
    /// The bucket.
    pub bucket: &'a str,
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
        t.s3.put_object()
            .bucket(t.bucket)
            .key(t.key)
            .content_type(t.content_type)
            .body(ByteStream::from(first))
            .send()
            .await
            .map_err(sdk_err("PutObject"))?;
        return Ok(Stored {
            bytes: reader.total,
            sha256: hex::encode(reader.hasher.finalize()),
        });
    }
    let created =
        t.s3.create_multipart_upload()
            .bucket(t.bucket)
            .key(t.key)
            .content_type(t.content_type)
            .send()
            .await
            .map_err(sdk_err("CreateMultipartUpload"))?;
    let upload_id = created.upload_id.unwrap_or_default();
    match multipart(&mut reader, first, t, &upload_id).await {
        Ok(parts) => {
            t.s3.complete_multipart_upload()
                .bucket(t.bucket)
                .key(t.key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(sdk_err("CompleteMultipartUpload"))?;
            Ok(Stored {
                bytes: reader.total,
                sha256: hex::encode(reader.hasher.finalize()),
            })
        }
        Err(e) => {
            // Nothing half-written stays: abort (and the bucket's lifecycle rule cleans up
            // after an abort that itself fails).
            if let Err(abort) =
                t.s3.abort_multipart_upload()
                    .bucket(t.bucket)
                    .key(t.key)
                    .upload_id(&upload_id)
                    .send()
                    .await
            {
                tracing::error!(key = t.key, error = %hookvault_aws::sdk_error::short(&abort), "abort of a failed multipart upload failed");
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
            .map_err(|e| s3_err("UploadPart")(e.to_string()))?;
        let req =
            t.s3.upload_part()
                .bucket(t.bucket)
                .key(t.key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(part));
        tasks.spawn(async move {
            let out = req.send().await.map_err(sdk_err("UploadPart"))?;
            drop(permit);
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build())
        });
        // Collect what finished; a part that failed stops the upload now.
        while let Some(done) = tasks.try_join_next() {
            parts.push(done.map_err(|e| s3_err("UploadPart")(e.to_string()))??);
        }
        next = reader.part(t.part_bytes).await?;
    }
    while let Some(done) = tasks.join_next().await {
        parts.push(done.map_err(|e| s3_err("UploadPart")(e.to_string()))??);
    }
    parts.sort_by_key(|p| p.part_number);
    Ok(parts)
}
