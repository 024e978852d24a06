//! The archiver Lambda's entry point: SQS event in, partial batch response out.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hookvault_archiver::{Archiver, ArchiverConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

/// Safety margin kept before the Lambda's deadline: retries stop early enough to answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// The Lambda's deadline (epoch milliseconds) as an `Instant`, less the margin. `None`
/// when the deadline is already past on arrival: the local runtime emulator
/// (`cargo lambda watch`) sends a constant in 1970, and no deadline beats a wrong one.
fn deadline(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let left = deadline_ms.checked_sub(now_ms)?;
    Some(Instant::now() + Duration::from_millis(left).saturating_sub(DEADLINE_MARGIN))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookvault_aws::logging::init();
    let cfg = ArchiverConfig::from_env()?;
    let s3 = hookvault_aws::clients::s3()?;
    let archiver = Archiver::new(s3, cfg)?;
    let archiver = &archiver;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(archiver.handle(event.payload, deadline).await)
    }))
    .await
}
