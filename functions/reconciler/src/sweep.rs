//! The sweep (issue 23, item 3): optional (`SWEEP_ENABLED`), run by the scheduled event,
//! for the predictions hookvault did not submit (or whose checks ended).
//!
//! It lists the provider's predictions created in the last `SWEEP_LOOKBACK_SECS`
//! (`GET /v1/predictions?page=N&per_page=50&from=…&to=…`, newest first, page after page
//! until `pagination.last_page`, or a page that is not full when the answer is a bare
//! list), and for each **terminal** one the archive does not hold as terminal, sends a
//! check (`source: sweep`, no delay) to the check queue: the same check as the api's, so
//! the fetch, the reconciled event and the archive follow the same path. Running ones are
//! left for a later sweep (once terminal, within the look-back): a sweep never starts a
//! chain of checks that the next sweep would start again.
//!
//! It stops at the invocation's deadline or after [`MAX_PAGES`] pages (logged), and a
//! page the provider does not answer ends it with an error (the next run lists again).

use std::time::Instant;

use hookvault_core::archive;
use hookvault_core::reconcile::{list_bound, Check, CheckSource, MAX_PER_PAGE};

use crate::io::{Archive, IoError, Provider, Queues};
use crate::reconcile::Reconciler;

/// The most pages one sweep reads (50 predictions each: 10,000).
pub const MAX_PAGES: u32 = 200;

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepSummary {
    /// False when `SWEEP_ENABLED` is off (nothing was listed).
    pub enabled: bool,
    /// Pages read.
    pub pages: u32,
    /// Predictions listed.
    pub listed: usize,
    /// Checks sent: terminal predictions the archive lacks.
    pub checks_sent: Vec<String>,
    /// True when it stopped at the deadline or the page limit with pages left.
    pub stopped_early: bool,
}

/// Why a sweep failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    /// The provider did not give a page.
    #[error("listing the provider's predictions failed on page {page}: {reason}")]
    List {
        /// The page.
        page: u32,
        /// Why.
        reason: String,
    },
    /// S3 or SQS failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl<P: Provider, A: Archive, Q: Queues> Reconciler<P, A, Q> {
    /// Sweeps the provider's list at `now_ms` until `deadline` (the module's
    /// documentation has the rule).
    pub async fn sweep(
        &self,
        now_ms: i64,
        deadline: Option<Instant>,
    ) -> Result<SweepSummary, SweepError> {
        let mut summary = SweepSummary {
            enabled: self.cfg.sweep_enabled,
            ..SweepSummary::default()
        };
        if !self.cfg.sweep_enabled {
            tracing::info!("SWEEP_ENABLED is off: the scheduled sweep does nothing");
            return Ok(summary);
        }
        let now_secs = now_ms.div_euclid(1000);
        let from = list_bound(now_secs.saturating_sub(self.cfg.sweep_lookback_secs as i64));
        let to = list_bound(now_secs);
        for page in 1..=MAX_PAGES {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                summary.stopped_early = true;
                break;
            }
            let listed = self
                .provider
                .list(page, MAX_PER_PAGE, &from, &to)
                .await
                .map_err(|reason| SweepError::List { page, reason })?;
            summary.pages = page;
            summary.listed += listed.len;
            for p in listed.items.iter().filter(|p| p.status.is_terminal()) {
                if archive::check_id(&p.id).is_err() {
                    tracing::warn!(id = %p.id.chars().take(64).collect::<String>(), "a listed prediction id that cannot be a key; skipped");
                    continue;
                }
                if self.archive.terminal_known(&p.id).await? {
                    continue;
                }
                let check = Check::first(&self.cfg.provider, &p.id, now_ms, CheckSource::Sweep);
                self.queues.send_check(&check, 0).await?;
                summary.checks_sent.push(p.id.clone());
            }
            if listed.is_last(page, MAX_PER_PAGE) {
                break;
            }
            if page == MAX_PAGES {
                summary.stopped_early = true;
            }
        }
        tracing::info!(pages = summary.pages, listed = summary.listed, checks = summary.checks_sent.len(), stopped_early = summary.stopped_early, from = %from, to = %to, "sweep done");
        Ok(summary)
    }
}
