//! The Worker glue: the runtime's side of the request flow ([`crate::flow`]). It reads the
//! environment, gives the flow the runtime's I/O ([`WorkerIo`]: the request, WebCrypto,
//! `fetch`, timers), builds the answer and writes the log line. Only compiled for wasm32.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use hookvault_core::{Pending, Verified};
use worker::js_sys::{Date, Reflect, Uint8Array};
use worker::wasm_bindgen::JsValue;
use worker::web_sys;
use worker::{console_error, console_log, event, Context, Env, Request, Result};

use crate::config::{EdgeConfig, Provider};
use crate::flow::{self, Answer};
use crate::handler::{self, Rejection};
use crate::io::{Body, Io};
use crate::log::{Level, RequestLog};
use crate::route::{path_of, route, Route};
use crate::sqs::UnsignedRequest;
use crate::trace::RequestTrace;
use crate::{one_call, webcrypto};

thread_local! {
    /// The parsed configuration, kept for the isolate's life: vars and secrets cannot
    /// change under a running isolate (a new value means a new deployment, hence new
    /// isolates), so they are read and parsed once, not on every request.
    static CONFIG: RefCell<Option<Rc<EdgeConfig>>> = const { RefCell::new(None) };
}

fn read_var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .or_else(|_| env.var(name))
        .ok()
        .map(|v| v.to_string())
}

fn config(env: &Env) -> std::result::Result<Rc<EdgeConfig>, String> {
    if let Some(cfg) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(cfg);
    }
    let cfg =
        Rc::new(EdgeConfig::from_vars(&|name| read_var(env, name)).map_err(|e| e.to_string())?);
    #[cfg(feature = "test-hooks")]
    if read_var(env, "TEST_BREAK_WEBCRYPTO").as_deref() == Some("1") {
        crate::test_hooks::break_webcrypto();
    }
    CONFIG.with(|c| *c.borrow_mut() = Some(Rc::clone(&cfg)));
    Ok(cfg)
}

/// The runtime's `Response` for `answer`, built in one call.
fn respond(answer: &Answer) -> std::result::Result<web_sys::Response, String> {
    let headers: Vec<(&str, &str)> = answer
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    one_call::response(answer.status, answer.body.as_deref(), &headers)
}

/// The trace of a request on the webhook route ([`crate::trace`]): the trace id of its
/// `traceparent` header if valid, else a fresh one; `None` on any other route.
fn request_trace(req: &web_sys::Request, route: Route<'_>) -> Option<RequestTrace> {
    if !matches!(route, Route::Webhook(_)) {
        return None;
    }
    let traceparent = req
        .headers()
        .get(hookvault_core::trace::TRACEPARENT)
        .ok()
        .flatten();
    Some(RequestTrace::new(
        traceparent.as_deref(),
        webcrypto::random_bytes(),
    ))
}

/// The request flow's I/O in the Worker ([`Io`]): the runtime's request, WebCrypto,
/// `fetch` with a timeout, `setTimeout`, `Date.now()`, `Math.random()`.
struct WorkerIo<'a> {
    req: &'a web_sys::Request,
    headers: web_sys::Headers,
    env: &'a Env,
}

impl Io for WorkerIo<'_> {
    type Blob = Uint8Array;

    fn config(&self) -> std::result::Result<Rc<EdgeConfig>, String> {
        config(self.env)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// With a declared length (already checked against the cap) the body is taken in one
    /// piece, and WebCrypto starts on it in the same wait (`webcrypto::read_body`: the
    /// first key's MAC, the digest); without one it is streamed and cut off at the cap.
    async fn read_body(
        &self,
        declared: bool,
        max: usize,
        signed: Option<&Provider>,
        digest: bool,
    ) -> std::result::Result<Body<Uint8Array>, Rejection> {
        if declared {
            return webcrypto::read_body(self.req, signed, digest, max).await;
        }
        let mut out = Vec::new();
        // `Clone::clone` copies the JS reference; `req.clone()` would be the Web API's clone.
        if let Ok(mut stream) = Request::from(Clone::clone(self.req)).stream() {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|_| handler::unreadable_body())?;
                if out.len() + chunk.len() > max {
                    return Err(handler::too_large(max));
                }
                out.extend_from_slice(&chunk);
            }
        }
        Ok(Body {
            blob: Uint8Array::from(out.as_slice()),
            bytes: out,
            first_mac: None,
            sha256: None,
        })
    }

    async fn verify(
        &self,
        p: &Provider,
        pending: Pending<'_>,
        body: &Uint8Array,
        first_mac: Option<[u8; 32]>,
    ) -> std::result::Result<Verified, Rejection> {
        webcrypto::settle(p, pending, body, first_mac).await
    }

    fn sha256<'a>(
        &self,
        data: &'a [u8],
        blob: &Uint8Array,
    ) -> impl std::future::Future<Output = [u8; 32]> + 'a {
        webcrypto::sha256(data, blob)
    }

    fn blob(&self, bytes: &[u8]) -> Uint8Array {
        Uint8Array::from(bytes)
    }

    async fn send_message_hashes(
        &self,
        unsigned: &UnsignedRequest,
        body: &Uint8Array,
    ) -> ([u8; 32], [u8; 16]) {
        webcrypto::send_message_hashes(unsigned, body).await
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        body: &Uint8Array,
        headers: &[(String, String)],
        timeout_ms: u32,
    ) -> std::result::Result<(u16, String), String> {
        one_call::send_text(method, url, body, headers, timeout_ms).await
    }

    async fn sleep(&self, ms: u64) {
        one_call::sleep(ms).await;
    }

    fn now_ms(&self) -> u64 {
        Date::now() as u64
    }

    fn random(&self) -> f64 {
        worker::js_sys::Math::random()
    }

    fn log_error(&self, line: &str) {
        console_error!("{line}");
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some(wasm_memory_bytes())
    }
}

/// The size of the WASM instance's linear memory, bytes: it grows to hold the largest
/// bodies handled at once and never shrinks, so large bodies log it (docs/edge.md: a
/// Worker's isolate has 128 MB).
fn wasm_memory_bytes() -> u64 {
    use worker::js_sys::{ArrayBuffer, WebAssembly};
    use worker::wasm_bindgen::JsCast as _;
    wasm_bindgen::memory()
        .dyn_into::<WebAssembly::Memory>()
        .ok()
        .and_then(|m| m.buffer().dyn_into::<ArrayBuffer>().ok())
        .map_or(0, |b| u64::from(b.byte_length()))
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
    executor_on_promise_jobs();
}

/// wasm-bindgen's executor wakes a future with `queueMicrotask` when the global has it,
/// else with `Promise.then`, and it decides once, when it first schedules a task. In
/// workerd a `queueMicrotask` call costs about 2–2.5 µs and a `then` a fraction of a µs
/// (measured, docs/benchmarks.md), and a webhook wakes the executor several times. So the
/// first task is scheduled here, at instantiation, with `queueMicrotask` hidden for that
/// one call; the global is put back at once. If the global cannot be changed, nothing
/// changes.
fn executor_on_promise_jobs() {
    let global = worker::js_sys::global();
    let name = JsValue::from_str("queueMicrotask");
    let Ok(original) = Reflect::get(&global, &name) else {
        return;
    };
    if Reflect::set(&global, &name, &JsValue::UNDEFINED) == Ok(true) {
        worker::wasm_bindgen_futures::spawn_local(async {});
        let _ = Reflect::set(&global, &name, &original);
    }
}

/// The fetch handler. It takes the runtime's `Request` as it is (worker's own `Request`
/// would also read `request.cf`, which the edge never uses) and answers with the
/// runtime's `Response`: the fewest calls across the JS/WASM boundary per request.
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let started = Date::now() as u64;
    let mut log = RequestLog::new(&req.method(), path_of(&req.url()));
    #[cfg(feature = "test-hooks")]
    if log.path == "/_hookvault/panic" {
        panic!("the test build's panic route");
    }
    let trace = request_trace(&req, route(&log.method, &log.path));
    log.trace_id = trace.as_ref().map(|t| t.trace_id.clone());
    let traceresponse = trace.as_ref().map(RequestTrace::response_header);
    let traced = trace.as_ref().zip(traceresponse.as_deref());
    let io = WorkerIo {
        headers: req.headers(),
        req: &req,
        env: &env,
    };
    let answer = match flow::handle(&io, started, traced, &mut log).await {
        Ok(answer) => answer,
        Err(rejection) => {
            log.error = Some(rejection.code);
            if log.reason.is_none() {
                log.reason = Some(rejection.message.clone());
            }
            Answer::refusal(&rejection, traceresponse.as_deref())
        }
    };
    let response = respond(&answer).map_err(worker::Error::RustError)?;
    log.status = response.status();
    log.latency_ms = (Date::now() as u64).saturating_sub(started);
    // A 5xx is the edge's own doing (SQS or S3 unavailable, misconfigured): `console.error`,
    // which Workers Logs records at level error. A sender's fault (4xx) and every success
    // stay at `console.log`.
    let line = log.to_json();
    match log.level() {
        Level::Error => console_error!("{line}"),
        Level::Info => console_log!("{line}"),
    }
    Ok(response)
}
