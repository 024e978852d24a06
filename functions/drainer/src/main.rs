//! The drainer Lambda's entry point: an object-created event or a schedule in, a summary
//! of what was drained out (an error when anything was left in the spool).

use std::time::Duration;

use hookvault_drainer::store::{S3Spool, SqsQueue};
use hookvault_drainer::{Drainer, DrainerConfig, Trigger};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

/// Kept before the Lambda's deadline: a sweep stops starting objects this early.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookvault_aws::logging::init();
    let cfg = DrainerConfig::from_env()?;
    let spool = S3Spool {
        client: hookvault_aws::clients::s3()?,
        bucket: cfg.bucket.clone(),
    };
    let queue = SqsQueue {
        client: hookvault_aws::clients::sqs()?,
        queue_url: cfg.queue_url.clone(),
    };
    let bucket = cfg.bucket.clone();
    let drainer = Drainer::new(spool, queue, cfg);
    let (drainer, bucket) = (&drainer, &bucket);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = hookvault_aws::deadline(event.context.deadline, DEADLINE_MARGIN);
        let trigger = Trigger::from_payload(&event.payload, bucket)?;
        let summary = drainer.handle(trigger, deadline).await?;
        Ok::<Value, Error>(serde_json::to_value(summary)?)
    }))
    .await
}
