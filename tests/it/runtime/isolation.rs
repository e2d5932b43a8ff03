//! Tenant isolation as a property (issue 17): whatever random mix of commands, usage and
//! checks three tenants send, sharing resource ids and meters, no query of the runtime hands
//! one tenant another's governors, receipts, decisions, usage or invoices: receipts whole, by
//! kind and resource, and page by page; governor states; usage views; check decisions;
//! invoice previews.

use std::collections::BTreeMap;

use govern_governors::{Ctx, GovernorKind, Machine, TenantId};
use govern_runtime::{RawCommand, RuntimeHandle};
use proptest::prelude::*;

use super::{acme_paying_for_starter, builder, resource, tenant};

/// What one step does.
#[derive(Clone, Debug)]
enum Op {
    /// A command (kind, resource, which sample) of tenant `t`.
    Command { t: usize, kind: usize, r: u8, sample: usize },
    /// `n` reports of tenant `t`.
    Usage { t: usize, n: u64 },
    /// A check of `report_builder` by tenant `t`.
    Check { t: usize },
}

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
        (0..3usize).prop_map(|t| Op::Check { t }),
    ]
}

/// What each tenant was sent that was accepted: receipts (by resource) and reports.
#[derive(Default)]
struct Sent {
    receipts: BTreeMap<(GovernorKind, String), u64>,
    reports: u64,
}

async fn drive(h: &RuntimeHandle, tenants: &[TenantId], ops: &[Op]) -> Vec<Sent> {
    let mut sent: Vec<Sent> = tenants.iter().map(|_| Sent::default()).collect();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Command { t, kind, r, sample } => {
                let kind = KINDS[kind];
                let samples = Machine::samples(kind, &Ctx { now: h.now() });
                let (name, args) = samples[sample % samples.len()].clone();
                let outcome = h
                    .command(RawCommand {
                        tenant: tenants[t].clone(),
                        kind,
                        resource: resource(&format!("r{r}")),
                        name: name.to_owned(),
                        args,
                        reason: "isolation".into(),
                        metadata: Vec::new(),
                    })
                    .await;
                if outcome.is_ok() {
                    *sent[t].receipts.entry((kind, format!("r{r}"))).or_default() += 1;
                }
            }
            Op::Usage { t, n } => {
                let event = format!("e{i}");
                if h.record_usage(&tenants[t], "reports", n, &event, h.now()).await.is_ok() {
                    sent[t].reports += n;
                }
            }
            Op::Check { t } => {
                let _ = h.check(&tenants[t], "report_builder", "open", 1);
            }
        }
    }
    sent
}

fn check_isolation(h: &RuntimeHandle, tenants: &[TenantId], sent: &[Sent]) {
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
        // By kind and resource: exactly what this tenant had accepted there.
        for kind in KINDS {
            for r in ["r0", "r1"] {
                let got = h.receipts(t, Some(kind), Some(&resource(r))).unwrap();
                assert!(got.iter().all(|x| &x.body.tenant == t && x.body.governor == kind));
                let want = sent[i].receipts.get(&(kind, r.to_owned())).copied().unwrap_or(0);
                assert_eq!(got.len() as u64, want, "{t} {kind}/{r}");
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_query_hands_a_tenant_another_tenants_data(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let catalog = govern_plans::load(&crate::repo_path("examples/plans/pricing.toml")).unwrap();
            let runtime = builder().catalog(catalog).start().await.unwrap();
            let h = runtime.handle();
            // Three tenants on Starter, each `sub-1`: the same resource ids everywhere.
            let mut tenants = vec![acme_paying_for_starter(&h).await];
            for name in ["globex", "initech"] {
                let t = tenant(name);
                h.provision_tenant(&t, super::quota(), "isolation").await.unwrap();
                let sub = h.subscription(&t, &resource("sub-1"));
                sub.start_trial("starter", 14, "isolation").await.unwrap();
                sub.activate(None, "isolation").await.unwrap();
                tenants.push(t);
            }
            let sent = drive(&h, &tenants, &ops).await;
            check_isolation(&h, &tenants, &sent);
            runtime.shutdown().await.unwrap();
        });
    }
}
