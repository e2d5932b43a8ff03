//! The per-tenant decision cache: the entitlement (state, grants, plan, rules) cached by
//! (feature, action, quantity bucket), under a generation that every change bumps.
//!
//! What it caches is exactly [`crate::entitle`]'s answer; the live limits (rate, quota) are
//! applied on every check, cached or not. An entry is served only if it was made in the
//! current generation, for the same feature, action and quantity bucket, and `now` is inside
//! the span where no grant of the feature expires (so a trial ending is seen without an
//! invalidation). Quantity buckets split at every quantity where a rule's or a grant's answer
//! can change, so two quantities in one bucket always get the same entitlement.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use govern_governors::Timestamp;

use crate::decide::{entitle, limits};
use crate::decision::Decision;
use crate::input::{Input, Request};

/// Most entries one tenant's cache holds; when full, it is emptied (deterministic, and a miss
/// costs one uncached decision).
pub const DECISION_CACHE_ENTRIES_MAX: usize = 4_096;

/// Entries by the hash of their key: looked up, never iterated.
#[allow(clippy::disallowed_types, reason = "lookup only; never iterated into output")]
type Entries = std::collections::HashMap<u64, Entry, FixedState>;

/// One cached entitlement.
#[derive(Clone, Debug)]
struct Entry {
    /// The generation it was made in; any other is stale.
    generation: u64,
    /// The key, kept whole: the map is keyed by its hash, and a collision must be a miss.
    feature: Box<str>,
    action: Box<str>,
    bucket: u32,
    /// Served while `valid_from <= now < valid_until`: the latest grant expiry at or before
    /// the time it was decided, and the first one after.
    valid_from: Timestamp,
    valid_until: Option<Timestamp>,
    decision: Decision,
}

/// A tenant's decision cache. Call [`DecisionCache::invalidate`] after any change to the
/// [`Input`] other than `rate` and `quota`: a grant, the plan, the catalog, the rules, the
/// tenant's state or attributes.
#[derive(Clone, Debug)]
pub struct DecisionCache {
    /// Bumped by every invalidation; entries of older generations are never served.
    generation: u64,
    /// At most this many entries (at most [`DECISION_CACHE_ENTRIES_MAX`]).
    capacity: usize,
    entries: Entries,
    /// The quantity buckets' boundaries for this generation, computed at its first check.
    boundaries: Option<Vec<u64>>,
    hits: u64,
    misses: u64,
}

impl Default for DecisionCache {
    fn default() -> Self {
        Self::new(DECISION_CACHE_ENTRIES_MAX)
    }
}

impl DecisionCache {
    /// An empty cache of at most `capacity` entries (clamped to 1..=[`DECISION_CACHE_ENTRIES_MAX`]).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            generation: 0,
            capacity: capacity.clamp(1, DECISION_CACHE_ENTRIES_MAX),
            entries: Entries::default(),
            boundaries: None,
            hits: 0,
            misses: 0,
        }
    }

    /// The current generation.
    #[must_use]
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets every cached answer: call it after a grant, plan, catalog, rule, tenant-state
    /// or attribute change. Returns the new generation.
    pub fn invalidate(&mut self) -> u64 {
        self.generation = self.generation.wrapping_add(1);
        self.entries.clear();
        self.boundaries = None;
        self.generation
    }

    /// How many entries are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks served from the cache, and computed.
    #[must_use]
    pub const fn hits_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// [`crate::decide`], with the entitlement served from the cache when it can be. Gives
    /// the same answer as `decide(input, request, now)` as long as every change to `input`
    /// (but `rate` and `quota`) was followed by [`DecisionCache::invalidate`].
    pub fn check(&mut self, input: &Input, request: &Request<'_>, now: Timestamp) -> Decision {
        let entitlement = self.entitlement(input, request, now);
        if entitlement.is_allowed() {
            limits(input, request, now).unwrap_or(entitlement)
        } else {
            entitlement
        }
    }

    /// [`crate::entitle`] alone (no live limits), served from the cache when it can be: for a
    /// caller that computes the live limits only for an allowed request (a rate limiter that
    /// must not count a refused one), then applies them with [`crate::limits`].
    pub fn entitlement(
        &mut self,
        input: &Input,
        request: &Request<'_>,
        now: Timestamp,
    ) -> Decision {
        let bucket = self.bucket(input, request.quantity);
        let key = FixedState::with_seed(0).hash_one((request.feature, request.action, bucket));
        if let Some(entry) = self.entries.get(&key)
            && entry.generation == self.generation
            && entry.bucket == bucket
            && *entry.feature == *request.feature
            && *entry.action == *request.action
            && entry.valid_from <= now
            && entry.valid_until.is_none_or(|until| now < until)
        {
            self.hits += 1;
            return entry.decision.clone();
        }
        self.misses += 1;
        let decision = entitle(input, request, now);
        let (valid_from, valid_until) = validity(input, request.feature, now);
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            Entry {
                generation: self.generation,
                feature: request.feature.into(),
                action: request.action.into(),
                bucket,
                valid_from,
                valid_until,
                decision: decision.clone(),
            },
        );
        decision
    }

    /// The quantity's bucket: how many boundaries are at or below it.
    fn bucket(&mut self, input: &Input, quantity: u64) -> u32 {
        let boundaries = self.boundaries.get_or_insert_with(|| {
            let mut boundaries = input.rules.quantity_boundaries().to_vec();
            for max in input.grants.iter().filter_map(|grant| grant.quantity_max) {
                boundaries.push(max);
                boundaries.push(max.saturating_add(1));
            }
            boundaries.sort_unstable();
            boundaries.dedup();
            boundaries
        });
        let below = boundaries.partition_point(|&boundary| boundary <= quantity);
        u32::try_from(below).unwrap_or(u32::MAX)
    }
}

/// The span around `now` in which no grant of `feature` expires.
fn validity(input: &Input, feature: &str, now: Timestamp) -> (Timestamp, Option<Timestamp>) {
    let mut from = Timestamp(0);
    let mut until: Option<Timestamp> = None;
    for grant in input.grants.iter().filter(|grant| grant.feature == feature) {
        if let Some(at) = grant.expires_at {
            if at <= now {
                from = from.max(at);
            } else {
                until = Some(until.map_or(at, |until| until.min(at)));
            }
        }
    }
    (from, until)
}
