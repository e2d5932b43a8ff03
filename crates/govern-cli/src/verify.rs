//! `govern verify LEDGER` (a data directory or a PostgreSQL database): offline verification
//! of a ledger, read-only; and
//! `govern verify --export FILE`: a tenant's export checked without the data directory.

// Reports how long verification took; the wall clock is what that needs.
#![allow(clippy::disallowed_methods, reason = "timing the verification for its report")]

use std::path::PathBuf;
use std::time::Instant;

use govern_ledger::StoreError;
use govern_ledger::archive::Manifest;
use govern_ledger::checkpoint::{
    VerifiedCheckpoint, VerifyingKey, load_public_key, read_checkpoint_file,
};
use govern_ledger::merkle::{EMPTY_ROOT, MerkleFrontier};
use govern_ledger::verify::{
    ArchivedVerify, RootsReport, VerifyError, verify_archived, verify_dir_roots,
};
use govern_receipt::Digest;

use clap::Args;

use crate::checkpoints::{
    KeySource, OwnCheckpoints, PublicKey, StoredVerified, read_verified, verify_stored, verify_text,
};
use crate::ledger_dir::{Chain, LedgerArg, failed};

/// Failing shards whose errors `govern verify` repeats on stderr (each has its line on
/// stdout): a database unreadable in all of its up to 4 096 shards gives a short message.
const FAILURES_NAMED_MAX: usize = 8;

/// Options of `govern verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The ledger: its data directory (it holds `segments/`), or a PostgreSQL database
    /// (`postgres://USER@HOST/DB`, or libpq's `host=... dbname=...`), read only.
    #[arg(
        value_name = "LEDGER",
        value_parser = LedgerArg::parse,
        required_unless_present = "export",
        conflicts_with = "export"
    )]
    ledger: Option<LedgerArg>,
    /// Verify this export of one tenant (made by `govern export --with-proofs`) instead of a
    /// data directory: every receipt's hash from its fields, ids, chain links where
    /// consecutive, resource_seq continuity, inclusion proofs, the signed checkpoints, and
    /// the consistency proof to --checkpoint when that is older. Needs --public-key.
    #[arg(long, value_name = "FILE", requires = "public_key")]
    export: Option<PathBuf>,
    /// A signed checkpoint to verify against, JSON (checkpoint.json) or C2SP signed note
    /// (checkpoint.note) (default: DATA_DIR/checkpoint.json, else DATA_DIR/checkpoint.note,
    /// when present; with --export, the export's own). Keep a copy elsewhere: a checkpoint
    /// inside the directory proves nothing against whoever can rewrite the directory.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The checkpoint signer's public key: a file holding the public key in hex, as
    /// DATA_DIR/checkpoint.pub is written (default: DATA_DIR/checkpoint.pub; on a database,
    /// the key each checkpoint names in govern_checkpoint_keys, which shows only that the
    /// checkpoints and the chain agree: pin the signer's key with this).
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// The archive directory of a data directory whose oldest receipts `govern archive`
    /// moved there: also verify the archived receipts in full (every archived segment's
    /// SHA-256, the archive as a ledger from receipt 0, its roots, and the snapshot and
    /// governors' states kept at the boundary rebuilt from it). Without it, archived ranges
    /// are checked by their recorded endpoints, roots and consistency proofs.
    #[arg(long, value_name = "ARCHIVE_DIR")]
    archive: Option<PathBuf>,
}

/// Runs the verification; an `Err` is printed to stderr and exits non-zero.
pub(crate) fn run(args: &VerifyArgs) -> Result<(), String> {
    let data_dir = match &args.ledger {
        Some(LedgerArg::Dir(dir)) => dir,
        Some(ledger @ LedgerArg::Postgres(_)) => return verify_store(args, ledger),
        None => {
            let export = args.export.as_deref().ok_or("give LEDGER or --export FILE")?;
            let key = PublicKey::new(None, args.public_key.as_deref());
            let key = key.get()?;
            let trusted = match &args.checkpoint {
                Some(path) => Some((path.clone(), read_verified(path, key)?)),
                None => None,
            };
            let report = crate::verify_export::verify_file(export, key, trusted.as_ref())?;
            for line in report.lines() {
                say!("{line}");
            }
            return Ok(());
        }
    };
    let started = Instant::now();
    // Readers take no lock: a live writer goes on appending while the files are read, and
    // what is verified is the prefix written so far.
    let writer = govern_ledger::lock::probe(data_dir)
        .map_err(|e| format!("probing the lock of {}: {e}", data_dir.display()))?;
    // The one given, else the directory's latest (checkpoint.json, else checkpoint.note).
    let checkpoint = match &args.checkpoint {
        Some(path) => Some((path.clone(), read_checkpoint_file(path).map_err(|e| e.to_string()))),
        None => OwnCheckpoints::read(data_dir)
            .latest()
            .map(|(path, text)| (path.to_owned(), text.map(str::to_owned))),
    };
    // Verified before the ledger, for its size: the verification keeps only the root at that
    // size, not the whole tree. A checkpoint (or key) that cannot be read or does not verify
    // is reported after the ledger's own problems.
    let key = PublicKey::new(Some(data_dir), args.public_key.as_deref());
    let read = checkpoint.map(|(path, text)| {
        let verified = text.and_then(|text| verify_text(&path, &text, key.get()?));
        (path, verified)
    });
    let sizes: Vec<u64> = read.iter().filter_map(|(_, c)| Some(c.as_ref().ok()?.size())).collect();
    let manifest = Manifest::read(data_dir).map_err(|e| format!("verification failed: {e}"))?;
    let (report, archived) = match &manifest {
        Some(manifest) => {
            let (report, archived) =
                verify_archived_roots(data_dir, manifest, args.archive.as_deref(), &sizes)?;
            (report, Some(archived))
        }
        None if args.archive.is_some() => {
            return Err(format!(
                "{} has no archived receipts (no archive.json): --archive does not apply",
                data_dir.display()
            ));
        }
        None => (
            verify_dir_roots(data_dir, &sizes).map_err(|e| failed("verification failed", &e))?,
            None,
        ),
    };
    let checked = match read {
        None => None,
        Some((path, verified)) => {
            let checkpoint: VerifiedCheckpoint = verified?;
            if let Some(a) =
                archived.as_ref().filter(|a| !a.in_full && checkpoint.size() < a.boundary)
                && report.root_at(checkpoint.size()).is_none()
            {
                return Err(format!(
                    "verification failed against checkpoint {}: it covers {} receipts, fewer than the {} archived; give --archive ARCHIVE_DIR to check it",
                    path.display(),
                    checkpoint.size(),
                    a.boundary
                ));
            }
            let root_at = |size| report.root_at(size);
            checkpoint.check_history(report.receipts, root_at).map_err(|e| {
                format!("verification failed against checkpoint {}: {e}", path.display())
            })?;
            Some((path, checkpoint.size()))
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if let Some(w) = writer {
        say!(
            "note: {} is open by a writer ({}); verified the receipts written so far (the newest may not be durable yet)",
            data_dir.display(),
            w
        );
    }
    match (&report.torn, writer) {
        (Some(torn), Some(_)) => {
            say!("note: {torn}: most likely a frame the writer is writing now")
        }
        (Some(torn), None) => say!(
            "note: torn tail, {torn}: never acknowledged (a receipt is acknowledged only once its whole frame is durable); the next opening truncates it"
        ),
        (None, _) => {}
    }
    match archived.as_ref().filter(|a| !a.in_full) {
        // Only the live receipts were read.
        Some(a) => say!(
            "ok: {} receipts, the {} from {} on in {} segments; frames, chain, fields, resource numbering and tree verified in {:.3} s ({:.0} live receipts/s)",
            report.receipts,
            report.receipts - a.boundary,
            a.boundary,
            report.segments,
            secs,
            (report.receipts - a.boundary) as f64 / secs.max(1e-9)
        ),
        None => say!(
            "ok: {} receipts in {} segments; frames, chain, fields, resource numbering and tree verified in {:.3} s ({:.0} receipts/s)",
            report.receipts,
            report.segments,
            secs,
            report.receipts as f64 / secs.max(1e-9)
        ),
    }
    if let Some(a) = &archived {
        if a.in_full {
            say!(
                "archive: {} receipts in {} archived segments (below {}) verified in full from the archive, with the snapshot and governors' states kept at the boundary",
                a.boundary,
                a.ranges,
                a.boundary
            );
        } else {
            say!(
                "archive: {} receipts in {} archived segments (below {}) checked by their recorded SHA-256, chain endpoints, roots and consistency proofs; give --archive ARCHIVE_DIR to read them",
                a.boundary,
                a.ranges,
                a.boundary
            );
        }
    }
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

/// [`verify_dir_roots`] of a data directory with archived receipts ([`verify_archived`]):
/// the roots at `sizes` from the frontier at the boundary and the live receipts, or from
/// every receipt with the archive; without it, a size below the boundary has a root only
/// at an archived range's end (recorded, and proved consistent with the boundary's).
fn verify_archived_roots(
    dir: &std::path::Path,
    manifest: &Manifest,
    archive: Option<&std::path::Path>,
    sizes: &[u64],
) -> Result<(RootsReport, ArchivedVerify), String> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    let mut roots: Vec<(u64, Digest)> = Vec::new();
    if sizes.first() == Some(&0) {
        roots.push((0, EMPTY_ROOT));
    }
    let mut frontier = match archive {
        Some(_) => MerkleFrontier::new(),
        None => {
            for range in manifest.ranges.iter().filter(|r| sizes.binary_search(&r.end_seq).is_ok())
            {
                roots.push((range.end_seq, range.root));
            }
            manifest.frontier()
        }
    };
    let report = verify_archived(dir, manifest, archive, &mut |_, hash| {
        frontier.push(&hash);
        if sizes.binary_search(&frontier.len()).is_ok() {
            roots.push((frontier.len(), frontier.root()));
        }
    })
    .map_err(|e| failed("verification failed", &e))?;
    roots.sort_unstable_by_key(|(size, _)| *size);
    roots.dedup_by_key(|(size, _)| *size);
    let out = RootsReport {
        receipts: report.receipts,
        segments: report.segments,
        head: report.head,
        root: report.root,
        torn: report.torn.clone(),
        roots,
    };
    Ok((out, report))
}

/// `govern verify` of a ledger that is not in a data directory (PostgreSQL): the same checks
/// of every record (hash chain, fields, resource numbering, Merkle tree), through the store,
/// and the checkpoint: one given with --checkpoint (and --public-key), else the database's
/// latest (`govern_checkpoints`), verified with --public-key or the key stored beside it and
/// checked against the chain. A database divided into shards: [`verify_shards`].
fn verify_store(args: &VerifyArgs, ledger: &LedgerArg) -> Result<(), String> {
    let shards = ledger.shards()?;
    if shards > 1 {
        return verify_shards(args, ledger, shards);
    }
    let pinned = pinned_key(args)?;
    let started = Instant::now();
    // Read before the chain (see LedgerArg::stored_checkpoint); a checkpoint that does not
    // verify is reported after the chain's own problems.
    let (stored, stored_roots) = if args.checkpoint.is_some() {
        (None, Vec::new())
    } else {
        ledger.stored_checkpoints(Chain::ONLY)??
    };
    let checkpoint: Option<(String, Result<VerifiedCheckpoint, String>, Option<KeySource>)> =
        match &args.checkpoint {
            Some(path) => {
                let key = PublicKey::new(None, args.public_key.as_deref());
                Some((path.display().to_string(), Ok(read_verified(path, key.get()?)?), None))
            }
            None => stored.map(|stored| {
                let label = "govern_checkpoints".to_owned();
                match verify_stored(&stored, pinned.as_ref()) {
                    Ok(v) => (label, Ok(v.checkpoint), Some(v.key)),
                    Err(e) => (label, Err(e), None),
                }
            }),
        };
    let sizes: Vec<u64> = checkpoint
        .iter()
        .filter_map(|(_, c, _)| Some(c.as_ref().ok()?.size()))
        .chain(stored_roots.iter().map(|(size, _)| *size))
        .collect();
    let store = ledger.open_read_only(Chain::ONLY)?;
    let report = govern_ledger::verify::verify_store_roots(store.as_ref(), &sizes)
        .map_err(|e| failed("verification failed", &e))?;
    if pinned.is_some() && checkpoint.is_none() && report.receipts > 0 {
        return Err(format!(
            "verification failed: {} receipts and no checkpoint in govern_checkpoints to check them against with --public-key",
            report.receipts
        ));
    }
    let checked = match checkpoint {
        None => None,
        Some((label, verified, key)) => {
            let checkpoint = verified?;
            let root_at = |size| report.root_at(size);
            checkpoint
                .check_history(report.receipts, root_at)
                .map_err(|e| format!("verification failed against checkpoint {label}: {e}"))?;
            Some((label, checkpoint.size(), key))
        }
    };
    // Then every stored checkpoint's root, the latest's included.
    let earlier = check_stored_roots(&report, &stored_roots)
        .map_err(|e| format!("verification failed: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    say!(
        "ok: {} receipts in {ledger}; chain, fields, resource numbering and tree verified in {:.3} s ({:.0} receipts/s)",
        report.receipts,
        secs,
        report.receipts as f64 / secs.max(1e-9)
    );
    say!("head: next_seq {} last_hash {}", report.head.next_seq, report.head.last_hash);
    say!("tree: size {} root {}", report.receipts, report.root);
    match checked {
        Some((label, size, key)) => say!(
            "checkpoint: {label} (size {size}) signature and history verified{}{}",
            key.map_or(String::new(), |k| format!(", both forms, {}", key_said(k))),
            match earlier {
                0 | 1 => String::new(),
                n => format!("; the roots of all {n} stored checkpoints match the chain"),
            }
        ),
        None => say!("checkpoint: none {NO_CHECKPOINT}"),
    }
    Ok(())
}

/// Every stored checkpoint's root against the chain's root at its size (a history rewritten
/// and signed again is caught by the checkpoints signed before it): how many matched, or the
/// first that does not, named.
fn check_stored_roots(
    report: &RootsReport,
    roots: &[(u64, govern_receipt::Digest)],
) -> Result<usize, String> {
    for &(size, root) in roots {
        match report.root_at(size) {
            Some(at) if at == root => {}
            Some(at) => {
                return Err(format!(
                    "the chain's root at size {size} is {at}, but its checkpoint of size {size} in govern_checkpoints says {root}: the chain was rewritten or forked after that checkpoint was signed"
                ));
            }
            None => {
                return Err(format!(
                    "the chain holds {} receipts, but a checkpoint of size {size} is in govern_checkpoints: history truncated",
                    report.receipts
                ));
            }
        }
    }
    Ok(roots.len())
}

/// Why a database may hold no checkpoint, and what that leaves undetected.
const NO_CHECKPOINT: &str = "(govern_checkpoints holds none: a runtime signs them only when given a key, docs/postgres.md); without one, a rewrite with recomputed hashes is not detectable";

/// The key `--public-key FILE` pins, loaded.
fn pinned_key(args: &VerifyArgs) -> Result<Option<VerifyingKey>, String> {
    args.public_key
        .as_deref()
        .map(|path| {
            load_public_key(path).map_err(|e| format!("public key {}: {e}", path.display()))
        })
        .transpose()
}

/// What a stored checkpoint's verification shows, by where its key came from.
fn key_said(key: KeySource) -> &'static str {
    match key {
        KeySource::Pinned => "with the key given by --public-key",
        KeySource::Beside => {
            "with the key stored beside it (govern_checkpoint_keys): this shows the checkpoints and the chain agree, not who signed them; pin the signer's key with --public-key FILE"
        }
    }
}

/// One shard verified: its chain, then its latest stored checkpoint (read before the chain)
/// against it. `Err` outside: the database could not be read (the run ends); inside: the
/// shard does not verify (named, the others go on).
fn verify_shard(
    ledger: &LedgerArg,
    chain: Chain,
    pinned: Option<&VerifyingKey>,
) -> Result<Result<(RootsReport, Option<StoredVerified>), String>, String> {
    let (stored, stored_roots) = match ledger.stored_checkpoints(chain)? {
        Ok(read) => read,
        Err(e) => return Ok(Err(e)),
    };
    let verified = stored.as_ref().map(|s| verify_stored(s, pinned)).transpose();
    let store = ledger.open_read_only(chain)?;
    let sizes: Vec<u64> = match &verified {
        Ok(Some(v)) => vec![v.checkpoint.size()],
        _ => Vec::new(),
    }
    .into_iter()
    .chain(stored_roots.iter().map(|(size, _)| *size))
    .collect();
    // Every receipt must be in its tenant's shard: a reader of a tenant looks nowhere else.
    let mut belongs = |_: u64, key: &govern_receipt::ReceiptKey<'_>| {
        let home = govern_postgres::cluster::shard_of(key.tenant, chain.shards);
        if home == chain.shard {
            Ok(())
        } else {
            Err(format!(
                "tenant {}'s receipt is in shard {}, not its shard {home}",
                key.tenant, chain.shard
            ))
        }
    };
    let report =
        match govern_ledger::verify::verify_store_roots_where(store.as_ref(), &sizes, &mut belongs)
        {
            Err(VerifyError::Store(e @ StoreError::Io(_))) => {
                return Err(chain.named(format!("reading the shard failed: {e}")));
            }
            Err(e) => return Ok(Err(chain.named(failed("verification failed", &e)))),
            Ok(report) => report,
        };
    let checkpoint = match verified {
        Err(e) => return Ok(Err(chain.named(e))),
        Ok(None) if pinned.is_some() && report.receipts > 0 => {
            return Ok(Err(chain.named(format!(
                "{} receipts and no checkpoint in govern_checkpoints to check them against with --public-key",
                report.receipts
            ))));
        }
        Ok(None) => None,
        Ok(Some(v)) => {
            let root_at = |size| report.root_at(size);
            if let Err(e) = v.checkpoint.check_history(report.receipts, root_at) {
                return Ok(Err(chain.named(format!(
                    "verification failed against its checkpoint of size {} in govern_checkpoints: {e}",
                    v.checkpoint.size()
                ))));
            }
            Some(v)
        }
    };
    // Then every stored checkpoint's root, the latest's included.
    if let Err(e) = check_stored_roots(&report, &stored_roots) {
        return Ok(Err(chain.named(e)));
    }
    Ok(Ok((report, checkpoint)))
}

/// `govern verify` of a database divided into `shards` shards: each shard's chain verified
/// on its own (chain from its receipt 0, fields, resource numbering, Merkle tree) and its
/// latest stored checkpoint against it ([`verify_shard`]), one line each, in order, a shard
/// that fails named and the others still verified; then a total. Fails when any shard does,
/// naming every one that did. A checkpoint is of one chain: --checkpoint is refused.
fn verify_shards(args: &VerifyArgs, ledger: &LedgerArg, shards: u32) -> Result<(), String> {
    if let Some(path) = &args.checkpoint {
        return Err(format!(
            "--checkpoint {}: {ledger} is divided into {shards} shards, each its own chain and tree, and a checkpoint is of one chain; each shard's own are checked from govern_checkpoints",
            path.display()
        ));
    }
    let pinned = pinned_key(args)?;
    let pinned = pinned.as_ref();
    let started = Instant::now();
    let mut receipts = 0u64;
    let mut failures = Vec::new();
    let mut checkpointed = 0u32;
    // Where the keys came from: the same for every shard (--public-key or none).
    let key = if pinned.is_some() { KeySource::Pinned } else { KeySource::Beside };
    for chain in Chain::all(shards) {
        // A shard that cannot be opened or read is the database's failure, not the shard's:
        // every later shard would meet it too (each after a connect timeout), so it ends
        // the verification at once.
        match verify_shard(ledger, chain, pinned)? {
            Ok((r, checkpoint)) => {
                receipts += r.receipts;
                let said = match &checkpoint {
                    Some(v) => {
                        checkpointed += 1;
                        format!("checkpoint: size {} verified", v.checkpoint.size())
                    }
                    None => "checkpoint: none".to_owned(),
                };
                say!(
                    "shard {}: ok: {} receipts; head: next_seq {} last_hash {}; tree: size {} root {}; {said}",
                    chain.shard,
                    r.receipts,
                    r.head.next_seq,
                    r.head.last_hash,
                    r.receipts,
                    r.root
                );
            }
            Err(e) => {
                say!("{e}");
                failures.push((chain.shard, e));
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if !failures.is_empty() {
        let more = match failures.len().saturating_sub(FAILURES_NAMED_MAX) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let named: Vec<String> =
            failures.iter().take(FAILURES_NAMED_MAX).map(|(shard, _)| shard.to_string()).collect();
        let which = match named.as_slice() {
            [one] => format!("shard {one} does not verify"),
            many => format!("shards {}{more} do not verify", many.join(", ")),
        };
        say!(
            "failed: {which} ({} of {shards} shards of {ledger}); the other {} verified ({receipts} receipts)",
            failures.len(),
            shards as usize - failures.len()
        );
        let messages: Vec<String> =
            failures.into_iter().take(FAILURES_NAMED_MAX).map(|(_, e)| e).collect();
        return Err(format!("{}{more}", messages.join("; ")));
    }
    say!(
        "ok: {receipts} receipts in {shards} shards of {ledger}; each shard's chain, fields, resource numbering and tree verified in {:.3} s ({:.0} receipts/s)",
        secs,
        receipts as f64 / secs.max(1e-9)
    );
    match checkpointed {
        0 => say!("checkpoint: none in any shard {NO_CHECKPOINT}"),
        _ => say!(
            "checkpoint: the latest of {checkpointed} of {shards} shards verified (signature, both forms, and history) {}",
            key_said(key)
        ),
    }
    Ok(())
}
