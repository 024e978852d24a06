//! Secrets Manager's configuration test.
//!
//! When rotation is configured without an immediate rotation (`RotateSecret` with
//! `RotateImmediately=false`, or a `RotationSchedule` with `RotateImmediatelyOnUpdate:
//! false` as the template has), "Secrets Manager tests the rotation configuration by running
//! the testSecret step of the Lambda rotation function. The test creates an AWSPENDING
//! version of the secret and then removes it"
//! (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html>).
//! That version has no value and never will: `createSecret` does not run.
//!
//! The rotator tells it from a real rotation by the tag
//! [`TAG_PENDING_VERSION`](crate::store::TAG_PENDING_VERSION), which `createSecret` sets to
//! its token before it stores a value: a `testSecret` whose pending version has no value
//! and whose token is not that tag's is the configuration test. A rotation whose value went
//! missing still fails (`createSecret started for it but stored no value`).
//!
//! The test checks what can be checked without a new value, read-only:
//!
//! | kind | checks |
//! |---|---|
//! | `webhook-signing` | the Cloudflare token can read the Worker's deployments (and none is gradual); the edge accepts the current key as itself; the provider API key works |
//! | `provider-api-key` | the current key works at the provider; in `general` key mode also the Cloudflare check above and the edge accepting the current API key as itself (its ring is fed from this secret) |

use std::time::Duration;

use crate::config::KeyMode;
use crate::edge::EdgeSecrets;
use crate::error::RotationError;
use crate::managed::Managed;
use crate::provider::ProviderKeys;
use crate::rotator::{Rotator, StepContext};

/// Runs the configuration test for a secret whose current value is `current`.
pub async fn run<E: EdgeSecrets + Sync, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    ctx: &StepContext<'_>,
    current: Managed,
) -> Result<&'static str, RotationError> {
    tracing::info!(
        secret = ctx.secret,
        version = ctx.token,
        "the pending version has no value and no createSecret ran for it: Secrets Manager's configuration test"
    );
    match current {
        Managed::ProviderApiKey(cur) => {
            if r.cfg.key_mode == KeyMode::General {
                r.need_edge()?.check_access(ctx.deadline).await?;
                let key =
                    crate::general::signing_key(&cur, crate::general::scheme(&r.cfg.edge_provider));
                r.edge_accepts(&[&key], crate::unix_now()).await?;
            }
            r.provider
                .check_key(&cur.api_key, Duration::ZERO, ctx.deadline)
                .await?;
        }
        Managed::WebhookSigning(cur) => {
            r.need_edge()?.check_access(ctx.deadline).await?;
            r.edge_accepts(&[&cur], crate::unix_now()).await?;
            let auth = r.provider_api_key().await?;
            r.provider
                .check_key(&auth, Duration::ZERO, ctx.deadline)
                .await?;
        }
    }
    tracing::info!(secret = ctx.secret, "configuration test passed");
    Ok("configuration test passed")
}
