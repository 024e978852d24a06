//! A Function URL request (API Gateway HTTP API payload 2.0, as `lambda_http` reads it)
//! in, the api's answer out. The entry point (`main.rs`) and the event fixtures'
//! tests (`tests/fixtures.rs`) both go through [`Inputs::read`] and [`Api::serve`], so what
//! the tests check is what runs.

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::{idempotency, Api};

/// What the api takes from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path, e.g. `/predictions/pred_1` (a Function URL has no stage prefix).
    pub path: &'a str,
    /// `Authorization`, when it is text (a value that is not is treated as absent: 401).
    pub authorization: Option<&'a str>,
    /// Every `Idempotency-Key` value, as bytes: a value that is not text, or more than
    /// one, is refused by the route, not dropped here.
    pub idempotency_keys: Vec<&'a [u8]>,
    /// The body's bytes.
    pub body: &'a [u8],
    /// The request's trace id: the caller's `traceparent` when valid (W3C Trace Context),
    /// else a fresh random one ([`hookvault_core::trace`]).
    pub trace_id: String,
}

impl<'a> Inputs<'a> {
    /// Reads `req`.
    pub fn read(req: &'a Request) -> Self {
        let headers = req.headers();
        Inputs {
            method: req.method().as_str(),
            path: req.uri().path(),
            authorization: headers.get("authorization").and_then(|v| v.to_str().ok()),
            idempotency_keys: headers
                .get_all(idempotency::HEADER)
                .iter()
                .map(|v| v.as_bytes())
                .collect(),
            body: req.body().as_ref(),
            trace_id: headers
                .get(hookvault_core::trace::TRACEPARENT)
                .and_then(|v| v.to_str().ok())
                .and_then(hookvault_core::trace::from_traceparent)
                .unwrap_or_else(|| {
                    hookvault_core::trace::from_random(uuid::Uuid::new_v4().into_bytes())
                }),
        }
    }
}

impl Api {
    /// Answers `req` before `deadline` (provider retries stop before it): routes it with
    /// [`Api::handle`] inside a span carrying its trace id, so every log line of the
    /// request names it, and builds the JSON response.
    pub async fn serve(
        &self,
        req: &Request,
        deadline: Option<Instant>,
    ) -> Result<Response<Body>, lambda_http::http::Error> {
        let i = Inputs::read(req);
        let span = tracing::info_span!("request", trace_id = %i.trace_id);
        let reply = self
            .handle(
                i.method,
                i.path,
                i.authorization,
                &i.idempotency_keys,
                i.body,
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
        resp.body(Body::from(reply.body))
    }
}
