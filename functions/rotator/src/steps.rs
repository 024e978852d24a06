//! The rotation protocol's frame: the checks AWS requires before every step, then the
//! step of the secret's kind ([`crate::webhook`], [`crate::api_key`]).
//!
//! Before each step: rotation must be enabled, the token must be a version of the
//! secret; a token already `AWSCURRENT` means the rotation is done (return); a token not
//! `AWSPENDING` is an error.
//!
//! This module is only the dispatch: what the steps share lives in [`crate::rotator`],
//! and nothing but the entry point ([`Rotator::handle`]) reaches the kinds through here.

use serde_json::json;

use crate::config::KeyMode;
use crate::edge::EdgeSecrets;
use crate::error::RotationError;
use crate::event::{Input, RotationEvent, Step};
use crate::managed::Managed;
use crate::provider::ProviderKeys;
use crate::rotator::{Rotator, StepContext};
use crate::store::{CURRENT, PENDING, TAG_PENDING_VERSION};
use crate::{api_key, configuration_test, schedule, webhook, Deadline};

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
        let general = self.cfg.key_mode == KeyMode::General;
        let outcome = match current {
            // The provider signs with the API key: the ring follows that secret, and a
            // webhook secret written to it would replace the API keys.
            Managed::WebhookSigning(_) if general => Err(RotationError::KeyMode {
                secret: d.arn.clone(),
                kind: "webhook-signing",
                mode: self.cfg.key_mode.as_str(),
                variable: KeyMode::variable(&self.cfg.edge_provider),
                why: "the provider signs webhooks with the API key, so the edge's key ring follows the provider API key secret; rotate that secret, or set enterprise if the account signs with a webhook secret of its own",
            }),
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
}
