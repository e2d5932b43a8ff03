//! The I/O seam of the segment store: the few file operations it needs, behind a trait, so
//! that tests can inject faults (torn writes, failed syncs, bit flips, lost unsynced data)
//! deterministically. [`FsIo`] is the real filesystem. Its read side ([`SegmentRead`],
//! from [`SegmentIo::reader`]) serves reads from other threads while the store writes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// A deferred `fdatasync` of one file, run without the store's lock (see
/// [`SegmentIo::syncer`]).
pub type Syncer = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// A deferred atomic replacement of one file, run without the store's lock (see
/// [`SegmentIo::replacer`]).
pub type Replacer = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// File operations on the files of one segments directory, addressed by file name.
///
/// The store calls them from one thread at a time (it is the single writer); `read_at` takes
/// `&self` so that reads need no exclusive access.
pub trait SegmentIo: std::fmt::Debug + Send + Sync + 'static {
    /// The names of every file in the directory, in any order.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn list(&self) -> io::Result<Vec<String>>;

    /// Opens an existing file for reading and appending; returns its length in bytes.
    ///
    /// # Errors
    /// The underlying I/O error (`NotFound` when there is no such file).
    fn open(&mut self, name: &str) -> io::Result<u64>;

    /// Creates a new, empty file (failing if it exists) and keeps it open. The new directory
    /// entry is durable only after [`Self::sync_dir`].
    ///
    /// # Errors
    /// The underlying I/O error.
    fn create(&mut self, name: &str) -> io::Result<()>;

    /// Writes all of `bytes` at the end of an open file. Durable only after
    /// [`Self::sync_data`].
    ///
    /// # Errors
    /// The underlying I/O error; part of `bytes` may have been written.
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Makes everything written to an open file durable (`fdatasync`).
    ///
    /// # Errors
    /// The underlying I/O error; what was written is then of unknown durability.
    fn sync_data(&mut self, name: &str) -> io::Result<()>;

    /// What [`Self::sync_data`] does, as a job that can run later on another thread while the
    /// store goes on taking appends (into its buffer) and serving reads: the second phase of
    /// a group commit. It makes durable at least what was written before this call.
    ///
    /// # Errors
    /// The underlying I/O error (the file is not open).
    fn syncer(&self, name: &str) -> io::Result<Syncer>;

    /// Makes the directory's entries durable (`fsync` on the directory).
    ///
    /// # Errors
    /// The underlying I/O error.
    fn sync_dir(&mut self) -> io::Result<()>;

    /// Fills `buf` from an open file starting at byte `offset` (a positioned read).
    ///
    /// # Errors
    /// The underlying I/O error; `UnexpectedEof` when the file is too short.
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// The read side of these files, for reads beside the writer: readers on other threads
    /// read what was written (appended) before they located it, while the writer goes on.
    /// The store asks for it once, when it opens.
    fn reader(&self) -> Arc<dyn SegmentRead>;

    /// Cuts an open file to `len` bytes. Durable only after [`Self::sync_data`].
    ///
    /// # Errors
    /// The underlying I/O error.
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;

    /// The whole of file `name` (a side file such as a segment's index, read once and not
    /// kept open), which must be at most `max` bytes long.
    ///
    /// # Errors
    /// The underlying I/O error (`NotFound` when there is no such file); `InvalidData` when
    /// it is longer than `max` bytes.
    fn read_file(&self, name: &str, max: u64) -> io::Result<Vec<u8>>;

    /// A job that replaces file `name` with `bytes` atomically, to run later on another
    /// thread: the bytes go to `<name>.tmp` (created or emptied), which is synced and then
    /// renamed over `name`. A crash at any point leaves `name` as it was or holding all of
    /// `bytes`, and perhaps a `<name>.tmp`; the rename is durable after the next
    /// [`Self::sync_dir`].
    ///
    /// # Errors
    /// The files are read-only (the job's own errors are the underlying I/O errors).
    fn replacer(&self, name: &str, bytes: Vec<u8>) -> io::Result<Replacer>;

    /// Removes file `name` (a leftover `.tmp` of a replacement a crash cut short).
    ///
    /// # Errors
    /// The underlying I/O error.
    fn remove(&mut self, name: &str) -> io::Result<()>;
}

/// Positioned reads of the files of one segments directory, from any thread, beside the
/// writer ([`SegmentIo::reader`]): a reader reads bytes that were written before it was told
/// where they are. Segment files are never renamed, shortened or removed while the store is
/// open.
pub trait SegmentRead: std::fmt::Debug + Send + Sync + 'static {
    /// Fills `buf` from file `name` starting at byte `offset`.
    ///
    /// # Errors
    /// The underlying I/O error; `UnexpectedEof` when the file is too short.
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// Read-only handles a [`FsReader`] keeps open at most (the oldest segments' are closed
/// first): reads go mostly to recent segments, and a ledger may have thousands.
const READER_FILES_MAX: usize = 64;

/// The read side of [`FsIo`]: read-only handles of its own, opened on first use and kept.
#[derive(Debug)]
pub(crate) struct FsReader {
    dir: PathBuf,
    files: RwLock<BTreeMap<String, Arc<File>>>,
}

impl FsReader {
    fn file(&self, name: &str) -> io::Result<Arc<File>> {
        let files = self.files.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = files.get(name) {
            return Ok(Arc::clone(file));
        }
        drop(files);
        // Opened without the cache's lock: readers of cached files go on meanwhile.
        let file = Arc::new(File::open(self.dir.join(name))?);
        let mut files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        if files.len() >= READER_FILES_MAX && !files.contains_key(name) {
            files.pop_first();
        }
        Ok(Arc::clone(files.entry(name.to_owned()).or_insert(file)))
    }
}

impl SegmentRead for FsReader {
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_exact_at(&*self.file(name)?, offset, buf)
    }
}

/// The real filesystem: one directory, its files kept open once opened or created.
#[derive(Debug)]
pub struct FsIo {
    /// The directory holding the segment files.
    dir: PathBuf,
    /// Open files by name, shared with the syncers of group commits in progress.
    files: BTreeMap<String, Arc<File>>,
    /// Files are opened for reading only, and nothing is created, written or truncated.
    read_only: bool,
}

impl FsIo {
    /// Uses directory `dir`, creating it (and its parents) if needed, and making its own
    /// directory entry durable by syncing its parent.
    ///
    /// # Errors
    /// The underlying I/O error.
    pub fn new(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_directory(parent)?;
        }
        Ok(Self { dir: dir.to_path_buf(), files: BTreeMap::new(), read_only: false })
    }

    /// Uses the existing directory `dir` for reading only: files are opened read-only (so no
    /// write permission is needed), and creating, appending, truncating and syncing fail
    /// with `PermissionDenied`.
    #[must_use]
    pub fn read_only(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), files: BTreeMap::new(), read_only: true }
    }

    fn writable(&self) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the segment files are open read-only",
            ));
        }
        Ok(())
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> io::Result<&File> {
        self.files.get(name).map(|f| &**f).ok_or_else(|| not_open(name))
    }
}

fn not_open(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("segment file {name} is not open"))
}

impl SegmentIo for FsIo {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn open(&mut self, name: &str) -> io::Result<u64> {
        let file =
            OpenOptions::new().read(true).append(!self.read_only).open(self.dir.join(name))?;
        let len = file.metadata()?.len();
        self.files.insert(name.to_owned(), Arc::new(file));
        Ok(len)
    }

    fn create(&mut self, name: &str) -> io::Result<()> {
        self.writable()?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(self.dir.join(name))?;
        self.files.insert(name.to_owned(), Arc::new(file));
        Ok(())
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.writable()?;
        let mut file = self.file(name)?;
        file.write_all(bytes)
    }

    fn sync_data(&mut self, name: &str) -> io::Result<()> {
        self.writable()?;
        self.file(name)?.sync_data()
    }

    fn syncer(&self, name: &str) -> io::Result<Syncer> {
        let file = Arc::clone(self.files.get(name).ok_or_else(|| not_open(name))?);
        Ok(Box::new(move || file.sync_data()))
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.writable()?;
        sync_directory(&self.dir)
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_exact_at(self.file(name)?, offset, buf)
    }

    fn reader(&self) -> Arc<dyn SegmentRead> {
        Arc::new(FsReader { dir: self.dir.clone(), files: RwLock::default() })
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.writable()?;
        self.file(name)?.set_len(len)
    }

    fn read_file(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let path = self.dir.join(name);
        // Opening a FIFO for reading would wait for a writer: only a regular file is read.
        if !std::fs::metadata(&path)?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name} is not a regular file"),
            ));
        }
        let file = File::open(&path)?;
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name} is longer than {max} bytes"),
            ));
        }
        Ok(bytes)
    }

    fn replacer(&self, name: &str, bytes: Vec<u8>) -> io::Result<Replacer> {
        self.writable()?;
        let (dir, name) = (self.dir.clone(), name.to_owned());
        Ok(Box::new(move || replace_file(&dir, &name, &bytes)))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.writable()?;
        std::fs::remove_file(self.dir.join(name))
    }
}

/// Replaces file `name` in `dir` with `bytes`: written to `<name>.tmp`, synced, renamed.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))
}

#[cfg(unix)]
fn read_exact_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `fsync` on a directory, so that entries created in it survive a crash. Only Unix can
/// open a directory for this; elsewhere it is a no-op.
fn sync_directory(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
