//! Reading the event log the archiver writes (`index/`, see `hookvault_core::archive`):
//! list the hours of a window, keep each event's deciding entry, read the entries.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use hookvault_core::archive;
use hookvault_core::records::{IndexEntry, IndexOutcome};

use super::{sdk_error, window, Aws};
use crate::commands::CliError;

/// Entries read at once.
const READS_IN_FLIGHT: usize = 16;
/// The longest window listed at once: 90 days (which touch 90 × 24 + 1 hours).
pub const MAX_HOURS: i64 = 90 * 24 + 1;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The edge's receipt time from, Unix milliseconds (inclusive).
    pub since_ms: i64,
    /// The edge's receipt time to, Unix milliseconds (inclusive).
    pub until_ms: i64,
    /// Only these event ids (all when empty).
    pub event_ids: Vec<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Only events whose deciding outcome is one of these (all when empty and
    /// `reconciled` is false).
    pub outcomes: Vec<IndexOutcome>,
    /// Also (or only, with no `outcomes`) the events the reconciler fetched (`"reconciled":
    /// true` in the entry): read from the entries, not the keys.
    pub reconciled: bool,
    /// Only this prediction.
    pub prediction: Option<String>,
}

/// One event's deciding entry key, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its outcome (the highest-ranked of the event's entries).
    pub outcome: IndexOutcome,
}

/// The keys of every hour in the filter's window, one per event (its highest-ranked
/// outcome: an event that failed and was then archived is archived), filtered by
/// provider and outcome from the keys alone.
pub async fn list_keys(aws: &Aws, bucket: &str, filter: &Filter) -> Result<Vec<Listed>, CliError> {
    let count = window::hour_count(filter.since_ms, filter.until_ms);
    if count > MAX_HOURS {
        return Err(CliError::Usage(format!(
            "the window spans {count} hours; at most 90 days are listed at once (query the \
             log with Athena for more: docs/operations.md)"
        )));
    }
    let hours = window::hours(filter.since_ms, filter.until_ms);
    // (provider, sha) → (outcome, key), the highest outcome kept.
    let mut events: BTreeMap<(String, String), (IndexOutcome, String)> = BTreeMap::new();
    for hour in hours {
        for key in list(aws, bucket, &archive::index_hour_prefix(hour)).await? {
            let Some((provider, outcome, sha)) = archive::parse_index_log_key(&key) else {
                continue;
            };
            if filter.provider.as_deref().is_some_and(|p| p != provider) {
                continue;
            }
            let id = (provider.to_owned(), sha.to_owned());
            if events.get(&id).is_none_or(|(o, _)| outcome > *o) {
                events.insert(id, (outcome, key.clone()));
            }
        }
    }
    // A reconciled event can be in any state: with `reconciled` asked for, every key is
    // read and the entries decide (read_entries).
    Ok(events
        .into_values()
        .filter(|(o, _)| {
            filter.reconciled || filter.outcomes.is_empty() || filter.outcomes.contains(o)
        })
        .map(|(outcome, key)| Listed { key, outcome })
        .collect())
}

/// Reads one entry.
pub async fn read_entry(aws: &Aws, bucket: &str, key: &str) -> Result<IndexEntry, CliError> {
    let bytes = get(aws, bucket, key)
        .await?
        .ok_or_else(|| CliError::Failed(format!("s3://{bucket}/{key}: gone (expired?)")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Failed(format!("s3://{bucket}/{key}: not an event log entry: {e}")))
}

/// Reads the entries of `listed` (16 at a time), calling `tick` after each, and keeps
/// those of `filter.prediction`; sorted by receipt.
pub async fn read_entries(
    aws: &Aws,
    bucket: &str,
    listed: &[Listed],
    filter: &Filter,
    tick: impl Fn(),
) -> Result<Vec<IndexEntry>, CliError> {
    let tick = &tick;
    let mut entries: Vec<IndexEntry> = stream::iter(listed.iter().map(|l| async move {
        let e = read_entry(aws, bucket, &l.key).await;
        tick();
        e
    }))
    .buffered(READS_IN_FLIGHT)
    .try_collect()
    .await?;
    // The log is by hour; the window is to the millisecond.
    entries.retain(|e| {
        (filter.since_ms..=filter.until_ms).contains(&e.received_at_ms)
            && filter
                .prediction
                .as_deref()
                .is_none_or(|p| e.prediction_id.as_deref() == Some(p))
            && (filter.event_ids.is_empty() || filter.event_ids.contains(&e.event_id))
            && (!filter.reconciled
                || (e.reconciled && e.outcome != IndexOutcome::Stalled)
                || filter.outcomes.contains(&e.outcome))
    });
    entries.sort_by(|a, b| (a.received_at_ms, &a.event_id).cmp(&(b.received_at_ms, &b.event_id)));
    Ok(entries)
}

/// Every entry of one event id (one per provider and body), from `index/id/`.
pub async fn by_event_id(
    aws: &Aws,
    bucket: &str,
    event_id: &str,
) -> Result<Vec<IndexEntry>, CliError> {
    let keys = list(aws, bucket, &archive::index_id_prefix(event_id)).await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        out.push(read_entry(aws, bucket, &key).await?);
    }
    Ok(out)
}

/// Every entry of one prediction's events (one per provider and body), from
/// `index/prediction/`, in the order the edge received them.
pub async fn by_prediction(
    aws: &Aws,
    bucket: &str,
    prediction_id: &str,
) -> Result<Vec<IndexEntry>, CliError> {
    let keys = list(
        aws,
        bucket,
        &archive::index_prediction_prefix(prediction_id),
    )
    .await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        out.push(read_entry(aws, bucket, &key).await?);
    }
    out.sort_by(|a, b| (a.received_at_ms, &a.event_id).cmp(&(b.received_at_ms, &b.event_id)));
    Ok(out)
}

/// Every key under `prefix`, all pages.
async fn list(aws: &Aws, bucket: &str, prefix: &str) -> Result<Vec<String>, CliError> {
    let mut keys = Vec::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(&format!("listing s3://{bucket}/{prefix}"), e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    Ok(keys)
}

/// An object's bytes, `None` when there is no such key.
pub async fn get(aws: &Aws, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, CliError> {
    match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| CliError::Failed(format!("reading s3://{bucket}/{key}: {e}")))?;
            Ok(Some(body.into_bytes().to_vec()))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(sdk_error(&format!("reading s3://{bucket}/{key}"), e)),
    }
}
