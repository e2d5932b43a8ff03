//! `govern checkpoint LEDGER`: signs a tree head of a verified ledger. On a data directory,
//! with its own key pair, and prints it (JSON or C2SP signed note), writing nothing; on a
//! PostgreSQL database, per shard, with the key pair of `--key-dir DIR`, inserted as a row of
//! `govern_checkpoints` (both forms, as a runtime's sink writes them) and printed. Either way
//! the ledger and its latest checkpoint are verified with the signing key first: a checkpoint
//! is never signed over a history that contradicts one signed before.

use std::path::PathBuf;

use clap::Args;
use govern_ledger::checkpoint::{Checkpoint, CheckpointSigner};
use govern_ledger::verify::{RootsReport, verify_dir_roots, verify_store_roots};

use crate::checkpoints::{OwnCheckpoints, PublicKey, Saved};
use crate::ledger_dir::{Chain, LedgerArg, failed};

/// Options of `govern checkpoint`.
#[derive(Debug, Args)]
pub(crate) struct CheckpointArgs {
    /// The ledger: its data directory (it holds the key pair, checkpoint.key and
    /// checkpoint.pub), or a PostgreSQL database (`postgres://USER@HOST/DB`, or libpq's
    /// `host=... dbname=...`), whose shards' checkpoints are signed with the key pair of
    /// --key-dir and inserted into govern_checkpoints.
    #[arg(value_name = "LEDGER", value_parser = LedgerArg::parse)]
    ledger: LedgerArg,
    /// On a database: the directory holding the signing key pair (checkpoint.key, and
    /// checkpoint.pub if present), such as the DATA_DIR a node of `govern serve` signs with.
    #[arg(long, value_name = "DIR")]
    key_dir: Option<PathBuf>,
    /// On a database: the shard whose chain to sign (default: every shard, in order).
    #[arg(long, value_name = "K")]
    shard: Option<u32>,
    /// Sign the tree head of the first N receipts (default: every receipt). On a database of
    /// several shards, with --shard.
    #[arg(long, value_name = "N")]
    size: Option<u64>,
    /// Print the C2SP signed note instead of the JSON checkpoint.
    #[arg(long)]
    note: bool,
    /// The note's origin (default: that of the latest checkpoint's note, else govern/KEY_ID,
    /// the key id in hex; on a database of several shards ORIGIN/shard-K, as a node signs).
    /// On a data directory it needs --note (the note is printed); on a database it names the
    /// inserted row's note.
    #[arg(long)]
    origin: Option<String>,
}

/// Runs `govern checkpoint`.
pub(crate) fn run(args: &CheckpointArgs) -> Result<(), String> {
    match &args.ledger {
        LedgerArg::Dir(dir) => {
            if args.key_dir.is_some() {
                return Err(
                    "--key-dir is for a database: a data directory signs with its own key pair"
                        .into(),
                );
            }
            if args.origin.is_some() && !args.note {
                return Err("--origin names the printed note's log: give --note too".into());
            }
            args.ledger.pick_chain(args.shard, None)?;
            let saved = OwnCheckpoints::read(dir);
            let signer =
                CheckpointSigner::load(dir).map_err(|e| format!("the signing key: {e}"))?;
            let saved = saved.verify(&PublicKey::known(signer.verifying_key()))?;
            // Only the roots needed: the saved checkpoints' and the one to sign.
            let sizes: Vec<u64> = saved.sizes().chain(args.size).collect();
            let report = verify_dir_roots(dir, &sizes)
                .map_err(|e| format!("the ledger does not verify: {e}"))?;
            let saved = saved.check(&report)?;
            let (checkpoint, signer) = head(args, &saved, &report, signer, Chain::ONLY)?;
            print(args, &checkpoint, &signer)
        }
        LedgerArg::Postgres(url) => {
            let dir = args.key_dir.as_deref().ok_or(
                "--key-dir DIR is needed on a database: the directory holding the signing key pair (checkpoint.key)",
            )?;
            let signer = CheckpointSigner::load(dir)
                .map_err(|e| format!("the signing key in {}: {e}", dir.display()))?;
            let shards = args.ledger.shards()?;
            let chains: Vec<Chain> = match args.shard {
                Some(_) => vec![args.ledger.pick_chain(args.shard, None)?],
                None if args.size.is_some() && shards > 1 => {
                    return Err(format!(
                        "--size: {} is divided into {shards} shards, each its own chain: say which with --shard K",
                        args.ledger
                    ));
                }
                None => Chain::all(shards).collect(),
            };
            let one = chains.len() == 1;
            for chain in chains {
                let (checkpoint, signer) = sign_shard(args, chain, signer.clone())?;
                let added = insert(url, chain, &checkpoint, &signer)?;
                if one {
                    print(args, &checkpoint, &signer)?;
                    tell!("{}", chain.named(added));
                } else {
                    say!("shard {}: {added}", chain.shard);
                }
            }
            Ok(())
        }
    }
}

/// One shard of a database: its latest stored checkpoint (read before its chain) verified
/// with the signing key, its chain verified and the checkpoint checked against it; then the
/// tree head to sign and the signer naming its note's origin.
fn sign_shard(
    args: &CheckpointArgs,
    chain: Chain,
    signer: CheckpointSigner,
) -> Result<(Checkpoint, CheckpointSigner), String> {
    let ledger = &args.ledger;
    let own = ledger.checkpoints(chain)?;
    let saved = own.verify(&PublicKey::known(signer.verifying_key())).map_err(|e| {
        chain.named(format!("{e} (it must verify with the signing key: a checkpoint is never signed over a history that contradicts one signed before)"))
    })?;
    let sizes: Vec<u64> = saved.sizes().chain(args.size).collect();
    let store = ledger.open_read_only(chain)?;
    let report = verify_store_roots(store.as_ref(), &sizes)
        .map_err(|e| chain.named(failed("the ledger does not verify", &e)))?;
    let saved = saved.check(&report).map_err(|e| chain.named(e))?;
    head(args, &saved, &report, signer, chain).map_err(|e| chain.named(e))
}

/// The tree head to sign (of `--size` receipts, else all verified) and the signer naming the
/// note's origin: `--origin`, else the latest checkpoint's note's, else the key's default
/// (on a database of several shards, its shard's, as a node's: `node::shard_signer`).
fn head(
    args: &CheckpointArgs,
    saved: &Saved,
    report: &RootsReport,
    signer: CheckpointSigner,
    chain: Chain,
) -> Result<(Checkpoint, CheckpointSigner), String> {
    let size = args.size.unwrap_or(report.receipts);
    let root = if size == report.receipts { Some(report.root) } else { report.root_at(size) };
    let root = root.ok_or_else(|| {
        format!("--size {size}: the ledger holds only {} receipts", report.receipts)
    })?;
    let checkpoint =
        Checkpoint { size, root, timestamp: govern_ledger::Checkpointer::wall_clock() };
    // A given origin names the log of all shards: each shard's is it and `/shard-K`, as a
    // node signs, so that two shards never look like two heads of one log.
    let given = args.origin.as_ref().map(|origin| {
        if chain.is_sharded() { format!("{origin}/shard-{}", chain.shard) } else { origin.clone() }
    });
    let origin = match &given {
        Some(origin) => Some(origin.as_str()),
        None => saved.note().and_then(|(_, c)| c.origin()),
    };
    let signer = match origin {
        Some(origin) => signer.with_origin(origin).map_err(|e| format!("--origin: {e}"))?,
        None if chain.is_sharded() => govern_postgres::node::shard_signer(&signer, chain.shard)?,
        None => signer,
    };
    Ok((checkpoint, signer))
}

/// Inserts the checkpoint, both forms, as a row of `govern_checkpoints`; what was done.
fn insert(
    url: &str,
    chain: Chain,
    checkpoint: &Checkpoint,
    signer: &CheckpointSigner,
) -> Result<String, String> {
    let signed = signer.sign(*checkpoint);
    let note = signer.sign_note(checkpoint);
    let size = checkpoint.size;
    let inserted = govern_postgres::checkpoints::add(
        url,
        chain.shard,
        &signer.verifying_key(),
        &signed,
        &note,
    )
    .map_err(|e| chain.named(format!("inserting the checkpoint into govern_checkpoints: {e}")))?;
    Ok(if inserted {
        format!("checkpoint of size {size} inserted into govern_checkpoints")
    } else {
        format!(
            "govern_checkpoints already holds a checkpoint of size {size}: kept, nothing inserted"
        )
    })
}

/// Prints the checkpoint, JSON or (`--note`) the signed note.
fn print(
    args: &CheckpointArgs,
    checkpoint: &Checkpoint,
    signer: &CheckpointSigner,
) -> Result<(), String> {
    if args.note {
        let note = signer.sign_note(checkpoint);
        say!("{}", note.strip_suffix('\n').unwrap_or(&note));
    } else {
        say!("{}", signer.sign(*checkpoint).to_json());
    }
    Ok(())
}
