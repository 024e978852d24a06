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
//! | `finishSecret` | unchanged until `AWSCURRENT` has moved (the api submits with the new key from then on); **then** *new as current, old as previous until now + `WEBHOOK_GRACE_SECS`, the key before while in its own grace* | before the move, tag `hookvault:ring-retire-at` = that time |
//! | the schedule | *pending (if a rotation is in progress), current, previous while in its grace* | written when `hookvault:ring-retire-at` has passed (the retired key leaves the ring, and the tag goes), and whenever the `AWSCURRENT` key may have an expiry in the ring or the edge refuses it |
//!
//! **The invariant: the key that is `AWSCURRENT` is in the ring without expiry.** The api
//! submits with `AWSCURRENT`, so the provider signs with it. `finishSecret` therefore
//! gives the old key its `not_after` only once `AWSCURRENT` has moved: a promotion that
//! fails (or a rotation cancelled after `finishSecret` started) leaves the old key, still
//! in use, in `setSecret`'s ring without expiry, and the schedule's retirement still
//! writes the ring from Secrets Manager's state. The schedule checks the invariant every
//! run (`hookvault:ring-expiring`, and a probe of the edge with the `AWSCURRENT` key),
//! and writes the ring again when it does not hold, e.g. after an operator moved
//! `AWSCURRENT` back to the old key.
//!
//! The old key stays accepted for `WEBHOOK_GRACE_SECS` after `finishSecret`: webhooks of
//! predictions created under it (the api caches a key for `API_KEY_CACHE_TTL_SECS`, then
//! the prediction runs, then its webhook is delivered and retried) are still signed with
//! it. The edge refuses it after its `not_after` anyway (`key_expired`); the schedule
//! also takes it out of the Worker's secret, where a key that is still valid at the
//! provider until the next rotation has no business staying.

use std::collections::BTreeSet;

use hookvault_core::keyring::{KeySlot, KeySpec};
use hookvault_core::scheme::Scheme;

use crate::edge::EdgeSecrets;
use crate::error::RotationError;
use crate::managed::{ApiKey, Managed, WebhookSecret};
use crate::probe::ProbeResult;
use crate::provider::ProviderKeys;
use crate::rotator::{Rotator, StepContext};
use crate::store::{
    Described, CURRENT, PENDING, PREVIOUS, TAG_RING_EXPIRING, TAG_RING_RETIRE_AT, TAG_ROTATED_AT,
};
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

/// The ring `finishSecret` writes once `AWSCURRENT` has moved, built before the move
/// (while `AWSPREVIOUS` is still the key before the old one).
#[derive(Debug)]
pub struct FinishRing {
    ring: Vec<KeySpec>,
    retire_at: i64,
}

/// The key ids `hookvault:ring-expiring` names.
fn expiring_tagged(d: &Described) -> BTreeSet<String> {
    d.tags
        .get(TAG_RING_EXPIRING)
        .map(|t| t.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The key ids `ring` gives a `not_after`.
fn expiring_in(ring: &[KeySpec]) -> BTreeSet<String> {
    ring.iter()
        .filter(|k| k.not_after.is_some())
        .filter_map(|k| k.id.clone())
        .collect()
}

impl<E: EdgeSecrets + Sync, P: ProviderKeys + Sync> Rotator<E, P> {
    fn signing_key(&self, key: &ApiKey) -> WebhookSecret {
        signing_key(key, scheme(&self.cfg.edge_provider))
    }

    /// Writes `ring` to the edge, keeping `hookvault:ring-expiring` from ever naming fewer
    /// keys than the ring deployed gives an expiry: before the write it names those of
    /// the ring as last tagged (`d`) and of `ring`, after it those of `ring`. Each tag is
    /// written only when it changes.
    async fn write_ring(
        &self,
        secret: &str,
        d: &Described,
        ring: &[KeySpec],
        deadline: Deadline,
    ) -> Result<(), RotationError> {
        let edge = self.need_edge()?;
        let known = expiring_tagged(d);
        let new = expiring_in(ring);
        let both: BTreeSet<String> = known.union(&new).cloned().collect();
        self.tag_expiring(secret, &known, &both).await?;
        edge.put_key_ring(ring, deadline).await?;
        self.tag_expiring(secret, &both, &new).await
    }

    /// Sets `hookvault:ring-expiring` to `to` when it is `from` (removed when empty).
    async fn tag_expiring(
        &self,
        secret: &str,
        from: &BTreeSet<String>,
        to: &BTreeSet<String>,
    ) -> Result<(), RotationError> {
        if from == to {
            return Ok(());
        }
        if to.is_empty() {
            return self.store.untag(secret, TAG_RING_EXPIRING).await;
        }
        let value = to.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
        self.store.tag(secret, TAG_RING_EXPIRING, &value).await
    }

    /// `setSecret`: the ring *pending, current, previous while in its grace*, deployed,
    /// and the edge converged on the pending key, before anything signs or submits with it.
    pub async fn general_set(
        &self,
        ctx: &StepContext<'_>,
        current: &ApiKey,
        pending: &ApiKey,
    ) -> Result<(), RotationError> {
        self.need_probe()?;
        let key = self.signing_key(pending);
        let mut ring = vec![
            key.key_spec(KeySlot::Pending, None),
            self.signing_key(current).key_spec(KeySlot::Current, None),
        ];
        ring.extend(
            self.api_key_in_grace(ctx.secret, ctx.described, ctx.now, &[current, pending])
                .await?,
        );
        self.write_ring(ctx.secret, ctx.described, &ring, ctx.deadline)
            .await?;
        self.wait_converged(ctx, ring.len(), &key).await
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

    /// `finishSecret`'s part **before** `AWSCURRENT` moves: the ring to write once it has
    /// moved (*new as current, old as previous until now + grace, the key before while in
    /// its own grace*), and the tag `hookvault:ring-retire-at` = the old key's end of
    /// grace, so that the schedule takes it out of the ring even if that write never
    /// happens. The ring deployed is left as it is: `setSecret`'s, which `testSecret` has
    /// seen accept both keys, and which gives neither an expiry, so the key in use is
    /// accepted whether or not the promotion happens.
    pub async fn general_finish_prepare(
        &self,
        ctx: &StepContext<'_>,
        current: &ApiKey,
        pending: &ApiKey,
    ) -> Result<FinishRing, RotationError> {
        self.need_edge()?;
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
        self.store
            .tag(ctx.secret, TAG_RING_RETIRE_AT, &retire_at.to_string())
            .await?;
        Ok(FinishRing { ring, retire_at })
    }

    /// `finishSecret`'s part **after** `AWSCURRENT` has moved: writes the ring
    /// [`Self::general_finish_prepare`] built, which gives the old key its `not_after`.
    pub async fn general_finish(
        &self,
        ctx: &StepContext<'_>,
        finish: &FinishRing,
        current: &ApiKey,
        pending: &ApiKey,
    ) -> Result<(), RotationError> {
        self.write_ring(ctx.secret, ctx.described, &finish.ring, ctx.deadline)
            .await?;
        tracing::info!(secret = ctx.secret, keys = finish.ring.len(), current = %pending.key_id, previous = %current.key_id, previous_not_after = finish.retire_at, "key ring written: the new API key is current at the edge, the old one until its grace has passed");
        Ok(())
    }

    /// The schedule's part: writes the ring again from Secrets Manager's state (*pending
    /// if a rotation is in progress, current, previous while in its grace*) when
    /// `hookvault:ring-retire-at` has passed (the retired key's grace is over; the tag is
    /// removed), or when the invariant does not hold: the `AWSCURRENT` key is named by
    /// `hookvault:ring-expiring`, or the edge refuses it. `None` when nothing was due.
    pub async fn general_keep_ring(
        &self,
        d: &Described,
        now: i64,
        deadline: Deadline,
    ) -> Result<Option<String>, RotationError> {
        let Managed::ProviderApiKey(current) = self.current(&d.arn).await? else {
            return Ok(None);
        };
        let due = d.tag_secs(TAG_RING_RETIRE_AT).is_some_and(|t| t <= now);
        let broken = if expiring_tagged(d).contains(&current.key_id) {
            Some("the ring may give it an expiry".to_owned())
        } else if due {
            None
        } else {
            self.edge_refuses(&d.arn, &self.signing_key(&current), now)
                .await
        };
        if !due && broken.is_none() {
            return Ok(None);
        }
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
        self.write_ring(&d.arn, d, &ring, deadline).await?;
        let mut done = Vec::new();
        if let Some(why) = &broken {
            tracing::warn!(secret = %d.arn, keys = ring.len(), current = %current.key_id, why = %why, "the edge's key ring repaired: the AWSCURRENT API key is in it without expiry again");
            done.push(format!(
                "the edge's key ring repaired: the AWSCURRENT API key {} {why}; written again with it as current, without expiry ({} key(s))",
                current.key_id,
                ring.len()
            ));
        }
        if due {
            self.store.untag(&d.arn, TAG_RING_RETIRE_AT).await?;
            tracing::info!(secret = %d.arn, keys = ring.len(), current = %current.key_id, "retired API key removed from the edge's key ring after its grace");
            done.push(format!(
                "retired API key removed from the edge's key ring ({} key(s) left)",
                ring.len()
            ));
        }
        Ok(Some(done.join("; ")))
    }

    /// Why the edge refuses `key` (a 401, or it took the signature for another key's),
    /// `None` when it accepts it as itself, or there is no probe route, or the probe did
    /// not get a clear answer (logged: the next run asks again).
    async fn edge_refuses(&self, secret: &str, key: &WebhookSecret, now: i64) -> Option<String> {
        let probe = self.probe.as_ref()?;
        match probe.check(key, now).await {
            Ok(r) if r.accepts(key) => None,
            Ok(r @ ProbeResult::Refused { status: 401, .. }) => {
                Some(format!("is refused by the edge ({r})"))
            }
            Ok(r @ ProbeResult::Accepted { .. }) => {
                Some(format!("is taken for another key by the edge ({r})"))
            }
            Ok(r) => {
                tracing::warn!(secret, key = %key.key_id, answer = %r, "the edge's probe route gave no clear answer about the AWSCURRENT API key");
                None
            }
            Err(e) => {
                tracing::warn!(secret, key = %key.key_id, error = %e, "the edge could not be probed with the AWSCURRENT API key");
                None
            }
        }
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

    #[test]
    fn the_expiring_tag_names_the_keys_a_ring_gives_a_not_after() {
        let key = |id: &str| WebhookSecret {
            scheme: Scheme::Skytells,
            key_id: id.into(),
            secret: format!("sk-{id}"),
            created_at: None,
        };
        let ring = [
            key("key_2").key_spec(KeySlot::Current, None),
            key("key_1").key_spec(KeySlot::Previous, Some(10)),
            key("key_0").key_spec(KeySlot::Previous, Some(5)),
        ];
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(expiring_in(&ring), ids(&["key_0", "key_1"]));
        let mut d = Described::default();
        assert!(expiring_tagged(&d).is_empty(), "no tag: none");
        d.tags
            .insert(TAG_RING_EXPIRING.into(), " key_1  key_0 ".into());
        assert_eq!(expiring_tagged(&d), ids(&["key_0", "key_1"]));
    }
}
