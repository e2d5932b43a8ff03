//! `govern export DATA_DIR --tenant T` and `govern prove DATA_DIR --seq N`: one tenant's
//! receipts (JSON Lines or CSV), optionally each with its inclusion proof, and the inclusion
//! proof of one receipt. Both read the ledger only after it verifies, and prove against the
//! latest signed checkpoint when the data directory has one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use govern_governors::TenantId;
use govern_ledger::checkpoint::SignedCheckpoint;
use govern_ledger::merkle::{MerkleTree, leaf_hash};
use govern_ledger::verify::verify_dir;
use govern_receipt::{Receipt, ReceiptJson};
use serde_json::json;

use crate::ledger_dir::{Message, open_read_only, write_error};
use crate::verify::CHECKPOINT_FILE;

/// Output formats of `govern export`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Format {
    /// One receipt JSON object per line (the receipt JSON view of docs/receipts.md).
    Jsonl,
    /// A header line, then one line per receipt; `args` and `metadata` are JSON objects.
    Csv,
}

/// Options of `govern export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The ledger's data directory.
    data_dir: PathBuf,
    /// The tenant whose receipts to export (only that tenant's: never another's).
    #[arg(long)]
    tenant: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// With each receipt, its inclusion proof against the latest checkpoint (JSON Lines
    /// only: each line becomes {"receipt": ..., "inclusion_proof": ...}).
    #[arg(long)]
    with_proofs: bool,
}

/// Options of `govern prove`.
#[derive(Debug, Args)]
pub(crate) struct ProveArgs {
    /// The ledger's data directory.
    data_dir: PathBuf,
    /// The receipt's sequence number.
    #[arg(long)]
    seq: u64,
}

/// The tree size proofs are made against: the checkpoint's if there is one, else the ledger's.
fn proof_size(dir: &Path, tree: &MerkleTree) -> Result<(u64, Option<SignedCheckpoint>), String> {
    let path = dir.join(CHECKPOINT_FILE);
    if !path.exists() {
        return Ok((tree.len(), None));
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let signed =
        SignedCheckpoint::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((signed.checkpoint.size.min(tree.len()), Some(signed)))
}

/// The inclusion proof of receipt `seq` with hash `hash` in the tree of `size` leaves.
fn proof_json(
    tree: &MerkleTree,
    seq: u64,
    hash: &govern_receipt::Digest,
    size: u64,
) -> Result<serde_json::Value, String> {
    if seq >= size {
        return Ok(serde_json::Value::Null);
    }
    let proof = tree.inclusion_proof(seq, size).map_err(|e| e.to_string())?;
    let root = tree.root_at(size).map_err(|e| e.to_string())?;
    Ok(json!({
        "leaf_index": seq,
        "tree_size": size,
        "leaf_hash": leaf_hash(hash).to_string(),
        "root": root.to_string(),
        "hashes": proof.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_line(r: &ReceiptJson) -> String {
    let args = serde_json::to_string(&r.args).unwrap_or_default();
    let metadata = serde_json::to_string(&r.metadata).unwrap_or_default();
    let fields = [
        r.seq.to_string(),
        r.receipt_id.clone(),
        r.timestamp_ms.to_string(),
        r.tenant_id.clone(),
        r.governor.clone(),
        r.resource_id.clone(),
        r.resource_seq.to_string(),
        r.command.clone(),
        r.state_from.clone(),
        r.state_to.clone(),
        r.reason.clone(),
        args,
        metadata,
        r.prev_hash.clone(),
        r.hash.clone(),
    ];
    fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
}

/// Runs `govern export`.
pub(crate) fn export(args: &ExportArgs) -> Result<(), String> {
    let tenant = TenantId::new(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    if args.with_proofs && matches!(args.format, Format::Csv) {
        return Err("--with-proofs needs --format jsonl".into());
    }
    let report =
        verify_dir(&args.data_dir).map_err(|e| format!("the ledger does not verify: {e}"))?;
    let (size, _) = proof_size(&args.data_dir, &report.tree)?;
    let store = open_read_only(&args.data_dir)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if matches!(args.format, Format::Csv) {
        let header = "seq,receipt_id,timestamp_ms,tenant_id,governor,resource_id,resource_seq,command,state_from,state_to,reason,args,metadata,prev_hash,hash";
        writeln!(out, "{header}").map_err(|e| e.to_string())?;
    }
    let mut count = 0u64;
    store
        .for_each_record(|seq, record| -> Result<(), Message> {
            let receipt = Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?;
            if receipt.body.tenant != tenant {
                return Ok(());
            }
            count += 1;
            let view = ReceiptJson::from(&receipt);
            let line = match (args.format, args.with_proofs) {
                (Format::Csv, _) => csv_line(&view),
                (Format::Jsonl, false) => {
                    serde_json::to_string(&view).map_err(|e| e.to_string())?
                }
                (Format::Jsonl, true) => {
                    let proof = proof_json(&report.tree, seq, &receipt.hash, size)?;
                    json!({ "receipt": view, "inclusion_proof": proof }).to_string()
                }
            };
            writeln!(out, "{line}").map_err(|e| Message(write_error(&e)))
        })
        .map_err(|e| e.0)?;
    out.flush().map_err(|e| write_error(&e))?;
    eprintln!("exported {count} receipts of tenant {tenant}");
    Ok(())
}

/// Runs `govern prove`.
pub(crate) fn prove(args: &ProveArgs) -> Result<(), String> {
    let report =
        verify_dir(&args.data_dir).map_err(|e| format!("the ledger does not verify: {e}"))?;
    if args.seq >= report.receipts {
        return Err(format!("no receipt {}: the ledger holds {}", args.seq, report.receipts));
    }
    let (size, checkpoint) = proof_size(&args.data_dir, &report.tree)?;
    // Proofs against the checkpoint when it covers the receipt, else against the ledger now.
    let size = if args.seq < size { size } else { report.tree.len() };
    let store = open_read_only(&args.data_dir)?;
    let mut found = None;
    store
        .for_each_record(|seq, record| -> Result<(), Message> {
            if seq == args.seq {
                found = Some(Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?);
            }
            Ok(())
        })
        .map_err(|e| e.0)?;
    let receipt = found.ok_or_else(|| format!("receipt {} not found", args.seq))?;
    let checkpoint = checkpoint
        .filter(|c| c.checkpoint.size == size)
        .map(|c| serde_json::from_str::<serde_json::Value>(&c.to_json()).unwrap_or_default());
    let out = json!({
        "receipt": ReceiptJson::from(&receipt),
        "inclusion_proof": proof_json(&report.tree, args.seq, &receipt.hash, size)?,
        "checkpoint": checkpoint,
    });
    say!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    Ok(())
}
