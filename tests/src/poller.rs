//! The local stand-in for Lambda's SQS event-source mapping: receive a batch, invoke the
//! function with an SQS event, delete what succeeded, leave the `batchItemFailures` to
//! come back when their visibility timeout ends. The queue's own redrive policy (set by
//! [`create_with_dlq`]) moves a message to the DLQ after `maxReceiveCount` receives, as
//! in AWS.
//!
//! Visibility as in AWS: each record carries its receipt handle and the queue's real ARN
//! (`eventSourceARN`, from the queue URL), so the archiver's `ChangeMessageVisibility`
//! before it reports a record (`functions/archiver/src/visibility.rs`) reaches this
//! queue and decides when the record comes back; a record whose change failed, or a batch
//! whose invocation failed, comes back after the receive's visibility timeout
//! ([`Poller::visibility_timeout`], the queue's `VisibilityTimeout` in AWS). Only
//! succeeded records are deleted: nothing here changes a failed record's visibility.

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{json, Value};

use crate::lambda::LambdaFunction;
use crate::StackError;

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(format!("poller: {e}"))
}

/// Creates `name` with a dead-letter queue `{name}-dlq` after `max_receives` receives;
/// returns (queue URL, DLQ URL).
pub async fn create_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    max_receives: u32,
) -> Result<(String, String), StackError> {
    let dlq = crate::sqs::create_queue(sqs, &format!("{name}-dlq")).await?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(err)?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| err("no DLQ ARN"))?;
    let policy = json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string() })
        .to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .map_err(err)?
        .queue_url
        .ok_or_else(|| err("no queue URL"))?;
    Ok((queue, dlq))
}

/// The ARN of the queue at `queue_url` (`{endpoint}/{account}/{name}`, moto's and SQS's
/// form): `arn:aws:sqs:us-east-1:{account}:{name}`, the region the local stack uses.
pub fn queue_arn(queue_url: &str) -> String {
    let mut parts = queue_url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or("123456789012");
    format!("arn:aws:sqs:us-east-1:{account}:{name}")
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    /// Messages delivered to the function.
    pub delivered: usize,
    /// Messages deleted (succeeded).
    pub deleted: usize,
    /// Messages the function reported as failed (left for redelivery).
    pub failed: usize,
}

/// The event-source mapping's settings.
#[derive(Debug, Clone)]
pub struct Poller {
    /// The queue.
    pub queue_url: String,
    /// Records per invocation (Lambda's `BatchSize`).
    pub batch_size: i32,
    /// Seconds a received message stays invisible unless the function changes it (the
    /// queue's `VisibilityTimeout`; the template's value for a faithful run).
    pub visibility_timeout: i32,
}

impl Poller {
    /// Receives one batch (waiting up to 1 s) and delivers it.
    pub async fn poll(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &LambdaFunction,
    ) -> Result<Poll, StackError> {
        self.poll_waiting(sqs, function, 1).await
    }

    /// [`Poller::poll`], long polling: the receive waits up to `wait_time_seconds` (SQS's
    /// `WaitTimeSeconds`, at most 20) for a first message, and returns as soon as one is
    /// there.
    pub async fn poll_waiting(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &LambdaFunction,
        wait_time_seconds: i32,
    ) -> Result<Poll, StackError> {
        let resp = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .visibility_timeout(self.visibility_timeout)
            .wait_time_seconds(wait_time_seconds.clamp(0, 20))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(err)?;
        let messages = resp.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(Poll::default());
        }
        let arn = queue_arn(&self.queue_url);
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                    .collect();
                // Lambda's shape of a message attribute.
                let message_attributes: serde_json::Map<String, Value> = m
                    .message_attributes
                    .iter()
                    .flatten()
                    .map(|(k, a)| {
                        (
                            k.clone(),
                            json!({
                                "stringValue": a.string_value,
                                "dataType": a.data_type,
                                "stringListValues": [],
                                "binaryListValues": [],
                            }),
                        )
                    })
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "md5OfBody": m.md5_of_body,
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        // A function error (a crash) leaves the whole batch for redelivery, as in AWS.
        let answer = function.invoke(&json!({ "Records": records })).await?;
        let failed: Vec<&str> = answer
            .get("batchItemFailures")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("itemIdentifier").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.contains(&m.message_id.as_deref().unwrap_or_default()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        let deleted = done.len();
        if !done.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .map_err(err)?;
        }
        Ok(Poll {
            delivered: messages.len(),
            deleted,
            failed: failed.len(),
        })
    }
}

/// Lambda's event-source mapping at its steady state, for a fair latency figure: up to
/// `max_concurrency` invocations at once (the mapping's `ScalingConfig`
/// `MaximumConcurrency`), each fed by its own long-polling receive, so a message is
/// picked up as soon as it is visible and an invocation is free, and no poll adds a
/// delay of its own. (AWS starts with five pollers and adds more as the queue fills;
/// this runs all of them from the start.) [`Poller::poll`] stays the one-at-a-time
/// poller the tests and `serve` use.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The queue, the batch size and the visibility timeout.
    pub poller: Poller,
    /// Invocations at once (`MaximumConcurrency`; the function needs as many instances,
    /// [`LambdaFunction::start_concurrent`]).
    pub max_concurrency: usize,
    /// `WaitTimeSeconds` of each receive (AWS's pollers use 20).
    pub wait_time_seconds: i32,
}

/// What a running [`Mapping`] has done so far.
#[derive(Debug, Default)]
pub struct MappingStats {
    /// Invocations (batches delivered).
    pub invocations: std::sync::atomic::AtomicU64,
    /// Records the function reported failed (left to come back).
    pub failed: std::sync::atomic::AtomicU64,
    /// Receives or invocations that failed (each waits 1 s, then polls again).
    pub errors: std::sync::atomic::AtomicU64,
}

impl Mapping {
    /// Starts the mapping's `max_concurrency` pollers; dropping the set stops them.
    pub fn spawn(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &std::sync::Arc<LambdaFunction>,
        stats: &std::sync::Arc<MappingStats>,
    ) -> tokio::task::JoinSet<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..self.max_concurrency.max(1) {
            let (poller, sqs, function, stats, wait) = (
                self.poller.clone(),
                sqs.clone(),
                std::sync::Arc::clone(function),
                std::sync::Arc::clone(stats),
                self.wait_time_seconds,
            );
            set.spawn(async move {
                loop {
                    match poller.poll_waiting(&sqs, &function, wait).await {
                        Ok(p) => {
                            if p.delivered > 0 {
                                stats.invocations.fetch_add(1, Relaxed);
                            }
                            stats.failed.fetch_add(p.failed as u64, Relaxed);
                        }
                        Err(_) => {
                            stats.errors.fetch_add(1, Relaxed);
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
            });
        }
        set
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_arns_from_urls() {
        assert_eq!(
            super::queue_arn("http://127.0.0.1:4566/123456789012/hv-events"),
            "arn:aws:sqs:us-east-1:123456789012:hv-events"
        );
    }
}
