//! An SQS client for the local stack, and helpers to read what the edge queued.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;

use crate::StackError;

/// A client for `endpoint` (moto), with moto's test credentials.
pub fn client(endpoint: &str) -> Client {
    Client::new(&crate::moto::sdk_config(endpoint))
}

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(format!("sqs: {e}"))
}

/// Creates a queue (FIFO when `name` ends in `.fifo`) and returns its URL.
/// A moto that has just started answers its first SQS calls with an error now and then
/// (seen once in CI: `CreateQueue` on a fresh moto under a loaded machine), so this
/// retries a few times, and says what the last error was.
pub async fn create_queue(sqs: &Client, name: &str) -> Result<String, StackError> {
    let mut last = String::new();
    for attempt in 0..5u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
        }
        let mut req = sqs.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            req = req.attributes(QueueAttributeName::FifoQueue, "true");
        }
        match req.send().await {
            Ok(out) => return out.queue_url.ok_or_else(|| err("no queue URL")),
            Err(e) => last = DisplayErrorContext(&e).to_string(),
        }
    }
    Err(err(format!("CreateQueue {name}: {last}")))
}

/// Empties the queue at `queue_url` (moto's `SendMessage` slows down as a queue fills).
pub async fn purge(sqs: &Client, queue_url: &str) -> Result<(), StackError> {
    sqs.purge_queue()
        .queue_url(queue_url)
        .send()
        .await
        .map_err(err)?;
    Ok(())
}

/// Receives every message now on the queue, deleting each, until a receive comes back
/// empty twice.
pub async fn drain(sqs: &Client, queue_url: &str) -> Result<Vec<Message>, StackError> {
    let mut out = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let resp = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .wait_time_seconds(0)
            .visibility_timeout(60)
            .send()
            .await
            .map_err(err)?;
        let msgs = resp.messages.unwrap_or_default();
        if msgs.is_empty() {
            empty += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for m in &msgs {
            if let Some(h) = &m.receipt_handle {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .map_err(err)?;
            }
        }
        out.extend(msgs);
    }
    Ok(out)
}
