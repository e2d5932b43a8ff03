//! Reading a ledger without changing it, shared by `govern verify`, `export`, `prove`,
//! `receipts`, `invoices` and `sagas`: the ledger argument is a data directory or a
//! PostgreSQL database ([`LedgerArg`]), opened read-only as a [`LedgerStore`] that every
//! command reads through the same code. A database may be divided into shards, each its own
//! hash chain ([`Chain`]): a command reads the one chain it needs (a tenant's shard) or each
//! in turn.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use govern_governors::TenantId;
use govern_ledger::LedgerStore;
use govern_ledger::archive::Manifest;
use std::sync::Arc;

use govern_ledger::SegmentReader;
use govern_ledger::merkle::{
    LazyTree, MerkleTree, PartialTree, ProofTree, ReceiptHashes, TreeSegment, decode_tree_file,
    tree_file_name,
};
use govern_ledger::segment::{SegmentOptions, SegmentStore};
use govern_ledger::verify::{VerifyError, verify_archived, verify_dir, verify_store};
use govern_postgres::cluster::shard_of;
use govern_postgres::{PostgresStore, StoredCheckpoint};
use govern_receipt::Digest;

use crate::checkpoints::OwnCheckpoints;

/// The `--tenant` option, checked: a tenant id or nothing.
pub(crate) fn tenant_option(
    tenant: Option<&str>,
) -> Result<Option<govern_governors::TenantId>, String> {
    tenant.map(govern_governors::TenantId::new).transpose().map_err(|e| format!("--tenant: {e}"))
}

/// A shard's stored checkpoints as a verifier reads them: the latest row and every row's
/// size and root; `Err`: a row that does not parse (the shard's failure).
pub(crate) type StoredRead =
    Result<(Option<StoredCheckpoint>, Vec<(u64, govern_receipt::Digest)>), String>;

/// Where a ledger is: a data directory (it holds `segments/`), or a PostgreSQL database
/// named by a `postgres://` / `postgresql://` URL or a libpq `key=value` string.
#[derive(Clone, Debug)]
pub(crate) enum LedgerArg {
    /// A segment store's data directory.
    Dir(PathBuf),
    /// A PostgreSQL connection string (it may hold a password: shown only through
    /// [`govern_postgres::describe`]).
    Postgres(String),
}

impl LedgerArg {
    /// Parses the command line's ledger argument (for clap's `value_parser`).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if govern_postgres::is_connection_string(s) {
            Ok(Self::Postgres(s.to_owned()))
        } else {
            Ok(Self::Dir(PathBuf::from(s)))
        }
    }

    /// The data directory, if the ledger is in one.
    pub(crate) fn dir(&self) -> Option<&Path> {
        match self {
            Self::Dir(dir) => Some(dir),
            Self::Postgres(_) => None,
        }
    }

    /// The ledger's own latest checkpoint of `chain`, read before the chain is: a data
    /// directory's files; a database shard's latest row ([`Self::stored_checkpoint`]), none
    /// when it has none.
    pub(crate) fn checkpoints(&self, chain: Chain) -> Result<OwnCheckpoints, String> {
        match self {
            Self::Dir(dir) => Ok(OwnCheckpoints::read(dir)),
            Self::Postgres(_) => Ok(self
                .stored_checkpoint(chain)?
                .map_or_else(OwnCheckpoints::none, OwnCheckpoints::stored)),
        }
    }

    /// A database chain's latest signed checkpoint as stored (`govern_checkpoints`, with the
    /// public key its key id names), not verified; `None` when the shard has none, and in a
    /// data directory (its checkpoints are files: [`Self::checkpoints`]). Read on a
    /// connection of its own, before the chain is opened: the chain only grows and a
    /// checkpoint is written after the receipts it covers are durable, so one read first
    /// never covers more than the chain read after it, even while a runtime writes.
    pub(crate) fn stored_checkpoint(
        &self,
        chain: Chain,
    ) -> Result<Option<StoredCheckpoint>, String> {
        let Self::Postgres(url) = self else { return Ok(None) };
        PostgresStore::open_read_only_shard(url, chain.shard)
            .and_then(|store| store.latest_checkpoint())
            .map_err(|e| chain.named(format!("{self}: reading its checkpoint: {e}")))
    }

    /// What a verifier reads of `chain`'s stored checkpoints before the chain, on one
    /// connection: the latest row ([`Self::stored_checkpoint`]) and the tree size and root of
    /// each row, newest first (at most `CHECKPOINTS_CHECKED_MAX`); nothing for a data
    /// directory (its checkpoints are files). `Err` outside: the database failed (every shard
    /// would); inside: a row does not parse (this shard's failure).
    pub(crate) fn stored_checkpoints(&self, chain: Chain) -> Result<StoredRead, String> {
        let Self::Postgres(url) = self else { return Ok(Ok((None, Vec::new()))) };
        let named = |e: govern_ledger::StoreError| {
            chain.named(format!("{self}: reading its checkpoints: {e}"))
        };
        let store = PostgresStore::open_read_only_shard(url, chain.shard).map_err(named)?;
        let read =
            store.latest_checkpoint().and_then(|latest| Ok((latest, store.checkpoint_roots()?)));
        match read {
            Ok(read) => Ok(Ok(read)),
            Err(e @ govern_ledger::StoreError::Corrupt(_)) => Ok(Err(named(e))),
            Err(e) => Err(named(e)),
        }
    }

    /// How many chains the ledger holds: a data directory one; a database as many as its
    /// shards ([`govern_postgres::read_shards`], which only reads).
    pub(crate) fn shards(&self) -> Result<u32, String> {
        match self {
            Self::Dir(_) => Ok(1),
            Self::Postgres(url) => {
                govern_postgres::read_shards(url).map_err(|e| format!("{self}: {e}"))
            }
        }
    }

    /// Every chain of the ledger, in shard order.
    pub(crate) fn chains(&self) -> Result<impl Iterator<Item = Chain>, String> {
        Ok(Chain::all(self.shards()?))
    }

    /// The chain holding `tenant`'s receipts: a database's shard of the tenant
    /// ([`shard_of`]), where its receipts are written; a data directory's only chain.
    pub(crate) fn tenant_chain(&self, tenant: &TenantId) -> Result<Chain, String> {
        let shards = self.shards()?;
        Ok(Chain { shard: shard_of(tenant.as_str(), shards), shards })
    }

    /// The chain `--shard K` or `--tenant T` picks (`govern prove`). Without either, the only
    /// chain; on a database of several shards that is an error asking for one.
    pub(crate) fn pick_chain(
        &self,
        shard: Option<u32>,
        tenant: Option<&TenantId>,
    ) -> Result<Chain, String> {
        let shards = self.shards()?;
        match (shard, tenant) {
            (Some(shard), _) if shard >= shards => Err(match self {
                Self::Dir(_) => {
                    format!("--shard {shard}: a data directory holds one chain, shard 0")
                }
                Self::Postgres(_) => format!(
                    "--shard {shard}: {self} is divided into {shards} shard(s), 0 to {}",
                    shards - 1
                ),
            }),
            (Some(shard), _) => Ok(Chain { shard, shards }),
            (None, Some(tenant)) => Ok(Chain { shard: shard_of(tenant.as_str(), shards), shards }),
            (None, None) if shards == 1 => Ok(Chain::ONLY),
            (None, None) => Err(format!(
                "{self} is divided into {shards} shards, each its own chain with its own sequence numbers: say which with --shard K (0 to {}), or --tenant T for the shard of T's receipts",
                shards - 1
            )),
        }
    }

    /// Opens one chain of the ledger read-only: nothing is created, migrated or written. A
    /// data directory takes no lock, and while a writer holds it, what it has written so
    /// far is read (a note on stderr says so); a database must hold govern's schema already.
    pub(crate) fn open_read_only(&self, chain: Chain) -> Result<Box<dyn LedgerStore>, String> {
        match self {
            Self::Dir(_) if chain.shard != 0 => {
                Err(format!("{self}: a data directory holds one chain, shard 0"))
            }
            Self::Dir(dir) => Ok(Box::new(open_dir_read_only(dir)?)),
            Self::Postgres(url) => Ok(Box::new(
                PostgresStore::open_read_only_shard(url, chain.shard)
                    .map_err(|e| chain.named(format!("{self}: {e}")))?,
            )),
        }
    }

    /// Verifies one chain of the ledger (hash chain, fields, each resource's numbering, the
    /// Merkle tree, and in a data directory every frame) and keeps its tree, for proofs. A
    /// data directory with archived receipts: the live ones in full, the archived ones by
    /// what it records about them, or in full with `archive`; the tree then starts at the
    /// archive boundary, or at 0 with the archive.
    pub(crate) fn verify(&self, chain: Chain, archive: Option<&Path>) -> Result<Verified, String> {
        let named = |e: &VerifyError| failed(&chain.named("verification failed".into()), e);
        let report = match self {
            Self::Dir(dir) => match Manifest::read(dir).map_err(|e| e.to_string())? {
                Some(manifest) => return verify_archived_dir(dir, &manifest, archive),
                None => verify_dir(dir),
            },
            Self::Postgres(_) => verify_store(self.open_read_only(chain)?.as_ref()),
        };
        if archive.is_some() {
            return Err(format!("{self} has no archived receipts: --archive does not apply"));
        }
        let report = report.map_err(|e| named(&e))?;
        let tree = Box::new(PartialTree::from(report.tree));
        Ok(Verified { receipts: report.receipts, boundary: 0, tree, lazily: None })
    }
}

/// A verified ledger ([`LedgerArg::verify`]): its receipts, its archive boundary and its
/// Merkle tree (from the boundary on, or whole).
pub(crate) struct Verified {
    /// Receipts verified (the archived ones included).
    pub(crate) receipts: u64,
    /// The first live receipt: 0 unless `govern archive` moved older ones out.
    pub(crate) boundary: u64,
    /// The tree, for proofs.
    pub(crate) tree: Box<dyn ProofTree>,
    /// When the tree was read lazily rather than verified ([`lazy_tree`]): the store its
    /// receipts are read from.
    pub(crate) lazily: Option<Arc<SegmentReader>>,
}

/// The receipt hashes of a store of segments, read when a lazy tree needs them.
struct StoreHashes(Arc<SegmentReader>);

impl ReceiptHashes for StoreHashes {
    fn receipt_hashes(&self, first: u64, end: u64) -> Result<Vec<Digest>, String> {
        let mut located = self.0.locate_range(first..end).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(usize::try_from(end - first).unwrap_or(0));
        while let Some((seq, record)) = located.next_record() {
            let record =
                record.map_err(|e| e.to_string())?.ok_or(format!("receipt {seq} is missing"))?;
            let at = record.len().checked_sub(32).ok_or(format!("receipt {seq} is too short"))?;
            out.push(Digest(record[at..].try_into().map_err(|_| format!("receipt {seq}"))?));
        }
        Ok(out)
    }
}

/// Sealed segments without a valid tree file that a lazily read tree reads whole, at most
/// (the runtime writes the files with each ledger snapshot, so the newest may lack one).
const LAZY_MISSING_MAX: usize = 2;

/// The Merkle tree of data directory `dir` read lazily, without verifying the ledger: the
/// archive's frontier (if any), each sealed segment's subtree roots from its tree file
/// (`trees/`), and the receipts of the segments a proof descends into. Nothing in it is
/// trusted until a proof made from it is checked against a signed checkpoint's root.
pub(crate) fn lazy_tree(dir: &Path) -> Result<Verified, String> {
    let store = Arc::new(open_dir_lazily(dir)?);
    let manifest = Manifest::read(dir).map_err(|e| e.to_string())?;
    let (base, boundary) = match &manifest {
        Some(m) => (m.frontier(), m.boundary),
        None => (govern_ledger::merkle::MerkleFrontier::new(), 0),
    };
    let len = store.len();
    let starts = store.segment_starts();
    let trees = dir.join(govern_ledger::merkle::TREE_DIR);
    let mut segments = Vec::with_capacity(starts.len());
    for (k, &first) in starts.iter().enumerate() {
        let sealed_end = starts.get(k + 1).copied();
        let end = sealed_end.unwrap_or(len);
        if end <= first {
            continue;
        }
        // A sealed segment's file, when it checks; the last segment's receipts are read.
        let roots = sealed_end.and_then(|end| {
            let bytes = std::fs::read(trees.join(tree_file_name(first))).ok()?;
            decode_tree_file(&bytes, first, end)
        });
        segments.push(TreeSegment { first, end, roots });
    }
    // Each sealed segment without its file is read whole when a proof needs one of its
    // subtrees: past a few, verifying the whole ledger is the cheaper way.
    let missing = segments.iter().rev().skip(1).filter(|s| s.roots.is_none()).count();
    if missing > LAZY_MISSING_MAX {
        return Err(format!("{missing} sealed segments have no valid tree file"));
    }
    let hashes = Box::new(StoreHashes(Arc::clone(&store)));
    let tree = LazyTree::new(len, base, segments, hashes).map_err(|e| e.to_string())?;
    Ok(Verified { receipts: len, boundary, tree: Box::new(tree), lazily: Some(store) })
}

/// [`LedgerArg::verify`] of data directory `dir`, whose oldest receipts are archived.
fn verify_archived_dir(
    dir: &Path,
    manifest: &Manifest,
    archive: Option<&Path>,
) -> Result<Verified, String> {
    // With the archive, the tree holds every leaf; else it starts from the frontier at B.
    let mut tree = match archive {
        Some(_) => PartialTree::from(MerkleTree::new()),
        None => PartialTree::from_frontier(manifest.frontier()),
    };
    let report = verify_archived(dir, manifest, archive, &mut |_, hash| {
        tree.push(hash);
    })
    .map_err(|e| failed("verification failed", &e))?;
    Ok(Verified {
        receipts: report.receipts,
        boundary: report.boundary,
        tree: Box::new(tree),
        lazily: None,
    })
}

/// Opens an archive directory's segments read-only (`govern archive` left them there).
pub(crate) fn open_archive_read_only(archive: &Path) -> Result<Box<dyn LedgerStore>, String> {
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open_indexed(archive, options)
        .map_err(|e| format!("the archive {}: {e}", archive.display()))?;
    Ok(Box::new(store))
}

/// One hash chain of a ledger: a data directory's only one, or one shard of a database
/// divided into `shards` (each shard its own chain, sequence numbers and Merkle tree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The shard (0 for a data directory).
    pub(crate) shard: u32,
    /// How many shards the ledger holds (1 for a data directory).
    pub(crate) shards: u32,
}

impl Chain {
    /// The only chain of a ledger that is not divided.
    pub(crate) const ONLY: Self = Self { shard: 0, shards: 1 };

    /// Every chain of a ledger of `shards` shards, in order.
    pub(crate) fn all(shards: u32) -> impl Iterator<Item = Self> {
        (0..shards).map(move |shard| Self { shard, shards })
    }

    /// Whether the ledger holds other chains besides this one: then outputs and messages
    /// name the shard (a one-shard ledger's read as before shards existed).
    pub(crate) fn is_sharded(self) -> bool {
        self.shards > 1
    }

    /// `message`, prefixed with the shard when the ledger has several (`shard 2: ...`).
    pub(crate) fn named(self, message: String) -> String {
        if self.is_sharded() { format!("shard {}: {message}", self.shard) } else { message }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {} of {}", self.shard, self.shards)
    }
}

impl fmt::Display for LedgerArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::Postgres(url) => f.write_str(&govern_postgres::describe(url)),
        }
    }
}

/// Opens the segment store in `dir` read-only: no lock is taken, nothing is created,
/// truncated or written, and a directory that holds no ledger is an error (`no ledger at
/// ...`). Sealed segments are not scanned when their index files are valid (see
/// `SegmentStore::open_indexed`). While a writer holds the directory, what it has written so far is read, and a note
/// on stderr says so.
pub(crate) fn open_dir_read_only(dir: &Path) -> Result<SegmentStore, String> {
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    // Sealed segments with a valid index file are not read here: every record read later is
    // checked (length, CRC32C, sequence number) as it is read.
    let (store, report) = SegmentStore::open_indexed(dir, options).map_err(|e| e.to_string())?;
    note_writer(dir, &report);
    Ok(store)
}

/// Opens the segments in `dir` read-only and lazily ([`govern_ledger::SegmentReader`]): the
/// last segment is scanned, the others are read only where asked. As
/// [`open_dir_read_only`], a note on stderr when a writer holds the directory.
pub(crate) fn open_dir_lazily(dir: &Path) -> Result<govern_ledger::SegmentReader, String> {
    let (store, report) = govern_ledger::SegmentReader::open(dir).map_err(|e| e.to_string())?;
    note_writer(dir, &report);
    Ok(store)
}

/// Says on stderr when a writer held the directory as it was opened read-only.
fn note_writer(dir: &Path, report: &govern_ledger::OpenReport) {
    if let Some(writer) = &report.writer {
        tell!(
            "note: {} is open by a writer ({writer}); reading the {} receipts written so far",
            dir.display(),
            report.records
        );
    }
}

/// Calls `f` with every record of `store` in sequence order, stopping at the first error
/// (`f`'s, or the store's). A record the store lacks (a row missing from a table) is an
/// error naming it, never a listing that silently ends early.
pub(crate) fn for_each_record<E: From<govern_ledger::StoreError>>(
    store: &dyn LedgerStore,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut failed = None;
    // Archived records (below the store's base) are not in it.
    let mut next = store.base();
    store.for_each(&mut |seq, record| {
        if seq != next {
            return ControlFlow::Break(());
        }
        next += 1;
        match f(seq, record) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if next < store.len() {
        return Err(govern_ledger::StoreError::Corrupt(format!(
            "receipt {next} is missing (the ledger holds {})",
            store.len()
        ))
        .into());
    }
    Ok(())
}

/// An error message; stores' errors convert into it, so that a closure given to
/// [`for_each_record`] can use `?` on both.
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

/// `what` (`verification failed`), with the receipt a verification error names, and the error.
pub(crate) fn failed(what: &str, e: &govern_ledger::verify::VerifyError) -> String {
    match e.seq() {
        Some(seq) => format!("{what} at receipt {seq}: {e}"),
        None => format!("{what}: {e}"),
    }
}
