//! `predictions/{id}/state.json`: the archiver's side of `hookvault_core::state`.
//!
//! Before it acts on a prediction webhook, the archiver reads the prediction's state and
//! applies `hookvault_core::state::transition`. An event that moves the state forward is
//! written with an S3 conditional write: `If-None-Match: *` when there is no state yet,
//! `If-Match: <ETag>` otherwise (S3's conditional writes,
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>: 412
//! Precondition Failed when the condition does not hold, 409 ConditionalRequestConflict
//! when another write raced). On either, the state is read again and the rule applied
//! again, so of two Lambdas racing on one prediction exactly one event wins.
//!
//! A reconciled event (issue 23: fetched from the provider's API by the reconciler) and a
//! signed webhook of the same terminal status corroborate each other
//! (`Transition::Corroborating`): the second archives nothing; when it is the signed one
//! and the reconciled one's work is done (its manifest or `failure.json` is written), it
//! is written as the state's event (status unchanged, `reconciled` false), under the same
//! conditional write, so the state's evidence is the signature whenever there is one.
//! Before that, the reconciled event keeps the state, so its redelivery after a transient
//! failure is `Same` and finishes the archive; the signed event is left at
//! `predictions/{id}/evidence.json` ([`archive::evidence_key`]), and the reconciled
//! event's end adopts it ([`adopt_waiting_evidence`]). Each side writes first and reads
//! the other's write after (the signed event: `evidence.json`, then "is the outcome
//! recorded?"; the reconciled one: its manifest or `failure.json`, then
//! `evidence.json`), and S3 reads are strongly consistent, so whichever comes second sees
//! the first: the signed event becomes the evidence in every order.
//!
//! A prediction archived before `state.json` existed, or whose `state.json` does not
//! parse, has the state its archive implies ([`implied`]): its manifest (`succeeded`), or
//! its `failure.json` (the status it records), set by the raw event they name.

use hookvault_core::archive;
use hookvault_core::envelope::RECONCILED_SUFFIX;
use hookvault_core::event::{Prediction, PredictionStatus};
use hookvault_core::records::{FailureRecord, Manifest};
use hookvault_core::state::{transition_from, Origin, StateRecord, Transition};

use crate::outcome::Transient;
use crate::store::{now_rfc3339, Condition, Put, Store};

/// Largest `state.json` read, bytes (a record is a few hundred).
const MAX_STATE_BYTES: i64 = 64 * 1024;

/// How many times a conditional write that lost a race is tried again with a fresh read.
const RACE_ATTEMPTS: usize = 4;

/// The event whose state is being settled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    /// Its envelope's event id.
    pub event_id: &'a str,
    /// Its body's lowercase hex SHA-256.
    pub body_sha256: &'a str,
    /// The key of its `event.json`.
    pub raw_event: &'a str,
    /// Signed, or fetched by the reconciler.
    pub origin: Origin,
}

/// The state record to write for `ev` (prediction `p`) after `t`: the event itself when it
/// moves the state forward, or when it is a signed event corroborating a reconciled state
/// (it replaces it as the evidence, same status); `None` when nothing is to be written.
/// `now` is the `updated_at`.
pub(crate) fn record_for(
    p: &Prediction,
    ev: &Incoming<'_>,
    t: &Transition,
    now: String,
) -> Option<StateRecord> {
    let write = match t {
        Transition::Advance => true,
        Transition::Corroborating { prefer, .. } => *prefer,
        _ => false,
    };
    write.then(|| StateRecord {
        id: p.id.clone(),
        status: p.status.as_str().to_owned(),
        terminal: p.status.is_terminal(),
        event_id: ev.event_id.to_owned(),
        body_sha256: ev.body_sha256.to_owned(),
        raw_event: Some(ev.raw_event.to_owned()),
        updated_at: now,
        reconciled: ev.origin == Origin::Reconciled,
    })
}

/// The state at `key` and its ETag; `None` when there is none. A record that
/// does not parse, or is over 64 KiB, is logged and treated as absent (it is then replaced
/// under its ETag).
async fn read_state(
    store: &Store,
    key: &str,
) -> Result<Option<(Option<StateRecord>, String)>, Transient> {
    let Some(object) = store
        .get_small(key, MAX_STATE_BYTES, "GetObject (state)")
        .await?
    else {
        return Ok(None);
    };
    let parsed = object
        .bytes
        .as_deref()
        .map(serde_json::from_slice::<StateRecord>);
    let record = match parsed {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            tracing::error!(key, error = %e, "state record unreadable; replacing it");
            None
        }
        None => {
            tracing::error!(key, "state record larger than 64 KiB; replacing it");
            None
        }
    };
    Ok(Some((record, object.etag)))
}

/// The body digest in a raw event's key, `events/{provider}/{sha256}/event.json`.
fn digest_of(raw_event: Option<&str>) -> String {
    raw_event
        .and_then(|k| k.split('/').nth(2))
        .unwrap_or_default()
        .to_owned()
}

/// A small JSON record at `key`, parsed; `None` when absent, over 4 MiB or unreadable.
async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<T>, Transient> {
    let object = store
        .get_small(key, 4 * 1024 * 1024, "GetObject (record)")
        .await?;
    Ok(object
        .and_then(|o| o.bytes)
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// The state the archive of prediction `id` implies when it has no readable
/// `state.json`: its manifest is a `succeeded` state, its `failure.json` the terminal
/// status it records, each set by the raw event it names. `None` for a prediction with
/// neither.
pub(crate) async fn implied(store: &Store, id: &str) -> Result<Option<StateRecord>, Transient> {
    let key = |k: Result<String, archive::LayoutError>| k.map_err(|e| Transient(e.to_string()));
    let state =
        |status: &str, event_id: String, raw_event: Option<String>, at: String| StateRecord {
            id: id.to_owned(),
            status: status.to_owned(),
            terminal: PredictionStatus::from(status).is_terminal(),
            // A manifest or failure written for a reconciled event names its event id.
            reconciled: event_id.ends_with(RECONCILED_SUFFIX),
            event_id,
            body_sha256: digest_of(raw_event.as_deref()),
            raw_event,
            updated_at: at,
        };
    if let Some(m) = read_json::<Manifest>(store, &key(archive::manifest_key(id))?).await? {
        return Ok(Some(state(
            "succeeded",
            m.event_id,
            m.raw_event,
            m.archived_at,
        )));
    }
    if let Some(f) = read_json::<FailureRecord>(store, &key(archive::failure_key(id))?).await? {
        return Ok(Some(state(
            &f.status,
            f.event_id,
            f.raw_event,
            f.recorded_at,
        )));
    }
    Ok(None)
}

/// True when the archive records `p`'s terminal outcome: its manifest (a succeeded
/// prediction) or its `failure.json` (failed, cancelled, or outputs lost).
async fn outcome_recorded(store: &Store, p: &Prediction) -> Result<bool, Transient> {
    let key = |k: Result<String, archive::LayoutError>| k.map_err(|e| Transient(e.to_string()));
    if p.status == PredictionStatus::Succeeded
        && store.exists(&key(archive::manifest_key(&p.id))?).await?
    {
        return Ok(true);
    }
    Ok(store.exists(&key(archive::failure_key(&p.id))?).await?)
}

/// What `predictions/{id}/evidence.json` holds: the signed event waiting to become the
/// state's evidence ([`Incoming`] without its origin, which is always signed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct WaitingEvidence {
    event_id: String,
    body_sha256: String,
    raw_event: String,
}

/// Leaves the signed event `ev` at `predictions/{id}/evidence.json` for the reconciled
/// event's end ([`adopt_waiting_evidence`]). Overwriting is harmless: any signed event of
/// the held status is evidence.
async fn leave_evidence(store: &Store, p: &Prediction, ev: &Incoming<'_>) -> Result<(), Transient> {
    let key = archive::evidence_key(&p.id).map_err(|e| Transient(e.to_string()))?;
    let waiting = WaitingEvidence {
        event_id: ev.event_id.to_owned(),
        body_sha256: ev.body_sha256.to_owned(),
        raw_event: ev.raw_event.to_owned(),
    };
    store
        .put_json(&key, &waiting)
        .await
        .map_err(Transient::from)
}

/// Run by a reconciled event once its work is done (its manifest or `failure.json`
/// written, or found written): a signed event that came while that work was unfinished,
/// and left itself at `predictions/{id}/evidence.json`, becomes the state's evidence now
/// ([`settle`] with it, as signed). Nothing waiting: nothing to do.
pub(crate) async fn adopt_waiting_evidence(store: &Store, p: &Prediction) -> Result<(), Transient> {
    let key = archive::evidence_key(&p.id).map_err(|e| Transient(e.to_string()))?;
    let Some(waiting) = read_json::<WaitingEvidence>(store, &key).await? else {
        return Ok(());
    };
    let t = settle(
        store,
        p,
        Incoming {
            event_id: &waiting.event_id,
            body_sha256: &waiting.body_sha256,
            raw_event: &waiting.raw_event,
            origin: Origin::Signed,
        },
    )
    .await?;
    tracing::info!(prediction = %p.id, event_id = %waiting.event_id, transition = ?t, "the signed event that came during the reconciled archive is the state's evidence");
    Ok(())
}

/// `t` without the preference: a corroborating event that does not replace the state.
fn downgrade(t: Transition) -> Transition {
    match t {
        Transition::Corroborating { held, held_by, .. } => Transition::Corroborating {
            held,
            held_by,
            prefer: false,
        },
        other => other,
    }
}

/// Applies the state rule to `p` arriving as `ev`, writing the new state when the event
/// moves it forward. Returns what the event does; S3 errors are transient.
pub(crate) async fn settle(
    store: &Store,
    p: &Prediction,
    ev: Incoming<'_>,
) -> Result<Transition, Transient> {
    let key = archive::state_key(&p.id).map_err(|e| Transient(e.to_string()))?;
    for _ in 0..RACE_ATTEMPTS {
        let current = read_state(store, &key).await?;
        let implied_state = match current.as_ref().and_then(|(r, _)| r.as_ref()) {
            Some(_) => None,
            None => implied(store, &p.id).await?,
        };
        let held = current
            .as_ref()
            .and_then(|(r, _)| r.as_ref())
            .or(implied_state.as_ref());
        let mut t = transition_from(held, &p.status, ev.body_sha256, ev.origin);
        if let Transition::Corroborating { prefer: true, .. } = &t {
            if !outcome_recorded(store, p).await? {
                // The reconciled event that holds the state has not finished its archive
                // (it is running, or failed and awaits its redelivery): it keeps the state,
                // so that its redelivery resumes the work (`Same`). Replaced now, that
                // redelivery would corroborate and nothing would archive the prediction;
                // acted on now, the prediction could be archived twice at once. This
                // event waits in evidence.json for that end (the module's documentation);
                // read again after that write, an end that came meanwhile is seen here.
                leave_evidence(store, p, &ev).await?;
                if !outcome_recorded(store, p).await? {
                    tracing::info!(prediction = %p.id, "the reconciled event holding the state has not finished; this signed event waits in evidence.json until it has");
                    t = downgrade(t);
                }
            }
        }
        let Some(record) = record_for(p, &ev, &t, now_rfc3339()) else {
            return Ok(t);
        };
        let body = serde_json::to_vec(&record).map_err(|e| Transient(e.to_string()))?;
        let condition = match &current {
            None => Condition::Absent,
            Some((_, etag)) => Condition::Matches(etag),
        };
        match store
            .put_if(
                &key,
                body,
                "application/json",
                condition,
                "PutObject (state)",
            )
            .await?
        {
            Put::Written => return Ok(t),
            Put::ConditionFailed => {
                tracing::info!(prediction = %p.id, "state changed while this event was settled; reading it again");
            }
        }
    }
    Err(Transient(format!(
        "state of {} kept changing over {RACE_ATTEMPTS} conditional writes",
        p.id
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(status: &str) -> Prediction {
        serde_json::from_value(serde_json::json!({"id": "pred_1", "status": status}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn incoming(origin: Origin, sha: &'static str) -> Incoming<'static> {
        Incoming {
            event_id: if origin == Origin::Signed {
                "skytells:pred_1:succeeded"
            } else {
                "skytells:pred_1:succeeded:reconciled"
            },
            body_sha256: sha,
            raw_event: "events/skytells/x/event.json",
            origin,
        }
    }

    #[test]
    fn a_preference_can_be_set_aside() {
        let t = Transition::Corroborating {
            held: "succeeded".into(),
            held_by: "e".into(),
            prefer: true,
        };
        assert_eq!(
            downgrade(t),
            Transition::Corroborating {
                held: "succeeded".into(),
                held_by: "e".into(),
                prefer: false
            }
        );
        assert_eq!(downgrade(Transition::Advance), Transition::Advance);
    }

    /// The archiver's side of the rule, for the pairs of one terminal status: what it
    /// writes as the state (the first event, and a signed one over a reconciled one),
    /// never a second archive.
    #[test]
    fn a_signed_event_replaces_a_reconciled_state_and_nothing_else_is_rewritten() {
        let p = prediction("succeeded");
        let now = || "2026-12-06T00:00:00Z".to_owned();
        // The reconciled event comes first: it is the state, marked reconciled.
        let first = incoming(Origin::Reconciled, "a");
        let t = transition_from(None, &p.status, first.body_sha256, first.origin);
        assert_eq!(t, Transition::Advance);
        let held = record_for(&p, &first, &t, now()).unwrap_or_else(|| panic!("written"));
        assert!(held.reconciled && held.terminal);
        // The signed webhook then: corroborates, and becomes the state's evidence.
        let signed = incoming(Origin::Signed, "b");
        let t = transition_from(Some(&held), &p.status, signed.body_sha256, signed.origin);
        assert!(
            matches!(t, Transition::Corroborating { prefer: true, .. }),
            "{t:?}"
        );
        let replaced = record_for(&p, &signed, &t, now()).unwrap_or_else(|| panic!("written"));
        assert_eq!(
            (
                replaced.event_id.as_str(),
                replaced.reconciled,
                replaced.status.as_str()
            ),
            ("skytells:pred_1:succeeded", false, "succeeded")
        );
        // A late reconciled answer after that writes nothing, nor does a redelivery.
        let late = incoming(Origin::Reconciled, "c");
        let t = transition_from(Some(&replaced), &p.status, late.body_sha256, late.origin);
        assert!(
            matches!(t, Transition::Corroborating { prefer: false, .. }),
            "{t:?}"
        );
        assert_eq!(record_for(&p, &late, &t, now()), None);
        let t = transition_from(Some(&replaced), &p.status, "b", Origin::Signed);
        assert_eq!(t, Transition::Same);
        assert_eq!(record_for(&p, &signed, &t, now()), None);
        // Two signed bodies still conflict, and nothing is written.
        let other = incoming(Origin::Signed, "d");
        let t = transition_from(Some(&replaced), &p.status, other.body_sha256, other.origin);
        assert!(matches!(t, Transition::Conflicting { .. }), "{t:?}");
        assert_eq!(record_for(&p, &other, &t, now()), None);
    }

    #[test]
    fn a_raw_event_key_names_its_digest() {
        assert_eq!(
            digest_of(Some("events/skytells/abc/event.json")),
            "abc".to_owned()
        );
        assert_eq!(digest_of(None), String::new());
    }
}
