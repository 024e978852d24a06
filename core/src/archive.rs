//! The archive's S3 key layout.
//!
//! ```text
//! predictions/{id}/{index}{ext}     one object per output, ext from the URL path, .bin if none
//! predictions/{id}/manifest.json    written last: its presence means "archived"
//! predictions/{id}/failure.json     a failed or cancelled prediction, or an expired output
//! predictions/{id}/output.json      the prediction's `output` value, verbatim
//! predictions/{id}/submission.json  the api's ledger entry: hookvault submitted it
//! predictions/{id}/stalled.json     the reconciler gave up waiting for a terminal status
//! predictions/{id}/check.json       the reconciler's chain of checks: the next one expected
//! events/{provider}/{sha256}/body        the exact signed bytes of an event
//! events/{provider}/{sha256}/event.json  its evidence (written after the body)
//! raw/{sha256}                      a body too large for SQS, written by the edge (claim
//!                                   check); expires by a lifecycle rule once archived
//! rejected/{message id}.json        a queue message that could not be read
//! index/log/{YYYY-MM-DD}/{HH}/{provider}/{outcome}/{sha256}.json
//!                                   the event log: one JSON line per event and outcome,
//!                                   dated by the edge's receipt (UTC)
//! index/id/{sha256(event id)}/{provider}/{sha256}.json
//!                                   the same entry, found by event id
//! ```
//! Ids and URLs come from the network: an id that is not a plain token is refused (no
//! `/`, no `..`, no control characters), and an extension is at most 10 ASCII
//! alphanumerics, so no key can escape its prediction's folder.

/// The folder every prediction's objects live under.
pub const PREDICTIONS_PREFIX: &str = "predictions/";
/// The folder unreadable queue messages are kept under.
pub const REJECTED_PREFIX: &str = "rejected/";
/// The folder of every event's raw bytes and evidence.
pub const EVENTS_PREFIX: &str = "events/";
/// The folder the edge writes claim-checked bodies to (its IAM user may write only here).
pub const CLAIM_CHECK_PREFIX: &str = "raw/";
/// The folder of the event log ([`index_log_key`], [`index_id_key`]); its retention is the
/// template's `EventLogRetentionDays`.
pub const INDEX_PREFIX: &str = "index/";
/// The event log by date and hour.
pub const INDEX_LOG_PREFIX: &str = "index/log/";
/// The event log by event id.
pub const INDEX_ID_PREFIX: &str = "index/id/";
/// The event log's entries by prediction id: `index/prediction/{sha256(id)}/…`.
pub const INDEX_PREDICTION_PREFIX: &str = "index/prediction/";
/// The provider segment of the log entries of rejected messages (unreadable: no provider).
/// Not a name a provider can have: the edge's provider names are tokens without `~`.
pub const REJECTED_PROVIDER: &str = "~rejected";
/// The longest prediction id accepted.
pub const MAX_ID_LEN: usize = 128;

/// Why a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The prediction id is not a safe token.
    #[error("prediction id is not 1 to 128 characters of [A-Za-z0-9_.-] starting with a letter or digit")]
    BadId,
}

/// Checks that a prediction id is safe to use as a folder name.
pub fn check_id(id: &str) -> Result<&str, LayoutError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    if ok {
        Ok(id)
    } else {
        Err(LayoutError::BadId)
    }
}

/// `predictions/{id}/`.
pub fn prediction_prefix(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{PREDICTIONS_PREFIX}{}/", check_id(id)?))
}

/// `predictions/{id}/{index}{ext}`.
pub fn output_key(id: &str, index: usize, url: &str) -> Result<String, LayoutError> {
    Ok(format!(
        "{}{index}{}",
        prediction_prefix(id)?,
        extension(url)
    ))
}

/// `predictions/{id}/manifest.json`.
pub fn manifest_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}manifest.json", prediction_prefix(id)?))
}

/// `predictions/{id}/failure.json`.
pub fn failure_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}failure.json", prediction_prefix(id)?))
}

/// `predictions/{id}/state.json`: where the prediction stands ([`crate::state`]).
pub fn state_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}state.json", prediction_prefix(id)?))
}

/// `predictions/{id}/submission.json`: the api's ledger entry for a prediction it
/// submitted ([`crate::records::SubmissionRecord`], issue 23).
pub fn submission_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}submission.json", prediction_prefix(id)?))
}

/// `predictions/{id}/stalled.json`: the reconciler's record of a prediction that never
/// became terminal within `CHECK_MAX_AGE_SECS` ([`crate::records::StalledRecord`]).
pub fn stalled_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}stalled.json", prediction_prefix(id)?))
}

/// `predictions/{id}/check.json`: the reconciler's record of a prediction's one chain of
/// checks, the next attempt expected and when ([`crate::reconcile::CheckChain`]), written
/// with S3's conditional writes so that a duplicated check cannot start a second chain.
pub fn check_chain_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}check.json", prediction_prefix(id)?))
}

/// `predictions/{id}/evidence.json`: a signed event that corroborates a reconciled state
/// whose archive had not finished when it came ([`crate::state`], issue 23), left there
/// by the archiver so that the reconciled event's end makes it the state's evidence
/// (its event id, body digest and `event.json` key; the raw event itself is under
/// `events/`).
pub fn evidence_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}evidence.json", prediction_prefix(id)?))
}

/// `predictions/{id}/output.json`.
pub fn output_value_key(id: &str) -> Result<String, LayoutError> {
    Ok(format!("{}output.json", prediction_prefix(id)?))
}

/// `predictions/{id}/{index}{ext}` for a file whose extension is known (a `data:` URI's,
/// from its media type): `ext` is used only if it is a dot and 1 to 10 ASCII
/// alphanumerics, else `.bin`.
pub fn output_key_with_extension(id: &str, index: usize, ext: &str) -> Result<String, LayoutError> {
    let ok = ext.len() >= 2
        && ext.len() <= 11
        && ext.starts_with('.')
        && ext[1..].bytes().all(|c| c.is_ascii_alphanumeric());
    Ok(format!(
        "{}{index}{}",
        prediction_prefix(id)?,
        if ok { ext } else { ".bin" }
    ))
}

/// `s` cut to [`MAX_ID_LEN`] characters with anything but `[A-Za-z0-9_-]` replaced by
/// `_`; `unnamed` if empty.
fn safe_segment(s: &str) -> String {
    let safe: String = s
        .chars()
        .take(MAX_ID_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "unnamed".to_owned()
    } else {
        safe
    }
}

/// `rejected/{message id}.json`, with anything but `[A-Za-z0-9_-]` in the id replaced.
pub fn rejected_key(message_id: &str) -> String {
    format!("{REJECTED_PREFIX}{}.json", safe_segment(message_id))
}

/// `events/{provider}/{body sha256}/`: the folder of one event's raw bytes and evidence.
/// Content addressed: a sender's retry of the same bytes lands on the same keys. The
/// provider is made safe as [`rejected_key`] does; the digest must be 64 hex digits (it
/// is lowercased), else it is hashed again.
pub fn event_prefix(provider: &str, body_sha256: &str) -> String {
    format!(
        "{EVENTS_PREFIX}{}/{}/",
        safe_segment(provider),
        digest_segment(body_sha256)
    )
}

/// `events/{provider}/{sha256}/body`: the exact signed bytes.
pub fn event_body_key(provider: &str, body_sha256: &str) -> String {
    format!("{}body", event_prefix(provider, body_sha256))
}

/// `events/{provider}/{sha256}/event.json`: the evidence, written after the body.
pub fn event_record_key(provider: &str, body_sha256: &str) -> String {
    format!("{}event.json", event_prefix(provider, body_sha256))
}

/// `raw/{sha256}`: where the edge writes a body too large for one SQS message.
pub fn claim_check_key(body_sha256: &str) -> String {
    format!("{CLAIM_CHECK_PREFIX}{body_sha256}")
}

/// `index/log/{YYYY-MM-DD}/{HH}/`: the log's folder for the UTC hour that holds
/// `at_ms` (Unix milliseconds).
pub fn index_hour_prefix(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let (y, m, d) = crate::time::civil_from_days(secs.div_euclid(86_400));
    let h = secs.rem_euclid(86_400) / 3600;
    format!("{INDEX_LOG_PREFIX}{y:04}-{m:02}-{d:02}/{h:02}/")
}

/// The provider's segment in the log's keys: [`REJECTED_PROVIDER`] kept as it is, any other
/// name made safe as [`rejected_key`] does.
fn provider_segment(provider: &str) -> String {
    if provider == REJECTED_PROVIDER {
        provider.to_owned()
    } else {
        safe_segment(provider)
    }
}

/// A body digest as a key segment: 64 lowercase hex digits, else made safe.
fn digest_segment(body_sha256: &str) -> String {
    if body_sha256.len() == 64 && body_sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
        body_sha256.to_ascii_lowercase()
    } else {
        safe_segment(body_sha256)
    }
}

/// `index/log/{YYYY-MM-DD}/{HH}/{provider}/{outcome}/{sha256}.json`: one event's entry in
/// the log, for the hour the edge received it. The outcome is in the key, so listing an
/// hour filters by provider and outcome without reading an object; an event archived
/// after a failure has both entries, and [`crate::records::IndexOutcome`]'s order says
/// which counts.
pub fn index_log_key(
    received_at_ms: i64,
    provider: &str,
    outcome: crate::records::IndexOutcome,
    body_sha256: &str,
) -> String {
    format!(
        "{}{}/{}/{}.json",
        index_hour_prefix(received_at_ms),
        provider_segment(provider),
        outcome.as_str(),
        digest_segment(body_sha256)
    )
}

/// What a log key names: (provider, outcome, body sha256). `None` for a key that is not
/// one [`index_log_key`] writes.
pub fn parse_index_log_key(key: &str) -> Option<(&str, crate::records::IndexOutcome, &str)> {
    let rest = key.strip_prefix(INDEX_LOG_PREFIX)?;
    let mut parts = rest.split('/');
    let (_date, _hour) = (parts.next()?, parts.next()?);
    let provider = parts.next()?;
    let outcome = crate::records::IndexOutcome::parse(parts.next()?)?;
    let sha = parts.next()?.strip_suffix(".json")?;
    if parts.next().is_some() {
        return None;
    }
    Some((provider, outcome, sha))
}

/// `index/id/{sha256(event id)}/`: the folder of every entry of one event id (one per
/// provider and body; the id is hashed because it may hold any printable ASCII).
pub fn index_id_prefix(event_id: &str) -> String {
    use sha2::Digest as _;
    format!(
        "{INDEX_ID_PREFIX}{}/",
        hex::encode(sha2::Sha256::digest(event_id.as_bytes()))
    )
}

/// `index/prediction/{sha256(prediction id)}/`: the folder of every entry of one
/// prediction's events (one per provider and body: `started`, `succeeded`, a
/// contradicting `failed`, …).
pub fn index_prediction_prefix(prediction_id: &str) -> String {
    use sha2::Digest as _;
    format!(
        "{INDEX_PREDICTION_PREFIX}{}/",
        hex::encode(sha2::Sha256::digest(prediction_id.as_bytes()))
    )
}

/// `index/prediction/{sha256(prediction id)}/{provider}/{sha256}.json`: the latest entry
/// of one event of a prediction (`hookvault events show <prediction id>` lists them in
/// the order the edge received them).
pub fn index_prediction_key(prediction_id: &str, provider: &str, body_sha256: &str) -> String {
    format!(
        "{}{}/{}.json",
        index_prediction_prefix(prediction_id),
        provider_segment(provider),
        digest_segment(body_sha256)
    )
}

/// `index/id/{sha256(event id)}/{provider}/{sha256}.json`: the latest entry of one event,
/// found by its id (overwritten by each delivery, so it holds the last outcome).
pub fn index_id_key(event_id: &str, provider: &str, body_sha256: &str) -> String {
    format!(
        "{}{}/{}.json",
        index_id_prefix(event_id),
        provider_segment(provider),
        digest_segment(body_sha256)
    )
}

/// The extension of the URL path's last segment, lowercased, with its dot: `.mp4`; `.bin`
/// when there is none or it is not 1 to 10 ASCII alphanumerics.
pub fn extension(url: &str) -> String {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    match last.rfind('.') {
        Some(dot) if dot > 0 => {
            let ext = &last[dot + 1..];
            if (1..=10).contains(&ext.len()) && ext.bytes().all(|c| c.is_ascii_alphanumeric()) {
                format!(".{}", ext.to_ascii_lowercase())
            } else {
                ".bin".to_owned()
            }
        }
        _ => ".bin".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_are_dated_by_receipt_and_parse_back() {
        use crate::records::IndexOutcome;
        let sha = "ab".repeat(32);
        // 2026-11-29T17:05:00Z
        let at = 1_795_971_900_000;
        assert_eq!(index_hour_prefix(at), "index/log/2026-11-29/17/");
        let key = index_log_key(at, "skytells", IndexOutcome::Failed, &sha);
        assert_eq!(
            key,
            format!("index/log/2026-11-29/17/skytells/failed/{sha}.json")
        );
        assert_eq!(
            parse_index_log_key(&key),
            Some(("skytells", IndexOutcome::Failed, sha.as_str()))
        );
        let rejected = index_log_key(at, REJECTED_PROVIDER, IndexOutcome::Rejected, &sha);
        assert_eq!(
            parse_index_log_key(&rejected).map(|p| p.0),
            Some(REJECTED_PROVIDER)
        );
        // Hostile names stay in their segment.
        let odd = index_log_key(at, "../x", IndexOutcome::Kept, "../../y");
        assert!(parse_index_log_key(&odd).is_some(), "{odd}");
        assert_eq!(
            parse_index_log_key("index/log/2026-11-29/17/p/nope/x.json"),
            None
        );
        assert_eq!(parse_index_log_key("events/x"), None);
        let id_key = index_id_key("skytells:p1:succeeded", "skytells", &sha);
        assert!(id_key.starts_with(&index_id_prefix("skytells:p1:succeeded")));
        assert!(id_key.ends_with(&format!("/skytells/{sha}.json")));
        assert_eq!(index_hour_prefix(-1), "index/log/1969-12-31/23/");
    }

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(
            output_key("pred_1", 0, "https://cdn.x/a/b/video.MP4?sig=1#f").unwrap(),
            "predictions/pred_1/0.mp4"
        );
        assert_eq!(
            output_key("pred_1", 3, "https://cdn.x/a/b/noext").unwrap(),
            "predictions/pred_1/3.bin"
        );
        assert_eq!(
            manifest_key("pred_1").unwrap(),
            "predictions/pred_1/manifest.json"
        );
        assert_eq!(
            failure_key("pred_1").unwrap(),
            "predictions/pred_1/failure.json"
        );
    }

    #[test]
    fn extensions_are_taken_only_from_the_last_path_segment() {
        for (url, ext) in [
            ("https://c/x.png", ".png"),
            ("https://c/x.tar.gz", ".gz"),
            ("https://c/.hidden", ".bin"),
            ("https://c/dir.d/file", ".bin"),
            ("https://c/x.", ".bin"),
            ("https://c/x.a%2F..%2Fb", ".bin"),
            ("https://c/x.verylongextension", ".bin"),
            ("https://c/x.png/", ".bin"),
            ("not a url", ".bin"),
            ("https://c/x.p%00g", ".bin"),
        ] {
            assert_eq!(extension(url), ext, "{url}");
        }
    }

    #[test]
    fn hostile_ids_are_refused() {
        for id in [
            "",
            "..",
            ".",
            "../etc",
            "a/b",
            "a\\b",
            ".hidden",
            "a b",
            "a\nb",
            "é",
            &"x".repeat(129),
        ] {
            assert_eq!(
                output_key(id, 0, "https://c/x.png"),
                Err(LayoutError::BadId),
                "{id:?}"
            );
        }
        assert!(check_id("pred_ABC-1.2").is_ok());
        assert_eq!(rejected_key("../../a b"), "rejected/______a_b.json");
        assert_eq!(rejected_key(""), "rejected/unnamed.json");
        let sha = "ab".repeat(32);
        assert_eq!(
            event_body_key("../sky tells", &sha),
            format!("events/___sky_tells/{sha}/body")
        );
        assert_eq!(
            event_record_key("skytells", "../x"),
            "events/skytells/___x/event.json"
        );
        assert_eq!(
            output_key_with_extension("p", 2, ".png").unwrap(),
            "predictions/p/2.png"
        );
        assert_eq!(
            output_key_with_extension("p", 2, "/../x").unwrap(),
            "predictions/p/2.bin"
        );
        assert_eq!(output_value_key("p").unwrap(), "predictions/p/output.json");
        assert_eq!(
            submission_key("pred_1").unwrap(),
            "predictions/pred_1/submission.json"
        );
        assert_eq!(
            stalled_key("pred_1").unwrap(),
            "predictions/pred_1/stalled.json"
        );
        assert_eq!(submission_key("../x"), Err(LayoutError::BadId));
        assert_eq!(stalled_key("a/b"), Err(LayoutError::BadId));
        assert_eq!(
            check_chain_key("pred_1").unwrap(),
            "predictions/pred_1/check.json"
        );
        assert_eq!(check_chain_key(".."), Err(LayoutError::BadId));
        assert_eq!(
            evidence_key("pred_1").unwrap(),
            "predictions/pred_1/evidence.json"
        );
        assert_eq!(evidence_key(".."), Err(LayoutError::BadId));
        assert_eq!(claim_check_key(&sha), format!("raw/{sha}"));
    }
}
