//! The archiver Lambda's entry point: SQS event in, partial batch response out.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hookvault_archiver::{Archiver, ArchiverConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookvault_aws::logging::init();
    let cfg = ArchiverConfig::from_env()?;
    let s3 = hookvault_aws::clients::s3()?;
    // The queue's maxReceiveCount (the template passes the redrive policy's value): a
    // record failing on its last receive is reported as a permanent failure.
    let max_receive_count = hookvault_aws::env::optional_number("MAX_RECEIVE_COUNT")?;
    // The output window (OUTPUT_RETENTION_SECS, DOWNLOAD_RETRY_BUDGET_MS), and the SQS
    // client that sets a failed record's visibility so it comes back in seconds.
    let window = hookvault_archiver::window::WindowConfig::from_env()?;
    let sqs = hookvault_archiver::visibility::SqsVisibility(hookvault_aws::clients::sqs()?);
    let archiver = Archiver::new(s3, cfg)?
        .with_max_receive_count(max_receive_count)
        .with_window(window)
        .with_visibility(std::sync::Arc::new(sqs));
    // EVENT_BUS_NAME (and EVENT_SOURCE): one EventBridge event per prediction outcome.
    let archiver = match hookvault_archiver::notify::settings(hookvault_aws::env::optional) {
        Some((bus, source)) => archiver.with_notifier(
            std::sync::Arc::new(hookvault_archiver::notify::HttpPublisher::from_env()?),
            &bus,
            &source,
        ),
        None => archiver,
    };
    let archiver = &archiver;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = hookvault_aws::deadline(
            event.context.deadline,
            hookvault_archiver::handler::DEADLINE_MARGIN,
        );
        Ok::<SqsBatchResponse, Error>(archiver.handle(event.payload, deadline).await)
    }))
    .await
}
