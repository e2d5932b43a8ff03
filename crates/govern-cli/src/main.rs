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
mod graph;
mod ledger_dir;
mod receipts;
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
    /// Run scenario scripts through the runtime on virtual time, with a transcript.
    ///
    /// Every file is validated first (problems with file:line:column; nothing runs while any
    /// file has one). Then each scenario runs on a fresh runtime with the durable ledger in a
    /// data directory. Exits 0 when every expectation holds, 1 when one fails, 2 when a file
    /// is invalid. The format: docs/scenarios.md.
    Run(run::RunArgs),
    /// Measure the runtime.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Verify a ledger's data directory: every frame, the hash chain and the Merkle tree.
    ///
    /// Reads the directory only. With a signed checkpoint (DATA_DIR/checkpoint.json by
    /// default), also checks its signature and that the ledger extends the history it signed.
    /// Exits 0 when everything verifies; otherwise 1, naming the first bad receipt.
    #[command(after_help = concat!(
        "Example:\n",
        "  govern verify /var/lib/myapp/govern --checkpoint ~/checkpoint.json",
    ))]
    Verify(verify::VerifyArgs),
    /// Export one tenant's receipts (JSON Lines or CSV), optionally with inclusion proofs.
    ///
    /// Receipts come in sequence order; JSON Lines is the receipt JSON view of
    /// docs/receipts.md. The ledger is verified first; proofs are made against the latest
    /// signed checkpoint when the data directory has one. The count goes to stderr.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern export /tmp/ledger --tenant acme > acme.jsonl\n",
        "  govern export /tmp/ledger --tenant acme --with-proofs\n",
        "  govern export /tmp/ledger --tenant acme --format csv",
    ))]
    Export(export::ExportArgs),
    /// Print the inclusion proof of one receipt, as JSON.
    ///
    /// Prints the receipt, its inclusion proof and the signed checkpoint it is proved
    /// against (the latest, when it covers the receipt). The ledger is verified first.
    #[command(after_help = "Example:\n  govern prove /tmp/ledger --seq 42")]
    Prove(export::ProveArgs),
    /// List one tenant's receipts, one readable line each.
    ///
    /// In sequence order, after a header: sequence number, time (RFC 3339, UTC), governor
    /// kind, resource, command, from → to, short hash (12 hex) and reason; then the count.
    /// Only that tenant's receipts, never another's. An unknown tenant (or one with no
    /// receipts) gives an empty listing: count 0, exit 0. The data directory is opened
    /// read-only and every frame's CRC is checked, but not the hash chain: `govern verify`
    /// does that. Exits 1 when DATA_DIR holds no ledger.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern receipts /tmp/ledger --tenant acme\n",
        "  govern receipts /tmp/ledger --tenant acme --governor subscription --resource sub-1",
    ))]
    Receipts(receipts::ReceiptsArgs),
    /// Print a governor's state machine (Mermaid or Graphviz DOT).
    ///
    /// States (initial and terminal marked) and every accepted transition labelled with its
    /// commands, found by running the governor's own code. The Mermaid output is the diagram
    /// docs/governors/KIND.md embeds.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern graph subscription\n",
        "  govern graph billing --format dot | dot -Tsvg > billing.svg",
    ))]
    Graph(graph::GraphArgs),
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
        Command::Receipts(r) => receipts::run(&r),
        Command::Graph(g) => graph::run(&g),
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
