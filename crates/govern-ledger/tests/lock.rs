//! One writer per data directory, between processes: two child processes start on one data
//! directory at the same moment, many times over (fresh directories, where both also race to
//! create the checkpoint key pair, and continued ones). Exactly one opens it; the other is
//! refused at once with an error naming the directory and the winner's pid; afterwards every
//! receipt the winner acknowledged is there with its hash, the directory verifies and its
//! signed checkpoint verifies with the key pair on disk.
//!
//! The children are this test binary itself, re-run with `--exact child_writer` and
//! `GOVERN_LOCK_CHILD_DIR=<dir>`; without that variable `child_writer` does nothing.
//!
//! Environment: `GOVERN_LOCK_ROUNDS` (default 16) rounds.
#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
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

/// The variable that turns `child_writer` into a writing child, naming its directory.
const CHILD_DIR_ENV: &str = "GOVERN_LOCK_CHILD_DIR";
/// Receipts the winner appends in a round.
const RECEIPTS_PER_ROUND: u64 = 25;

fn body(i: u64) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new(&format!("tenant{}", std::process::id())).unwrap(),
        governor: GovernorKind::Quota,
        resource: ResourceId::new(&format!("q{}", i % 3)).unwrap(),
        resource_seq: 0,
        command: Cow::Borrowed("record"),
        state_from: Cow::Borrowed("a"),
        state_to: Cow::Borrowed("b"),
        reason: format!("lock test, receipt {i}"),
        args: BTreeMap::new(),
        metadata: BTreeMap::new(),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

/// A child: opens the directory. Refused, it prints `refused <error>` and ends. Otherwise it
/// prints `won`, appends [`RECEIPTS_PER_ROUND`] receipts through group commit (signing
/// checkpoints with the directory's key pair, created on first start), printing
/// `ack <seq> <hash>` once each is durable, prints `done`, and holds the directory until its
/// stdin is closed.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else { return };
    let dir = Path::new(&dir);
    let ledger = match Ledger::open_dir(dir, SegmentOptions::default()) {
        Ok((ledger, _)) => Arc::new(ledger),
        Err(e) => {
            say(&format!("refused {e}"));
            return;
        }
    };
    say("won");
    let options =
        CommitOptions { checkpoint_every: Duration::from_millis(1), ..CommitOptions::default() };
    let commit = GroupCommit::<mpsc::Sender<Result<(), LedgerError>>>::start(
        Arc::clone(&ledger),
        options,
        Some(Checkpointer::in_dir(dir).unwrap()),
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..RECEIPTS_PER_ROUND {
        let appended = ledger.append(body(i)).unwrap();
        commit.ack_when_durable(appended.seq, tx.clone());
        rx.recv().unwrap().unwrap();
        say(&format!("ack {} {}", appended.seq, appended.hash));
    }
    say("done");
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).unwrap();
    commit.stop().unwrap();
}

/// Kills a child if the parent gives up early (a failed assertion).
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path) -> (Reaper, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (Reaper(child), stdout)
}

/// The next line that is one of the child's own (libtest may print `running 1 test` and
/// `test child_writer ... ` around them); `None` at the end of its output.
fn next_line(out: &mut BufReader<ChildStdout>) -> Option<String> {
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            return None;
        }
        for word in ["refused ", "won", "ack ", "done"] {
            if let Some(at) = line.find(word) {
                return Some(line[at..].trim_end().to_owned());
            }
        }
    }
}

#[test]
fn two_writers_racing_on_one_directory_one_wins_the_other_is_refused() {
    let rounds: u64 = std::env::var("GOVERN_LOCK_ROUNDS").map_or(16, |v| v.parse().unwrap());
    let mut dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeMap::<u64, Digest>::new();
    for round in 0..rounds {
        if round % 2 == 0 {
            // A fresh directory: the two also race on creating it and the key pair.
            dir = tempfile::tempdir().unwrap();
            acked.clear();
        }
        let ctx = format!("round {round} of {rounds}");
        let (mut a, mut a_out) = spawn(dir.path());
        let (mut b, mut b_out) = spawn(dir.path());
        let first_a = next_line(&mut a_out).unwrap_or_default();
        let first_b = next_line(&mut b_out).unwrap_or_default();
        let (winner, winner_out, refusal) = match (first_a.as_str(), first_b.as_str()) {
            ("won", r) if r.starts_with("refused ") => (&mut a, &mut a_out, r.to_owned()),
            (r, "won") if r.starts_with("refused ") => (&mut b, &mut b_out, r.to_owned()),
            (x, y) => panic!("{ctx}: expected one winner and one refusal, got {x:?} and {y:?}"),
        };
        let dir_text = dir.path().display().to_string();
        assert!(refusal.contains(&dir_text), "{ctx}: the refusal names no directory: {refusal}");
        assert!(
            refusal.contains(&format!("pid {}", winner.0.id())),
            "{ctx}: the refusal names no holder: {refusal}"
        );
        loop {
            let line = next_line(winner_out)
                .unwrap_or_else(|| panic!("{ctx}: the winner ended before `done`"));
            if line == "done" {
                break;
            }
            let mut words = line.split_whitespace().skip(1);
            let seq: u64 = words.next().unwrap().parse().unwrap();
            let hash: Digest = words.next().unwrap().parse().unwrap();
            assert!(acked.insert(seq, hash).is_none(), "{ctx}: receipt {seq} acknowledged twice");
        }
        // Let the winner go; then neither child may have failed.
        drop(winner.0.stdin.take());
        for child in [&mut a, &mut b] {
            let status = child.0.wait().unwrap();
            assert!(status.success(), "{ctx}: a child failed: {status}");
        }
        let report = verify_dir(dir.path()).unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
        assert_eq!(report.receipts, acked.len() as u64, "{ctx}: receipts on disk");
        let (store, _) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
        let mut record = Vec::new();
        for (&seq, &hash) in &acked {
            assert!(store.read(seq, &mut record).unwrap(), "{ctx}: acknowledged {seq} missing");
            assert_eq!(Receipt::decode(&record).unwrap().hash, hash, "{ctx}: receipt {seq}");
        }
        drop(store);
        let checkpoint = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        let signed = SignedCheckpoint::from_json(checkpoint.trim_end()).unwrap();
        let key = load_public_key(&dir.path().join(PUBLIC_KEY_FILE)).unwrap();
        verify_history(&report.tree, &signed, &key)
            .unwrap_or_else(|e| panic!("{ctx}: the checkpoint does not verify: {e}"));
        assert_eq!(signed.checkpoint.size, report.receipts, "{ctx}: the last checkpoint");
    }
}
