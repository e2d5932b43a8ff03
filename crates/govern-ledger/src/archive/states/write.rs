//! Writing a base-states file in one pass: entries in key order into blocks, the fence and
//! the trailer after them, the SHA-256 of every byte computed on the way.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_receipt::Digest;
use sha2::{Digest as _, Sha256};

use super::{
    BLOCK_BYTES, FENCE_LEN_MAX, MAGIC, STATES_BYTES_MAX, STATES_VERSION, StateKey, StatesError,
    TRAILER_LEN, put_key, state_problem,
};

/// What [`StatesWriter::finish`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatesWritten {
    /// The boundary `B`.
    pub boundary: u64,
    /// The entries (keys with receipts below `B`).
    pub entries: u64,
    /// The blocks they are in.
    pub blocks: u32,
    /// The file's size.
    pub bytes: u64,
    /// SHA-256 of the whole file, for the archive manifest.
    pub sha256: Digest,
}

/// Writes a base-states file (see the module documentation) as `path.tmp`, streaming: one
/// block of entries and the fence in memory, whatever the number of entries. Entries come
/// in (tenant id, kind position, resource id) order, each key once; [`Self::finish`] checks
/// that their counts add up to the boundary, syncs the file, renames it over `path` and
/// syncs the directory, so a crash leaves the old file or the new one. Dropped unfinished,
/// it removes its temporary file.
pub struct StatesWriter {
    /// The temporary file, `None` once closed.
    out: Option<BufWriter<File>>,
    /// Whether the file was renamed into place.
    renamed: bool,
    /// Where the file goes.
    path: PathBuf,
    /// Where it is written first.
    tmp: PathBuf,
    /// Every byte written so far.
    sha: Sha256,
    /// Bytes written so far: the next block's offset.
    written: u64,
    /// The boundary `B`.
    boundary: u64,
    /// The counts of the entries so far (at most `boundary`).
    counted: u64,
    /// The entries so far.
    entries: u64,
    /// The last key, which the next must sort after.
    last: Option<StateKey>,
    /// The block being filled.
    block: Vec<u8>,
    /// Its entries.
    block_entries: u32,
    /// Its first key's bytes, for the fence.
    block_first: Vec<u8>,
    /// The fence so far.
    fence: Vec<u8>,
    /// The blocks written.
    blocks: u32,
}

impl std::fmt::Debug for StatesWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatesWriter")
            .field("path", &self.path)
            .field("boundary", &self.boundary)
            .field("entries", &self.entries)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl StatesWriter {
    /// Starts the file for `path` (written as `path` with `.tmp` appended, a leftover one
    /// replaced) of the states at `boundary`.
    ///
    /// # Errors
    /// [`StatesError::Io`] when the temporary file cannot be created or written.
    pub fn create(path: &Path, boundary: u64) -> Result<Self, StatesError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StatesError::Io { context: "removing", path: tmp, source }),
        }
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp);
        let file = file.map_err(|source| StatesError::Io {
            context: "creating",
            path: tmp.clone(),
            source,
        })?;
        let mut writer = Self {
            out: Some(BufWriter::with_capacity(super::BLOCK_BYTES_TARGET, file)),
            renamed: false,
            path: path.to_owned(),
            tmp,
            sha: Sha256::new(),
            written: 0,
            boundary,
            counted: 0,
            entries: 0,
            last: None,
            block: Vec::with_capacity(2 * BLOCK_BYTES),
            block_entries: 0,
            block_first: Vec::new(),
            fence: Vec::new(),
            blocks: 0,
        };
        let mut header = Vec::with_capacity(super::HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&STATES_VERSION.to_be_bytes());
        header.extend_from_slice(&boundary.to_be_bytes());
        header.extend_from_slice(&crc32c::crc32c(&header).to_be_bytes());
        writer.emit(&header)?;
        Ok(writer)
    }

    /// Adds the entry of `tenant`'s `kind` governor of `resource`: `count` receipts below
    /// the boundary (at least 1) and its machine `state` after them (a `kind` state as
    /// `Governor::encode_state` writes it).
    ///
    /// # Errors
    /// [`StatesError::OutOfOrder`] when the key does not sort after the last one;
    /// [`StatesError::BadEntry`] for a count of 0 or a state that is not a `kind` state or
    /// is too long; [`StatesError::Counts`] when the counts pass the boundary;
    /// [`StatesError::Io`] or [`StatesError::TooLarge`] from writing a full block, after
    /// which the writer is of no further use (drop it). Else the entry is not added on
    /// error and the writer goes on.
    pub fn push(
        &mut self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
        count: u64,
        state: &[u8],
    ) -> Result<(), StatesError> {
        let key = StateKey { tenant: tenant.clone(), kind, resource: resource.clone() };
        if let Some(last) = &self.last
            && last.order() >= key.order()
        {
            return Err(StatesError::OutOfOrder { key: key.to_string(), prev: last.to_string() });
        }
        if count == 0 {
            let problem = "a count of 0: an entry is a key with receipts below the boundary";
            return Err(StatesError::BadEntry { key: key.to_string(), problem: problem.into() });
        }
        if let Some(problem) = state_problem(kind, state) {
            return Err(StatesError::BadEntry { key: key.to_string(), problem });
        }
        let counted = self.counted.checked_add(count).filter(|c| *c <= self.boundary);
        let Some(counted) = counted else {
            let counted = self.counted.saturating_add(count);
            return Err(StatesError::Counts { counted, boundary: self.boundary });
        };
        let start = self.block.len();
        put_key(&mut self.block, tenant.as_str(), kind, resource.as_str());
        if self.block_entries == 0 {
            self.block_first = self.block.get(start..).unwrap_or_default().to_vec();
        }
        self.block.extend_from_slice(&count.to_be_bytes());
        // At most STATE_LEN_MAX, which fits a u32 (asserted in the parent module).
        self.block.extend_from_slice(&(state.len() as u32).to_be_bytes());
        self.block.extend_from_slice(state);
        self.block_entries += 1;
        self.counted = counted;
        self.entries += 1;
        self.last = Some(key);
        if self.block.len() >= BLOCK_BYTES { self.end_block() } else { Ok(()) }
    }

    /// Writes the block being filled, if it has entries, and its fence entry.
    fn end_block(&mut self) -> Result<(), StatesError> {
        if self.block_entries == 0 {
            return Ok(());
        }
        let blocks = self
            .blocks
            .checked_add(1)
            .ok_or(StatesError::TooLarge { what: "blocks", limit: STATES_BYTES_MAX })?;
        let mut entry = Vec::with_capacity(20 + self.block_first.len());
        entry.extend_from_slice(&self.written.to_be_bytes());
        // A block is shorter than BLOCK_LEN_MAX, which fits a u32 (asserted).
        entry.extend_from_slice(&(self.block.len() as u32).to_be_bytes());
        entry.extend_from_slice(&crc32c::crc32c(&self.block).to_be_bytes());
        entry.extend_from_slice(&self.block_entries.to_be_bytes());
        entry.extend_from_slice(&self.block_first);
        if self.fence.len() + entry.len() > FENCE_LEN_MAX {
            return Err(StatesError::TooLarge { what: "the fence", limit: FENCE_LEN_MAX as u64 });
        }
        let block = std::mem::take(&mut self.block);
        self.emit(&block)?;
        self.block = block;
        self.fence.extend_from_slice(&entry);
        self.blocks = blocks;
        self.block.clear();
        self.block_entries = 0;
        Ok(())
    }

    /// Writes `bytes` to the file and the hash.
    fn emit(&mut self, bytes: &[u8]) -> Result<(), StatesError> {
        let written = self.written.saturating_add(bytes.len() as u64);
        if written > STATES_BYTES_MAX {
            return Err(StatesError::TooLarge { what: "the file", limit: STATES_BYTES_MAX });
        }
        let Some(out) = self.out.as_mut() else {
            return Err(self.io("writing", std::io::ErrorKind::BrokenPipe.into()));
        };
        if let Err(e) = out.write_all(bytes) {
            return Err(self.io("writing", e));
        }
        self.sha.update(bytes);
        self.written = written;
        Ok(())
    }

    fn io(&self, context: &'static str, source: std::io::Error) -> StatesError {
        StatesError::Io { context, path: self.tmp.clone(), source }
    }

    /// Writes the last block, the fence and the trailer, syncs the file, renames it into
    /// place and syncs the directory.
    ///
    /// # Errors
    /// [`StatesError::Counts`] when the entries' counts do not add up to the boundary;
    /// [`StatesError::Io`] or [`StatesError::TooLarge`]. The temporary file is removed.
    pub fn finish(mut self) -> Result<StatesWritten, StatesError> {
        self.end_block()?;
        if self.counted != self.boundary {
            return Err(StatesError::Counts { counted: self.counted, boundary: self.boundary });
        }
        let fence = std::mem::take(&mut self.fence);
        let fence_offset = self.written;
        self.emit(&fence)?;
        let bytes = self.written + TRAILER_LEN as u64;
        let mut trailer = Vec::with_capacity(TRAILER_LEN);
        trailer.extend_from_slice(&self.entries.to_be_bytes());
        trailer.extend_from_slice(&self.blocks.to_be_bytes());
        trailer.extend_from_slice(&fence_offset.to_be_bytes());
        trailer.extend_from_slice(&(fence.len() as u64).to_be_bytes());
        trailer.extend_from_slice(&crc32c::crc32c(&fence).to_be_bytes());
        trailer.extend_from_slice(&bytes.to_be_bytes());
        trailer.extend_from_slice(&crc32c::crc32c(&trailer).to_be_bytes());
        self.emit(&trailer)?;
        let Some(out) = self.out.take() else {
            return Err(self.io("writing", std::io::ErrorKind::BrokenPipe.into()));
        };
        let file = out.into_inner().map_err(|e| self.io("writing", e.into_error()))?;
        file.sync_all().map_err(|e| self.io("syncing", e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|source| StatesError::Io {
            context: "renaming into place",
            path: self.path.clone(),
            source,
        })?;
        self.renamed = true;
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        crate::text_file::sync_dir(dir).map_err(|source| StatesError::Io {
            context: "syncing directory",
            path: dir.to_owned(),
            source,
        })?;
        let sha256 = Digest(std::mem::take(&mut self.sha).finalize().into());
        Ok(StatesWritten {
            boundary: self.boundary,
            entries: self.entries,
            blocks: self.blocks,
            bytes,
            sha256,
        })
    }
}

impl Drop for StatesWriter {
    fn drop(&mut self) {
        // Unfinished (an error, or given up): the temporary file is of no use.
        if !self.renamed {
            drop(self.out.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
