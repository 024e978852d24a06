//! The rotation stack: moto (with `RotateSecret` driving a real rotation Lambda), the
//! stand-in provider, the edge deployed behind the stand-in Cloudflare API, and the
//! rotator under `cargo lambda watch`, with the three secrets it needs in place.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use crate::cloudflare::DeployedEdge;
use crate::lambda::LambdaFunction;
use crate::moto::Moto;
use crate::provider::keys::{INITIAL_API_KEY, INITIAL_WEBHOOK_SECRET};
use crate::provider::Provider;
use crate::stack::LocalStack;
use crate::StackError;

/// The rotator's ARN as Secrets Manager knows it (moto routes it to the local function).
pub const ROTATOR_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:hookvault-rotator";
/// The webhook signing secret.
pub const WEBHOOK_SECRET_ID: &str = "hookvault/webhook-secret";
/// The provider API key.
pub const API_KEY_SECRET_ID: &str = "hookvault/provider-api-key";
/// The Cloudflare API token.
pub const CLOUDFLARE_TOKEN_ID: &str = "hookvault/cloudflare-token";
/// Its value (the stand-in accepts only this).
pub const CLOUDFLARE_TOKEN: &str = "cf-test-token-0000";
/// The initial webhook secret's key id.
pub const INITIAL_KEY_ID: &str = "initial";

/// What the provider signs webhooks with (the rotator's `SKYTELLS_KEY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// The API key: the edge's ring starts as `[key_0]` and follows the API key secret,
    /// which alone is rotated and looked after by the schedule; the stand-in signs with
    /// the key a prediction was created under ([`crate::provider::keys::Signing`]).
    General,
    /// A webhook secret: the ring starts as `[initial]`, both secrets are rotated.
    Enterprise,
}

impl KeyMode {
    fn as_str(self) -> &'static str {
        match self {
            KeyMode::General => "general",
            KeyMode::Enterprise => "enterprise",
        }
    }
}

/// Settings of a rotation stack.
#[derive(Debug, Clone)]
pub struct Options {
    /// `WEBHOOK_GRACE_SECS`.
    pub webhook_grace_secs: u32,
    /// `API_KEY_GRACE_SECS`.
    pub api_key_grace_secs: u32,
    /// `EDGE_PROPAGATION_SECS`.
    pub propagation_secs: u32,
    /// `EDGE_CONVERGENCE_PROBES`.
    pub convergence_probes: u32,
    /// `EDGE_SOAK_SECS`.
    pub soak_secs: u32,
    /// `API_KEY_ACTIVATION_SECS`.
    pub api_key_activation_secs: u32,
    /// `SKYTELLS_KEY_MODE`.
    pub key_mode: KeyMode,
    /// More rotator environment.
    pub extra_env: Vec<(String, String)>,
    /// The rotator reaches moto through a proxy that can fail chosen Secrets Manager
    /// calls ([`RotationStack::faults`]).
    pub fault_proxy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            webhook_grace_secs: 3600,
            api_key_grace_secs: 3600,
            propagation_secs: 10,
            // Short, so that a rotation test takes seconds; the defaults are 5 and 30 s.
            convergence_probes: 3,
            soak_secs: 1,
            api_key_activation_secs: 10,
            // The tests written before key modes rotate the webhook secret; the rotator's
            // own default for skytells is general.
            key_mode: KeyMode::Enterprise,
            extra_env: Vec::new(),
            fault_proxy: false,
        }
    }
}

/// A running rotation stack.
pub struct RotationStack {
    /// moto.
    pub moto: Moto,
    /// The stand-in provider.
    pub provider: Provider,
    /// The edge, deployed.
    pub edge: DeployedEdge,
    /// The rotator.
    pub rotator: LambdaFunction,
    /// Secrets Manager on moto.
    pub sm: Client,
    /// The queue the edge sends to.
    pub queue_url: String,
    /// With [`Options::fault_proxy`]: what stands between the rotator and moto.
    pub faults: Option<SecretsFaults>,
}

/// A proxy in front of moto's Secrets Manager that answers chosen calls with an error
/// instead of passing them on, as a failing AWS call would (the rotator's only view of
/// Secrets Manager goes through it).
pub struct SecretsFaults {
    /// The proxy's URL (the rotator's `AWS_ENDPOINT_URL`).
    pub url: String,
    /// Action (`UpdateSecretVersionStage`, …) → how many of its next calls fail.
    armed: std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SecretsFaults {
    /// Starts the proxy in front of `moto_endpoint`.
    pub async fn start(moto_endpoint: &str) -> Result<Self, StackError> {
        use http_body_util::BodyExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| StackError::Start(format!("fault proxy: {e}")))?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| StackError::Start(format!("fault proxy: {e}")))?
        );
        let armed = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<String, u32>::new()));
        let state = (
            armed.clone(),
            moto_endpoint.to_owned(),
            reqwest::Client::new(),
        );
        let task = crate::process::serve_http(
            listener,
            state,
            |req, (armed, moto, http)| async move {
                let action = req
                    .headers()
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|t| t.rsplit('.').next())
                    .unwrap_or_default()
                    .to_owned();
                let fail = {
                    let mut armed = armed.lock().unwrap_or_else(|p| p.into_inner());
                    match armed.get_mut(&action) {
                        Some(n) if *n > 0 => {
                            *n -= 1;
                            true
                        }
                        _ => false,
                    }
                };
                if fail {
                    // A 4xx the SDK does not retry.
                    return crate::process::json_response(
                        400,
                        &serde_json::json!({"__type": "InvalidRequestException", "message": format!("{action} failed (injected by the test)")}),
                        &[],
                    );
                }
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let mut fwd = http.request(parts.method, format!("{moto}{path}"));
                for (k, v) in &parts.headers {
                    if !matches!(k.as_str(), "host" | "content-length" | "connection") {
                        fwd = fwd.header(k, v);
                    }
                }
                match fwd.body(body).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let ct = r
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("application/x-amz-json-1.1")
                            .to_owned();
                        let bytes = r.bytes().await.unwrap_or_default();
                        hyper::Response::builder()
                            .status(status)
                            .header("content-type", ct)
                            .body(http_body_util::Full::new(bytes).boxed())
                            .unwrap_or_default()
                    }
                    Err(e) => crate::process::json_response(
                        502,
                        &serde_json::json!({"message": e.to_string()}),
                        &[],
                    ),
                }
            },
        );
        Ok(SecretsFaults { url, armed, task })
    }

    /// The next `times` calls of `action` (`UpdateSecretVersionStage`, …) fail with a
    /// 400 the SDK does not retry.
    pub fn fail_next(&self, action: &str, times: u32) {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(action.to_owned(), times);
    }
}

impl std::fmt::Debug for SecretsFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsFaults")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for SecretsFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn start_err(what: &str) -> impl Fn(String) -> StackError + '_ {
    move |e| StackError::Start(format!("{what}: {e}"))
}

impl RotationStack {
    /// Starts everything; rotation is enabled on both managed secrets, with `RotateSecret`
    /// running the steps by itself (see [`RotationStack::drive_steps_by_hand`]).
    pub async fn start(opts: Options) -> Result<Self, StackError> {
        let initial_webhook = serde_json::json!({"kind": "webhook-signing", "scheme": "skytells", "key_id": INITIAL_KEY_ID, "secret": INITIAL_WEBHOOK_SECRET});
        let ring = match opts.key_mode {
            KeyMode::Enterprise => {
                serde_json::json!([{"id": INITIAL_KEY_ID, "secret": INITIAL_WEBHOOK_SECRET}])
            }
            KeyMode::General => serde_json::json!([{"id": "key_0", "secret": INITIAL_API_KEY}]),
        };
        let (grace, key_grace, propagation) = (
            opts.webhook_grace_secs.to_string(),
            opts.api_key_grace_secs.to_string(),
            opts.propagation_secs.to_string(),
        );
        let (probes, soak, activation) = (
            opts.convergence_probes.to_string(),
            opts.soak_secs.to_string(),
            opts.api_key_activation_secs.to_string(),
        );
        let rotated: &[&str] = match opts.key_mode {
            KeyMode::Enterprise => &[WEBHOOK_SECRET_ID, API_KEY_SECRET_ID],
            KeyMode::General => &[API_KEY_SECRET_ID],
        };
        let managed = rotated.join(",");
        let mut vars = vec![
            ("CLOUDFLARE_TOKEN_SECRET_ID", CLOUDFLARE_TOKEN_ID),
            ("PROVIDER_API_KEY_SECRET_ID", API_KEY_SECRET_ID),
            ("WEBHOOK_GRACE_SECS", grace.as_str()),
            ("API_KEY_GRACE_SECS", key_grace.as_str()),
            ("EDGE_PROPAGATION_SECS", propagation.as_str()),
            ("EDGE_CONVERGENCE_PROBES", probes.as_str()),
            ("EDGE_SOAK_SECS", soak.as_str()),
            ("API_KEY_ACTIVATION_SECS", activation.as_str()),
            ("MANAGED_SECRET_IDS", managed.as_str()),
            ("SKYTELLS_KEY_MODE", opts.key_mode.as_str()),
            ("RUST_LOG", "info"),
        ];
        vars.extend(opts.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // The edge keeps its own SQS and Retry-After settings, and has no bucket.
        let mut builder = LocalStack::builder()
            .queue("hookvault-events")
            .provider()
            .secret(WEBHOOK_SECRET_ID, initial_webhook.to_string())
            .secret(API_KEY_SECRET_ID, crate::api::initial_api_key_value())
            .secret(CLOUDFLARE_TOKEN_ID, CLOUDFLARE_TOKEN)
            .edge_var("WEBHOOK_SECRETS", ring.to_string())
            .edge_own_defaults()
            .cloudflare(CLOUDFLARE_TOKEN)
            .rotator(&vars);
        if opts.fault_proxy {
            builder = builder.rotator_faults();
        }
        for &id in rotated {
            builder = builder.rotation(id);
        }
        if opts.key_mode == KeyMode::General {
            builder = builder.provider_signing(crate::provider::keys::Signing::PredictionKey);
        }
        let LocalStack {
            moto,
            secrets: sm,
            queues,
            provider,
            cloudflare,
            rotator,
            secrets_faults: faults,
            ..
        } = builder.start().await?;
        let missing = |what: &str| StackError::Start(format!("the rotation stack has no {what}"));
        Ok(RotationStack {
            moto,
            provider: provider.ok_or_else(|| missing("provider"))?,
            edge: cloudflare.ok_or_else(|| missing("deployed edge"))?,
            rotator: rotator.ok_or_else(|| missing("rotator"))?,
            sm,
            queue_url: queues
                .into_iter()
                .next()
                .map(|q| q.url)
                .ok_or_else(|| missing("queue"))?,
            faults,
        })
    }

    /// From now on `RotateSecret` only stages the new version; the caller invokes the
    /// steps ([`RotationStack::step`]), and can stop between them as a crash would.
    pub fn drive_steps_by_hand(&self) -> Result<(), StackError> {
        self.moto.route_rotation(ROTATOR_ARN, None)
    }

    /// `RotateSecret`: the new version's id.
    pub async fn rotate(&self, id: &str) -> Result<String, StackError> {
        let out = self
            .sm
            .rotate_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| StackError::Start(format!("RotateSecret {id}: {e}")))?;
        out.version_id
            .ok_or_else(|| StackError::Start("RotateSecret returned no version".into()))
    }

    /// Invokes the rotator with `event`: `Ok(answer)`, or `Err(errorMessage)` when the
    /// function failed.
    pub async fn invoke(&self, event: serde_json::Value) -> Result<serde_json::Value, String> {
        self.rotator.invoke_result(&event).await
    }

    /// Invokes rotation step `step` (`createSecret`, …) for version `token` of `id`.
    pub async fn step(
        &self,
        id: &str,
        token: &str,
        step: &str,
    ) -> Result<serde_json::Value, String> {
        self.invoke(serde_json::json!({"SecretId": id, "ClientRequestToken": token, "Step": step}))
            .await
    }

    /// The EventBridge schedule's event.
    pub async fn scheduled(&self) -> Result<serde_json::Value, String> {
        self.invoke(serde_json::json!({"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
            .await
    }

    /// The value at `stage` (of `version` if given), parsed as JSON.
    pub async fn value(
        &self,
        id: &str,
        version: Option<&str>,
        stage: &str,
    ) -> Option<serde_json::Value> {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(id)
            .set_version_id(version.map(str::to_owned))
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        serde_json::from_str(out.secret_string()?).ok()
    }

    /// Version id → stages.
    pub async fn stages(&self, id: &str) -> Result<HashMap<String, Vec<String>>, StackError> {
        let d = self
            .sm
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| start_err("DescribeSecret")(e.to_string()))?;
        Ok(d.version_ids_to_stages().cloned().unwrap_or_default())
    }

    /// Waits until `version` of `id` is `AWSCURRENT`.
    pub async fn wait_current(
        &self,
        id: &str,
        version: &str,
        within: std::time::Duration,
    ) -> Result<(), StackError> {
        let start = std::time::Instant::now();
        loop {
            let stages = self.stages(id).await?;
            if stages
                .get(version)
                .is_some_and(|s| s.iter().any(|x| x == "AWSCURRENT"))
            {
                return Ok(());
            }
            if start.elapsed() > within {
                return Err(StackError::Start(format!(
                    "version {version} of {id} not AWSCURRENT after {within:?}: {stages:?}\n--- rotator ---\n{}\n--- moto ---\n{}",
                    self.rotator.logs(),
                    self.moto.logs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// A continuous sender as the provider sends in `general` key mode, until `stop`:
    /// every ~100 ms a prediction is submitted to the stand-in with the API key the api
    /// would use (`AWSCURRENT`, read fresh), and `runtime` later its webhook is delivered
    /// to the edge on a fresh connection, signed as the stand-in signs at that moment
    /// ([`crate::provider::keys::Signing`]). Returns every delivery, once all have been
    /// answered.
    pub fn start_prediction_sender(
        self: &std::sync::Arc<Self>,
        stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
        runtime: std::time::Duration,
    ) -> tokio::task::JoinHandle<Vec<Delivery>> {
        let (stack, stop) = (std::sync::Arc::clone(self), std::sync::Arc::clone(stop));
        tokio::spawn(async move {
            let url = format!("{}/webhooks/skytells", stack.edge.url);
            let http = reqwest::Client::new();
            let mut pending = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let key = stack
                    .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
                    .await
                    .and_then(|v| v["api_key"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let created = http
                    .post(format!("{}/v1/predictions", stack.provider.url))
                    .header("x-api-key", &key)
                    .header("content-type", "application/json")
                    .body(
                        // The current dialect; the sender delivers the webhook itself.
                        serde_json::json!({"model": "m", "input": {}}).to_string(),
                    )
                    .send()
                    .await;
                let id = match created {
                    Ok(r) if r.status().as_u16() == 201 => r
                        .text()
                        .await
                        .ok()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .and_then(|v| v["id"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| format!("pred_gen_{n}")),
                    other => {
                        pending.push(tokio::spawn(async move {
                            Delivery {
                                prediction: format!("submission {n}"),
                                signed_with: format!("not created: {other:?}"),
                                status: None,
                            }
                        }));
                        continue;
                    }
                };
                let (stack, url) = (std::sync::Arc::clone(&stack), url.clone());
                pending.push(tokio::spawn(async move {
                    tokio::time::sleep(runtime).await;
                    let body = crate::provider::keys::webhook_body(&id);
                    let (signed_with, status) =
                        stack.provider.deliver_prediction(&url, &body, &key).await;
                    Delivery {
                        prediction: id,
                        signed_with,
                        status,
                    }
                }));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let mut seen = Vec::new();
            for p in pending {
                if let Ok(d) = p.await {
                    seen.push(d);
                }
            }
            seen
        })
    }

    /// Every line the rotator, the edge's versions and moto printed.
    pub async fn logs(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.rotator.logs(),
            self.edge.logs().await,
            self.moto.logs()
        )
    }

    /// Every secret value the stack has seen: webhook secrets, API keys, the token.
    pub fn secret_values(&self) -> Vec<String> {
        let mut all = self.provider.with(|s| {
            let mut v = s.keys.webhook_secrets.clone();
            v.extend(s.keys.keys.iter().map(|k| k.key.clone()));
            v
        });
        all.push(CLOUDFLARE_TOKEN.into());
        all
    }
}

/// One webhook of [`RotationStack::start_prediction_sender`].
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The prediction's id.
    pub prediction: String,
    /// The key id it was signed with.
    pub signed_with: String,
    /// The edge's answer (`None`: no answer).
    pub status: Option<u16>,
}
