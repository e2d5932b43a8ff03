//! How long opening a segment store takes with a full scan (`SegmentStore::open`: every
//! segment read, every frame checked) and from the sealed segments' index files
//! (`SegmentStore::open_indexed`: only the last segment read), each `RUNS` times in turn
//! (and the full scan read-only too, which does not compare the indexes with the segments),
//! warm cache. The directory must hold a ledger written by this build (whose sealed segments
//! have their indexes), e.g. by `govern bench ledger --data-dir DIR`; no other writer may
//! hold it.
//!
//! ```sh
//! cargo run --release -p govern-ledger --example open_indexed -- /tmp/segidx-10m
//! ```

// A benchmark measures wall-clock time and prints its figures.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark: it reads the wall clock and prints"
)]

use std::time::Instant;

use govern_ledger::LedgerStore;
use govern_ledger::segment::{SegmentOptions, SegmentStore};

/// Opens of each kind.
const RUNS: usize = 3;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: open_indexed DATA_DIR");
    let options = SegmentOptions::default();
    let read_only = SegmentOptions { read_only: true, ..options };
    // Once each first, untimed: the files in the page cache, the indexes all written.
    let (store, report) = SegmentStore::open(&dir, options).unwrap();
    drop(store);
    println!("{dir}: {} receipts in {} segments", report.records, report.segments);
    for run in 1..=RUNS {
        let t0 = Instant::now();
        let (store, report) = SegmentStore::open(&dir, options).unwrap();
        let scan = t0.elapsed();
        let len = store.len();
        drop(store);
        // A reader's scan does not look at the indexes; a writer's compares each with its scan.
        let t0 = Instant::now();
        let (store, _) = SegmentStore::open(&dir, read_only).unwrap();
        let reader_scan = t0.elapsed();
        assert_eq!(store.len(), len);
        drop(store);
        let t0 = Instant::now();
        let (store, indexed) = SegmentStore::open_indexed(&dir, options).unwrap();
        let index = t0.elapsed();
        assert_eq!((store.len(), indexed.records), (len, report.records));
        drop(store);
        println!(
            "run {run}: open {:>9.3} ms (read-only {:>9.3} ms)   open_indexed {:>9.3} ms ({} of {} segments from their index)",
            scan.as_secs_f64() * 1e3,
            reader_scan.as_secs_f64() * 1e3,
            index.as_secs_f64() * 1e3,
            indexed.indexed,
            indexed.segments
        );
    }
}
