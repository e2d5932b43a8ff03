//! The recorder's cells: counters and histograms striped by thread, so that two threads
//! recording the same series (two workers answering the same kind of command) each add to a
//! cache line of their own instead of moving one between their cores at every command; a
//! render adds the stripes up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use metrics::{CounterFn, HistogramFn};

/// The most stripes a series has: one per core up to this, so that a counter or a histogram
/// costs at most `STRIPES_MAX` × 128 bytes.
pub(crate) const STRIPES_MAX: usize = 16;

/// The most bucket bounds a histogram has (the `+Inf` bucket is one more): a histogram's
/// stripe is then its 15 counts and its sum, 128 bytes.
pub(crate) const BOUNDS_MAX: usize = 14;

/// The stripes a series has in this process: one per core the process may use (at most
/// `STRIPES_MAX`), read once.
fn stripes() -> usize {
    static STRIPES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *STRIPES.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, STRIPES_MAX)
    })
}

/// This thread's stripe: threads are numbered in the order they first record, round-robin
/// over the stripes (a runtime's workers record first and most, and get stripes of their own
/// as long as there are no more of them than cores).
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    MINE.with(|n| *n) % stripes()
}

/// A counter's stripe, alone on its cache lines (128 bytes: the adjacent-line prefetcher
/// moves lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct CounterStripe(AtomicU64);

/// A counter: one relaxed addition per increment, on this thread's stripe.
#[derive(Debug)]
pub(crate) struct StripedCounter {
    stripes: Box<[CounterStripe]>,
}

impl StripedCounter {
    pub(crate) fn new() -> Self {
        Self { stripes: (0..stripes()).map(|_| CounterStripe::default()).collect() }
    }

    /// The counter's value: its stripes added up.
    pub(crate) fn value(&self) -> u64 {
        self.stripes.iter().fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

impl CounterFn for StripedCounter {
    fn increment(&self, value: u64) {
        if let Some(s) = self.stripes.get(stripe()) {
            s.0.fetch_add(value, Ordering::Relaxed);
        }
    }

    /// Raises the counter to `value` if it is below (what the facade's atomic counter
    /// does); the difference goes to this thread's stripe. Not used by govern.
    fn absolute(&self, value: u64) {
        let current = self.value();
        if value > current {
            self.increment(value - current);
        }
    }
}

/// A histogram's stripe: a count per bucket (the last is `+Inf`) and the sum of the samples
/// (an `f64`'s bits), 128 bytes.
#[derive(Debug, Default)]
#[repr(align(128))]
struct HistogramStripe {
    counts: [AtomicU64; BOUNDS_MAX + 1],
    sum: AtomicU64,
}

/// A Prometheus histogram: a sample is counted in its bucket as it arrives (a search of at
/// most `BOUNDS_MAX` bounds and two additions on this thread's stripe), so nothing is kept
/// per sample and nothing is left to fold later.
#[derive(Debug)]
pub(crate) struct StripedHistogram {
    /// The buckets' upper bounds, ascending (at most `BOUNDS_MAX`).
    bounds: &'static [f64],
    stripes: Box<[HistogramStripe]>,
}

/// What a render reads of a histogram.
#[derive(Debug, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// `(upper bound, samples at or below it)`, cumulative, without `+Inf`.
    pub(crate) buckets: Vec<(f64, u64)>,
    /// Every sample (the `+Inf` bucket).
    pub(crate) count: u64,
    pub(crate) sum: f64,
}

impl StripedHistogram {
    /// A histogram with the first `BOUNDS_MAX` of `bounds` as its buckets.
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        let bounds = bounds.get(..BOUNDS_MAX).unwrap_or(bounds);
        Self { bounds, stripes: (0..stripes()).map(|_| HistogramStripe::default()).collect() }
    }

    /// The bucket of `value`: the first bound at or above it, else `+Inf` (NaN included).
    fn bucket(&self, value: f64) -> usize {
        self.bounds.partition_point(|b| *b < value)
    }

    /// The buckets (cumulative), the count and the sum, the stripes added up.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut counts = [0u64; BOUNDS_MAX + 1];
        let mut sum = 0.0;
        for s in &self.stripes {
            for (total, c) in counts.iter_mut().zip(&s.counts) {
                *total = total.wrapping_add(c.load(Ordering::Relaxed));
            }
            sum += f64::from_bits(s.sum.load(Ordering::Relaxed));
        }
        let mut cumulative = 0u64;
        let buckets = self
            .bounds
            .iter()
            .zip(counts)
            .map(|(bound, n)| {
                cumulative = cumulative.wrapping_add(n);
                (*bound, cumulative)
            })
            .collect();
        let count = counts.iter().fold(0u64, |a, n| a.wrapping_add(*n));
        HistogramSnapshot { buckets, count, sum }
    }
}

impl HistogramFn for StripedHistogram {
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    fn record_many(&self, value: f64, count: usize) {
        let Some(s) = self.stripes.get(stripe()) else { return };
        if let Some(c) = s.counts.get(self.bucket(value)) {
            c.fetch_add(count as u64, Ordering::Relaxed);
        }
        let add = value * count as f64;
        // Only this stripe's threads write here: the loop almost never goes round twice.
        let _ = s.sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some((f64::from_bits(bits) + add).to_bits())
        });
    }
}
