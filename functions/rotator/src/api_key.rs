//! Rotation of the provider API key:
//!
//! | step | what it does |
//! |---|---|
//! | `createSecret` | mints a key with the current one, `Idempotency-Key` = the rotation's token (a retry gets the same key back), and stores it with its key id as `AWSPENDING`; nothing if the version already has one |
//! | `setSecret` | nothing: a minted key is live at the provider |
//! | `testSecret` | a cheap authenticated call with the pending key, asked again on 401/403 for up to `API_KEY_ACTIVATION_SECS` (a new key may take a while to become valid) |
//! | `finishSecret` | schedules the key two generations old for revocation once it has been out of `AWSCURRENT` for `API_KEY_GRACE_SECS` (longer than the api function's cache TTL), revokes what is due, moves `AWSCURRENT` |
//!
//! Revocations not yet due wait in the secret's `hookvault:revoke-after` tag; the
//! schedule ([`crate::schedule`]) carries them out.
//!
//! In `general` key mode ([`crate::config::KeyMode`]) the provider signs webhooks with the
//! API key, so each step also keeps the edge's key ring ([`crate::general`]): `setSecret`
//! deploys the pending key to the ring and waits until the edge has converged on it,
//! `testSecret` proves the edge accepts the pending and current keys **before** it calls
//! the provider with the pending key, and `finishSecret` writes the ring with the old key
//! as previous for `WEBHOOK_GRACE_SECS` only **after** `AWSCURRENT` has moved (the api
//! submits with `AWSCURRENT`, so the key that is `AWSCURRENT` never has an expiry at the
//! edge).

use crate::config::KeyMode;
use crate::edge::EdgeSecrets;
use crate::error::RotationError;
use crate::event::Step;
use crate::managed::{ApiKey, Managed};
use crate::provider::ProviderKeys;
use crate::rotator::{kind_changed, Rotator, StepContext};
use crate::store::{Described, CURRENT, PREVIOUS, TAG_REVOKE, TAG_ROTATED_AT};
use crate::Deadline;

/// Runs `step` for a provider API key whose current value is `current`.
pub async fn step<E: EdgeSecrets + Sync, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    step: Step,
    ctx: &StepContext<'_>,
    current: ApiKey,
) -> Result<&'static str, RotationError> {
    if step == Step::Create {
        return r
            .create_pending(ctx, || async {
                let minted = r
                    .provider
                    .mint_key(&current.api_key, ctx.token, ctx.deadline)
                    .await?;
                Ok(Managed::ProviderApiKey(ApiKey {
                    key_id: minted.id,
                    api_key: minted.key,
                    created_at: Some(ctx.now),
                }))
            })
            .await;
    }
    let Managed::ProviderApiKey(pending) = r.need_pending(ctx).await? else {
        return Err(kind_changed(ctx, "provider-api-key"));
    };
    match step {
        Step::Create => Ok("created"),
        Step::Set if r.cfg.key_mode == KeyMode::General => {
            r.general_set(ctx, &current, &pending).await?;
            Ok("the edge accepts the pending key (general key mode: it signs webhooks)")
        }
        Step::Set => Ok("nothing to set: a minted key is live at the provider"),
        Step::Test => {
            if r.cfg.key_mode == KeyMode::General {
                // Before the provider sees the pending key used: a provider that signs
                // with the key the account last used would sign with it from then on.
                r.general_test(&current, &pending, ctx.now).await?;
            }
            // A key just minted may take a while to become valid (as many vendors' keys
            // do): 401/403 is asked again for up to API_KEY_ACTIVATION_SECS.
            let started = std::time::Instant::now();
            let activation = r.cfg.api_key_activation;
            match r
                .provider
                .check_key(&pending.api_key, activation, ctx.deadline)
                .await
            {
                Ok(()) => {
                    tracing::info!(secret = ctx.secret, key = %pending.key_id, waited_ms = started.elapsed().as_millis() as u64, "the pending key works");
                    Ok("the pending key works")
                }
                Err(RotationError::Refused {
                    status,
                    call,
                    detail,
                }) if status == 401 || status == 403 => Err(RotationError::NotActivated {
                    key_id: pending.key_id.clone(),
                    waited_secs: started.elapsed().as_secs(),
                    activation_secs: activation.as_secs(),
                    last: format!("{call} answered HTTP {status}{detail}"),
                }),
                Err(e) => Err(e),
            }
        }
        Step::Finish => {
            // General key mode: the ring that gives the old key its grace is built now and
            // written only once AWSCURRENT has moved (the key in use never has an expiry).
            let ring = match r.cfg.key_mode {
                KeyMode::General => Some(r.general_finish_prepare(ctx, &current, &pending).await?),
                KeyMode::Enterprise => None,
            };
            let mut queue = Revocations::parse(ctx.described);
            if let Some(v) = r.store.value(ctx.secret, None, PREVIOUS).await? {
                if let Ok(Managed::ProviderApiKey(old)) = Managed::parse(&v, ctx.secret, PREVIOUS) {
                    // It stopped being current at the last finishSecret.
                    let since = ctx.described.tag_secs(TAG_ROTATED_AT).unwrap_or(ctx.now);
                    queue.add(&old.key_id, since + r.cfg.api_key_grace_secs);
                }
            }
            let keep = [current.key_id.as_str(), pending.key_id.as_str()];
            // Failures stay queued for the schedule: the new key must not wait on an old one.
            revoke_due(
                r,
                ctx.secret,
                &pending.api_key,
                &mut queue,
                &keep,
                ctx.now,
                ctx.deadline,
            )
            .await?;
            r.store
                .tag(ctx.secret, TAG_ROTATED_AT, &ctx.now.to_string())
                .await?;
            r.store
                .promote(ctx.secret, ctx.token, ctx.described.version_with(CURRENT))
                .await?;
            tracing::info!(secret = ctx.secret, current = %pending.key_id, previous = %current.key_id, "rotation finished");
            if let Some(ring) = ring {
                // The rotation is done, and a retried step would find it so: a failure
                // here leaves the old key in the ring without expiry, which the schedule
                // takes out once hookvault:ring-retire-at has passed.
                if let Err(e) = r.general_finish(ctx, &ring, &current, &pending).await {
                    tracing::error!(secret = ctx.secret, error = %e, "rotation finished, but the edge's key ring was not written: the old API key stays accepted without expiry until the schedule removes it after its grace");
                    return Ok("finished; the edge's key ring was not written (the old key stays accepted until the schedule removes it after its grace)");
                }
            }
            Ok("finished")
        }
    }
}

/// Keys waiting for revocation: `key_id@unix_seconds`, space-separated, in a tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// `(key id, not before)`.
    pub entries: Vec<(String, i64)>,
    original: String,
}

impl Revocations {
    /// From the secret's tag.
    pub fn parse(d: &Described) -> Self {
        let original = d.tags.get(TAG_REVOKE).cloned().unwrap_or_default();
        let entries = original
            .split_whitespace()
            .filter_map(|e| {
                let (id, t) = e.rsplit_once('@')?;
                Some((id.to_owned(), t.parse().ok()?))
            })
            .collect();
        Revocations { entries, original }
    }

    /// Adds a key (once).
    pub fn add(&mut self, key_id: &str, not_before: i64) {
        if !self.entries.iter().any(|(k, _)| k == key_id) {
            self.entries.push((key_id.to_owned(), not_before));
        }
    }

    /// The tag's new value.
    pub fn render(&self) -> String {
        self.entries
            .iter()
            .map(|(k, t)| format!("{k}@{t}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// True when the tag must be rewritten.
    pub fn changed(&self) -> bool {
        self.render() != self.original
    }
}

/// What [`revoke_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Keys revoked now.
    pub revoked: usize,
    /// Keys whose revocation failed and stays queued (the provider or the network
    /// failed; the schedule tries again), as `key_id: reason`.
    pub retry_later: Vec<String>,
}

/// Revokes the keys of `queue` that are due (never one in `keep`), authenticated by
/// `auth`, and writes back what is left. A failed revocation never fails the caller: a
/// 4xx other than 429 means the provider will never revoke that id (unknown, malformed,
/// the operator's placeholder) and drops it; anything else keeps it queued.
pub async fn revoke_due<E, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    secret: &str,
    auth: &str,
    queue: &mut Revocations,
    keep: &[&str],
    now: i64,
    deadline: Deadline,
) -> Result<Revoked, RotationError> {
    let mut done = Revoked::default();
    let mut left = Vec::new();
    for (key_id, not_before) in std::mem::take(&mut queue.entries) {
        if keep.contains(&key_id.as_str()) {
            continue;
        }
        if not_before > now {
            left.push((key_id, not_before));
            continue;
        }
        match r.provider.revoke_key(auth, &key_id, deadline).await {
            Ok(()) => {
                tracing::info!(secret, key = %key_id, "old API key revoked");
                done.revoked += 1;
            }
            Err(RotationError::Refused { status, .. })
                if (400..500).contains(&status) && status != 429 =>
            {
                tracing::error!(secret, key = %key_id, status, "the provider will not revoke this key id: dropped from the queue; revoke it by hand if it exists");
            }
            Err(e) => {
                tracing::error!(secret, key = %key_id, error = %e, "revocation failed: kept for the next scheduled run");
                done.retry_later.push(format!("{key_id}: {e}"));
                left.push((key_id, not_before));
            }
        }
    }
    queue.entries = left;
    if queue.changed() {
        r.store.tag(secret, TAG_REVOKE, &queue.render()).await?;
    }
    Ok(done)
}

/// The schedule's part: revokes what is due for an API key secret.
pub async fn revoke_deferred<E: EdgeSecrets + Sync, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    d: &Described,
    now: i64,
    deadline: Deadline,
) -> Result<Revoked, RotationError> {
    let mut queue = Revocations::parse(d);
    if queue.entries.is_empty() {
        return Ok(Revoked::default());
    }
    let Managed::ProviderApiKey(current) = r.current(&d.arn).await? else {
        return Ok(Revoked::default());
    };
    let pending = match d.version_with(crate::store::PENDING) {
        Some(v) if Some(v) != d.version_with(CURRENT) => r
            .store
            .value(&d.arn, Some(v), crate::store::PENDING)
            .await?
            .and_then(|v| match Managed::parse(&v, &d.arn, "AWSPENDING") {
                Ok(Managed::ProviderApiKey(k)) => Some(k.key_id),
                _ => None,
            }),
        _ => None,
    };
    let mut keep = vec![current.key_id.as_str()];
    if let Some(p) = pending.as_deref() {
        keep.push(p);
    }
    revoke_due(
        r,
        &d.arn,
        &current.api_key,
        &mut queue,
        &keep,
        now,
        deadline,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_tag_round_trips() {
        let mut d = Described::default();
        d.tags
            .insert(TAG_REVOKE.into(), "key_1@100 bad key_2@200".into());
        let mut q = Revocations::parse(&d);
        assert_eq!(
            q.entries,
            vec![("key_1".into(), 100), ("key_2".into(), 200)]
        );
        assert!(q.changed(), "the malformed entry is dropped on write");
        q.add("key_1", 5);
        q.add("key_3", 300);
        assert_eq!(q.render(), "key_1@100 key_2@200 key_3@300");
    }
}
