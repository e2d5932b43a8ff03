//! Where `govern` writes: results to stdout, messages and logs to stderr, through writers
//! for which a reader that went away is not an error.
//!
//! `govern run x.toml | head -1` closes stdout after one line, `2>&1 | head -1` stderr too.
//! Rust ignores SIGPIPE, so every later write fails with EPIPE; `println!` and `eprintln!`
//! panic on it (exit 101), and giving up at the first one would end the command with a
//! status it did not earn. Here the first EPIPE marks the stream closed and every write to
//! it, then and after, succeeds without writing: the command runs to its end and exits with
//! the status it would have had with the reader still there (a success 0, a failed
//! expectation or verification 1, an invalid file 2). Nothing in this crate writes to stdout
//! or stderr any other way (`print_stdout` and `print_stderr` are denied in the binary).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout met a closed pipe.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Set once a write to stderr met a closed pipe.
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// The result of a write to a stream that may have been closed: a broken pipe marks it
/// `closed` and counts as done; any other error stays one.
fn swallow_broken_pipe<T>(closed: &AtomicBool, done: T, result: io::Result<T>) -> io::Result<T> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            closed.store(true, Ordering::Relaxed);
            Ok(done)
        }
        other => other,
    }
}

/// Stdout, for results (wrap it in a `BufWriter` for many lines). Writes after the reader
/// closed the pipe succeed without writing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        swallow_broken_pipe(&STDOUT_CLOSED, buf.len(), io::stdout().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Ok(());
        }
        swallow_broken_pipe(&STDOUT_CLOSED, (), io::stdout().flush())
    }
}

/// Stderr, for messages and log events. Writes after the reader closed the pipe succeed
/// without writing. As a `MakeWriter` it is the log subscriber's writer, so that a closed
/// stderr never reaches tracing-subscriber's own error report (an `eprintln!`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if STDERR_CLOSED.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        swallow_broken_pipe(&STDERR_CLOSED, buf.len(), io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        if STDERR_CLOSED.load(Ordering::Relaxed) {
            return Ok(());
        }
        swallow_broken_pipe(&STDERR_CLOSED, (), io::stderr().flush())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        Self
    }
}

/// The message of a failed write to stdout (not a closed pipe: that is no failure).
pub(crate) fn write_error(e: &io::Error) -> String {
    format!("writing to stdout: {e}")
}

/// Writes one line to stdout (`say!`); Err only when stdout fails otherwise than by being
/// closed (a full disk, an I/O error), which fails the command.
pub(crate) fn line(args: std::fmt::Arguments<'_>) -> Result<(), String> {
    writeln!(Stdout, "{args}").map_err(|e| write_error(&e))
}

/// Writes one line to stderr (`tell!`), as well as it can: a message that stderr cannot take
/// has nowhere else to go.
pub(crate) fn tell(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(Stderr, "{args}");
}
