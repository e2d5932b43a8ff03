//! `govern`: the command-line face of the runtime. Installs the allocator statistics the
//! benchmarks read; everything else is in the library crates.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool prints its results and errors"
)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prints a line to stdout. A closed pipe (`govern ... | head`) ends the command quietly
/// (as Unix tools do) instead of panicking as `println!` would.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))?
    };
}

mod alloc_count;
mod bench;
mod export;
mod reopen;
mod run;
mod verify;

/// Counts live heap bytes, so that benchmarks report exact memory per governor.
#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

/// govern: a runtime that governs the commercial life of SaaS tenants.
#[derive(Debug, Parser)]
#[command(name = "govern", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files through the runtime on virtual time and print a transcript. Exits 0
    /// when every expectation holds, 1 when one fails, 2 when a file is invalid.
    Run(run::RunArgs),
    /// Measure the runtime.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Verify a ledger's data directory: every frame, the hash chain and the Merkle tree.
    /// Exits 0 when everything verifies; otherwise 1, naming the first bad receipt.
    Verify(verify::VerifyArgs),
    /// Export one tenant's receipts (JSON Lines or CSV), optionally with inclusion proofs.
    Export(export::ExportArgs),
    /// Print the inclusion proof of one receipt, as JSON.
    Prove(export::ProveArgs),
}

/// `govern bench`: the runtime's benchmarks, and reopening a ledger.
#[derive(Debug, Subcommand)]
enum BenchCommand {
    #[command(flatten)]
    Runtime(bench::Bench),
    /// Reopens the ledger in DATA_DIR (segment store, then ledger) and times each step.
    Reopen(reopen::ReopenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(r) => return run::run(&r),
        Command::Bench(BenchCommand::Runtime(b)) => bench::run(b),
        Command::Bench(BenchCommand::Reopen(r)) => reopen::run(&r),
        Command::Verify(v) => verify::run(&v),
        Command::Export(e) => export::export(&e),
        Command::Prove(p) => export::prove(&p),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e == BROKEN_PIPE => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("govern: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The error `write_line` returns when stdout was closed by the reader.
const BROKEN_PIPE: &str = "broken pipe";

/// Writes one line to stdout (see `say!`).
fn write_line(args: std::fmt::Arguments<'_>) -> Result<(), String> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{args}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(BROKEN_PIPE.to_owned()),
        Err(e) => Err(format!("writing to stdout: {e}")),
    }
}
