//! Where records are kept: the [`RecordStore`] trait (read with the ETag, write if absent
//! or if still a given ETag, delete if still a given ETag) and [`S3Store`], the archive
//! bucket with S3's conditional writes
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>).
//! [`super::memory::MemoryStore`] is the same contract in memory, for the race tests.

use std::future::Future;

/// Largest record read (a record holds at most a 1 MiB provider answer).
pub const MAX_RECORD_BYTES: i64 = 4 * 1024 * 1024;

/// The condition of a record write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `If-None-Match: *`: only if there is no record.
    Absent,
    /// `If-Match: <etag>`: only if the record is still that one.
    Match(String),
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Written; its ETag.
    Written(String),
    /// Refused: the record exists, or changed (412), or another write overlapped (409).
    Taken,
    /// `If-Match` on a record that is gone (404).
    Missing,
}

/// The outcome of a conditional delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The record was the one named, and is gone.
    Gone,
    /// The record had changed or was already gone (412, 404): nothing was deleted.
    Changed,
}

/// A record's bytes as stored, and its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The object's bytes.
    pub body: Vec<u8>,
    /// Its ETag, as the store gives it (S3 quotes it).
    pub etag: String,
}

/// A store could not be read or written: the request is answered 503
/// `idempotency_unavailable`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct StoreError {
    /// The operation, for the log line's message.
    pub what: &'static str,
    /// What went wrong.
    pub detail: String,
}

impl StoreError {
    /// An error of operation `what`.
    pub fn new(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError {
            what,
            detail: detail.to_string(),
        }
    }
}

/// One object per key, written and deleted only under a condition on its ETag: the whole
/// of what the idempotency flow needs from S3.
pub trait RecordStore: Send + Sync {
    /// The object at `key` with its ETag; `None` if there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;

    /// Writes `body` at `key` under `condition`.
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: &Condition,
    ) -> impl Future<Output = Result<Put, StoreError>> + Send;

    /// Deletes the object at `key` if its ETag is still `etag` (any object if `etag` is
    /// empty).
    fn delete(
        &self,
        key: &str,
        etag: &str,
    ) -> impl Future<Output = Result<Deleted, StoreError>> + Send;
}

/// The records in the archive bucket.
#[derive(Debug, Clone, Copy)]
pub struct S3Store<'a> {
    /// The S3 client.
    pub s3: &'a aws_sdk_s3::Client,
    /// The archive bucket.
    pub bucket: &'a str,
}

impl RecordStore for S3Store<'_> {
    async fn get(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        let out = self
            .s3
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(StoreError::new(
                    "S3 GetObject (idempotency record)",
                    hookvault_aws::sdk_error::short(&e),
                ))
            }
        };
        if out.content_length().unwrap_or(0) > MAX_RECORD_BYTES {
            return Err(StoreError::new("idempotency record too large", key));
        }
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::new("S3 read (idempotency record)", e))?
            .into_bytes()
            .to_vec();
        Ok(Some(Stored { body, etag }))
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: &Condition,
    ) -> Result<Put, StoreError> {
        let put = self
            .s3
            .put_object()
            .bucket(self.bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into());
        let put = match condition {
            Condition::Absent => put.if_none_match("*"),
            Condition::Match(etag) if !etag.is_empty() => put.if_match(etag),
            // S3 always sends an ETag; without one there is nothing to match.
            Condition::Match(_) => put,
        };
        match put.send().await {
            Ok(out) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_owned())),
            Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
                Some(409 | 412) => Ok(Put::Taken),
                Some(404) if matches!(condition, Condition::Match(_)) => Ok(Put::Missing),
                _ => Err(StoreError::new(
                    "S3 PutObject (idempotency record)",
                    hookvault_aws::sdk_error::short(&e),
                )),
            },
        }
    }

    async fn delete(&self, key: &str, etag: &str) -> Result<Deleted, StoreError> {
        let mut del = self.s3.delete_object().bucket(self.bucket).key(key);
        if !etag.is_empty() {
            del = del.if_match(etag);
        }
        match del.send().await {
            Ok(_) => Ok(Deleted::Gone),
            Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
                Some(404 | 412) => Ok(Deleted::Changed),
                _ => Err(StoreError::new(
                    "S3 DeleteObject (idempotency record)",
                    hookvault_aws::sdk_error::short(&e),
                )),
            },
        }
    }
}
