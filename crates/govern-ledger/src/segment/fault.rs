//! [`FaultIo`]: an in-memory filesystem for the segment store that knows what is durable and
//! injects faults, so that crashes, torn writes, failed syncs and bit flips can be replayed
//! deterministically (the segment store's tests, `govern simulate`).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::SegmentIo;

/// One file of the fault-injecting filesystem.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileState {
    /// What reads see.
    pub(crate) written: Vec<u8>,
    /// What survives a crash.
    pub(crate) durable: Vec<u8>,
    /// Whether the directory entry survives a crash.
    pub(crate) named: bool,
}

/// The state of the fault-injecting filesystem.
#[derive(Debug, Default)]
pub(crate) struct Disk {
    /// The files by name.
    pub(crate) files: BTreeMap<String, FileState>,
    /// Fail the next `sync_data` (what was written stays not durable).
    pub(crate) fail_next_sync: bool,
    /// Fail the next append after writing this many of its bytes.
    pub(crate) fail_next_write: Option<usize>,
    /// Appends so far.
    pub(crate) writes: usize,
    /// `sync_data` calls so far.
    pub(crate) syncs: usize,
    /// The file appended to last: the one a crash can leave torn.
    pub(crate) last_written: Option<String>,
    /// Atomic replacements (index files) completed so far.
    pub(crate) replaces: usize,
    /// Fail every replacement: after writing and syncing its `.tmp` (as a crash before the
    /// rename leaves it) when `Some(true)`, at once when `Some(false)`.
    pub(crate) fail_replaces: Option<bool>,
}

/// A hook every positioned read calls first (tests hold reads with it).
pub type ReadHook = Arc<dyn Fn() + Send + Sync>;

/// An in-memory filesystem that tracks what is durable and injects faults: failed and torn
/// writes, failed syncs, crashes that drop what was not synced (optionally keeping a torn
/// part of the last write), bit flips. Clones share it, and its read side
/// ([`SegmentIo::reader`]) too. The segment store's tests and `govern simulate` drive it;
/// nothing else should.
#[derive(Clone, Default)]
pub struct FaultIo {
    disk: Arc<Mutex<Disk>>,
    read_hook: Option<ReadHook>,
}

impl std::fmt::Debug for FaultIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultIo").field("files", &self.disk().files.len()).finish_non_exhaustive()
    }
}

impl FaultIo {
    /// The same filesystem, with `hook` called before every positioned read.
    #[must_use]
    pub fn with_read_hook(mut self, hook: ReadHook) -> Self {
        self.read_hook = Some(hook);
        self
    }

    /// Durable files with these contents.
    #[must_use]
    pub fn with_files(files: &BTreeMap<String, Vec<u8>>) -> Self {
        let io = Self::default();
        io.disk().files = files
            .iter()
            .map(|(n, b)| {
                (n.clone(), FileState { written: b.clone(), durable: b.clone(), named: true })
            })
            .collect();
        io
    }

    pub(crate) fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops everything not synced.
    pub fn crash(&self) {
        self.crash_tearing(0);
    }

    /// Drops everything not synced, except that the file written last keeps the first
    /// `keep` bytes of its unsynced tail: a torn write.
    pub fn crash_tearing(&self, keep: usize) {
        let mut disk = self.disk();
        let last = disk.last_written.clone();
        disk.files.retain(|_, f| f.named);
        for (name, f) in &mut disk.files {
            let mut now = f.durable.clone();
            if last.as_deref() == Some(name.as_str()) && f.written.starts_with(&f.durable) {
                let tail = &f.written[f.durable.len()..];
                now.extend_from_slice(&tail[..keep.min(tail.len())]);
            }
            f.written.clone_from(&now);
            f.durable = now;
        }
    }

    /// `fdatasync`: what was written becomes durable, unless a failure is injected.
    pub(crate) fn sync_file(&self, name: &str) -> io::Result<()> {
        let mut disk = self.disk();
        disk.syncs += 1;
        if std::mem::take(&mut disk.fail_next_sync) {
            return Err(io::Error::other("injected sync failure"));
        }
        let f = disk.files.get_mut(name).ok_or_else(|| missing(name))?;
        f.durable.clone_from(&f.written);
        Ok(())
    }

    /// Disarms the failures armed and not yet met (`fail_next_sync`, `fail_next_write`).
    pub fn disarm(&self) {
        let mut disk = self.disk();
        disk.fail_next_sync = false;
        disk.fail_next_write = None;
    }

    pub fn fail_next_sync(&self) {
        self.disk().fail_next_sync = true;
    }

    /// Fails the next append after writing its first `keep` bytes.
    pub fn fail_next_write(&self, keep: usize) {
        self.disk().fail_next_write = Some(keep);
    }

    /// XORs the byte at `pos` of file `name` with `mask`, durably; false when there is no
    /// such byte.
    pub fn flip(&self, name: &str, pos: usize, mask: u8) -> bool {
        let mut disk = self.disk();
        let Some(f) = disk.files.get_mut(name) else { return false };
        let Some(b) = f.written.get_mut(pos) else { return false };
        *b ^= mask;
        if let Some(b) = f.durable.get_mut(pos) {
            *b ^= mask;
        }
        true
    }

    /// The contents of every file, as reads see them.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.disk().files.iter().map(|(n, f)| (n.clone(), f.written.clone())).collect()
    }

    /// (writes, syncs) so far.
    pub fn counts(&self) -> (usize, usize) {
        let disk = self.disk();
        (disk.writes, disk.syncs)
    }
}

fn missing(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, name.to_owned())
}

impl SegmentIo for FaultIo {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.disk().files.keys().cloned().collect())
    }

    fn open(&mut self, name: &str) -> io::Result<u64> {
        self.disk().files.get(name).map(|f| f.written.len() as u64).ok_or_else(|| missing(name))
    }

    fn create(&mut self, name: &str) -> io::Result<()> {
        let mut disk = self.disk();
        if disk.files.contains_key(name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        disk.files.insert(name.to_owned(), FileState::default());
        Ok(())
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk();
        disk.writes += 1;
        disk.last_written = Some(name.to_owned());
        let fail = disk.fail_next_write.take();
        let f = disk.files.get_mut(name).ok_or_else(|| missing(name))?;
        match fail {
            Some(keep) => {
                f.written.extend_from_slice(&bytes[..keep.min(bytes.len())]);
                Err(io::Error::other("injected write failure"))
            }
            None => {
                f.written.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn sync_data(&mut self, name: &str) -> io::Result<()> {
        self.sync_file(name)
    }

    fn syncer(&self, name: &str) -> io::Result<super::Syncer> {
        if !self.disk().files.contains_key(name) {
            return Err(missing(name));
        }
        let (io, name) = (self.clone(), name.to_owned());
        Ok(Box::new(move || io.sync_file(&name)))
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        for f in self.disk().files.values_mut() {
            f.named = true;
        }
        Ok(())
    }

    fn reader(&self) -> Arc<dyn super::SegmentRead> {
        Arc::new(self.clone())
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if let Some(hook) = &self.read_hook {
            hook();
        }
        let disk = self.disk();
        let f = disk.files.get(name).ok_or_else(|| missing(name))?;
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = f.written.get(start..start + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let mut disk = self.disk();
        let f = disk.files.get_mut(name).ok_or_else(|| missing(name))?;
        f.written.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }

    fn read_file(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let disk = self.disk();
        let f = disk.files.get(name).ok_or_else(|| missing(name))?;
        if f.written.len() as u64 > max {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(f.written.clone())
    }

    /// The `.tmp` is written durably; the renamed entry, like a created one, survives a
    /// crash only after the next `sync_dir`.
    fn replacer(&self, name: &str, bytes: Vec<u8>) -> io::Result<super::Replacer> {
        let (io, name) = (self.clone(), name.to_owned());
        Ok(Box::new(move || {
            let mut disk = io.disk();
            let tmp = format!("{name}.tmp");
            match disk.fail_replaces {
                Some(false) => return Err(io::Error::other("injected replace failure")),
                Some(true) => {
                    let state = FileState { written: bytes.clone(), durable: bytes, named: true };
                    disk.files.insert(tmp, state);
                    return Err(io::Error::other("injected crash before the rename"));
                }
                None => {}
            }
            disk.files.remove(&tmp);
            let state = FileState { written: bytes.clone(), durable: bytes, named: false };
            disk.files.insert(name, state);
            disk.replaces += 1;
            Ok(())
        }))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.disk().files.remove(name).map(|_| ()).ok_or_else(|| missing(name))
    }
}

impl super::SegmentRead for FaultIo {
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        SegmentIo::read_at(self, name, offset, buf)
    }
}
