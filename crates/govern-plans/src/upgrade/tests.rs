//! Plan changes: paths, the cooldown, each gate on its own data, the downgrade preflight, and
//! a property: a gate's verdict depends on its data alone.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::Catalog;

const CATALOG: &str = r#"
version = "t"
[refusals.upgrade_cooldown]
status = 429
message = "cooldown"
[refusals.quota_exceeded]
status = 429
message = "quota"
[refusals.rate_limited]
status = 429
message = "rate"
[evidence.soc2]
title = "SOC 2"
document = "soc2.pdf"

[plans.free]
name = "Free"
price = { amount = "0", currency = "USD", interval = "month" }
limits = { workflows = 5, seats = 3 }
envelope = { throughput_rps = 10, p99_latency_ms = 500, connections = 50, queue_depth = 100 }
upgrades = [{ to = "pro", cooldown = "30d" }]

[plans.pro]
name = "Pro"
price = { amount = "99", currency = "USD", interval = "month" }
limits = { workflows = 100, seats = 20 }
envelope = { throughput_rps = 100, p99_latency_ms = 250, connections = 1000, queue_depth = 10000 }
upgrades = [{ to = "ent" }]

[plans.ent]
name = "Enterprise"
price = { amount = "999", currency = "USD", interval = "month" }
limits = { workflows = "unlimited", seats = 200 }
envelope = { throughput_rps = 1000, p99_latency_ms = 100, connections = 10000, queue_depth = 100000 }
evidence = ["soc2"]

[plans.other]
name = "Other"
price = { amount = "5", currency = "USD", interval = "month" }
"#;

const DAY_MS: u64 = 86_400_000;

fn catalog() -> Catalog {
    crate::validate(CATALOG, "t.toml").expect("the test catalog is valid")
}

fn meter(m: &str) -> Meter {
    Meter::new(m).expect("a meter id")
}

fn input(from: &str, to: &str) -> PlanChangeInput {
    PlanChangeInput {
        from: from.into(),
        to: to.into(),
        plan_changed_at_ms: None,
        now_ms: 1_000 * DAY_MS,
        usage: BTreeMap::new(),
        certification: Certification::Valid,
        headroom: Some(Envelope {
            throughput_rps: 5_000,
            p99_latency_ms: 50,
            connections: 50_000,
            queue_depth: 500_000,
            error_rate_max: crate::ERROR_RATE_MAX_DEFAULT,
        }),
        receipts: Some(ReceiptState::default()),
        sla: SlaStatus::Compliant,
    }
}

fn gate(s: &Simulation, g: Gate) -> &GateReport {
    s.gates.iter().find(|r| r.gate == g).expect("every gate reports")
}

#[test]
fn paths_upgrade_downgrade_and_refusals() {
    let c = catalog();
    let up = can_upgrade(&c, "free", "pro").expect("free upgrades to pro");
    assert_eq!((up.kind, up.cooldown_ms), (ChangeKind::Upgrade, 30 * DAY_MS));
    // ent -> free: back down two upgrade paths.
    let down = can_upgrade(&c, "ent", "free").expect("a downgrade");
    assert_eq!((down.kind, down.cooldown_ms), (ChangeKind::Downgrade, 0));
    // free -> ent: no direct path (an upgrade goes one path at a time).
    assert!(matches!(can_upgrade(&c, "free", "ent"), Err(PathRefusal::NoPath { .. })));
    assert!(matches!(can_upgrade(&c, "free", "other"), Err(PathRefusal::NoPath { .. })));
    assert_eq!(can_upgrade(&c, "pro", "pro"), Err(PathRefusal::SamePlan("pro".into())));
    assert_eq!(can_upgrade(&c, "x", "pro"), Err(PathRefusal::UnknownFrom("x".into())));
    assert_eq!(can_upgrade(&c, "pro", "y"), Err(PathRefusal::UnknownTo("y".into())));
}

#[test]
fn a_clean_upgrade_passes_every_gate() {
    let s = simulate(&catalog(), &input("free", "pro"));
    assert!(s.allowed(), "{:?}", s.refusals());
    assert_eq!(s.kind(), Some(ChangeKind::Upgrade));
    let verdicts: Vec<_> = s.gates.iter().map(|g| (g.gate, g.verdict)).collect();
    assert_eq!(
        verdicts,
        vec![
            (Gate::CertificationValid, Verdict::Pass),
            (Gate::InfrastructureHeadroom, Verdict::Pass),
            (Gate::CleanReceiptState, Verdict::Pass),
            (Gate::SlaCompliance, Verdict::Pass),
            (Gate::ResourceAvailability, Verdict::Pass),
        ]
    );
}

#[test]
fn the_cooldown_counts_from_the_last_plan_change() {
    let c = catalog();
    let mut i = input("free", "pro");
    i.plan_changed_at_ms = Some(i.now_ms - 29 * DAY_MS);
    let s = simulate(&c, &i);
    assert!(!s.allowed());
    let cd = s.cooldown.as_ref().expect("a path has a cooldown check");
    assert_eq!(cd.until_ms, Some(i.now_ms + DAY_MS));
    assert!(s.refusals()[0].starts_with("upgrade_cooldown"), "{:?}", s.refusals());
    i.plan_changed_at_ms = Some(i.now_ms - 30 * DAY_MS);
    assert!(simulate(&c, &i).allowed());
}

#[test]
fn the_downgrade_preflight_names_each_limit_passed() {
    let mut i = input("ent", "free");
    i.usage = BTreeMap::from([(meter("workflows"), 40), (meter("seats"), 3), (meter("x"), 9)]);
    let s = simulate(&catalog(), &i);
    assert_eq!(s.kind(), Some(ChangeKind::Downgrade));
    assert!(!s.allowed());
    assert_eq!(s.overages, vec![Overage { meter: meter("workflows"), usage: 40, limit: 5 }]);
    let g = gate(&s, Gate::ResourceAvailability);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.reason.contains("workflows usage 40 > limit 5"), "{}", g.reason);
    i.usage.insert(meter("seats"), 4);
    let s = simulate(&catalog(), &i);
    assert_eq!(s.overages.len(), 2);
}

#[test]
fn each_gate_fails_on_its_own_data() {
    let c = catalog();
    let mut i = input("pro", "ent");
    i.certification = Certification::Unknown;
    assert_eq!(gate(&simulate(&c, &i), Gate::CertificationValid).verdict, Verdict::Fail);
    // Free requires no evidence: an unknown certification is no reason to refuse.
    let mut d = input("pro", "free");
    d.certification = Certification::Unknown;
    assert_eq!(gate(&simulate(&c, &d), Gate::CertificationValid).verdict, Verdict::Skip);
    i.certification = Certification::Invalid("expired".into());
    assert_eq!(gate(&simulate(&c, &i), Gate::CertificationValid).verdict, Verdict::Fail);

    let mut h = input("pro", "ent");
    h.headroom = Some(Envelope {
        throughput_rps: 500,
        p99_latency_ms: 200,
        connections: 1,
        queue_depth: 1,
        error_rate_max: crate::ERROR_RATE_MAX_DEFAULT,
    });
    let g = simulate(&c, &h);
    let g = gate(&g, Gate::InfrastructureHeadroom);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.reason.contains("throughput_rps 500 < 1000"), "{}", g.reason);
    assert!(g.reason.contains("p99_latency_ms 200 > 100"), "{}", g.reason);
    h.headroom = None;
    assert_eq!(gate(&simulate(&c, &h), Gate::InfrastructureHeadroom).verdict, Verdict::Skip);

    let mut r = input("pro", "ent");
    r.receipts = Some(ReceiptState { failed_payments: 1, pending_payments: 0, open_sagas: 2 });
    let s = simulate(&c, &r);
    let g = gate(&s, Gate::CleanReceiptState);
    assert_eq!(
        (g.verdict, g.reason.as_str()),
        (Verdict::Fail, "1 failed payment(s), 2 open saga(s)")
    );
    r.receipts = None;
    assert_eq!(gate(&simulate(&c, &r), Gate::CleanReceiptState).verdict, Verdict::Skip);

    let mut l = input("pro", "ent");
    l.sla = SlaStatus::Violating("p99 400 ms > 250 ms".into());
    assert_eq!(gate(&simulate(&c, &l), Gate::SlaCompliance).verdict, Verdict::Fail);
    l.sla = SlaStatus::NoData;
    let s = simulate(&c, &l);
    assert_eq!(gate(&s, Gate::SlaCompliance).verdict, Verdict::Skip);
    assert!(s.allowed(), "a skipped gate does not refuse");
}

#[test]
fn no_path_means_no_gates() {
    let s = simulate(&catalog(), &input("free", "other"));
    assert!(!s.allowed());
    assert!(s.gates.is_empty() && s.cooldown.is_none());
    assert_eq!(s.refusals().len(), 1);
}

#[test]
fn the_path_then_the_first_failing_gate_then_the_cooldown_decide() {
    let c = catalog();
    assert_eq!(simulate(&c, &input("free", "pro")).deciding_refusal(), None);
    let s = simulate(&c, &input("free", "ent"));
    assert!(matches!(
        s.deciding_refusal(),
        Some(DecidingRefusal::Path(PathRefusal::NoPath { .. }))
    ));

    // Inside the cooldown alone: the cooldown decides, with its end and the path's code.
    let mut i = input("free", "pro");
    i.plan_changed_at_ms = Some(i.now_ms - DAY_MS);
    let s = simulate(&c, &i);
    let Some(DecidingRefusal::Cooldown { until_ms, refusal }) = s.deciding_refusal() else {
        panic!("{:?}", s.deciding_refusal())
    };
    assert_eq!(until_ms, i.now_ms + 29 * DAY_MS);
    assert_eq!(refusal.map(RefusalCode::as_str), Some("upgrade_cooldown"));

    // A failing gate outranks the cooldown (waiting would not help); the first in seed order
    // leads when several fail.
    i.sla = SlaStatus::Violating("p99".into());
    i.receipts = Some(ReceiptState { failed_payments: 1, pending_payments: 0, open_sagas: 0 });
    let s = simulate(&c, &i);
    let Some(DecidingRefusal::Gate(g)) = s.deciding_refusal() else {
        panic!("{:?}", s.deciding_refusal())
    };
    assert_eq!(g.gate, Gate::CleanReceiptState);
    assert_eq!(s.refusals().len(), 3, "every reason is still reported: {:?}", s.refusals());
}

fn certification() -> impl Strategy<Value = Certification> {
    prop_oneof![
        Just(Certification::Valid),
        Just(Certification::Unknown),
        "[a-z]{0,8}".prop_map(Certification::Invalid),
    ]
}

fn envelope() -> impl Strategy<Value = Option<Envelope>> {
    proptest::option::of((0..2_000u64, 0..600u64, 0..20_000u64, 0..200_000u64).prop_map(
        |(throughput_rps, p99_latency_ms, connections, queue_depth)| Envelope {
            throughput_rps,
            p99_latency_ms,
            connections,
            queue_depth,
            error_rate_max: crate::ERROR_RATE_MAX_DEFAULT,
        },
    ))
}

fn receipts() -> impl Strategy<Value = Option<ReceiptState>> {
    proptest::option::of((0..3u64, 0..3u64, 0..3u64).prop_map(|(f, p, s)| ReceiptState {
        failed_payments: f,
        pending_payments: p,
        open_sagas: s,
    }))
}

fn sla() -> impl Strategy<Value = SlaStatus> {
    prop_oneof![
        Just(SlaStatus::Compliant),
        Just(SlaStatus::NoData),
        "[a-z]{0,8}".prop_map(SlaStatus::Violating)
    ]
}

fn usage() -> impl Strategy<Value = BTreeMap<Meter, u64>> {
    proptest::collection::btree_map(
        prop_oneof![Just(meter("workflows")), Just(meter("seats")), Just(meter("x"))],
        0..300u64,
        0..3,
    )
}

fn change_input() -> impl Strategy<Value = PlanChangeInput> {
    let plans = prop_oneof![Just("free"), Just("pro"), Just("ent"), Just("other")];
    (
        plans.clone(),
        plans,
        proptest::option::of(0..100 * DAY_MS),
        0..100 * DAY_MS,
        usage(),
        certification(),
        envelope(),
        receipts(),
        sla(),
    )
        .prop_map(|(from, to, at, now, usage, certification, headroom, receipts, sla)| {
            PlanChangeInput {
                from: from.into(),
                to: to.into(),
                plan_changed_at_ms: at,
                now_ms: now,
                usage,
                certification,
                headroom,
                receipts,
                sla,
            }
        })
}

proptest! {
    /// A gate's verdict depends on its data only: swapping every other datum for another
    /// input's leaves the gate's report as it was. And the simulation is deterministic.
    #[test]
    fn a_gate_depends_only_on_its_data(a in change_input(), b in change_input()) {
        let c = catalog();
        let sa = simulate(&c, &a);
        prop_assert_eq!(&sa, &simulate(&c, &a));
        if sa.gates.is_empty() {
            return Ok(());
        }
        // For each gate, `b` with only that gate's data (and the plans) taken from `a`.
        let keep = |g: Gate| {
            let mut m = b.clone();
            m.from.clone_from(&a.from);
            m.to.clone_from(&a.to);
            match g {
                Gate::CertificationValid => m.certification = a.certification.clone(),
                Gate::InfrastructureHeadroom => m.headroom = a.headroom,
                Gate::CleanReceiptState => m.receipts = a.receipts,
                Gate::SlaCompliance => m.sla = a.sla.clone(),
                Gate::ResourceAvailability => m.usage.clone_from(&a.usage),
            }
            m
        };
        for g in Gate::ALL {
            let sm = simulate(&c, &keep(g));
            prop_assert_eq!(gate(&sa, g), gate(&sm, g));
        }
        // A failing gate always makes the change refused, with its reason.
        for g in sa.gates.iter().filter(|g| g.verdict == Verdict::Fail) {
            prop_assert!(!sa.allowed());
            prop_assert!(sa.refusals().iter().any(|r| r.starts_with(g.gate.name())));
        }
    }
}
