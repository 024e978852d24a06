//! The stand-in provider: there is no local Skytells, so this server plays its CDN, its
//! key management API and webhook sender ([`keys`]), and its predictions endpoint
//! ([`predictions`]).
//!
//! CDN paths:
//!
//! | path | answer |
//! |---|---|
//! | `GET /files/{name}?size=N` | N bytes of [`content`] (any size: generated as it streams), `Content-Type` from the extension |
//! | `GET /flaky/{status}/{n}/{name}?size=N` | `status` (429 with `Retry-After: 1`, or 500/503) for the first `n` requests to that path, then the file |
//! | `GET /down-until/{unix_ms}/{name}?size=N` | 503 until the Unix time `unix_ms` (milliseconds), then the file (a CDN down for a while after completion) |
//! | `GET /expired/{name}` | 403, as an expired CDN link |
//! | `GET /gone/{name}` | 410 |
//! | `GET /redirect/metadata` | 302 to `http://169.254.169.254/latest/meta-data/` |
//! | `GET /redirect/to/{name}?size=N` | 302 to `/files/{name}?size=N` |
//! | `GET /stall/{name}?size=N` | half the file, then silence (a read timeout) |
//! | `GET /stall-once/{name}?size=N` | the first time half the file then silence, after that the file |
//! | `GET /status/{code}/{name}` | `code` with an empty body, every time (e.g. 204) |
//! | `GET /partial/{name}?size=N` | 206 Partial Content with the first half of the N-byte file and its `Content-Range`, to a plain GET |
//!
//! Every request is counted per path ([`Provider::hits`]). The provider API:
//! `POST /v1/predictions` and `/v1/predict` ([`predictions`]), `GET /v1/predictions`
//! and `GET /v1/predictions/{id}` ([`polling`], counted per path too), the key and
//! webhook-secret routes ([`keys`]). Completion webhooks can be dropped, withheld
//! (polling only) or delayed ([`delivery`], set in [`predictions::PredictionState::delivery`]).

pub mod delivery;
pub mod keys;
pub mod polling;
pub mod predictions;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

use crate::StackError;

/// The generated files' pattern repeats every 251 bytes: byte `i` is `(i·31 + 7) mod 251`,
/// which depends only on `i mod 251`.
const PERIOD: usize = 251;

/// Bytes `offset..offset + len` of every generated file: byte `i` is `(i·31 + 7) mod 251`,
/// a pattern that is cheap to produce and to check.
///
/// Copied one period at a time rather than computed byte by byte: the latency benchmark's
/// CDN serves ~43 MB/s (10 predictions a second, 4.3 MiB each on average) from this
/// debug-built harness, and the byte-by-byte form (a division per byte, unoptimised) took
/// about half a core of the 2 to do it (`top` during `bench-latency --rates 10`,
/// 2026-12-06), time the archiver's figures then paid for.
pub fn content(offset: u64, len: usize) -> Vec<u8> {
    let period: [u8; PERIOD] = std::array::from_fn(|i| ((i * 31 + 7) % PERIOD) as u8);
    let mut out = Vec::with_capacity(len);
    let mut at = (offset % PERIOD as u64) as usize;
    while out.len() < len {
        let n = (PERIOD - at).min(len - out.len());
        out.extend_from_slice(&period[at..at + n]);
        at = 0;
    }
    out
}

/// The SHA-256 of a generated file of `size` bytes, computed in 1 MiB steps.
pub fn content_sha256(size: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut at = 0;
    while at < size {
        let n = (size - at).min(1 << 20) as usize;
        h.update(content(at, n));
        at += n as u64;
    }
    hex::encode(h.finalize())
}

pub(crate) type Body = crate::process::ServerBody;

/// A running stand-in provider.
#[derive(Debug)]
pub struct Provider {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the stand-in remembers.
#[derive(Debug, Default)]
pub struct State {
    hits: HashMap<String, u32>,
    /// The key API's state.
    pub keys: keys::KeyState,
    /// The predictions endpoint's state.
    pub predictions: predictions::PredictionState,
}

/// Locks the state, also after a panic elsewhere (the state stays usable).
pub(crate) fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match state.lock() {
        Ok(m) => m,
        Err(p) => p.into_inner(),
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// Starts on a free port, signing webhooks with [`keys::INITIAL_WEBHOOK_SECRET`].
    pub async fn start() -> Result<Self, StackError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let url = format!("http://127.0.0.1:{}", addr.port());
        let state = Arc::new(Mutex::new(State {
            hits: HashMap::new(),
            keys: keys::KeyState::new(),
            predictions: predictions::PredictionState {
                base_url: url.clone(),
                ..Default::default()
            },
        }));
        let task = crate::process::serve_http(
            listener,
            Arc::clone(&state),
            |req, state: Arc<Mutex<State>>| async move { route(req, &state).await },
        );
        Ok(Provider { url, state, task })
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> u32 {
        lock(&self.state).hits.get(path).copied().unwrap_or(0)
    }

    /// Reads or changes the state (keys, faults).
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }
}

pub(crate) fn status(code: u16, headers: &[(&str, String)]) -> Response<Body> {
    let mut b = Response::builder().status(code);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(Bytes::new()).boxed()).unwrap_or_default()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("mp4") => "video/mp4",
        Some("wav") => "audio/wav",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// `size` generated bytes, streamed in 64 KiB frames; `stall_after` stops sending (and
/// never ends) after that many bytes.
fn file(name: &str, size: u64, stall_after: Option<u64>) -> Response<Body> {
    const FRAME: u64 = 64 * 1024;
    let limit = stall_after.unwrap_or(size);
    let stream = futures_util::stream::unfold(0u64, move |at| async move {
        if at >= limit {
            if limit < size {
                std::future::pending::<()>().await;
            }
            return None;
        }
        let n = (limit - at).min(FRAME) as usize;
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from(content(at, n)))),
            at + n as u64,
        ))
    });
    Response::builder()
        .status(200)
        .header("content-type", content_type(name))
        .header("content-length", size.to_string())
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_default()
}

/// 206 with the first half of a `size`-byte file, as a server that ignores that no
/// `Range` was asked for would answer.
fn partial(name: &str, size: u64) -> Response<Body> {
    let half = size / 2;
    Response::builder()
        .status(206)
        .header("content-type", content_type(name))
        .header("content-length", half.to_string())
        .header(
            "content-range",
            format!("bytes 0-{}/{size}", half.saturating_sub(1)),
        )
        .body(Full::new(Bytes::from(content(0, half as usize))).boxed())
        .unwrap_or_default()
}

async fn route(req: Request<Incoming>, state: &Arc<Mutex<State>>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    // The read side: one prediction, or the list.
    if req.method() == hyper::Method::GET
        && (path == "/v1/predictions" || path.starts_with("/v1/predictions/"))
    {
        *lock(state).hits.entry(path.clone()).or_insert(0) += 1;
        return polling::route(&req, state);
    }
    // The create call: the current path, and the older one (the legacy dialect).
    if path == "/v1/predictions" || path == "/v1/predict" {
        // The account's current key, which may be what webhooks are signed with.
        keys::note_use(&req, state);
        return predictions::route(req, state).await;
    }
    if path.starts_with("/v1/") {
        return keys::route(req, state).await;
    }
    let size: u64 = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("size=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let n = {
        let mut s = lock(state);
        let c = s.hits.entry(path.clone()).or_insert(0);
        *c += 1;
        *c
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["files", name] => file(name, size, None),
        ["flaky", code, times, name] => {
            let code: u16 = code.parse().unwrap_or(500);
            let times: u32 = times.parse().unwrap_or(1);
            if n <= times {
                let retry_after = if code == 429 {
                    vec![("retry-after", "1".to_owned())]
                } else {
                    vec![]
                };
                status(code, &retry_after)
            } else {
                file(name, size, None)
            }
        }
        ["down-until", until_ms, name] => {
            let until_ms: u128 = until_ms.parse().unwrap_or(0);
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            if now_ms < until_ms {
                status(503, &[])
            } else {
                file(name, size, None)
            }
        }
        ["expired", _] => status(403, &[]),
        ["gone", _] => status(410, &[]),
        ["redirect", "metadata"] => status(
            302,
            &[(
                "location",
                "http://169.254.169.254/latest/meta-data/".to_owned(),
            )],
        ),
        ["redirect", "to", name] => {
            status(302, &[("location", format!("/files/{name}?size={size}"))])
        }
        ["stall", name] => file(name, size, Some(size / 2)),
        ["stall-once", name] => file(name, size, (n == 1).then_some(size / 2)),
        ["status", code, _] => status(code.parse().unwrap_or(500), &[]),
        ["partial", name] => partial(name, size),
        _ => status(404, &[]),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_content_is_the_documented_pattern_at_every_offset() {
        for (offset, len) in [
            (0u64, 0usize),
            (0, 1),
            (250, 3),
            (251, 600),
            (1 << 40, 1000),
            (7, 251),
        ] {
            let expected: Vec<u8> = (offset..offset + len as u64)
                .map(|i| ((i * 31 + 7) % 251) as u8)
                .collect();
            assert_eq!(
                super::content(offset, len),
                expected,
                "offset {offset}, len {len}"
            );
        }
    }

    #[test]
    fn generated_content_is_stable_across_offsets() {
        let whole = super::content(0, 1000);
        assert_eq!(&whole[500..], super::content(500, 500).as_slice());
        assert_eq!(
            super::content_sha256(0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
