//! Property tests with the governors' own receipts: several keys of real governors driven by
//! their sample commands, split at a random boundary `B`. A governor decoded from its state
//! at `B` and replayed from its receipts after `B` equals the one replayed from its first
//! receipt; a second boundary stacked on a first gives the file one fold gives.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{
    CommandSpec, Ctx, Governor, GovernorKind, Machine, ResourceId, StateSpec, TenantId, account,
    billing, entitlement, quota, subscription, tenant,
};
use govern_receipt::{Digest, Receipt, ReceiptBody, replay, replay_from};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{BaseState, BaseStates, fold_states, write_states};

/// The keys the generated ledgers hold: two tenants, six kinds, two keys of one kind and
/// one resource id under two kinds.
pub(crate) const KEYS: [(&str, GovernorKind, &str); 8] = [
    ("acme", GovernorKind::Subscription, "sub-1"),
    ("acme", GovernorKind::Subscription, "sub-2"),
    ("acme", GovernorKind::Billing, "pay-1"),
    ("acme", GovernorKind::Quota, "q-1"),
    ("acme", GovernorKind::Tenant, "acme"),
    ("globex", GovernorKind::Account, "sub-1"),
    ("globex", GovernorKind::Entitlement, "ent-1"),
    ("globex", GovernorKind::Subscription, "sub-1"),
];

/// 2026-01-01T00:00:00Z.
const T0_MS: u64 = 1_767_225_600_000;

/// One step of a generated ledger: which key, which of its samples to try first, and the
/// milliseconds since the step before.
pub(crate) type Step = (usize, usize, u64);

/// The receipts of the accepted commands of `steps`, sealed into one chain: each step tries
/// its key's sample commands from the one it names on and records the first accepted.
pub(crate) fn ledger(steps: &[Step]) -> Vec<Receipt> {
    let mut machines: Vec<Machine> = KEYS.iter().map(|(_, kind, _)| Machine::new(*kind)).collect();
    let mut counts = [0u64; KEYS.len()];
    let mut out: Vec<Receipt> = Vec::new();
    let mut now = T0_MS;
    for &(key, pick, gap) in steps {
        now += gap;
        let ctx = Ctx::at_ms(now);
        let key = key % KEYS.len();
        let Some(step) = attempt(&mut machines[key], pick, &ctx) else { continue };
        let (tenant, kind, resource) = KEYS[key];
        let body = ReceiptBody {
            timestamp: ctx.now,
            tenant: TenantId::new(tenant).unwrap(),
            governor: kind,
            resource: ResourceId::new(resource).unwrap(),
            resource_seq: counts[key],
            command: Cow::Borrowed(step.0),
            state_from: Cow::Borrowed(step.2),
            state_to: Cow::Borrowed(step.3),
            reason: "generated".into(),
            args: step.1,
            metadata: BTreeMap::new(),
        };
        counts[key] += 1;
        let prev = out.last().map_or(Digest::ZERO, |r| r.hash);
        out.push(Receipt::seal(body, out.len() as u64, prev));
    }
    out
}

/// An accepted command: its name, arguments, state before and after.
type Accepted = (&'static str, BTreeMap<String, String>, &'static str, &'static str);

fn attempt(machine: &mut Machine, pick: usize, ctx: &Ctx) -> Option<Accepted> {
    match machine {
        Machine::Subscription(m) => attempt_typed(m, pick, ctx),
        Machine::Billing(m) => attempt_typed(m, pick, ctx),
        Machine::Quota(m) => attempt_typed(m, pick, ctx),
        Machine::Tenant(m) => attempt_typed(m, pick, ctx),
        Machine::Account(m) => attempt_typed(m, pick, ctx),
        Machine::Entitlement(m) => attempt_typed(m, pick, ctx),
        _ => None,
    }
}

/// The first of `G`'s samples, from number `pick` on, that the machine accepts, applied.
fn attempt_typed<G: Governor>(machine: &mut G, pick: usize, ctx: &Ctx) -> Option<Accepted> {
    let samples = G::Command::samples(ctx);
    (0..samples.len()).find_map(|i| {
        let mut command = samples[(pick + i) % samples.len()].clone();
        let t = machine.accept(&mut command, ctx).ok()?;
        machine.evolve(&command, t.to, ctx.now);
        Some((command.name(), command.args(), t.from.name(), t.to.name()))
    })
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Key `key`'s governor decoded from `base` (its state at `boundary`) and replayed from its
/// receipts from `boundary` on equals the one replayed from all its receipts `all`.
fn resumes_exactly(
    kind: GovernorKind,
    base: Option<BaseState>,
    all: &[&Receipt],
    boundary: u64,
) -> Result<(), TestCaseError> {
    match kind {
        GovernorKind::Subscription => resumes::<subscription::Subscription>(base, all, boundary),
        GovernorKind::Billing => resumes::<billing::Billing>(base, all, boundary),
        GovernorKind::Quota => resumes::<quota::Quota>(base, all, boundary),
        GovernorKind::Tenant => resumes::<tenant::Tenant>(base, all, boundary),
        GovernorKind::Account => resumes::<account::Account>(base, all, boundary),
        GovernorKind::Entitlement => resumes::<entitlement::Entitlement>(base, all, boundary),
        other => Err(fail(format!("no keys of kind {other}"))),
    }
}

fn resumes<G: Governor>(
    base: Option<BaseState>,
    all: &[&Receipt],
    boundary: u64,
) -> Result<(), TestCaseError> {
    let whole: G = replay(all.iter().copied()).map_err(fail)?;
    let below = all.iter().filter(|r| r.seq < boundary).count() as u64;
    let (machine, count) = match base {
        Some(base) => (G::decode_state(&base.state).map_err(fail)?, base.count),
        None => (G::default(), 0),
    };
    prop_assert_eq!(count, below, "the count is the receipts below the boundary");
    let after = all.iter().copied().filter(|r| r.seq >= boundary);
    let resumed = replay_from(machine, count, after).map_err(fail)?;
    prop_assert_eq!(resumed, whole);
    Ok(())
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let gap = prop_oneof![3 => 0..=6 * 3_600_000u64, 1 => 0..=40 * 86_400_000u64];
    prop::collection::vec((0..KEYS.len(), 0..64usize, gap), 0..160)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn replay_from_the_state_at_any_boundary_equals_replay_from_the_first_receipt(
        steps in steps(),
        first in any::<Index>(),
        second in any::<Index>(),
    ) {
        let receipts = ledger(&steps);
        let n = receipts.len();
        let b1 = first.index(n + 1);
        let b2 = b1 + second.index(n - b1 + 1);
        let dir = tempfile::tempdir().unwrap();

        let states = fold_states(None, receipts[..b1].iter().cloned(), b1 as u64).map_err(fail)?;
        let written = write_states(&dir.path().join("one"), b1 as u64, &states).map_err(fail)?;
        prop_assert_eq!(written.entries, states.len() as u64);
        let one = BaseStates::open(&dir.path().join("one")).map_err(fail)?;
        prop_assert_eq!(one.boundary(), b1 as u64);
        for (tenant, kind, resource) in KEYS {
            let (tenant, resource) = (TenantId::new(tenant).unwrap(), ResourceId::new(resource).unwrap());
            let all: Vec<&Receipt> = receipts
                .iter()
                .filter(|r| r.body.tenant == tenant && r.body.governor == kind && r.body.resource == resource)
                .collect();
            let base = one.get(&tenant, kind, &resource).map_err(fail)?;
            prop_assert_eq!(base.is_some(), all.iter().any(|r| r.seq < b1 as u64));
            resumes_exactly(kind, base, &all, b1 as u64)?;
        }

        // A second archive stacked on the first is the archive of both at once, byte for byte.
        let stacked =
            fold_states(Some(&one), receipts[b1..b2].iter().cloned(), b2 as u64).map_err(fail)?;
        let direct = fold_states(None, receipts[..b2].iter().cloned(), b2 as u64).map_err(fail)?;
        prop_assert_eq!(&stacked, &direct);
        let two = write_states(&dir.path().join("two"), b2 as u64, &stacked).map_err(fail)?;
        let three = write_states(&dir.path().join("three"), b2 as u64, &direct).map_err(fail)?;
        prop_assert_eq!(two, three);
        prop_assert_eq!(
            std::fs::read(dir.path().join("two")).unwrap(),
            std::fs::read(dir.path().join("three")).unwrap()
        );
    }
}

#[test]
fn the_generated_ledgers_hold_every_key_and_many_receipts() {
    // The property's inputs are worth something only if they do: a fixed walk over every key.
    let steps: Vec<Step> = (0..400).map(|i| (i % KEYS.len(), i / KEYS.len(), 3_600_000)).collect();
    let receipts = ledger(&steps);
    assert!(receipts.len() > 100, "{} receipts", receipts.len());
    for (tenant, kind, resource) in KEYS {
        let n = receipts
            .iter()
            .filter(|r| {
                r.body.tenant.as_str() == tenant
                    && r.body.governor == kind
                    && r.body.resource.as_str() == resource
            })
            .count();
        assert!(n >= 3, "{tenant}/{kind}/{resource}: {n} receipts");
    }
    let kinds: std::collections::BTreeSet<_> = receipts.iter().map(|r| r.body.governor).collect();
    assert_eq!(kinds.len(), 6);
}
