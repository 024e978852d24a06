//! The Worker glue: read the request and the environment, call the pure logic, send the
//! one SQS request, answer, log. Only compiled for wasm32.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use worker::{
    console_log, event, AbortSignal, Context, Date, Env, Fetch, Headers, Method, Request,
    RequestInit, Response, Result,
};

use crate::config::EdgeConfig;
use crate::handler::{self, Rejection};
use crate::log::RequestLog;
use crate::route::{route, Route};
use crate::sqs::{self, SqsError};

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
    CONFIG.with(|c| *c.borrow_mut() = Some(Rc::clone(&cfg)));
    Ok(cfg)
}

fn respond(r: &Rejection) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    if let Some(secs) = r.retry_after {
        headers.set("retry-after", &secs.to_string())?;
    }
    if let Some(allow) = r.allow {
        headers.set("allow", allow)?;
    }
    Ok(Response::error(r.body(), r.status)?.with_headers(headers))
}

fn json(status: u16, body: String) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}

/// Reads the body, refusing it as soon as it passes `max` bytes. With a declared length
/// (already checked against the cap) the body is taken in one piece; without one it is
/// streamed and cut off at the cap.
async fn read_body(
    req: &mut Request,
    declared: bool,
    max: usize,
) -> std::result::Result<Vec<u8>, Rejection> {
    let unreadable =
        |_| Rejection::new(400, "unreadable_body", "the request body could not be read");
    if declared {
        let body = req.bytes().await.map_err(unreadable)?;
        return if body.len() > max {
            Err(handler::too_large(max))
        } else {
            Ok(body)
        };
    }
    let mut out = Vec::new();
    let Ok(mut stream) = req.stream() else {
        return Ok(out); // no body
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(unreadable)?;
        if out.len() + chunk.len() > max {
            return Err(handler::too_large(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The headers `names` lists (the scheme's), each value as the runtime gives it. One
/// lookup per name: cheaper than copying every header across the JS boundary.
fn header_list(req: &Request, names: &[&str]) -> Vec<(String, String)> {
    let headers = req.headers();
    names
        .iter()
        .filter_map(|n| headers.get(n).ok().flatten().map(|v| ((*n).to_owned(), v)))
        .collect()
}

async fn enqueue(
    cfg: &EdgeConfig,
    envelope: &hookvault_core::envelope::Envelope,
    now_ms: u64,
) -> std::result::Result<String, SqsError> {
    let signed = sqs::send_message(&cfg.sqs, envelope, cfg.max_message, now_ms)?;
    let headers = Headers::new();
    for (k, v) in &signed.headers {
        headers
            .set(k, v)
            .map_err(|e| SqsError::Sign(e.to_string()))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(signed.body.clone().into()));
    let request = Request::new_with_init(&signed.url, &init)
        .map_err(|e| SqsError::Unreachable(e.to_string()))?;
    let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(
        cfg.sqs_timeout_ms,
    ));
    let mut resp = Fetch::Request(request)
        .send_with_signal(&signal)
        .await
        .map_err(|e| SqsError::Unreachable(e.to_string()))?;
    let status = resp.status_code();
    let text = resp
        .text()
        .await
        .map_err(|e| SqsError::Unreachable(e.to_string()))?;
    sqs::parse_response(status, &text, &signed)
}

async fn handle(
    req: &mut Request,
    env: &Env,
    now_ms: u64,
    log: &mut RequestLog,
) -> std::result::Result<Response, Rejection> {
    let path = req.path();
    let method = req.method().to_string();
    let route = route(&method, &path);
    match route {
        Route::NotFound => return Err(handler::not_found()),
        Route::MethodNotAllowed(allow) => return Err(handler::method_not_allowed(allow)),
        Route::Health => return json(200, r#"{"ok":true}"#.to_owned()).map_err(internal),
        Route::Webhook(_) | Route::Probe(_) => {}
    }
    let cfg = config(env).map_err(|e| {
        console_log!("{}", serde_json::json!({"msg": "config_error", "error": e}));
        handler::misconfigured(10)
    })?;
    let content_length = req.headers().get("content-length").ok().flatten();
    handler::check_declared_length(content_length.as_deref(), cfg.max_body)?;
    // Only the headers the provider's scheme reads; an unknown provider is refused by
    // accept_* once the body is read, as for any other bad request.
    let provider = match route {
        Route::Webhook(p) => Some(p),
        Route::Probe(p) => p,
        _ => None,
    };
    let names = handler::target(&cfg, provider)
        .map(|p| p.scheme.header_names())
        .unwrap_or_default();
    let headers = header_list(req, names);
    let body = read_body(req, content_length.is_some(), cfg.max_body).await?;
    match route {
        Route::Webhook(provider) => {
            log.provider = Some(provider.to_owned());
            let (verified, envelope) =
                handler::accept_webhook(&cfg, provider, &headers, &body, now_ms)?;
            log.scheme = Some(envelope.scheme.name());
            log.key_id = Some(verified.key_id.clone());
            log.key_slot = Some(verified.slot.as_str());
            log.event_id = Some(envelope.event_id.clone());
            let message_id = enqueue(&cfg, &envelope, now_ms).await.map_err(|e| {
                log.reason = Some(e.to_string());
                handler::queue_failure(&e, cfg.retry_after_secs)
            })?;
            log.sqs_message_id = Some(message_id.clone());
            json(202, handler::accepted_body(&envelope.event_id, &message_id)).map_err(internal)
        }
        Route::Probe(provider) => {
            log.provider = provider.map(str::to_owned);
            let verified = handler::accept_probe(&cfg, provider, &headers, &body, now_ms)?;
            log.key_id = Some(verified.key_id.clone());
            log.key_slot = Some(verified.slot.as_str());
            let headers = Headers::new();
            headers
                .set("x-hookvault-key", &verified.key_id)
                .map_err(internal)?;
            headers
                .set("x-hookvault-key-slot", verified.slot.as_str())
                .map_err(internal)?;
            Ok(Response::empty()
                .map_err(internal)?
                .with_status(204)
                .with_headers(headers))
        }
        _ => Err(handler::not_found()),
    }
}

fn internal(e: worker::Error) -> Rejection {
    Rejection::new(500, "internal_error", e.to_string())
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let started = Date::now().as_millis();
    let mut log = RequestLog::new(req.method().as_ref(), &req.path());
    let response = match handle(&mut req, &env, started, &mut log).await {
        Ok(r) => r,
        Err(rejection) => {
            log.error = Some(rejection.code);
            if log.reason.is_none() {
                log.reason = Some(rejection.message.clone());
            }
            respond(&rejection)?
        }
    };
    log.status = response.status_code();
    log.latency_ms = Date::now().as_millis().saturating_sub(started);
    console_log!("{}", log.to_json());
    Ok(response)
}
