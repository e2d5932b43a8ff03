//! SLA monitoring, pure: a tenant's requests (or a host's aggregates of them) counted into
//! time buckets, judged against the promise of its plan's envelope (throughput, p99 latency,
//! error rate), with violations and recoveries as deterministic edges. No clock, no I/O: every
//! time is an argument in milliseconds since the epoch (`docs/runtime-semantics.md`, "SLA
//! monitoring").
//!
//! Time is cut into buckets of [`BUCKET_MS`] (bucket `i` holds `[i·BUCKET_MS, (i+1)·BUCKET_MS)`).
//! A bucket is judged once, when time first reaches the next one; the window is the last
//! [`WINDOW_BUCKETS`] judged buckets, and every [`WINDOW_BUCKETS`]-aligned window is kept as a
//! summary for the trend (the last [`TREND_WINDOWS`]). Hysteresis by duration: a dimension
//! becomes violated after [`VIOLATE_BUCKETS`] consecutive buckets over its promise, and
//! recovers after [`RECOVER_BUCKETS`] consecutive buckets within it, so one noisy bucket never
//! makes an edge.

mod histogram;

use std::collections::VecDeque;
use std::fmt;

use rust_decimal::Decimal;

pub use histogram::{
    HISTOGRAM_BUCKETS, LATENCY_US_MAX, LatencyHistogram, P99_ERROR_DENOMINATOR,
    P99_ERROR_NUMERATOR, SUB_BUCKETS,
};

use crate::Envelope;

/// The length of one bucket: 10 s.
pub const BUCKET_MS: u64 = 10_000;
/// The buckets of the window judged and reported: 6, a minute.
pub const WINDOW_BUCKETS: usize = 6;
/// The window's length: 60 s.
pub const WINDOW_MS: u64 = BUCKET_MS * WINDOW_BUCKETS as u64;
/// Consecutive buckets over a promise that make a violation: 3 (30 s sustained).
pub const VIOLATE_BUCKETS: usize = 3;
/// Consecutive buckets within a promise that make a recovery: 3 (30 s).
pub const RECOVER_BUCKETS: usize = 3;
/// Earlier minute windows kept for the trend: 5.
pub const TREND_WINDOWS: usize = 5;
/// The fewest requests in a bucket for its latency or error rate to count against the
/// promise: with fewer, a bucket is within on those two dimensions (a p99 of 3 requests is
/// their maximum; one error in 2 requests is 50 %).
pub const SAMPLES_MIN: u64 = 10;
/// A trend moves (improving or worsening) when the newest window's figure differs from the
/// one before by more than this percentage of it; otherwise it is steady.
pub const TREND_STEADY_PCT: u64 = 10;
/// Empty buckets judged one by one when time jumps: after this many every streak, the window
/// and the trend hold nothing from before, so the rest of a longer gap is skipped.
const CATCH_UP_BUCKETS: u64 = (WINDOW_BUCKETS * (TREND_WINDOWS + 1)) as u64;

const _: () = assert!(VIOLATE_BUCKETS <= WINDOW_BUCKETS && RECOVER_BUCKETS <= WINDOW_BUCKETS);
const _: () = assert!(VIOLATE_BUCKETS >= 2, "one bucket must never make a violation");

/// Decimals of a measured throughput (requests per second) and p99 (ms).
const FIGURE_DECIMALS: u32 = 3;
/// Decimals of a measured error rate.
const RATE_DECIMALS: u32 = 6;

/// What a plan promises, as the monitor holds a tenant to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    /// Requests per second the plan serves: a tenant above it exceeds its plan.
    pub throughput_rps: u64,
    /// The p99 latency the platform keeps under, in ms.
    pub p99_latency_ms: u64,
    /// The largest share of failed requests, a fraction.
    pub error_rate_max: Decimal,
}

impl From<&Envelope> for Promise {
    fn from(e: &Envelope) -> Self {
        Self {
            throughput_rps: e.throughput_rps,
            p99_latency_ms: e.p99_latency_ms,
            error_rate_max: e.error_rate_max,
        }
    }
}

impl Promise {
    /// The promise of several envelopes together (a tenant with several live plans): the
    /// largest throughput, the lowest p99 and error rate any of them promises. `None` for
    /// none.
    #[must_use]
    pub fn of<'e>(envelopes: impl IntoIterator<Item = &'e Envelope>) -> Option<Self> {
        envelopes.into_iter().map(Self::from).reduce(|a, b| Self {
            throughput_rps: a.throughput_rps.max(b.throughput_rps),
            p99_latency_ms: a.p99_latency_ms.min(b.p99_latency_ms),
            error_rate_max: a.error_rate_max.min(b.error_rate_max),
        })
    }

    /// The promised figure of `dimension`, as receipts write it.
    #[must_use]
    pub fn figure(&self, dimension: Dimension) -> Decimal {
        match dimension {
            Dimension::Throughput => Decimal::from(self.throughput_rps),
            Dimension::P99Latency => Decimal::from(self.p99_latency_ms),
            Dimension::ErrorRate => self.error_rate_max.normalize(),
        }
    }
}

/// What is measured against a promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// Requests per second, above the plan's `throughput_rps` (the tenant exceeds its plan).
    Throughput,
    /// The 99th percentile latency, above `p99_latency_ms` (the platform misses its promise).
    P99Latency,
    /// The share of failed requests, above `error_rate_max`.
    ErrorRate,
}

impl Dimension {
    /// Every dimension, in order.
    pub const ALL: [Self; 3] = [Self::Throughput, Self::P99Latency, Self::ErrorRate];

    /// Its stable name (receipts, JSON): `throughput`, `p99_latency`, `error_rate`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Throughput => "throughput",
            Self::P99Latency => "p99_latency",
            Self::ErrorRate => "error_rate",
        }
    }

    /// The dimension named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    fn slot(self) -> usize {
        match self {
            Self::Throughput => 0,
            Self::P99Latency => 1,
            Self::ErrorRate => 2,
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Requests counted together: how many failed, and their latencies (whose count is the
/// number of requests). What a host reports for a span of time ([`Monitor::report`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aggregate {
    /// Requests that failed (a server error), at most the latencies' count.
    pub errors: u64,
    /// Every request's latency.
    pub latency: LatencyHistogram,
}

impl Aggregate {
    /// How many requests.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.latency.count()
    }

    /// Counts one request.
    pub fn record(&mut self, latency_us: u64, ok: bool) {
        self.latency.record(latency_us);
        self.errors = self.errors.saturating_add(u64::from(!ok));
    }

    /// Counts `other`'s requests too.
    pub fn merge(&mut self, other: &Self) {
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.merge(&other.latency);
    }

    /// Requests per second over `span_ms`.
    fn throughput(&self, span_ms: u64) -> Decimal {
        let per_s = Decimal::from(self.requests()) * Decimal::from(1_000) / Decimal::from(span_ms);
        per_s.round_dp(FIGURE_DECIMALS).normalize()
    }

    /// The p99 in ms, `None` with no request.
    fn p99_ms(&self) -> Option<Decimal> {
        self.latency.p99_us().map(|us| (Decimal::from(us) / Decimal::from(1_000)).normalize())
    }

    /// Failed requests over requests, `None` with no request.
    fn error_rate(&self) -> Option<Decimal> {
        let n = self.requests();
        (n > 0).then(|| {
            (Decimal::from(self.errors) / Decimal::from(n)).round_dp(RATE_DECIMALS).normalize()
        })
    }

    /// The measured figure of `dimension` over `span_ms`.
    fn figure(&self, dimension: Dimension, span_ms: u64) -> Option<Decimal> {
        match dimension {
            Dimension::Throughput => Some(self.throughput(span_ms)),
            Dimension::P99Latency => self.p99_ms(),
            Dimension::ErrorRate => self.error_rate(),
        }
    }

    /// Whether this bucket's figure of `dimension` is over `promise` (exact comparisons: no
    /// rounded figure decides).
    fn over(&self, dimension: Dimension, promise: &Promise) -> bool {
        let n = self.requests();
        match dimension {
            Dimension::Throughput => {
                u128::from(n) * 1_000 > u128::from(promise.throughput_rps) * u128::from(BUCKET_MS)
            }
            Dimension::P99Latency => {
                n >= SAMPLES_MIN
                    && self.latency.p99_us().is_some_and(|us| {
                        u128::from(us) > u128::from(promise.p99_latency_ms) * 1_000
                    })
            }
            Dimension::ErrorRate => {
                n >= SAMPLES_MIN
                    && Decimal::from(self.errors) > promise.error_rate_max * Decimal::from(n)
            }
        }
    }
}

/// A violation opening or closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeEvent {
    /// The dimension went over its promise for [`VIOLATE_BUCKETS`] buckets running.
    Violated,
    /// It came back within for [`RECOVER_BUCKETS`] buckets running.
    Recovered,
}

impl EdgeEvent {
    /// Its stable name: `violated`, `recovered`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Violated => "violated",
            Self::Recovered => "recovered",
        }
    }
}

/// A violation or a recovery, with the figures that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Violated or recovered.
    pub event: EdgeEvent,
    /// Of which dimension.
    pub dimension: Dimension,
    /// The figure over the buckets that decided it (`None`: no request to measure, a
    /// recovery by quiet).
    pub measured: Option<Decimal>,
    /// The promise.
    pub promised: Decimal,
    /// The start of those buckets, ms since the epoch.
    pub window_start_ms: u64,
    /// Their length, ms.
    pub window_ms: u64,
}

/// An open violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Of which dimension.
    pub dimension: Dimension,
    /// The figure that opened it.
    pub measured: Option<Decimal>,
    /// The promise it broke.
    pub promised: Decimal,
    /// When it opened (the end of the buckets that decided it), ms since the epoch.
    pub since_ms: u64,
}

/// The figures of one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    /// Its start, ms since the epoch.
    pub start_ms: u64,
    /// Its length, ms.
    pub window_ms: u64,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Requests per second over the window.
    pub throughput_rps: Decimal,
    /// The p99 latency in ms (within 12.5 % above the exact one), `None` with no request.
    pub p99_latency_ms: Option<Decimal>,
    /// Failed over all requests, `None` with no request.
    pub error_rate: Option<Decimal>,
}

impl Figures {
    fn of(agg: &Aggregate, start_ms: u64, window_ms: u64) -> Self {
        Self {
            start_ms,
            window_ms,
            requests: agg.requests(),
            errors: agg.errors,
            throughput_rps: agg.throughput(window_ms),
            p99_latency_ms: agg.p99_ms(),
            error_rate: agg.error_rate(),
        }
    }
}

/// Which way a figure moves between the last two trend windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Lower by more than [`TREND_STEADY_PCT`] %.
    Improving,
    /// Within [`TREND_STEADY_PCT`] % either way.
    Steady,
    /// Higher by more than [`TREND_STEADY_PCT`] %.
    Worsening,
    /// Fewer than two windows with requests to compare.
    Unknown,
}

impl Direction {
    /// Its stable name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Improving => "improving",
            Self::Steady => "steady",
            Self::Worsening => "worsening",
            Self::Unknown => "unknown",
        }
    }

    /// From the previous figure to the newest (lower is better).
    fn between(previous: Option<Decimal>, newest: Option<Decimal>) -> Self {
        let (Some(a), Some(b)) = (previous, newest) else { return Self::Unknown };
        let margin = a * Decimal::from(TREND_STEADY_PCT) / Decimal::from(100);
        if b > a + margin {
            Self::Worsening
        } else if b < a - margin {
            Self::Improving
        } else {
            Self::Steady
        }
    }
}

/// The trend: the last minute-aligned windows, oldest first, and where p99 and error rate go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trend {
    /// Up to [`TREND_WINDOWS`] windows of [`WINDOW_MS`], oldest first.
    pub windows: Vec<Figures>,
    /// The p99 from the second newest to the newest.
    pub p99_latency: Direction,
    /// The error rate from the second newest to the newest.
    pub error_rate: Direction,
}

/// Compliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compliance {
    /// No violation open, and requests in the window.
    Compliant,
    /// At least one violation open.
    Violating,
    /// No violation open and no request in the window.
    NoData,
}

impl Compliance {
    /// Its stable name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Compliant => "compliant",
            Self::Violating => "violating",
            Self::NoData => "no_data",
        }
    }
}

/// A tenant's compliance, the current window and the trend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Compliant, violating or no data.
    pub compliance: Compliance,
    /// The open violations, by dimension.
    pub violations: Vec<Violation>,
    /// The last [`WINDOW_BUCKETS`] judged buckets (the bucket filling now is not in it).
    pub window: Figures,
    /// The bucket filling now, not judged yet: its start, requests and errors so far.
    pub filling: Figures,
    /// The earlier minute windows.
    pub trend: Trend,
    /// What the tenant is held to.
    pub promise: Promise,
}

/// Why a sample or a report was not counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    /// Its time falls in a bucket already judged.
    #[error(
        "at {at_ms} ms falls in a bucket already judged (the current one starts at {current_start_ms} ms)"
    )]
    Late {
        /// The time given.
        at_ms: u64,
        /// The start of the bucket filling now.
        current_start_ms: u64,
    },
    /// A report counts more errors than requests.
    #[error("reports {errors} errors in {requests} requests")]
    ErrorsExceedRequests {
        /// Errors reported.
        errors: u64,
        /// Requests reported.
        requests: u64,
    },
}

/// One dimension's streaks and open violation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Track {
    /// Consecutive judged buckets over the promise, up to [`VIOLATE_BUCKETS`].
    over: usize,
    /// Consecutive judged buckets within it, up to [`RECOVER_BUCKETS`].
    within: usize,
    open: Option<Violation>,
}

/// One tenant's monitor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Monitor {
    /// The index of the bucket filling now (`None` before the first sample).
    current: Option<u64>,
    /// The requests of the bucket filling now.
    filling: Aggregate,
    /// The last judged buckets, newest last: indices `current - len ..= current - 1`.
    judged: VecDeque<Aggregate>,
    /// Per dimension ([`Dimension::slot`]).
    tracks: [Track; 3],
    /// Minute-aligned windows, oldest first, at most [`TREND_WINDOWS`].
    trend: VecDeque<Figures>,
}

impl Monitor {
    /// A monitor with nothing counted.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request at `at_ms` that took `latency_us` and failed or not; first judges
    /// every bucket before `at_ms`'s, returning the edges that made.
    ///
    /// # Errors
    /// [`SlaError::Late`]: `at_ms` falls in a bucket already judged (nothing counted).
    pub fn record(
        &mut self,
        at_ms: u64,
        latency_us: u64,
        ok: bool,
        promise: &Promise,
    ) -> Result<Vec<Edge>, SlaError> {
        let edges = self.advance_for(at_ms, promise)?;
        self.filling.record(latency_us, ok);
        Ok(edges)
    }

    /// Counts a host's aggregate of requests as of `at_ms` (all in `at_ms`'s bucket); first
    /// judges every bucket before it.
    ///
    /// # Errors
    /// [`SlaError::Late`], or [`SlaError::ErrorsExceedRequests`] (nothing counted).
    pub fn report(
        &mut self,
        at_ms: u64,
        aggregate: &Aggregate,
        promise: &Promise,
    ) -> Result<Vec<Edge>, SlaError> {
        if aggregate.errors > aggregate.requests() {
            return Err(SlaError::ErrorsExceedRequests {
                errors: aggregate.errors,
                requests: aggregate.requests(),
            });
        }
        let edges = self.advance_for(at_ms, promise)?;
        self.filling.merge(aggregate);
        Ok(edges)
    }

    fn advance_for(&mut self, at_ms: u64, promise: &Promise) -> Result<Vec<Edge>, SlaError> {
        if let Some(current) = self.current
            && at_ms / BUCKET_MS < current
        {
            return Err(SlaError::Late { at_ms, current_start_ms: current * BUCKET_MS });
        }
        Ok(self.advance(at_ms, promise))
    }

    /// Judges every bucket that ended at or before `now_ms`, in order, returning the edges
    /// they made. A time before the bucket filling now changes nothing.
    pub fn advance(&mut self, now_ms: u64, promise: &Promise) -> Vec<Edge> {
        let target = now_ms / BUCKET_MS;
        let Some(mut current) = self.current else {
            self.current = Some(target);
            return Vec::new();
        };
        let mut edges = Vec::new();
        let mut judged = 0;
        while current < target {
            self.judge(current, promise, &mut edges);
            current += 1;
            judged += 1;
            // Past this many empty buckets nothing from before remains: skip to the last ones.
            if judged == CATCH_UP_BUCKETS && target - current > CATCH_UP_BUCKETS {
                current = target - CATCH_UP_BUCKETS;
            }
        }
        self.current = Some(current);
        edges
    }

    /// Judges bucket `index` (the one filling until now).
    fn judge(&mut self, index: u64, promise: &Promise, edges: &mut Vec<Edge>) {
        self.judged.push_back(std::mem::take(&mut self.filling));
        if self.judged.len() > WINDOW_BUCKETS {
            self.judged.pop_front();
        }
        let end_ms = (index + 1) * BUCKET_MS;
        for dimension in Dimension::ALL {
            let over = self.judged.back().is_some_and(|b| b.over(dimension, promise));
            let track = &mut self.tracks[dimension.slot()];
            if over {
                track.over = (track.over + 1).min(VIOLATE_BUCKETS);
                track.within = 0;
            } else {
                track.within = (track.within + 1).min(RECOVER_BUCKETS);
                track.over = 0;
            }
            let event = match &track.open {
                None if track.over >= VIOLATE_BUCKETS => EdgeEvent::Violated,
                Some(_) if track.within >= RECOVER_BUCKETS => EdgeEvent::Recovered,
                _ => continue,
            };
            let n = match event {
                EdgeEvent::Violated => VIOLATE_BUCKETS,
                EdgeEvent::Recovered => RECOVER_BUCKETS,
            };
            let window_ms = n as u64 * BUCKET_MS;
            let measured = self.last(n).figure(dimension, window_ms);
            let promised = promise.figure(dimension);
            self.tracks[dimension.slot()].open = (event == EdgeEvent::Violated)
                .then_some(Violation { dimension, measured, promised, since_ms: end_ms });
            edges.push(Edge {
                event,
                dimension,
                measured,
                promised,
                window_start_ms: end_ms.saturating_sub(window_ms),
                window_ms,
            });
        }
        if (index + 1).is_multiple_of(WINDOW_BUCKETS as u64) {
            let figures = Figures::of(&self.last(WINDOW_BUCKETS), end_ms - WINDOW_MS, WINDOW_MS);
            self.trend.push_back(figures);
            if self.trend.len() > TREND_WINDOWS {
                self.trend.pop_front();
            }
        }
    }

    /// The last `n` judged buckets merged (fewer when fewer were judged).
    fn last(&self, n: usize) -> Aggregate {
        let mut agg = Aggregate::default();
        for b in self.judged.iter().rev().take(n) {
            agg.merge(b);
        }
        agg
    }

    /// Marks `dimension` violated since `since_ms`, as a receipt recorded before a restart
    /// says, so that its recovery is an edge again.
    pub fn restore(&mut self, violation: Violation) {
        let track = &mut self.tracks[violation.dimension.slot()];
        track.over = VIOLATE_BUCKETS;
        track.within = 0;
        track.open = Some(violation);
    }

    /// The compliance, the window and the trend as judged so far (call [`Self::advance`]
    /// first to judge up to now).
    #[must_use]
    pub fn status(&self, promise: &Promise) -> Status {
        let violations: Vec<Violation> =
            self.tracks.iter().filter_map(|t| t.open.clone()).collect();
        let end_ms = self.current.map_or(0, |c| c * BUCKET_MS);
        let window =
            Figures::of(&self.last(WINDOW_BUCKETS), end_ms.saturating_sub(WINDOW_MS), WINDOW_MS);
        let compliance = if !violations.is_empty() {
            Compliance::Violating
        } else if window.requests == 0 {
            Compliance::NoData
        } else {
            Compliance::Compliant
        };
        let filling = Figures::of(&self.filling, end_ms, BUCKET_MS);
        let windows: Vec<Figures> = self.trend.iter().cloned().collect();
        let pair = |f: fn(&Figures) -> Option<Decimal>| match windows.as_slice() {
            [.., a, b] => Direction::between(f(a), f(b)),
            _ => Direction::Unknown,
        };
        let trend = Trend {
            p99_latency: pair(|w| w.p99_latency_ms),
            error_rate: pair(|w| w.error_rate),
            windows,
        };
        Status { compliance, violations, window, filling, trend, promise: *promise }
    }
}

#[cfg(test)]
mod tests;
