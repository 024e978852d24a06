//! Rotation of the webhook signing secret, with no window in which a valid webhook is
//! refused:
//!
//! | step | what it does |
//! |---|---|
//! | `createSecret` | a new random secret (32 bytes, in the scheme's format) as `AWSPENDING`; nothing if the version already has one |
//! | `setSecret` | writes the key ring *pending + current (+ previous while in its grace)* to the edge, probes until the edge has converged on the pending secret ([`crate::probe::Convergence`]), **then** registers it with the provider |
//! | `testSecret` | probes the edge with the pending secret (and the current one); on failure puts the current secret back at the provider, so it keeps signing with a key the edge accepts |
//! | `finishSecret` | writes the ring *new as current + old as previous until now + `WEBHOOK_GRACE_SECS`* (+ the key before, while in its own grace) to the edge, records the time, moves `AWSCURRENT` |
//!
//! Every step can run again after a crash at any point: each write is a full replacement
//! computed from Secrets Manager's state.

use hookvault_core::keyring::{KeySlot, KeySpec};

use crate::edge::EdgeSecrets;
use crate::error::RotationError;
use crate::event::Step;
use crate::managed::{Managed, WebhookSecret};
use crate::provider::ProviderKeys;
use crate::rotator::{kind_changed, Rotator, StepContext};
use crate::store::{CURRENT, PREVIOUS, TAG_ROTATED_AT};

/// Runs `step` for a webhook signing secret whose current value is `current`.
pub async fn step<E: EdgeSecrets + Sync, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    step: Step,
    ctx: &StepContext<'_>,
    current: WebhookSecret,
) -> Result<&'static str, RotationError> {
    if step == Step::Create {
        let (scheme, token, now) = (current.scheme, ctx.token, ctx.now);
        return r
            .create_pending(ctx, || async move {
                WebhookSecret::generate(scheme, token, now).map(Managed::WebhookSigning)
            })
            .await;
    }
    let Managed::WebhookSigning(pending) = r.need_pending(ctx).await? else {
        return Err(kind_changed(ctx, "webhook-signing"));
    };
    let edge = r.need_edge()?;
    match step {
        Step::Create => Ok("created"),
        Step::Set => {
            let mut ring = vec![
                pending.key_spec(KeySlot::Pending, None),
                current.key_spec(KeySlot::Current, None),
            ];
            ring.extend(previous_in_grace(r, ctx, &current, &pending).await?);
            r.deploy_and_converge(ctx, &ring, &pending).await?;
            let auth = r.provider_api_key().await?;
            r.provider
                .set_webhook_secret(&auth, &pending.secret, ctx.deadline)
                .await?;
            tracing::info!(secret = ctx.secret, key = %pending.key_id, "provider signs with the pending key");
            Ok("edge and provider updated")
        }
        Step::Test => match r.edge_accepts(&[&pending, &current], ctx.now).await {
            Ok(()) => Ok("edge accepts the pending and the current key"),
            Err(e) => {
                // Keep webhooks flowing: the provider goes back to the key the edge accepts.
                let restored = match r.provider_api_key().await {
                    Ok(auth) => {
                        r.provider
                            .set_webhook_secret(&auth, &current.secret, ctx.deadline)
                            .await
                    }
                    Err(e) => Err(e),
                };
                match restored {
                    Ok(()) => {
                        tracing::warn!(secret = ctx.secret, key = %current.key_id, "test failed: the provider signs with the current key again")
                    }
                    Err(re) => {
                        tracing::error!(secret = ctx.secret, error = %re, "test failed and the current key could not be put back at the provider")
                    }
                }
                Err(e)
            }
        },
        Step::Finish => {
            let mut ring = vec![
                pending.key_spec(KeySlot::Current, None),
                current.key_spec(KeySlot::Previous, Some(ctx.now + r.cfg.webhook_grace_secs)),
            ];
            // Two rotations within one grace period: the key before keeps its own.
            ring.extend(previous_in_grace(r, ctx, &current, &pending).await?);
            edge.put_key_ring(&ring, ctx.deadline).await?;
            r.store
                .tag(ctx.secret, TAG_ROTATED_AT, &ctx.now.to_string())
                .await?;
            r.store
                .promote(ctx.secret, ctx.token, ctx.described.version_with(CURRENT))
                .await?;
            tracing::info!(secret = ctx.secret, current = %pending.key_id, previous = %current.key_id, previous_not_after = ctx.now + r.cfg.webhook_grace_secs, "rotation finished");
            Ok("finished")
        }
    }
}

/// The key before the current one, while its grace (counted from the last
/// `finishSecret`) lasts: the provider may still be retrying webhooks signed with it.
async fn previous_in_grace<E, P>(
    r: &Rotator<E, P>,
    ctx: &StepContext<'_>,
    current: &WebhookSecret,
    pending: &WebhookSecret,
) -> Result<Option<KeySpec>, RotationError> {
    let Some(rotated_at) = ctx.described.tag_secs(TAG_ROTATED_AT) else {
        return Ok(None);
    };
    let not_after = rotated_at + r.cfg.webhook_grace_secs;
    if not_after <= ctx.now {
        return Ok(None);
    }
    let Some(v) = r.store.value(ctx.secret, None, PREVIOUS).await? else {
        return Ok(None);
    };
    Ok(match Managed::parse(&v, ctx.secret, PREVIOUS) {
        Ok(Managed::WebhookSigning(p))
            if p.key_id != current.key_id && p.key_id != pending.key_id =>
        {
            Some(p.key_spec(KeySlot::Previous, Some(not_after)))
        }
        _ => None,
    })
}
