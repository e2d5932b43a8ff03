//! A fixed-size latency histogram with log-spaced buckets: bounded memory whatever the
//! traffic, and a p99 within a stated relative error of the exact one.
//!
//! Latencies are whole microseconds. Values below [`SUB_BUCKETS`] × 2 have a bucket each
//! (exact); above, every power of two is cut into [`SUB_BUCKETS`] equal buckets, so that a
//! bucket's width is at most an eighth of any value in it. A quantile is reported as the
//! largest value of the bucket the quantile's rank falls in: never below the exact value and
//! less than [`P99_ERROR_NUMERATOR`]/[`P99_ERROR_DENOMINATOR`] (1/8, 12.5 %) above it.
//! Latencies above [`LATENCY_US_MAX`] (about 134 s) are counted as that value.

/// Buckets per power of two (2^3: a bucket is at most 1/8 of its values).
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
const SUB_BITS: u32 = 3;
/// The largest latency told apart, in microseconds (2^27 − 1, about 134 s); a larger one is
/// counted as this.
pub const LATENCY_US_MAX: u64 = (1 << 27) - 1;
/// How many buckets a histogram has.
pub const HISTOGRAM_BUCKETS: usize = index(LATENCY_US_MAX) + 1;
/// The relative error bound of a reported quantile, as a fraction: an estimate `q` of an
/// exact quantile `x` (up to [`LATENCY_US_MAX`]) satisfies `x <= q < x * (1 + 1/8)`.
pub const P99_ERROR_NUMERATOR: u64 = 1;
/// See [`P99_ERROR_NUMERATOR`].
pub const P99_ERROR_DENOMINATOR: u64 = SUB_BUCKETS;

/// The bucket of a latency of `us` microseconds.
const fn index(us: u64) -> usize {
    let v = if us > LATENCY_US_MAX { LATENCY_US_MAX } else { us };
    if v < SUB_BUCKETS {
        return v as usize;
    }
    // 2^k <= v < 2^(k+1), k >= SUB_BITS.
    let k = 63 - v.leading_zeros();
    let sub = (v >> (k - SUB_BITS)) - SUB_BUCKETS;
    (SUB_BUCKETS + (k - SUB_BITS) as u64 * SUB_BUCKETS + sub) as usize
}

/// The largest latency bucket `i` holds, in microseconds.
const fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB_BUCKETS {
        return i;
    }
    let k = (i - SUB_BUCKETS) / SUB_BUCKETS + SUB_BITS as u64;
    let sub = (i - SUB_BUCKETS) % SUB_BUCKETS;
    let width = 1 << (k - SUB_BITS as u64);
    (SUB_BUCKETS + sub) * width + width - 1
}

/// Request latencies counted into [`HISTOGRAM_BUCKETS`] log-spaced buckets.
#[derive(Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Latencies counted per bucket (saturating: 4 billion in one bucket of one 10 s window
    /// is beyond any host).
    counts: [u32; HISTOGRAM_BUCKETS],
    /// How many latencies were counted (the sum of `counts`, unless one saturated).
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self { counts: [0; HISTOGRAM_BUCKETS], total: 0 }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("total", &self.total)
            .field("p99_us", &self.p99_us())
            .finish()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one latency of `us` microseconds.
    pub fn record(&mut self, us: u64) {
        let c = &mut self.counts[index(us)];
        *c = c.saturating_add(1);
        self.total = self.total.saturating_add(1);
    }

    /// Counts every latency of `other` too.
    pub fn merge(&mut self, other: &Self) {
        for (c, o) in self.counts.iter_mut().zip(other.counts.iter()) {
            *c = c.saturating_add(*o);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// How many latencies were counted.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The 99th percentile (nearest rank: the value of rank ⌈0.99 n⌉ among the n sorted
    /// latencies) within the bound of [`P99_ERROR_NUMERATOR`], in microseconds; `None` when
    /// empty.
    #[must_use]
    pub fn p99_us(&self) -> Option<u64> {
        self.quantile_us(99)
    }

    /// The `percent`th percentile (nearest rank, as [`Self::p99_us`]; `percent` at most 100)
    /// within the same bound, in microseconds; `None` when empty.
    #[must_use]
    pub fn quantile_us(&self, percent: u64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = self.total.saturating_mul(percent.min(100)).div_ceil(100).max(1);
        let mut seen = 0_u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(u64::from(*c));
            if seen >= rank {
                return Some(upper(i));
            }
        }
        Some(LATENCY_US_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_monotone_and_an_eighth_wide_at_most() {
        assert_eq!(HISTOGRAM_BUCKETS, 200);
        assert_eq!(upper(HISTOGRAM_BUCKETS - 1), LATENCY_US_MAX);
        let mut lower = 0;
        for i in 0..HISTOGRAM_BUCKETS {
            let up = upper(i);
            assert_eq!(index(lower), i, "the first value of bucket {i}");
            assert_eq!(index(up), i, "the last value of bucket {i}");
            // The width is at most an eighth of the bucket's smallest value (exact below 16).
            assert!(
                (up - lower) * SUB_BUCKETS <= lower.max(1) * P99_ERROR_NUMERATOR || up == lower
            );
            lower = up + 1;
        }
        assert_eq!(index(u64::MAX), HISTOGRAM_BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_nearest_ranks_within_an_eighth() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.quantile_us(50), None);
        for us in 1..=1_000 {
            h.record(us);
        }
        for (percent, exact) in [(50, 500), (99, 990), (100, 1_000), (200, 1_000)] {
            let q = h.quantile_us(percent).expect("not empty");
            assert!(exact <= q && q * SUB_BUCKETS < exact * (SUB_BUCKETS + 1), "{percent}: {q}");
        }
        assert_eq!(h.quantile_us(99), h.p99_us());
        assert_eq!(h.quantile_us(0), Some(1), "the rank is at least 1");
    }
}
