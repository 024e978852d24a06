//! The rotation protocol's frame: the checks AWS requires before every step, then the
//! step of the secret's kind ([`crate::webhook`], [`crate::api_key`]).
//!
//! Before each step: rotation must be enabled, the token must be a version of the
//! secret; a token already `AWSCURRENT` means the rotation is done (return); a token not
//! `AWSPENDING` is an error.

use std::sync::Arc;
use std::time::Duration;

use hookvault_aws::secrets::SecretCache;
use serde_json::json;

use crate::config::RotatorConfig;
use crate::edge::{CloudflareSecrets, EdgeSecrets};
use crate::error::RotationError;
use crate::event::{Input, RotationEvent, Step};
use crate::managed::Managed;
use crate::probe::Probe;
use crate::provider::{HttpProvider, ProviderKeys};
use crate::store::{Described, Store, CURRENT, PENDING, TAG_PENDING_VERSION};
use crate::{api_key, configuration_test, schedule, webhook, Deadline};

/// How long secrets read through the cache (the Cloudflare token) are kept.
const SECRET_TTL: Duration = Duration::from_secs(300);

/// The rotator: Secrets Manager, the edge, the provider.
pub struct Rotator<E, P> {
    /// Secrets Manager.
    pub store: Store,
    /// Secrets read by the rotator (the Cloudflare token, the provider API key).
    pub secrets: Arc<SecretCache>,
    /// Where the edge's key ring is written, when webhook secrets are rotated.
    pub edge: Option<E>,
    /// The edge's probe route, when webhook secrets are rotated.
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
    /// Handles one invocation, answering before `deadline`.
    pub async fn handle(
        &self,
        input: Input,
        deadline: Deadline,
    ) -> Result<serde_json::Value, RotationError> {
        match input {
            Input::Rotation(ev) => {
                let outcome = self.step(&ev, deadline).await?;
                Ok(json!({"SecretId": ev.secret_id, "Step": ev.step, "outcome": outcome}))
            }
            Input::Scheduled => schedule::run(self, deadline).await,
        }
    }

    /// Runs one rotation step after the protocol's checks.
    pub async fn step(
        &self,
        ev: &RotationEvent,
        deadline: Deadline,
    ) -> Result<&'static str, RotationError> {
        let step: Step = ev.step.parse()?;
        let d = self.store.describe(&ev.secret_id).await?;
        if !d.rotation_enabled {
            return Err(RotationError::NotEnabled(d.arn.clone()));
        }
        let Some(stages) = d.stages.get(&ev.token) else {
            return Err(RotationError::UnknownToken {
                secret: d.arn.clone(),
                token: ev.token.clone(),
            });
        };
        if stages.iter().any(|s| s == CURRENT) {
            tracing::info!(secret = %d.arn, version = %ev.token, step = step.as_str(), "version is already AWSCURRENT: nothing to do");
            return Ok("already-current");
        }
        if !stages.iter().any(|s| s == PENDING) {
            return Err(RotationError::NotPending {
                secret: d.arn.clone(),
                token: ev.token.clone(),
            });
        }
        let current = self.current(&d.arn).await?;
        let ctx = StepContext {
            secret: &d.arn,
            token: &ev.token,
            described: &d,
            now: crate::unix_now(),
            deadline,
        };
        tracing::info!(secret = %d.arn, version = %ev.token, step = step.as_str(), kind = current.kind(), current_key = current.key_id(), "rotation step");
        let configuring = step == Step::Test
            && d.tags.get(TAG_PENDING_VERSION) != Some(&ev.token)
            && self.pending(&ctx).await?.is_none();
        let outcome = match current {
            // Secrets Manager's own check when rotation is configured without rotating:
            // testSecret alone, on a pending version that has no value and never will.
            current if configuring => configuration_test::run(self, &ctx, current).await,
            Managed::WebhookSigning(cur) => webhook::step(self, step, &ctx, cur).await,
            Managed::ProviderApiKey(cur) => api_key::step(self, step, &ctx, cur).await,
        };
        match &outcome {
            Ok(o) => {
                tracing::info!(secret = %d.arn, version = %ev.token, step = step.as_str(), outcome = o, "rotation step done")
            }
            Err(e) => {
                tracing::error!(secret = %d.arn, version = %ev.token, step = step.as_str(), error = %e, "rotation step failed")
            }
        }
        outcome
    }

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
