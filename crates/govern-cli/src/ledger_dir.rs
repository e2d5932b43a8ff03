//! Reading a ledger without changing it, shared by `govern verify`, `export`, `prove`,
//! `receipts`, `invoices` and `sagas`: the ledger argument is a data directory or a
//! PostgreSQL database ([`LedgerArg`]), opened read-only as a [`LedgerStore`] that every
//! command reads through the same code.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use govern_ledger::LedgerStore;
use govern_ledger::segment::{SegmentOptions, SegmentStore};
use govern_ledger::verify::{VerifyReport, verify_dir, verify_store};
use govern_postgres::PostgresStore;

use crate::checkpoints::DirCheckpoints;

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

    /// The ledger's own checkpoints: a data directory's files; none in PostgreSQL yet.
    pub(crate) fn checkpoints(&self) -> DirCheckpoints {
        match self {
            Self::Dir(dir) => DirCheckpoints::read(dir),
            Self::Postgres(_) => DirCheckpoints::none(),
        }
    }

    /// Opens the ledger read-only: nothing is created, migrated or written. A data
    /// directory takes no lock, and while a writer holds it, what it has written so far is
    /// read (a note on stderr says so); a database must hold govern's schema already.
    pub(crate) fn open_read_only(&self) -> Result<Box<dyn LedgerStore>, String> {
        match self {
            Self::Dir(dir) => Ok(Box::new(open_dir_read_only(dir)?)),
            Self::Postgres(url) => Ok(Box::new(
                PostgresStore::open_read_only(url).map_err(|e| format!("{self}: {e}"))?,
            )),
        }
    }

    /// Verifies the whole ledger (hash chain, fields, each resource's numbering, the Merkle
    /// tree, and in a data directory every frame) and keeps its tree, for proofs.
    pub(crate) fn verify(&self) -> Result<VerifyReport, String> {
        let report = match self {
            Self::Dir(dir) => verify_dir(dir),
            Self::Postgres(_) => verify_store(self.open_read_only()?.as_ref()),
        };
        report.map_err(|e| failed("verification failed", &e))
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
/// ...`). While a writer holds the directory, what it has written so far is read, and a note
/// on stderr says so.
pub(crate) fn open_dir_read_only(dir: &Path) -> Result<SegmentStore, String> {
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (store, report) = SegmentStore::open(dir, options).map_err(|e| e.to_string())?;
    if let Some(writer) = report.writer {
        tell!(
            "note: {} is open by a writer ({writer}); reading the {} receipts written so far",
            dir.display(),
            report.records
        );
    }
    Ok(store)
}

/// Calls `f` with every record of `store` in sequence order, stopping at the first error
/// (`f`'s, or the store's). A record the store lacks (a row missing from a table) is an
/// error naming it, never a listing that silently ends early.
pub(crate) fn for_each_record<E: From<govern_ledger::StoreError>>(
    store: &dyn LedgerStore,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut failed = None;
    let mut next = 0u64;
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
