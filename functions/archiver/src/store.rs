//! The archive bucket: every S3 call the archiver makes, and its one error mapping.
//!
//! * [`Store::exists`] (`HeadObject`), [`Store::get`] (`GetObject`, `NoSuchKey` is
//!   `None`), [`Store::put_bytes`] / [`Store::put_json`] (`PutObject`),
//!   [`Store::put_if`] (a conditional `PutObject`: `If-None-Match: *` or `If-Match:
//!   <ETag>`, S3's conditional writes,
//!   <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>: 412
//!   Precondition Failed when the condition does not hold, 409 ConditionalRequestConflict
//!   when another write raced; both are [`Put::ConditionFailed`]);
//! * the multipart calls [`crate::upload`] streams through: `CreateMultipartUpload`,
//!   `UploadPart`, `CompleteMultipartUpload`, `AbortMultipartUpload`.
//!
//! Every SDK error becomes a [`StoreError`]: the operation, the service's code and message
//! ([`hookvault_aws::sdk_error::short`]) and the HTTP status when S3 answered. Nothing in
//! this module knows what the archiver does with the objects.

use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

/// Now as RFC 3339 UTC (second precision): the `*_at` fields of what is written.
pub(crate) fn now_rfc3339() -> String {
    hookvault_core::time::rfc3339(hookvault_core::time::unix_now())
}

/// True when `s` can be sent as an HTTP header value as it is (S3's `Content-Type`):
/// 1 to 1,024 characters of visible ASCII, space or tab. A content type that came from
/// the network and is not is replaced by `application/octet-stream` when stored (the
/// original stays in `event.json`).
pub fn is_header_safe(s: &str) -> bool {
    (1..=1024).contains(&s.len()) && s.bytes().all(|c| c == b'\t' || (b' '..=b'~').contains(&c))
}

/// An S3 call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3 {op} failed: {message}")]
pub struct StoreError {
    /// The operation (`PutObject`, `GetObject (state)`, …).
    pub op: &'static str,
    /// What S3 said, short: its error code and message, or the first causes of a request
    /// that got no answer.
    pub message: String,
    /// The HTTP status S3 answered with; `None` when there was no answer.
    pub status: Option<u16>,
    /// S3's error code (`NoSuchUpload`, `InternalError`, …), when it gave one.
    pub code: Option<String>,
}

impl StoreError {
    /// A failure of `op` that is not an SDK error (a task that panicked, a missing field).
    pub fn other(op: &'static str, message: impl Into<String>) -> Self {
        StoreError {
            op,
            message: message.into(),
            status: None,
            code: None,
        }
    }
}

/// An object read whole by [`Store::get_small`].
#[derive(Debug, Clone)]
pub struct SmallObject {
    /// Its ETag.
    pub etag: String,
    /// Its bytes; `None` when it was over the size asked for.
    pub bytes: Option<bytes::Bytes>,
}

/// The one mapping of an SDK error of `op` to a [`StoreError`].
pub(crate) fn sdk<E: std::error::Error + ProvideErrorMetadata + 'static>(
    op: &'static str,
) -> impl Fn(SdkError<E>) -> StoreError {
    move |e| StoreError {
        op,
        message: hookvault_aws::sdk_error::short(&e),
        status: e.raw_response().map(|r| r.status().as_u16()),
        code: e.code().map(str::to_owned),
    }
}

/// The condition of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition<'a> {
    /// `If-None-Match: *`: only if no object has the key.
    Absent,
    /// `If-Match: <ETag>`: only if the object is still this version.
    Matches(&'a str),
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Written.
    Written,
    /// Not written: the condition did not hold (412) or another write raced (409).
    ConditionFailed,
}

/// The archive bucket and its client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    bucket: Arc<str>,
}

impl Store {
    /// `bucket` through `s3`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str) -> Self {
        Store {
            s3,
            bucket: Arc::from(bucket),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// True when `key` exists ([`Store::head`]; 404 is `false`).
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.head(key).await?.is_some())
    }

    /// The size in bytes and ETag of `key`, `None` when there is no such object
    /// (`HeadObject`).
    pub async fn head(&self, key: &str) -> Result<Option<(u64, String)>, StoreError> {
        match self
            .s3
            .head_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some((
                o.content_length()
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                o.e_tag().unwrap_or_default().to_owned(),
            ))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(sdk("HeadObject")(e)),
        }
    }

    /// `GetObject` of `bucket`/`key` (`op` names it in errors); `None` on `NoSuchKey`.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        op: &'static str,
    ) -> Result<Option<GetObjectOutput>, StoreError> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(sdk(op)(e)),
        }
    }

    /// A small object (a record, a state, a marker) of this bucket read whole, with its
    /// ETag; `bytes` is `None` when it is larger than `max_bytes` (it is not read). `None`
    /// when there is no such key.
    pub async fn get_small(
        &self,
        key: &str,
        max_bytes: i64,
        op: &'static str,
    ) -> Result<Option<SmallObject>, StoreError> {
        let Some(out) = self.get(self.bucket(), key, op).await? else {
            return Ok(None);
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        if out.content_length().unwrap_or(0) > max_bytes {
            return Ok(Some(SmallObject { etag, bytes: None }));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::other(op, format!("reading the body: {e}")))?
            .into_bytes();
        Ok(Some(SmallObject {
            etag,
            bytes: Some(bytes),
        }))
    }

    /// `PutObject` of `body` at `key` with `content_type` (`op` names it in errors).
    pub async fn put_bytes(
        &self,
        key: &str,
        body: impl Into<ByteStream>,
        content_type: &str,
        op: &'static str,
    ) -> Result<(), StoreError> {
        self.s3
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(sdk(op))?;
        Ok(())
    }

    /// `value` as pretty JSON at `key` (`application/json`).
    pub async fn put_json<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(value)
            .map_err(|e| StoreError::other("PutObject", e.to_string()))?;
        self.put_bytes(key, body, "application/json", "PutObject")
            .await
    }

    /// A conditional `PutObject` (see the module's documentation).
    pub async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Condition<'_>,
        op: &'static str,
    ) -> Result<Put, StoreError> {
        let put = self
            .s3
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        let put = match condition {
            Condition::Absent => put.if_none_match("*"),
            Condition::Matches(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(_) => Ok(Put::Written),
            Err(e)
                if matches!(
                    e.raw_response().map(|r| r.status().as_u16()),
                    Some(409 | 412)
                ) =>
            {
                Ok(Put::ConditionFailed)
            }
            Err(e) => Err(sdk(op)(e)),
        }
    }

    /// `CreateMultipartUpload` of `key`: its upload id.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<String, StoreError> {
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(sdk("CreateMultipartUpload"))?;
        created
            .upload_id
            .ok_or_else(|| StoreError::other("CreateMultipartUpload", "no upload id"))
    }

    /// `UploadPart` number `number` (from 1) of `upload_id`.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: bytes::Bytes,
    ) -> Result<CompletedPart, StoreError> {
        let out = self
            .s3
            .upload_part()
            .bucket(self.bucket())
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(sdk("UploadPart"))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag)
            .build())
    }

    /// `CompleteMultipartUpload` of `upload_id` with `parts` (in order), `total_bytes` in
    /// all.
    ///
    /// S3 may answer a completion that failed with `200 OK` and an error body
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html>:
    /// "a 200 OK response can contain either a success or an error"); the SDK reads that
    /// as the error, and retries it when it is retryable. A completion that succeeded but
    /// whose reply was lost is retried by the SDK too, and S3 answers the retry
    /// `NoSuchUpload`: the upload is gone because it completed (awslabs/aws-sdk-rust#1163).
    /// On `NoSuchUpload` the object is read back (`HeadObject`): when it has `total_bytes`
    /// and the multipart ETag of these parts (the MD5 of their MD5s, `-` and their count,
    /// as S3 computes it for SSE-S3 objects), it is ours and the completion is a success.
    /// Otherwise the error stands.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        total_bytes: u64,
    ) -> Result<(), StoreError> {
        let expected_etag = multipart_etag(&parts);
        let done = self
            .s3
            .complete_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(sdk("CompleteMultipartUpload"));
        let err = match done {
            Ok(_) => return Ok(()),
            Err(e) if e.code.as_deref() == Some("NoSuchUpload") => e,
            Err(e) => return Err(e),
        };
        match (self.head(key).await?, expected_etag) {
            (Some((size, etag)), Some(expected))
                if size == total_bytes && etag.trim_matches('"') == expected =>
            {
                tracing::warn!(key, etag = %expected, "CompleteMultipartUpload answered NoSuchUpload, and the object is there with this upload's size and ETag: the completion succeeded and its reply was lost");
                Ok(())
            }
            _ => Err(err),
        }
    }

    /// `AbortMultipartUpload` of `upload_id`.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.s3
            .abort_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(sdk("AbortMultipartUpload"))?;
        Ok(())
    }
}

/// The ETag S3 gives the object a multipart upload of `parts` completes into: the MD5 of
/// the concatenated binary MD5s of the parts (their ETags), `-`, and the number of parts.
/// `None` when a part's ETag is not an MD5 in hex (SSE-KMS objects, checksum-only parts).
pub fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    use md5::Digest;
    let mut md5s = Vec::with_capacity(parts.len() * 16);
    for p in parts {
        let digest = hex::decode(p.e_tag()?.trim_matches('"')).ok()?;
        if digest.len() != 16 {
            return None;
        }
        md5s.extend_from_slice(&digest);
    }
    Some(format!(
        "{}-{}",
        hex::encode(md5::Md5::digest(&md5s)),
        parts.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_safe_content_types() {
        for ok in ["application/json", "text/plain; charset=utf-8", "a\tb"] {
            assert!(is_header_safe(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain\r\nx: y",
            "t\u{e9}xt/plain",
            &"a".repeat(1025),
        ] {
            assert!(!is_header_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn multipart_etags_as_s3_computes_them() {
        use md5::Digest;
        let part = |bytes: &[u8], n: i32| {
            CompletedPart::builder()
                .part_number(n)
                .e_tag(format!("\"{}\"", hex::encode(md5::Md5::digest(bytes))))
                .build()
        };
        let parts = [part(b"a", 1), part(b"b", 2)];
        let mut md5s = md5::Md5::digest(b"a").to_vec();
        md5s.extend_from_slice(&md5::Md5::digest(b"b"));
        assert_eq!(
            multipart_etag(&parts),
            Some(format!("{}-2", hex::encode(md5::Md5::digest(&md5s))))
        );
        let kms = CompletedPart::builder()
            .part_number(1)
            .e_tag("not-md5")
            .build();
        assert_eq!(multipart_etag(&[kms]), None);
        assert_eq!(multipart_etag(&[CompletedPart::builder().build()]), None);
    }

    #[test]
    fn store_errors_read_as_before() {
        let e = StoreError::other("PutObject (state)", "SlowDown: Please reduce");
        assert_eq!(
            e.to_string(),
            "S3 PutObject (state) failed: SlowDown: Please reduce"
        );
    }
}
