//! `govern archive DATA_DIR --before DATE|--below SEQ --to ARCHIVE_DIR`: moves the oldest
//! sealed segments of a data directory to an archive directory, recording in the data
//! directory what keeps every proof (`govern_ledger::archive`).

// The time a range was archived is the wall clock's: that is what it records.
#![allow(clippy::disallowed_methods, reason = "archived_at is the wall-clock time of the archival")]

use std::path::PathBuf;

use clap::Args;
use govern_governors::Timestamp;
use govern_ledger::segment::SegmentOptions;
use govern_ledger::{ArchiveRequest, Ledger};

/// Options of `govern archive`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("bound").required(true).args(["before", "below"]))]
pub(crate) struct ArchiveArgs {
    /// The data directory. It is opened as its writer: no runtime may hold it.
    data_dir: PathBuf,
    /// Archive the sealed segments whose last receipt is older than this time (RFC 3339,
    /// e.g. 2026-01-01T00:00:00Z, or a date, 2026-01-01, meaning its midnight UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    before: Option<Timestamp>,
    /// Archive the sealed segments that lie wholly below this sequence number.
    #[arg(long, value_name = "SEQ")]
    below: Option<u64>,
    /// The archive directory: the segments go to its segments/ folder. A second archival
    /// of the same data directory must go to the same archive directory.
    #[arg(long, value_name = "ARCHIVE_DIR")]
    to: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `DATE` as a timestamp: RFC 3339, or a bare date at midnight UTC.
fn parse_date(text: &str) -> Result<Timestamp, String> {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_owned() };
    let at = humantime::parse_rfc3339(&full)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time or a date (YYYY-MM-DD): {e}"))?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("{text:?} is before 1970"))?
        .as_millis();
    Ok(Timestamp(u64::try_from(ms).map_err(|_| format!("{text:?} is too far ahead"))?))
}

/// Runs the archival; an `Err` is printed to stderr and exits non-zero.
pub(crate) fn run(args: &ArchiveArgs) -> Result<(), String> {
    let dir = &args.data_dir;
    if !dir.join(govern_ledger::segment::SEGMENTS_DIR).is_dir() {
        return Err(format!("no ledger at {}", dir.display()));
    }
    let (ledger, _) = Ledger::open_dir(dir, SegmentOptions::default())
        .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let below = match (args.before, args.below) {
        (Some(cutoff), _) => ledger.archivable_before(cutoff).map_err(|e| e.to_string())?,
        (None, Some(seq)) => seq,
        (None, None) => return Err("give --before DATE or --below SEQ".into()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let request = ArchiveRequest { below, to: args.to.clone(), now: Timestamp(now) };
    let report = ledger.archive(dir, &request).map_err(|e| format!("archive failed: {e}"))?;
    // The live sealed segments' subtree roots (and none of the archived ones'), for proofs.
    ledger.write_segment_trees(dir).map_err(|e| format!("tree files: {e}"))?;
    ledger.close();
    if args.json {
        say!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
        return Ok(());
    }
    if report.is_empty() {
        say!(
            "nothing to archive: no sealed segment lies wholly below {below} (and below the latest checkpoint); boundary stays {}",
            report.boundary
        );
        return Ok(());
    }
    say!(
        "archived {} segments ({} receipts, {} bytes) to {}: records {}..{}",
        report.segments.len(),
        report.records,
        report.bytes,
        args.to.display(),
        report.boundary_before,
        report.boundary
    );
    say!(
        "boundary: {} (govern verify {} checks the archived ranges by their recorded roots; add --archive {} to check them in full)",
        report.boundary,
        dir.display(),
        args.to.display()
    );
    Ok(())
}
