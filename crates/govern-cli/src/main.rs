//! `govern`: the command-line face of the runtime. Installs the allocator statistics the
//! benchmarks read; everything else is in the library crates.

#![allow(clippy::print_stdout, reason = "a command-line tool prints its results")]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod alloc_count;
mod bench;
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
    /// Measure the runtime.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Verify a ledger's data directory: every frame, the hash chain and the Merkle tree.
    /// Exits 0 when everything verifies; otherwise 1, naming the first bad receipt.
    Verify(verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(b) => bench::run(b),
        Command::Verify(v) => verify::run(&v),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("govern: {e}");
            ExitCode::FAILURE
        }
    }
}
