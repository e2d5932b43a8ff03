//! `govern plans`: validate plan catalogs, list their plans, show one, compare two. The
//! catalog is `govern_plans`' (format and rules: docs/plans.md); several files are one catalog.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use govern_plans::{Catalog, LimitValue, Plan, Problem};

/// `govern plans` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PlansCommand {
    /// Validate catalog files, taken together as one catalog.
    ///
    /// Runs the four checks of docs/plans.md (schema, consistency of envelopes and limits
    /// along upgrade paths, refusal codes that exist, evidence present) and prints every
    /// problem to stderr as `file:line:column: field: message` with a hint below. Exits 2 when
    /// there is any problem, 0 with a one-line summary otherwise.
    #[command(after_help = "Example:\n  govern plans validate examples/plans/*.toml")]
    Validate(FilesArgs),
    /// List the plans of a catalog: id, name, price, interval.
    #[command(after_help = "Example:\n  govern plans list examples/plans/licensing.toml")]
    List(FilesArgs),
    /// Everything about one plan: price, features, limits, envelope, upgrades, evidence and
    /// the refusals it can give.
    #[command(
        after_help = "Example:\n  govern plans show professional --catalog examples/plans/licensing.toml"
    )]
    Show(ShowArgs),
    /// Compare two plans side by side: price, each feature, each limit, the envelope.
    #[command(
        after_help = "Example:\n  govern plans diff community professional --catalog examples/plans/licensing.toml"
    )]
    Diff(DiffArgs),
}

/// Catalog files.
#[derive(Debug, Args)]
pub(crate) struct FilesArgs {
    /// Catalog files (TOML, docs/plans.md), validated together as one catalog.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Options of `govern plans show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The plan's id.
    #[arg(value_name = "PLAN")]
    plan: String,
    /// Catalog files, validated together as one catalog.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    catalog: Vec<PathBuf>,
}

/// Options of `govern plans diff`.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The first plan's id.
    #[arg(value_name = "A")]
    a: String,
    /// The second plan's id.
    #[arg(value_name = "B")]
    b: String,
    /// Catalog files, validated together as one catalog.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    catalog: Vec<PathBuf>,
}

/// Exit code when a catalog is invalid.
const INVALID: u8 = 2;

/// What a subcommand does with the validated catalog.
type Action = fn(&Catalog, &PlansCommand) -> Result<(), String>;

/// One number of an envelope.
type EnvelopeField = fn(&govern_plans::Envelope) -> u64;

/// Runs `govern plans ...`; the exit code says how it went.
pub(crate) fn run(command: &PlansCommand) -> ExitCode {
    let (files, result): (&[PathBuf], Action) = match command {
        PlansCommand::Validate(a) => (&a.files, validated),
        PlansCommand::List(a) => (&a.files, list),
        PlansCommand::Show(a) => (&a.catalog, show),
        PlansCommand::Diff(a) => (&a.catalog, diff),
    };
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    let catalog = match govern_plans::load_files(&paths) {
        Ok(c) => c,
        Err(problems) => {
            report(&problems);
            return ExitCode::from(INVALID);
        }
    };
    match result(&catalog, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tell!("govern: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints every problem and the count to stderr.
fn report(problems: &[Problem]) {
    for p in problems {
        tell!("{p}");
    }
    let mut files: Vec<&str> = problems.iter().map(|p| p.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    tell!("govern: {} problem(s) in {} file(s)", problems.len(), files.len());
}

fn validated(catalog: &Catalog, command: &PlansCommand) -> Result<(), String> {
    let files = match command {
        PlansCommand::Validate(a) => a.files.len(),
        _ => 0,
    };
    say!(
        "valid: {files} file(s), catalog version {}: {} plan(s), {} feature(s), {} refusal(s), {} piece(s) of evidence",
        catalog.version,
        catalog.plans.len(),
        catalog.features.len(),
        catalog.refusals.len(),
        catalog.evidence.len()
    );
    Ok(())
}

/// Prints rows as columns separated by two spaces, each as wide as its widest cell (the
/// last column unpadded).
fn table(rows: &[Vec<String>]) -> Result<(), String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        say!("{}", line.trim_end());
    }
    Ok(())
}

/// A price without its interval: `99.00 USD`.
fn amount(plan: &Plan) -> String {
    let p = plan.price;
    let decimals = p.currency.exponent().map_or(0, u32::from);
    let mut a = p.amount;
    a.rescale(decimals);
    format!("{a} {}", p.currency.code())
}

fn list(catalog: &Catalog, _: &PlansCommand) -> Result<(), String> {
    let mut rows = vec![vec!["ID".into(), "NAME".into(), "PRICE".into(), "INTERVAL".into()]];
    for plan in catalog.plans.values() {
        rows.push(vec![
            plan.id.to_string(),
            plan.name.clone(),
            amount(plan),
            plan.price.interval.to_string(),
        ]);
    }
    table(&rows)
}

/// The plan `id`, or an error naming the catalog's plans.
fn find<'c>(catalog: &'c Catalog, id: &str) -> Result<&'c Plan, String> {
    catalog.plan(id).ok_or_else(|| {
        let ids: Vec<&str> = catalog.plans.keys().map(|k| k.as_str()).collect();
        format!("no plan `{id}` in the catalog; its plans are {}", ids.join(", "))
    })
}

/// A limit as one cell: `100000 (monthly)`, `unlimited`.
fn limit_cell(plan: &Plan, meter: &str) -> String {
    match plan.limit(meter) {
        None => "-".into(),
        Some(l) => match (l.value, l.reset) {
            (LimitValue::Unlimited, _) => "unlimited".into(),
            (v, govern_plans::Reset::None) => v.to_string(),
            (v, r) => format!("{v} ({r})"),
        },
    }
}

fn show(catalog: &Catalog, command: &PlansCommand) -> Result<(), String> {
    let PlansCommand::Show(args) = command else { return Ok(()) };
    let plan = find(catalog, &args.plan)?;
    say!("plan {}: {}", plan.id, plan.name);
    say!("price: {} per {}", amount(plan), plan.price.interval);
    say!("features:");
    if plan.features.is_empty() {
        say!("  (none)");
    }
    for f in &plan.features {
        let description = catalog.features.get(f).map_or("", |d| d.description.as_str());
        say!("  {f}: {description}");
    }
    say!("limits:");
    if plan.limits.is_empty() {
        say!("  (none: nothing is limited)");
    } else {
        let mut rows =
            vec![vec!["  METER".into(), "LIMIT".into(), "RESET".into(), "REFUSAL".into()]];
        for (meter, l) in &plan.limits {
            let status = catalog.refusal(&l.refusal).map_or(0, |r| r.status.code());
            rows.push(vec![
                format!("  {meter}"),
                l.value.to_string(),
                l.reset.to_string(),
                format!("{} ({status})", l.refusal),
            ]);
        }
        table(&rows)?;
    }
    match &plan.envelope {
        None => say!("envelope: none"),
        Some(e) => say!(
            "envelope: {} requests/s, p99 latency {} ms, {} connections, queue depth {}, error rate at most {}",
            e.throughput_rps,
            e.p99_latency_ms,
            e.connections,
            e.queue_depth,
            e.error_rate_max
        ),
    }
    say!("upgrades:");
    if plan.upgrades.is_empty() {
        say!("  (none)");
    }
    for u in &plan.upgrades {
        let cooldown =
            if u.cooldown.is_zero() { "none".to_owned() } else { humantime_ish(u.cooldown) };
        say!("  to {} (cooldown {cooldown}; refused inside it with {})", u.to, u.refusal);
    }
    say!("evidence:");
    if plan.evidence.is_empty() {
        say!("  (none required)");
    }
    for id in &plan.evidence {
        if let Some(e) = catalog.evidence.get(id) {
            say!("  {id}: {} ({})", e.title, e.document);
        }
    }
    // The refusals this plan can give: its limits', its upgrades', and the features it lacks.
    let mut codes: std::collections::BTreeSet<&govern_plans::RefusalCode> =
        plan.limits.values().map(|l| &l.refusal).collect();
    codes.extend(plan.upgrades.iter().map(|u| &u.refusal));
    codes.extend(
        catalog
            .features
            .iter()
            .filter(|(f, _)| !plan.features.contains(*f))
            .map(|(_, d)| &d.refusal),
    );
    say!("refusals:");
    for code in codes {
        if let Some(r) = catalog.refusal(code) {
            say!("  {code} ({}): {}", r.status.code(), r.message);
        }
    }
    Ok(())
}

/// A duration in days when it is whole days (`30 days`), else as humantime writes it.
fn humantime_ish(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(86_400) && d.subsec_nanos() == 0 {
        let days = secs / 86_400;
        format!("{days} day{}", if days == 1 { "" } else { "s" })
    } else {
        format!("{secs} s")
    }
}

fn diff(catalog: &Catalog, command: &PlansCommand) -> Result<(), String> {
    let PlansCommand::Diff(args) = command else { return Ok(()) };
    let (a, b) = (find(catalog, &args.a)?, find(catalog, &args.b)?);
    let yes_no = |p: &Plan, f: &govern_plans::Feature| {
        if p.features.contains(f) { "yes" } else { "no" }.to_owned()
    };
    let mut rows = vec![
        vec!["plan".into(), a.id.to_string(), b.id.to_string()],
        vec!["name".into(), a.name.clone(), b.name.clone()],
        vec![
            "price".into(),
            format!("{} per {}", amount(a), a.price.interval),
            format!("{} per {}", amount(b), b.price.interval),
        ],
    ];
    let features: std::collections::BTreeSet<&govern_plans::Feature> =
        a.features.iter().chain(&b.features).collect();
    for f in features {
        rows.push(vec![format!("feature {f}"), yes_no(a, f), yes_no(b, f)]);
    }
    let meters: std::collections::BTreeSet<&govern_plans::Meter> =
        a.limits.keys().chain(b.limits.keys()).collect();
    for m in meters {
        rows.push(vec![format!("limit {m}"), limit_cell(a, m.as_str()), limit_cell(b, m.as_str())]);
    }
    let env = |p: &Plan, f: fn(&govern_plans::Envelope) -> u64| {
        p.envelope.as_ref().map_or("-".to_owned(), |e| f(e).to_string())
    };
    let fields: [(&str, EnvelopeField); 4] = [
        ("throughput_rps", |e| e.throughput_rps),
        ("p99_latency_ms", |e| e.p99_latency_ms),
        ("connections", |e| e.connections),
        ("queue_depth", |e| e.queue_depth),
    ];
    for (name, f) in fields {
        rows.push(vec![format!("envelope {name}"), env(a, f), env(b, f)]);
    }
    let rate =
        |p: &Plan| p.envelope.as_ref().map_or("-".to_owned(), |e| e.error_rate_max.to_string());
    rows.push(vec!["envelope error_rate_max".into(), rate(a), rate(b)]);
    let upgrades = |p: &Plan| {
        let to: Vec<&str> = p.upgrades.iter().map(|u| u.to.as_str()).collect();
        if to.is_empty() { "-".to_owned() } else { to.join(", ") }
    };
    rows.push(vec!["upgrades to".into(), upgrades(a), upgrades(b)]);
    let evidence = |p: &Plan| p.evidence.len().to_string();
    rows.push(vec!["evidence required".into(), evidence(a), evidence(b)]);
    table(&rows)
}

/// Every problem of a catalog, one per paragraph.
pub(crate) fn problems_text(problems: &[govern_plans::Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("the catalog has problems:\n{}", lines.join("\n"))
}

/// Loads and validates catalog files taken together.
pub(crate) fn load_catalog(paths: &[std::path::PathBuf]) -> Result<govern_plans::Catalog, String> {
    let paths: Vec<&std::path::Path> = paths.iter().map(std::path::PathBuf::as_path).collect();
    govern_plans::load_files(&paths).map_err(|problems| problems_text(&problems))
}
