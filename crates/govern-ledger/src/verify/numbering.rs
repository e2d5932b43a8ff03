//! Each resource's numbering: the receipts of one (tenant, governor, resource) carry
//! `resource_seq` 0, 1, 2, ... in sequence order. [`Numbering`] checks it over a whole
//! ledger read in order: receipt by receipt on the reference path ([`Numbering::push`]),
//! or, on the fast path, from the keys and numbers the workers took from their stretches,
//! handed over with each stretch in order ([`Numbering::join`]) and looked up in bursts.
//!
//! Resources are keyed by the 128-bit hash of (tenant, governor, resource), as the ledger's
//! index keys them (`ledger::KeyHasher`, seeded at random per verification): nothing is
//! allocated per resource, and the table holds 16 bytes per resource (the hash and the
//! count of its receipts) at a load of at most 3/4, in 256 shards. Two resources sharing a
//! hash would share one count and be reported as a gap; with n resources the chance that
//! any two do is about n² / 2¹²⁹ (1.5 · 10⁻²⁵ for ten million). The error names the
//! resource's ids, read from the receipt where the break is.

use std::collections::BTreeMap;

use govern_governors::GovernorKind;
use govern_receipt::{ChainError, ReceiptKey};

use crate::ledger::{Expected, KeyHash, KeyHasher, expected_keys};

/// Shards of the table ([`KeyHash::shard`]).
const SHARDS: usize = KeyHash::SHARDS;

/// Numbers are looked up a shard at a time, so that the shard's table is in the cache (and
/// its pages in the TLB) for a burst of lookups rather than touched once per receipt at
/// random: each stretch joined, the numbers waiting in this many shards are looked up, in
/// turn, so each shard's wait for 256 / 4 = 64 stretches (about 70 000 receipts, 1.7 MiB
/// of numbers in all) and the work is spread evenly (a collector busy with one big burst
/// would hold up the read buffers, and with them the workers).
const SHARDS_PER_JOIN: usize = 4;

/// Numbers taken before the tables are sized (from the rate of new resources among them).
const PRESIZE_AFTER: usize = if cfg!(test) { 16 } else { 1 << 16 };

/// A receipt's resource (hashed) and its `resource_seq`.
pub(super) type Numbered = (KeyHash, u64);

/// The numbers of a stretch grouped by shard, each shard's in sequence order: sorted out
/// by the worker that checked the stretch, so that the collector, which joins every
/// stretch in turn, only copies each shard's run.
#[derive(Debug, Default)]
pub(super) struct Grouped {
    numbers: Vec<Numbered>,
    /// Where each shard's run ends in `numbers` (and the next one's begins).
    ends: Vec<usize>,
}

impl Grouped {
    /// `numbers`, grouped by shard (a counting sort: it keeps their order within a shard).
    pub(super) fn new(numbers: &[Numbered]) -> Self {
        let mut ends = vec![0; SHARDS];
        for &(key, _) in numbers {
            if let Some(end) = ends.get_mut(key.shard()) {
                *end += 1;
            }
        }
        let mut at = Vec::with_capacity(SHARDS);
        let mut sum = 0;
        for end in &mut ends {
            at.push(sum);
            sum += *end;
            *end = sum;
        }
        let mut grouped = vec![(KeyHash { lo: 0, hi: 0 }, 0); numbers.len()];
        for &number in numbers {
            if let Some(at) = at.get_mut(number.0.shard()) {
                if let Some(place) = grouped.get_mut(*at) {
                    *place = number;
                }
                *at += 1;
            }
        }
        Self { numbers: grouped, ends }
    }

    /// How many numbers.
    fn len(&self) -> usize {
        self.numbers.len()
    }

    /// The numbers of `shard`, in order.
    fn shard(&self, shard: usize) -> &[Numbered] {
        let start = shard.checked_sub(1).and_then(|s| self.ends.get(s)).copied().unwrap_or(0);
        let end = self.ends.get(shard).copied().unwrap_or(start);
        self.numbers.get(start..end).unwrap_or_default()
    }
}

/// One place of a [`Counts`] table: a resource's hash and its count in 16 bytes. The top
/// byte of the hash picks the shard, so a shard's table need not keep it: `tagged` is the
/// high half shifted up a byte, with the count in the low byte (0 for an empty place,
/// [`BIG`] when the count is kept in [`Counts::big`]).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    lo: u64,
    tagged: u64,
}

/// The low byte of a place whose count is [`BIG`] or more, kept aside.
const BIG: u64 = 0xff;

/// How many receipts each resource of one shard has had so far, by the hash of its key:
/// one array, open addressing with linear probing from a place chosen by the hash's low
/// half. A lookup touches one place in memory where a `HashMap` touches two (its control
/// bytes, then its entries), and a place is 16 bytes: this matters once the resources
/// outgrow the caches (a million resources that each have one receipt: the lookups and the
/// first touch of the table's pages are most of the work).
#[derive(Debug, Default)]
struct Counts {
    slots: Vec<Slot>,
    len: usize,
    /// The counts of [`BIG`] or more (a resource with that many receipts), by hash.
    big: BTreeMap<(u64, u64), u64>,
}

impl Counts {
    /// Records a receipt of `key` (of this shard) numbered `number`: returns the number it
    /// should have had (the receipts of `key` seen before), and counts from `number` on.
    fn advance(&mut self, key: KeyHash, number: u64) -> u64 {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.reserve(self.len.max(16));
        }
        let (lo, tag) = (key.lo, key.hi << 8);
        let at = self.find(lo, tag);
        let Some(slot) = self.slots.get_mut(at) else { return u64::MAX };
        let expected = match slot.tagged & BIG {
            0 => {
                slot.lo = lo;
                self.len += 1;
                0
            }
            BIG => self.big.get(&(lo, tag)).copied().unwrap_or(BIG),
            small => small,
        };
        // A count never reaches u64::MAX: there are fewer receipts.
        let count = number.saturating_add(1);
        if count < BIG {
            slot.tagged = tag | count;
            if expected >= BIG {
                self.big.remove(&(lo, tag));
            }
        } else {
            slot.tagged = tag | BIG;
            self.big.insert((lo, tag), count);
        }
        expected
    }

    /// Where the search for a key whose hash's low half is `lo` starts: that half scaled to
    /// the table ("fastrange"), so that any size works.
    fn home(&self, lo: u64) -> usize {
        ((u128::from(lo) * self.slots.len() as u128) >> 64) as usize
    }

    /// Reads the places where the searches for `keys` start, without acting on what is
    /// there: a loop with no branch on the data, so the processor has many of these reads
    /// in flight at once and the searches that follow find the places in the cache. (A
    /// search branches on what it reads, which keeps it to about one miss at a time.)
    fn warm(&self, keys: &[Numbered]) {
        let seen = keys.iter().fold(0, |seen, (key, _)| {
            seen ^ self.slots.get(self.home(key.lo)).map_or(0, |slot| slot.tagged)
        });
        std::hint::black_box(seen);
    }

    /// The place of the key (`lo`, `tag`), or the empty place where it goes. The table is
    /// never full.
    fn find(&self, lo: u64, tag: u64) -> usize {
        let cap = self.slots.len();
        let mut at = self.home(lo);
        loop {
            match self.slots.get(at) {
                Some(slot)
                    if slot.tagged & BIG != 0 && (slot.lo != lo || slot.tagged & !BIG != tag) =>
                {
                    at = if at + 1 == cap { 0 } else { at + 1 };
                }
                _ => return at,
            }
        }
    }

    /// Makes room for `more` resources at a load of at most 3/4.
    fn reserve(&mut self, more: usize) {
        let cap = (self.len + more) / 3 * 4 + 4;
        if cap <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        for slot in old.into_iter().filter(|slot| slot.tagged & BIG != 0) {
            let at = self.find(slot.lo, slot.tagged & !BIG);
            if let Some(place) = self.slots.get_mut(at) {
                *place = slot;
            }
        }
    }
}

/// The numbering of every resource of a ledger read in order.
#[derive(Debug)]
pub(crate) struct Numbering {
    keys: KeyHasher,
    shards: Vec<Counts>,
    /// Numbers of the stretches joined so far, not yet looked up, by shard, each shard's in
    /// sequence order.
    pending: Vec<Vec<Numbered>>,
    /// How many numbers wait, until the tables are sized; then `None`.
    before_sizing: Option<usize>,
    /// The next shard to look up.
    cursor: usize,
    /// Receipts and bytes of frames joined so far, and the bytes expected in all: for
    /// sizing the tables once, at the first burst.
    receipts: u64,
    bytes: u64,
    expected_bytes: u64,
    /// Whether a receipt joined so far does not carry its resource's next number.
    broken: bool,
}

impl Default for Numbering {
    fn default() -> Self {
        Self::expecting(0)
    }
}

impl Numbering {
    /// A numbering for a ledger of about `bytes` bytes of frames (a hint for sizing its
    /// tables; 0 if unknown).
    pub(super) fn expecting(bytes: u64) -> Self {
        Self {
            keys: KeyHasher::default(),
            shards: (0..SHARDS).map(|_| Counts::default()).collect(),
            pending: (0..SHARDS).map(|_| Vec::new()).collect(),
            before_sizing: Some(0),
            cursor: 0,
            receipts: 0,
            bytes: 0,
            expected_bytes: bytes,
            broken: false,
        }
    }

    /// Starts `tenant`'s `kind` governor of `resource` at `count` receipts (its archived
    /// ones: the next is numbered `count`).
    pub(crate) fn seed(&mut self, tenant: &str, kind: GovernorKind, resource: &str, count: u64) {
        let hash = self.keys.hash(tenant, kind, resource);
        if let (Some(table), Some(last)) = (self.shards.get_mut(hash.shard()), count.checked_sub(1))
        {
            table.advance(hash, last);
        }
    }

    /// Checks that receipt `seq`, of `key`, carries its resource's next `resource_seq`.
    ///
    /// # Errors
    /// [`ChainError::ResourceSeqGap`] naming the resource, expected and found.
    pub(crate) fn push(&mut self, seq: u64, key: &ReceiptKey<'_>) -> Result<(), ChainError> {
        let hash = self.keys.hash(key.tenant, key.governor, key.resource);
        let Some(table) = self.shards.get_mut(hash.shard()) else { return Ok(()) };
        let expected = table.advance(hash, key.resource_seq);
        if key.resource_seq != expected {
            return Err(ChainError::resource_seq_gap(seq, key, expected));
        }
        Ok(())
    }

    /// The resource (hashed as this numbering hashes it) and number of a receipt, for
    /// [`Self::join`].
    pub(super) fn numbered(keys: &KeyHasher, key: &ReceiptKey<'_>) -> Numbered {
        (keys.hash(key.tenant, key.governor, key.resource), key.resource_seq)
    }

    /// Takes the numbers of the next stretch of receipts (the stretches taken in order),
    /// `bytes` of frames; `false` once a receipt is found not to carry its resource's next
    /// number (a gap or a repeat, or a resource's first receipt not numbered 0). The
    /// numbers are looked up in bursts: [`Self::finish`] says whether all of them held.
    pub(super) fn join(&mut self, numbers: &Grouped, bytes: u64) -> bool {
        self.receipts += numbers.len() as u64;
        self.bytes += bytes;
        for (shard, pending) in self.pending.iter_mut().enumerate() {
            pending.extend_from_slice(numbers.shard(shard));
        }
        match &mut self.before_sizing {
            Some(waiting) => {
                *waiting += numbers.len();
                if *waiting >= PRESIZE_AFTER {
                    self.presize();
                    self.before_sizing = None;
                }
            }
            None => {
                for _ in 0..SHARDS_PER_JOIN {
                    self.look_up(self.cursor);
                    self.cursor = (self.cursor + 1) % SHARDS;
                }
            }
        }
        !self.broken
    }

    /// Looks up the numbers still pending: whether every receipt joined so far carries its
    /// resource's next number.
    pub(super) fn finish(&mut self) -> bool {
        for shard in 0..SHARDS {
            self.look_up(shard);
        }
        !self.broken
    }

    /// Looks up the numbers waiting in `shard`, in order.
    fn look_up(&mut self, shard: usize) {
        let (Some(table), Some(pending)) =
            (self.shards.get_mut(shard), self.pending.get_mut(shard))
        else {
            return;
        };
        table.warm(pending);
        for (key, number) in pending.drain(..) {
            self.broken |= table.advance(key, number) != number;
        }
    }

    /// Sizes every shard for the resources to come, at the rate of new resources per
    /// receipt among the numbers pending (the first burst) and of bytes per receipt seen so
    /// far, so that the tables do not grow by rehashing again and again.
    fn presize(&mut self) {
        // The resources among the first burst: each shard's, counted in a scratch table.
        let mut resources = 0;
        let mut seen = Counts::default();
        for pending in &self.pending {
            seen.slots.clear();
            seen.len = 0;
            seen.reserve(pending.len());
            for &(key, number) in pending {
                seen.advance(key, number);
            }
            resources += seen.len;
        }
        let total = Expected::Bytes(self.expected_bytes);
        let expected = expected_keys(resources, self.receipts, self.bytes, total);
        // Shards differ by a few standard deviations (√(n / 256)) around the mean: an eighth
        // more than it, and some, leaves few to grow.
        for table in &mut self.shards {
            table.reserve(expected / SHARDS * 9 / 8 + 64);
        }
    }

    /// Hashes keys as this numbering does: the workers' numbers must be hashed by it.
    pub(super) fn keys(&self) -> &KeyHasher {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::prop_oneof;

    proptest::proptest! {
        /// The table counts as a map would, whatever the keys (few and colliding in the
        /// low half, or spread), however it grows.
        #[test]
        fn counts_are_a_maps(
            ops in proptest::collection::vec((0u64..40, 0u64..3, prop_oneof![0u64..6, 250u64..260]), 0..400)
        ) {
            let mut table = Counts::default();
            let mut map = BTreeMap::new();
            for (lo, hi, number) in ops {
                // Low halves that collide a lot, and ones spread over the whole range.
                let lo = if lo % 2 == 0 { lo } else { lo.wrapping_mul(0x9e37_79b9_7f4a_7c15) };
                let key = KeyHash { lo, hi };
                let expected = map.insert((lo, hi), number + 1).unwrap_or(0);
                proptest::prop_assert_eq!(table.advance(key, number), expected);
                proptest::prop_assert_eq!(table.len, map.len());
                proptest::prop_assert!(table.len * 4 <= table.slots.len() * 3);
            }
        }

        /// Joined stretch by stretch (and looked up in bursts, a few shards at a time), the
        /// numbering finds a break exactly when some receipt does not carry its resource's
        /// count so far.
        #[test]
        fn joined_stretches_are_checked_as_a_count_per_resource(
            stretches in proptest::collection::vec(
                proptest::collection::vec((0u64..24, 0u8..40), 0..12),
                0..400,
            ),
        ) {
            // Resources in many shards (the top byte) and a few sharing one.
            let key = |r: u64| KeyHash { lo: r, hi: (r * 37 % 256) << 56 | r };
            let mut counts = BTreeMap::new();
            let mut broken = false;
            let mut numbering = Numbering::default();
            for stretch in &stretches {
                let numbers: Vec<Numbered> = stretch
                    .iter()
                    .map(|&(r, spoil)| {
                        let count = counts.entry(r).or_insert(0u64);
                        // Now and then a gap or a repeat.
                        let number = match spoil {
                            0 => *count + 1,
                            1 => count.saturating_sub(1),
                            _ => *count,
                        };
                        broken |= number != *count;
                        *count = number + 1;
                        (key(r), number)
                    })
                    .collect();
                numbering.join(&Grouped::new(&numbers), 100);
            }
            proptest::prop_assert_eq!(numbering.finish(), !broken);
        }

        /// Grouping a stretch's numbers by shard keeps each shard's in order and loses none.
        #[test]
        fn grouping_keeps_each_shards_order(keys in proptest::collection::vec((0u8..6, 0u64..4), 0..300)) {
            let numbers: Vec<Numbered> = keys
                .iter()
                .enumerate()
                .map(|(i, &(top, lo))| (KeyHash { lo, hi: u64::from(top) << 56 | 7 }, i as u64))
                .collect();
            let grouped = Grouped::new(&numbers);
            proptest::prop_assert_eq!(grouped.len(), numbers.len());
            for s in 0..SHARDS {
                let expected: Vec<Numbered> =
                    numbers.iter().copied().filter(|&(key, _)| key.shard() == s).collect();
                proptest::prop_assert_eq!(grouped.shard(s), &expected[..]);
            }
        }
    }
}
