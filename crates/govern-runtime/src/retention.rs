//! The runtime's retention policy ([`RuntimeBuilder::retention`](crate::RuntimeBuilder::retention)):
//! the oldest sealed segments of its data directory archived by the receipt actor's
//! background thread (`Ledger::archive`), never in the commit's path.

use std::path::PathBuf;
use std::time::Duration;

use govern_governors::Timestamp;
use govern_ledger::{ArchiveRequest, Ledger};

/// Durable receipts between two retention checks, by default.
pub const RETENTION_CHECK_RECORDS: u64 = 65_536;

/// What the runtime archives, and where to ([`crate::RuntimeBuilder::retention`]). A sealed
/// segment is archived when either bound says so, and only below the latest signed
/// checkpoint (see `govern archive`).
#[derive(Clone, Debug)]
pub struct Retention {
    /// The archive directory: the segments go to its `segments/`.
    pub to: PathBuf,
    /// Archive the sealed segments whose last receipt is older than this, by the runtime's
    /// clock.
    pub older_than: Option<Duration>,
    /// Archive the oldest sealed segments while the live segments hold more bytes than this.
    pub live_bytes_max: Option<u64>,
    /// Durable receipts between two checks ([`RETENTION_CHECK_RECORDS`] by default).
    pub check_every: u64,
}

impl Retention {
    /// Archive to `to`; no bound yet (nothing is archived until one is set).
    #[must_use]
    pub fn to(to: impl Into<PathBuf>) -> Self {
        Self {
            to: to.into(),
            older_than: None,
            live_bytes_max: None,
            check_every: RETENTION_CHECK_RECORDS,
        }
    }

    /// Archive segments whose last receipt is older than `age`.
    #[must_use]
    pub fn older_than(mut self, age: Duration) -> Self {
        self.older_than = Some(age);
        self
    }

    /// Archive the oldest segments while the live ones hold more than `bytes`.
    #[must_use]
    pub fn live_bytes_max(mut self, bytes: u64) -> Self {
        self.live_bytes_max = Some(bytes);
        self
    }

    /// Check every `records` durable receipts (at least 1).
    #[must_use]
    pub fn check_every(mut self, records: u64) -> Self {
        self.check_every = records.max(1);
        self
    }

    /// The record below which the policy archives, at `now`: the larger of what each bound
    /// asks (0: nothing).
    ///
    /// # Errors
    /// The ledger's error when a segment's last receipt cannot be read.
    pub(crate) fn below(&self, ledger: &Ledger, now: Timestamp) -> Result<u64, String> {
        let mut below = 0;
        if let Some(age) = self.older_than {
            let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
            let cutoff = Timestamp(now.as_ms().saturating_sub(age_ms));
            below = below.max(ledger.archivable_before(cutoff).map_err(|e| e.to_string())?);
        }
        if let Some(max) = self.live_bytes_max {
            let sealed = ledger.sealed_segments();
            let live: u64 = ledger.live_segment_bytes();
            let mut over = live.saturating_sub(max);
            for seg in sealed {
                if over == 0 {
                    break;
                }
                over = over.saturating_sub(seg.bytes);
                below = below.max(seg.end_seq);
            }
        }
        Ok(below)
    }

    /// Runs the policy once: archives what it asks for, logging what was done.
    pub(crate) fn run(&self, ledger: &Ledger, dir: &std::path::Path, now: Timestamp) {
        let below = match self.below(ledger, now) {
            Ok(0) => return,
            Ok(below) => below,
            Err(e) => {
                tracing::warn!(error = %e, "retention: the segments to archive could not be chosen");
                return;
            }
        };
        let request = ArchiveRequest { below, to: self.to.clone(), now };
        match ledger.archive(dir, &request) {
            Ok(report) if report.is_empty() => {}
            Ok(report) => tracing::info!(
                segments = report.segments.len(),
                receipts = report.records,
                bytes = report.bytes,
                boundary = report.boundary,
                to = %self.to.display(),
                "retention: segments archived"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "retention: archival failed (retried at the next check)")
            }
        }
    }
}
