//! One plan change simulated (`govern_plans::simulate`): the path, the cooldown and the five
//! gates on the example platform catalog, a clean upgrade and a downgrade refused by its
//! preflight. What `govern upgrade simulate` costs after the runtime gathered the inputs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use govern_plans::{Certification, Envelope, Meter, PlanChangeInput, ReceiptState, SlaStatus};

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans/platform.toml");
    let Ok(catalog) = govern_plans::load(&path) else {
        panic!("the example platform catalog must validate");
    };
    let usage: BTreeMap<Meter, u64> = ["seats", "workflows", "executions", "api_calls"]
        .iter()
        .filter_map(|m| Meter::new(m).ok())
        .map(|m| (m, 1_000_000))
        .collect();
    let up = PlanChangeInput {
        from: "team".into(),
        to: "platform-enterprise".into(),
        plan_changed_at_ms: Some(0),
        now_ms: 90 * 86_400_000,
        usage: BTreeMap::new(),
        certification: Certification::Valid,
        headroom: Some(Envelope {
            throughput_rps: 10_000,
            p99_latency_ms: 10,
            connections: 1_000_000,
            queue_depth: 1_000_000,
            error_rate_max: govern_plans::ERROR_RATE_MAX_DEFAULT,
        }),
        receipts: Some(ReceiptState::default()),
        sla: SlaStatus::NoData,
    };
    assert!(govern_plans::simulate(&catalog, &up).allowed(), "the clean upgrade passes");
    c.bench_function("simulate/upgrade_clean", |b| {
        b.iter(|| black_box(govern_plans::simulate(black_box(&catalog), black_box(&up))));
    });
    let down =
        PlanChangeInput { from: "platform-enterprise".into(), to: "team".into(), usage, ..up };
    c.bench_function("simulate/downgrade_preflight", |b| {
        b.iter(|| black_box(govern_plans::simulate(black_box(&catalog), black_box(&down))));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
