//! The one SQS request of a webhook: `SendMessage`, signed, sent with the runtime's
//! `fetch` and a timeout in one call (`one_call::send_text`, which reads the answer with
//! one `response.text()`: reading it as a stream, chunk by chunk across the JS/WASM
//! boundary, cost more than the rest of the request together), its answer checked.

use hookvault_core::envelope::Envelope;
use worker::js_sys::Uint8Array;

use crate::config::EdgeConfig;
use crate::sqs::{self, SqsError};
use crate::{one_call, webcrypto};

/// Sends `envelope` to the queue at `now_ms`; SQS's message id once it took the message.
pub async fn enqueue(
    cfg: &EdgeConfig,
    envelope: &Envelope,
    now_ms: u64,
) -> Result<String, SqsError> {
    let unsigned = sqs::unsigned_send_message(&cfg.sqs, envelope, cfg.max_message)?;
    // The body crosses into the JS heap once: WebCrypto hashes it and fetch sends it.
    let body_js = Uint8Array::from(unsigned.body.as_bytes());
    let (body_sha256, message_md5) = webcrypto::send_message_hashes(&unsigned, &body_js).await;
    let signed = sqs::sign_send_message(
        &cfg.sqs,
        cfg.sqs_signer.as_ref(),
        unsigned,
        &body_sha256,
        &message_md5,
        now_ms,
    )?;
    let (status, text) = one_call::send_text(
        "POST",
        &signed.url,
        &body_js,
        &signed.headers,
        cfg.sqs_timeout_ms,
    )
    .await
    .map_err(SqsError::Unreachable)?;
    sqs::parse_response(status, &text, &signed)
}
