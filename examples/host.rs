//! A host binary embedding the govern runtime on its durable default store: it starts the
//! runtime on a data directory, provisions a few tenants and drives their governors (every
//! reply comes after its receipt is on disk), then reads back one tenant's receipts, verifies
//! the chain and shuts down, signing a checkpoint. Logs go to stderr through tracing
//! (`RUST_LOG=info` to see every transition).
//!
//! Run: `cargo run -p govern-examples --example host [DATA_DIR]` (default: a fresh directory
//! under the system's temporary directory, left there for `govern verify`).

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use govern_governors::billing::{Command as Billing, PaymentMethod};
use govern_governors::quota::{Command as Quota, Resource};
use govern_governors::tenant::{Command as TenantCmd, ResourceQuota};
use govern_governors::{Currency, GovernorKind, Money, ResourceId, TenantId};
use govern_runtime::{Outcome, Runtime};

fn show(what: &str, outcome: &Outcome) {
    match outcome {
        Ok(a) => {
            println!("  {what:<44} {} -> {}  receipt #{} {}", a.from, a.to, a.seq, a.hash.short())
        }
        Err(e) => println!("  {what:<44} refused: {} ({e})", e.code()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    println!("data directory {}", dir.display());
    let runtime = Runtime::builder().data_dir(&dir).start().await?;
    let h = runtime.handle();
    let quota = ResourceQuota { storage_gb: 500, compute_units: 16, bandwidth_mbps: 10_000 };
    let (acme, globex) = (TenantId::new("acme")?, TenantId::new("globex")?);

    println!("tenants");
    show(
        "provision and activate acme",
        &h.provision_tenant(&acme, quota, "signed the contract").await,
    );
    show(
        "provision and activate globex",
        &h.provision_tenant(&globex, quota, "signed the contract").await,
    );

    println!("acme: a subscription");
    let sub = h.subscription(&acme, &ResourceId::new("sub-1")?);
    show("start a 14-day trial of pro", &sub.start_trial("pro", 14, "self-serve sign-up").await);
    show("activate", &sub.activate(None, "card added").await);
    show("archive (not allowed while active)", &sub.archive("cleanup").await);

    println!("acme: a payment");
    let pay = h.governor::<govern_governors::billing::Billing>(&acme, &ResourceId::new("inv-001")?);
    let money = Money::new("49.90".parse()?, Currency::from_code("EUR").ok_or("EUR")?)?;
    show(
        "request 49.90 EUR by card",
        &pay.send(Billing::RequestPayment { money, method: PaymentMethod::Card }, "invoice 001")
            .await,
    );
    show(
        "authorize",
        &pay.send(
            Billing::AuthorizePayment { transaction_id: "ch_1".into(), money: None },
            "gateway ok",
        )
        .await,
    );
    show("settle", &pay.send(Billing::SettlePayment { money: None }, "captured").await);

    println!("globex: a quota");
    let q = h.governor::<govern_governors::quota::Quota>(&globex, &ResourceId::new("api")?);
    for usage in [50, 80, 95, 100] {
        let cmd = Quota::CheckQuota { resource: Resource::ApiCalls, usage, limit: 100 };
        show(&format!("usage {usage} of 100"), &q.send(cmd, "metering").await);
    }

    println!("globex suspended");
    show(
        "suspend globex",
        &h.tenant(&globex).send(TenantCmd::SuspendTenant, "unpaid invoices").await,
    );
    let cmd = Quota::CheckQuota { resource: Resource::ApiCalls, usage: 10, limit: 100 };
    show("usage check while suspended", &q.send(cmd, "metering").await);

    let receipts = h.receipts(&acme, None, None)?;
    println!("acme has {} receipts (globex's are not visible from acme)", receipts.len());
    for r in receipts.iter().filter(|r| r.body.governor == GovernorKind::Subscription) {
        println!(
            "  #{:<3} {:<12} {:<14} {} -> {}",
            r.seq,
            r.body.resource.as_str(),
            r.body.command,
            r.body.state_from,
            r.body.state_to
        );
    }
    let verified = h.verify()?;
    println!("chain verified: {} receipts", verified.next_seq);
    let head = runtime.shutdown().await?;
    println!("shut down; ledger holds {} receipts, head {}", head.next_seq, head.last_hash.short());
    println!("check it offline: cargo run -p govern-cli -- verify {}", dir.display());
    Ok(())
}
