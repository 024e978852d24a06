//! Runtime calls made in one crossing of the JS/WASM boundary each.
//!
//! Through web-sys, answering a request takes six calls (`new Headers()`, a `set` per
//! header, `new ResponseInit`, its status, its headers, `new Response`), and sending to SQS
//! a dozen, plus a second await for the body of the answer. Each crossing costs a few
//! hundred nanoseconds and each await two closures and a wake; together they were a good
//! part of what the Rust Worker paid over the JavaScript one (docs/benchmarks.md). These
//! helpers take everything in one call. They decide nothing: what to answer and what to
//! send is decided in Rust, these only build the runtime's objects.
//!
//! Headers cross as one string, `name\nvalue\nname\nvalue`: no header name or value can
//! contain a line break (the runtime refuses them, and so does `new Headers`).

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};
use worker::js_sys::{Array, Promise, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

#[wasm_bindgen(inline_js = r#"
function headers(flat) {
  const h = new Headers();
  if (flat.length === 0) return h;
  const parts = flat.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) h.set(parts[i], parts[i + 1]);
  return h;
}
export function respond(status, body, flat) {
  return new Response(body, { status, headers: headers(flat) });
}
export async function send(method, url, body, flat, timeoutMs) {
  const r = await fetch(url, {
    method,
    headers: headers(flat),
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return [r.status, await r.text()];
}
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn respond(status: u16, body: Option<&str>, flat: &str) -> Result<web_sys::Response, JsValue>;

    #[wasm_bindgen(catch)]
    fn send(
        method: &str,
        url: &str,
        body: &Uint8Array,
        flat: &str,
        timeout_ms: u32,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_name = sleep)]
    fn sleep_js(ms: f64) -> Promise;
}

/// `name\nvalue\n…`; `None` if a name or value has a line break (never sent).
fn flatten<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let mut flat = String::new();
    for (name, value) in headers {
        if name.contains('\n') || value.contains('\n') {
            return None;
        }
        if !flat.is_empty() {
            flat.push('\n');
        }
        flat.push_str(name);
        flat.push('\n');
        flat.push_str(value);
    }
    Some(flat)
}

fn message(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<worker::js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// `new Response(body, {status, headers})`.
pub fn response(
    status: u16,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<web_sys::Response, String> {
    let flat = flatten(headers.iter().copied()).ok_or("a header with a line break")?;
    respond(status, body, &flat).map_err(|e| message(&e))
}

/// Sends `body` to `url` with `method` (`POST`, `PUT`) and `headers`, giving up after
/// `timeout_ms`; the answer's status and text. `Err` when there is no answer (network
/// error, timeout).
pub async fn send_text(
    method: &str,
    url: &str,
    body: &Uint8Array,
    headers: &[(String, String)],
    timeout_ms: u32,
) -> Result<(u16, String), String> {
    let flat = flatten(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .ok_or("a header with a line break")?;
    let promise = send(method, url, body, &flat, timeout_ms).map_err(|e| message(&e))?;
    let answer: Array = JsFuture::from(promise)
        .await
        .map_err(|e| message(&e))?
        .unchecked_into();
    let status = answer.get(0).as_f64().unwrap_or_default() as u16;
    let text = answer.get(1).as_string().unwrap_or_default();
    Ok((status, text))
}

/// Waits `ms` milliseconds (`setTimeout`, which a Worker may call while it serves a
/// request: <https://developers.cloudflare.com/workers/runtime-apis/web-standards/#timers>).
pub async fn sleep(ms: u64) {
    // A timer promise only resolves; an error here would mean no timer ran, and the
    // retry that follows is still bounded by the request's budget.
    let _ = JsFuture::from(sleep_js(ms as f64)).await;
}
