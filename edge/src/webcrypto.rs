//! The MACs of verification, computed by the runtime's WebCrypto (`crypto.subtle`).
//!
//! hookvault-core parses the signature header, picks the keys and compares in constant
//! time; only HMAC-SHA256 itself runs here. In WASM, the `sha2` crate's portable code
//! takes about 20 µs for a 4 KiB webhook; WebCrypto is the runtime's native code (with
//! the CPU's SHA extensions where it has them). Each key is imported once per isolate:
//! vars and secrets cannot change under a running isolate, so neither can the ring.
//!
//! If WebCrypto fails (it should not), the key's MAC is computed by hookvault-core
//! instead and the failure is logged: a webhook is never refused because of it.

use std::cell::RefCell;
use std::collections::HashMap;

use hookvault_core::{Key, Pending, Verified};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::console_log;
use worker::js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

use crate::config::Provider;
use crate::handler::{refused, too_large, unreadable_body, Rejection};
use crate::sqs::UnsignedRequest;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = importKey)]
    fn import_key(
        format: &str,
        key_data: &Uint8Array,
        algorithm: &Object,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = sign)]
    fn sign(algorithm: &str, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
}

thread_local! {
    /// Imported keys, by provider name, in ring order (`None`: not imported yet).
    static KEYS: RefCell<HashMap<String, Vec<Option<JsValue>>>> = RefCell::new(HashMap::new());
}

/// The ring's key at `index` as imported, if it was imported already.
fn imported(provider: &str, index: usize) -> Option<JsValue> {
    KEYS.with(|keys| keys.borrow().get(provider)?.get(index)?.clone())
}

async fn crypto_key(provider: &str, index: usize, key: &Key) -> Result<JsValue, JsValue> {
    if let Some(k) = imported(provider, index) {
        return Ok(k);
    }
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"HMAC".into())?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into())?;
    let usages = Array::of1(&"sign".into());
    let material = Uint8Array::from(key.material());
    let imported =
        JsFuture::from(import_key("raw", &material, &algorithm, false, &usages)?).await?;
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        let ring = keys.entry(provider.to_owned()).or_default();
        if ring.len() <= index {
            ring.resize(index + 1, None);
        }
        ring[index] = Some(imported.clone());
    });
    Ok(imported)
}

async fn webcrypto_mac(
    provider: &str,
    index: usize,
    key: &Key,
    message: &Uint8Array,
) -> Result<[u8; 32], JsValue> {
    let crypto_key = crypto_key(provider, index, key).await?;
    bytes(&JsFuture::from(sign("HMAC", &crypto_key, message)?).await?)
}

/// The `N` bytes of a digest or HMAC (an `ArrayBuffer`).
fn bytes<const N: usize>(buffer: &JsValue) -> Result<[u8; N], JsValue> {
    let bytes = Uint8Array::new(buffer);
    let mut out = [0u8; N];
    if bytes.length() as usize != N {
        return Err(JsValue::from_str(
            "WebCrypto gave a result of another length",
        ));
    }
    bytes.copy_to(&mut out);
    Ok(out)
}

/// Finishes [`crate::handler::prepare`]: offers each key's MAC, computed by WebCrypto, in
/// ring order. `body` is the body in the JS heap (WebCrypto never reads WASM memory);
/// `first_mac` the first key's MAC of the body alone, if [`read_body`] computed it (used
/// only if the scheme signs the body alone).
pub async fn settle(
    p: &Provider,
    mut pending: Pending<'_>,
    body: &Uint8Array,
    first_mac: Option<[u8; 32]>,
) -> Result<Verified, Rejection> {
    let parts = pending.message();
    let (message, body_alone) = match parts {
        [[], [], [], [], _] => (body.clone(), true),
        _ => (Uint8Array::from(parts.concat().as_slice()), false),
    };
    for (index, key) in p.ring.keys().iter().enumerate() {
        if let (0, true, Some(mac)) = (index, body_alone, first_mac) {
            if let Some(verified) = pending.offer(key, &mac) {
                return Ok(verified);
            }
            continue;
        }
        let mac = match webcrypto_mac(&p.name, index, key, &message).await {
            Ok(mac) => mac,
            Err(e) => {
                console_log!(
                    "{}",
                    serde_json::json!({
                        "msg": "webcrypto_failed",
                        "provider": p.name,
                        "key_id": key.id(),
                        "error": format!("{e:?}"),
                    })
                );
                key.mac(&parts)
            }
        };
        if let Some(verified) = pending.offer(key, &mac) {
            return Ok(verified);
        }
    }
    Err(refused(pending.refusal()))
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(array: &Uint8Array) -> Result<JsValue, JsValue>;
}

/// `N` random bytes from the runtime's `crypto.getRandomValues`, a cryptographically
/// strong source (<https://developers.cloudflare.com/workers/runtime-apis/web-crypto/>).
/// If it fails (it should not), the bytes come from `Math.random()` and the failure is
/// logged: they only make trace ids ([`crate::trace`]), which need to be distinct, not
/// secret, and a webhook is never refused for them.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let array = Uint8Array::new_with_length(N as u32);
    match get_random_values(&array) {
        Ok(_) => array.copy_to(&mut out),
        Err(e) => {
            console_log!(
                "{}",
                serde_json::json!({"msg": "webcrypto_failed", "op": "getRandomValues", "error": format!("{e:?}")})
            );
            for b in &mut out {
                *b = (worker::js_sys::Math::random() * 256.0) as u8;
            }
        }
    }
    out
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = digest)]
    fn digest(algorithm: &str, data: &Uint8Array) -> Result<Promise, JsValue>;
}

fn start_sha256(js: &Uint8Array) -> Result<JsFuture, JsValue> {
    Ok(JsFuture::from(digest("SHA-256", js)?))
}

/// Logs a failed WebCrypto digest (the caller then hashes in Rust).
fn digest_failed(e: &JsValue) {
    console_log!(
        "{}",
        serde_json::json!({"msg": "webcrypto_failed", "op": "digest", "error": format!("{e:?}")})
    );
}

async fn finish_sha256(started: Result<JsFuture, JsValue>) -> Result<[u8; 32], JsValue> {
    bytes(&started?.await?)
}

/// SHA-256 of `data` (`js`: the same bytes in the JS heap) by WebCrypto, or by the
/// `sha2` crate if WebCrypto fails (logged). The digest starts at once, before the
/// returned future is first polled, so it runs while the caller awaits something else
/// (the edge: the signature check).
pub fn sha256<'a>(
    data: &'a [u8],
    js: &Uint8Array,
) -> impl std::future::Future<Output = [u8; 32]> + 'a {
    let started = start_sha256(js);
    async move {
        match finish_sha256(started).await {
            Ok(hash) => hash,
            Err(e) => {
                digest_failed(&e);
                <sha2::Sha256 as sha2::Digest>::digest(data).into()
            }
        }
    }
}

#[wasm_bindgen(inline_js = r#"
export function sha256_md5(body, message) {
  return Promise.all([
    crypto.subtle.digest("SHA-256", body),
    crypto.subtle.digest("MD5", message),
  ]);
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn sha256_md5(body: &Uint8Array, message: &Uint8Array) -> Result<Promise, JsValue>;
}

async fn webcrypto_sha256_md5(
    body: &Uint8Array,
    message: &[u8],
) -> Result<([u8; 32], [u8; 16]), JsValue> {
    let both: Array = JsFuture::from(sha256_md5(body, &Uint8Array::from(message))?)
        .await?
        .into();
    Ok((bytes(&both.get(0))?, bytes(&both.get(1))?))
}

/// A `SendMessage`'s two hashes in one wait: SHA-256 of the body (`body_js`, the request
/// body as it will be sent), SigV4's payload hash, and MD5 of the message, to check SQS's
/// answer against (workerd's WebCrypto has MD5 for this). By the `sha2` and `md-5` crates
/// if WebCrypto fails (logged).
pub async fn send_message_hashes(
    unsigned: &UnsignedRequest,
    body_js: &Uint8Array,
) -> ([u8; 32], [u8; 16]) {
    match webcrypto_sha256_md5(body_js, unsigned.message.as_bytes()).await {
        Ok(hashes) => hashes,
        Err(e) => {
            digest_failed(&e);
            (
                <sha2::Sha256 as sha2::Digest>::digest(unsigned.body.as_bytes()).into(),
                unsigned.message_md5(),
            )
        }
    }
}

#[wasm_bindgen(inline_js = r#"
const skip = () => undefined;
export function read_body(request, key, digest) {
  return request.arrayBuffer().then((body) => Promise.all([
    body,
    key === undefined ? undefined : crypto.subtle.sign("HMAC", key, body).catch(skip),
    digest ? crypto.subtle.digest("SHA-256", body).catch(skip) : undefined,
  ]));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = read_body)]
    fn read_body_js(
        request: &web_sys::Request,
        key: &JsValue,
        digest: bool,
    ) -> Result<Promise, JsValue>;
}

/// A request body read in one piece, with what WebCrypto computed from it on arrival.
pub type Body = crate::io::Body<Uint8Array>;

/// Reads `request`'s body (its length is declared and within `max`) and, in the same
/// wait, has WebCrypto compute from it what verification and the envelope need: the
/// HMAC with `p`'s first key if the scheme signs the body alone and that key is imported
/// already, and the SHA-256 if `digest`. A result WebCrypto could not compute is `None`
/// (the caller computes it as it would have). Refused if the body cannot be read, or if
/// it is over `max` after all (checked before it is copied into WASM memory).
pub async fn read_body(
    request: &web_sys::Request,
    p: Option<&Provider>,
    digest: bool,
    max: usize,
) -> Result<Body, Rejection> {
    let key = p
        .filter(|p| p.scheme.signs_body_alone())
        .and_then(|p| imported(&p.name, 0))
        .unwrap_or(JsValue::UNDEFINED);
    let promise = read_body_js(request, &key, digest).map_err(|_| unreadable_body())?;
    let read: Array = JsFuture::from(promise)
        .await
        .map_err(|_| unreadable_body())?
        .into();
    let js = Uint8Array::new(&read.get(0));
    if js.length() as usize > max {
        return Err(too_large(max));
    }
    let optional = |v: JsValue| (!v.is_undefined()).then(|| bytes(&v).ok()).flatten();
    Ok(Body {
        bytes: js.to_vec(),
        first_mac: optional(read.get(1)),
        sha256: optional(read.get(2)),
        blob: js,
    })
}
