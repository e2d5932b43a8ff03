//! `govern export LEDGER --tenant T` and `govern prove LEDGER --seq N | --consistency CP`:
//! one tenant's receipts (JSON Lines or CSV), optionally with inclusion proofs, the inclusion
//! proof of one receipt, and the consistency proof from a saved checkpoint to the current one.
//! All read the ledger only after it verifies, and use a checkpoint only after verifying its
//! signature and its root against the ledger: whatever they print as a checkpoint has been
//! verified. The data directory's latest checkpoint is checkpoint.json, else checkpoint.note;
//! a database shard's is its latest row of `govern_checkpoints` ([`OwnCheckpoints`]). The line shapes are specified in docs/receipts.md ("Exports with
//! proofs"); `govern verify --export` reads them back with the same types.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use govern_governors::TenantId;
use govern_ledger::checkpoint::{CHECKPOINT_FILE, NOTE_FILE, VerifiedCheckpoint};
use govern_ledger::merkle::{ProofTree, leaf_hash, verify_inclusion};
use govern_receipt::{Digest, Receipt, ReceiptJson};
use serde::{Deserialize, Serialize};

use crate::checkpoints::{OwnCheckpoints, PublicKey, read_checked};
use crate::ledger_dir::{self, LedgerArg, Message, for_each_record};
use crate::out::{Stdout, write_error};

/// The format name in the first and the last line of an export with proofs.
pub(crate) const EXPORT_FORMAT: &str = "govern.export.v1";

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
    /// The ledger: its data directory, or a PostgreSQL database (`postgres://USER@HOST/DB`,
    /// or libpq's `host=... dbname=...`), opened read-only. On a database, the checkpoint is
    /// the tenant's shard's latest row of govern_checkpoints.
    #[arg(value_name = "LEDGER", value_parser = LedgerArg::parse)]
    ledger: LedgerArg,
    /// The tenant whose receipts to export (only that tenant's: never another's). On a
    /// database of several shards, its shard is read, and proofs are in that shard's tree.
    #[arg(long)]
    tenant: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// With each receipt, its inclusion proof against the ledger's latest checkpoint
    /// (checkpoint.json, else checkpoint.note; on a database the shard's latest row, both
    /// forms; verified first), between a header line that
    /// carries that checkpoint and an end line (JSON Lines only; shapes in docs/receipts.md).
    /// With no checkpoint yet, the proofs are against the ledger's whole tree, which nobody
    /// signed: such an export verifies only against a checkpoint saved since (see
    /// --consistency-from).
    #[arg(long)]
    with_proofs: bool,
    /// With --with-proofs: also carry a consistency proof from this saved checkpoint (JSON or
    /// signed note) to the export's, so that `govern verify --export` can check the export
    /// against it. Repeatable.
    #[arg(long, value_name = "CHECKPOINT", requires = "with_proofs")]
    consistency_from: Vec<PathBuf>,
    /// The checkpoint signer's public key: a file holding the public key in hex, as
    /// DATA_DIR/checkpoint.pub is written (default: DATA_DIR/checkpoint.pub; on a database,
    /// the key stored beside the checkpoint in govern_checkpoint_keys, which shows only that
    /// the checkpoints and the chain agree: pin the signer's key with this).
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// The archive directory of a data directory whose oldest receipts `govern archive`
    /// moved there: those receipts are then verified in full with the rest, and included
    /// (export) or provable (prove). Without it, they are checked by what the data
    /// directory records about them and left out.
    #[arg(long, value_name = "ARCHIVE_DIR")]
    archive: Option<PathBuf>,
}

/// Options of `govern prove`.
#[derive(Debug, Args)]
pub(crate) struct ProveArgs {
    /// The ledger: its data directory, or a PostgreSQL database (`postgres://USER@HOST/DB`,
    /// or libpq's `host=... dbname=...`), opened read-only. On a database, the checkpoint is
    /// the shard's latest row of govern_checkpoints.
    #[arg(value_name = "LEDGER", value_parser = LedgerArg::parse)]
    ledger: LedgerArg,
    /// The receipt whose inclusion proof to print.
    #[arg(long, value_name = "N", required_unless_present = "consistency")]
    seq: Option<u64>,
    /// The shard whose chain the receipt is in: each shard of a database has its own chain,
    /// sequence numbers and tree. Needed (or --tenant) on a database of several shards;
    /// otherwise 0, the only one (a data directory holds one chain).
    #[arg(long, value_name = "K", conflicts_with = "tenant")]
    shard: Option<u32>,
    /// The shard of this tenant's receipts, instead of --shard.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Print the consistency proof from this saved checkpoint (JSON or signed note) to the
    /// ledger's latest checkpoint (checkpoint.json, else checkpoint.note; on a database the
    /// shard's latest row) instead.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "seq")]
    consistency: Option<PathBuf>,
    /// The checkpoint signer's public key: a file holding the public key in hex, as
    /// DATA_DIR/checkpoint.pub is written (default: DATA_DIR/checkpoint.pub; on a database,
    /// the key stored beside the checkpoint in govern_checkpoint_keys, which shows only that
    /// the checkpoints and the chain agree: pin the signer's key with this).
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// The archive directory of a data directory whose oldest receipts `govern archive`
    /// moved there: those receipts are then verified in full with the rest, and included
    /// (export) or provable (prove). Without it, they are checked by what the data
    /// directory records about them and left out.
    #[arg(long, value_name = "ARCHIVE_DIR")]
    archive: Option<PathBuf>,
}

/// An inclusion proof as exported and printed (RFC 9162 §2.1.3), fields in this order; read
/// back by `govern verify --export`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionProof {
    pub(crate) leaf_index: u64,
    pub(crate) tree_size: u64,
    pub(crate) leaf_hash: String,
    pub(crate) root: String,
    pub(crate) hashes: Vec<String>,
}

/// A consistency proof from the tree of `first_size` leaves to that of `second_size`, as
/// exported and printed (RFC 9162 §2.1.4), fields in this order; read back by `govern
/// verify --export`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyProof {
    pub(crate) first_size: u64,
    pub(crate) first_root: String,
    pub(crate) second_size: u64,
    pub(crate) second_root: String,
    pub(crate) hashes: Vec<String>,
}

/// The first line of an export with proofs, fields in this order; read back by `govern
/// verify --export`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    /// [`EXPORT_FORMAT`].
    pub(crate) export: String,
    /// The tenant whose receipts follow.
    pub(crate) tenant_id: String,
    /// The size of the tree the inclusion proofs are made against.
    pub(crate) tree_size: u64,
    /// Its root, hex.
    pub(crate) root: String,
    /// The signed checkpoint of that tree in its JSON form (an object), if the data directory
    /// had one.
    pub(crate) checkpoint: Option<serde_json::Value>,
    /// The same tree head as a C2SP signed note, if the data directory had one.
    pub(crate) checkpoint_note: Option<String>,
    /// Consistency proofs from older checkpoints to the export's tree.
    pub(crate) consistency_proofs: Vec<ConsistencyProof>,
    /// When the tenant's receipts below this sequence number are archived and not in the
    /// export (it was made without `--archive`): a resource's first receipt here may then
    /// continue a numbering begun below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) archived_below: Option<u64>,
}

/// A receipt line of an export with proofs, and `govern prove --seq`'s output (which also
/// has `checkpoint`, even when null, and on a database of several shards `shard`, first: the
/// chain the receipt and its proof are of; a receipt line has neither, `govern verify
/// --export` refusing unknown fields).
#[derive(Debug, Serialize)]
struct ReceiptLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<u32>,
    receipt: &'a ReceiptJson,
    inclusion_proof: Option<InclusionProof>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Option<&'a VerifiedCheckpoint>>,
}

/// The last line of an export with proofs; read back by `govern verify --export`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndLine {
    /// [`EXPORT_FORMAT`].
    pub(crate) end: String,
    /// The number of receipt lines.
    pub(crate) receipts: u64,
}

/// `govern prove --consistency`'s output.
#[derive(Debug, Serialize)]
struct ConsistencyOutput<'a> {
    old_checkpoint: VerifiedCheckpoint,
    checkpoint: &'a VerifiedCheckpoint,
    consistency_proof: ConsistencyProof,
}

/// Inclusion proofs in the tree of a ledger's first `size` receipts.
struct Prover<'a> {
    tree: &'a dyn ProofTree,
    size: u64,
    /// The root at `size`, hex: computed once, in every proof.
    root: String,
}

impl<'a> Prover<'a> {
    fn new(tree: &'a dyn ProofTree, size: u64) -> Result<Self, String> {
        let root = tree.root_at(size).map_err(|e| e.to_string())?.to_string();
        Ok(Self { tree, size, root })
    }

    /// The inclusion proof of receipt `seq` with hash `hash`, or `None` when the receipt is
    /// not in the tree.
    fn proof(&self, seq: u64, hash: &Digest) -> Result<Option<InclusionProof>, String> {
        if seq >= self.size {
            return Ok(None);
        }
        let proof = self.tree.inclusion_proof(seq, self.size).map_err(|e| e.to_string())?;
        Ok(Some(self.shown(seq, hash, &proof)))
    }

    /// [`Self::proof`] of a receipt in the tree, checked against `root` (a signed
    /// checkpoint's) before it is shown: what a tree read lazily, from files nothing vouches
    /// for, gives.
    fn checked(&self, seq: u64, hash: &Digest, root: &Digest) -> Result<InclusionProof, String> {
        let proof = self.tree.inclusion_proof(seq, self.size).map_err(|e| e.to_string())?;
        verify_inclusion(&leaf_hash(hash), seq, self.size, &proof, root).map_err(|e| {
            format!("receipt {seq}: its proof does not check against the checkpoint: {e}")
        })?;
        Ok(self.shown(seq, hash, &proof))
    }

    fn shown(&self, seq: u64, hash: &Digest, proof: &[Digest]) -> InclusionProof {
        InclusionProof {
            leaf_index: seq,
            tree_size: self.size,
            leaf_hash: leaf_hash(hash).to_string(),
            root: self.root.clone(),
            hashes: hex_list(proof),
        }
    }
}

/// The consistency proof from the tree of `first` leaves to that of `second`.
fn consistency_proof(
    tree: &dyn ProofTree,
    first: u64,
    second: u64,
) -> Result<ConsistencyProof, String> {
    let proof = tree.consistency_proof(first, second).map_err(|e| e.to_string())?;
    let root = |size| tree.root_at(size).map(|r| r.to_string()).map_err(|e| e.to_string());
    Ok(ConsistencyProof {
        first_size: first,
        first_root: root(first)?,
        second_size: second,
        second_root: root(second)?,
        hashes: hex_list(&proof),
    })
}

/// One line of JSON.
fn to_line(value: &impl Serialize) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

/// Pretty JSON.
fn to_pretty(value: &impl Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

fn hex_list(hashes: &[Digest]) -> Vec<String> {
    hashes.iter().map(ToString::to_string).collect()
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

/// The header line of an export with proofs: the tree its proofs are made against (the
/// latest verified checkpoint's, else the ledger's whole tree, unsigned), the checkpoint in
/// JSON form and as a signed note when the data directory has them of that tree, and the
/// consistency proofs asked for.
fn export_header(
    args: &ExportArgs,
    saved: &OwnCheckpoints,
    tenant: &TenantId,
    tree: &dyn ProofTree,
) -> Result<Header, String> {
    let key = PublicKey::new(args.ledger.dir(), args.public_key.as_deref()).or_beside(saved);
    let saved = saved.check(&key, tree)?;
    let latest = saved.latest();
    let whole = || tree.root_at(tree.len()).map_err(|e| e.to_string());
    let (size, root) = match latest {
        Some((_, c)) => (c.size(), c.root()),
        None => (tree.len(), whole()?),
    };
    // The note is the latest unless checkpoint.json is there too, and then should be of its
    // tree head: a crash between the runtime's two renames leaves it one behind.
    let note = match (latest, saved.note()) {
        (Some((latest, _)), Some((path, note))) if (note.size(), note.root()) != (size, root) => {
            tell!(
                "note: {} (size {}) is not of the tree head of {} (size {size}); the export carries no signed note",
                path.display(),
                note.size(),
                latest.display(),
            );
            None
        }
        (_, note) => note.and_then(|(_, c)| c.note()).map(str::to_owned),
    };
    let mut consistency = Vec::new();
    for path in &args.consistency_from {
        let old = read_checked(path, key.get()?, tree)?;
        if old.size() > size {
            return Err(format!(
                "--consistency-from {}: it covers {} receipts, more than the {size} the export's proofs are made against",
                path.display(),
                old.size()
            ));
        }
        consistency.push(consistency_proof(tree, old.size(), size)?);
    }
    Ok(Header {
        export: EXPORT_FORMAT.to_owned(),
        tenant_id: tenant.as_str().to_owned(),
        tree_size: size,
        root: root.to_string(),
        checkpoint: latest.and_then(|(_, c)| c.json().is_some().then(|| c.to_json_value())),
        checkpoint_note: note,
        consistency_proofs: consistency,
        archived_below: None,
    })
}

/// The first line of a CSV export.
const CSV_HEADER: &str = "seq,receipt_id,timestamp_ms,tenant_id,governor,resource_id,resource_seq,command,state_from,state_to,reason,args,metadata,prev_hash,hash";

/// Each resource's next `resource_seq`, checked receipt by receipt as `govern verify` checks
/// it, over receipts that include every receipt of each resource they name (one tenant's).
#[derive(Default)]
struct ResourceNumbering {
    next: std::collections::BTreeMap<(govern_governors::GovernorKind, String), u64>,
}

impl ResourceNumbering {
    /// Checks receipt `seq` (its record): its resource's next number, or the gap `verify`
    /// reports.
    fn push(&mut self, seq: u64, record: &[u8]) -> Result<(), String> {
        let key = Receipt::decode_key(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        let next = self.next.entry((key.governor, key.resource.to_owned())).or_insert(0);
        if key.resource_seq != *next {
            return Err(govern_receipt::ChainError::resource_seq_gap(seq, &key, *next).to_string());
        }
        *next += 1;
        Ok(())
    }
}

/// Runs `govern export`.
pub(crate) fn export(args: &ExportArgs) -> Result<(), String> {
    let tenant = TenantId::new(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    if args.with_proofs && matches!(args.format, Format::Csv) {
        return Err("--with-proofs needs --format jsonl".into());
    }
    // Only the tenant's shard: its receipts are written there, and nowhere else; its chain
    // is the one verified and proved in.
    let chain = args.ledger.tenant_chain(&tenant)?;
    // The checkpoints before the ledger (see OwnCheckpoints).
    let saved = args.ledger.checkpoints(chain)?;
    // From a data directory: only the tenant's receipts read, each proved from the tree
    // files against the latest checkpoint's signed root (printed with --with-proofs) and
    // each resource's numbering checked, when that checkpoint covers the whole ledger; else
    // the ledger is verified first and read whole.
    if let (LedgerArg::Dir(dir), None) = (&args.ledger, &args.archive)
        && let Some(count) = export_lazily(args, dir, &saved, &tenant)?
    {
        tell!("exported {count} receipts of tenant {tenant}");
        return Ok(());
    }
    let report = args
        .ledger
        .verify(chain, args.archive.as_deref())
        .map_err(|e| format!("the ledger does not verify: {e}"))?;
    let header = if args.with_proofs {
        let mut header = export_header(args, &saved, &tenant, &*report.tree)?;
        if args.archive.is_none() && report.boundary > 0 {
            header.archived_below = Some(report.boundary);
        }
        Some(header)
    } else {
        None
    };
    let prover = match &header {
        Some(h) => Some(Prover::new(&*report.tree, h.tree_size)?),
        None => None,
    };
    let store = args.ledger.open_read_only(chain)?;
    // Archived receipts come from the archive, first; without it they are left out.
    let archived = match &args.archive {
        Some(archive) if report.boundary > 0 => Some(ledger_dir::open_archive_read_only(archive)?),
        _ => None,
    };
    if archived.is_none() && report.boundary > 0 {
        tell!(
            "note: receipts below {} are archived and not exported (give --archive ARCHIVE_DIR to include them)",
            report.boundary
        );
    }
    // Once the reader has gone (`| head`), lines are dropped and the export goes on to its
    // real end, so that its exit status is the one a whole export would have had.
    let mut out = std::io::BufWriter::new(Stdout);
    let write = |out: &mut std::io::BufWriter<_>, line: &str| {
        writeln!(out, "{line}").map_err(|e| write_error(&e))
    };
    if matches!(args.format, Format::Csv) {
        write(&mut out, CSV_HEADER)?;
    }
    if let Some(header) = &header {
        write(&mut out, &to_line(header)?)?;
    }
    let mut count = 0u64;
    let stores = archived.iter().map(|a| a.as_ref()).chain([store.as_ref()]);
    for store in stores {
        for_each_record(store, |seq, record| -> Result<(), Message> {
            // Only what was verified: a live writer may have appended since.
            if seq >= report.receipts {
                return Ok(());
            }
            let receipt = Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?;
            if receipt.body.tenant != tenant {
                return Ok(());
            }
            count += 1;
            let view = ReceiptJson::from(&receipt);
            let line = match (args.format, &prover) {
                (Format::Csv, _) => csv_line(&view),
                (Format::Jsonl, None) => to_line(&view)?,
                (Format::Jsonl, Some(prover)) => to_line(&ReceiptLine {
                    receipt: &view,
                    inclusion_proof: prover.proof(seq, &receipt.hash)?,
                    checkpoint: None,
                    shard: None,
                })?,
            };
            write(&mut out, &line).map_err(Message)
        })
        .map_err(|e| chain.named(e.0))?;
    }
    if header.is_some() {
        write(&mut out, &to_line(&EndLine { end: EXPORT_FORMAT.to_owned(), receipts: count })?)?;
    }
    out.flush().map_err(|e| write_error(&e))?;
    if chain.is_sharded() {
        tell!("exported {count} receipts of tenant {tenant} from {chain}");
    } else {
        tell!("exported {count} receipts of tenant {tenant}");
    }
    Ok(())
}

/// `govern export DATA_DIR --tenant T` without reading the whole ledger: the tenant's
/// receipts found through the snapshot (`find_receipts`), each one's inclusion proof made
/// from the lazily read tree and checked against the latest checkpoint's root, which must
/// cover the whole ledger (the proof printed with --with-proofs), and the numbering of each
/// of the tenant's resources checked (every receipt of a resource is its tenant's, so all
/// of them are read here: a gap is found as `govern verify` finds it). `Ok(None)` when it
/// cannot go this way and nothing was written (with --with-proofs a note says why): the
/// caller takes the whole-ledger path.
fn export_lazily(
    args: &ExportArgs,
    dir: &std::path::Path,
    saved: &OwnCheckpoints,
    tenant: &TenantId,
) -> Result<Option<u64>, String> {
    // A plain export without what this path needs (tree files, a checkpoint) is the
    // ordinary case: it takes the whole-ledger path without a note.
    let fallback = |why: String| {
        if args.with_proofs {
            tell!(
                "note: the export could not be proved from the tree files ({why}); verifying the whole ledger instead"
            );
        }
        Ok(None)
    };
    let lazy = match ledger_dir::lazy_tree(dir) {
        Ok(lazy) => lazy,
        Err(why) => return fallback(why),
    };
    let tree = &*lazy.tree;
    let Some(store) = lazy.lazily.as_ref() else { return fallback("not read lazily".into()) };
    if lazy.boundary > 0 {
        return fallback("receipts are archived".into());
    }
    // Its tree head is the latest checkpoint's, verified against the tree (when there is
    // one), or the tree's own.
    let header = match export_header(args, saved, tenant, tree) {
        Ok(header) => header,
        Err(why) => return fallback(why),
    };
    if header.checkpoint.is_none() && header.checkpoint_note.is_none() {
        return fallback("no checkpoint".into());
    }
    if header.tree_size != tree.len() {
        return fallback("the latest checkpoint does not cover every receipt".into());
    }
    let checkpoint_root: Digest = header.root.parse().map_err(|e| format!("the root: {e}"))?;
    let filter = govern_ledger::ReceiptFilter { tenant, kind: None, resource: None };
    let found = match govern_ledger::find_receipts(dir, &**store, filter) {
        Ok(found) => found,
        Err(why) => return fallback(why),
    };
    let size = header.tree_size;
    let prover = Prover::new(tree, size)?;
    let mut out = std::io::BufWriter::new(Stdout);
    let write = |out: &mut std::io::BufWriter<_>, line: &str| {
        writeln!(out, "{line}").map_err(|e| write_error(&e))
    };
    match args.format {
        Format::Jsonl if args.with_proofs => write(&mut out, &to_line(&header)?)?,
        Format::Jsonl => {}
        Format::Csv => write(&mut out, CSV_HEADER)?,
    }
    let mut located =
        govern_ledger::LedgerStore::locate(&**store, &found.seqs).map_err(|e| e.to_string())?;
    let mut numbering = ResourceNumbering::default();
    let mut count = 0u64;
    while let Some((seq, record)) = located.next_record() {
        let record =
            record.map_err(|e| e.to_string())?.ok_or(format!("receipt {seq} is missing"))?;
        let receipt = Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        if receipt.body.tenant != *tenant {
            return Err(format!("receipt {seq} is not of tenant {tenant}"));
        }
        let proof = prover.checked(seq, &receipt.hash, &checkpoint_root)?;
        numbering.push(seq, record).map_err(|e| format!("the ledger does not verify: {e}"))?;
        let view = ReceiptJson::from(&receipt);
        let line = match args.format {
            Format::Csv => csv_line(&view),
            Format::Jsonl if args.with_proofs => to_line(&ReceiptLine {
                receipt: &view,
                inclusion_proof: Some(proof),
                checkpoint: None,
                shard: None,
            })?,
            Format::Jsonl => to_line(&view)?,
        };
        write(&mut out, &line)?;
        count += 1;
    }
    if args.with_proofs {
        write(&mut out, &to_line(&EndLine { end: EXPORT_FORMAT.to_owned(), receipts: count })?)?;
    }
    out.flush().map_err(|e| write_error(&e))?;
    Ok(Some(count))
}

/// `govern prove DATA_DIR --seq N` without verifying the ledger: the receipt read (its
/// frame checked), its inclusion proof made from the lazily read tree (`lazy_tree`) at the
/// latest checkpoint's size, and that proof checked against the checkpoint's signed root.
/// `Err` says why not (no checkpoint covering it, a tree file that does not agree, ...).
fn prove_lazily(
    dir: &std::path::Path,
    saved: &OwnCheckpoints,
    key: &PublicKey<'_>,
    wanted: u64,
) -> Result<String, String> {
    let lazy = ledger_dir::lazy_tree(dir)?;
    let tree = &*lazy.tree;
    let saved = saved.check(key, tree)?;
    let checkpoint = saved
        .latest()
        .map(|(_, c)| c)
        .filter(|c| wanted < c.size())
        .ok_or("no checkpoint covers the receipt")?;
    if wanted < lazy.boundary {
        return Err(format!("receipt {wanted} is archived"));
    }
    let store = lazy.lazily.as_ref().ok_or("not read lazily")?;
    let mut record = Vec::new();
    if !govern_ledger::LedgerStore::read(&**store, wanted, &mut record)
        .map_err(|e| e.to_string())?
    {
        return Err(format!("receipt {wanted} not found"));
    }
    let receipt = Receipt::decode(&record).map_err(|e| format!("receipt {wanted}: {e}"))?;
    let size = checkpoint.size();
    let proof = Prover::new(tree, size)?.checked(wanted, &receipt.hash, &checkpoint.root())?;
    let out = ReceiptLine {
        shard: None,
        receipt: &ReceiptJson::from(&receipt),
        inclusion_proof: Some(proof),
        checkpoint: Some(Some(checkpoint)),
    };
    to_pretty(&out)
}

/// Runs `govern prove`.
pub(crate) fn prove(args: &ProveArgs) -> Result<(), String> {
    let ledger = &args.ledger;
    let tenant = crate::ledger_dir::tenant_option(args.tenant.as_deref())?;
    let chain = ledger.pick_chain(args.shard, tenant.as_ref())?;
    // The checkpoints before the ledger (see OwnCheckpoints).
    let saved = ledger.checkpoints(chain)?;
    let key = PublicKey::new(ledger.dir(), args.public_key.as_deref()).or_beside(&saved);
    // A receipt's proof against the latest checkpoint from the tree files and the segment it
    // is in, when that proof checks out against the checkpoint's signed root; else (or for a
    // consistency proof, an archived receipt, a database) the whole ledger is verified first.
    if let (LedgerArg::Dir(dir), None, Some(wanted)) = (ledger, &args.archive, args.seq) {
        match prove_lazily(dir, &saved, &key, wanted) {
            Ok(out) => {
                say!("{out}");
                return Ok(());
            }
            Err(why) => tell!(
                "note: the proof could not be made from the tree files and the receipt's segment ({why}); verifying the whole ledger instead"
            ),
        }
    }
    let report = ledger
        .verify(chain, args.archive.as_deref())
        .map_err(|e| format!("the ledger does not verify: {e}"))?;
    let tree = &*report.tree;
    let saved = saved.check(&key, tree)?;
    let latest = saved.latest().map(|(_, c)| c);
    if let Some(old) = &args.consistency {
        let Some(current) = latest else {
            let none = match ledger {
                LedgerArg::Dir(_) => {
                    format!("{ledger} has no checkpoint ({CHECKPOINT_FILE} or {NOTE_FILE})")
                }
                LedgerArg::Postgres(_) => {
                    chain.named(format!("{ledger} has no checkpoint in govern_checkpoints"))
                }
            };
            return Err(format!("{none}: there is no current checkpoint to prove consistency to"));
        };
        let old_checkpoint = read_checked(old, key.get()?, tree)?;
        if old_checkpoint.size() > current.size() {
            return Err(format!(
                "{} covers {} receipts, more than the ledger's latest checkpoint ({}): it is not older",
                old.display(),
                old_checkpoint.size(),
                current.size()
            ));
        }
        let consistency_proof = consistency_proof(tree, old_checkpoint.size(), current.size())?;
        let out = ConsistencyOutput { old_checkpoint, checkpoint: current, consistency_proof };
        say!("{}", to_pretty(&out)?);
        return Ok(());
    }
    let Some(wanted) = args.seq else {
        return Err("give --seq N or --consistency CHECKPOINT".into());
    };
    if wanted >= report.receipts {
        return Err(
            chain.named(format!("no receipt {wanted}: the ledger holds {}", report.receipts))
        );
    }
    // Against the checkpoint when it covers the receipt, else against the ledger now.
    let checkpoint = latest.filter(|c| wanted < c.size());
    let size = checkpoint.map_or(tree.len(), VerifiedCheckpoint::size);
    // An archived receipt is read from the archive (verified with the ledger above).
    let store = match (&args.archive, wanted < report.boundary) {
        (Some(archive), true) => ledger_dir::open_archive_read_only(archive)?,
        (None, true) => {
            return Err(format!(
                "receipt {wanted} is archived (the boundary is {}): give --archive ARCHIVE_DIR",
                report.boundary
            ));
        }
        (_, false) => ledger.open_read_only(chain)?,
    };
    let mut record = Vec::new();
    let found = store.read(wanted, &mut record).map_err(|e| chain.named(e.to_string()))?;
    let found = found
        .then(|| {
            Receipt::decode(&record).map_err(|e| chain.named(format!("receipt {wanted}: {e}")))
        })
        .transpose()?;
    let receipt = found.ok_or_else(|| chain.named(format!("receipt {wanted} not found")))?;
    let out = ReceiptLine {
        shard: chain.is_sharded().then_some(chain.shard),
        receipt: &ReceiptJson::from(&receipt),
        inclusion_proof: Prover::new(tree, size)?.proof(wanted, &receipt.hash)?,
        checkpoint: Some(checkpoint),
    };
    say!("{}", to_pretty(&out)?);
    Ok(())
}
