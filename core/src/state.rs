//! One truth per prediction: the rule that its state never goes backwards.
//!
//! The provider sends a webhook on **every** status change and documents no ordering, so
//! `started` can arrive after `succeeded`, and two terminal events can contradict each
//! other (`failed` after `succeeded`, two different `succeeded` bodies). The archive keeps
//! every event's raw bytes, and one state per prediction in
//! `predictions/{id}/state.json` ([`crate::archive::state_key`], a [`StateRecord`]):
//!
//! * the **first terminal state wins**: once a `succeeded`, `failed` or `cancelled` event
//!   holds the state, a different terminal event is [`Transition::Conflicting`] (kept raw,
//!   flagged in the event log, nothing archived) and a non-terminal one is
//!   [`Transition::Stale`];
//! * before that, non-terminal states only move forward (`queued`/`pending` → `starting`
//!   → `started` → `processing`), so a late `starting` does not hide `processing`;
//! * the same event again (a redelivery, a replay: the same body digest) is
//!   [`Transition::Same`], and its work resumes where it stopped (idempotent);
//! * **a terminal status reached both ways** (issue 23, "one truth per prediction"): the
//!   reconciler fetches a prediction whose webhook did not come from the provider's API
//!   and queues it as a *reconciled* event ([`Origin::Reconciled`],
//!   [`crate::envelope::Reconciled`]); when the signed webhook of the same status comes
//!   after all (or before), the two bodies differ (the API's answer is not the webhook's
//!   bytes) but they do not contradict each other. The second is
//!   [`Transition::Corroborating`]: its raw event is kept and logged, nothing is archived
//!   again, no second notification is sent. The state prefers the signed event as
//!   evidence: a signed event that corroborates a reconciled state replaces it as the
//!   state's event ([`Transition::Corroborating::prefer`]; the archiver does so once the
//!   reconciled event's archive is written, so that its redelivery after a transient
//!   failure still finishes it), a reconciled one never replaces a signed one. Two reconciled answers of one status corroborate each other
//!   too (two checks raced). Two *signed* events with different terminal bodies stay
//!   [`Transition::Conflicting`], and so does any pair of different terminal statuses.
//!
//! The archiver applies [`transition`] and writes the record with an S3 conditional write
//! (`If-None-Match: *` to create it, `If-Match: <ETag>` to advance it), so two Lambdas that
//! race on one prediction cannot both win.

use serde::{Deserialize, Serialize};

use crate::event::PredictionStatus;

/// `predictions/{id}/state.json`: where a prediction stands, and which event put it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The prediction's id.
    pub id: String,
    /// Its status, as [`PredictionStatus::as_str`] writes it.
    pub status: String,
    /// True for `succeeded`, `failed`, `cancelled`.
    pub terminal: bool,
    /// The event that set it: its envelope's event id.
    pub event_id: String,
    /// That event's body digest (lowercase hex SHA-256), which tells a redelivery of it
    /// from another event.
    pub body_sha256: String,
    /// The key of that event's `event.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_event: Option<String>,
    /// When it was written, RFC 3339.
    pub updated_at: String,
    /// True when the event that set it was fetched by the reconciler, not received
    /// signed ([`Origin::Reconciled`]); absent (false) in records written before issue 23.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconciled: bool,
}

/// How an event reached hookvault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A webhook whose signature the edge verified (every envelope without a
    /// `reconciled` member).
    Signed,
    /// Fetched from the provider's API by the reconciler (the envelope's `reconciled`
    /// member, [`crate::envelope::Reconciled`]).
    Reconciled,
}

/// What an incoming event does to a prediction's state ([`transition`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The event moves the state forward (or is the first): write it, then act on it.
    Advance,
    /// The event is the one that set the state (same body): act on it again, idempotently.
    Same,
    /// A non-terminal event older than the state held: recorded, nothing else.
    Stale {
        /// The status held.
        held: String,
    },
    /// A terminal event of the status held, reached the other way (a signed webhook after
    /// a reconciled event, or the reverse, or two reconciled answers): kept raw and
    /// logged, nothing archived again.
    Corroborating {
        /// The status held (and the event's).
        held: String,
        /// The event id that holds it.
        held_by: String,
        /// True when the event is signed and the state's is reconciled: the event becomes
        /// the state's evidence (the archiver writes the state with it, status unchanged).
        prefer: bool,
    },
    /// A terminal event that contradicts the terminal state held (another status, or
    /// the same status with another body, both signed): kept raw and flagged, nothing
    /// archived.
    Conflicting {
        /// The status held.
        held: String,
        /// The event id that holds it.
        held_by: String,
    },
}

/// A status's place in the order non-terminal states move in; terminal states rank above
/// all, and a status this version does not know ranks with `processing` (it may follow
/// any known start, and is never terminal).
pub fn rank(status: &PredictionStatus) -> u8 {
    match status {
        PredictionStatus::Queued | PredictionStatus::Pending => 0,
        PredictionStatus::Starting => 1,
        PredictionStatus::Started => 2,
        PredictionStatus::Processing | PredictionStatus::Other(_) => 3,
        PredictionStatus::Succeeded | PredictionStatus::Failed | PredictionStatus::Cancelled => 4,
    }
}

/// What a signed event with `status` and body digest `body_sha256` does to the state
/// `held` (`None`: no event recorded yet): [`transition_from`] with [`Origin::Signed`].
pub fn transition(
    held: Option<&StateRecord>,
    status: &PredictionStatus,
    body_sha256: &str,
) -> Transition {
    transition_from(held, status, body_sha256, Origin::Signed)
}

/// What an event with `status`, body digest `body_sha256` and `origin` does to the state
/// `held` (`None`: no event recorded yet). The module's documentation has the rule.
pub fn transition_from(
    held: Option<&StateRecord>,
    status: &PredictionStatus,
    body_sha256: &str,
    origin: Origin,
) -> Transition {
    let Some(held) = held else {
        return Transition::Advance;
    };
    // A signed event over a reconciled state of its status is preferred as evidence,
    // even with the very same bytes.
    let prefer = held.reconciled && origin == Origin::Signed;
    let same_terminal = held.terminal && status.is_terminal() && held.status == status.as_str();
    if held.body_sha256 == body_sha256 && !(prefer && same_terminal) {
        return Transition::Same;
    }
    let held_status = PredictionStatus::from(held.status.as_str());
    match (held.terminal, status.is_terminal()) {
        (true, true) if same_terminal && (held.reconciled || origin == Origin::Reconciled) => {
            Transition::Corroborating {
                held: held.status.clone(),
                held_by: held.event_id.clone(),
                prefer,
            }
        }
        (true, true) => Transition::Conflicting {
            held: held.status.clone(),
            held_by: held.event_id.clone(),
        },
        (true, false) => Transition::Stale {
            held: held.status.clone(),
        },
        (false, true) => Transition::Advance,
        (false, false) if rank(status) > rank(&held_status) => Transition::Advance,
        (false, false) => Transition::Stale {
            held: held.status.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(status: &str, sha: &str) -> StateRecord {
        StateRecord {
            id: "p".into(),
            status: status.into(),
            terminal: PredictionStatus::from(status).is_terminal(),
            event_id: format!("skytells:p:{status}"),
            body_sha256: sha.into(),
            raw_event: None,
            updated_at: "2026-12-05T00:00:00Z".into(),
            reconciled: false,
        }
    }

    /// Runs `events` (status, digest) in order, as the archiver does, and returns each
    /// transition and the state left at the end.
    fn run(events: &[(&str, &str)]) -> (Vec<Transition>, Option<StateRecord>) {
        let mut state: Option<StateRecord> = None;
        let mut out = Vec::new();
        for (status, sha) in events {
            let st = PredictionStatus::from(*status);
            let t = transition(state.as_ref(), &st, sha);
            if t == Transition::Advance {
                state = Some(held(status, sha));
            }
            out.push(t);
        }
        (out, state)
    }

    #[test]
    fn started_after_succeeded_is_stale_and_succeeded_stays() {
        let (t, state) = run(&[("succeeded", "a"), ("started", "b")]);
        assert_eq!(
            t[1],
            Transition::Stale {
                held: "succeeded".into()
            }
        );
        assert_eq!(state.unwrap().status, "succeeded");
        for late in [
            "queued",
            "pending",
            "starting",
            "started",
            "processing",
            "paused",
        ] {
            let (t, state) = run(&[("failed", "a"), (late, "b")]);
            assert_eq!(
                t[1],
                Transition::Stale {
                    held: "failed".into()
                },
                "{late}"
            );
            assert_eq!(state.unwrap().status, "failed");
        }
    }

    #[test]
    fn the_first_terminal_state_wins() {
        for (first, second) in [
            ("succeeded", "failed"),
            ("succeeded", "cancelled"),
            ("failed", "succeeded"),
            ("cancelled", "succeeded"),
            ("succeeded", "succeeded"),
        ] {
            let (t, state) = run(&[(first, "a"), (second, "b")]);
            assert_eq!(
                t,
                vec![
                    Transition::Advance,
                    Transition::Conflicting {
                        held: PredictionStatus::from(first).as_str().into(),
                        held_by: format!("skytells:p:{first}")
                    }
                ],
                "{first} then {second}"
            );
            assert_eq!(state.unwrap().body_sha256, "a");
        }
    }

    #[test]
    fn a_redelivery_of_the_holding_event_is_the_same() {
        let (t, _) = run(&[("processing", "x"), ("succeeded", "a"), ("succeeded", "a")]);
        assert_eq!(
            t,
            vec![Transition::Advance, Transition::Advance, Transition::Same]
        );
        let (t, _) = run(&[("started", "a"), ("started", "a")]);
        assert_eq!(t[1], Transition::Same);
    }

    #[test]
    fn non_terminal_states_only_move_forward() {
        let (t, state) = run(&[
            ("queued", "1"),
            ("starting", "2"),
            ("processing", "3"),
            ("started", "4"),
            ("pending", "5"),
            ("succeeded", "6"),
        ]);
        assert_eq!(
            t,
            vec![
                Transition::Advance,
                Transition::Advance,
                Transition::Advance,
                Transition::Stale {
                    held: "processing".into()
                },
                Transition::Stale {
                    held: "processing".into()
                },
                Transition::Advance,
            ]
        );
        assert_eq!(state.unwrap().status, "succeeded");
        // A terminal event moves any non-terminal state, whatever came before.
        let (t, _) = run(&[("processing", "1"), ("cancelled", "2")]);
        assert_eq!(t[1], Transition::Advance);
        // Two different bodies of one non-terminal status: the first holds.
        let (t, _) = run(&[("started", "1"), ("started", "2")]);
        assert_eq!(
            t[1],
            Transition::Stale {
                held: "started".into()
            }
        );
    }

    fn held_by(status: &str, sha: &str, origin: Origin) -> StateRecord {
        StateRecord {
            reconciled: origin == Origin::Reconciled,
            ..held(status, sha)
        }
    }

    /// Every pair of a terminal state held and a terminal event: (held origin, event
    /// origin) × (same status, another) × (same body, another).
    #[test]
    fn a_terminal_status_reached_both_ways_corroborates_and_prefers_the_signed_event() {
        use Origin::{Reconciled as R, Signed as S};
        let corroborating = |prefer| Transition::Corroborating {
            held: "succeeded".into(),
            held_by: "skytells:p:succeeded".into(),
            prefer,
        };
        let conflicting = |held: &str| Transition::Conflicting {
            held: held.into(),
            held_by: format!("skytells:p:{held}"),
        };
        for (held_origin, origin, status, sha, expected) in [
            // Same status, another body.
            (R, S, "succeeded", "b", corroborating(true)),
            (S, R, "succeeded", "b", corroborating(false)),
            (R, R, "succeeded", "b", corroborating(false)),
            (S, S, "succeeded", "b", conflicting("succeeded")),
            // Same status, same bytes: a redelivery, unless a signed one meets a
            // reconciled state (then it is preferred).
            (R, S, "succeeded", "a", corroborating(true)),
            (S, R, "succeeded", "a", Transition::Same),
            (R, R, "succeeded", "a", Transition::Same),
            (S, S, "succeeded", "a", Transition::Same),
            // Another terminal status contradicts, whichever way either came.
            (R, S, "failed", "b", conflicting("succeeded")),
            (S, R, "failed", "b", conflicting("succeeded")),
            (R, R, "cancelled", "b", conflicting("succeeded")),
            (S, S, "failed", "b", conflicting("succeeded")),
        ] {
            let state = held_by("succeeded", "a", held_origin);
            let t = transition_from(Some(&state), &PredictionStatus::from(status), sha, origin);
            assert_eq!(
                t, expected,
                "held {held_origin:?} succeeded/a, then {origin:?} {status}/{sha}"
            );
        }
        // Failed and cancelled corroborate the same way.
        for status in ["failed", "cancelled"] {
            let state = held_by(status, "a", R);
            assert!(matches!(
                transition_from(Some(&state), &PredictionStatus::from(status), "b", S),
                Transition::Corroborating { prefer: true, .. }
            ));
        }
        // A reconciled terminal event moves a non-terminal state like any other, and a
        // non-terminal event after a reconciled terminal state is stale.
        let started = held_by("processing", "x", S);
        assert_eq!(
            transition_from(Some(&started), &PredictionStatus::Succeeded, "a", R),
            Transition::Advance
        );
        assert_eq!(
            transition_from(None, &PredictionStatus::Succeeded, "a", R),
            Transition::Advance
        );
        let done = held_by("succeeded", "a", R);
        assert_eq!(
            transition_from(Some(&done), &PredictionStatus::Started, "y", S),
            Transition::Stale {
                held: "succeeded".into()
            }
        );
        // `transition` is the signed rule.
        assert_eq!(
            transition(Some(&done), &PredictionStatus::Succeeded, "b"),
            corroborating(true)
        );
    }

    #[test]
    fn the_reconciled_flag_is_optional_on_the_wire() {
        let old = r#"{"id":"p","status":"succeeded","terminal":true,"event_id":"e","body_sha256":"a","updated_at":"t"}"#;
        let r: StateRecord = serde_json::from_str(old).unwrap();
        assert!(!r.reconciled);
        assert!(!serde_json::to_string(&r).unwrap().contains("reconciled"));
        let r = StateRecord {
            reconciled: true,
            ..r
        };
        assert!(serde_json::to_string(&r)
            .unwrap()
            .contains(r#""reconciled":true"#));
    }
}
