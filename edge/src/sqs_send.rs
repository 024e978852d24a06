//! The one SQS request of a webhook: `SendMessage`, signed, sent with the runtime's
//! `fetch` and a timeout, its answer checked. Built on the runtime's own objects (one
//! `fetch(url, init)`, one `response.text()`): reading the answer as a stream, chunk by
//! chunk across the JS/WASM boundary, cost more than the rest of the request together.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};
use worker::js_sys::Promise;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

use crate::config::EdgeConfig;
use crate::sqs::{self, SqsError};
use crate::webcrypto;
use hookvault_core::envelope::Envelope;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch_with_init(url: &str, init: &web_sys::RequestInit) -> Result<Promise, JsValue>;
}

fn unreachable(e: JsValue) -> SqsError {
    SqsError::Unreachable(
        e.as_string()
            .or_else(|| {
                e.dyn_ref::<worker::js_sys::Error>()
                    .map(|e| String::from(e.message()))
            })
            .unwrap_or_else(|| format!("{e:?}")),
    )
}

/// Sends `envelope` to the queue at `now_ms`; SQS's message id once it took the message.
pub async fn enqueue(
    cfg: &EdgeConfig,
    envelope: &Envelope,
    now_ms: u64,
) -> Result<String, SqsError> {
    let unsigned = sqs::unsigned_send_message(&cfg.sqs, envelope, cfg.max_message)?;
    let body_sha256 = webcrypto::sha256(unsigned.body.as_bytes(), None).await;
    let signed = sqs::sign_send_message(&cfg.sqs, unsigned, &body_sha256, now_ms)?;
    let headers = web_sys::Headers::new().map_err(unreachable)?;
    for (k, v) in &signed.headers {
        headers.set(k, v).map_err(unreachable)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&signed.body));
    let timeout = web_sys::AbortSignal::timeout_with_u32(cfg.sqs_timeout_ms);
    init.set_signal(Some(&timeout));
    let answer = JsFuture::from(fetch_with_init(&signed.url, &init).map_err(unreachable)?)
        .await
        .map_err(unreachable)?;
    let response: web_sys::Response = answer.unchecked_into();
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(unreachable)?)
        .await
        .map_err(unreachable)?
        .as_string()
        .unwrap_or_default();
    sqs::parse_response(status, &text, &signed)
}
