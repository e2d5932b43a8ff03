//! `govern`: the command-line face of the runtime. Installs the allocator statistics the
//! benchmarks read and the log subscriber; everything else is in the library crates.

// Every byte goes through `out` (`say!`, `tell!`), which a closed pipe does not panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prints a line to stdout through [`out::Stdout`]: once the reader has gone
/// (`govern ... | head`) the line is dropped and the command carries on to its real exit
/// status; `?` returns any other write error.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))?
    };
}

/// Prints a line to stderr through [`out::Stderr`], as well as it can (a closed stderr
/// drops it).
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::out::tell(format_args!($($arg)*))
    };
}

mod alloc_count;
mod archive;
mod bench;
mod checkpoints;
mod export;
mod graph;
mod invoices;
mod keys;
mod ledger_dir;
mod licence;
mod logs;
mod migrate;
mod out;
mod plans;
mod prometheus;
mod receipts;
mod reopen;
mod run;
mod sagas;
mod serve;
mod serve_node;
mod sign_checkpoint;
mod simulate;
mod start;
mod upgrade;
mod verify;
mod verify_export;

/// Counts live heap bytes, so that benchmarks report exact memory per governor.
#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

/// govern: a runtime that governs the commercial life of SaaS tenants.
#[derive(Debug, Parser)]
#[command(name = "govern", version, about, long_about = None, after_help = LOGS_HELP)]
struct Cli {
    /// How every command writes its log events to stderr: `pretty` (one readable line
    /// each) or `json` (one JSON object per event, with its span's fields). Which events:
    /// RUST_LOG (default `warn`).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t)]
    log: logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `govern --help`'s word on logs.
const LOGS_HELP: &str = "\
Logs: every command writes its tracing events to stderr, never to stdout. RUST_LOG chooses
which (default: warn, that is warnings and errors; RUST_LOG=info or RUST_LOG=debug for the
runtime's transitions and lifecycle, RUST_LOG=govern_ledger=debug for one crate's); --log
chooses the format (pretty or json), before or after the command's name.

Examples:
  RUST_LOG=info govern run examples/scenarios/tour.toml --log json 2>events.jsonl
  RUST_LOG=error govern receipts /tmp/ledger --tenant acme";

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
    /// Verify a ledger (every frame, the hash chain and the Merkle tree), or one tenant's
    /// export.
    ///
    /// The ledger is a data directory or a PostgreSQL database (postgres://... or
    /// host=... dbname=...; docs/postgres.md), read only. With a signed checkpoint (JSON or C2SP signed note; by
    /// default DATA_DIR/checkpoint.json, else DATA_DIR/checkpoint.note), also checks its
    /// signature and that the ledger extends the history it signed. With --export FILE instead of DATA_DIR, checks an export
    /// made by `govern export --with-proofs` without the data directory, against the export's
    /// checkpoint or an older saved one. A database of several shards is verified shard by
    /// shard, one line each. Exits 0 when everything verifies; otherwise 1, naming the first
    /// bad receipt (and its shard).
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern verify /var/lib/myapp/govern --checkpoint ~/checkpoint.json\n",
        "  govern verify postgres://auditor@db.internal/govern\n",
        "  govern verify --export acme.jsonl --checkpoint ~/checkpoint.note --public-key ~/checkpoint.pub",
    ))]
    Verify(verify::VerifyArgs),
    /// Export one tenant's receipts (JSON Lines or CSV), optionally with inclusion proofs.
    ///
    /// Receipts come in sequence order; JSON Lines is the receipt JSON view of
    /// docs/receipts.md, one receipt per line. The ledger is verified first, except on a
    /// data directory whose latest checkpoint covers every receipt: then only the tenant's
    /// receipts are read (through the snapshot), each one's inclusion proof, made from the
    /// tree files, is checked against that checkpoint's root, and each of its resources'
    /// numbering is checked. With
    /// --with-proofs, a header line carries the ledger's latest checkpoint
    /// (checkpoint.json, else checkpoint.note; on a database, the tenant's shard's latest row
    /// of govern_checkpoints; its signature and root verified against the ledger first) and each receipt line its inclusion proof against it (with no
    /// checkpoint, against the whole ledger, unsigned); an end line closes the export
    /// (shapes: docs/receipts.md).
    /// The count goes to stderr.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern export /tmp/ledger --tenant acme > acme.jsonl\n",
        "  govern export /tmp/ledger --tenant acme --with-proofs --consistency-from ~/checkpoint.json\n",
        "  govern export /tmp/ledger --tenant acme --format csv",
    ))]
    Export(export::ExportArgs),
    /// Print the inclusion proof of one receipt, or a consistency proof, as JSON.
    ///
    /// --seq N: the receipt, its inclusion proof and the signed checkpoint it is proved
    /// against (the latest, checkpoint.json else checkpoint.note, on a database the shard's
    /// latest row of govern_checkpoints, when it covers the receipt). --consistency CHECKPOINT: the consistency proof (RFC 9162) from that saved
    /// checkpoint to the latest one, with both.
    /// Every checkpoint is verified (signature, and its root against the ledger) before it is
    /// used. On a data directory, a receipt the latest checkpoint covers is proved from the
    /// tree files (DATA_DIR/trees/, each sealed segment's subtree roots) and the receipts of
    /// its own segment, and the proof is checked against the checkpoint's root: the ledger is
    /// not read whole. Otherwise (no tree files that agree, a newer receipt, --consistency,
    /// --archive, a database) the ledger is verified first. On a PostgreSQL database of
    /// several shards, each its own chain, say which with --shard K or --tenant T.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern prove /tmp/ledger --seq 42\n",
        "  govern prove postgres://auditor@db.internal/govern --seq 42 --tenant acme\n",
        "  govern prove /tmp/ledger --consistency ~/checkpoint-of-last-week.json",
    ))]
    Prove(export::ProveArgs),
    /// Copy a data directory's ledger into an empty PostgreSQL ledger and verify the copy.
    ///
    /// Verifies the source first, refuses a target whose ledger is not empty (naming how many
    /// rows it holds; nothing is written), copies every record in transactions of up to 4 096
    /// records, then verifies the copy (chain, fields, resource numbering, tree) and prints
    /// both heads and Merkle roots. Exits 1 when they differ or anything fails. The data
    /// directory's checkpoint files are not copied (a PostgreSQL ledger keeps none yet).
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern migrate --from /var/lib/govern --to postgres://govern@db.internal/govern\n",
        "  govern verify postgres://govern@db.internal/govern",
    ))]
    Migrate(migrate::MigrateArgs),
    /// Move the oldest sealed segments of a data directory to an archive directory.
    ///
    /// Whole sealed segments wholly below --below SEQ, or whose last receipt is older than
    /// --before DATE, and below the latest checkpoint, are copied to ARCHIVE_DIR/segments/
    /// (each copy read back and compared), then the data directory records each one's
    /// sequence range, SHA-256, hash-chain endpoints, Merkle root and a consistency proof in
    /// archive.json, with a snapshot of the index and the governors' states at the new
    /// boundary; then the originals are removed. The chain, the Merkle tree and the
    /// checkpoint still verify (`govern verify DATA_DIR`, and in full with --archive
    /// ARCHIVE_DIR); governors replay from their states at the boundary. The directory is
    /// opened as its writer: stop the runtime first, or let its retention policy archive
    /// (docs/runtime-semantics.md, "Archival").
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern archive /var/lib/govern --before 2026-01-01 --to /mnt/cold/govern-archive\n",
        "  govern archive /tmp/ledger --below 100000 --to /tmp/ledger-archive\n",
        "  govern verify /tmp/ledger --archive /tmp/ledger-archive",
    ))]
    Archive(archive::ArchiveArgs),
    /// Sign a checkpoint of a ledger with its data directory's key and print it; on a
    /// database, sign each shard's and insert it into govern_checkpoints.
    ///
    /// Verifies the ledger and its checkpoints with the key first (it never signs a history
    /// that contradicts one signed before), then prints a checkpoint of the first N receipts
    /// (default: all), JSON or C2SP signed note. Needs DATA_DIR/checkpoint.key; on a data
    /// directory writes nothing. On a PostgreSQL database (docs/postgres.md), signs with the
    /// key pair of --key-dir DIR the chain of --shard K, or of every shard in turn, and
    /// inserts each checkpoint (JSON form and note) as a row of govern_checkpoints, its key
    /// into govern_checkpoint_keys (INSERT on both is needed, no lease); one shard's is also
    /// printed, several shards' get a line each.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern checkpoint /tmp/ledger > checkpoint.json\n",
        "  govern checkpoint /tmp/ledger --size 100 --note\n",
        "  govern checkpoint postgres://govern@db.internal/govern --key-dir /var/lib/govern --shard 2",
    ))]
    Checkpoint(sign_checkpoint::CheckpointArgs),
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
        "  govern receipts postgres://auditor@db.internal/govern --tenant acme\n",
        "  govern receipts /tmp/ledger --tenant acme --governor subscription --resource sub-1",
    ))]
    Receipts(receipts::ReceiptsArgs),
    /// What a tenant owes for one month: the receipted invoice, or a preview.
    ///
    /// A month the billing run closed shows its receipted invoice (record_invoice, status
    /// closed). Otherwise a preview computed as the billing run would: the plan of the
    /// tenant's live subscription (prorated by day across a plan change), the month's metered
    /// usage (its record_usage batches), priced by the catalog's pricing tables
    /// (docs/pricing.md), lines rounded half-even to the currency's minor unit, and the total.
    /// Text, or JSON with --format json. The data directory is opened read-only.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern invoices /tmp/ledger --tenant acme --catalog examples/plans/pricing.toml --period 2026-01\n",
        "  govern invoices /tmp/ledger --tenant acme --catalog examples/plans/*.toml --format json\n",
        "  govern invoices /tmp/ledger --tenant acme --period 2026-01   # a month the billing run closed",
    ))]
    Invoices(invoices::InvoicesArgs),
    /// List the saga runs in a ledger: state, steps done, what failed, why a run is stuck.
    ///
    /// One line per run (tenant, run id, saga, state, steps done of all, and the failed
    /// step's reason or why the run is stuck), or JSON Lines with --json; each run is the
    /// replay of its saga governor's receipts. The data directory is opened read-only.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern sagas /tmp/ledger\n",
        "  govern sagas /tmp/ledger --tenant acme --json",
    ))]
    Sagas(sagas::SagasArgs),
    /// Run the deterministic simulator: random commands, usage, checks, sagas, clock jumps
    /// and faults from a seed.
    ///
    /// Drives random tenants' governors, usage events, checks and onboarding saga runs
    /// through the real runtime on virtual time, with faults
    /// from the same seed (governor panics at both crash points, failed fsyncs, torn writes,
    /// crashes that drop what was not synced, bit flips in segments, restarts, passivations),
    /// and checks every invariant against a pure model: outcomes as the rules decide, nothing
    /// acknowledged lost, every governor equal to the replay of its receipts, the chain
    /// verified, tenants isolated. A failing seed prints the command that replays it
    /// (exit 1). Its faults are injected on purpose, so it logs nothing unless RUST_LOG says
    /// otherwise. docs/reliability.md.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern simulate --seed 7 --steps 5000\n",
        "  govern simulate --seed 1 --seeds 500 --steps 300\n",
        "  govern simulate --for 10m --steps 2000 --json",
    ))]
    Simulate(simulate::SimulateArgs),
    /// Simulate or apply a plan change of a tenant's subscription through the catalog's gates.
    ///
    /// Starts a runtime on the data directory with the catalog, judges the change (the
    /// catalog's upgrade path or a downgrade back down it, the path's cooldown since the last
    /// plan change, and seed 002's five gates: certification_valid, infrastructure_headroom,
    /// clean_receipt_state, sla_compliance, resource_availability) and prints each gate's
    /// verdict. `apply` then writes the receipted change_plan, or exits 1 with every reason.
    /// docs/plans.md, "Plan changes".
    #[command(subcommand)]
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern upgrade simulate --data-dir /tmp/d --tenant acme --to pro --catalog examples/plans/pricing.toml\n",
        "  govern upgrade apply --data-dir /tmp/d --tenant acme --to starter --catalog examples/plans/pricing.toml --json",
    ))]
    Upgrade(upgrade::UpgradeCommand),
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
    /// Serve the runtime on a data directory over HTTP (docs/http.md), until SIGTERM or Ctrl-C.
    ///
    /// The JSON API (commands, checks, usage, receipts, tenants; /openapi.json describes it)
    /// behind API keys (`govern keys`), /health and /ready without. Prints `listening on
    /// http://ADDR` on stdout once bound. On SIGTERM or Ctrl-C: stops accepting, lets the
    /// requests in hand finish (up to 10 s), shuts the runtime down (last commit, signed
    /// checkpoint in DATA_DIR) and exits 0.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern serve --data-dir /var/lib/govern --catalog plans.toml --addr 127.0.0.1:8080\n",
        "  govern serve --data-dir /tmp/g --catalog examples/plans/pricing.toml --addr 127.0.0.1:0",
    ))]
    Serve(serve::ServeArgs),
    /// API keys for `govern serve`: create (the token is printed once), list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Licence keys: make a key, issue a signed licence for a tenant, verify one.
    ///
    /// A licence is a token carrying a tenant's plan, features, limits, seats and validity,
    /// signed with HMAC-SHA256 (checked by the issuer's own servers: whoever can check it
    /// can also mint one) or Ed25519 (checked offline with the public key). Format, errors
    /// and rotation: docs/licences.md.
    #[command(subcommand)]
    Licence(licence::LicenceCommand),
    /// Plan catalogs: validate them, list their plans, show one, compare two.
    ///
    /// A catalog is one or more TOML files taken together (format and rules:
    /// docs/plans.md). Every subcommand validates the catalog first: a problem exits 2 with
    /// every problem's file:line:column, field, message and hint on stderr.
    #[command(subcommand)]
    Plans(plans::PlansCommand),
}

/// `govern bench`: the runtime's benchmarks, and reopening a ledger.
#[derive(Debug, Subcommand)]
enum BenchCommand {
    #[command(flatten)]
    Runtime(bench::Bench),
    /// Reopens the ledger in DATA_DIR (segment store, then ledger) and times each step.
    Reopen(reopen::ReopenArgs),
    /// Starts a runtime on the ledger in DATA_DIR, as a host or `govern serve` does, and
    /// times it (the ledger's open and the runtime's pass over the history), then shuts down.
    Start(start::StartArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.command {
        Command::Simulate(_) => logs::SIMULATE_FILTER,
        _ => logs::DEFAULT_FILTER,
    };
    logs::init(cli.log, default);
    let result = match cli.command {
        Command::Run(r) => return run::run(&r),
        Command::Plans(p) => return plans::run(&p),
        Command::Licence(l) => return licence::run(&l),
        Command::Upgrade(u) => return upgrade::run(&u),
        Command::Bench(BenchCommand::Runtime(b)) => bench::run(b),
        Command::Bench(BenchCommand::Reopen(r)) => reopen::run(&r),
        Command::Bench(BenchCommand::Start(s)) => start::run(&s),
        Command::Verify(v) => verify::run(&v),
        Command::Export(e) => export::export(&e),
        Command::Prove(p) => export::prove(&p),
        Command::Checkpoint(c) => sign_checkpoint::run(&c),
        Command::Migrate(m) => migrate::run(&m),
        Command::Archive(a) => archive::run(&a),
        Command::Receipts(r) => receipts::run(&r),
        Command::Sagas(s) => sagas::run(&s),
        Command::Simulate(s) => simulate::run(&s),
        Command::Invoices(i) => invoices::run(&i),
        Command::Graph(g) => graph::run(&g),
        Command::Serve(s) => serve::run(&s),
        Command::Keys(k) => keys::run(&k),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tell!("govern: {e}");
            ExitCode::FAILURE
        }
    }
}
