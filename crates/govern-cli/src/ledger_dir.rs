//! Reading a ledger's data directory without changing it, shared by `govern export`,
//! `govern prove` and `govern receipts`.

use std::path::Path;

use govern_ledger::segment::{SegmentOptions, SegmentStore};

/// Opens the segment store in `dir` read-only: no lock is taken, nothing is created,
/// truncated or written, and a directory that holds no ledger is an error (`no ledger at
/// ...`). While a writer holds the directory, what it has written so far is read, and a note
/// on stderr says so.
pub(crate) fn open_read_only(dir: &Path) -> Result<SegmentStore, String> {
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (store, report) = SegmentStore::open(dir, options).map_err(|e| e.to_string())?;
    if let Some(writer) = report.writer {
        tell!(
            "note: {} is open by a writer ({writer}); reading the {} receipts written so far",
            dir.display(),
            report.records
        );
    }
    Ok(store)
}

/// An error message; stores' errors convert into it, so that a closure given to
/// [`SegmentStore::for_each_record`] can use `?` on both.
pub(crate) struct Message(pub(crate) String);

impl From<govern_ledger::StoreError> for Message {
    fn from(e: govern_ledger::StoreError) -> Self {
        Self(e.to_string())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self(s)
    }
}
