//! One writer per data directory: an exclusive advisory lock on `DATA_DIR/LOCK`, taken before
//! anything in the directory is read or written and held for the writer's lifetime.
//!
//! Two processes writing one directory would both acknowledge commands and interleave frames
//! in one segment file: acknowledged receipts lost and the directory unreadable. So the segment
//! store takes [`DirLock`] first (`flock(LOCK_EX | LOCK_NB)` on Unix, `LockFileEx` on Windows,
//! through [`std::fs::File::try_lock`]); a second writer fails at once with
//! [`LockError::Held`], naming the directory and the holder's process id, which the holder
//! writes into the file after locking. The lock belongs to the open file, so the kernel
//! releases it when the holder exits, however it exits: a crash never leaves a stale lock.
//! The file itself stays (removing it would let two processes lock two different files).
//!
//! Readers (`govern verify`, `receipts`, `export`, `prove`) never take the lock and never
//! write: [`probe`] tells them whether a writer is live (a shared lock tried and released at
//! once), so they can say that they read the prefix written so far.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// The most bytes of the lock file read to learn the holder's pid.
const LOCK_FILE_READ_MAX: u64 = 64;

/// How often a refused writer reads the lock file for the holder's pid, which the holder
/// writes just after it takes the lock, and how long it waits between reads: a refusal that
/// lost the race by microseconds still names the holder, and none waits more than 20 ms.
const HOLDER_READS: u32 = 20;
const HOLDER_READ_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process (or another store in this process) holds the directory.
    #[error(
        "data directory {} is in use by another writer ({}); one process per data directory",
        dir.display(),
        describe_holder(*holder)
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's process id, as it wrote it into the lock file (none if it has not
        /// written it yet).
        holder: Option<u32>,
    },
    /// The lock file could not be created, opened, locked or written.
    #[error("locking data directory {}: {source}", dir.display())]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

fn describe_holder(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("pid {pid}"),
        None => "pid not yet recorded".to_owned(),
    }
}

/// The exclusive lock on a data directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    /// The locked file; closing it releases the lock.
    file: File,
    /// The data directory.
    dir: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock, then records this process's id in the
    /// lock file.
    ///
    /// # Errors
    /// [`LockError::Held`] when another writer holds it; [`LockError::Io`] otherwise.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = (0..HOLDER_READS).find_map(|read| {
                    if read > 0 {
                        std::thread::sleep(HOLDER_READ_PAUSE);
                    }
                    live_holder(&mut file)
                });
                return Err(LockError::Held { dir: dir.to_path_buf(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io)?;
        Ok(Self { file, dir: dir.to_path_buf() })
    }

    /// The locked data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // No stale pid for the next refused writer to name (a crash still leaves one: readers
        // of the file check that the process is alive). Closing the file releases the lock
        // too; unlocking first makes it immediate even if another handle to the same open file
        // lingers.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Whether process `pid` exists (on Linux, by `/proc`; elsewhere assumed).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// A live writer of a data directory, as a reader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writer {
    /// Its process id, if it has recorded it.
    pub pid: Option<u32>,
}

impl std::fmt::Display for Writer {
    /// `pid N`, or `pid not yet recorded`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_holder(self.pid))
    }
}

/// Whether a writer holds `dir` right now: a shared lock on the lock file, tried and
/// released at once. Changes nothing: a directory without a lock file has no writer, and the
/// file is never created here. A writer may start or stop right after the answer.
///
/// # Errors
/// The I/O error of opening or locking an existing lock file.
pub fn probe(dir: &Path) -> std::io::Result<Option<Writer>> {
    let mut file = match File::open(dir.join(LOCK_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            file.unlock()?;
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => Ok(Some(Writer { pid: live_holder(&mut file) })),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The process id recorded in a lock file, if it holds one and that process is alive: the
/// file may still hold an earlier holder's pid (one that crashed, or that the new holder has
/// not overwritten yet).
fn live_holder(file: &mut File) -> Option<u32> {
    read_pid(file).filter(|&pid| process_alive(pid))
}

/// The process id recorded in a lock file, if it holds one.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(LOCK_FILE_READ_MAX).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_directory_and_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        match &err {
            LockError::Held { dir: d, holder } => {
                assert_eq!(d, dir.path());
                assert_eq!(*holder, Some(std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        assert_eq!(probe(dir.path()).unwrap(), Some(Writer { pid: Some(std::process::id()) }));
        drop(held);
        assert_eq!(probe(dir.path()).unwrap(), None);
        let again = DirLock::acquire(dir.path()).unwrap();
        assert_eq!(again.dir(), dir.path());
    }

    #[test]
    fn a_dead_process_s_pid_is_never_named_and_a_release_clears_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        // What a crashed earlier holder leaves behind, not yet overwritten by the live one.
        std::fs::write(dir.path().join(LOCK_FILE), "4194304\n").unwrap();
        assert!(!process_alive(4_194_304), "above Linux's largest pid");
        match DirLock::acquire(dir.path()).unwrap_err() {
            LockError::Held { holder, .. } => assert_eq!(holder, None),
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(probe(dir.path()).unwrap(), Some(Writer { pid: None }));
        drop(held);
        assert_eq!(std::fs::read(dir.path().join(LOCK_FILE)).unwrap(), b"");
    }

    #[test]
    fn probing_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(dir.path()).unwrap(), None);
        assert!(!dir.path().join(LOCK_FILE).exists(), "a probe must not create the lock file");
        let missing = dir.path().join("nowhere");
        assert_eq!(probe(&missing).unwrap(), None);
        assert!(!missing.exists());
    }
}
