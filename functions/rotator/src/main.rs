//! The rotator Lambda's entry point: a rotation step or a scheduled event in, a JSON
//! summary out; an error fails the invocation (the rotation stops there, and the
//! rotator's error alarm fires; every step is safe to run again).

use std::time::Duration;

use hookvault_rotator::event::Input;
use hookvault_rotator::{Rotator, RotatorConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookvault_aws::logging::init();
    let cfg = RotatorConfig::from_env()?;
    let rotator = Rotator::from_config(hookvault_aws::clients::secrets_manager()?, cfg);
    let rotator = &rotator;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Retries stop 10 s before the invocation's deadline, so a failure is
            // reported as ours rather than as Lambda's timeout.
            let deadline = hookvault_aws::deadline(event.context.deadline, Duration::from_secs(10));
            let input = Input::parse(event.payload)?;
            Ok::<_, Error>(rotator.handle(input, deadline).await?)
        },
    ))
    .await
}
