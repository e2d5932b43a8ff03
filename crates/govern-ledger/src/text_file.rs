//! Reading a small text file that someone else may have put there (a checkpoint, a key, a
//! scenario) with a bound: only a regular file is read, never more than one byte past the
//! limit, and opening it never blocks (a FIFO or a device is refused, not waited on).

use std::io::Read as _;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read (also: it does not exist,
    /// [`ReadError::is_not_found`]).
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// Not a regular file: what it is (`a directory`, `a FIFO`, `a character device`, ...).
    #[error("not a regular file: it is {0}")]
    NotRegular(&'static str),
    /// More bytes than the limit.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8 text.
    #[error("not UTF-8 text (invalid byte at offset {at})")]
    NotUtf8 {
        /// The offset of the first byte that is not part of valid UTF-8.
        at: usize,
    },
}

impl ReadError {
    /// Whether the file does not exist.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The text of the regular file at `path`, at most `limit` bytes of UTF-8.
///
/// The file type is checked before opening (opening a FIFO for reading blocks until someone
/// writes to it) and again on the opened file; on Unix the file is opened with `O_NONBLOCK`,
/// so that a path that became a FIFO in between does not block either. At most `limit + 1`
/// bytes are read, however large the file claims to be.
///
/// # Errors
/// [`ReadError::Io`] if it cannot be opened or read; [`ReadError::NotRegular`];
/// [`ReadError::TooLarge`] past `limit` bytes; [`ReadError::NotUtf8`].
pub fn read_bounded(path: &Path, limit: usize) -> Result<String, ReadError> {
    regular(&std::fs::metadata(path).map_err(ReadError::Io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // On a regular file the flag changes nothing.
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let opened = options.open(path).map_err(ReadError::Io)?;
    regular(&opened.metadata().map_err(ReadError::Io)?)?;
    let mut bytes = Vec::new();
    let most = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    opened.take(most).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 { at: e.utf8_error().valid_up_to() })
}

/// Writes `contents` as `dir/name` atomically: a fresh temporary file `name.tmp` (mode 0600
/// when `secret`, else 0644), synced, renamed into place, then the directory synced. A crash
/// at any point leaves the old file or the new one (and maybe the temporary file).
///
/// # Errors
/// What was being done, on which path, and the I/O error.
pub(crate) fn write_atomically(
    dir: &Path,
    name: &str,
    contents: &[u8],
    secret: bool,
) -> Result<(), (&'static str, std::path::PathBuf, std::io::Error)> {
    use std::io::Write as _;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    // A leftover temporary file may have other permissions: start afresh.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(("removing", tmp, source)),
    }
    let mut file = match new_file(secret).open(&tmp) {
        Ok(file) => file,
        Err(source) => return Err(("creating", tmp, source)),
    };
    if let Err(source) = file.write_all(contents) {
        return Err(("writing", tmp, source));
    }
    if let Err(source) = file.sync_all() {
        return Err(("syncing", tmp, source));
    }
    drop(file);
    if let Err(source) = std::fs::rename(&tmp, &path) {
        return Err(("renaming into place", path, source));
    }
    sync_dir(dir).map_err(|source| ("syncing directory", dir.to_owned(), source))
}

/// Options that create a new file (never an existing one), mode 0600 when `secret`, else
/// 0644.
fn new_file(secret: bool) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
}

/// How many temporary names [`create_new`] tries before giving up: each is the process id
/// and a counter, so only leftovers of crashed writers (a reused pid) can be in the way.
pub const TEMPORARY_NAMES_MAX: u32 = 16;

/// Counts the temporary names [`create_new`] takes in this process, so that threads writing
/// at once do not collide.
static TEMPORARY_SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Writes `contents` as a new file at `path`, mode 0600 when `secret` (else 0644), so that the
/// file appears under its name whole or not at all, and an existing file is never replaced
/// (`AlreadyExists`).
///
/// The contents go to a fresh temporary file beside it (`.NAME.PID.N.tmp`, created with the
/// same mode, so a secret is never readable by others even there), synced, then hard-linked
/// to `path`: a link, unlike a rename, fails when `path` exists, whenever it appeared. The
/// temporary name is then removed (linked or refused) and the directory synced. A crash leaves at most the temporary file (whole or partial, mode as above), never
/// a partial file under `path`. Needs a file system with hard links (every local Unix one,
/// NTFS).
///
/// # Errors
/// The I/O error of creating, writing, syncing or linking it (`AlreadyExists` when `path`
/// exists); the temporary file is removed on every error.
pub fn create_new(path: &Path, contents: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let serial = TEMPORARY_SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{serial}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match new_file(secret).open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                attempt += 1;
                if attempt >= TEMPORARY_NAMES_MAX {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    };
    let written = file.write_all(contents).and_then(|()| file.sync_all()).and_then(|()| {
        drop(file);
        std::fs::hard_link(&tmp, path)
    });
    // Whether linked or not, the temporary name goes: the file lives on under `path`.
    let removed = std::fs::remove_file(&tmp);
    written?;
    removed?;
    sync_dir(dir)
}

/// Syncs a directory, so that a rename in it is durable (a no-op where directories cannot be
/// opened as files).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Ok for a regular file; what it is otherwise.
fn regular(meta: &std::fs::Metadata) -> Result<(), ReadError> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(ReadError::NotRegular(if kind.is_dir() { "a directory" } else { special_kind(&kind) }))
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::{ReadError, create_new, read_bounded};

    #[test]
    fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abcd").unwrap();
        assert_eq!(read_bounded(&path, 4).unwrap(), "abcd");
        assert!(matches!(read_bounded(&path, 3), Err(ReadError::TooLarge { limit: 3 })));
    }

    #[test]
    fn a_missing_file_is_not_found_and_bad_utf8_names_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_bounded(&dir.path().join("nope"), 10).unwrap_err().is_not_found());
        let path = dir.path().join("latin1");
        std::fs::write(&path, b"caf\xe9").unwrap();
        assert!(matches!(read_bounded(&path, 10), Err(ReadError::NotUtf8 { at: 3 })));
    }

    #[test]
    fn a_directory_or_a_device_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read_bounded(dir.path(), 10), Err(ReadError::NotRegular("a directory"))));
        #[cfg(unix)]
        assert!(matches!(
            read_bounded(std::path::Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("a character device"))
        ));
    }

    #[test]
    fn create_new_writes_a_whole_file_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        create_new(&path, b"secret one", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let err = create_new(&path, b"secret two", true).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret one", "not overwritten");
        // The link refused it (nothing is checked before): no temporary file is left behind,
        // written or refused.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["k.key"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
        assert!(matches!(read_bounded(&path, 10), Err(ReadError::NotRegular("a FIFO"))));
    }
}
