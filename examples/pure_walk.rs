//! Drives one subscription through its life with the pure core only: accept (decide and
//! complete), seal a receipt, evolve; then verifies the chain and rebuilds the subscription
//! from its receipts.
//!
//! Run: `cargo run -p govern-examples --example pure_walk`

#![allow(clippy::print_stdout, reason = "an example prints its transcript")]

use govern::governors::subscription::{Command, Subscription};
use govern::governors::{Ctx, DAY_MS, Governor, Reason, Request, ResourceId, TenantId};
use govern::receipts::{Digest, Receipt, ReceiptBody, replay, verify_chain};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tenant = TenantId::new("acme")?;
    let resource = ResourceId::new("sub-1")?;
    let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let steps = [
        (0, Command::StartTrial { plan: "pro".into(), trial_days: 14 }, "customer signed up"),
        (3, Command::Archive, "operator mistake: archive a live trial"),
        (9, Command::Activate { plan: None }, "card added, trial converted"),
        (40, Command::Pause, "customer on holiday"),
        (70, Command::Resume, "customer back"),
        (90, Command::RequestCancellation, "customer asked to cancel"),
        (91, Command::ConfirmCancellation { ends_at: None }, "cancellation confirmed"),
        (92, Command::Archive, "records kept"),
    ];

    let mut subscription = Subscription::default();
    let mut receipts: Vec<Receipt> = Vec::new();
    for (day, command, reason) in steps {
        let ctx = Ctx::at_ms(t0 + day * DAY_MS);
        let mut request = Request::new(command, Reason::new(reason)?);
        // `accept` decides, and completes an accepted command with what the machine knows
        // and the caller left out, before its receipt is sealed.
        match subscription.accept(&mut request.command, &ctx) {
            Err(rejection) => println!("day {day:>3}  refused  {} ({rejection})", rejection.kind()),
            Ok(transition) => {
                // Receipt first, then the state: the receipt is the system of record.
                let seq = receipts.len() as u64;
                let body = ReceiptBody::for_transition::<Subscription>(
                    tenant.clone(),
                    resource.clone(),
                    seq,
                    &request,
                    transition,
                    ctx.now,
                );
                let receipt =
                    Receipt::seal(body, seq, receipts.last().map_or(Digest::ZERO, |r| r.hash));
                subscription.evolve(&request.command, transition.to, ctx.now);
                println!(
                    "day {day:>3}  #{seq} {} -> {}  {}",
                    transition.from,
                    transition.to,
                    receipt.short_hash()
                );
                receipts.push(receipt);
            }
        }
    }
    let head = verify_chain(&receipts)?;
    let rebuilt: Subscription = replay(&receipts)?;
    println!("chain verified: {} receipts, head {}", head.next_seq, head.last_hash.short());
    println!("replayed state equals live state: {}", rebuilt == subscription);
    Ok(())
}
