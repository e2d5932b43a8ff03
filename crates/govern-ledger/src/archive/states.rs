//! Governors' states at an archive boundary: for every key (tenant, kind, resource) with
//! receipts below the boundary `B`, its machine state after those receipts and their count,
//! so that a governor whose receipts `[0, B)` are archived replays as: decode its state at
//! `B`, then fold its receipts from `B` on, whose `resource_seq` continue from the count
//! (`govern_receipt::replay_from`).
//!
//! # The file, `base.states`
//!
//! Big-endian integers. A key is `u8 tenant id length, tenant id, u8 kind, u8 resource id
//! length, resource id`, kinds by their position in [`GovernorKind::ALL`], both ids valid
//! ids (at most [`ID_LEN_MAX`] bytes).
//!
//! ```text
//! header   "govern.basestates" | u16 version (1) | u64 boundary B
//!          | u32 CRC32C of the header's bytes before it
//! blocks   entries, each: key | u64 count of the key's receipts below B (at least 1)
//!          | u32 state length | state (the governors' codec output, header included: its
//!          first byte is the kind's tag), sorted by (tenant id, kind, resource id) without
//!          repeats: ledger.snap's KEYS order
//! fence    per block: u64 offset in the file | u32 length | u32 CRC32C of the block
//!          | u32 entries (at least 1) | the block's first key
//! trailer  u64 entries | u32 blocks | u64 fence offset | u64 fence length | u32 CRC32C of
//!          the fence | u64 file length | u32 CRC32C of the trailer's bytes before it
//! ```
//!
//! A block holds about [`BLOCK_BYTES`] of entries (an entry is never split): a lookup reads
//! the fence, kept in memory from [`BaseStates::open`], and one block. The counts of all
//! entries add up to `B`, since every receipt below it is one key's.
//!
//! Unlike `ledger.snap`, whose header names its sections, the fence and the counts come at
//! the end, in a fixed-length trailer: [`StatesWriter`] streams the file once, front to
//! back, and computes its SHA-256 (which the archive manifest records) as it writes,
//! keeping in memory only one block and the fence.
//!
//! # Trust
//!
//! Nothing is trusted until checked: the header's, the trailer's, the fence's and each
//! block's CRC32C; the trailer's file length against the file's (a cut file is refused
//! even where its new last bytes happen to form a trailer); the fence's blocks contiguous
//! from the header to the fence, each within [`BLOCK_LEN_MAX`], their first keys in order;
//! a block's entries in order, the first the fence's, the last before the next block's
//! first key, every length within its named limit before anything is allocated. A damaged
//! byte gives a [`StatesError::Damaged`] naming the part and field, never wrong data and
//! never a panic (a CRC32C catches every error of up to 32 consecutive bits; wider damage
//! goes unseen with a chance of 2⁻³² per part). A lookup checks the one block it reads;
//! [`BaseStates::for_each`] checks every block and that the counts add up to `B`.

use std::fmt;

use govern_governors::limits::{ID_LEN_MAX, STATE_LEN_MAX};
use govern_governors::{GovernorKind, Machine, ResourceId, StateCodecError, TenantId, kind_tag};

mod fold;
mod read;
mod write;

pub use fold::{StatesFold, StatesMap, fold_states, write_states};
pub use read::BaseStates;
pub use write::{StatesWriter, StatesWritten};

/// The file's conventional name.
pub const BASE_STATES_FILE: &str = "base.states";

/// The magic bytes that open the file.
const MAGIC: &[u8; 17] = b"govern.basestates";

/// The format version this build reads and writes.
pub const STATES_VERSION: u16 = 1;

/// The header's length: magic, version, boundary, CRC.
const HEADER_LEN: usize = MAGIC.len() + 2 + 8 + 4;

/// The trailer's length: entries, blocks, fence offset and length and CRC, file length, CRC.
const TRAILER_LEN: usize = 8 + 4 + 8 + 8 + 4 + 8 + 4;

// Limits.

/// The bytes of entries a block holds in a build outside tests (see [`BLOCK_BYTES`]).
pub const BLOCK_BYTES_TARGET: usize = 64 << 10;

/// The bytes of entries a block holds, about: a block ends once it reaches this (a few
/// hundred in tests, so that small files have many blocks).
pub const BLOCK_BYTES: usize = if cfg!(test) { 512 } else { BLOCK_BYTES_TARGET };

/// The longest key: two ids of at most [`ID_LEN_MAX`] bytes, their lengths and the kind.
pub const KEY_LEN_MAX: usize = 1 + ID_LEN_MAX + 1 + 1 + ID_LEN_MAX;

/// The longest entry: a key, its count, the state's length and a state of at most
/// [`STATE_LEN_MAX`] bytes.
pub const ENTRY_LEN_MAX: usize = KEY_LEN_MAX + 8 + 4 + STATE_LEN_MAX;

/// The longest block read: a block ends at the first entry that takes it to the target, so
/// it is shorter than the target plus one entry.
pub const BLOCK_LEN_MAX: usize = BLOCK_BYTES_TARGET + ENTRY_LEN_MAX;

/// The largest file written or read (a bigger one is refused, not read).
pub const STATES_BYTES_MAX: u64 = 32 << 30;

/// One block's fence entry at most: offset, length, CRC, entries, first key.
const FENCE_ENTRY_LEN_MAX: usize = 8 + 4 + 4 + 4 + KEY_LEN_MAX;

/// The longest fence, read whole by [`BaseStates::open`]: one entry per block, and every
/// block but the last holds at least [`BLOCK_BYTES_TARGET`] of a file of at most
/// [`STATES_BYTES_MAX`] bytes.
pub const FENCE_LEN_MAX: usize =
    (STATES_BYTES_MAX as usize / BLOCK_BYTES_TARGET + 1) * FENCE_ENTRY_LEN_MAX;

const _: () = assert!(BLOCK_BYTES <= BLOCK_BYTES_TARGET);
const _: () = assert!(ID_LEN_MAX <= u8::MAX as usize, "an id's length is one byte");
const _: () = assert!(STATE_LEN_MAX <= u32::MAX as usize, "a state's length is a u32");
const _: () = assert!(BLOCK_LEN_MAX <= u32::MAX as usize, "a block's length is a u32");
const _: () = assert!(GovernorKind::ALL.len() <= u8::MAX as usize, "a kind is one byte");

/// Which part of a file an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The file as a whole (its length, its type, the counts of all entries).
    File,
    /// The header.
    Header,
    /// The trailer.
    Trailer,
    /// The fence.
    Fence,
    /// One block of entries.
    Block {
        /// Its index, from 0.
        index: usize,
        /// Its offset in the file.
        offset: u64,
    },
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => f.write_str("the file"),
            Self::Header => f.write_str("the header"),
            Self::Trailer => f.write_str("the trailer"),
            Self::Fence => f.write_str("the fence"),
            Self::Block { index, offset } => write!(f, "block {index} (at byte {offset})"),
        }
    }
}

/// Why a base-states file was not written or read, or states not folded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatesError {
    /// Reading or writing the file failed.
    #[error("i/o error while {context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// On which path.
        path: std::path::PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid base-states file: where, which field, what is wrong.
    #[error("damaged base states: {part}, {field}: {problem}")]
    Damaged {
        /// The part of the file.
        part: Part,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The writer was given a key that does not sort after the one before.
    #[error(
        "entry {key} given after {prev}: entries come in (tenant, kind, resource) order, once each"
    )]
    OutOfOrder {
        /// The key given.
        key: String,
        /// The key before it.
        prev: String,
    },
    /// The writer was given an entry the format does not hold.
    #[error("entry {key}: {problem}")]
    BadEntry {
        /// The entry's key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The entries' counts do not add up to the boundary.
    #[error("the entries count {counted} receipts below the boundary {boundary}")]
    Counts {
        /// The counts' sum (so far, when it passed the boundary).
        counted: u64,
        /// The boundary.
        boundary: u64,
    },
    /// The file would be larger than [`STATES_BYTES_MAX`] (or its fence than
    /// [`FENCE_LEN_MAX`]).
    #[error("the base states would exceed their limit of {limit} bytes ({what})")]
    TooLarge {
        /// Which limit.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// Folding: a record given is not the one due (sequence numbers run on from the prior
    /// boundary, below the new one).
    #[error(
        "record {found} given where record {expected} was due (the fold ends before {boundary})"
    )]
    Records {
        /// The sequence number due.
        expected: u64,
        /// The one given.
        found: u64,
        /// The new boundary.
        boundary: u64,
    },
    /// Folding: the records ended before the boundary.
    #[error("the records end before record {expected}, short of the boundary {boundary}")]
    RecordsEnded {
        /// The sequence number due.
        expected: u64,
        /// The new boundary.
        boundary: u64,
    },
    /// Folding: the new boundary is before the prior file's.
    #[error("boundary {boundary} is before the prior boundary {prior}")]
    Boundary {
        /// The new boundary.
        boundary: u64,
        /// The prior file's.
        prior: u64,
    },
    /// Folding: a receipt does not replay onto its key's state.
    #[error(transparent)]
    Replay(#[from] govern_receipt::ReplayError),
    /// A state does not decode (from the prior file) or encode (for the new one).
    #[error("the state of {key}: {source}")]
    Codec {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: StateCodecError,
    },
}

/// A key: one governor of one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StateKey {
    /// The tenant.
    pub tenant: TenantId,
    /// The governor kind.
    pub kind: GovernorKind,
    /// The resource.
    pub resource: ResourceId,
}

impl StateKey {
    /// What the file is sorted by: tenant id, kind position, resource id.
    fn order(&self) -> (&str, u8, &str) {
        (self.tenant.as_str(), kind_pos(self.kind), self.resource.as_str())
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.kind, self.resource)
    }
}

/// One key's entry: its state at the boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseState {
    /// How many of the key's receipts are below the boundary: the `resource_seq` of its
    /// first receipt from the boundary on.
    pub count: u64,
    /// Its machine state after them, as `Governor::encode_state` wrote it.
    pub state: Vec<u8>,
}

impl BaseState {
    /// The machine, decoded as a `kind` governor.
    ///
    /// # Errors
    /// As [`Machine::decode_state`].
    pub fn machine(&self, kind: GovernorKind) -> Result<Machine, StateCodecError> {
        Machine::decode_state(kind, &self.state)
    }
}

/// A kind's position in [`GovernorKind::ALL`]: its byte in the file and its rank in the
/// order.
#[must_use]
pub fn kind_pos(kind: GovernorKind) -> u8 {
    crate::ledger::snapshot::kind_byte(kind)
}

/// Appends a key's bytes.
fn put_key(out: &mut Vec<u8>, tenant: &str, kind: GovernorKind, resource: &str) {
    // Ids are at most ID_LEN_MAX (<= 255) bytes by construction.
    out.push(tenant.len() as u8);
    out.extend_from_slice(tenant.as_bytes());
    out.push(kind_pos(kind));
    out.push(resource.len() as u8);
    out.extend_from_slice(resource.as_bytes());
}

/// Why `state` cannot be the entry of a `kind` governor, if it cannot.
fn state_problem(kind: GovernorKind, state: &[u8]) -> Option<String> {
    if state.len() > STATE_LEN_MAX {
        Some(format!("a state of {} bytes, over {STATE_LEN_MAX}", state.len()))
    } else if state.first() != Some(&kind_tag(kind)) {
        Some(format!("not a {kind} state (its first byte is not the kind's tag)"))
    } else {
        None
    }
}

/// A key read from a block or the fence, borrowed from its bytes.
#[derive(Clone, Copy, Debug)]
struct KeyRef<'a> {
    tenant: &'a str,
    kind: GovernorKind,
    resource: &'a str,
}

impl<'a> KeyRef<'a> {
    fn order(&self) -> (&'a str, u8, &'a str) {
        (self.tenant, kind_pos(self.kind), self.resource)
    }

    /// The key, owned (both ids were checked when read; `part` is named should one not be).
    fn owned(self, part: Part) -> Result<StateKey, StatesError> {
        let refused = |e: govern_governors::IdError| StatesError::Damaged {
            part,
            field: "an id",
            problem: e.to_string(),
        };
        Ok(StateKey {
            tenant: TenantId::new(self.tenant).map_err(refused)?,
            kind: self.kind,
            resource: ResourceId::new(self.resource).map_err(refused)?,
        })
    }
}

/// A byte reader over one part of the file: every error names the part and the field.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    part: Part,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], part: Part) -> Self {
        Self { bytes, at: 0, part }
    }

    fn damaged(&self, field: &'static str, problem: impl Into<String>) -> StatesError {
        StatesError::Damaged { part: self.part, field, problem: problem.into() }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], StatesError> {
        let out = self
            .at
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.at..end))
            .ok_or_else(|| self.damaged(field, "runs past the end"))?;
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], StatesError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, StatesError> {
        self.array::<1>(field).map(|[b]| b)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, StatesError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, StatesError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, StatesError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A one-byte length, then an id that passes the id rule (which bounds its length).
    fn id(&mut self, field: &'static str) -> Result<&'a str, StatesError> {
        let len = self.u8(field)?;
        let bytes = self.take(usize::from(len), field)?;
        let id = std::str::from_utf8(bytes).map_err(|_| self.damaged(field, "not UTF-8"))?;
        TenantId::validate(id).map_err(|e| self.damaged(field, e.to_string()))?;
        Ok(id)
    }

    fn key(&mut self) -> Result<KeyRef<'a>, StatesError> {
        let tenant = self.id("a tenant id")?;
        let k = self.u8("a kind")?;
        let kind = GovernorKind::ALL
            .get(usize::from(k))
            .copied()
            .ok_or_else(|| self.damaged("a kind", format!("{k} is not a governor kind")))?;
        let resource = self.id("a resource id")?;
        Ok(KeyRef { tenant, kind, resource })
    }

    /// The CRC32C of the bytes read so far, checked against the u32 that follows them.
    fn crc_so_far(&mut self, field: &'static str) -> Result<(), StatesError> {
        let computed = crc32c::crc32c(self.bytes.get(..self.at).unwrap_or_default());
        let stored = self.u32(field)?;
        if computed == stored {
            Ok(())
        } else {
            Err(self.damaged(field, "does not match the bytes"))
        }
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

#[cfg(test)]
pub(crate) mod props;
#[cfg(test)]
mod tests;
