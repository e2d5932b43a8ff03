//! `govern licence keygen|issue|verify`: licence keys (govern-licence) from the command
//! line: a key file, a signed token, a verdict (docs/licences.md).

#![allow(
    clippy::disallowed_methods,
    reason = "a licence's issue time, and verify's default `now`, are the wall clock of the person running the command"
)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};
use govern_licence::limits::{KEY_FILE_LEN_MAX, TOKEN_LEN_MAX};
use govern_licence::{Claims, KeyFile, Keyring, Kid, LicenceError, SigningKey};

/// Seconds in a day, for `--days`.
const DAY_SECS: u64 = 86_400;
/// The first second RFC 3339 (four-digit years) cannot write: later times print as seconds.
const RFC3339_END_SECS: u64 = 253_402_300_800;
/// Most `--key` files `verify` takes (the keyring's own bound).
const VERIFY_KEYS_MAX: usize = govern_licence::limits::KEYS_MAX;

/// `govern licence`'s subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum LicenceCommand {
    /// Make a key and write it to a file (mode 0600; never overwrites).
    ///
    /// An HMAC key is one secret that signs and verifies: keep it on the issuing server.
    /// An Ed25519 key is a private key (FILE) and a public key (FILE.pub) to give verifiers,
    /// e.g. a customer's offline install. Each file is one line: `govlic-secret1 ALG KID KEY`
    /// or `govlic-public1 ed25519 KID KEY`, KEY in base64url.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern licence keygen --alg ed25519 --kid 2026-01 --out licence-2026-01.key\n",
        "  govern licence keygen --alg hmac --kid srv-1 --out /etc/myapp/licence-hmac.key",
    ))]
    Keygen(KeygenArgs),
    /// Sign a licence for a tenant and print the token (one line).
    ///
    /// Issued now (the wall clock), valid from --not-before (default: now) until --expires or
    /// for --days. Times are RFC 3339 (2027-01-01T00:00:00Z) or a date (midnight UTC). With
    /// --catalog, the plan and every feature must be ones the catalog names.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern licence issue --key licence-2026-01.key --tenant acme --plan professional \\\n",
        "      --feature sso --feature audit_log --limit projects=100 --seats 25 --days 365\n",
        "  govern licence issue --key srv-1.key --tenant acme --plan team --expires 2027-01-01 \\\n",
        "      --catalog examples/plans/licensing.toml",
    ))]
    Issue(IssueArgs),
    /// Verify a token with one or more keys and print its licence as JSON.
    ///
    /// Each --key is a secret key file or an Ed25519 public key file; with several (key
    /// rotation), the token's key id picks one. Checked at --at (default: now). Exits 0 and
    /// prints `{"kid":..,"alg":..,"licence_id":..,"tenant":..,...}`; a refused token exits 1
    /// with its reason: malformed, unknown_key, wrong_algorithm, bad_signature, expired or
    /// not_yet_valid.
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern licence verify \"$TOKEN\" --key licence-2026-01.key.pub\n",
        "  govern licence verify --token-file acme.lic --key new.key.pub --key old.key.pub\n",
        "  govern licence verify --token-file acme.lic --key srv-1.key --at 2027-06-01",
    ))]
    Verify(VerifyArgs),
}

/// The signing scheme of a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Alg {
    /// HMAC-SHA256: one secret that signs and verifies (server-side checks only).
    Hmac,
    /// Ed25519: a private key that signs, a public key that verifies (offline checks).
    Ed25519,
}

/// Options of `govern licence keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// The signing scheme.
    #[arg(long, value_enum)]
    alg: Alg,
    /// The key's id, written into every token it signs (1 to 64 of A-Z a-z 0-9 _ : -).
    #[arg(long, value_name = "KID")]
    kid: String,
    /// Where to write the secret key (and, for Ed25519, the public key to FILE.pub).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Options of `govern licence issue`.
#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// The secret key file (from `govern licence keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The tenant the licence is for.
    #[arg(long)]
    tenant: String,
    /// The plan it grants.
    #[arg(long)]
    plan: String,
    /// A feature it grants (repeat for several).
    #[arg(long = "feature", value_name = "FEATURE")]
    features: Vec<String>,
    /// A limit it carries, NAME=N (repeat for several).
    #[arg(long = "limit", value_name = "NAME=N", value_parser = parse_limit)]
    limits: Vec<(String, u64)>,
    /// How many seats it grants.
    #[arg(long, default_value_t = 1)]
    seats: u32,
    /// The licence's id (default: `lic-` and 16 random hex digits).
    #[arg(long, value_name = "ID")]
    licence_id: Option<String>,
    /// The first moment it is valid (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    not_before: Option<u64>,
    /// The moment it expires.
    #[arg(long, value_name = "TIME", value_parser = parse_time, required_unless_present = "days", conflicts_with = "days")]
    expires: Option<u64>,
    /// Valid for this many days from --not-before.
    #[arg(long, value_name = "N")]
    days: Option<u64>,
    /// Catalog files (docs/plans.md): refuse a plan or feature they do not name.
    #[arg(long = "catalog", value_name = "FILE")]
    catalog: Vec<PathBuf>,
}

/// Options of `govern licence verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The token.
    #[arg(
        value_name = "TOKEN",
        required_unless_present = "token_file",
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// A file holding the token (surrounding white space ignored).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// A verifying key file: a secret key file or an Ed25519 public key file (repeat for
    /// rotation).
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// Check at this time instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<u64>,
}

/// `NAME=N`.
fn parse_limit(text: &str) -> Result<(String, u64), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=N"))?;
    let n = value.parse().map_err(|_| format!("{value:?} is not a whole number (in {text:?})"))?;
    Ok((name.to_owned(), n))
}

/// RFC 3339, or a bare date at midnight UTC, as Unix seconds.
fn parse_time(text: &str) -> Result<u64, String> {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_owned() };
    let at = humantime::parse_rfc3339(&full)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time or a date (YYYY-MM-DD): {e}"))?;
    Ok(at.duration_since(UNIX_EPOCH).map_err(|_| format!("{text:?} is before 1970"))?.as_secs())
}

/// Unix seconds as RFC 3339 (seconds past year 9999 as a number).
fn show_time(secs: u64) -> String {
    if secs < RFC3339_END_SECS {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
    } else {
        format!("{secs} (Unix seconds)")
    }
}

/// The wall clock, Unix seconds.
fn now_secs() -> Result<u64, String> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970")?
        .as_secs())
}

/// Reads a small text file (a regular file only, at most `limit` bytes of UTF-8).
fn read_small(path: &Path, limit: usize, what: &str) -> Result<String, String> {
    govern_ledger::text_file::read_bounded(path, limit)
        .map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn read_key(path: &Path) -> Result<KeyFile, String> {
    let text = read_small(path, KEY_FILE_LEN_MAX, "key file")?;
    KeyFile::parse(&text).map_err(|e| format!("key file {}: {e}", path.display()))
}

/// Writes a new file (never replacing one), mode 0600 when `secret`.
fn write_new(path: &Path, contents: &str, secret: bool) -> Result<(), String> {
    govern_ledger::text_file::create_new(path, contents.as_bytes(), secret)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a `govern licence` subcommand; the exit code says how it went.
pub(crate) fn run(command: &LicenceCommand) -> ExitCode {
    let result = match command {
        LicenceCommand::Keygen(args) => keygen(args),
        LicenceCommand::Issue(args) => issue(args),
        LicenceCommand::Verify(args) => verify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tell!("govern: {e}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(args: &KeygenArgs) -> Result<(), String> {
    let kid = Kid::new(&args.kid).map_err(|e| e.to_string())?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = match args.alg {
        Alg::Hmac => SigningKey::hmac(kid, &seed).map_err(|e| e.to_string())?,
        Alg::Ed25519 => SigningKey::ed25519_from_seed(kid, &seed),
    };
    let mut public_path = args.out.clone().into_os_string();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    let public = key.to_public_file();
    if public.is_some() && public_path.exists() {
        return Err(format!("{} exists: not overwritten", public_path.display()));
    }
    write_new(&args.out, &key.to_secret_file(), true)?;
    say!("secret key: {} (keep it private)", args.out.display());
    if let Some(public) = public {
        write_new(&public_path, &public, false)?;
        say!("public key: {} (give it to verifiers)", public_path.display());
    }
    Ok(())
}

fn issue(args: &IssueArgs) -> Result<(), String> {
    let KeyFile::Secret(key) = read_key(&args.key)? else {
        return Err(format!("{}: a public key verifies, it cannot issue", args.key.display()));
    };
    if !args.catalog.is_empty() {
        check_catalog(args)?;
    }
    let issued_at = now_secs()?;
    let not_before = args.not_before.unwrap_or(issued_at);
    let expires_at = match (args.expires, args.days) {
        (Some(t), _) => t,
        (None, Some(days)) => days
            .checked_mul(DAY_SECS)
            .and_then(|d| not_before.checked_add(d))
            .ok_or("--days is too far ahead")?,
        (None, None) => return Err("give --expires TIME or --days N".into()),
    };
    let licence_id = match &args.licence_id {
        Some(id) => id.clone(),
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("lic-{hex}")
        }
    };
    let claims = Claims {
        licence_id,
        tenant: args.tenant.clone(),
        plan: args.plan.clone(),
        features: args.features.iter().cloned().collect(),
        limits: args.limits.iter().cloned().collect(),
        seats: args.seats,
        issued_at,
        not_before,
        expires_at,
    };
    if claims.limits.len() != args.limits.len() {
        return Err("a --limit is given twice".into());
    }
    let token = key.issue(&claims).map_err(|e| format!("cannot issue: {e}"))?;
    say!("{token}");
    tell!(
        "issued licence {} for {} ({}), key {}, valid {} to {}",
        claims.licence_id,
        claims.tenant,
        claims.plan,
        key.kid(),
        show_time(not_before),
        show_time(expires_at)
    );
    Ok(())
}

/// Refuses a plan or a feature the catalog does not name.
fn check_catalog(args: &IssueArgs) -> Result<(), String> {
    let paths: Vec<&Path> = args.catalog.iter().map(PathBuf::as_path).collect();
    let catalog = govern_plans::load_files(&paths).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("the catalog is invalid:\n{}", lines.join("\n"))
    })?;
    if catalog.plan(&args.plan).is_none() {
        let known: Vec<String> = catalog.plans.keys().map(ToString::to_string).collect();
        return Err(format!(
            "the catalog has no plan {:?} (its plans: {})",
            args.plan,
            known.join(", ")
        ));
    }
    for f in &args.features {
        if !catalog.features.contains_key(f.as_str()) {
            return Err(format!("the catalog has no feature {f:?}"));
        }
    }
    Ok(())
}

fn verify(args: &VerifyArgs) -> Result<(), String> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => t.trim().to_owned(),
        // A token and a newline, or a little white space, more is not a token.
        (None, Some(path)) => read_small(path, TOKEN_LEN_MAX + 64, "token file")?.trim().to_owned(),
        (None, None) => return Err("give TOKEN or --token-file FILE".into()),
    };
    if args.keys.len() > VERIFY_KEYS_MAX {
        return Err(format!("at most {VERIFY_KEYS_MAX} --key files"));
    }
    let mut ring = Keyring::new();
    for path in &args.keys {
        let key = read_key(path)?.verifying_key();
        let kid = key.kid().clone();
        if ring.insert(key).map_err(|e| e.to_string())?.is_some() {
            return Err(format!("two --key files have the key id {kid}"));
        }
    }
    let now = match args.at {
        Some(at) => at,
        None => now_secs()?,
    };
    match ring.verify(&token, now) {
        Ok(licence) => {
            let json = serde_json::to_string(&licence).map_err(|e| e.to_string())?;
            say!("{json}");
            Ok(())
        }
        Err(e) => Err(format!("licence refused ({}): {}", e.code(), explain(&e))),
    }
}

/// The refusal for people: times in RFC 3339.
fn explain(e: &LicenceError) -> String {
    match e {
        LicenceError::Expired { expired_at, now } => {
            format!("expired at {}, checked at {}", show_time(*expired_at), show_time(*now))
        }
        LicenceError::NotYetValid { not_before, now } => {
            format!("not valid before {}, checked at {}", show_time(*not_before), show_time(*now))
        }
        other => other.to_string(),
    }
}
