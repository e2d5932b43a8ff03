//! A host binary embedding the govern runtime on its durable default store: it starts the
//! runtime on a data directory, provisions a few tenants and drives their governors (every
//! reply comes after its receipt is on disk), then reads back one tenant's receipts, verifies
//! the chain and shuts down, signing a checkpoint. Logs go to stderr through tracing
//! (`RUST_LOG=info` to see every transition).
//!
//! Run: `cargo run -p govern-examples --example host [DATA_DIR]` (default: a fresh directory
//! under the system's temporary directory, left there for `govern verify`). The test
//! `examples/tests/host.rs` runs the same `run` and checks that the transcript says what it
//! lists.

use std::io::Write;
use std::path::Path;

use govern::governors::billing::{self, PaymentMethod};
use govern::governors::quota::{self, Resource};
use govern::governors::tenant::{Command as TenantCmd, ResourceQuota};
use govern::{Currency, Money, Outcome, ResourceId, Runtime, TenantId};

type Error = Box<dyn std::error::Error>;

fn show(out: &mut dyn Write, what: &str, outcome: &Outcome) -> std::io::Result<()> {
    match outcome {
        Ok(a) => writeln!(
            out,
            "  {what:<44} {} -> {}  receipt #{} {}",
            a.from,
            a.to,
            a.seq,
            a.hash.short()
        ),
        Err(e) => writeln!(out, "  {what:<44} refused: {} ({e})", e.code()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let dir = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("govern-host-{}", std::process::id())),
    };
    run(&dir, &mut std::io::stdout().lock()).await
}

/// The host's work on data directory `dir`, its transcript written to `out`.
pub(crate) async fn run(dir: &Path, out: &mut dyn Write) -> Result<(), Error> {
    writeln!(out, "data directory {}", dir.display())?;
    let runtime = Runtime::builder().data_dir(dir).start().await?;
    let h = runtime.handle();
    let quota = ResourceQuota { storage_gb: 500, compute_units: 16, bandwidth_mbps: 10_000 };
    let (acme, globex) = (TenantId::new("acme")?, TenantId::new("globex")?);

    writeln!(out, "tenants")?;
    show(
        out,
        "provision and activate acme",
        &h.provision_tenant(&acme, quota, "signed the contract").await,
    )?;
    show(
        out,
        "provision and activate globex",
        &h.provision_tenant(&globex, quota, "signed the contract").await,
    )?;

    writeln!(out, "acme: a subscription")?;
    let sub = h.subscription(&acme, &ResourceId::new("sub-1")?);
    show(
        out,
        "start a 14-day trial of pro",
        &sub.start_trial("pro", 14, "self-serve sign-up").await,
    )?;
    show(out, "activate", &sub.activate(None, "card added").await)?;
    show(out, "archive (not allowed while active)", &sub.archive("cleanup").await)?;

    writeln!(out, "acme: a payment")?;
    let pay = h.governor::<billing::Billing>(&acme, &ResourceId::new("inv-001")?);
    let money = Money::new("49.90".parse()?, Currency::from_code("EUR").ok_or("EUR")?)?;
    show(
        out,
        "request 49.90 EUR by card",
        &pay.send(
            billing::Command::RequestPayment { money, method: PaymentMethod::Card },
            "invoice 001",
        )
        .await,
    )?;
    show(
        out,
        "authorize",
        &pay.send(
            billing::Command::AuthorizePayment { transaction_id: "ch_1".into(), money: None },
            "gateway ok",
        )
        .await,
    )?;
    show(
        out,
        "settle",
        &pay.send(billing::Command::SettlePayment { money: None }, "captured").await,
    )?;

    writeln!(out, "globex: a quota")?;
    let q = h.governor::<quota::Quota>(&globex, &ResourceId::new("api")?);
    for usage in [50, 80, 95, 100] {
        let cmd = quota::Command::CheckQuota { resource: Resource::ApiCalls, usage, limit: 100 };
        show(out, &format!("usage {usage} of 100"), &q.send(cmd, "metering").await)?;
    }

    writeln!(out, "globex suspended")?;
    show(
        out,
        "suspend globex",
        &h.tenant(&globex).send(TenantCmd::SuspendTenant, "unpaid invoices").await,
    )?;
    let cmd = quota::Command::CheckQuota { resource: Resource::ApiCalls, usage: 10, limit: 100 };
    show(out, "usage check while suspended", &q.send(cmd, "metering").await)?;

    // Every receipt of acme's, whichever governor wrote it: the count and the listing agree.
    let receipts = h.receipts(&acme, None, None)?;
    writeln!(out, "acme has {} receipts (globex's are not visible from acme)", receipts.len())?;
    for r in &receipts {
        assert_eq!(r.body.tenant, acme, "a tenant's receipts are its own");
        writeln!(
            out,
            "  #{:<3} {:<13} {:<8} {:<18} {} -> {}",
            r.seq,
            r.body.governor.name(),
            r.body.resource.as_str(),
            r.body.command,
            r.body.state_from,
            r.body.state_to
        )?;
    }
    let verified = h.verify()?;
    writeln!(out, "chain verified: {} receipts", verified.next_seq)?;
    let head = runtime.shutdown().await?;
    writeln!(
        out,
        "shut down; ledger holds {} receipts, head {}",
        head.next_seq,
        head.last_hash.short()
    )?;
    writeln!(out, "check it offline: cargo run -p govern-cli -- verify {}", dir.display())?;
    Ok(())
}
