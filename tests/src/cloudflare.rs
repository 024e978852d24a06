//! A deployed edge, locally: the edge in workerd behind a stable address, and a stand-in
//! of Cloudflare's Workers Versions and Deployments API that deploys it.
//!
//! The stand-in keeps what Cloudflare keeps for a Worker: **versions** (modules, entry
//! module, bindings) and **deployments** (which versions serve, at which percentage; the
//! last one serves). Under `{api_url}/accounts/{ACCOUNT}/workers/scripts/{SCRIPT}/`, with
//! `Authorization: Bearer {token}` and Cloudflare's envelope
//! (`{"success","errors","messages","result"}`):
//!
//! | call | what it does |
//! |---|---|
//! | `GET deployments` | newest first: `{"deployments":[{"id","strategy":"percentage","versions":[{"version_id","percentage"}],…}]}` |
//! | `POST deployments` | `{"strategy":"percentage","versions":[…]}`: percentages must add up to 100; one version at 100 % is started in workerd (**its own modules and bindings**) and new connections go to it; a split is recorded (the stand-in keeps serving the version before it) |
//! | `GET versions` | newest first: `{"items":[{"id","number","metadata"}]}` |
//! | `GET versions/{id}` | `resources.bindings` (`secret_text` without its value), `resources.script_runtime` |
//! | `GET content/v2?version={id}` | the version's modules as `multipart/form-data`, entry module in `cf-entrypoint` |
//! | `POST versions[?bindings_inherit=strict]` | `multipart/form-data`: `metadata` (`main_module`, `bindings` with `inherit` [`version_id` or the latest], `secret_text`, `plain_text`) and the modules; bindings not named are dropped, an unresolvable `inherit` is an error with `strict` and dropped without |
//! | `PUT secrets` (the legacy endpoint) | a new version from the **latest** version with the secret changed, deployed; refused with 10215 when the latest version is not the one serving at 100 % |
//!
//! A deployment starts a new workerd process; once it answers, the stable address
//! forwards new connections to it, and the old one is stopped a little later (requests
//! in flight finish), as a deployment rolls over. The answer comes after the switch.
//!
//! Faults and states for tests: [`DeployedEdge::ignore_updates`] answers success to
//! deployments without applying them (a change that never reaches the edge),
//! [`DeployedEdge::fail_updates`] answers 500 to writes, [`DeployedEdge::lag_locations`]
//! keeps some new connections on the version before a deployment for a while (locations
//! converging over seconds), [`DeployedEdge::upload_undeployed`] uploads a version nobody
//! deploys, [`DeployedEdge::begin_gradual`] starts a gradual deployment.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};

use crate::process::{ServerBody, TempDir};
use crate::workerd::Edge;
use crate::{paths, StackError};

/// The account id the stand-in serves.
pub const ACCOUNT: &str = "local-account";
/// The Worker's script name.
pub const SCRIPT: &str = "hookvault-edge";
/// Bindings reported as `secret_text` (without their value); the others are `plain_text`.
const SECRET_BINDINGS: &[&str] = &["WEBHOOK_SECRETS", "AWS_SECRET_ACCESS_KEY"];
/// The largest upload the stand-in reads.
const MAX_UPLOAD: usize = 64 << 20;

/// One module of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Module {
    name: String,
    content_type: String,
    content: Bytes,
}

/// A version of the Worker.
#[derive(Debug, Clone)]
struct Version {
    id: String,
    number: usize,
    entry: String,
    modules: Vec<Module>,
    bindings: Vec<(String, String)>,
    message: String,
}

impl Version {
    /// A digest of the code: entry module, then every module's name, type and bytes.
    fn code(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.entry.as_bytes());
        for m in &self.modules {
            for part in [m.name.as_bytes(), m.content_type.as_bytes(), &m.content] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
        }
        hex::encode(h.finalize())
    }

    fn binding(&self, name: &str) -> Option<&str> {
        self.bindings
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A deployment: versions and their percentages.
#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    versions: Vec<(String, f64)>,
}

#[derive(Debug, Default)]
struct Versions {
    /// Oldest first.
    versions: Vec<Version>,
    /// Oldest first; the last serves.
    deployments: Vec<Deployment>,
}

impl Versions {
    fn get(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// The version serving at 100 %, if one does.
    fn serving(&self) -> Option<&Version> {
        match self.deployments.last()?.versions.as_slice() {
            [(id, p)] if *p == 100.0 => self.get(id),
            _ => None,
        }
    }

    fn add(
        &mut self,
        entry: String,
        modules: Vec<Module>,
        bindings: Vec<(String, String)>,
        message: &str,
    ) -> Version {
        let v = Version {
            id: uuid::Uuid::new_v4().to_string(),
            number: self.versions.len() + 1,
            entry,
            modules,
            bindings,
            message: message.to_owned(),
        };
        self.versions.push(v.clone());
        v
    }
}

struct Inner {
    token: String,
    /// Held across a deployment: Cloudflare serialises the versions of a script.
    state: tokio::sync::Mutex<Versions>,
    live: tokio::sync::Mutex<Option<Edge>>,
    port: AtomicU16,
    retired_logs: Mutex<Vec<String>>,
    ignore: Mutex<bool>,
    fail: AtomicU32,
    deploys: AtomicU32,
    /// The version before the last deployment, and when that deployment happened.
    previous: Mutex<Option<(u16, std::time::Instant)>>,
    /// For this long after a deployment, one new connection in `.1` goes to the
    /// previous version.
    lag: Mutex<(Duration, u32)>,
    connections: AtomicU32,
    /// Connections served by the previous version because of the lag.
    lagged: AtomicU32,
}

impl Inner {
    /// The port a new connection goes to: the live version's, or while a deployment
    /// lags, the previous version's for one connection in `every`.
    fn route(&self) -> u16 {
        let live = self.port.load(Ordering::SeqCst);
        let n = self.connections.fetch_add(1, Ordering::SeqCst);
        let (lag, every) = *lock(&self.lag);
        match *lock(&self.previous) {
            Some((old, at)) if every > 0 && at.elapsed() < lag && n % every == 0 => {
                self.lagged.fetch_add(1, Ordering::SeqCst);
                old
            }
            _ => live,
        }
    }

    /// Starts `v` in workerd and sends new connections to it.
    async fn run(self: &Arc<Self>, v: &Version) -> Result<(), String> {
        let dir = TempDir::new("edge-version").map_err(|e| e.to_string())?;
        let mut files: Vec<(&str, &str)> = Vec::new();
        // The entry module first: workerd's main module.
        let mut ordered: Vec<&Module> = v.modules.iter().filter(|m| m.name == v.entry).collect();
        ordered.extend(v.modules.iter().filter(|m| m.name != v.entry));
        for m in &ordered {
            std::fs::write(dir.0.join(&m.name), &m.content).map_err(|e| e.to_string())?;
            let kind = match m.content_type.as_str() {
                "application/wasm" => "wasm",
                "text/plain" => "text",
                "application/octet-stream" => "data",
                _ => "esModule",
            };
            files.push((m.name.as_str(), kind));
        }
        let edge = Edge::start_modules(&dir.0, &files, &v.bindings, None)
            .await
            .map_err(|e| format!("deploy failed: {e}"))?;
        let port = edge_port(&edge).map_err(|e| e.to_string())?;
        let before = self.port.swap(port, Ordering::SeqCst);
        // The first deployment has no version before it.
        *lock(&self.previous) = (before != 0).then(|| (before, std::time::Instant::now()));
        self.deploys.fetch_add(1, Ordering::SeqCst);
        let old = self.live.lock().await.replace(edge);
        if let Some(old) = old {
            // Let requests in flight on the old version finish (and lagging locations
            // converge), then stop it.
            let i = Arc::clone(self);
            let lag = lock(&self.lag).0;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2) + lag).await;
                lock(&i.retired_logs).push(old.logs());
                drop(old);
            });
        }
        Ok(())
    }

    /// Records deployment `versions` and, for one version at 100 %, starts it.
    async fn deploy(
        self: &Arc<Self>,
        st: &mut Versions,
        versions: Vec<(String, f64)>,
    ) -> Result<Deployment, (u16, String)> {
        let total: f64 = versions.iter().map(|(_, p)| p).sum();
        if versions.is_empty() || (total - 100.0).abs() > 1e-9 {
            return Err((400, "percentages must add up to 100".into()));
        }
        for (id, _) in &versions {
            if st.get(id).is_none() {
                return Err((404, format!("no version {id}")));
            }
        }
        let d = Deployment {
            id: uuid::Uuid::new_v4().to_string(),
            versions,
        };
        if *lock(&self.ignore) {
            return Ok(d);
        }
        if let [(id, _)] = d.versions.as_slice() {
            let v = st
                .get(id)
                .cloned()
                .ok_or((404, format!("no version {id}")))?;
            self.run(&v).await.map_err(|e| (500, e))?;
        }
        st.deployments.push(d.clone());
        Ok(d)
    }
}

/// The edge as deployed: a stable URL and the API that changes it.
pub struct DeployedEdge {
    /// The edge's stable URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The stand-in API's base, as `CLOUDFLARE_API_URL` (`…/client/v4`).
    pub api_url: String,
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for DeployedEdge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployedEdge")
            .field("url", &self.url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
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

/// The built edge's modules, as `wrangler deploy` uploads them.
fn built_modules() -> Result<Vec<Module>, StackError> {
    let dir = paths::edge_build()?;
    crate::workerd::RUST_EDGE_MODULES
        .iter()
        .map(|(name, kind)| {
            Ok(Module {
                name: (*name).to_owned(),
                content_type: if *kind == "wasm" {
                    "application/wasm".into()
                } else {
                    "application/javascript+module".into()
                },
                content: Bytes::from(std::fs::read(dir.join(name))?),
            })
        })
        .collect()
}

impl DeployedEdge {
    /// Uploads the built edge with `bindings` as version 1, deploys it, and serves the
    /// API, which accepts `token`.
    pub async fn start(bindings: Vec<(String, String)>, token: &str) -> Result<Self, StackError> {
        let mut st = Versions::default();
        let first = st.add(
            crate::workerd::RUST_EDGE_MODULES[0].0.to_owned(),
            built_modules()?,
            bindings,
            "wrangler deploy",
        );
        let inner = Arc::new(Inner {
            token: token.to_owned(),
            state: tokio::sync::Mutex::new(Versions::default()),
            live: tokio::sync::Mutex::new(None),
            port: AtomicU16::new(0),
            retired_logs: Mutex::new(Vec::new()),
            ignore: Mutex::new(false),
            fail: AtomicU32::new(0),
            deploys: AtomicU32::new(0),
            previous: Mutex::new(None),
            lag: Mutex::new((Duration::ZERO, 0)),
            connections: AtomicU32::new(0),
            lagged: AtomicU32::new(0),
        });
        inner
            .deploy(&mut st, vec![(first.id, 100.0)])
            .await
            .map_err(|(_, e)| StackError::Start(e))?;
        *inner.state.lock().await = st;
        let front = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}", front.local_addr()?.port());
        let i = Arc::clone(&inner);
        let proxy = tokio::spawn(async move {
            while let Ok((mut client, _)) = front.accept().await {
                let port = i.route();
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

    /// Answer success to deployments without applying them (`true`), or apply them again.
    pub fn ignore_updates(&self, on: bool) {
        *lock(&self.inner.ignore) = on;
    }

    /// The next `n` writes (uploads, deployments, secret edits) answer 500.
    pub fn fail_updates(&self, n: u32) {
        self.inner.fail.store(n, Ordering::SeqCst);
    }

    /// From now on, for `lag` after each deployment, one new connection in `every` still
    /// reaches the version before it, as a location that has not converged yet would.
    pub fn lag_locations(&self, lag: Duration, every: u32) {
        *lock(&self.inner.lag) = (lag, every);
    }

    /// Connections that reached a previous version because of [`Self::lag_locations`].
    pub fn lagged_connections(&self) -> u32 {
        self.inner.lagged.load(Ordering::SeqCst)
    }

    /// How many versions have been started in workerd (the first included).
    pub fn deploys(&self) -> u32 {
        self.inner.deploys.load(Ordering::SeqCst)
    }

    /// The value of binding `name` in the version serving at 100 %.
    pub async fn binding(&self, name: &str) -> Option<String> {
        let st = self.inner.state.lock().await;
        st.serving()?.binding(name).map(str::to_owned)
    }

    /// The id and code digest of the version serving at 100 %.
    pub async fn serving(&self) -> Option<(String, String)> {
        let st = self.inner.state.lock().await;
        st.serving().map(|v| (v.id.clone(), v.code()))
    }

    /// The code digest of version `id`.
    pub async fn code_of(&self, id: &str) -> Option<String> {
        self.inner.state.lock().await.get(id).map(Version::code)
    }

    /// Every version id that has been part of a deployment.
    pub async fn deployed_versions(&self) -> Vec<String> {
        let st = self.inner.state.lock().await;
        let mut ids: Vec<String> = st
            .deployments
            .iter()
            .flat_map(|d| d.versions.iter().map(|(id, _)| id.clone()))
            .collect();
        ids.dedup();
        ids
    }

    /// Uploads a version with changed code and the serving version's bindings, as
    /// `wrangler versions upload` does, and deploys nothing. Its id.
    pub async fn upload_undeployed(&self) -> Result<String, StackError> {
        let mut st = self.inner.state.lock().await;
        let base = st
            .serving()
            .cloned()
            .ok_or_else(|| StackError::Start("no version serves at 100 %".into()))?;
        let mut modules = base.modules.clone();
        for m in modules.iter_mut().filter(|m| m.name == base.entry) {
            let mut changed = m.content.to_vec();
            changed
                .extend_from_slice(b"\n// uploaded with wrangler versions upload, not deployed\n");
            m.content = Bytes::from(changed);
        }
        Ok(st
            .add(
                base.entry.clone(),
                modules,
                base.bindings.clone(),
                "versions upload",
            )
            .id)
    }

    /// Uploads a changed version and starts a gradual deployment: `percent` % to it, the
    /// rest to the version serving. (The stand-in keeps serving the latter.) Its id.
    pub async fn begin_gradual(&self, percent: f64) -> Result<String, StackError> {
        let new = self.upload_undeployed().await?;
        let mut st = self.inner.state.lock().await;
        let serving = st
            .serving()
            .map(|v| v.id.clone())
            .ok_or_else(|| StackError::Start("no version serves at 100 %".into()))?;
        st.deployments.push(Deployment {
            id: uuid::Uuid::new_v4().to_string(),
            versions: vec![(serving, 100.0 - percent), (new.clone(), percent)],
        });
        Ok(new)
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

fn success(result: Value) -> Response<ServerBody> {
    crate::process::json_response(
        200,
        &json!({"success": true, "errors": [], "messages": [], "result": result}),
        &[],
    )
}

fn failure(code: u16, cf_code: u32, message: &str) -> Response<ServerBody> {
    crate::process::json_response(
        code,
        &json!({"success": false, "errors": [{"code": cf_code, "message": message}], "messages": [], "result": null}),
        &[],
    )
}

fn deployment_json(d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "source": "api",
        "strategy": "percentage",
        "versions": d.versions.iter().map(|(id, p)| json!({"version_id": id, "percentage": p})).collect::<Vec<_>>(),
    })
}

fn version_summary(v: &Version) -> Value {
    json!({"id": v.id, "number": v.number, "metadata": {"source": "api"}, "annotations": {"workers/message": v.message}})
}

fn version_details(v: &Version) -> Value {
    let bindings: Vec<Value> = v
        .bindings
        .iter()
        .map(|(name, text)| {
            if SECRET_BINDINGS.contains(&name.as_str()) {
                json!({"type": "secret_text", "name": name})
            } else {
                json!({"type": "plain_text", "name": name, "text": text})
            }
        })
        .collect();
    let mut d = version_summary(v);
    d["resources"] = json!({
        "bindings": bindings,
        "script": {"etag": v.code(), "handlers": ["fetch"]},
        "script_runtime": {"compatibility_date": "2025-09-01", "compatibility_flags": [], "usage_model": "standard"},
    });
    d
}

/// `content/v2`: the modules as `multipart/form-data`, the entry in `cf-entrypoint`.
fn content_response(v: &Version) -> Response<ServerBody> {
    let boundary = format!("stand-in-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for m in &v.modules {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{0}\"; filename=\"{0}\"\r\nContent-Type: {1}\r\n\r\n",
                m.name, m.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&m.content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Response::builder()
        .status(200)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("cf-entrypoint", v.entry.as_str())
        .body(http_body_util::Full::new(Bytes::from(body)).boxed())
        .unwrap_or_default()
}

/// A version upload's metadata and modules.
async fn read_upload(content_type: &str, body: Bytes) -> Result<(Value, Vec<Module>), String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let (mut metadata, mut modules) = (None, Vec::new());
    while let Some(part) = parts.next_field().await.map_err(|e| e.to_string())? {
        let name = part.name().unwrap_or_default().to_owned();
        let content_type = part.content_type().map_or_else(
            || "application/octet-stream".to_owned(),
            ToString::to_string,
        );
        let content = part.bytes().await.map_err(|e| e.to_string())?;
        if name == "metadata" {
            metadata = Some(serde_json::from_slice(&content).map_err(|e| e.to_string())?);
        } else {
            modules.push(Module {
                name,
                content_type,
                content,
            });
        }
    }
    Ok((metadata.ok_or("no metadata part")?, modules))
}

/// The bindings of an upload: `inherit` resolved from its `version_id` (or the latest
/// version), values given as `secret_text` / `plain_text`.
fn resolve_bindings(
    st: &Versions,
    metadata: &Value,
    strict: bool,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for b in metadata["bindings"].as_array().cloned().unwrap_or_default() {
        let name = b["name"]
            .as_str()
            .ok_or("a binding without a name")?
            .to_owned();
        match b["type"].as_str() {
            Some("inherit") => {
                let from = match b["version_id"].as_str() {
                    Some("latest") | None => st.versions.last(),
                    Some(id) => st.get(id),
                };
                match from.and_then(|v| v.binding(&name)) {
                    Some(value) => out.push((name, value.to_owned())),
                    None if strict => return Err(format!("binding {name}: nothing to inherit")),
                    None => {}
                }
            }
            Some("secret_text" | "plain_text") => {
                let text = b["text"].as_str().ok_or("a text binding without text")?;
                out.push((name, text.to_owned()));
            }
            other => {
                return Err(format!(
                    "binding type {other:?} is not modelled by the stand-in"
                ))
            }
        }
    }
    Ok(out)
}

async fn handle(req: Request<Incoming>, i: Arc<Inner>) -> Response<ServerBody> {
    let prefix = format!("/client/v4/accounts/{ACCOUNT}/workers/scripts/{SCRIPT}/");
    let Some(route) = req.uri().path().strip_prefix(&prefix).map(str::to_owned) else {
        return failure(404, 10007, "no such route");
    };
    let query = req.uri().query().unwrap_or_default().to_owned();
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", i.token));
    if !authorized {
        return failure(403, 10000, "Authentication error");
    }
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Ok(body) = Limited::new(req.into_body(), MAX_UPLOAD).collect().await else {
        return failure(413, 10000, "body too large");
    };
    let body = body.to_bytes();
    let write = method != hyper::Method::GET;
    if write && i.fail.load(Ordering::SeqCst) > 0 {
        i.fail.fetch_sub(1, Ordering::SeqCst);
        return failure(500, 10013, "internal error");
    }
    let mut st = i.state.lock().await;
    match (method.as_str(), route.as_str()) {
        ("GET", "deployments") => success(
            json!({"deployments": st.deployments.iter().rev().map(deployment_json).collect::<Vec<_>>()}),
        ),
        ("POST", "deployments") => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let versions: Vec<(String, f64)> = v["versions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|x| {
                    Some((
                        x["version_id"].as_str()?.to_owned(),
                        x["percentage"].as_f64()?,
                    ))
                })
                .collect();
            if v["strategy"] != "percentage" {
                return failure(400, 10021, "strategy must be percentage");
            }
            match i.deploy(&mut st, versions).await {
                Ok(d) => success(deployment_json(&d)),
                Err((code, m)) => failure(code, 10021, &m),
            }
        }
        ("GET", "versions") => success(
            json!({"items": st.versions.iter().rev().map(version_summary).collect::<Vec<_>>()}),
        ),
        ("POST", "versions") => {
            let (metadata, modules) = match read_upload(&content_type, body).await {
                Ok(x) => x,
                Err(e) => return failure(400, 10021, &format!("malformed upload: {e}")),
            };
            let Some(entry) = metadata["main_module"].as_str().map(str::to_owned) else {
                return failure(400, 10021, "metadata.main_module is required");
            };
            if !modules.iter().any(|m| m.name == entry) {
                return failure(400, 10021, "main_module is not among the uploaded modules");
            }
            let strict = query.split('&').any(|q| q == "bindings_inherit=strict");
            let bindings = match resolve_bindings(&st, &metadata, strict) {
                Ok(b) => b,
                Err(e) => return failure(400, 10021, &e),
            };
            let message = metadata["annotations"]["workers/message"]
                .as_str()
                .unwrap_or_default();
            let v = st.add(entry, modules, bindings, message);
            success(version_details(&v))
        }
        ("GET", "content/v2") => {
            let id = query.split('&').find_map(|q| q.strip_prefix("version="));
            match id.and_then(|id| st.get(id)) {
                Some(v) => content_response(v),
                None => failure(404, 10007, "no such version"),
            }
        }
        ("GET", r) if r.starts_with("versions/") => match st.get(&r["versions/".len()..]) {
            Some(v) => success(version_details(v)),
            None => failure(404, 10007, "no such version"),
        },
        ("PUT", "secrets") => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let (Some(name), Some(text), Some("secret_text")) =
                (v["name"].as_str(), v["text"].as_str(), v["type"].as_str())
            else {
                return failure(
                    400,
                    10021,
                    "expected {\"name\",\"text\",\"type\":\"secret_text\"}",
                );
            };
            // The legacy endpoint edits the latest version, so Cloudflare refuses it when
            // that is not the version serving at 100 %.
            let latest = st.versions.last().cloned();
            let (Some(latest), true) = (
                latest,
                st.serving().map(|s| s.id.clone()) == st.versions.last().map(|l| l.id.clone()),
            ) else {
                return failure(400, 10215, "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't currently deployed.");
            };
            let bindings = crate::lambda::with_overrides(latest.bindings.clone(), &[(name, text)]);
            let new = st.add(
                latest.entry.clone(),
                latest.modules.clone(),
                bindings,
                "secret edit",
            );
            match i.deploy(&mut st, vec![(new.id, 100.0)]).await {
                Ok(_) => success(json!({"name": name, "type": "secret_text"})),
                Err((code, m)) => failure(code, 10021, &m),
            }
        }
        _ => failure(404, 10007, "no such route"),
    }
}
