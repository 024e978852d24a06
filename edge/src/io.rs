//! The I/O the edge's request flow ([`crate::flow`]) needs, as one small interface.
//!
//! The Worker implements it with the runtime (`worker_entry`, wasm32 only): the request's
//! headers and body, WebCrypto for the MACs and digests, `fetch` with a timeout,
//! `setTimeout` for a back-off, `Date.now()` and `Math.random()`. The native tests
//! implement it with a fake whose clock only moves when the flow sleeps or a stand-in
//! AWS takes its time (`flow::tests`), so retries, claim checks and timeouts are tested
//! without a runtime, in virtual milliseconds.
//!
//! Every method that can fail for a reason of the runtime's own (WebCrypto) has its
//! fallback inside the implementation: the flow never refuses a webhook for it.

use std::future::Future;
use std::rc::Rc;

use hookvault_core::{Pending, Verified};

use crate::config::{EdgeConfig, Provider};
use crate::handler::Rejection;
use crate::sqs::UnsignedRequest;

/// A request body read in one piece, and what the runtime computed from it on arrival.
pub struct Body<B> {
    /// The body, in WASM memory.
    pub bytes: Vec<u8>,
    /// The same bytes where the runtime keeps them ([`Io::Blob`]): what WebCrypto hashes
    /// and `fetch` sends, without another copy.
    pub blob: B,
    /// The ring's first key's HMAC-SHA256 of the body, if asked for and computed.
    pub first_mac: Option<[u8; 32]>,
    /// The body's SHA-256, if asked for and computed.
    pub sha256: Option<[u8; 32]>,
}

/// An HTTP answer from AWS: status and body text. `Err` ([`Io::send`]) when there was
/// none: a network error, or no answer within the timeout.
pub type Answer = (u16, String);

/// The runtime, as the request flow sees it. One value serves one request.
///
/// `async fn` in a trait without a `Send` bound is what is wanted: a Worker isolate is
/// single-threaded, and its futures hold JavaScript values that are not `Send`.
#[allow(async_fn_in_trait)]
pub trait Io {
    /// Bytes held by the runtime: a `Uint8Array` in the JavaScript heap in the Worker.
    type Blob;

    /// The configuration, parsed once per isolate; `Err` names the variable that is
    /// missing or invalid, never its value.
    fn config(&self) -> Result<Rc<EdgeConfig>, String>;

    /// The request header `name` (lower case), as the runtime gives it.
    fn header(&self, name: &str) -> Option<String>;

    /// Reads the request body, refusing it (413) once it passes `max` bytes, 400 if it
    /// cannot be read. `declared`: the request has a `Content-Length` (already checked
    /// against `max`), so the body is read in one piece; without one it is streamed and
    /// cut off at the cap. In the same wait the runtime may compute the HMAC with
    /// `signed`'s first key (when its scheme signs the body alone) and, if `digest`, the
    /// SHA-256; what it did not compute is `None`.
    async fn read_body(
        &self,
        declared: bool,
        max: usize,
        signed: Option<&Provider>,
        digest: bool,
    ) -> Result<Body<Self::Blob>, Rejection>;

    /// Finishes [`crate::handler::prepare`]: offers each of `p`'s keys' MACs over
    /// [`Pending::message`] (`body`: the body as the runtime holds it; `first_mac`: from
    /// [`Io::read_body`]), in ring order. The key that matched, or the refusal.
    async fn verify(
        &self,
        p: &Provider,
        pending: Pending<'_>,
        body: &Self::Blob,
        first_mac: Option<[u8; 32]>,
    ) -> Result<Verified, Rejection>;

    /// SHA-256 of `data` (`blob`: the same bytes in the runtime). The hash may start at
    /// once, before the returned future is first polled, so it runs while the caller
    /// awaits something else.
    fn sha256<'a>(&self, data: &'a [u8], blob: &Self::Blob) -> impl Future<Output = [u8; 32]> + 'a;

    /// `bytes`, copied into the runtime once (a request body about to be hashed and sent).
    fn blob(&self, bytes: &[u8]) -> Self::Blob;

    /// A `SendMessage`'s two hashes in one wait: SHA-256 of `body` (the request body as
    /// it will be sent: SigV4's payload hash) and MD5 of `unsigned.message` (SQS's
    /// `MD5OfMessageBody` is checked against it).
    async fn send_message_hashes(
        &self,
        unsigned: &UnsignedRequest,
        body: &Self::Blob,
    ) -> ([u8; 32], [u8; 16]);

    /// Sends `body` to `url` with `method` (`POST`, `PUT`) and `headers`, giving up after
    /// `timeout_ms` milliseconds; the answer's status and text, or why there was none.
    async fn send(
        &self,
        method: &str,
        url: &str,
        body: &Self::Blob,
        headers: &[(String, String)],
        timeout_ms: u32,
    ) -> Result<Answer, String>;

    /// Waits `ms` milliseconds (a retry's back-off).
    async fn sleep(&self, ms: u64);

    /// Unix time, milliseconds.
    fn now_ms(&self) -> u64;

    /// A number in `[0, 1)` for a back-off's jitter (need not be secret).
    fn random(&self) -> f64;

    /// Writes a log line at level error (the `config_error` line).
    fn log_error(&self, line: &str);

    /// The WASM instance's linear memory, bytes, if there is one (logged after a claim
    /// check: it grows to hold the largest bodies and never shrinks).
    fn memory_bytes(&self) -> Option<u64>;
}
