//! `general` key mode: the provider signs webhooks with the account's API key, so the
//! edge's key ring is fed from the provider API key secret and an API-key rotation is also
//! a webhook-key rotation.
//!
//! Source: Skytells' TypeScript SDK (`Skytells/ts-sdk`, `src/webhooks.ts`,
//! `verifySkytellsWebhookSignature`): `x-skytells-signature` is the lowercase hex
//! HMAC-SHA256 of the raw body, keyed in `general` mode (the SDK's default,
//! `mode: options.mode ?? 'general'`) by the API key's UTF-8 bytes ("General: HMAC key
//! is your API key (`sk-…`), same as `x-api-key` on outbound calls"); only `enterprise`
//! accounts use a dashboard webhook secret. So the ring's entry for a key is the API key
//! itself, in the `skytells` scheme (whose secret is its bytes).
//!
//! | step | the ring (newest first) | then |
//! |---|---|---|
//! | `setSecret` | *pending, current, previous while in its grace* | probes until the edge has converged on the pending key ([`crate::probe::Convergence`]); nothing is submitted with it before `finishSecret` |
//! | `testSecret` | — | the edge accepts the pending and the current key, each as itself, **then** the provider is called with the pending key |
//! | `finishSecret` | *new as current, old as previous until now + `WEBHOOK_GRACE_SECS`, the key before while in its own grace* | tag `hookvault:ring-retire-at` = that time; then `AWSCURRENT` moves and the api submits with the new key |
//! | the schedule | *pending (if a rotation is in progress), current, previous while in its grace* | once `hookvault:ring-retire-at` has passed: the retired key leaves the ring, and the tag goes |
//!
//! The old key stays accepted for `WEBHOOK_GRACE_SECS` after `finishSecret`: webhooks of
//! predictions created under it (the api caches a key for `API_KEY_CACHE_TTL_SECS`, then
//! the prediction runs, then its webhook is delivered and retried) are still signed with
//! it. The edge refuses it after its `not_after` anyway (`key_expired`); the schedule
//! also takes it out of the Worker's secret, where a key that is still valid at the
//! provider until the next rotation has no business staying.

use hookvault_core::keyring::{KeySlot, KeySpec};
use hookvault_core::scheme::Scheme;

use crate::edge::EdgeSecrets;
use crate::error::RotationError;
use crate::managed::{ApiKey, Managed, WebhookSecret};
use crate::provider::ProviderKeys;
use crate::rotator::{Rotator, StepContext};
use crate::store::{Described, CURRENT, PENDING, PREVIOUS, TAG_RING_RETIRE_AT, TAG_ROTATED_AT};
use crate::Deadline;

/// The scheme the provider signs with: the edge provider's name when it is a scheme's,
/// `skytells` otherwise (the provider whose SDK defines `general` mode).
pub fn scheme(provider: &str) -> Scheme {
    provider.parse().unwrap_or(Scheme::Skytells)
}

/// API key `key` as a webhook signing key: the key itself is the HMAC key.
pub fn signing_key(key: &ApiKey, scheme: Scheme) -> WebhookSecret {
    WebhookSecret {
        scheme,
        key_id: key.key_id.clone(),
        secret: key.api_key.clone(),
        created_at: key.created_at,
    }
}

impl<E: EdgeSecrets + Sync, P: ProviderKeys + Sync> Rotator<E, P> {
    fn signing_key(&self, key: &ApiKey) -> WebhookSecret {
        signing_key(key, scheme(&self.cfg.edge_provider))
    }

    /// `setSecret`: the ring *pending, current, previous while in its grace*, deployed,
    /// and the edge converged on the pending key, before anything signs or submits with it.
    pub async fn general_set(
        &self,
        ctx: &StepContext<'_>,
        current: &ApiKey,
        pending: &ApiKey,
    ) -> Result<(), RotationError> {
        let key = self.signing_key(pending);
        let mut ring = vec![
            key.key_spec(KeySlot::Pending, None),
            self.signing_key(current).key_spec(KeySlot::Current, None),
        ];
        ring.extend(
            self.api_key_in_grace(ctx.secret, ctx.described, ctx.now, &[current, pending])
                .await?,
        );
        self.deploy_and_converge(ctx, &ring, &key).await
    }

    /// `testSecret`'s edge part: the edge accepts the pending key and the current one,
    /// each as itself.
    pub async fn general_test(
        &self,
        current: &ApiKey,
        pending: &ApiKey,
        now: i64,
    ) -> Result<(), RotationError> {
        let (p, c) = (self.signing_key(pending), self.signing_key(current));
        self.edge_accepts(&[&p, &c], now).await
    }

    /// `finishSecret`'s ring: *new as current, old as previous until now + grace, the key
    /// before while in its own grace*, and the time the old key must leave the ring.
    /// Runs before the promotion, so the ring never lacks the key the api submits with.
    pub async fn general_finish(
        &self,
        ctx: &StepContext<'_>,
        current: &ApiKey,
        pending: &ApiKey,
    ) -> Result<(), RotationError> {
        let retire_at = ctx.now + self.cfg.webhook_grace_secs;
        let mut ring = vec![
            self.signing_key(pending).key_spec(KeySlot::Current, None),
            self.signing_key(current)
                .key_spec(KeySlot::Previous, Some(retire_at)),
        ];
        ring.extend(
            self.api_key_in_grace(ctx.secret, ctx.described, ctx.now, &[current, pending])
                .await?,
        );
        self.need_edge()?.put_key_ring(&ring, ctx.deadline).await?;
        self.store
            .tag(ctx.secret, TAG_RING_RETIRE_AT, &retire_at.to_string())
            .await?;
        tracing::info!(secret = ctx.secret, keys = ring.len(), current = %pending.key_id, previous = %current.key_id, previous_not_after = retire_at, "key ring written: the new API key is current at the edge");
        Ok(())
    }

    /// The schedule's part: once `hookvault:ring-retire-at` has passed, writes the ring
    /// again from Secrets Manager's state (the retired key's grace is over, so it is left
    /// out) and removes the tag. `None` when nothing was due.
    pub async fn general_retire_due(
        &self,
        d: &Described,
        now: i64,
        deadline: Deadline,
    ) -> Result<Option<String>, RotationError> {
        let Some(due) = d.tag_secs(TAG_RING_RETIRE_AT) else {
            return Ok(None);
        };
        if due > now {
            return Ok(None);
        }
        let Managed::ProviderApiKey(current) = self.current(&d.arn).await? else {
            return Ok(None);
        };
        let mut ring = Vec::new();
        // A rotation in progress keeps its pending key: its setSecret may have run.
        let pending = match d.version_with(PENDING) {
            Some(v) if Some(v) != d.version_with(CURRENT) => {
                self.store.value(&d.arn, Some(v), PENDING).await?.and_then(
                    |v| match Managed::parse(&v, &d.arn, PENDING) {
                        Ok(Managed::ProviderApiKey(k)) => Some(k),
                        _ => None,
                    },
                )
            }
            _ => None,
        };
        if let Some(p) = &pending {
            ring.push(self.signing_key(p).key_spec(KeySlot::Pending, None));
        }
        ring.push(self.signing_key(&current).key_spec(KeySlot::Current, None));
        let mut keep = vec![&current];
        keep.extend(pending.as_ref());
        ring.extend(self.api_key_in_grace(&d.arn, d, now, &keep).await?);
        self.need_edge()?.put_key_ring(&ring, deadline).await?;
        self.store.untag(&d.arn, TAG_RING_RETIRE_AT).await?;
        tracing::info!(secret = %d.arn, keys = ring.len(), current = %current.key_id, "retired API key removed from the edge's key ring after its grace");
        Ok(Some(format!(
            "retired API key removed from the edge's key ring ({} key(s) left)",
            ring.len()
        )))
    }

    /// The `AWSPREVIOUS` API key as a ring entry while its grace lasts (counted from the
    /// last `finishSecret`), unless it is one of `not`.
    async fn api_key_in_grace(
        &self,
        secret: &str,
        d: &Described,
        now: i64,
        not: &[&ApiKey],
    ) -> Result<Option<KeySpec>, RotationError> {
        let Some(rotated_at) = d.tag_secs(TAG_ROTATED_AT) else {
            return Ok(None);
        };
        let not_after = rotated_at + self.cfg.webhook_grace_secs;
        if not_after <= now {
            return Ok(None);
        }
        let Some(v) = self.store.value(secret, None, PREVIOUS).await? else {
            return Ok(None);
        };
        Ok(match Managed::parse(&v, secret, PREVIOUS) {
            Ok(Managed::ProviderApiKey(p)) if not.iter().all(|k| k.key_id != p.key_id) => Some(
                self.signing_key(&p)
                    .key_spec(KeySlot::Previous, Some(not_after)),
            ),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_key_signs_as_itself_in_the_providers_scheme() {
        let k = ApiKey {
            key_id: "key_7".into(),
            api_key: "sk-live-abc".into(),
            created_at: Some(5),
        };
        let w = signing_key(&k, scheme("skytells"));
        assert_eq!(
            (w.scheme, w.key_id.as_str(), w.secret.as_str()),
            (Scheme::Skytells, "key_7", "sk-live-abc")
        );
        // The HMAC key is the API key's bytes, as the SDK's TextEncoder gives them.
        assert_eq!(
            Scheme::Skytells.decode_secret(&w.secret).unwrap(),
            b"sk-live-abc"
        );
        assert_eq!(scheme("someone-else"), Scheme::Skytells);
        let spec = w.key_spec(KeySlot::Previous, Some(9));
        assert!(!format!("{spec:?}").contains("sk-live"));
    }
}
