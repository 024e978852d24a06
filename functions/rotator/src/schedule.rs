//! The EventBridge schedule (daily in the template). For each secret of
//! `MANAGED_SECRET_IDS`:
//!
//! 1. revokes old API keys whose grace has passed; in `general` key mode, takes a
//!    retired API key out of the edge's key ring once its grace has passed, writes the
//!    ring again when the `AWSCURRENT` API key may have an expiry in it or the edge
//!    refuses it ([`crate::general`]: the key in use is always in the ring without
//!    expiry), and starts no rotation of a webhook-signing secret (the provider signs
//!    with the API key, so that secret is not used);
//! 2. reports a rotation **stuck** with `AWSPENDING` on a version that is not
//!    `AWSCURRENT` for longer than `ROTATION_STUCK_AFTER_SECS` (the invocation then fails,
//!    so the rotator's error alarm fires), with how to resume or cancel it; a younger one
//!    is a rotation in progress and left alone;
//! 3. calls `RotateSecret` when the last rotation (or the creation) is
//!    `ROTATION_INTERVAL_DAYS` old. Secrets Manager's own `RotationSchedule` normally gets
//!    there first; this is the safety net and what makes the interval a single setting.

use serde_json::json;

use crate::config::KeyMode;
use crate::edge::EdgeSecrets;
use crate::error::RotationError;
use crate::managed::Managed;
use crate::provider::ProviderKeys;
use crate::rotator::Rotator;
use crate::store::{CURRENT, PENDING};
use crate::Deadline;

/// Looks after every managed secret; fails if any is stuck or could not be checked.
pub async fn run<E: EdgeSecrets + Sync, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    deadline: Deadline,
) -> Result<serde_json::Value, RotationError> {
    let mut report = Vec::new();
    let mut problems = Vec::new();
    for id in &r.cfg.managed_secret_ids {
        match one(r, id, crate::unix_now(), deadline).await {
            Ok(action) => {
                tracing::info!(secret = %id, action = %action, "scheduled check");
                report.push(json!({"secret": id, "action": action}));
            }
            Err(e) => {
                tracing::error!(secret = %id, error = %e, "scheduled check failed");
                problems.push(format!("{id}: {e}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(json!({ "secrets": report }))
    } else {
        Err(RotationError::Stuck(problems.join("; ")))
    }
}

async fn one<E: EdgeSecrets + Sync, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    id: &str,
    now: i64,
    deadline: Deadline,
) -> Result<String, RotationError> {
    let d = r.store.describe(id).await?;
    let mut done = Vec::new();
    let revocations = crate::api_key::revoke_deferred(r, &d, now, deadline).await?;
    if revocations.revoked > 0 {
        done.push(format!("{} old API key(s) revoked", revocations.revoked));
    }
    // A failed revocation is reported at the end: the checks below still run.
    let revocation_failure = (!revocations.retry_later.is_empty()).then(|| {
        format!(
            "revocation of old API keys failed (kept for the next run): {}",
            revocations.retry_later.join("; ")
        )
    });
    if r.cfg.key_mode == KeyMode::General {
        if let Some(ring) = r.general_keep_ring(&d, now, deadline).await? {
            done.push(ring);
        }
        if let Managed::WebhookSigning(_) = r.current(&d.arn).await? {
            done.push(format!(
                "not rotated: {}={} (webhooks are signed with the provider API key, whose rotation keeps the edge's key ring)",
                KeyMode::variable(&r.cfg.edge_provider),
                r.cfg.key_mode
            ));
            return Ok(done.join("; "));
        }
    }
    let action = rotation_check(r, &d, now).await?;
    done.push(action);
    match revocation_failure {
        Some(f) => Err(RotationError::Stuck(format!("{}; {f}", done.join("; ")))),
        None => Ok(done.join("; ")),
    }
}

/// Stuck, in progress, not enabled, due or not: what the schedule does about rotation.
async fn rotation_check<E: EdgeSecrets + Sync, P: ProviderKeys + Sync>(
    r: &Rotator<E, P>,
    d: &crate::store::Described,
    now: i64,
) -> Result<String, RotationError> {
    let current = d.version_with(CURRENT);
    if let Some(pending) = d.version_with(PENDING).filter(|p| Some(*p) != current) {
        let created = r.store.version_dates(&d.arn).await?.get(pending).copied();
        let age = created.map(|c| now - c);
        if age.is_none_or(|a| a >= r.cfg.stuck_after_secs) {
            return Err(RotationError::Stuck(format!(
                "rotation stuck: AWSPENDING is on version {pending}, not on the AWSCURRENT version {}, for {} seconds. \
                 Resume it by invoking the rotator with {{\"SecretId\":\"{}\",\"ClientRequestToken\":\"{pending}\",\"Step\":…}} \
                 for createSecret, setSecret, testSecret and finishSecret in turn (each step is safe to repeat), \
                 or cancel it with `aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSPENDING --remove-from-version-id {pending}`",
                current.unwrap_or("(none)"),
                age.map_or_else(|| "an unknown number of".to_owned(), |a| a.to_string()),
                d.arn,
                d.arn,
            )));
        }
        return Ok(format!("rotation to version {pending} in progress"));
    }
    if !d.rotation_enabled {
        return Ok("rotation is not enabled: nothing started".into());
    }
    let since = d.last_rotated.or(d.created).unwrap_or(0);
    let due_at = since + r.cfg.rotation_interval_days * 86_400;
    if due_at <= now {
        let version = r.store.rotate(&d.arn).await?;
        Ok(format!(
            "rotation started (version {})",
            version.as_deref().unwrap_or("?")
        ))
    } else {
        Ok(format!("next rotation due in {} s", due_at - now))
    }
}
