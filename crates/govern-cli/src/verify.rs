//! `govern verify DATA_DIR`: offline verification of a ledger, read-only.

// Reports how long verification took; the wall clock is what that needs.
#![allow(clippy::disallowed_methods, reason = "timing the verification for its report")]

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use govern_ledger::checkpoint::{
    PUBLIC_KEY_FILE, SignedCheckpoint, load_public_key, verify_history_at,
};
use govern_ledger::verify::verify_dir_roots;

/// The checkpoint file a data directory holds (the latest signed checkpoint).
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint.json";

/// Options of `govern verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The ledger's data directory (it holds `segments/`).
    data_dir: PathBuf,
    /// A signed checkpoint to verify the history against (default: DATA_DIR/checkpoint.json,
    /// when present). Keep a copy elsewhere: a checkpoint inside the directory proves
    /// nothing against whoever can rewrite the directory.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The public key of the checkpoint signer, as hex (default: DATA_DIR/checkpoint.pub).
    #[arg(long)]
    public_key: Option<PathBuf>,
}

/// Runs the verification; an `Err` is printed to stderr and exits non-zero.
pub(crate) fn run(args: &VerifyArgs) -> Result<(), String> {
    let started = Instant::now();
    let checkpoint = args.checkpoint.clone().or_else(|| {
        let default = args.data_dir.join(CHECKPOINT_FILE);
        default.exists().then_some(default)
    });
    // Read before the ledger, for its size: the verification keeps only the root at that
    // size, not the whole tree. A checkpoint that cannot be read is reported after the
    // ledger's own problems, as before.
    let read = checkpoint.map(|path| {
        let signed = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))
            .and_then(|text| {
                SignedCheckpoint::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
            });
        (path, signed)
    });
    let sizes: Vec<u64> =
        read.iter().filter_map(|(_, signed)| Some(signed.as_ref().ok()?.checkpoint.size)).collect();
    let report = verify_dir_roots(&args.data_dir, &sizes).map_err(|e| match e.seq() {
        Some(seq) => format!("verification failed at receipt {seq}: {e}"),
        None => format!("verification failed: {e}"),
    })?;
    let checked = match read {
        None => None,
        Some((path, signed)) => {
            let signed = signed?;
            let key_path =
                args.public_key.clone().unwrap_or_else(|| args.data_dir.join(PUBLIC_KEY_FILE));
            let key =
                load_public_key(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
            let root_at = |size| report.root_at(size);
            verify_history_at(report.receipts, root_at, &signed, &key).map_err(|e| {
                format!("verification failed against checkpoint {}: {e}", path.display())
            })?;
            Some((path, signed.checkpoint.size))
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if let Some(torn) = &report.torn {
        say!(
            "note: a torn final frame at {} offset {} (receipt {}, {} bytes) was never acknowledged; the next opening truncates it",
            torn.segment,
            torn.offset,
            torn.seq,
            torn.bytes
        );
    }
    say!(
        "ok: {} receipts in {} segments; frames, chain, fields, resource numbering and tree verified in {:.3} s ({:.0} receipts/s)",
        report.receipts,
        report.segments,
        secs,
        report.receipts as f64 / secs.max(1e-9)
    );
    say!("head: next_seq {} last_hash {}", report.head.next_seq, report.head.last_hash);
    say!("tree: size {} root {}", report.receipts, report.root);
    match checked {
        Some((path, size)) => {
            say!("checkpoint: {} (size {size}) signature and history verified", path.display())
        }
        None => say!(
            "checkpoint: none given; without one, a rewrite with recomputed hashes is not detectable"
        ),
    }
    Ok(())
}
