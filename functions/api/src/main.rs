//! The api Lambda's entry point: a Function URL (API Gateway HTTP API v2) request in, a
//! JSON answer out.

use std::time::Duration;

use hookvault_api::{Api, ApiConfig};
use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};
use tracing::Instrument;

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
    );
    let api = &api;
    lambda_http::run(service_fn(move |req: Request| async move {
        let deadline = hookvault_aws::deadline(
            req.lambda_context_ref().map_or(0, |c| c.deadline),
            DEADLINE_MARGIN,
        );
        let authorization = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Every value, as bytes: a value that is not text, or more than one, is refused
        // by the route, not dropped here.
        let idempotency_keys: Vec<&[u8]> = req
            .headers()
            .get_all(hookvault_api::idempotency::HEADER)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        // One trace id per request, on every log line of it: the caller's `traceparent`
        // when valid (W3C Trace Context), else a fresh random one.
        let trace_id = req
            .headers()
            .get(hookvault_core::trace::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(hookvault_core::trace::from_traceparent)
            .unwrap_or_else(|| {
                hookvault_core::trace::from_random(uuid::Uuid::new_v4().into_bytes())
            });
        let span = tracing::info_span!("request", trace_id = %trace_id);
        let reply = api
            .handle(
                req.method().as_str(),
                req.uri().path(),
                authorization.as_deref(),
                &idempotency_keys,
                req.body().as_ref(),
                deadline,
            )
            .instrument(span)
            .await;
        let mut resp = Response::builder()
            .status(reply.status)
            .header("content-type", "application/json");
        for (k, v) in &reply.headers {
            resp = resp.header(k.as_str(), v.as_str());
        }
        Ok::<_, Error>(resp.body(Body::from(reply.body))?)
    }))
    .await
}
