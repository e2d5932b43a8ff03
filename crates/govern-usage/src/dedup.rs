//! Deduplication of usage events by id within a retention window, bounded, first in first out.
//!
//! The ids sit once in a ring (in insertion order) and a hash table holds their positions, so a
//! check, an insertion and an eviction are O(1) amortised and an id is stored only once.

use crate::EventId;
use foldhash::fast::RandomState;
use govern_governors::{HOUR_MS, Timestamp};
use hashbrown::HashTable;
use std::collections::VecDeque;
use std::hash::BuildHasher;

/// How long an event id is remembered, measured from the event's `at`: 24 hours. An event
/// older than this is refused ([`crate::UsageError::EventTooOld`]) rather than risk counting
/// a forgotten duplicate.
pub const DEDUP_WINDOW_MS: u64 = 24 * HOUR_MS;
/// The most ids remembered; past it the oldest inserted id is evicted (and counted).
pub const DEDUP_ENTRIES_MAX: usize = 1 << 20;

/// One remembered id.
#[derive(Clone, Debug)]
struct Entry {
    /// The id.
    id: EventId,
    /// The event's time: the id is forgotten once `at + window < now`.
    at: Timestamp,
    /// The id's hash, kept so that evicting it does not hash it again.
    hash: u64,
}

/// The remembered event ids.
#[derive(Clone, Debug)]
pub struct Dedup {
    /// Ids in insertion order; `ring[i]` has sequence number `base + i`.
    ring: VecDeque<Entry>,
    /// The sequence numbers of the ids in `ring`, by the id's hash.
    index: HashTable<u64>,
    /// The sequence number of `ring[0]`.
    base: u64,
    /// Hashes ids; seeded per process (ids come from tenants).
    hasher: RandomState,
    /// How long an id is remembered after its `at`.
    window_ms: u64,
    /// The most ids remembered.
    capacity: usize,
    /// Ids forgotten because their window passed.
    expired: u64,
    /// Ids evicted while still in their window, because the ring was full.
    evicted: u64,
}

impl Default for Dedup {
    fn default() -> Self {
        Self::new(DEDUP_WINDOW_MS, DEDUP_ENTRIES_MAX)
    }
}

impl Dedup {
    /// An empty memory of `capacity` ids (at least 1) for `window_ms`.
    #[must_use]
    pub fn new(window_ms: u64, capacity: usize) -> Self {
        Self {
            ring: VecDeque::new(),
            index: HashTable::new(),
            base: 0,
            hasher: RandomState::default(),
            window_ms,
            capacity: capacity.max(1),
            expired: 0,
            evicted: 0,
        }
    }

    /// The retention window in ms.
    #[must_use]
    pub const fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// How many ids are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no id is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Ids forgotten because their window passed.
    #[must_use]
    pub const fn expired(&self) -> u64 {
        self.expired
    }

    /// Ids evicted inside their window because the memory was full: a duplicate of one of
    /// these would be counted again, so a non-zero figure means the capacity is too small.
    #[must_use]
    pub const fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Whether `id` is remembered (in the window or not).
    #[must_use]
    pub fn contains(&self, id: &EventId) -> bool {
        self.find(self.hash(id), id).is_some()
    }

    /// When the remembered event `id` happened, if it is remembered.
    #[must_use]
    pub fn at(&self, id: &EventId) -> Option<Timestamp> {
        self.find(self.hash(id), id).and_then(|seq| self.entry(seq)).map(|e| e.at)
    }

    /// Whether an event `id` arriving at `now` is a duplicate: an event with that id was
    /// counted at an `at` with `at + window >= now`. Exact whatever has been expired yet.
    #[must_use]
    pub fn is_duplicate(&self, id: &EventId, now: Timestamp) -> bool {
        self.is_duplicate_at(self.find(self.hash(id), id), now)
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.ring.get(i)
    }

    fn find(&self, hash: u64, id: &EventId) -> Option<u64> {
        let (ring, base) = (&self.ring, self.base);
        self.index
            .find(hash, |&seq| {
                seq.checked_sub(base)
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| ring.get(i))
                    .is_some_and(|e| &e.id == id)
            })
            .copied()
    }

    /// Forgets the ids whose window has passed at `now`, oldest inserted first. An id stuck
    /// behind a younger one (events arrive out of order by up to the future skew) is
    /// forgotten a little later; [`Self::is_duplicate`] does not count it meanwhile.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(front) = self.ring.front() {
            if front.at.plus_ms(self.window_ms) >= now {
                break;
            }
            self.pop_front();
            self.expired += 1;
        }
    }

    fn pop_front(&mut self) {
        if let Some(front) = self.ring.pop_front() {
            let seq = self.base;
            if let Ok(entry) = self.index.find_entry(front.hash, |&s| s == seq) {
                entry.remove();
            }
            self.base += 1;
        }
    }

    /// Remembers that event `id` happened at `at`: a new entry (a full memory evicts its
    /// oldest id first, and counts it), or, for an id remembered from an earlier event whose
    /// window passed, that entry moved to the later `at`.
    pub fn remember(&mut self, id: EventId, at: Timestamp) {
        let hash = self.hash(&id);
        self.remember_hashed(id, at, hash);
    }

    /// The hash of `id`, for the `_hashed` forms.
    pub(crate) fn hash(&self, id: &EventId) -> u64 {
        self.hasher.hash_one(id)
    }

    pub(crate) fn remember_hashed(&mut self, id: EventId, at: Timestamp, hash: u64) {
        let found = self.find(hash, &id);
        self.remember_at(found, id, at, hash);
    }

    /// Where `id` is (its sequence number), for [`Self::is_duplicate_at`] and
    /// [`Self::remember_at`]: one lookup for both.
    pub(crate) fn lookup(&self, hash: u64, id: &EventId) -> Option<u64> {
        self.find(hash, id)
    }

    /// [`Self::is_duplicate`] for the result of a lookup.
    pub(crate) fn is_duplicate_at(&self, found: Option<u64>, now: Timestamp) -> bool {
        found.and_then(|seq| self.entry(seq)).is_some_and(|e| e.at.plus_ms(self.window_ms) >= now)
    }

    /// [`Self::remember`] for the result of a lookup: an entry expired since is gone, and
    /// the id is then new.
    pub(crate) fn remember_at(
        &mut self,
        found: Option<u64>,
        id: EventId,
        at: Timestamp,
        hash: u64,
    ) {
        let slot =
            found.and_then(|seq| seq.checked_sub(self.base)).and_then(|i| usize::try_from(i).ok());
        if let Some(e) = slot.and_then(|i| self.ring.get_mut(i)) {
            e.at = e.at.max(at);
            return;
        }
        if self.ring.len() >= self.capacity {
            self.pop_front();
            self.evicted += 1;
        }
        let seq = self.base + self.ring.len() as u64;
        self.ring.push_back(Entry { id, at, hash });
        let (ring, base) = (&self.ring, self.base);
        self.index.insert_unique(hash, seq, |&s| {
            s.checked_sub(base)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| ring.get(i))
                .map_or(0, |e| e.hash)
        });
    }

    /// The remembered ids, oldest inserted first.
    pub fn ids(&self) -> impl Iterator<Item = (&EventId, Timestamp)> {
        self.ring.iter().map(|e| (&e.id, e.at))
    }
}

#[cfg(test)]
mod tests;
