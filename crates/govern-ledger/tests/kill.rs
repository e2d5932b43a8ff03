//! Crash safety under SIGKILL: a child process appends receipts through a [`GroupCommit`]
//! and prints a line for each receipt only once it has been acknowledged as durable; the
//! parent kills it with SIGKILL after a random number of acknowledgements, many times over
//! the same data directory. After every kill the directory verifies offline (a torn tail is
//! reported, never an error), reopens read-write, every acknowledged receipt is there with
//! the acknowledged hash, and the signed checkpoint (written every few milliseconds, so
//! kills land in the middle of checkpoint writes too) verifies against the ledger.
//!
//! The child is this test binary itself, re-run with `--exact child_appender` and
//! `GOVERN_KILL_CHILD_DIR=<dir>`; without that variable `child_appender` does nothing.
//!
//! Environment:
//! - `GOVERN_KILL_ROUNDS`: how many kill-and-restart rounds (default 12).
//! - `GOVERN_KILL_SEED`: the seed (decimal `u64`) that picks how many acknowledgements each
//!   round reads before the kill (default: random, printed in every failure message). The
//!   kill still lands wherever the child happens to be, so a seed does not replay a run
//!   exactly.
#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_ledger::checkpoint::{
    CHECKPOINT_FILE, PUBLIC_KEY_FILE, SignedCheckpoint, load_public_key, verify_history,
};
use govern_ledger::verify::verify_dir;
use govern_ledger::{
    Checkpointer, CommitOptions, GroupCommit, Ledger, LedgerError, LedgerStore as _,
    SegmentOptions, SegmentStore,
};
use govern_receipt::{Digest, Receipt, ReceiptBody};

/// The variable that turns `child_appender` into the appending child, naming its directory.
const CHILD_DIR_ENV: &str = "GOVERN_KILL_CHILD_DIR";
/// Producer threads in the child.
const PRODUCERS: u64 = 16;
/// Most acknowledgements a round reads before the kill.
const ACKS_MAX: u64 = 400;

/// Small segments, so that they roll often and kills land around a roll too.
fn segment_options() -> SegmentOptions {
    SegmentOptions { segment_bytes: 64 << 10, ..SegmentOptions::default() }
}

fn body(producer: u64, i: u64) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new(&format!("tenant{producer}")).unwrap(),
        governor: GovernorKind::Quota,
        resource: ResourceId::new(&format!("q{}", i % 5)).unwrap(),
        resource_seq: 0,
        command: Cow::Borrowed("record"),
        state_from: Cow::Borrowed("a"),
        state_to: Cow::Borrowed("b"),
        reason: format!("kill test, producer {producer}, receipt {i}"),
        args: BTreeMap::new(),
        metadata: BTreeMap::new(),
    }
}

/// The child: appends receipts from several threads until it is killed, printing
/// `ack <seq> <hash>` for each receipt once (and only once) it is acknowledged as durable.
/// Does nothing unless [`CHILD_DIR_ENV`] is set.
#[test]
fn child_appender() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else { return };
    let dir = Path::new(&dir);
    let (store, _report) = SegmentStore::open(dir, segment_options()).unwrap();
    let ledger = Arc::new(Ledger::open(Box::new(store)).unwrap());
    let options =
        CommitOptions { checkpoint_every: Duration::from_millis(10), ..CommitOptions::default() };
    let commit = Arc::new(
        GroupCommit::<mpsc::Sender<Result<(), LedgerError>>>::start(
            Arc::clone(&ledger),
            options,
            Some(Checkpointer::in_dir(dir).unwrap()),
        )
        .unwrap(),
    );
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let ledger = Arc::clone(&ledger);
            let commit = Arc::clone(&commit);
            std::thread::spawn(move || {
                let (tx, rx) = mpsc::channel();
                for i in 0.. {
                    let appended = ledger.append(body(producer, i)).unwrap();
                    commit.ack_when_durable(appended.seq, tx.clone());
                    rx.recv().unwrap().unwrap();
                    // One write of one whole line: a kill never leaves half of it.
                    let line = format!("ack {} {}\n", appended.seq, appended.hash);
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
}

/// Kills the child if the parent gives up on a round early (a failed assertion), so that
/// no appender outlives the test.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small xorshift64* generator: enough to pick kill points.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Never zero (a fixed point); spread nearby seeds apart.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// `ack <seq> <hash>` at the end of a line (libtest may print its `test ... ` in front of
/// the first one).
fn parse_ack(line: &str) -> Option<(u64, Digest)> {
    let at = line.rfind("ack ")?;
    let mut words = line[at + 4..].split_whitespace();
    let seq = words.next()?.parse().ok()?;
    let hash = words.next()?.parse().ok()?;
    words.next().is_none().then_some((seq, hash))
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|e| panic!("{name}={value:?}: {e}")))
}

/// Runs the child on `dir` until it has acknowledged `kill_after` receipts, kills it with
/// SIGKILL, and returns every acknowledgement it printed (those read after the kill too).
fn run_and_kill(dir: &Path, kill_after: u64, ctx: &str) -> Vec<(u64, Digest)> {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_appender", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = Killer(child);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut acks = Vec::new();
    let mut line = String::new();
    let mut read_line = |acks: &mut Vec<(u64, Digest)>| {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        // A line cut short cannot be trusted to be whole: count only complete ones.
        if line.ends_with('\n') {
            acks.extend(parse_ack(&line));
        }
        n > 0
    };
    while (acks.len() as u64) < kill_after {
        if !read_line(&mut acks) {
            let status = child.0.wait().unwrap();
            panic!(
                "{ctx}: the child exited ({status}) after {} of {kill_after} acknowledgements",
                acks.len()
            );
        }
    }
    // SIGKILL on Unix.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "{ctx}: the child survived the kill: {status}");
    // What was in the pipe at the kill was acknowledged too.
    while read_line(&mut acks) {}
    acks
}

/// Everything that must hold after a kill: the directory verifies, reopens, holds every
/// acknowledged receipt, and its checkpoint verifies. Returns (receipts, whether a
/// checkpoint was checked, whether a torn tail was found).
fn check_dir(dir: &Path, acked: &BTreeMap<u64, Digest>, ctx: &str) -> (u64, bool, bool) {
    let report = verify_dir(dir).unwrap_or_else(|e| panic!("{ctx}: verify_dir: {e}"));
    let torn = report.torn.is_some();
    let checkpoint_path = dir.join(CHECKPOINT_FILE);
    let checkpoint = match std::fs::read_to_string(&checkpoint_path) {
        Ok(json) => Some(json),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{ctx}: reading {}: {e}", checkpoint_path.display()),
    };
    if let Some(json) = &checkpoint {
        let signed = SignedCheckpoint::from_json(json.trim_end())
            .unwrap_or_else(|e| panic!("{ctx}: checkpoint {json:?}: {e}"));
        let key = load_public_key(&dir.join(PUBLIC_KEY_FILE)).unwrap();
        verify_history(&report.tree, &signed, &key).unwrap_or_else(|e| {
            panic!(
                "{ctx}: checkpoint at size {} against a ledger of {}: {e}",
                signed.checkpoint.size, report.receipts
            )
        });
    }

    // Read-write: truncates a torn tail.
    let (store, opened) = SegmentStore::open(dir, segment_options())
        .unwrap_or_else(|e| panic!("{ctx}: reopening the segment store: {e}"));
    assert_eq!(opened.records, report.receipts, "{ctx}: the store's length after reopening");
    let mut record = Vec::new();
    for (&seq, &hash) in acked {
        let found = store.read(seq, &mut record).unwrap();
        assert!(
            found,
            "{ctx}: acknowledged receipt {seq} is missing (the ledger holds {} receipts)",
            report.receipts
        );
        let receipt =
            Receipt::decode(&record).unwrap_or_else(|e| panic!("{ctx}: receipt {seq}: {e}"));
        assert_eq!(receipt.seq, seq, "{ctx}: receipt {seq}'s sequence number");
        assert_eq!(receipt.hash, hash, "{ctx}: acknowledged receipt {seq} has another hash");
    }
    let ledger =
        Ledger::open(Box::new(store)).unwrap_or_else(|e| panic!("{ctx}: opening the ledger: {e}"));
    assert_eq!(ledger.head().next_seq, report.receipts, "{ctx}: the ledger's head");
    drop(ledger);

    // The reopening cut the torn tail: the directory now verifies clean, to the same length.
    let again =
        verify_dir(dir).unwrap_or_else(|e| panic!("{ctx}: verify_dir after reopening: {e}"));
    assert_eq!(again.torn, None, "{ctx}: a torn tail survived a read-write opening");
    assert_eq!(again.receipts, report.receipts, "{ctx}: receipts after reopening");
    (report.receipts, checkpoint.is_some(), torn)
}

#[test]
fn sigkill_never_loses_an_acknowledged_receipt() {
    let rounds = env_u64("GOVERN_KILL_ROUNDS").unwrap_or(12);
    let seed = env_u64("GOVERN_KILL_SEED").unwrap_or_else(|| getrandom::u64().unwrap());
    let mut rng = XorShift::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeMap::<u64, Digest>::new();
    let (mut checkpoints, mut torn_tails) = (0, 0);
    for round in 0..rounds {
        let kill_after = 1 + rng.next() % ACKS_MAX;
        let ctx = format!(
            "GOVERN_KILL_SEED={seed} round {round} of {rounds} (killed after {kill_after} \
             acknowledgements; {} acknowledged before)",
            acked.len()
        );
        let before = acked.len();
        for (seq, hash) in run_and_kill(dir.path(), kill_after, &ctx) {
            let previous = acked.insert(seq, hash);
            assert!(previous.is_none(), "{ctx}: receipt {seq} acknowledged twice");
        }
        assert!(
            acked.len() as u64 >= before as u64 + kill_after,
            "{ctx}: only {} new acknowledgements",
            acked.len() - before
        );
        let (_receipts, checkpoint, torn) = check_dir(dir.path(), &acked, &ctx);
        checkpoints += u32::from(checkpoint);
        torn_tails += u32::from(torn);
    }
    eprintln!(
        "kill test: seed {seed}, {rounds} rounds, {} receipts acknowledged, checkpoints checked \
         in {checkpoints} rounds, torn tails in {torn_tails}",
        acked.len()
    );
}
