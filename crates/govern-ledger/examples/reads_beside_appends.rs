//! How appends fare while the ledger is read: one resource's history of N receipts is
//! replayed (`Ledger::resource_receipts`), then the whole ledger verified (`Ledger::verify`),
//! each on its own thread, while this thread appends another tenant's receipts one by one and
//! times each append. The same appends, the replay and the verification are timed first each
//! with nothing else going on.
//!
//! ```sh
//! cargo run --release -p govern-ledger --example reads_beside_appends -- 1000000
//! cargo run --release -p govern-ledger --example reads_beside_appends -- 1000000 /tmp/dir
//! ```
//!
//! The first argument is N (default 1 000 000); with a second, the ledger is a segment store
//! in that directory (which must not hold a ledger), committed every 1 000 appends.

// A benchmark measures wall-clock time and prints its figures.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark: it reads the wall clock and prints"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_ledger::Ledger;
use govern_ledger::segment::{SegmentOptions, SegmentStore};
use govern_receipt::ReceiptBody;

fn body(tenant: &str, resource: &str, i: u64) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new(tenant).unwrap(),
        governor: GovernorKind::Quota,
        resource: ResourceId::new(resource).unwrap(),
        resource_seq: 0,
        command: std::borrow::Cow::Borrowed("record"),
        state_from: std::borrow::Cow::Borrowed("open"),
        state_to: std::borrow::Cow::Borrowed("open"),
        reason: "benchmark".into(),
        args: std::collections::BTreeMap::new(),
        metadata: std::collections::BTreeMap::new(),
    }
}

/// Latencies in nanoseconds: of each append, and of each commit.
type Latencies = (Vec<u64>, Vec<u64>);

/// Appends `small`'s receipts until `done` (or `n` of them when `done` is `None`), committing
/// every 1 000 (a commit waits for the lock as an append does); times each.
fn timed_appends(ledger: &Ledger, done: Option<&AtomicBool>, n: usize, i: &mut u64) -> Latencies {
    let (mut appends, mut commits) = (Vec::new(), Vec::new());
    let nanos = |t0: Instant| u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
    while done.map_or(appends.len() < n, |d| !d.load(Ordering::Acquire)) {
        let body = body("small", &format!("s-{}", *i % 100), *i);
        let t0 = Instant::now();
        ledger.append(body).unwrap();
        appends.push(nanos(t0));
        *i += 1;
        if i.is_multiple_of(1_000) {
            let t0 = Instant::now();
            ledger.commit().unwrap();
            commits.push(nanos(t0));
        }
    }
    (appends, commits)
}

fn report(what: &str, (mut lat, commits): Latencies) {
    let commit_max = commits.iter().max().map_or(0.0, |&c| c as f64 / 1_000.0);
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1_000.0;
    let over_1ms = lat.iter().filter(|&&l| l > 1_000_000).count();
    println!(
        "{what}: {} appends, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs, {over_1ms} over 1 ms; {} commits, max {commit_max:.1} µs",
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        commits.len()
    );
}

/// How long `read` takes with nothing else going on.
fn alone(ledger: &Ledger, what: &str, read: fn(&Ledger) -> u64) {
    let t0 = Instant::now();
    let n = read(ledger);
    let took = t0.elapsed().as_secs_f64();
    println!("{what}, alone: {n} receipts in {took:.3} s ({:.2} M/s)", n as f64 / took / 1e6);
}

fn replay(ledger: &Ledger) -> u64 {
    let (big, r1) = (TenantId::new("big").unwrap(), ResourceId::new("r-1").unwrap());
    ledger.resource_receipts(&big, GovernorKind::Quota, &r1).unwrap().len() as u64
}

fn verify(ledger: &Ledger) -> u64 {
    ledger.verify().unwrap().next_seq
}

/// Runs `read` on its own thread while this one appends; returns how long the read took.
fn beside(ledger: &Arc<Ledger>, what: &str, i: &mut u64, read: fn(&Ledger) -> u64) {
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ledger, done) = (Arc::clone(ledger), Arc::clone(&done));
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let n = read(&ledger);
            let took = t0.elapsed();
            done.store(true, Ordering::Release);
            (n, took)
        })
    };
    let lat = timed_appends(ledger, Some(&done), 0, i);
    let (n, took) = reader.join().unwrap();
    println!(
        "{what}: {n} receipts in {:.3} s ({:.2} M/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64().max(1e-9) / 1e6
    );
    report(&format!("  appends beside {what}"), lat);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let ledger = Arc::new(match args.next() {
        Some(dir) => {
            let (store, _) = SegmentStore::open(&dir, SegmentOptions::default()).unwrap();
            Ledger::open(Box::new(store)).unwrap()
        }
        None => Ledger::in_memory(),
    });
    let t0 = Instant::now();
    for i in 0..n {
        ledger.append(body("big", "r-1", i)).unwrap();
        if i % 10_000 == 9_999 {
            ledger.commit().unwrap();
        }
    }
    ledger.commit().unwrap();
    let took = t0.elapsed().as_secs_f64();
    println!("appended {n} receipts of one resource in {took:.2} s ({:.0}/s)", n as f64 / took);
    let mut i = 0;
    report("quiet", timed_appends(&ledger, None, 200_000, &mut i));
    alone(&ledger, "replay of big/r-1", replay);
    alone(&ledger, "verify", verify);
    beside(&ledger, "replay of big/r-1", &mut i, replay);
    beside(&ledger, "verify", &mut i, verify);
}
