//! Ledger: sequencing, per-resource numbering, tenant-scoped queries, reopening, poisoning.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::{ChainError, ReceiptBody};

use super::{KeyHasher, Ledger, LedgerError, LedgerStore, MemoryStore, StoreError};

fn body(tenant: &str, kind: GovernorKind, resource: &str, command: &'static str) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000),
        tenant: TenantId::new(tenant).unwrap(),
        governor: kind,
        resource: ResourceId::new(resource).unwrap(),
        resource_seq: 99, // the ledger assigns it
        command: Cow::Borrowed(command),
        state_from: Cow::Borrowed("a"),
        state_to: Cow::Borrowed("b"),
        reason: "test".into(),
        args: BTreeMap::new(),
        metadata: BTreeMap::new(),
    }
}

#[test]
fn appends_are_sequenced_numbered_per_resource_and_scoped_per_tenant() {
    let ledger = Ledger::in_memory();
    let a = ledger.append(body("acme", GovernorKind::Subscription, "s1", "x")).unwrap();
    let b = ledger.append(body("globex", GovernorKind::Subscription, "s1", "y")).unwrap();
    let c = ledger.append(body("acme", GovernorKind::Subscription, "s1", "z")).unwrap();
    let d = ledger.append(body("acme", GovernorKind::Billing, "s1", "w")).unwrap();
    assert_eq!((a.seq, b.seq, c.seq, d.seq), (0, 1, 2, 3));
    assert_eq!((a.resource_seq, b.resource_seq, c.resource_seq, d.resource_seq), (0, 0, 1, 0));
    let acme = TenantId::new("acme").unwrap();
    let s1 = ResourceId::new("s1").unwrap();
    let mine: Vec<u64> =
        ledger.tenant_receipts(&acme, None, None).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(mine, [0, 2, 3]);
    let subs = ledger.resource_receipts(&acme, GovernorKind::Subscription, &s1).unwrap();
    assert_eq!(subs.iter().map(|r| r.body.command.to_string()).collect::<Vec<_>>(), ["x", "z"]);
    let billing = ledger.tenant_receipts(&acme, Some(GovernorKind::Billing), Some(&s1)).unwrap();
    assert_eq!(billing.len(), 1);
    assert!(
        ledger.tenant_receipts(&TenantId::new("nobody").unwrap(), None, None).unwrap().is_empty()
    );
    assert_eq!(ledger.verify().unwrap().next_seq, 4);
    assert_eq!(ledger.receipt_counts(), vec![(acme, 3), (TenantId::new("globex").unwrap(), 1)]);
}

#[test]
fn a_resource_without_receipts_is_known_to_have_none() {
    let ledger = Ledger::in_memory();
    let acme = TenantId::new("acme").unwrap();
    let (s1, s2) = (ResourceId::new("s1").unwrap(), ResourceId::new("s2").unwrap());
    assert!(!ledger.resource_may_have_receipts(&acme, GovernorKind::Subscription, &s1));
    ledger.append(body("acme", GovernorKind::Subscription, "s1", "x")).unwrap();
    assert!(ledger.resource_may_have_receipts(&acme, GovernorKind::Subscription, &s1));
    // Another resource, another kind, another tenant: still none.
    assert!(!ledger.resource_may_have_receipts(&acme, GovernorKind::Subscription, &s2));
    assert!(!ledger.resource_may_have_receipts(&acme, GovernorKind::Billing, &s1));
    let globex = TenantId::new("globex").unwrap();
    assert!(!ledger.resource_may_have_receipts(&globex, GovernorKind::Subscription, &s1));
}

/// A store whose appends fail after `ok` successes.
struct Failing {
    inner: MemoryStore,
    ok: u64,
}

impl LedgerStore for Failing {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        if self.inner.len() >= self.ok {
            return Err(StoreError::Io("disk full".into()));
        }
        self.inner.append(seq, record)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        self.inner.read(seq, out)
    }
}

#[test]
fn a_store_failure_poisons_the_ledger_and_nothing_retries() {
    let ledger = Ledger::open(Box::new(Failing { inner: MemoryStore::new(), ok: 1 })).unwrap();
    ledger.append(body("acme", GovernorKind::Quota, "q", "x")).unwrap();
    let err = ledger.append(body("acme", GovernorKind::Quota, "q", "y")).unwrap_err();
    assert_eq!(err, LedgerError::Store(StoreError::Io("disk full".into())));
    assert!(ledger.is_poisoned());
    assert_eq!(
        ledger.append(body("acme", GovernorKind::Quota, "q", "z")),
        Err(LedgerError::Poisoned)
    );
    assert_eq!(ledger.head().next_seq, 1, "the failed append left no trace");
    assert_eq!(ledger.sync(), Err(LedgerError::Poisoned));
}

#[test]
fn reopening_a_store_continues_the_chain_and_index() {
    let first = Ledger::in_memory();
    for i in 0..5 {
        first
            .append(body("acme", GovernorKind::Account, if i % 2 == 0 { "a" } else { "b" }, "x"))
            .unwrap();
    }
    // Move the records into a fresh store, as a restart from disk would find them.
    let mut store = MemoryStore::new();
    let mut rec = Vec::new();
    {
        let inner = first.lock();
        for seq in 0..inner.store.len() {
            assert!(inner.store.read(seq, &mut rec).unwrap());
            store.append(seq, &rec).unwrap();
        }
    }
    let reopened = Ledger::open(Box::new(store)).unwrap();
    assert_eq!(reopened.head(), first.head());
    let next = reopened.append(body("acme", GovernorKind::Account, "a", "y")).unwrap();
    assert_eq!((next.seq, next.resource_seq), (5, 3));
    assert_eq!(reopened.verify().unwrap().next_seq, 6);
}

#[test]
fn a_corrupt_store_does_not_open() {
    let mut store = MemoryStore::new();
    let ledger = Ledger::in_memory();
    ledger.append(body("acme", GovernorKind::Account, "a", "x")).unwrap();
    let mut rec = Vec::new();
    assert!(ledger.lock().store.read(0, &mut rec).unwrap());
    rec[40] ^= 1;
    store.append(0, &rec).unwrap();
    let err = Ledger::open(Box::new(store)).unwrap_err();
    assert!(matches!(err, LedgerError::Chain(ChainError::HashMismatch { seq: 0, .. })), "{err}");
}

/// A key hasher that gives every key the same hash.
fn colliding() -> KeyHasher {
    KeyHasher { bits: Some(0), ..KeyHasher::default() }
}

/// What the queries see, as (tenant, kind, resource, seq) of each receipt returned.
fn seen(receipts: &[govern_receipt::Receipt]) -> Vec<(String, GovernorKind, String, u64)> {
    receipts
        .iter()
        .map(|r| (r.body.tenant.to_string(), r.body.governor, r.body.resource.to_string(), r.seq))
        .collect()
}

#[test]
fn reads_keep_only_the_exact_key_when_every_key_shares_a_hash() {
    let ledger = Ledger::in_memory();
    ledger.lock().index.keys = colliding();
    let appends = [
        ("acme", GovernorKind::Subscription, "s1"),
        ("globex", GovernorKind::Subscription, "s1"),
        ("acme", GovernorKind::Billing, "s1"),
        ("acme", GovernorKind::Subscription, "s2"),
        ("acme", GovernorKind::Subscription, "s1"),
    ];
    let numbers: Vec<u64> = appends
        .iter()
        .map(|&(t, k, r)| ledger.append(body(t, k, r, "x")).unwrap().resource_seq)
        .collect();
    // The documented cost of a collision: the keys sharing a hash share one count.
    assert_eq!(numbers, [0, 1, 2, 3, 4]);
    // Reopened over the same records (a restart), with the same collisions.
    let mut store = MemoryStore::new();
    let mut rec = Vec::new();
    for seq in 0..5 {
        assert!(ledger.lock().store.read(seq, &mut rec).unwrap());
        store.append(seq, &rec).unwrap();
    }
    let reopened = Ledger::open_with(Box::new(store), colliding()).unwrap();
    for ledger in [&ledger, &reopened] {
        let acme = TenantId::new("acme").unwrap();
        let (s1, s2) = (ResourceId::new("s1").unwrap(), ResourceId::new("s2").unwrap());
        let sub = GovernorKind::Subscription;
        let one =
            |t: &TenantId, k, r: &ResourceId| seen(&ledger.resource_receipts(t, k, r).unwrap());
        let key = |t: &str, k, r: &str, seq| (t.to_owned(), k, r.to_owned(), seq);
        assert_eq!(one(&acme, sub, &s1), [key("acme", sub, "s1", 0), key("acme", sub, "s1", 4)]);
        assert_eq!(one(&TenantId::new("globex").unwrap(), sub, &s1), [key("globex", sub, "s1", 1)]);
        assert_eq!(
            one(&acme, GovernorKind::Billing, &s1),
            [key("acme", GovernorKind::Billing, "s1", 2)]
        );
        assert_eq!(one(&acme, sub, &s2), [key("acme", sub, "s2", 3)]);
        assert!(one(&acme, GovernorKind::Quota, &s1).is_empty(), "a hash shared, no such key");
        let tenant = |k, r| seen(&ledger.tenant_receipts(&acme, k, r).unwrap());
        let seqs =
            |v: Vec<(String, GovernorKind, String, u64)>| v.iter().map(|x| x.3).collect::<Vec<_>>();
        assert_eq!(seqs(tenant(None, None)), [0, 2, 3, 4]);
        assert_eq!(seqs(tenant(None, Some(&s1))), [0, 2, 4]);
        assert_eq!(seqs(tenant(Some(sub), None)), [0, 3, 4]);
        assert_eq!(seqs(tenant(Some(sub), Some(&s1))), [0, 4]);
        assert_eq!(
            ledger.receipt_counts(),
            vec![(acme.clone(), 4), (TenantId::new("globex").unwrap(), 1)]
        );
    }
}

#[test]
fn a_realistic_mix_of_keys_reads_back_exactly_with_or_without_narrow_hashes() {
    // Ten bits per half: many keys share a table slot's hash, some the whole hash.
    let narrow = KeyHasher { bits: Some(10), ..KeyHasher::default() };
    for keys in [KeyHasher::default(), narrow] {
        let ledger = Ledger::in_memory();
        ledger.lock().index.keys = keys;
        let mut expected: BTreeMap<(String, GovernorKind, String), Vec<u64>> = BTreeMap::new();
        for i in 0..3_000u64 {
            let tenant = format!("t{}", i % 3);
            let kind = GovernorKind::ALL[(i % 8) as usize];
            let resource = format!("r{}", i % 400);
            let seq = ledger.append(body(&tenant, kind, &resource, "x")).unwrap().seq;
            expected.entry((tenant, kind, resource)).or_default().push(seq);
        }
        for ((t, k, r), seqs) in &expected {
            let got = ledger
                .resource_receipts(&TenantId::new(t).unwrap(), *k, &ResourceId::new(r).unwrap())
                .unwrap();
            assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), *seqs, "{t} {k:?} {r}");
        }
    }
}

#[test]
fn the_ledgers_own_verification_decodes_and_follows_each_resources_numbering() {
    use crate::verify::crafted;
    let mut gap = crafted::good_fields(9);
    gap[7].resource_seq = 3;
    let mut malformed = crafted::good_fields(9);
    malformed[7].tenant = b"ac me".to_vec();
    for (fields, kind) in [
        (crafted::good_fields(9), None),
        (gap, Some("resource_seq_gap")),
        (malformed, Some("malformed")),
    ] {
        let ledger = Ledger::in_memory();
        let mut prev = govern_receipt::Digest::ZERO;
        for (seq, f) in (0u64..).zip(&fields) {
            let (record, hash) = crafted::record(seq, prev, f);
            ledger.lock().store.append(seq, &record).unwrap();
            prev = hash;
        }
        match (ledger.verify(), kind) {
            (Ok(head), None) => assert_eq!(head.next_seq, 9),
            (Err(LedgerError::Chain(e)), Some(kind)) => {
                assert_eq!((e.seq(), e.kind()), (7, kind), "{e}")
            }
            (other, kind) => panic!("expected {kind:?}, got {other:?}"),
        }
    }
}

#[test]
fn a_read_names_a_record_that_does_not_decode_as_opening_does() {
    use crate::verify::crafted;
    let ledger = Ledger::in_memory();
    for i in 0..3 {
        ledger.append(body("acme", GovernorKind::Quota, &format!("q-{i}"), "x")).unwrap();
    }
    // The records rewritten behind the ledger's back: receipt 1's governor is no kind (its
    // hash and link still hold, so opening finds only that).
    let mut fields = crafted::good_fields(3);
    fields[1].governor = b"quotas".to_vec();
    let store = || {
        let mut store = MemoryStore::new();
        let mut prev = govern_receipt::Digest::ZERO;
        for (seq, f) in (0u64..).zip(&fields) {
            let (record, hash) = crafted::record(seq, prev, f);
            store.append(seq, &record).unwrap();
            prev = hash;
        }
        store
    };
    let opening = Ledger::open(Box::new(store())).unwrap_err();
    assert!(matches!(opening, LedgerError::Chain(ChainError::Malformed { seq: 1, .. })));
    ledger.lock().store = Box::new(store());
    let acme = TenantId::new("acme").unwrap();
    let q1 = ResourceId::new("q-1").unwrap();
    let reads = [
        ledger.resource_receipts(&acme, GovernorKind::Quota, &q1),
        ledger.tenant_receipts(&acme, None, None),
        // The key checked before the whole record.
        ledger.tenant_receipts(&acme, Some(GovernorKind::Quota), None),
    ];
    for read in reads {
        assert_eq!(read.map(|r| r.len()), Err(opening.clone()));
    }
}

#[test]
fn a_closed_ledger_refuses_appends_and_commits_unpoisoned_and_still_reads() {
    use crate::segment::{SegmentOptions, SegmentStore};
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    let durable = Ledger::open(Box::new(store)).unwrap();
    // In memory (a store that refuses nothing itself) and over a segment store.
    for ledger in [Ledger::in_memory(), durable] {
        ledger.append(body("acme", GovernorKind::Quota, "q", "x")).unwrap();
        assert_eq!(ledger.commit(), Ok(1));
        ledger.close();
        assert_eq!(
            ledger.append(body("acme", GovernorKind::Quota, "q", "y")),
            Err(LedgerError::Closed)
        );
        assert_eq!(ledger.commit(), Err(LedgerError::Closed));
        assert!(ledger.is_closed() && !ledger.is_poisoned());
        ledger.close();
        let acme = TenantId::new("acme").unwrap();
        assert_eq!(ledger.tenant_receipts(&acme, None, None).unwrap().len(), 1);
        assert_eq!(ledger.verify().unwrap().next_seq, 1);
        assert_eq!(ledger.durable_len(), 1);
    }
    // The segment store let go of the directory: another writer opens it.
    let (store, report) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    assert_eq!((report.records, store.len()), (1, 1));
}

mod reads;

#[test]
fn receipts_in_reads_a_range_by_position_cut_at_the_ledgers_length() {
    let ledger = Ledger::in_memory();
    let mut hashes = Vec::new();
    for i in 0..10 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        hashes.push(ledger.append(body(tenant, GovernorKind::Quota, "q", "x")).unwrap().hash);
    }
    let read = ledger.receipts_in(3..7).unwrap();
    assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5, 6]);
    assert_eq!(read.iter().map(|r| r.hash).collect::<Vec<_>>(), hashes[3..7]);
    assert_eq!(read[0].body.tenant.as_str(), "globex");
    assert_eq!(ledger.receipts_in(8..100).unwrap().len(), 2);
    assert!(ledger.receipts_in(10..12).unwrap().is_empty());
    assert!(ledger.receipts_in(5..5).unwrap().is_empty());
    assert_eq!(ledger.receipts_in(0..10).unwrap().len(), 10);
}
