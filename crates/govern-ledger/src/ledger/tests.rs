//! Ledger: sequencing, per-resource numbering, tenant-scoped queries, reopening, poisoning.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

use super::{Ledger, LedgerError, LedgerStore, MemoryStore, StoreError};

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
    assert!(matches!(err, LedgerError::Corrupt { seq: 0, .. }), "{err}");
}
