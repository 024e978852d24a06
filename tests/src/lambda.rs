//! A Lambda function under cargo-lambda's runtime emulator (`cargo lambda watch`), and
//! invoking it over the emulator's Lambda invoke API.

use std::time::Duration;

use tokio::process::Command;

use crate::process::{free_port, Service, TempDir};
use crate::{paths, StackError};

/// `base` with each of `extra` added, or replacing the variable of the same name.
pub fn with_overrides<K: AsRef<str>, V: AsRef<str>>(
    mut base: Vec<(String, String)>,
    extra: &[(K, V)],
) -> Vec<(String, String)> {
    for (k, v) in extra {
        base.retain(|(x, _)| x != k.as_ref());
        base.push((k.as_ref().to_owned(), v.as_ref().to_owned()));
    }
    base
}

/// What every function needs to reach moto at `moto_endpoint`: the endpoint override,
/// the region and the credentials moto accepts (the secret key is one a log scan can
/// look for), then `vars`.
pub fn local_aws_env(moto_endpoint: &str, vars: &[(&str, &str)]) -> Vec<(String, String)> {
    let base = vec![
        ("AWS_ENDPOINT_URL".to_owned(), moto_endpoint.to_owned()),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            crate::workerd::LOCAL_AWS_SECRET.to_owned(),
        ),
    ];
    with_overrides(base, vars)
}

/// The local stack's `DOWNLOAD_RETRY_BUDGET_MS` ([`archiver_env`]).
pub const LOCAL_RETRY_BUDGET_MS: &str = "7000";

/// The archiver's environment for the local stack: moto at `moto_endpoint`, the bucket,
/// the stand-in CDN on 127.0.0.1 allowed over http, with `extra` added or replacing.
///
/// A record retries its downloads for at most [`LOCAL_RETRY_BUDGET_MS`] per invocation
/// (`DOWNLOAD_RETRY_BUDGET_MS`; the template's is 60 s): about the 1 + 2 + 4 s the
/// archiver retried before issue 22, so the tests of a failing CDN stay short. Then the
/// record goes back to the queue and comes back in seconds (its visibility, set by the
/// archiver on the poller's queue).
pub fn archiver_env(
    moto_endpoint: &str,
    bucket: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let env = local_aws_env(
        moto_endpoint,
        &[
            ("ARCHIVE_BUCKET", bucket),
            ("DOWNLOAD_ALLOWED_HOSTS", "127.0.0.1"),
            ("DOWNLOAD_ALLOW_INSECURE_LOOPBACK", "true"),
            ("DOWNLOAD_RETRY_BUDGET_MS", LOCAL_RETRY_BUDGET_MS),
        ],
    );
    with_overrides(env, extra)
}

/// The reconciler's environment for the local stack (issue 23): moto at `moto_endpoint`,
/// the archive `bucket`, the events queue `queue_url` (where reconciled events go), the
/// check queue `check_queue_url` (what it reads and re-checks on), the provider's API at
/// `provider_url` with the api's key secret, with `extra` added or replacing (e.g. short
/// `CHECK_MAX_INTERVAL_SECS` and `CHECK_MAX_AGE_SECS`).
pub fn reconciler_env(
    moto_endpoint: &str,
    bucket: &str,
    queue_url: &str,
    check_queue_url: &str,
    provider_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let env = local_aws_env(
        moto_endpoint,
        &[
            ("ARCHIVE_BUCKET", bucket),
            ("QUEUE_URL", queue_url),
            ("CHECK_QUEUE_URL", check_queue_url),
            ("API_KEY_SECRET_ID", crate::rotation::API_KEY_SECRET_ID),
            ("PROVIDER_API_URL", provider_url),
            ("RUST_LOG", "info"),
        ],
    );
    with_overrides(env, extra)
}

/// The CloudWatch EMF lines in a function's `logs` ([`LambdaFunction::logs`]) that hold
/// `metric`, each parsed (a line may carry the emulator's prefix before its JSON).
pub fn emf_lines(logs: &str, metric: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter_map(|l| l.find("{\"").map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some() && v.get(metric).is_some())
        .collect()
}

/// How `cargo lambda watch` builds a function ([`LambdaFunction::start_built`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// cargo's dev profile (what the tests use).
    Debug,
    /// The release profile, as deployed (`--release`).
    Release,
}

/// A function running under `cargo lambda watch`.
#[derive(Debug)]
pub struct LambdaFunction {
    /// `http://127.0.0.1:PORT/2015-03-31/functions/{name}/invocations`.
    pub invoke_url: String,
    /// `http://127.0.0.1:PORT/lambda-url/{name}`: the function as a Function URL (for
    /// `lambda_http` functions).
    pub function_url: String,
    service: Service,
    _dir: TempDir,
}

impl LambdaFunction {
    /// Starts the binary `bin` of the crate in `crate_dir` (relative to the repository)
    /// with `env`, and waits until the emulator answers.
    pub async fn start(
        crate_dir: &str,
        bin: &str,
        env: &[(String, String)],
    ) -> Result<Self, StackError> {
        Self::start_concurrent(crate_dir, bin, env, 1).await
    }

    /// [`LambdaFunction::start`] with up to `concurrency` instances of the function, as
    /// Lambda runs concurrent invocations (`cargo lambda watch --concurrency`).
    pub async fn start_concurrent(
        crate_dir: &str,
        bin: &str,
        env: &[(String, String)],
        concurrency: u32,
    ) -> Result<Self, StackError> {
        Self::start_built(crate_dir, bin, env, concurrency, Build::Debug).await
    }

    /// [`LambdaFunction::start_concurrent`] with the function built as `build` says: the
    /// tests use cargo's debug build (fast to compile); a benchmark of what Lambda runs
    /// uses [`Build::Release`] (`cargo lambda watch --release`, the workspace's release
    /// profile that `sam build` also uses; the first start compiles it, minutes on a cold
    /// tree).
    pub async fn start_built(
        crate_dir: &str,
        bin: &str,
        env: &[(String, String)],
        concurrency: u32,
        build: Build,
    ) -> Result<Self, StackError> {
        let cargo_lambda = paths::cargo_lambda()?;
        let dir = TempDir::new("lambda")?;
        // An env file, not --env-var: values may contain commas (host lists).
        let env_file = dir.0.join("function.env");
        let lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        std::fs::write(&env_file, lines.join("\n") + "\n")?;
        let port = free_port()?;
        let mut cmd = Command::new(cargo_lambda);
        cmd.current_dir(paths::root().join(crate_dir))
            .args([
                "lambda",
                "watch",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .arg("--concurrency")
            .arg(concurrency.max(1).to_string())
            .arg("--env-file")
            .arg(&env_file)
            .args(["--ignore-changes", "--bin", bin])
            .args(match build {
                Build::Debug => &[][..],
                Build::Release => &["--release"][..],
            })
            .env("DO_NOT_TRACK", "1")
            .env("PATH", paths::tool_path());
        let mut service = Service::spawn(cmd, dir.0.join("cargo-lambda.log"))?;
        let base = format!("http://127.0.0.1:{port}");
        // Ready once it listens: the emulator answers invokes only after the function is
        // built, which on a cold machine takes minutes (the first invoke waits for it).
        service.wait_port(port, Duration::from_secs(60)).await?;
        Ok(LambdaFunction {
            invoke_url: format!("{base}/2015-03-31/functions/{bin}/invocations"),
            function_url: format!("{base}/lambda-url/{bin}"),
            service,
            _dir: dir,
        })
    }

    /// Invokes the function with `payload`; returns its JSON answer, and fails with the
    /// emulator's log when the function failed. The first call waits for the emulator to
    /// build and start the function.
    pub async fn invoke(
        &self,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, StackError> {
        self.invoke_result(payload)
            .await
            .map_err(|e| StackError::Start(format!("invoke failed: {e}\n{}", self.logs())))
    }

    /// Invokes the function with `payload`: `Ok(answer)`, or `Err(errorMessage)` when the
    /// function returned an error (other failures are reported as `Err` too).
    pub async fn invoke_result(
        &self,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let resp = reqwest::Client::new()
            .post(&self.invoke_url)
            .header("content-type", "application/json")
            .body(payload.to_string())
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| format!("invoke: {e}"))?;
        let text = resp.text().await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("invoke answer is not JSON ({e}): {text}"))?;
        match v.get("errorType") {
            Some(_) => Err(v
                .get("errorMessage")
                .and_then(|m| m.as_str())
                .unwrap_or(&text)
                .to_owned()),
            None => Ok(v),
        }
    }

    /// What the emulator and the function printed.
    pub fn logs(&self) -> String {
        self.service.output()
    }
}

/// cargo-lambda's emulator serving only the Lambda APIs, for a binary started by hand
/// (the benchmarks run release binaries against it): the runtime API at
/// [`RuntimeApi::runtime_api`], invokes at [`RuntimeApi::invoke_url`] (function name `_`).
#[derive(Debug)]
pub struct RuntimeApi {
    /// The emulator's port.
    pub port: u16,
    _service: Service,
    /// A scratch folder for logs.
    pub dir: TempDir,
}

impl RuntimeApi {
    /// Starts the emulator and waits until it listens.
    pub async fn start() -> Result<Self, StackError> {
        let dir = TempDir::new("runtime-api")?;
        let port = free_port()?;
        let mut cmd = Command::new(paths::cargo_lambda()?);
        cmd.current_dir(paths::root())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .env("DO_NOT_TRACK", "1")
            .env("PATH", paths::tool_path());
        let mut service = Service::spawn(cmd, dir.0.join("emulator.log"))?;
        service.wait_port(port, Duration::from_secs(60)).await?;
        Ok(RuntimeApi {
            port,
            _service: service,
            dir,
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for a function.
    pub fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt", self.port)
    }

    /// Where to invoke the function.
    pub fn invoke_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        )
    }

    /// A command for `binary` with the Lambda variables a runtime sets, and `env`.
    pub fn function(&self, binary: &std::path::Path, env: &[(String, String)]) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_RUNTIME_API", self.runtime_api())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        cmd
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn emf_lines_are_found_behind_a_prefix_and_by_metric() {
        let logs = concat!(
            "INFO starting\n",
            r#"[reconciler] {"_aws":{"Timestamp":1},"MissedWebhooks":1.0,"prediction_id":"p1"}"#,
            "\n",
            r#"{"_aws":{"Timestamp":2},"StalledPredictions":1.0}"#,
            "\n",
            r#"{"MissedWebhooks":1.0}"#,
            "\n{\"_aws\": broken\n",
        );
        let missed = super::emf_lines(logs, "MissedWebhooks");
        assert_eq!(missed.len(), 1, "only EMF lines: {missed:?}");
        assert_eq!(missed[0]["prediction_id"], "p1");
        assert_eq!(super::emf_lines(logs, "StalledPredictions").len(), 1);
        assert!(super::emf_lines(logs, "Other").is_empty());
    }
}
