//! The api Lambda's entry point: a Function URL (API Gateway HTTP API v2) request in, a
//! JSON answer out, through `Api::serve` (`hookvault_api::request`), which the event
//! fixtures' tests run too.

use std::time::Duration;

use hookvault_api::{Api, ApiConfig};
use lambda_http::{service_fn, Error, Request, RequestExt};

/// Kept before the Lambda's deadline, so retries stop in time to answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookvault_aws::logging::init();
    let cfg = ApiConfig::from_env()?;
    let api = Api::new(
        cfg,
        hookvault_aws::clients::secrets_manager()?,
        hookvault_aws::clients::s3()?,
    )
    .with_check_queue(hookvault_aws::clients::sqs()?);
    let api = &api;
    lambda_http::run(service_fn(move |req: Request| async move {
        let deadline = hookvault_aws::deadline(
            req.lambda_context_ref().map_or(0, |c| c.deadline),
            DEADLINE_MARGIN,
        );
        Ok::<_, Error>(api.serve(&req, deadline).await?)
    }))
    .await
}
