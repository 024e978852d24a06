//! The drainer's I/O, behind two small traits so the logic ([`crate::drain`]) is tested
//! with fakes: [`Spool`] (S3: list, get, delete under `spool/`) and [`Queue`] (SQS's
//! `SendMessage`). [`S3Spool`] and [`SqsQueue`] are the AWS SDK's.

use std::future::Future;

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::message::Message;

/// Why a spool or queue call failed: the SDK's error, short
/// (`hookvault_aws::sdk_error::short`: the service's code and message, or what stopped
/// the request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// S3 (`ListObjectsV2`, `GetObject`, `DeleteObject`) failed.
    #[error("S3 {op} failed: {reason}")]
    S3 {
        /// The operation.
        op: &'static str,
        /// The SDK's error, short.
        reason: String,
    },
    /// SQS's `SendMessage` failed (throttled, refused, unreachable): the object stays.
    #[error("SQS SendMessage failed: {0}")]
    Sqs(String),
}

/// What a `GetObject` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object's bytes (at most the cap).
    Object(Vec<u8>),
    /// No such key (drained by another invocation already).
    Missing,
    /// Larger than the cap: not read. The object's size in bytes.
    TooLarge(u64),
}

/// One page of a listing: keys, and the token of the next page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The keys, in S3's (UTF-8 binary) order.
    pub keys: Vec<String>,
    /// `NextContinuationToken`, when there is more.
    pub next: Option<String>,
}

/// The spool bucket.
pub trait Spool: Send + Sync {
    /// One page of the keys under `prefix`, from `token` (`None`: the first page).
    fn list(
        &self,
        prefix: &str,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
    /// The object at `key`, if it is at most `max_bytes` long.
    fn get(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Fetched, StoreError>> + Send;
    /// Deletes `key` (S3 answers 204 whether or not it existed).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The events queue.
pub trait Queue: Send + Sync {
    /// Sends `message`; SQS's `MessageId` once SQS took it.
    fn send(&self, message: &Message) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// The spool in S3 through the SDK.
#[derive(Debug, Clone)]
pub struct S3Spool {
    /// The client.
    pub client: aws_sdk_s3::Client,
    /// The spool bucket.
    pub bucket: String,
}

impl Spool for S3Spool {
    async fn list(&self, prefix: &str, token: Option<String>) -> Result<Page, StoreError> {
        // https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html: up to
        // 1,000 keys a page, in UTF-8 binary order.
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| StoreError::S3 {
                op: "ListObjectsV2",
                reason: hookvault_aws::sdk_error::short(&e),
            })?;
        Ok(Page {
            keys: out
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect(),
            next: out
                .next_continuation_token()
                .filter(|_| out.is_truncated() == Some(true))
                .map(str::to_owned),
        })
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Fetched, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(Fetched::Missing)
            }
            // S3 answers a GetObject of a missing key with 403 AccessDenied to a caller
            // without s3:ListBucket on the bucket
            // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
            // "Permissions"), and it checks that with no prefix in the request context,
            // so the template's ListBucket (narrowed by an s3:prefix condition to
            // `spool/*`) does not count. A listing of the key itself tells a key already
            // drained from a real denial.
            Err(e) if aws_sdk_s3::error::ProvideErrorMetadata::code(&e) == Some("AccessDenied") => {
                let page = self.list(key, None).await?;
                if !page.keys.iter().any(|k| k == key) {
                    return Ok(Fetched::Missing);
                }
                return Err(StoreError::S3 {
                    op: "GetObject",
                    reason: hookvault_aws::sdk_error::short(&e),
                });
            }
            Err(e) => {
                return Err(StoreError::S3 {
                    op: "GetObject",
                    reason: hookvault_aws::sdk_error::short(&e),
                })
            }
        };
        // S3 sends Content-Length with every GetObject answer; the body is not read when
        // it is over the cap (dropping it closes the connection).
        let length = out.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(n) = length.filter(|n| *n > max_bytes) {
            return Ok(Fetched::TooLarge(n));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::S3 {
                op: "GetObject",
                reason: format!("reading the body: {e}"),
            })?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Ok(Fetched::TooLarge(bytes.len() as u64));
        }
        Ok(Fetched::Object(bytes.to_vec()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::S3 {
                op: "DeleteObject",
                reason: hookvault_aws::sdk_error::short(&e),
            })
    }
}

/// The events queue through the SDK.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    /// The client.
    pub client: aws_sdk_sqs::Client,
    /// The queue's URL.
    pub queue_url: String,
}

impl Queue for SqsQueue {
    async fn send(&self, message: &Message) -> Result<String, StoreError> {
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body);
        for (name, value) in &message.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| StoreError::Sqs(e.to_string()))?;
            send = send.message_attributes(*name, value);
        }
        if let Some((group, dedup)) = &message.fifo {
            send = send.message_group_id(group).message_deduplication_id(dedup);
        }
        let out = send
            .send()
            .await
            .map_err(|e| StoreError::Sqs(hookvault_aws::sdk_error::short(&e)))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
