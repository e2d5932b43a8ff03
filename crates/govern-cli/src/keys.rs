//! `govern keys create|list|revoke --data-dir D`: the API keys `govern serve` takes
//! (govern-http's key store, DATA_DIR/api-keys.json: hashed, never the token). A running
//! server sees a change at its next request.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use govern_governors::Timestamp;
use govern_http::KeyStore;
use govern_http::keys::Scope;

/// `govern keys`'s subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key and print its token (shown this once: only its hash is kept).
    #[command(after_help = concat!(
        "Examples:\n",
        "  govern keys create --data-dir /var/lib/govern --scope operator --label ops\n",
        "  govern keys create --data-dir /var/lib/govern --scope tenant:acme --label billing",
    ))]
    Create(CreateArgs),
    /// List the keys: id, scope, label, created, revoked (never the tokens).
    List(DirArg),
    /// Revoke a key by id (the 8 hex digits after `gk_`): refused from the next request on.
    Revoke(RevokeArgs),
}

/// The data directory every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct DirArg {
    /// The data directory `govern serve` runs on (its api-keys.json).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
}

/// Options of `govern keys create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    dir: DirArg,
    /// What the key reaches: `operator` (every tenant, and the operator's routes) or
    /// `tenant:<id>` (that tenant's routes only).
    #[arg(long)]
    scope: Scope,
    /// A label for people ("billing service").
    #[arg(long, default_value = "")]
    label: String,
}

/// Options of `govern keys revoke`.
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The key's id.
    id: String,
    #[command(flatten)]
    dir: DirArg,
}

/// The key store of the data directory; `create` makes the directory, the others need it
/// (a mistyped directory is an error, not an empty key list).
fn open(dir: &DirArg, create: bool) -> Result<KeyStore, String> {
    let shown = dir.data_dir.display();
    if create {
        std::fs::create_dir_all(&dir.data_dir).map_err(|e| format!("{shown}: {e}"))?;
    } else if !dir.data_dir.is_dir() {
        return Err(format!("{shown} is not a directory"));
    }
    KeyStore::open_in(&dir.data_dir).map_err(|e| e.to_string())
}

/// Runs a `govern keys` subcommand.
pub(crate) fn run(command: &KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create(args) => {
            let store = open(&args.dir, true)?;
            let (info, token) =
                store.create(args.scope.clone(), &args.label).map_err(|e| e.to_string())?;
            say!("{token}");
            tell!("created key {} ({}); the token above is shown only now", info.id, info.scope);
        }
        KeysCommand::List(dir) => {
            let store = open(dir, false)?;
            let keys = store.list().map_err(|e| e.to_string())?;
            let time = |secs: u64| Timestamp(secs.saturating_mul(1000)).to_string();
            say!("{:<8}  {:<22}  {:<20}  {:<20}  label", "id", "scope", "created", "revoked");
            for k in &keys {
                let revoked = k.revoked_at.map_or_else(|| "-".to_owned(), time);
                say!(
                    "{:<8}  {:<22}  {:<20}  {:<20}  {}",
                    k.id,
                    k.scope.to_string(),
                    time(k.created_at),
                    revoked,
                    k.label
                );
            }
            say!("{} keys", keys.len());
        }
        KeysCommand::Revoke(args) => {
            let store = open(&args.dir, false)?;
            let info = store.revoke(&args.id).map_err(|e| e.to_string())?;
            say!("revoked key {} ({})", info.id, info.scope);
        }
    }
    Ok(())
}
