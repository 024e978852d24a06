//! A deployed edge, locally: the edge in workerd behind a stable address, and a stand-in
//! of Cloudflare's Workers secrets API that redeploys it with the new secret.
//!
//! `PUT {api_url}/accounts/{account}/workers/scripts/{script}/secrets` with
//! `Authorization: Bearer {token}` and `{"name","text","type":"secret_text"}` does what
//! Cloudflare does: a new version of the Worker with the secret changed. Here that is a
//! new workerd process; once it answers, the stable address forwards new connections to
//! it, and the old one is stopped a little later (requests in flight finish), as a
//! deployment rolls over. The answer comes after the switch.
//!
//! Faults for tests: [`DeployedEdge::ignore_updates`] answers success without applying
//! (a change that never reaches the edge), [`DeployedEdge::fail_updates`] answers 500.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::{TcpListener, TcpStream};

use crate::process::ServerBody;
use crate::workerd::Edge;
use crate::StackError;

/// The account id the stand-in serves.
pub const ACCOUNT: &str = "local-account";
/// The Worker's script name.
pub const SCRIPT: &str = "hookvault-edge";

struct Inner {
    token: String,
    bindings: tokio::sync::Mutex<Vec<(String, String)>>,
    live: tokio::sync::Mutex<Option<Edge>>,
    port: AtomicU16,
    retired_logs: Mutex<Vec<String>>,
    ignore: Mutex<bool>,
    fail: AtomicU32,
    deploys: AtomicU32,
}

/// The edge as deployed: a stable URL and the secrets API that changes it.
pub struct DeployedEdge {
    /// The edge's stable URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The stand-in API's base, as `CLOUDFLARE_API_URL` (`…/client/v4`).
    pub api_url: String,
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DeployedEdge {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl DeployedEdge {
    /// Deploys the edge with `bindings`; the API accepts `token`.
    pub async fn start(bindings: Vec<(String, String)>, token: &str) -> Result<Self, StackError> {
        let edge = Edge::start(&bindings, None).await?;
        let port = edge_port(&edge)?;
        let inner = Arc::new(Inner {
            token: token.to_owned(),
            bindings: tokio::sync::Mutex::new(bindings),
            live: tokio::sync::Mutex::new(Some(edge)),
            port: AtomicU16::new(port),
            retired_logs: Mutex::new(Vec::new()),
            ignore: Mutex::new(false),
            fail: AtomicU32::new(0),
            deploys: AtomicU32::new(1),
        });
        let front = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}", front.local_addr()?.port());
        let i = Arc::clone(&inner);
        let proxy = tokio::spawn(async move {
            while let Ok((mut client, _)) = front.accept().await {
                let port = i.port.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        let api = TcpListener::bind("127.0.0.1:0").await?;
        let api_url = format!("http://127.0.0.1:{}/client/v4", api.local_addr()?.port());
        let server = crate::process::serve_http(api, Arc::clone(&inner), handle);
        Ok(DeployedEdge {
            url,
            api_url,
            inner,
            tasks: vec![proxy, server],
        })
    }

    /// Accept secret updates without applying them (`true`), or apply them again.
    pub fn ignore_updates(&self, on: bool) {
        *lock(&self.inner.ignore) = on;
    }

    /// The next `n` updates answer 500.
    pub fn fail_updates(&self, n: u32) {
        self.inner.fail.store(n, Ordering::SeqCst);
    }

    /// How many versions have been deployed (the first included).
    pub fn deploys(&self) -> u32 {
        self.inner.deploys.load(Ordering::SeqCst)
    }

    /// The value of binding `name` in the live version.
    pub async fn binding(&self, name: &str) -> Option<String> {
        self.inner
            .bindings
            .lock()
            .await
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Every line every version printed.
    pub async fn logs(&self) -> String {
        let mut all = lock(&self.inner.retired_logs).join("\n");
        if let Some(e) = self.inner.live.lock().await.as_ref() {
            all.push('\n');
            all.push_str(&e.logs());
        }
        all
    }
}

fn edge_port(edge: &Edge) -> Result<u16, StackError> {
    edge.url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| StackError::Start(format!("no port in {}", edge.url)))
}

fn answer(code: u16, v: serde_json::Value) -> Response<ServerBody> {
    crate::process::json_response(code, &v, &[])
}

fn failure(code: u16, message: &str) -> Response<ServerBody> {
    answer(
        code,
        serde_json::json!({"success": false, "errors": [{"code": 10000 + code, "message": message}], "messages": [], "result": null}),
    )
}

async fn handle(req: Request<Incoming>, i: Arc<Inner>) -> Response<ServerBody> {
    let expected = format!("/client/v4/accounts/{ACCOUNT}/workers/scripts/{SCRIPT}/secrets");
    if req.uri().path() != expected {
        return failure(404, "no such route");
    }
    if req.method() != hyper::Method::PUT {
        return failure(405, "method not allowed");
    }
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", i.token));
    if !authorized {
        return failure(403, "Authentication error");
    }
    let Ok(body) = Limited::new(req.into_body(), 1 << 20).collect().await else {
        return failure(413, "body too large");
    };
    let v: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap_or_default();
    let (Some(name), Some(text), Some("secret_text")) = (
        v.get("name").and_then(|n| n.as_str()),
        v.get("text").and_then(|n| n.as_str()),
        v.get("type").and_then(|n| n.as_str()),
    ) else {
        return failure(400, "expected {\"name\",\"text\",\"type\":\"secret_text\"}");
    };
    if i.fail.load(Ordering::SeqCst) > 0 {
        i.fail.fetch_sub(1, Ordering::SeqCst);
        return failure(500, "internal error");
    }
    let result = serde_json::json!({"success": true, "errors": [], "messages": [], "result": {"name": name, "type": "secret_text"}});
    if *lock(&i.ignore) {
        return answer(200, result);
    }
    // One deployment at a time, as Cloudflare serialises versions of a script.
    let mut bindings = i.bindings.lock().await;
    let next = crate::lambda::with_overrides(bindings.clone(), &[(name, text)]);
    let edge = match Edge::start(&next, None).await {
        Ok(e) => e,
        Err(e) => return failure(500, &format!("deploy failed: {e}")),
    };
    let Ok(port) = edge_port(&edge) else {
        return failure(500, "deploy failed: no port");
    };
    i.port.store(port, Ordering::SeqCst);
    i.deploys.fetch_add(1, Ordering::SeqCst);
    *bindings = next;
    let old = i.live.lock().await.replace(edge);
    if let Some(old) = old {
        // Let requests in flight on the old version finish, then stop it.
        let i = Arc::clone(&i);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            lock(&i.retired_logs).push(old.logs());
            drop(old);
        });
    }
    answer(200, result)
}
