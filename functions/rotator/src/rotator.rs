//! The rotator itself: Secrets Manager, the edge and the provider it works with
//! ([`Rotator`]), what one step works on ([`StepContext`]), and the reads and writes every
//! kind of rotation shares (the current and pending values, `createSecret`'s frame, the
//! provider API key). The protocol's dispatch is [`crate::steps`]; the kinds' steps
//! ([`crate::webhook`], [`crate::api_key`]), the configuration test and the schedule use
//! this module, never the dispatch.

use std::sync::Arc;
use std::time::Duration;

use hookvault_aws::secrets::SecretCache;

use crate::config::RotatorConfig;
use crate::edge::{CloudflareSecrets, EdgeSecrets};
use crate::error::RotationError;
use crate::managed::Managed;
use crate::managed::WebhookSecret;
use crate::probe::{Convergence, Probe};
use crate::provider::{HttpProvider, ProviderKeys};
use crate::store::{Described, Store, CURRENT, PENDING, TAG_PENDING_VERSION};
use crate::Deadline;
use hookvault_core::keyring::KeySpec;

/// How long secrets read through the cache (the Cloudflare token) are kept.
const SECRET_TTL: Duration = Duration::from_secs(300);

/// The rotator: Secrets Manager, the edge, the provider.
pub struct Rotator<E, P> {
    /// Secrets Manager.
    pub store: Store,
    /// Secrets read by the rotator (the Cloudflare token, the provider API key).
    pub secrets: Arc<SecretCache>,
    /// Where the edge's key ring is written, when a key ring is rotated (webhook secrets,
    /// and API keys in `general` key mode).
    pub edge: Option<E>,
    /// The edge's probe route, when a key ring is rotated.
    pub probe: Option<Probe>,
    /// The provider.
    pub provider: P,
    /// Settings.
    pub cfg: RotatorConfig,
}

/// What a step works on.
#[derive(Debug)]
pub struct StepContext<'a> {
    /// The secret's ARN.
    pub secret: &'a str,
    /// The version being rotated to.
    pub token: &'a str,
    /// The secret as described before the step.
    pub described: &'a Described,
    /// Unix seconds now.
    pub now: i64,
    /// The invocation's deadline.
    pub deadline: Deadline,
}

impl Rotator<CloudflareSecrets, HttpProvider> {
    /// The rotator for AWS: Cloudflare's API, the provider over HTTP.
    pub fn from_config(client: aws_sdk_secretsmanager::Client, cfg: RotatorConfig) -> Self {
        let secrets = Arc::new(SecretCache::new(client.clone(), SECRET_TTL));
        let edge = cfg
            .cloudflare
            .clone()
            .map(|c| CloudflareSecrets::new(c, Arc::clone(&secrets), cfg.http_timeout));
        let probe = cfg
            .edge_url
            .as_deref()
            .map(|u| Probe::new(u, &cfg.edge_provider, cfg.http_timeout));
        Rotator {
            store: Store::new(client),
            secrets,
            edge,
            probe,
            provider: HttpProvider::new(cfg.provider.clone(), cfg.http_timeout),
            cfg,
        }
    }
}

impl<E: EdgeSecrets + Sync, P: ProviderKeys + Sync> Rotator<E, P> {
    /// The secret's `AWSCURRENT` value.
    pub async fn current(&self, secret: &str) -> Result<Managed, RotationError> {
        let v = self
            .store
            .value(secret, None, CURRENT)
            .await?
            .ok_or_else(|| RotationError::Missing {
                secret: secret.to_owned(),
                what: CURRENT.into(),
            })?;
        Managed::parse(&v, secret, CURRENT)
    }

    /// The pending version's value, `None` while it has none (before `createSecret`).
    pub async fn pending(&self, ctx: &StepContext<'_>) -> Result<Option<Managed>, RotationError> {
        let what = format!("{PENDING} version {}", ctx.token);
        match self
            .store
            .value(ctx.secret, Some(ctx.token), PENDING)
            .await?
        {
            Some(v) => Managed::parse(&v, ctx.secret, &what).map(Some),
            None => Ok(None),
        }
    }

    /// `createSecret`'s frame for every kind: nothing if the pending version already has
    /// a value (a retried step makes nothing twice), otherwise `make` builds the value,
    /// which is stored as `AWSPENDING` under the rotation's token.
    pub async fn create_pending<F>(
        &self,
        ctx: &StepContext<'_>,
        make: impl FnOnce() -> F,
    ) -> Result<&'static str, RotationError>
    where
        F: std::future::Future<Output = Result<Managed, RotationError>>,
    {
        if self.pending(ctx).await?.is_some() {
            return Ok("pending version exists");
        }
        // Before the value: a testSecret that finds this tag and no value knows a rotation
        // lost its value, rather than taking it for Secrets Manager's configuration test.
        self.store
            .tag(ctx.secret, TAG_PENDING_VERSION, ctx.token)
            .await?;
        let new = make().await?;
        tracing::info!(
            secret = ctx.secret,
            new_key = new.key_id(),
            kind = new.kind(),
            "new value made"
        );
        self.store
            .put_pending(ctx.secret, ctx.token, &new.to_json())
            .await?;
        Ok("created")
    }

    /// The pending value, which this step needs.
    pub async fn need_pending(&self, ctx: &StepContext<'_>) -> Result<Managed, RotationError> {
        self.pending(ctx)
            .await?
            .ok_or_else(|| RotationError::Missing {
                secret: ctx.secret.to_owned(),
                what: if ctx.described.tags.get(TAG_PENDING_VERSION).map(String::as_str)
                    == Some(ctx.token)
                {
                    format!("{PENDING} version {} (createSecret started for it but stored no value: run createSecret again, or cancel the rotation)", ctx.token)
                } else {
                    format!("{PENDING} version {} (run createSecret first)", ctx.token)
                },
            })
    }

    /// Where the edge's key ring is written (`CLOUDFLARE_ACCOUNT_ID` and
    /// `CLOUDFLARE_TOKEN_SECRET_ID` are needed).
    pub fn need_edge(&self) -> Result<&E, RotationError> {
        Ok(self
            .edge
            .as_ref()
            .ok_or_else(|| hookvault_aws::env::EnvError::Missing("CLOUDFLARE_ACCOUNT_ID".into()))?)
    }

    /// The edge's probe route (`EDGE_URL` is needed).
    pub fn need_probe(&self) -> Result<&Probe, RotationError> {
        Ok(self
            .probe
            .as_ref()
            .ok_or_else(|| hookvault_aws::env::EnvError::Missing("EDGE_URL".into()))?)
    }

    /// Deploys `ring` to the edge, then probes until the edge has converged on `key`
    /// ([`Convergence`] from the settings, keeping one HTTP timeout for a probe in flight
    /// and one for the call that follows). Only then may anyone sign with `key`.
    pub async fn deploy_and_converge(
        &self,
        ctx: &StepContext<'_>,
        ring: &[KeySpec],
        key: &WebhookSecret,
    ) -> Result<(), RotationError> {
        let edge = self.need_edge()?;
        self.need_probe()?;
        edge.put_key_ring(ring, ctx.deadline).await?;
        self.wait_converged(ctx, ring.len(), key).await
    }

    /// After a ring of `keys` keys was written: probes until the edge has converged on
    /// `key` ([`Convergence`] from the settings, keeping one HTTP timeout for a probe in
    /// flight and one for the call that follows).
    pub async fn wait_converged(
        &self,
        ctx: &StepContext<'_>,
        keys: usize,
        key: &WebhookSecret,
    ) -> Result<(), RotationError> {
        let probe = self.need_probe()?;
        let rule = Convergence {
            probes: self.cfg.convergence_probes,
            soak: self.cfg.soak,
            within: self.cfg.edge_propagation,
            // A probe in flight, then the provider call: one HTTP timeout each.
            reserve: self.cfg.http_timeout * 2,
        };
        tracing::info!(
            secret = ctx.secret,
            keys,
            probes = rule.probes,
            soak_secs = rule.soak.as_secs(),
            "key ring written to the edge; waiting until it has converged on the pending key"
        );
        let seen = probe.wait_converged(key, &rule, ctx.deadline).await?;
        tracing::info!(
            secret = ctx.secret,
            key = %key.key_id,
            probes_sent = seen.probes_sent,
            relapses = seen.relapses,
            waited_ms = seen.waited.as_millis() as u64,
            "the edge has converged on the pending key"
        );
        Ok(())
    }

    /// One probe per key: the edge must accept each as itself (`x-hookvault-key` = its
    /// `key_id`).
    pub async fn edge_accepts(
        &self,
        keys: &[&WebhookSecret],
        now: i64,
    ) -> Result<(), RotationError> {
        let probe = self.need_probe()?;
        for key in keys {
            let result = probe.check(key, now).await?;
            if !result.accepts(key) {
                return Err(RotationError::NotPropagated {
                    key_id: key.key_id.clone(),
                    secs: 0,
                    last: result.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The provider API key the rotator authenticates with (read fresh: it may just
    /// have been rotated).
    pub async fn provider_api_key(&self) -> Result<String, RotationError> {
        let id = self
            .cfg
            .provider_api_key_secret_id
            .as_deref()
            .ok_or_else(|| {
                hookvault_aws::env::EnvError::Missing("PROVIDER_API_KEY_SECRET_ID".into())
            })?;
        let v = self.secrets.refresh(id).await?;
        match Managed::parse(v.expose(), id, CURRENT)? {
            Managed::ProviderApiKey(k) => Ok(k.api_key),
            Managed::WebhookSigning(_) => Err(RotationError::BadValue {
                secret: id.to_owned(),
                what: CURRENT.into(),
                reason: "PROVIDER_API_KEY_SECRET_ID names a webhook-signing secret, not a provider-api-key".into(),
            }),
        }
    }
}

/// A `BadValue` for a pending version of another kind than the current one.
pub fn kind_changed(ctx: &StepContext<'_>, expected: &str) -> RotationError {
    RotationError::BadValue {
        secret: ctx.secret.to_owned(),
        what: format!("{PENDING} version {}", ctx.token),
        reason: format!("its kind differs from AWSCURRENT's ({expected})"),
    }
}
