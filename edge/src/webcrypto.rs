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

use crate::config::Provider;
use crate::handler::{refused, Rejection};

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
    /// Imported keys, by provider name and position in its ring.
    static KEYS: RefCell<HashMap<(String, usize), JsValue>> = RefCell::new(HashMap::new());
}

async fn crypto_key(provider: &str, index: usize, key: &Key) -> Result<JsValue, JsValue> {
    let slot = (provider.to_owned(), index);
    if let Some(k) = KEYS.with(|keys| keys.borrow().get(&slot).cloned()) {
        return Ok(k);
    }
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"HMAC".into())?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into())?;
    let usages = Array::of1(&"sign".into());
    let material = Uint8Array::from(key.material());
    let imported =
        JsFuture::from(import_key("raw", &material, &algorithm, false, &usages)?).await?;
    KEYS.with(|keys| keys.borrow_mut().insert(slot, imported.clone()));
    Ok(imported)
}

async fn webcrypto_mac(
    provider: &str,
    index: usize,
    key: &Key,
    message: &Uint8Array,
) -> Result<[u8; 32], JsValue> {
    let crypto_key = crypto_key(provider, index, key).await?;
    bytes_32(JsFuture::from(sign("HMAC", &crypto_key, message)?).await?)
}

/// The 32 bytes of a SHA-256 or HMAC-SHA256 result (an `ArrayBuffer`).
fn bytes_32(buffer: JsValue) -> Result<[u8; 32], JsValue> {
    let bytes = Uint8Array::new(&buffer);
    let mut out = [0u8; 32];
    if bytes.length() as usize != out.len() {
        return Err(JsValue::from_str("WebCrypto gave other than 32 bytes"));
    }
    bytes.copy_to(&mut out);
    Ok(out)
}

/// The JS heap's copy of `data` when the caller has one (the body as the runtime read
/// it), else a new one: WebCrypto never reads WASM memory, whatever it does meanwhile.
fn in_js(data: &[u8], js: Option<&Uint8Array>) -> Uint8Array {
    js.cloned().unwrap_or_else(|| Uint8Array::from(data))
}

/// Finishes [`crate::handler::prepare`]: offers each key's MAC, computed by WebCrypto, in
/// ring order. `body_js` is the body as the runtime read it, if the caller kept it.
pub async fn settle(
    p: &Provider,
    mut pending: Pending<'_>,
    body_js: Option<&Uint8Array>,
) -> Result<Verified, Rejection> {
    let parts = pending.message();
    let message = match parts {
        [[], [], [], [], body] => in_js(body, body_js),
        _ => Uint8Array::from(parts.concat().as_slice()),
    };
    for (index, key) in p.ring.keys().iter().enumerate() {
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
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = digest)]
    fn digest(algorithm: &str, data: &Uint8Array) -> Result<Promise, JsValue>;
}

fn start_sha256(data: &[u8], js: Option<&Uint8Array>) -> Result<JsFuture, JsValue> {
    Ok(JsFuture::from(digest("SHA-256", &in_js(data, js))?))
}

async fn finish_sha256(started: Result<JsFuture, JsValue>) -> Result<[u8; 32], JsValue> {
    bytes_32(started?.await?)
}

/// SHA-256 of `data` (`js`: the same bytes in the JS heap, if the caller has them) by
/// WebCrypto, or by the `sha2` crate if WebCrypto fails (logged). The digest starts at
/// once, before the returned future is first polled, so it runs while the caller awaits
/// something else (the edge: the signature check).
pub fn sha256<'a>(
    data: &'a [u8],
    js: Option<&Uint8Array>,
) -> impl std::future::Future<Output = [u8; 32]> + 'a {
    let started = start_sha256(data, js);
    async move {
        match finish_sha256(started).await {
            Ok(hash) => hash,
            Err(e) => {
                console_log!(
                    "{}",
                    serde_json::json!({"msg": "webcrypto_failed", "op": "digest", "error": format!("{e:?}")})
                );
                <sha2::Sha256 as sha2::Digest>::digest(data).into()
            }
        }
    }
}
