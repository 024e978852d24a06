//! The raw event: the exact bytes whose signature the edge verified, and the evidence
//! to verify them again.
//!
//! * [`claim_checked_body`] reads a body the edge put in S3 (`raw/{sha256}`)
//!   because it was too large for one SQS message, and checks it against the envelope.
//! * [`keep`] writes, for every readable envelope,
//!   `events/{provider}/{sha256}/body` (the bytes, as they are) and then
//!   `events/{provider}/{sha256}/event.json` ([`EventRecord`]). `event.json` is written
//!   last: its presence means the raw event is archived, and a redelivery that finds it
//!   writes nothing (the keys are content addressed, so the bytes are the same).

use hookvault_core::archive;
use hookvault_core::envelope::{Envelope, Reconciled, S3Object};
use hookvault_core::event::PredictionHead;
use hookvault_core::records::EventRecord;

use crate::outcome::Transient;
use crate::store::{is_header_safe, now_rfc3339, Store};

/// The content type stored for a body whose request had none (or one that cannot be an
/// HTTP header value; the request's own is in `event.json` either way).
pub const DEFAULT_BODY_CONTENT_TYPE: &str = "application/octet-stream";

/// Why a claim-checked body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// It can never be read as announced (no such object, wrong bytes, over the cap): the
    /// message goes to `rejected/` with this reason.
    Unusable(String),
    /// S3 failed: a redelivery may succeed.
    Transient(Transient),
}

/// The body of a claim-checked envelope: `GetObject` of `object`, read only up to the
/// envelope's `body_bytes` (and never when that is over `max_event_bytes`,
/// `EVENT_MAX_BYTES`), then checked with [`Envelope::check_body`].
///
/// * an object other than `raw/{body_sha256}` in this archive's bucket: not read,
///   [`BodyError::Unusable`];
/// * `NoSuchKey`, an object of another length, or bytes whose SHA-256 is not
///   `body_sha256`: [`BodyError::Unusable`], with the object, the sizes and digests;
/// * any other S3 error, or the read cut off: [`BodyError::Transient`].
pub async fn claim_checked_body(
    store: &Store,
    max_event_bytes: u64,
    env: &Envelope,
    object: &S3Object,
) -> Result<Vec<u8>, BodyError> {
    let place = format!("s3://{}/{}", object.bucket, object.key);
    // The edge writes claim checks to this archive's bucket, at raw/{body_sha256}, and
    // nowhere else: an envelope naming any other object is not read.
    let expected = archive::claim_check_key(&env.body_sha256);
    if object.bucket != store.bucket() || object.key != expected {
        return Err(BodyError::Unusable(format!(
            "claim check {place}: not this archive's s3://{}/{expected}; not read",
            store.bucket()
        )));
    }
    let cap = max_event_bytes;
    if env.body_bytes > cap {
        return Err(BodyError::Unusable(format!(
            "claim check {place}: the body is {} bytes, over this archiver's \
                 EVENT_MAX_BYTES ({cap}); the object was not read and stays in S3",
            env.body_bytes
        )));
    }
    let out = match store
        .get(&object.bucket, &object.key, "GetObject (claim check)")
        .await
    {
        Ok(Some(out)) => out,
        Ok(None) => {
            return Err(BodyError::Unusable(format!(
                "claim check {place}: no such object (NoSuchKey); the event's body \
                     ({} bytes, sha256 {}) cannot be read",
                env.body_bytes, env.body_sha256
            )));
        }
        Err(e) => return Err(BodyError::Transient(e.into())),
    };
    let announced = env.body_bytes;
    if let Some(len) = out.content_length().filter(|&n| n as u64 != announced) {
        return Err(BodyError::Unusable(format!(
            "claim check {place}: the object is {len} bytes, the envelope announces \
                 {announced}; not the event's body"
        )));
    }
    // Read at most one byte more than announced: enough to tell a longer object.
    let mut body = Vec::with_capacity(announced as usize);
    let mut stream = out.body;
    loop {
        match stream.try_next().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > announced {
                    return Err(BodyError::Unusable(format!(
                        "claim check {place}: the object is longer than the {announced} \
                             bytes the envelope announces; not the event's body"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(BodyError::Transient(Transient(format!(
                    "S3 GetObject (claim check {place}) cut off: {e}"
                ))))
            }
        }
    }
    if env.check_body(&body).is_err() {
        use sha2::Digest;
        return Err(BodyError::Unusable(format!(
            "claim check {place}: its {} bytes have sha256 {}, the envelope announces \
                 {announced} bytes with sha256 {}; not the event's body",
            body.len(),
            hex::encode(sha2::Sha256::digest(&body)),
            env.body_sha256
        )));
    }
    Ok(body)
}

/// True when the `event.json` at `key` records a reconciled event (one that does not
/// read counts as not).
async fn held_is_reconciled(store: &Store, key: &str) -> Result<bool, Transient> {
    let object = store
        .get_small(key, 1024 * 1024, "GetObject (event record)")
        .await?;
    Ok(object
        .and_then(|o| o.bytes)
        .and_then(|b| serde_json::from_slice::<EventRecord>(&b).ok())
        .is_some_and(|r| r.reconciled.is_some()))
}

/// Keeps the raw event of `env` (whose verified bytes are `body`) and returns the key
/// of its `event.json`. `prediction` is the body's prediction id and status, when it
/// has them (they go into the record); read cheaply, so the raw event is kept before
/// the whole body is parsed. `reconciled` is the envelope's evidence when the reconciler
/// fetched it (issue 23), kept in the record. Writes nothing when `event.json` is already
/// there, except that a signed event's record replaces a reconciled one of the very same
/// bytes (the content-addressed folder is shared; the signed evidence is preferred).
/// S3 errors are transient.
pub async fn keep(
    store: &Store,
    env: &Envelope,
    body: &[u8],
    prediction: Option<&PredictionHead>,
    message_id: &str,
    reconciled: Option<&Reconciled>,
) -> Result<String, Transient> {
    let record_key = archive::event_record_key(&env.provider, &env.body_sha256);
    if store.exists(&record_key).await? {
        let replace = reconciled.is_none() && held_is_reconciled(store, &record_key).await?;
        if !replace {
            tracing::info!(event_id = %env.event_id, key = %record_key, "raw event already archived");
            return Ok(record_key);
        }
        tracing::info!(event_id = %env.event_id, key = %record_key, "the signed event has the bytes of a reconciled one: its evidence replaces the fetch's");
    }
    let body_key = archive::event_body_key(&env.provider, &env.body_sha256);
    let content_type = env
        .content_type
        .as_deref()
        .filter(|c| is_header_safe(c))
        .unwrap_or(DEFAULT_BODY_CONTENT_TYPE);
    store
        .put_bytes(
            &body_key,
            body.to_vec(),
            content_type,
            "PutObject (raw event body)",
        )
        .await?;
    let record = EventRecord {
        envelope_version: env.v,
        provider: env.provider.clone(),
        scheme: env.scheme,
        event_id: env.event_id.clone(),
        received_at_ms: env.received_at_ms,
        key_id: env.key_id.clone(),
        key_slot: env.key_slot,
        signature_headers: env.signature_headers.clone(),
        content_type: env.content_type.clone(),
        body_sha256: env.body_sha256.clone(),
        body_bytes: env.body_bytes,
        body_key,
        prediction_id: prediction.map(|p| p.id.clone()),
        status: prediction.map(|p| p.status.as_str().to_owned()),
        message_id: message_id.to_owned(),
        archived_at: now_rfc3339(),
        trace_id: env.trace_id.clone(),
        reconciled: reconciled.cloned(),
    };
    // Last: event.json's presence means the raw event is archived.
    store.put_json(&record_key, &record).await?;
    tracing::info!(event_id = %env.event_id, key = %record_key, bytes = env.body_bytes, "raw event archived");
    Ok(record_key)
}
