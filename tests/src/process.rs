//! Child processes that die with their handle, and readiness checks.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::StackError;

/// The machine's load averages over 1, 5 and 15 minutes (`/proc/loadavg`'s first three
/// fields, space-separated), for the benchmarks' and the soak's reports; `?` where
/// `/proc` cannot be read.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, StackError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running service: killed when dropped. Its output goes to `log`.
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    /// The file the process's stdout and stderr go to.
    pub log: PathBuf,
}

impl Service {
    /// Spawns `cmd` with its output in `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Result<Self, StackError> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            // Its own process group: `cargo lambda watch` starts the function as a child,
            // and dropping the service kills the whole group (see `Drop`), so nothing is
            // left behind; Ctrl-C in a terminal reaches only hookvault-dev, which stops
            // the services in order.
            .process_group(0)
            .spawn()
            .map_err(|e| StackError::Start(format!("cannot start {cmd:?}: {e}")))?;
        Ok(Service {
            child: Some(child),
            log,
        })
    }

    /// CPU time the process has used so far, all its threads, in seconds (Linux:
    /// `/proc/PID/task/*/schedstat`); `None` where that cannot be read.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id()?;
        let mut ns: u64 = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(ns as f64 / 1e9)
    }

    /// The process's peak resident memory so far, KiB (Linux: `VmHWM` in
    /// `/proc/PID/status`); `None` where that cannot be read.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the process and everything it started (its process group), and waits for it.
    pub async fn stop(&mut self) {
        self.kill_group();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }

    /// SIGKILL to the service's process group (its id: it leads its own group).
    fn kill_group(&self) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Waits until `url` answers any HTTP status, or fails after `timeout` with the log.
    pub async fn wait_http(&mut self, url: &str, timeout: Duration) -> Result<(), StackError> {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if client
                .get(url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(StackError::Start(format!(
                        "exited with {status} before {url} answered:\n{}",
                        self.output()
                    )));
                }
            }
            if start.elapsed() > timeout {
                return Err(StackError::Start(format!(
                    "{url} did not answer within {timeout:?}:\n{}",
                    self.output()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Service {
    /// Waits until something listens on 127.0.0.1:`port`, or fails after `timeout`.
    pub async fn wait_port(&mut self, port: u16, timeout: Duration) -> Result<(), StackError> {
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if start.elapsed() > timeout {
                return Err(StackError::Start(format!(
                    "nothing listens on port {port} after {timeout:?}:\n{}",
                    self.output()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// A fresh temporary directory under the system's temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates one, named after `prefix`.
    pub fn new(prefix: &str) -> Result<Self, StackError> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hookvault-{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill_group();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stand-in server's response body.
pub type ServerBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>;

/// A stand-in server's JSON answer with `headers` added.
pub fn json_response(
    code: u16,
    value: &serde_json::Value,
    headers: &[(&str, &str)],
) -> hyper::Response<ServerBody> {
    use http_body_util::BodyExt as _;
    let mut b = hyper::Response::builder()
        .status(code)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(http_body_util::Full::new(bytes::Bytes::from(value.to_string())).boxed())
        .unwrap_or_default()
}

/// Serves HTTP/1 on `listener`, each request answered by `handler` with its own clone of
/// `state`, until the returned task is aborted (the stand-in servers).
pub fn serve_http<S, F, Fut>(
    listener: tokio::net::TcpListener,
    state: S,
    handler: F,
) -> tokio::task::JoinHandle<()>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(hyper::Request<hyper::body::Incoming>, S) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<ServerBody>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (state, handler) = (state.clone(), handler.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let answer = handler(req, state.clone());
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
