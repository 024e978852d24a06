//! The reconciler Lambda's entry point: a batch of checks in, `batchItemFailures` out; or
//! a scheduled event in, the sweep's summary out.

use std::sync::Arc;
use std::time::Duration;

use hookvault_aws::secrets::SecretCache;
use hookvault_reconciler::aws::{HttpProvider, S3Archive, SqsQueues};
use hookvault_reconciler::reconcile::now_ms;
use hookvault_reconciler::{Reconciler, ReconcilerConfig, Trigger};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

/// Kept before the Lambda's deadline: a sweep stops reading pages, and a batch stops
/// starting checks, this early. A check's fetch retries for at most twice
/// `HTTP_TIMEOUT_MS` (20 s by default): the function's timeout should leave that after
/// the margin for each record of a batch (the template: a small batch size).
const DEADLINE_MARGIN: Duration = Duration::from_secs(25);

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookvault_aws::logging::init();
    let cfg = ReconcilerConfig::from_env()?;
    let provider = HttpProvider {
        http: hookvault_aws::http::client(cfg.http_timeout),
        secrets: Arc::new(SecretCache::new(
            hookvault_aws::clients::secrets_manager()?,
            cfg.cache_ttl,
        )),
        secret_id: cfg.api_key_secret_id.clone(),
        base_url: cfg.provider_api_url.clone(),
        timeout: cfg.http_timeout,
        max_answer_bytes: cfg.max_answer_bytes,
    };
    let archive = S3Archive {
        client: hookvault_aws::clients::s3()?,
        bucket: cfg.bucket.clone(),
    };
    let sqs = hookvault_aws::clients::sqs()?;
    let queues = SqsQueues {
        client: sqs,
        queue_url: cfg.queue_url.clone(),
        check_queue_url: cfg.check_queue_url.clone(),
    };
    let reconciler = Reconciler::new(provider, archive, queues, cfg);
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = hookvault_aws::deadline(event.context.deadline, DEADLINE_MARGIN);
        match Trigger::from_payload(&event.payload)? {
            Trigger::Checks(batch) => Ok::<Value, Error>(serde_json::to_value(
                reconciler.handle_batch(&batch, deadline).await,
            )?),
            Trigger::Sweep => Ok(serde_json::to_value(
                reconciler.sweep(now_ms(), deadline).await?,
            )?),
        }
    }))
    .await
}
