//! Properties of every governor under random command sequences at random times: no panic,
//! terminal states stay terminal, replaying the receipts gives the live machine, the chain
//! verifies and any changed byte is caught at its receipt; parsing arbitrary input never
//! panics and what parses round-trips.

use govern_governors::{
    Args, CommandSpec, Ctx, DAY_MS, Governor, Reason, Request, ResourceId, StateSpec, TenantId,
};
use govern_receipt::{ChainVerifier, Digest, Receipt, ReceiptBody, replay, verify_chain};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const T0_MS: u64 = govern_governors::graph::EXPLORE_EPOCH_MS;

fn random_run<G: Governor>(
    steps: &[(u16, u64)],
    flip: (usize, usize, u8),
) -> Result<(), TestCaseError> {
    let tenant = TenantId::new("acme").unwrap();
    let resource = ResourceId::new("res-1").unwrap();
    let mut machine = G::default();
    let mut now = T0_MS;
    let mut receipts: Vec<Receipt> = Vec::new();
    for (pick, delta) in steps {
        now += delta;
        let ctx = Ctx::at_ms(now);
        let samples = G::Command::samples(&ctx);
        let command = &samples[usize::from(*pick) % samples.len()];
        let was_terminal = machine.state().is_terminal();
        let before = machine.clone();
        // As the runtime does: accept (decide, and complete what the caller left out), then
        // evolve with the completed command.
        let mut command = command.clone();
        let decided = machine.accept(&mut command, &ctx);
        if let Ok(t) = &decided {
            machine.evolve(&command, t.to, ctx.now);
        }
        match decided {
            Err(_) => prop_assert_eq!(&machine, &before, "a refusal changed the machine"),
            Ok(t) => {
                prop_assert!(
                    !was_terminal,
                    "terminal {} accepted {}",
                    t.from.name(),
                    command.name()
                );
                let request = Request::new(command.clone(), Reason::new("property").unwrap());
                let body = ReceiptBody::for_transition::<G>(
                    tenant.clone(),
                    resource.clone(),
                    receipts.len() as u64,
                    &request,
                    t,
                    ctx.now,
                );
                let prev = receipts.last().map_or(Digest::ZERO, |r| r.hash);
                receipts.push(Receipt::seal(body, receipts.len() as u64, prev));
            }
        }
    }
    let replayed: G = replay(&receipts).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&replayed, &machine);
    prop_assert_eq!(replayed.state_timeout(), machine.state_timeout());
    prop_assert_eq!(verify_chain(&receipts).map(|h| h.next_seq), Ok(receipts.len() as u64));
    if !receipts.is_empty() {
        let mut records: Vec<Vec<u8>> = receipts.iter().map(Receipt::encode).collect();
        let victim = flip.0 % records.len();
        let byte = flip.1 % records[victim].len();
        records[victim][byte] ^= flip.2.max(1);
        let mut v = ChainVerifier::new();
        let err = records.iter().try_for_each(|r| v.push_record(r).map(|_| ())).unwrap_err();
        prop_assert_eq!(err.seq(), victim as u64);
    }
    Ok(())
}

fn run_random<G: Governor>() {
    let mut runner = TestRunner::new(Config { cases: 200, ..Config::default() });
    let steps = prop::collection::vec((any::<u16>(), 0..30 * DAY_MS), 0..60);
    let flip = (any::<usize>(), any::<usize>(), any::<u8>());
    runner
        .run(&(steps, flip), |(steps, flip)| random_run::<G>(&steps, flip))
        .unwrap_or_else(|e| panic!("{}: {e}", G::KIND));
}

fn parse_anything<G: Governor>(name: &str, args: &Args, at: u64) -> Result<(), TestCaseError> {
    if let Ok(command) = G::Command::parse(name, args) {
        let again = G::Command::parse(command.name(), &command.args());
        prop_assert_eq!(again.as_ref(), Ok(&command));
        let ctx = Ctx::at_ms(at);
        let mut machine = G::default();
        for sample in G::Command::samples(&ctx) {
            let _ = machine.apply(&sample, &ctx);
            let _ = machine.decide(&command, &ctx);
        }
    }
    Ok(())
}

fn run_parse<G: Governor>() {
    let mut runner = TestRunner::new(Config { cases: 300, ..Config::default() });
    let names: Vec<String> = G::Command::NAMES.iter().map(|s| (*s).to_owned()).collect();
    let name = prop_oneof![prop::sample::select(names), "[a-z_]{0,12}"];
    let key = prop_oneof![
        prop::sample::select(vec![
            "plan",
            "trial_days",
            "ends_at",
            "amount",
            "currency",
            "method",
            "transaction_id",
            "code",
            "outcome",
            "dispute_id",
            "feature",
            "expires_at",
            "sku",
            "sunset_at",
            "email",
            "channel",
            "resource",
            "usage",
            "limit",
            "domain",
            "severity",
            "finding",
            "deadline_days",
            "storage_gb",
            "compute_units",
            "bandwidth_mbps",
            "duration_minutes",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,6}",
    ];
    let value = prop_oneof![
        "-?[0-9]{0,20}(\\.[0-9]{0,4})?",
        "[A-Za-z@._ :-]{0,12}",
        prop::sample::select(vec![
            "USD", "JPY", "XYZ", "card", "won", "lost", "gdpr", "custom:x", "high", "storage",
            "email", "a@b.co"
        ])
        .prop_map(str::to_owned),
    ];
    let args = prop::collection::btree_map(key, value, 0..5);
    runner
        .run(&(name, args, 0u64..u64::MAX / 2), |(name, args, at)| {
            parse_anything::<G>(&name, &args, at)
        })
        .unwrap_or_else(|e| panic!("{}: {e}", G::KIND));
}

#[test]
fn random_sequences_keep_every_invariant() {
    crate::for_each_governor!(run_random);
}

#[test]
fn parsing_arbitrary_input_never_panics_and_round_trips() {
    crate::for_each_governor!(run_parse);
}
