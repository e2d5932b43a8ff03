//! The Prometheus recorder the `govern` binary installs as the process's metrics recorder
//! (`govern serve`, `govern bench lifecycle --metrics`), rendered by `govern serve` at
//! `GET /metrics` (docs/metrics.md) in the exposition format 0.0.4.
//!
//! Our own storage rather than `metrics-exporter-prometheus`'s recorder, whose cost per
//! command was most of the metrics' overhead on `govern bench lifecycle` (docs/benchmarks.md,
//! "Issue 16: metrics overhead, cut"): every histogram sample there reads the clock again
//! (`quanta`), pins a `crossbeam-epoch` guard and is pushed into a lock-free list (a new block
//! every 64 samples) that the upkeep later folds into the buckets; every operation also bumps a
//! generation counter; and two workers recording the same command kind contend for the same
//! atomics at each command. Here a counter is one relaxed addition and a histogram sample a
//! bucket search and two, on cells striped by thread ([`storage`]), so workers on different
//! cores do not share a cache line; the buckets are counted as samples arrive, so there is
//! no upkeep and memory is fixed per series. The exporter's sanitising functions are still
//! used (`render`), so the text is the same as it rendered.

mod render;
mod storage;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::formatting::sanitize_metric_name;

use self::storage::{StripedCounter, StripedHistogram};

/// The buckets (upper bounds) of every histogram in seconds: 50 µs to 10 s, about ×2.5 a
/// step. Histograms are rendered as Prometheus histograms (`_bucket`), not summaries: p50,
/// p95 and p99 are `histogram_quantile` in PromQL, and they add up across processes.
const SECONDS_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    10.0,
];

/// The buckets of a group commit's size in receipts, up to the ledger's largest batch
/// (`govern_ledger::commit::BATCH_MAX`).
const RECEIPTS_BUCKETS: [f64; 13] =
    [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1_024.0, 2_048.0, 4_096.0];
const _: () = assert!(govern_ledger::commit::BATCH_MAX == 4_096);
const _: () = assert!(SECONDS_BUCKETS.len() <= storage::BOUNDS_MAX);
const _: () = assert!(RECEIPTS_BUCKETS.len() <= storage::BOUNDS_MAX);

/// The most series of each type (counters, gauges, histograms) the recorder holds: a series
/// registered past it is not recorded (a no-op handle, and one warning), so that a host's
/// labels cannot grow the process without bound. Far above what the runtime and `govern
/// serve` register (about 300 series); only per-tenant labels
/// (`RuntimeBuilder::metrics_tenant_labels`) come near it.
pub(crate) const SERIES_MAX: usize = 100_000;

/// The buckets of the histogram named `name`.
fn buckets_of(name: &str) -> &'static [f64] {
    if name == govern_runtime::metric_names::LEDGER_COMMIT_RECEIPTS {
        &RECEIPTS_BUCKETS
    } else {
        &SECONDS_BUCKETS
    }
}

/// Every series and description, shared by the installed recorder and the handles that
/// render it.
#[derive(Debug, Default)]
struct Registry {
    counters: RwLock<BTreeMap<Key, Arc<StripedCounter>>>,
    gauges: RwLock<BTreeMap<Key, Arc<metrics::atomics::AtomicU64>>>,
    histograms: RwLock<BTreeMap<Key, Arc<StripedHistogram>>>,
    /// Help text by metric name (`# HELP`), from the `describe_*` calls.
    descriptions: RwLock<BTreeMap<String, SharedString>>,
}

/// Finds `key`'s series in `map`, or registers it with `make` (unless `SERIES_MAX` are).
fn series<T>(
    map: &RwLock<BTreeMap<Key, Arc<T>>>,
    key: &Key,
    make: impl FnOnce() -> T,
) -> Option<Arc<T>> {
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(key) {
        return Some(Arc::clone(found));
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = map.get(key) {
        return Some(Arc::clone(found));
    }
    if map.len() >= SERIES_MAX {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                metric = key.name(),
                series_max = SERIES_MAX,
                "metrics: too many series; new ones are not recorded"
            );
        });
        return None;
    }
    let made = Arc::new(make());
    map.insert(key.clone(), Arc::clone(&made));
    Some(made)
}

/// The recorder, installed as the process's (`install`) or, in tests, a thread's.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    registry: Arc<Registry>,
}

impl Recorder {
    /// A handle that renders what this recorder holds.
    pub(crate) fn handle(&self) -> PrometheusHandle {
        PrometheusHandle { registry: Arc::clone(&self.registry) }
    }

    fn describe(&self, key: &KeyName, description: SharedString) {
        self.registry
            .descriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sanitize_metric_name(key.as_str()), description);
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(&key, description);
    }

    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(&key, description);
    }

    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(&key, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        series(&self.registry.counters, key, StripedCounter::new)
            .map_or_else(Counter::noop, Counter::from_arc)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        series(&self.registry.gauges, key, || metrics::atomics::AtomicU64::new(0))
            .map_or_else(Gauge::noop, Gauge::from_arc)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        series(&self.registry.histograms, key, || StripedHistogram::new(buckets_of(key.name())))
            .map_or_else(Histogram::noop, Histogram::from_arc)
    }
}

/// Renders the installed recorder's series.
#[derive(Clone, Debug)]
pub(crate) struct PrometheusHandle {
    registry: Arc<Registry>,
}

impl PrometheusHandle {
    /// The exposition text (format 0.0.4) of every series.
    pub(crate) fn render(&self) -> String {
        render::render(&self.registry)
    }
}

/// Installs the recorder globally (before any runtime starts: the runtime registers its
/// instruments with the recorder in force at its start).
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    let recorder = Recorder::default();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| format!("metrics recorder: {e}"))?;
    Ok(handle)
}
