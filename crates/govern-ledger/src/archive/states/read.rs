//! Reading a base-states file: the header, trailer and fence checked and kept at open, one
//! block read and checked per lookup, every block for a full walk.

use std::fs::File;
use std::path::{Path, PathBuf};

use govern_governors::{GovernorKind, ResourceId, TenantId};

use super::{
    BLOCK_LEN_MAX, BaseState, Cursor, FENCE_LEN_MAX, HEADER_LEN, KeyRef, MAGIC, Part,
    STATES_BYTES_MAX, STATES_VERSION, StateKey, StatesError, TRAILER_LEN, kind_pos, state_problem,
};
use crate::ledger::lookup::read_at;

/// One block, as the fence describes it.
#[derive(Debug)]
struct Block {
    /// Its offset in the file.
    offset: u64,
    /// Its length, at most [`BLOCK_LEN_MAX`].
    len: usize,
    /// Its CRC32C.
    crc: u32,
    /// Its entries, at least 1.
    entries: u32,
    /// Its first entry's key.
    first: StateKey,
}

/// One entry of a block, borrowed from the block's bytes.
struct EntryRef<'a> {
    key: KeyRef<'a>,
    count: u64,
    state: &'a [u8],
}

/// A base-states file opened for lookups: its header, trailer and fence checked and the
/// fence kept in memory (one key per block); the blocks are read when asked for.
#[derive(Debug)]
pub struct BaseStates {
    /// The open file.
    file: File,
    /// Its path, for errors.
    path: PathBuf,
    /// The boundary `B`.
    boundary: u64,
    /// The entries, as the trailer says (the sum of the fence's).
    entries: u64,
    /// The fence: the blocks in file order, their first keys increasing.
    blocks: Vec<Block>,
}

impl BaseStates {
    /// Opens the file at `path` and checks its header, trailer and fence (not its blocks:
    /// each is checked when read).
    ///
    /// # Errors
    /// [`StatesError::Io`] when it cannot be opened or read; [`StatesError::Damaged`]
    /// naming the part and field that is wrong.
    pub fn open(path: &Path) -> Result<Self, StatesError> {
        let io = |context, source| StatesError::Io { context, path: path.to_owned(), source };
        let damaged = |part, field, problem: String| StatesError::Damaged { part, field, problem };
        let not_file = || damaged(Part::File, "its type", "not a regular file".into());
        // Checked before opening too: opening a FIFO would wait for a writer.
        if !std::fs::metadata(path).map_err(|e| io("opening", e))?.is_file() {
            return Err(not_file());
        }
        let file = File::open(path).map_err(|e| io("opening", e))?;
        let meta = file.metadata().map_err(|e| io("reading", e))?;
        if !meta.is_file() {
            return Err(not_file());
        }
        let len = meta.len();
        if len > STATES_BYTES_MAX || len < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(damaged(
                Part::File,
                "its length",
                format!(
                    "{len} bytes, not between {} and {STATES_BYTES_MAX}",
                    HEADER_LEN + TRAILER_LEN
                ),
            ));
        }
        let mut header = [0u8; HEADER_LEN];
        read_at(&file, 0, &mut header).map_err(|e| io("reading", e))?;
        let boundary = parse_header(&header)?;
        let mut trailer = [0u8; TRAILER_LEN];
        read_at(&file, len - TRAILER_LEN as u64, &mut trailer).map_err(|e| io("reading", e))?;
        let t = Trailer::parse(&trailer, len)?;
        let mut fence = vec![0u8; t.fence_len];
        read_at(&file, t.fence_offset, &mut fence).map_err(|e| io("reading", e))?;
        if crc32c::crc32c(&fence) != t.fence_crc {
            return Err(damaged(Part::Fence, "its CRC", "does not match the bytes".into()));
        }
        let blocks = parse_fence(&fence, t.blocks, t.entries, t.fence_offset)?;
        Ok(Self { file, path: path.to_owned(), boundary, entries: t.entries, blocks })
    }

    /// The boundary `B`: the states are those after every receipt below it.
    #[must_use]
    pub fn boundary(&self) -> u64 {
        self.boundary
    }

    /// The entries: keys with receipts below the boundary.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Whether there are none (the boundary is 0).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The blocks the entries are in.
    #[must_use]
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The entry of `tenant`'s `kind` governor of `resource`, if it had receipts below the
    /// boundary. Reads and checks the one block it would be in.
    ///
    /// # Errors
    /// [`StatesError::Io`]; [`StatesError::Damaged`] when that block is.
    pub fn get(
        &self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
    ) -> Result<Option<BaseState>, StatesError> {
        let key = (tenant.as_str(), kind_pos(kind), resource.as_str());
        let after = self.blocks.partition_point(|b| b.first.order() <= key);
        let Some(index) = after.checked_sub(1) else { return Ok(None) };
        let bytes = self.read_block(index)?;
        let mut found = None;
        self.walk_block::<StatesError>(index, &bytes, |entry| {
            if entry.key.order() == key {
                found = Some(BaseState { count: entry.count, state: entry.state.to_vec() });
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Calls `each` with every entry, in key order, checking every block and, at the end,
    /// that the counts add up to the boundary. Reads one block at a time. An error may
    /// come after some entries were given (each from a block that checked out).
    ///
    /// # Errors
    /// [`StatesError::Io`] or [`StatesError::Damaged`] (converted into `E`), or `each`'s.
    pub fn for_each<E: From<StatesError>>(
        &self,
        mut each: impl FnMut(StateKey, BaseState) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut counted: u64 = 0;
        for index in 0..self.blocks.len() {
            let bytes = self.read_block(index)?;
            let part = self.part(index);
            self.walk_block::<E>(index, &bytes, |entry| {
                counted = counted.saturating_add(entry.count);
                let key = entry.key.owned(part)?;
                each(key, BaseState { count: entry.count, state: entry.state.to_vec() })
            })?;
        }
        if counted != self.boundary {
            return Err(StatesError::Damaged {
                part: Part::File,
                field: "the counts",
                problem: format!("they add up to {counted}, the boundary is {}", self.boundary),
            }
            .into());
        }
        Ok(())
    }

    /// Each block's offset and first key, for tests that damage a given block.
    #[cfg(test)]
    pub(super) fn fence(&self) -> Vec<(u64, &StateKey)> {
        self.blocks.iter().map(|b| (b.offset, &b.first)).collect()
    }

    fn part(&self, index: usize) -> Part {
        Part::Block { index, offset: self.blocks.get(index).map_or(0, |b| b.offset) }
    }

    /// Block `index`'s bytes, CRC-checked.
    fn read_block(&self, index: usize) -> Result<Vec<u8>, StatesError> {
        let part = self.part(index);
        let Some(block) = self.blocks.get(index) else {
            return Err(StatesError::Damaged {
                part,
                field: "its index",
                problem: "no such block".into(),
            });
        };
        let mut bytes = vec![0u8; block.len];
        read_at(&self.file, block.offset, &mut bytes).map_err(|source| StatesError::Io {
            context: "reading",
            path: self.path.clone(),
            source,
        })?;
        if crc32c::crc32c(&bytes) != block.crc {
            return Err(StatesError::Damaged {
                part,
                field: "its CRC",
                problem: "does not match the bytes".into(),
            });
        }
        Ok(bytes)
    }

    /// Calls `each` with every entry of block `index` (its `bytes`), checking them: as many
    /// as the fence says, the first the fence's key, in order, the last before the next
    /// block's first key, counts of at least 1, states of the key's kind within their limit,
    /// no bytes after the last.
    fn walk_block<E: From<StatesError>>(
        &self,
        index: usize,
        bytes: &[u8],
        mut each: impl FnMut(EntryRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let part = self.part(index);
        let Some(block) = self.blocks.get(index) else { return Ok(()) };
        let next = self.blocks.get(index + 1).map(|b| b.first.order());
        let mut r = Cursor::new(bytes, part);
        let mut last: Option<(&str, u8, &str)> = None;
        for n in 0..block.entries {
            let key = r.key()?;
            let count = r.u64("a count")?;
            let state_len = r.u32("a state's length")? as usize;
            if state_len > govern_governors::limits::STATE_LEN_MAX {
                return Err(r
                    .damaged("a state's length", format!("{state_len} bytes, over the limit"))
                    .into());
            }
            let state = r.take(state_len, "a state")?;
            let order = key.order();
            if n == 0 && order != block.first.order() {
                return Err(r.damaged("its first key", "not the fence's").into());
            }
            if last.is_some_and(|l| l >= order) || next.is_some_and(|first| order >= first) {
                return Err(r.damaged("a key", "out of order").into());
            }
            if count == 0 {
                return Err(r.damaged("a count", "0").into());
            }
            if let Some(problem) = state_problem(key.kind, state) {
                return Err(r.damaged("a state", problem).into());
            }
            each(EntryRef { key, count, state })?;
            last = Some(order);
        }
        if !r.done() {
            return Err(r.damaged("its entries", "bytes after the last").into());
        }
        Ok(())
    }
}

/// The header's boundary, once its magic, version and CRC check out.
fn parse_header(bytes: &[u8]) -> Result<u64, StatesError> {
    let mut r = Cursor::new(bytes, Part::Header);
    if r.take(MAGIC.len(), "the magic")? != MAGIC {
        return Err(r.damaged("the magic", "not a base-states file"));
    }
    let version = r.u16("the version")?;
    let boundary = r.u64("the boundary")?;
    r.crc_so_far("its CRC")?;
    // Checked after the CRC: a damaged version byte is damage, not another version.
    if version != STATES_VERSION {
        return Err(
            r.damaged("the version", format!("{version}, this build reads {STATES_VERSION}"))
        );
    }
    Ok(boundary)
}

/// The trailer's fields, checked against each other and the file's length.
struct Trailer {
    entries: u64,
    blocks: u32,
    fence_offset: u64,
    fence_len: usize,
    fence_crc: u32,
}

impl Trailer {
    fn parse(bytes: &[u8], file_len: u64) -> Result<Self, StatesError> {
        let mut r = Cursor::new(bytes, Part::Trailer);
        let entries = r.u64("the entries")?;
        let blocks = r.u32("the blocks")?;
        let fence_offset = r.u64("the fence's offset")?;
        let fence_len = r.u64("the fence's length")?;
        let fence_crc = r.u32("the fence's CRC")?;
        let stated_len = r.u64("the file's length")?;
        r.crc_so_far("its CRC")?;
        if stated_len != file_len {
            return Err(
                r.damaged("the file's length", format!("{stated_len}, the file has {file_len}"))
            );
        }
        let fence_end = file_len - TRAILER_LEN as u64;
        let fence_len = usize::try_from(fence_len)
            .ok()
            .filter(|len| *len <= FENCE_LEN_MAX)
            .filter(|len| fence_offset.checked_add(*len as u64) == Some(fence_end))
            .filter(|_| fence_offset >= HEADER_LEN as u64)
            .ok_or_else(|| {
                r.damaged(
                    "the fence's offset",
                    format!("{fence_offset}+{fence_len} does not end at {fence_end}"),
                )
            })?;
        Ok(Self { entries, blocks, fence_offset, fence_len, fence_crc })
    }
}

/// The fence's `blocks` entries, checked: contiguous from the header to the fence, each
/// within [`BLOCK_LEN_MAX`] and of at least one entry, first keys increasing, `entries` in
/// all.
fn parse_fence(
    bytes: &[u8],
    blocks: u32,
    entries: u64,
    fence_offset: u64,
) -> Result<Vec<Block>, StatesError> {
    let mut r = Cursor::new(bytes, Part::Fence);
    // Not allocated for the stated count: each block is pushed as its bytes are read.
    let mut out: Vec<Block> = Vec::new();
    let mut next = HEADER_LEN as u64;
    let mut total: u64 = 0;
    for _ in 0..blocks {
        let offset = r.u64("a block's offset")?;
        let len = r.u32("a block's length")? as usize;
        let crc = r.u32("a block's CRC")?;
        let count = r.u32("a block's entries")?;
        let first = r.key()?;
        if offset != next || len == 0 || len > BLOCK_LEN_MAX || count == 0 {
            return Err(r.damaged(
                "a block",
                format!("at {offset} (due at {next}), {len} bytes, {count} entries"),
            ));
        }
        if out.last().is_some_and(|b| b.first.order() >= first.order()) {
            return Err(r.damaged("a block's first key", "out of order"));
        }
        let first = first.owned(Part::Fence)?;
        next = offset + len as u64;
        total = total.saturating_add(u64::from(count));
        out.push(Block { offset, len, crc, entries: count, first });
    }
    if !r.done() {
        return Err(r.damaged("its blocks", "bytes after the last"));
    }
    if next != fence_offset {
        return Err(
            r.damaged("its blocks", format!("end at {next}, the fence is at {fence_offset}"))
        );
    }
    if total != entries {
        return Err(
            r.damaged("its blocks", format!("hold {total} entries, the trailer says {entries}"))
        );
    }
    Ok(out)
}
