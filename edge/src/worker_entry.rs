//! The Worker glue: read the request and the environment, call the pure logic, send the
//! one SQS request, answer, log. Only compiled for wasm32.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::Either;
use futures_util::StreamExt;
use worker::js_sys::{Date, Reflect, Uint8Array};
use worker::wasm_bindgen::JsValue;
use worker::web_sys;
use worker::{console_error, console_log, event, Context, Env, Request, Result};

use hookvault_core::archive::claim_check_key;
use hookvault_core::envelope::{needs_claim_check, Envelope, Received, S3Object};

use crate::config::{EdgeConfig, Provider};
use crate::handler::{self, Rejection};
use crate::log::{Level, RequestLog};
use crate::route::{path_of, route, Route};
use crate::sqs::SqsError;
use crate::trace::{self, RequestTrace};
use crate::{one_call, s3_put, sqs_send, webcrypto};

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

/// A response, built in one call to the runtime.
fn answer(
    status: u16,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> std::result::Result<web_sys::Response, Rejection> {
    one_call::response(status, body, headers).map_err(|e| Rejection::new(500, "internal_error", e))
}

fn json(status: u16, body: &str) -> std::result::Result<web_sys::Response, Rejection> {
    answer(status, Some(body), &[("content-type", "application/json")])
}

/// A refusal's answer; `traceresponse` is the request's trace header value, if it has a
/// trace (the webhook route).
fn refusal(
    r: &Rejection,
    traceresponse: Option<&str>,
) -> std::result::Result<web_sys::Response, Rejection> {
    let retry_after = r.retry_after.map(|s| s.to_string());
    let mut headers = vec![("content-type", "application/json")];
    if let Some(secs) = &retry_after {
        headers.push(("retry-after", secs));
    }
    if let Some(allow) = r.allow {
        headers.push(("allow", allow));
    }
    if let Some(value) = traceresponse {
        headers.push((trace::RESPONSE_HEADER, value));
    }
    answer(r.status, Some(&r.body()), &headers)
}

/// Reads the body, refusing it as soon as it passes `max` bytes. With a declared length
/// (already checked against the cap) the body is taken in one piece, and WebCrypto
/// starts on it in the same wait (`webcrypto::read_body`: the first key's MAC, the
/// digest); without one it is streamed and cut off at the cap.
async fn read_body(
    req: &web_sys::Request,
    declared: bool,
    max: usize,
    target: Option<&Provider>,
    digest: bool,
) -> std::result::Result<webcrypto::Body, Rejection> {
    if declared {
        return webcrypto::read_body(req, target, digest, max).await;
    }
    let mut out = Vec::new();
    // `Clone::clone` copies the JS reference; `req.clone()` would be the Web API's clone.
    if let Ok(mut stream) = Request::from(Clone::clone(req)).stream() {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| handler::unreadable_body())?;
            if out.len() + chunk.len() > max {
                return Err(handler::too_large(max));
            }
            out.extend_from_slice(&chunk);
        }
    }
    Ok(webcrypto::Body {
        js: Uint8Array::from(out.as_slice()),
        bytes: out,
        first_mac: None,
        sha256: None,
    })
}

/// The headers `names` lists (the scheme's), each value as the runtime gives it. One
/// lookup per name: cheaper than copying every header across the JS boundary.
fn header_list(headers: &web_sys::Headers, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| headers.get(n).ok().flatten().map(|v| ((*n).to_owned(), v)))
        .collect()
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

/// Answers a request. `trace` is, on the webhook route, its trace and that trace's
/// `traceresponse` header value: the envelope and the message attribute carry the trace
/// id, the 202 the header.
async fn handle(
    req: &web_sys::Request,
    env: &Env,
    now_ms: u64,
    trace: Option<(&RequestTrace, &str)>,
    log: &mut RequestLog,
) -> std::result::Result<web_sys::Response, Rejection> {
    #[cfg(feature = "test-hooks")]
    if log.path == "/_hookvault/panic" {
        panic!("the test build's panic route");
    }
    let route = route(&log.method, &log.path);
    match route {
        Route::NotFound => return Err(handler::not_found()),
        Route::MethodNotAllowed(allow) => return Err(handler::method_not_allowed(allow)),
        Route::Health => return json(200, r#"{"ok":true}"#),
        Route::Webhook(_) | Route::Probe(_) => {}
    }
    let cfg = config(env).map_err(|e| {
        // The edge's own fault (a var, secret or binding missing or invalid): an error,
        // as is the request's 503 line that follows.
        console_error!(
            "{}",
            serde_json::json!({"msg": "config_error", "error": e, "trace_id": log.trace_id})
        );
        handler::misconfigured(10)
    })?;
    let request_headers = req.headers();
    let content_length = request_headers.get("content-length").ok().flatten();
    handler::check_declared_length(content_length.as_deref(), cfg.max_body)?;
    // Only the headers the provider's scheme reads; an unknown provider is refused by
    // handler::prepare once the body is read, as for any other bad request.
    let provider = match route {
        Route::Webhook(p) => Some(p),
        Route::Probe(p) => p,
        _ => None,
    };
    let provider_cfg = handler::target(&cfg, provider).ok();
    let names = provider_cfg
        .map(|p| p.scheme.header_names())
        .unwrap_or_default();
    let headers = header_list(&request_headers, names);
    let webhook = matches!(route, Route::Webhook(_));
    // The MAC starts with the read only if there is a signature to check it against.
    let signed = provider_cfg.filter(|p| {
        let header = p.scheme.signature_header();
        headers.iter().any(|(name, _)| name.as_str() == header)
    });
    let body = read_body(req, content_length.is_some(), cfg.max_body, signed, webhook).await?;
    log.provider = provider.map(str::to_owned);
    let (target, pending) = handler::prepare(&cfg, provider, &headers, &body.bytes, now_ms)?;
    // A webhook's envelope carries the body's SHA-256: if WebCrypto did not compute it
    // with the read, it does now, while the signature is checked.
    let body_sha256 = match (webhook, body.sha256) {
        (false, _) => None,
        (true, Some(known)) => Some(Either::Left(std::future::ready(known))),
        (true, None) => Some(Either::Right(webcrypto::sha256(&body.bytes, &body.js))),
    };
    let verified = webcrypto::settle(target, pending, &body.js, body.first_mac).await?;
    log.key_id = Some(verified.key_id.clone());
    log.key_slot = Some(verified.slot.as_str());
    let Some(body_sha256) = body_sha256 else {
        // The probe: verified, nothing queued.
        return answer(
            204,
            None,
            &[
                ("x-hookvault-key", &verified.key_id),
                ("x-hookvault-key-slot", verified.slot.as_str()),
            ],
        );
    };
    let body_sha256 = body_sha256.await;
    let content_type = request_headers.get("content-type").ok().flatten();
    let received = handler::received(target, &verified, &headers, content_type.as_deref(), now_ms);
    log.scheme = Some(target.scheme.name());
    log.body_bytes = Some(body.bytes.len());
    let trace_id = trace.map(|(t, _)| t.trace_id.as_str());
    let (envelope, message_id) =
        queue(&cfg, &received, &body, &body_sha256, trace_id, now_ms, log).await?;
    log.event_id = Some(envelope.event_id.clone());
    log.sqs_message_id = Some(message_id.clone());
    let mut headers = vec![("content-type", "application/json")];
    if let Some((_, value)) = trace {
        headers.push((trace::RESPONSE_HEADER, value));
    }
    answer(
        202,
        Some(&handler::accepted_body(&envelope.event_id, &message_id)),
        &headers,
    )
}

/// Queues a verified body: inline when its envelope fits in one message, else by claim
/// check (the body to S3 first, then the envelope that points at it). The envelope and the
/// message carry `trace_id` (the envelope's field, the `TraceId` attribute). The message
/// id once SQS has the message; 503 if S3 or SQS does not take it.
async fn queue(
    cfg: &EdgeConfig,
    received: &Received<'_>,
    body: &webcrypto::Body,
    body_sha256: &[u8; 32],
    trace_id: Option<&str>,
    now_ms: u64,
    log: &mut RequestLog,
) -> std::result::Result<(Envelope, String), Rejection> {
    let envelope_of = |claim_check: Option<S3Object>| Envelope {
        trace_id: trace_id.map(str::to_owned),
        ..Envelope::with_digest(received, &body.bytes, body_sha256, claim_check)
    };
    let queue_failed = |log: &mut RequestLog, e: SqsError| {
        log.reason = Some(e.to_string());
        handler::queue_failure(&e, cfg.retry_after_secs)
    };
    if !needs_claim_check(body.bytes.len(), cfg.max_message) {
        let envelope = envelope_of(None);
        match sqs_send::enqueue(cfg, &envelope, now_ms).await {
            Ok(message_id) => return Ok((envelope, message_id)),
            // Checked before anything is sent: the headers made the envelope larger than
            // the reserve allows for. The claim check carries the body instead.
            Err(SqsError::TooLarge { .. }) if cfg.claim_check.is_some() => {}
            Err(e) => return Err(queue_failed(log, e)),
        }
    }
    let Some(claim) = &cfg.claim_check else {
        // The cap keeps such bodies out (config::largest_inline_body); only headers far
        // beyond the reserve get here.
        log.reason = Some(
            "the envelope does not fit in one message and CLAIM_CHECK_BUCKET is not set".into(),
        );
        return Err(handler::misconfigured(cfg.retry_after_secs));
    };
    let key = claim_check_key(&hex::encode(body_sha256));
    s3_put::put(cfg, claim, &key, &body.js, body_sha256, now_ms)
        .await
        .map_err(|e| {
            log.reason = Some(e.to_string());
            handler::claim_check_failure(&e, cfg.retry_after_secs)
        })?;
    let object = S3Object {
        bucket: claim.bucket.clone(),
        key,
    };
    log.claim_check = Some(object.key.clone());
    log.wasm_memory_bytes = Some(wasm_memory_bytes());
    let envelope = envelope_of(Some(object));
    match sqs_send::enqueue(cfg, &envelope, now_ms).await {
        Ok(message_id) => Ok((envelope, message_id)),
        Err(e) => Err(queue_failed(log, e)),
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
    let trace = request_trace(&req, route(&log.method, &log.path));
    log.trace_id = trace.as_ref().map(|t| t.trace_id.clone());
    let traceresponse = trace.as_ref().map(RequestTrace::response_header);
    let traced = trace.as_ref().zip(traceresponse.as_deref());
    let response = match handle(&req, &env, started, traced, &mut log).await {
        Ok(r) => Ok(r),
        Err(rejection) => {
            log.error = Some(rejection.code);
            if log.reason.is_none() {
                log.reason = Some(rejection.message.clone());
            }
            refusal(&rejection, traceresponse.as_deref())
        }
    };
    let response = response.map_err(|r| worker::Error::RustError(r.message))?;
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
