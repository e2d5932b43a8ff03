//! `MemIo`: the segment store's files in memory (`SegmentIo`), so that the `segment` target
//! opens a store over the fuzzed bytes without touching the disk. Everything written is at
//! once durable: the target tests what an open makes of bytes found, not crashes.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use govern_ledger::segment::{Replacer, SegmentIo, SegmentRead, Syncer};

/// Files by name; clones share them.
#[derive(Clone, Debug, Default)]
pub struct MemIo(Arc<Mutex<BTreeMap<String, Vec<u8>>>>);

impl MemIo {
    /// A directory holding these files.
    #[must_use]
    pub fn with_files(files: BTreeMap<String, Vec<u8>>) -> Self {
        Self(Arc::new(Mutex::new(files)))
    }

    /// The files now.
    #[must_use]
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while the lock was held is already the target's failure.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn missing(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, name.to_owned())
}

fn read_at(
    files: &BTreeMap<String, Vec<u8>>,
    name: &str,
    offset: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    let f = files.get(name).ok_or_else(|| missing(name))?;
    let start =
        usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
    let src = start
        .checked_add(buf.len())
        .and_then(|end| f.get(start..end))
        .ok_or(io::ErrorKind::UnexpectedEof)?;
    buf.copy_from_slice(src);
    Ok(())
}

impl SegmentIo for MemIo {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().keys().cloned().collect())
    }

    fn open(&mut self, name: &str) -> io::Result<u64> {
        self.lock().get(name).map(|f| f.len() as u64).ok_or_else(|| missing(name))
    }

    fn create(&mut self, name: &str) -> io::Result<()> {
        let mut files = self.lock();
        if files.contains_key(name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        files.insert(name.to_owned(), Vec::new());
        Ok(())
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.lock().get_mut(name).ok_or_else(|| missing(name))?.extend_from_slice(bytes);
        Ok(())
    }

    fn sync_data(&mut self, name: &str) -> io::Result<()> {
        if self.lock().contains_key(name) { Ok(()) } else { Err(missing(name)) }
    }

    fn syncer(&self, name: &str) -> io::Result<Syncer> {
        if self.lock().contains_key(name) { Ok(Box::new(|| Ok(()))) } else { Err(missing(name)) }
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_at(&self.lock(), name, offset, buf)
    }

    fn reader(&self) -> Arc<dyn SegmentRead> {
        Arc::new(self.clone())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let mut files = self.lock();
        let f = files.get_mut(name).ok_or_else(|| missing(name))?;
        f.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }

    fn read_file(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let files = self.lock();
        let f = files.get(name).ok_or_else(|| missing(name))?;
        if f.len() as u64 > max {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(f.clone())
    }

    fn replacer(&self, name: &str, bytes: Vec<u8>) -> io::Result<Replacer> {
        let (io, name) = (self.clone(), name.to_owned());
        Ok(Box::new(move || {
            io.lock().insert(name, bytes);
            Ok(())
        }))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.lock().remove(name).map(|_| ()).ok_or_else(|| missing(name))
    }
}

impl SegmentRead for MemIo {
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_at(&self.lock(), name, offset, buf)
    }
}
