//! Billing receipts through the runtime: every one carries the amount and currency it is
//! about, whether the caller stated them or not, a stated amount that is not that one is
//! refused, and replaying each payment's receipts gives its live machine.

use govern_governors::billing::{Billing, Command as BillingCommand};
use govern_governors::{CommandSpec, Ctx, Governor, GovernorKind, Money};
use govern_receipt::replay;
use govern_runtime::RawCommand;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::{T0, resource, started, tenant};

/// How a step states the amount: not at all, as the one the command is about, or doubled.
#[derive(Clone, Copy, Debug)]
enum Stated {
    Nothing,
    Expected,
    Doubled,
}

/// The money `command` is about on `machine`, as the governor's spec says
/// (`docs/governors/billing.md`): a request's own, the pending refund's for the three refund
/// steps, the payment's otherwise.
fn money_about(machine: &Billing, command: &BillingCommand) -> Option<Money> {
    match command.name() {
        "request_payment" | "request_refund" => command.money(),
        "process_refund" | "settle_refund" | "fail_refund" => machine.refund_pending(),
        _ => machine.money(),
    }
}

/// Runs `steps` (payment, sample, how the amount is stated) through a runtime: a command the
/// governor's edge accepts is accepted and its receipt records the money it is about, unless
/// it states a doubled amount, which is refused `precondition_failed`; then every payment's
/// receipts parse back as recorded and replay to its live machine.
fn run(steps: &[(usize, usize, Stated)]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let runtime = started(&["acme"]).await;
        let h = runtime.handle();
        let acme = tenant("acme");
        let payments: Vec<_> = (0..3).map(|i| resource(&format!("inv-{i}"))).collect();
        let mut accepted = vec![0u64; payments.len()];
        for &(payment, pick, stated) in steps {
            let resource = &payments[payment % payments.len()];
            let ctx = Ctx { now: h.now() };
            let machine = h.governor::<Billing>(&acme, resource).snapshot().await.unwrap().machine;
            // Three picks in four among the commands the payment's state has an edge for, so
            // that runs reach refunds and disputes; the fourth among all.
            let samples = BillingCommand::samples(&ctx);
            let open: Vec<_> = samples.iter().filter(|c| machine.decide(c, &ctx).is_ok()).collect();
            let command = match open.len() {
                n if n > 0 && pick % 4 != 0 => open[pick / 4 % n],
                _ => &samples[pick % samples.len()],
            };
            let expected = money_about(&machine, command);
            // Whether the edge (and every guard but the stated amount) accepts the command.
            let edge = machine.decide(command, &ctx).is_ok();
            let request = matches!(command.name(), "request_payment" | "request_refund");
            let mut args = command.args();
            let doubled = match (stated, expected) {
                (Stated::Expected, Some(m)) if !request => {
                    args.insert("amount".into(), m.amount().to_string());
                    args.insert("currency".into(), m.currency().code().to_owned());
                    false
                }
                (Stated::Doubled, Some(m)) if !request => {
                    args.insert("amount".into(), (m.amount() + m.amount()).to_string());
                    args.insert("currency".into(), m.currency().code().to_owned());
                    true
                }
                _ => false,
            };
            let outcome = h
                .command(RawCommand {
                    tenant: acme.clone(),
                    kind: GovernorKind::Billing,
                    resource: resource.clone(),
                    name: command.name().to_owned(),
                    args,
                    reason: "property".into(),
                    metadata: Vec::new(),
                })
                .await;
            let at =
                format!("{} on {resource} ({stated:?}, expected {expected:?})", command.name());
            match outcome {
                Ok(ok) => {
                    prop_assert!(edge && !doubled, "{at}: accepted");
                    accepted[payment % payments.len()] += 1;
                    let receipts =
                        h.receipts(&acme, Some(GovernorKind::Billing), Some(resource)).unwrap();
                    let receipt = receipts.iter().find(|r| r.seq == ok.seq).unwrap();
                    let recorded = BillingCommand::parse(&receipt.body.command, &receipt.body.args)
                        .unwrap()
                        .money();
                    prop_assert!(expected.is_some(), "{at}: accepted with no money to record");
                    prop_assert_eq!(recorded, expected, "{}: receipt {}", at, ok.seq);
                }
                Err(e) if doubled && edge => {
                    prop_assert_eq!(e.code(), "precondition_failed", "{}: {}", at, e);
                }
                Err(e) => prop_assert!(!edge, "{at}: refused {e}"),
            }
        }
        for (resource, accepted) in payments.iter().zip(accepted) {
            let receipts = h.receipts(&acme, Some(GovernorKind::Billing), Some(resource)).unwrap();
            prop_assert_eq!(receipts.len() as u64, accepted, "one receipt per acceptance");
            for r in &receipts {
                // What the receipt records parses back as the command replay applies.
                let parsed = BillingCommand::parse(&r.body.command, &r.body.args).unwrap();
                prop_assert_eq!(parsed.args(), r.body.args.clone());
            }
            let live = h.governor::<Billing>(&acme, resource).snapshot().await.unwrap();
            let replayed: Billing = replay(&receipts).unwrap();
            prop_assert_eq!(&replayed, &live.machine);
            prop_assert_eq!(live.receipts, receipts.len() as u64);
        }
        prop_assert_eq!(h.verify().unwrap().next_seq, h.head().next_seq);
        runtime.shutdown().await.unwrap();
        Ok(())
    })
}

#[test]
fn every_billing_receipt_the_runtime_writes_carries_amount_and_currency_and_replays() {
    let stated = prop_oneof![Just(Stated::Nothing), Just(Stated::Expected), Just(Stated::Doubled)];
    let steps = prop::collection::vec((0usize..3, 0usize..64, stated), 1..80);
    let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
    runner.run(&steps, |steps| run(&steps)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_payment_walk_records_the_amount_in_every_receipt_stated_or_not() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let inv = resource("inv-1");
    let send = |name: &str, args: &[(&str, &str)]| {
        let raw = RawCommand {
            tenant: acme.clone(),
            kind: GovernorKind::Billing,
            resource: inv.clone(),
            name: name.to_owned(),
            args: args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            reason: "walk".into(),
            metadata: Vec::new(),
        };
        h.command(raw)
    };
    let eur = |amount: &'static str| [("amount", amount), ("currency", "EUR")];
    send("request_payment", &[("amount", "49.90"), ("currency", "EUR"), ("method", "card")])
        .await
        .unwrap();
    // A processor confirming another amount is not this payment's confirmation.
    let wrong =
        send("authorize_payment", &[("transaction_id", "ch_1"), eur("50")[0], eur("50")[1]])
            .await
            .unwrap_err();
    assert_eq!((wrong.code(), wrong.http_status()), ("precondition_failed", 409));
    send("authorize_payment", &[("transaction_id", "ch_1")]).await.unwrap();
    send("settle_payment", &eur("49.9")).await.unwrap();
    send("request_refund", &eur("10")).await.unwrap();
    let wrong = send("process_refund", &eur("49.9")).await.unwrap_err();
    assert_eq!(wrong.code(), "precondition_failed");
    send("process_refund", &[]).await.unwrap();
    send("settle_refund", &eur("10.00")).await.unwrap();
    send("close", &[]).await.unwrap();

    let recorded: Vec<String> = h
        .receipts(&acme, Some(GovernorKind::Billing), Some(&inv))
        .unwrap()
        .iter()
        .map(|r| {
            format!("{} {} {}", r.body.command, r.body.args["amount"], r.body.args["currency"])
        })
        .collect();
    assert_eq!(
        recorded,
        [
            "request_payment 49.9 EUR",
            "authorize_payment 49.9 EUR",
            "settle_payment 49.9 EUR",
            "request_refund 10 EUR",
            "process_refund 10 EUR",
            "settle_refund 10 EUR",
            "close 49.9 EUR",
        ]
    );
    assert_eq!(h.now(), T0);
    rt.shutdown().await.unwrap();
}
