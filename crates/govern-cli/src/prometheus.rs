//! The Prometheus recorder the `govern` binary installs as the process's metrics recorder
//! (`govern serve`, `govern bench lifecycle --metrics`): `metrics-exporter-prometheus` with
//! its default features off, so it brings no HTTP listener of its own; `govern serve`
//! renders it at `GET /metrics` (docs/metrics.md).

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The buckets (upper bounds) of every histogram in seconds: 50 µs to 10 s, about ×2.5 a
/// step. Histograms are rendered as Prometheus histograms (`_bucket`), not summaries: p50,
/// p95 and p99 are `histogram_quantile` in PromQL, they add up across processes, and the
/// upkeep files a sample in 5 ns where a summary's quantile sketch takes about 90 (measured
/// here; docs/benchmarks.md, issue 16).
const SECONDS_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    10.0,
];

/// The buckets of a group commit's size in receipts, up to the ledger's largest batch
/// (`govern_ledger::commit::BATCH_MAX`).
const RECEIPTS_BUCKETS: [f64; 13] =
    [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1_024.0, 2_048.0, 4_096.0];
const _: () = assert!(govern_ledger::commit::BATCH_MAX == 4_096);

/// How often the recorder's upkeep runs: it folds the samples recorded since into the
/// summaries, so that memory stays bounded whether or not anyone scrapes (the exporter's own
/// default period; without an async runtime feature, upkeep is the host's to run).
pub(crate) const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the recorder globally (before any runtime starts: the runtime registers its
/// instruments with the recorder in force at its start) and runs its upkeep on the current
/// tokio runtime until the process ends.
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    let receipts = Matcher::Full(govern_runtime::metric_names::LEDGER_COMMIT_RECEIPTS.to_owned());
    let handle = PrometheusBuilder::new()
        .set_buckets(&SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(receipts, &RECEIPTS_BUCKETS))
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("metrics recorder: {e}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
