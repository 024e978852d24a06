//! Cloudflare's Workers Versions and Deployments API: the key ring is written as a new
//! version of the Worker **built from the version that is serving** (its modules, its
//! other bindings, its compatibility date and flags and usage model), then deployed at
//! 100 %. The code that serves afterwards is the code that served before, even when a
//! newer version has been uploaded and not deployed.
//!
//! Why not the secrets endpoint (`PUT …/scripts/{script}/secrets`): it changes the
//! *latest uploaded* version and deploys it. With Workers versions that is either refused
//! (error 10215, "the latest version of your Worker isn't currently deployed") or, where it
//! goes through, ships code nobody deployed along with the secret. (`wrangler versions
//! secret put` also starts from the latest version, not the deployed one.)
//!
//! | step | call | what is used |
//! |---|---|---|
//! | 1 | `GET …/deployments` | the first deployment is the one serving ("The first deployment in the list is the latest deployment actively serving traffic"); it must be one version at 100 %, otherwise a gradual deployment is in progress and the rotator refuses ([`RotationError::GradualDeployment`]) |
//! | 2 | `GET …/versions/{id}` | `resources.bindings[].name`, `resources.script_runtime.{compatibility_date, compatibility_flags}` |
//! | 3 | `GET …/content/v2?version={id}` | the modules (`multipart/form-data`, one part per module, its MIME type kept) and the entry module (`cf-entrypoint` header) |
//! | 4 | `POST …/versions?bindings_inherit=strict` | `multipart/form-data`: `metadata` (`main_module`, the compatibility settings, every binding but the ring as `{"type":"inherit","name":…,"version_id":<serving>}`, the ring as `secret_text`, an annotation) and the modules as downloaded; `strict` makes an unresolvable inherit an error instead of a silently dropped binding |
//! | 5 | `POST …/deployments` | `{"strategy":"percentage","versions":[{"version_id":<new>,"percentage":100}]}` |
//!
//! All under `{CLOUDFLARE_API_URL}/accounts/{account}/workers/scripts/{script}`, with the
//! token as `Authorization: Bearer`; answers are Cloudflare's envelope
//! (`{"success","errors","result"}`). Sources: Cloudflare's API schema as published in
//! `cloudflare/cloudflare-typescript` (`resources/workers/scripts/{deployments,versions,
//! content}.ts`) and wrangler's version-upload code (`cloudflare/workers-sdk`,
//! `versions/secrets`, `create-worker-upload-form.ts`).
//!
//! Script-level settings (observability, logpush, tail consumers, the workers.dev route)
//! are not part of a version and are left as they are. A deployment made by someone else
//! between steps 1 and 5 would be replaced by step 5: the API has no conditional deploy,
//! so the window is kept to these few calls.

use std::sync::Arc;
use std::time::Duration;

use hookvault_aws::http::{self, Answer};
use hookvault_aws::secrets::SecretCache;
use hookvault_core::keyring::KeySpec;
use hookvault_core::retry::RetryPolicy;
use serde_json::{json, Value};

use crate::config::CloudflareConfig;
use crate::edge::{DeployedVersion, EdgeSecrets, KEY_RING_SECRET};
use crate::error::RotationError;
use crate::Deadline;

/// The largest Worker content the rotator downloads to upload again: 64 MiB. Workers
/// allow 10 MB per Worker after compression on paid plans
/// (<https://developers.cloudflare.com/workers/platform/limits/#worker-size>); hookvault's
/// edge is about 0.6 MB.
pub const MAX_CONTENT_BYTES: usize = 64 << 20;

/// Cloudflare's limit on `workers/message` annotations is 100 characters (wrangler's
/// `--message`); ours are cut to it.
const MAX_MESSAGE_CHARS: usize = 100;

/// One module of a Worker version, as `content/v2` returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct Module {
    /// The part's name: the module's path.
    pub name: String,
    /// The part's MIME type (`application/javascript+module`, `application/wasm`, …).
    pub content_type: String,
    /// The module's bytes.
    pub content: Vec<u8>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// What a version is built from, besides its modules.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSettings {
    /// Every binding's name.
    pub bindings: Vec<String>,
    /// `compatibility_date`, when set.
    pub compatibility_date: Option<String>,
    /// `compatibility_flags`.
    pub compatibility_flags: Vec<String>,
    /// `usage_model`, when set.
    pub usage_model: Option<String>,
    /// The version's number (uploads are numbered in order).
    pub number: Option<u64>,
}

/// The Workers Versions and Deployments API for the edge Worker.
#[derive(Debug, Clone)]
pub struct CloudflareSecrets {
    http: reqwest::Client,
    cfg: CloudflareConfig,
    tokens: Arc<SecretCache>,
}

impl CloudflareSecrets {
    /// A client; the API token is read from `cfg.token_secret_id` through `tokens`.
    pub fn new(cfg: CloudflareConfig, tokens: Arc<SecretCache>, timeout: Duration) -> Self {
        CloudflareSecrets {
            http: http::client(timeout),
            cfg,
            tokens,
        }
    }

    fn url(&self, rest: &str) -> String {
        format!(
            "{}/accounts/{}/workers/scripts/{}/{rest}",
            self.cfg.api_url.trim_end_matches('/'),
            self.cfg.account_id,
            self.cfg.worker_name
        )
    }

    /// Sends what `make` builds with the token, retried as the provider's API is.
    async fn send(
        &self,
        call: &str,
        max_body: usize,
        deadline: Deadline,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Answer, RotationError> {
        let token = self.tokens.get(&self.cfg.token_secret_id).await?;
        let answer = http::send_large(
            &RetryPolicy::provider_api(),
            deadline,
            call,
            max_body,
            || make(token.expose()),
        )
        .await?;
        if answer.status == 401 || answer.status == 403 {
            // A rotated or revoked token: read it again next time.
            self.tokens.invalidate(&self.cfg.token_secret_id).await;
        }
        Ok(answer)
    }

    /// Sends a JSON call; the envelope's `result` when `success` is true.
    async fn call(
        &self,
        call: &str,
        deadline: Deadline,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Value, RotationError> {
        let answer = self
            .send(call, http::MAX_BODY_BYTES, deadline, make)
            .await?;
        envelope_result(call, &answer)
    }

    /// The version serving all traffic: the first deployment's single version at 100 %.
    pub async fn serving_version(&self, deadline: Deadline) -> Result<String, RotationError> {
        let call = format!("Cloudflare GET deployments of {}", self.cfg.worker_name);
        let url = self.url("deployments");
        let result = self
            .call(&call, deadline, |t| self.http.get(&url).bearer_auth(t))
            .await?;
        let bad = |reason: &str| RotationError::BadAnswer {
            call: call.clone(),
            reason: reason.into(),
        };
        let first = result
            .get("deployments")
            .and_then(Value::as_array)
            .and_then(|d| d.first())
            .ok_or_else(|| bad("no deployment: deploy the Worker first (wrangler deploy)"))?;
        let versions: Vec<(String, f64)> = first
            .get("versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| {
                        Some((
                            v.get("version_id")?.as_str()?.to_owned(),
                            v.get("percentage")?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        match versions.as_slice() {
            [(id, _)] if !is_version_id(id) => Err(bad("a version id that is not [A-Za-z0-9-]")),
            [(id, p)] if (*p - 100.0).abs() < f64::EPSILON => Ok(id.clone()),
            [] => Err(bad("the serving deployment names no version")),
            split => Err(RotationError::GradualDeployment {
                worker: self.cfg.worker_name.clone(),
                split: split
                    .iter()
                    .map(|(id, p)| format!("{id} at {p} %"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// A version's bindings and compatibility settings.
    pub async fn version_settings(
        &self,
        version: &str,
        deadline: Deadline,
    ) -> Result<VersionSettings, RotationError> {
        let call = format!("Cloudflare GET version {version}");
        let url = self.url(&format!("versions/{version}"));
        let v = self
            .call(&call, deadline, |t| self.http.get(&url).bearer_auth(t))
            .await?;
        let resources = v.get("resources").cloned().unwrap_or(Value::Null);
        let runtime = resources
            .get("script_runtime")
            .cloned()
            .unwrap_or(Value::Null);
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(VersionSettings {
            bindings: resources
                .get("bindings")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|b| b.get("name")?.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            compatibility_date: runtime
                .get("compatibility_date")
                .and_then(Value::as_str)
                .map(str::to_owned),
            compatibility_flags: strings(runtime.get("compatibility_flags")),
            usage_model: runtime
                .get("usage_model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            number: v.get("number").and_then(Value::as_u64),
        })
    }

    /// A version's modules and its entry module.
    pub async fn version_content(
        &self,
        version: &str,
        deadline: Deadline,
    ) -> Result<(String, Vec<Module>), RotationError> {
        let call = format!("Cloudflare GET content of version {version}");
        let url = self.url(&format!("content/v2?version={version}"));
        let answer = self
            .send(&call, MAX_CONTENT_BYTES, deadline, |t| {
                self.http.get(&url).bearer_auth(t)
            })
            .await?;
        if !answer.is_success() {
            return Err(RotationError::refused(&call, &answer));
        }
        let bad = |reason: String| RotationError::BadAnswer {
            call: call.clone(),
            reason,
        };
        let entry = answer
            .header("cf-entrypoint")
            .map(str::to_owned)
            .ok_or_else(|| bad("no cf-entrypoint header: not a module Worker".into()))?;
        let boundary = multer::parse_boundary(answer.header("content-type").unwrap_or_default())
            .map_err(|e| bad(format!("not multipart/form-data ({e})")))?;
        let body = bytes::Bytes::from(answer.body);
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut parts = multer::Multipart::new(stream, boundary);
        let mut modules = Vec::new();
        while let Some(part) = parts
            .next_field()
            .await
            .map_err(|e| bad(format!("malformed multipart body ({e})")))?
        {
            let name = part
                .name()
                .map(str::to_owned)
                .ok_or_else(|| bad("a part without a name".into()))?;
            let content_type = part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                ToString::to_string,
            );
            let content = part
                .bytes()
                .await
                .map_err(|e| bad(format!("malformed multipart body ({e})")))?;
            modules.push(Module {
                name,
                content_type,
                content: content.to_vec(),
            });
        }
        if !modules.iter().any(|m| m.name == entry) {
            return Err(bad(format!(
                "the entry module {entry:?} is not among the parts"
            )));
        }
        Ok((entry, modules))
    }

    /// Uploads a version with `modules` and `settings` of version `based_on`, its bindings
    /// inherited from it, and the key ring `ring_json` as the secret. The new version's id.
    pub async fn upload_version(
        &self,
        based_on: &str,
        settings: &VersionSettings,
        entry: &str,
        modules: &[Module],
        ring_json: &str,
        deadline: Deadline,
    ) -> Result<String, RotationError> {
        let mut bindings: Vec<Value> = settings
            .bindings
            .iter()
            .filter(|n| n.as_str() != KEY_RING_SECRET)
            .map(|n| json!({"type": "inherit", "name": n, "version_id": based_on}))
            .collect();
        bindings.push(json!({"type": "secret_text", "name": KEY_RING_SECRET, "text": ring_json}));
        let mut metadata = json!({
            "main_module": entry,
            "bindings": bindings,
            "compatibility_flags": settings.compatibility_flags,
            "annotations": {"workers/message": message(&format!("hookvault rotator: {KEY_RING_SECRET} on the code of {based_on}"))},
        });
        if let Some(d) = &settings.compatibility_date {
            metadata["compatibility_date"] = json!(d);
        }
        if let Some(m) = &settings.usage_model {
            metadata["usage_model"] = json!(m);
        }
        let metadata = metadata.to_string();
        let call = format!("Cloudflare POST version (from {based_on})");
        // excludeScript: the answer does not echo the modules back (wrangler sets it too).
        let url = self.url("versions?bindings_inherit=strict&excludeScript=true");
        let answer = self
            .send(&call, http::MAX_BODY_BYTES, deadline, |t| {
                // Module names are paths: sent as they are, not percent-encoded.
                let mut form = reqwest::multipart::Form::new().percent_encode_noop().part(
                    "metadata",
                    reqwest::multipart::Part::text(metadata.clone())
                        .file_name("metadata.json")
                        .mime_str("application/json")
                        .unwrap_or_else(|_| reqwest::multipart::Part::text(metadata.clone())),
                );
                for m in modules {
                    let part = reqwest::multipart::Part::bytes(m.content.clone())
                        .file_name(m.name.clone());
                    let part = match part.mime_str(&m.content_type) {
                        Ok(p) => p,
                        Err(_) => reqwest::multipart::Part::bytes(m.content.clone())
                            .file_name(m.name.clone()),
                    };
                    form = form.part(m.name.clone(), part);
                }
                self.http.post(&url).bearer_auth(t).multipart(form)
            })
            .await?;
        envelope_result(&call, &answer)?
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_version_id(id))
            .map(str::to_owned)
            .ok_or_else(|| RotationError::BadAnswer {
                call,
                reason: "no result.id, or not a version id".into(),
            })
    }

    /// Deploys `version` at 100 %; the deployment's id.
    pub async fn deploy(&self, version: &str, deadline: Deadline) -> Result<String, RotationError> {
        let call = format!("Cloudflare POST deployment of {version}");
        let url = self.url("deployments");
        let body = json!({
            "strategy": "percentage",
            "versions": [{"version_id": version, "percentage": 100}],
            "annotations": {"workers/message": message("hookvault rotator: key ring")},
        })
        .to_string();
        let result = self
            .call(&call, deadline, |t| {
                self.http
                    .post(&url)
                    .bearer_auth(t)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        Ok(result
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }
}

impl CloudflareSecrets {
    /// Versions uploaded after `serving_number` (other than `deployed`) still carry the
    /// key ring from before: deployed as they are, they would drop the new key. Logged as
    /// a warning; a failed listing is only logged.
    async fn warn_stale_uploads(
        &self,
        serving_number: Option<u64>,
        deployed: &str,
        deadline: Deadline,
    ) {
        let Some(serving_number) = serving_number else {
            return;
        };
        let call = format!("Cloudflare GET versions of {}", self.cfg.worker_name);
        let url = self.url("versions");
        let listed = self
            .call(&call, deadline, |t| self.http.get(&url).bearer_auth(t))
            .await;
        let items = match listed {
            Ok(v) => v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "could not list the Worker's versions to look for uploads that carry the old key ring");
                return;
            }
        };
        let stale: Vec<String> = items
            .iter()
            .filter(|v| {
                v.get("number")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| n > serving_number)
            })
            .filter_map(|v| v.get("id").and_then(Value::as_str))
            .filter(|id| *id != deployed)
            .map(str::to_owned)
            .collect();
        if !stale.is_empty() {
            tracing::warn!(
                worker = %self.cfg.worker_name,
                versions = %stale.join(","),
                "uploaded versions that were not serving still carry the key ring from before this rotation: deploying one as it is would drop the new key and refuse webhooks signed with it; upload it again (wrangler versions upload) before deploying it"
            );
        }
    }
}

/// The envelope's `result` of a 2xx answer with `success: true`.
fn envelope_result(call: &str, answer: &Answer) -> Result<Value, RotationError> {
    match answer.json() {
        Some(mut v)
            if answer.is_success() && v.get("success").and_then(Value::as_bool) == Some(true) =>
        {
            Ok(v.get_mut("result").map(Value::take).unwrap_or(Value::Null))
        }
        _ => Err(RotationError::refused(call, answer)),
    }
}

/// Version ids are UUIDs; anything else is refused before it goes into a URL.
fn is_version_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An annotation message, cut to Cloudflare's limit.
fn message(text: &str) -> String {
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

impl EdgeSecrets for CloudflareSecrets {
    async fn put_key_ring(
        &self,
        ring: &[KeySpec],
        deadline: Deadline,
    ) -> Result<DeployedVersion, RotationError> {
        let serving = self.serving_version(deadline).await?;
        let settings = self.version_settings(&serving, deadline).await?;
        let (entry, modules) = self.version_content(&serving, deadline).await?;
        let ring_json = serde_json::to_string(ring).map_err(|e| RotationError::BadValue {
            secret: String::new(),
            what: "the key ring".into(),
            reason: format!("not serialisable ({:?})", e.classify()),
        })?;
        let version = self
            .upload_version(&serving, &settings, &entry, &modules, &ring_json, deadline)
            .await?;
        let deployment = self.deploy(&version, deadline).await?;
        self.warn_stale_uploads(settings.number, &version, deadline)
            .await;
        tracing::info!(
            worker = %self.cfg.worker_name,
            version = %version,
            based_on = %serving,
            deployment = %deployment,
            modules = modules.len(),
            "key ring deployed as a new version of the serving code"
        );
        Ok(DeployedVersion {
            version_id: version,
            based_on: serving,
            deployment_id: deployment,
        })
    }

    async fn check_access(&self, deadline: Deadline) -> Result<String, RotationError> {
        self.serving_version(deadline).await
    }
}
