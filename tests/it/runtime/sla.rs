//! SLA monitoring through the runtime on tokio's paused clock: samples of a tenant on the
//! pricing catalog's `starter` (p99 800 ms, 5 requests/s, 1 % errors) cross into a violation
//! (receipted `record_sla_violation`, the status names the dimension), recover (receipted),
//! violate again, and after a restart the open violation is restored from its receipt (the
//! window itself starts empty) so that its recovery is receipted too.

use std::time::Duration;

use govern_governors::{GovernorKind, TenantId};
use govern_plans::sla::{BUCKET_MS, Compliance, Dimension};
use govern_runtime::{Refusal, RuntimeHandle, SlaError};

use super::{builder, resource, tenant};

fn pricing() -> govern_plans::Catalog {
    govern_plans::load(&crate::repo_path("examples/plans/pricing.toml")).unwrap()
}

/// Moves the paused clock to the start of the next bucket.
async fn next_bucket(h: &RuntimeHandle) {
    let into = h.now().as_ms() % BUCKET_MS;
    tokio::time::advance(Duration::from_millis(BUCKET_MS - into)).await;
}

/// `buckets` buckets of 20 requests each taking `latency_ms`, `errors` of them failed; ends at
/// the start of the bucket after them.
async fn traffic(h: &RuntimeHandle, t: &TenantId, buckets: usize, latency_ms: u64, errors: usize) {
    for _ in 0..buckets {
        for i in 0..20 {
            h.sla_record(t, Duration::from_millis(latency_ms), i >= errors).unwrap();
        }
        next_bucket(h).await;
    }
}

/// The tenant's `record_sla_*` receipts as `command dimension measured promised`.
fn sla_receipts(h: &RuntimeHandle, t: &TenantId) -> Vec<String> {
    h.receipts(t, Some(GovernorKind::Audit), Some(&resource(t.as_str())))
        .unwrap()
        .iter()
        .filter(|r| r.body.command.starts_with("record_sla_"))
        .map(|r| {
            let a = &r.body.args;
            format!("{} {} {} {}", r.body.command, a["dimension"], a["measured"], a["promised"])
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_violation_and_its_recovery_are_receipted_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let rt = builder().catalog(pricing()).data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    let acme = super::acme_paying_for_starter(&h).await;
    assert_eq!(
        h.sla_record(&tenant("nobody"), Duration::from_millis(1), true),
        Err(SlaError::Refused(Refusal::UnknownTenant(tenant("nobody"))))
    );
    let s = h.sla_status(&acme).await.unwrap();
    assert_eq!(s.compliance, Compliance::NoData);
    assert_eq!((s.promise.p99_latency_ms, s.promise.throughput_rps), (800, 5));

    next_bucket(&h).await;
    // Two slow buckets, then a fast one: no edge (one or two bad buckets never make one).
    traffic(&h, &acme, 2, 900, 0).await;
    traffic(&h, &acme, 1, 50, 0).await;
    assert_eq!(h.sla_status(&acme).await.unwrap().compliance, Compliance::Compliant);
    assert!(sla_receipts(&h, &acme).is_empty());

    // Three slow buckets running: violated, receipted before the status answers.
    traffic(&h, &acme, 3, 900, 0).await;
    let s = h.sla_status(&acme).await.unwrap();
    assert_eq!(s.compliance, Compliance::Violating);
    assert_eq!(s.violations.len(), 1);
    assert_eq!(s.violations[0].dimension, Dimension::P99Latency);
    assert_eq!(s.window.requests, 120);
    assert_eq!(sla_receipts(&h, &acme), ["record_sla_violation p99_latency 917.503 800"]);

    // Three good buckets: recovered.
    traffic(&h, &acme, 3, 50, 0).await;
    let s = h.sla_status(&acme).await.unwrap();
    assert_eq!(s.compliance, Compliance::Compliant);
    assert_eq!(
        sla_receipts(&h, &acme),
        [
            "record_sla_violation p99_latency 917.503 800",
            "record_sla_recovery p99_latency 53.247 800"
        ]
    );

    // Errors over 1 % for three buckets: violated again, then a restart.
    traffic(&h, &acme, 3, 50, 2).await;
    assert_eq!(h.sla_status(&acme).await.unwrap().compliance, Compliance::Violating);
    assert_eq!(sla_receipts(&h, &acme).last().unwrap(), "record_sla_violation error_rate 0.1 0.01");
    rt.shutdown().await.unwrap();

    let rt = builder().catalog(pricing()).data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    let s = h.sla_status(&acme).await.unwrap();
    assert_eq!(s.compliance, Compliance::Violating, "restored from the receipt");
    assert_eq!(s.violations[0].dimension, Dimension::ErrorRate);
    assert_eq!(s.window.requests, 0, "the window starts empty after a restart");
    // Clean traffic for three buckets: the restored violation recovers, receipted.
    next_bucket(&h).await;
    traffic(&h, &acme, 3, 50, 0).await;
    let s = h.sla_status(&acme).await.unwrap();
    assert_eq!(s.compliance, Compliance::Compliant);
    assert_eq!(
        sla_receipts(&h, &acme),
        [
            "record_sla_violation p99_latency 917.503 800",
            "record_sla_recovery p99_latency 53.247 800",
            "record_sla_violation error_rate 0.1 0.01",
            "record_sla_recovery error_rate 0 0.01",
        ]
    );
    h.verify().unwrap();
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tenant_without_an_envelope_or_a_runtime_without_a_catalog_is_refused() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = super::acme_paying_for_starter(&h).await;
    assert_eq!(
        h.sla_record(&acme, Duration::from_millis(1), true),
        Err(SlaError::Refused(Refusal::NoCatalog))
    );
    rt.shutdown().await.unwrap();
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let bare = tenant("bare");
    h.provision_tenant(&bare, super::quota(), "onboarding").await.unwrap();
    assert_eq!(h.sla_status(&bare).await, Err(SlaError::NoEnvelope(bare)));
    rt.shutdown().await.unwrap();
}

/// The `sla_compliance` gate of a plan change reads the runtime's SLA monitor: skipped with no
/// traffic, passed while compliant, failed naming the dimension while a violation is open.
#[tokio::test(start_paused = true)]
async fn the_plan_change_sla_gate_reads_the_monitor() {
    use govern_plans::{Gate, Verdict};
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let acme = super::acme_paying_for_starter(&h).await;
    let gate = |s: &govern_plans::Simulation| {
        let g = s.gates.iter().find(|g| g.gate == Gate::SlaCompliance).unwrap();
        (g.verdict, g.reason.clone())
    };
    let sub = resource("sub-1");
    let s = h.simulate_plan_change(&acme, &sub, "pro").await.unwrap();
    assert_eq!(gate(&s).0, Verdict::Skip, "{:?}", gate(&s));
    next_bucket(&h).await;
    traffic(&h, &acme, 3, 50, 0).await;
    let s = h.simulate_plan_change(&acme, &sub, "pro").await.unwrap();
    assert_eq!(gate(&s).0, Verdict::Pass, "{:?}", gate(&s));
    traffic(&h, &acme, 3, 900, 0).await;
    let s = h.simulate_plan_change(&acme, &sub, "pro").await.unwrap();
    let (verdict, reason) = gate(&s);
    assert_eq!(verdict, Verdict::Fail);
    assert!(reason.contains("p99_latency"), "{reason}");
    rt.shutdown().await.unwrap();
}
