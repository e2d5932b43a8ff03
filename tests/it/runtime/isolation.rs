//! Tenant isolation as a property (issue 17): whatever random mix of commands, usage and
//! checks three tenants send, sharing resource ids and meters, no query of the runtime hands
//! one tenant another's governors, receipts, decisions, usage or invoices: receipts whole, by
//! kind and resource, and page by page; governor handles' snapshots (each the replay of the
//! tenant's own receipts there); usage views; invoice previews. And each tenant's check
//! decisions and governors are exactly what they are in a twin runtime where that tenant
//! alone ran its operations: another tenant's grants, plans, usage or rate never change them.

use std::collections::BTreeMap;

use govern_governors::{
    Ctx, GovernorKind, Machine, ResourceId, TenantId, account, billing, compliance, entitlement,
};
use govern_runtime::{RawCommand, Runtime, RuntimeHandle};
use proptest::prelude::*;

use super::{acme_paying_for_starter, builder, resource, tenant};

/// Cases a run: `GOVERN_ISOLATION_CASES` when set (more, by hand), else `default` (CI).
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("GOVERN_ISOLATION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one step does.
#[derive(Clone, Debug)]
enum Op {
    /// A command (kind, resource, which sample) of tenant `t`.
    Command { t: usize, kind: usize, r: u8, sample: usize },
    /// `n` reports of tenant `t`.
    Usage { t: usize, n: u64 },
    /// A grant of `sso` to tenant `t` at entitlement `r`, then its approval (the sample
    /// commands 0 and 2; each is also among `Command`'s, but seldom in that order).
    Grant { t: usize, r: u8 },
    /// A check of `FEATURES[feature]` by tenant `t`.
    Check { t: usize, feature: usize },
}

/// The features checked: one of the plan's, metered (`reports`); one an entitlement's sample
/// grant gives (not the plan's); one neither gives.
const FEATURES: [&str; 3] = ["report_builder", "sso", "forecast"];

/// The tenants, each `sub-1` on Starter: the same resource ids everywhere.
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// The resources each kind's commands go to.
const RESOURCES: [&str; 2] = ["r0", "r1"];

const KINDS: [GovernorKind; 4] = [
    GovernorKind::Billing,
    GovernorKind::Entitlement,
    GovernorKind::Account,
    GovernorKind::Compliance,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..KINDS.len(), 0..2u8, 0..64usize)
            .prop_map(|(t, kind, r, sample)| Op::Command { t, kind, r, sample }),
        (0..3usize, 1..5u64).prop_map(|(t, n)| Op::Usage { t, n }),
        (0..3usize, 0..2u8).prop_map(|(t, r)| Op::Grant { t, r }),
        (0..3usize, 0..FEATURES.len()).prop_map(|(t, feature)| Op::Check { t, feature }),
    ]
}

/// What each tenant was sent that was accepted (receipts by resource, reports), and what
/// its checks decided, in order.
#[derive(Default)]
struct Sent {
    receipts: BTreeMap<(GovernorKind, String), u64>,
    reports: u64,
    decisions: Vec<String>,
}

/// Starts a runtime with the pricing catalog and the tenants `TENANTS[i]` for `i` in `only`.
async fn start(only: &[usize]) -> Runtime {
    let catalog = govern_plans::load(&crate::repo_path("examples/plans/pricing.toml")).unwrap();
    let runtime = builder().catalog(catalog).start().await.unwrap();
    let h = runtime.handle();
    for &i in only {
        if i == 0 {
            acme_paying_for_starter(&h).await;
            continue;
        }
        let t = tenant(TENANTS[i]);
        h.provision_tenant(&t, super::quota(), "isolation").await.unwrap();
        let sub = h.subscription(&t, &resource("sub-1"));
        sub.start_trial("starter", 14, "isolation").await.unwrap();
        sub.activate(None, "isolation").await.unwrap();
    }
    runtime
}

/// Runs `ops` of the tenants in `only` (the others' are skipped): what each was sent and
/// what its checks decided.
async fn drive(h: &RuntimeHandle, tenants: &[TenantId], ops: &[Op], only: &[usize]) -> Vec<Sent> {
    let mut sent: Vec<Sent> = tenants.iter().map(|_| Sent::default()).collect();
    for (i, op) in ops.iter().enumerate() {
        let (Op::Command { t, .. }
        | Op::Usage { t, .. }
        | Op::Grant { t, .. }
        | Op::Check { t, .. }) = *op;
        if !only.contains(&t) {
            continue;
        }
        match *op {
            Op::Command { t, kind, r, sample } => {
                let kind = KINDS[kind];
                let samples = Machine::samples(kind, &Ctx { now: h.now() });
                let (name, args) = samples[sample % samples.len()].clone();
                send(h, &tenants[t], kind, r, name, args, &mut sent[t]).await;
            }
            Op::Grant { t, r } => {
                let kind = GovernorKind::Entitlement;
                let samples = Machine::samples(kind, &Ctx { now: h.now() });
                for (name, args) in [samples[0].clone(), samples[2].clone()] {
                    send(h, &tenants[t], kind, r, name, args, &mut sent[t]).await;
                }
            }
            Op::Usage { t, n } => {
                let event = format!("e{i}");
                if h.record_usage(&tenants[t], "reports", n, &event, h.now()).await.is_ok() {
                    sent[t].reports += n;
                }
            }
            Op::Check { t, feature } => {
                let decision = h.check(&tenants[t], FEATURES[feature], "open", 1);
                sent[t].decisions.push(format!("{decision:?}"));
            }
        }
    }
    sent
}

/// Sends command `name` to `kind` `r{r}` of `tenant`, counting it in `sent` if accepted.
async fn send(
    h: &RuntimeHandle,
    tenant: &TenantId,
    kind: GovernorKind,
    r: u8,
    name: &str,
    args: govern_governors::Args,
    sent: &mut Sent,
) {
    let command = RawCommand {
        tenant: tenant.clone(),
        kind,
        resource: resource(&format!("r{r}")),
        name: name.to_owned(),
        args,
        reason: "isolation".into(),
        metadata: Vec::new(),
    };
    if h.command(command).await.is_ok() {
        *sent.receipts.entry((kind, format!("r{r}"))).or_default() += 1;
    }
}

/// A governor handle's snapshot of `kind`, as a machine of a kind known at run time, and how
/// many receipts it has.
async fn snapshot(
    h: &RuntimeHandle,
    kind: GovernorKind,
    t: &TenantId,
    r: &ResourceId,
) -> (Machine, u64) {
    macro_rules! of {
        ($variant:ident, $ty:ty) => {{
            let s = h.governor::<$ty>(t, r).snapshot().await.unwrap();
            (Machine::$variant(s.machine), s.receipts)
        }};
    }
    match kind {
        GovernorKind::Billing => of!(Billing, billing::Billing),
        GovernorKind::Entitlement => of!(Entitlement, entitlement::Entitlement),
        GovernorKind::Account => of!(Account, account::Account),
        GovernorKind::Compliance => of!(Compliance, compliance::Audit),
        other => panic!("{other} is not driven here"),
    }
}

/// Each tenant's governors (kind, resource) as its handles show them.
type Governors = BTreeMap<(GovernorKind, &'static str), (Machine, u64)>;

async fn governors(h: &RuntimeHandle, t: &TenantId) -> Governors {
    let mut all = Governors::new();
    for kind in KINDS {
        for r in RESOURCES {
            all.insert((kind, r), snapshot(h, kind, t, &resource(r)).await);
        }
    }
    all
}

async fn check_isolation(h: &RuntimeHandle, tenants: &[TenantId], sent: &[Sent]) {
    for (i, t) in tenants.iter().enumerate() {
        let all = h.receipts(t, None, None).unwrap();
        assert!(all.iter().all(|r| &r.body.tenant == t), "{t}: receipts of another tenant");
        // Page by page: the same receipts, in order, each the tenant's.
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = h.receipts_since(t, cursor, 7).unwrap();
            assert!(page.receipts.iter().all(|r| &r.body.tenant == t), "{t}: a page of another's");
            paged.extend(page.receipts.iter().map(|r| r.seq));
            cursor = page.cursor;
            if page.caught_up {
                break;
            }
        }
        assert_eq!(paged, all.iter().map(|r| r.seq).collect::<Vec<_>>(), "{t}: pages");
        // By kind and resource: exactly what this tenant had accepted there; its governor
        // handle's snapshot is the replay of those receipts, and counts as many.
        for kind in KINDS {
            for r in RESOURCES {
                let got = h.receipts(t, Some(kind), Some(&resource(r))).unwrap();
                assert!(got.iter().all(|x| &x.body.tenant == t && x.body.governor == kind));
                let want = sent[i].receipts.get(&(kind, r.to_owned())).copied().unwrap_or(0);
                assert_eq!(got.len() as u64, want, "{t} {kind}/{r}");
                let mut replayed = Machine::new(kind);
                for x in &got {
                    let b = &x.body;
                    replayed
                        .replay_step(
                            kind.name(),
                            &b.command,
                            &b.args,
                            &b.state_from,
                            &b.state_to,
                            b.timestamp,
                        )
                        .unwrap();
                }
                let (machine, receipts) = snapshot(h, kind, t, &resource(r)).await;
                assert_eq!(receipts, want, "{t} {kind}/{r}: the handle's receipts");
                assert_eq!(machine, replayed, "{t} {kind}/{r}: the handle's governor");
            }
        }
        // Usage: this tenant's reports only.
        let usage = h.meter_usage(t);
        let reports = usage.meters.iter().find(|m| m.meter == "reports").map_or(0, |m| m.value);
        assert_eq!(reports, sent[i].reports, "{t}: reports counted");
        // The invoice preview prices this tenant's month only.
        let doc = h.invoice(t, "2026-01").unwrap().doc(t);
        assert_eq!(doc.tenant, t.as_str());
        assert!(doc.payment.is_none(), "a preview names no payment");
    }
}

/// For each tenant, a twin runtime where it alone runs its operations: its check decisions
/// (at every step), its governors and its usage there are the same as beside the others.
async fn check_alone(ops: &[Op], tenants: &[TenantId], together: &Runtime, sent: &[Sent]) {
    for (i, t) in tenants.iter().enumerate() {
        let twin = start(&[i]).await;
        let alone = drive(&twin.handle(), tenants, ops, &[i]).await;
        assert_eq!(sent[i].decisions, alone[i].decisions, "{t}: decisions beside the others");
        assert_eq!(sent[i].receipts, alone[i].receipts, "{t}: accepted beside the others");
        assert_eq!(sent[i].reports, alone[i].reports, "{t}: reports beside the others");
        assert_eq!(
            governors(&together.handle(), t).await,
            governors(&twin.handle(), t).await,
            "{t}: governors beside the others"
        );
        twin.shutdown().await.unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn no_query_hands_a_tenant_another_tenants_data(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let all = [0, 1, 2];
            let runtime = start(&all).await;
            let h = runtime.handle();
            let tenants: Vec<TenantId> = TENANTS.iter().map(|t| tenant(t)).collect();
            let sent = drive(&h, &tenants, &ops, &all).await;
            check_isolation(&h, &tenants, &sent).await;
            check_alone(&ops, &tenants, &runtime, &sent).await;
            runtime.shutdown().await.unwrap();
        });
    }
}
