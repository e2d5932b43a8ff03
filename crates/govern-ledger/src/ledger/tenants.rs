//! Tenants' lists within the budget: of a tenant's receipts, the index holds only those
//! after the snapshot it pages from (its *tail*) and how many the snapshot has. The whole
//! list, when a tenant read needs it, is rebuilt from the tenant's entries in the snapshot's
//! KEYS blocks (every receipt is in exactly one resource's list: the tenant's list is their
//! merge; each block checked against its CRC32C) followed by the tail, and kept in a cache
//! ([`TenantCache`]) of at most a share of the index budget, the least recently read evicted
//! first. So what the index holds per tenant no longer grows with its history: about a byte
//! per receipt since the last snapshot, where it was a byte per receipt ever.
//!
//! Without a snapshot to page from (a ledger opened by reading every record, until its first
//! snapshot) a tenant's tail is its whole list. A newer snapshot moves each tail's receipts
//! below its length into the count ([`TenantList::trim_below`]); a cached whole list stays
//! right (the numbers only grow at its end).

use std::collections::BTreeMap;

use govern_governors::TenantId;

use super::LedgerError;
use super::seqs::MarkedList;

/// The bytes one cached list costs beyond its own heap bytes, about: its slots in the two
/// maps and the tenant id.
const CACHED_ENTRY_BYTES: usize = 128;

/// One tenant's receipts, as the index holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TenantList {
    /// How many of its receipts are in the snapshot the index pages from (0 without one):
    /// their numbers are not held.
    paged: u64,
    /// Its receipts after them, in order.
    tail: MarkedList,
}

impl TenantList {
    /// A tenant whose every receipt is held (no snapshot to page from).
    pub(crate) fn whole(list: MarkedList) -> Self {
        Self { paged: 0, tail: list }
    }

    /// A tenant with `count` receipts in the snapshot paged from, none after it yet.
    pub(crate) fn paged(count: u64) -> Self {
        Self { paged: count, tail: MarkedList::default() }
    }

    /// Appends `seq`, greater than every number before.
    pub(crate) fn push(&mut self, seq: u64) {
        self.tail.push(seq);
    }

    /// How many receipts the tenant has.
    pub(crate) fn len(&self) -> u64 {
        self.paged + self.tail.list().len()
    }

    /// How many of them are in the snapshot paged from.
    pub(crate) fn paged_len(&self) -> u64 {
        self.paged
    }

    /// The whole list when the index holds it (nothing paged).
    pub(crate) fn held(&self) -> Option<&MarkedList> {
        (self.paged == 0).then_some(&self.tail)
    }

    /// The numbers after the paged ones.
    pub(crate) fn tail(&self) -> &MarkedList {
        &self.tail
    }

    /// Moves the numbers below `records` (now in the snapshot paged from) out of the tail
    /// into the count.
    pub(crate) fn trim_below(&mut self, records: u64) {
        if self.tail.list().iter().next().is_none_or(|first| first >= records) {
            return;
        }
        let mut kept = MarkedList::default();
        let mut moved = 0;
        for seq in self.tail.list().iter() {
            if seq < records {
                moved += 1;
            } else {
                kept.push(seq);
            }
        }
        self.paged += moved;
        self.tail = kept;
    }

    /// Heap bytes held beyond the struct.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.tail.heap_bytes()
    }
}

/// Whole lists of paged tenants, rebuilt for reads, within a budget; the one read last
/// stays even when it alone is over it (a read holds it until the next).
#[derive(Debug, Default)]
pub(crate) struct TenantCache {
    lists: BTreeMap<TenantId, (MarkedList, u64)>,
    by_use: BTreeMap<u64, TenantId>,
    tick: u64,
    bytes: usize,
    /// Lists rebuilt from the snapshot since the ledger opened (misses).
    pub(crate) rebuilt: u64,
}

fn cost(list: &MarkedList) -> usize {
    CACHED_ENTRY_BYTES + list.heap_bytes()
}

impl TenantCache {
    /// Whether `tenant`'s whole list is cached.
    pub(crate) fn has(&self, tenant: &TenantId) -> bool {
        self.lists.contains_key(tenant)
    }

    /// `tenant`'s whole list, if cached, marked as just used.
    pub(crate) fn get(&mut self, tenant: &TenantId) -> Option<&MarkedList> {
        let tick = self.tick;
        let (_, used) = self.lists.get_mut(tenant)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, tenant.clone());
        self.tick += 1;
        self.lists.get(tenant).map(|(list, _)| list)
    }

    /// Keeps `list` as `tenant`'s, evicting the least recently used until all fit in
    /// `budget` (or only it is left).
    pub(crate) fn insert(
        &mut self,
        tenant: &TenantId,
        list: MarkedList,
        budget: usize,
    ) -> &MarkedList {
        self.remove(tenant);
        self.shrink_to(budget.saturating_sub(cost(&list)));
        self.bytes += cost(&list);
        self.by_use.insert(self.tick, tenant.clone());
        let slot = match self.lists.entry(tenant.clone()) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                e.insert((list, self.tick));
                e.into_mut()
            }
            std::collections::btree_map::Entry::Vacant(e) => e.insert((list, self.tick)),
        };
        self.tick += 1;
        &slot.0
    }

    /// Appends `seq` to `tenant`'s cached list, if there is one.
    pub(crate) fn push(&mut self, tenant: &TenantId, seq: u64) {
        // Every append comes here: with nothing cached (no tenant read since the snapshot,
        // or no snapshot) it costs no lookup.
        if self.lists.is_empty() {
            return;
        }
        if let Some((list, _)) = self.lists.get_mut(tenant) {
            let before = list.heap_bytes();
            list.push(seq);
            self.bytes = self.bytes + list.heap_bytes() - before;
        }
    }

    fn remove(&mut self, tenant: &TenantId) {
        if let Some((list, used)) = self.lists.remove(tenant) {
            self.by_use.remove(&used);
            self.bytes -= cost(&list);
        }
    }

    /// Evicts the least recently used lists until the rest cost at most `budget`.
    pub(crate) fn shrink_to(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some((_, tenant)) = self.by_use.pop_first() else { break };
            if let Some((list, _)) = self.lists.remove(&tenant) {
                self.bytes -= cost(&list);
            }
        }
    }

    /// What the cached lists cost.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The whole list of a tenant with `paged_len` receipts in the snapshot, from `numbers` (its
/// snapshot receipts, as the KEYS blocks give them, in any order) and its `tail`: checked
/// to be `paged_len` distinct numbers below the tail's first.
pub(crate) fn rebuild(
    tenant: &TenantId,
    mut numbers: Vec<u64>,
    paged_len: u64,
    tail: &MarkedList,
    corrupt: impl Fn(String) -> LedgerError,
) -> Result<MarkedList, LedgerError> {
    numbers.sort_unstable();
    let distinct = numbers.windows(2).all(|w| w[0] < w[1]);
    let below_tail = match (numbers.last(), tail.list().iter().next()) {
        (Some(&last), Some(first)) => last < first,
        _ => true,
    };
    if numbers.len() as u64 != paged_len || !distinct || !below_tail {
        return Err(corrupt(format!(
            "tenant {tenant}'s lists in the snapshot hold {} numbers, {paged_len} expected",
            numbers.len()
        )));
    }
    let mut list = MarkedList::default();
    for seq in numbers.into_iter().chain(tail.list().iter()) {
        list.push(seq);
    }
    Ok(list)
}
