//! The index within a budget: a ledger whose resource lists are read from its snapshot on
//! demand (with a budget of nothing, or of 1 KiB) reads and numbers exactly as a ledger that
//! holds every list, across appends, snapshots written at any point and reopens; a damaged
//! snapshot block after the open is an error of the reads that need it, never a wrong answer.

use std::path::Path;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

use crate::ledger::snapshot::{Loaded, SNAPSHOT_FILE};
use crate::ledger::{Ledger, LedgerError};
use crate::segment::SegmentOptions;
use crate::testing::MIXED_KINDS;

/// Small segments, so that a few hundred receipts fill several.
fn options() -> SegmentOptions {
    SegmentOptions { segment_bytes: 8 << 10, ..SegmentOptions::default() }
}

/// xorshift64*: the same seed, the same run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// (tenant, kind, resource) number `k` of `TENANTS × KINDS × RESOURCES`.
const TENANTS: u64 = 3;
const RESOURCES: u64 = 40;
const KEYS: u64 = TENANTS * 3 * RESOURCES;

fn key(k: u64) -> (TenantId, GovernorKind, ResourceId) {
    let tenant = TenantId::new(&format!("tenant-{}", k % TENANTS)).unwrap();
    let kind = MIXED_KINDS[((k / TENANTS) % 3) as usize];
    let resource = ResourceId::new(&format!("r-{:03}", k / (TENANTS * 3))).unwrap();
    (tenant, kind, resource)
}

fn body(k: u64, i: u64) -> ReceiptBody {
    let (tenant, kind, resource) = key(k);
    let mut b =
        crate::testing::body(tenant.as_str(), kind, resource.as_str(), format!("receipt {i}"));
    b.timestamp = Timestamp(1_767_225_600_000 + i);
    b
}

fn open(dir: &Path, budget: usize) -> Ledger {
    let (ledger, _) = Ledger::open_dir(dir, options()).unwrap();
    ledger.set_index_budget(budget);
    ledger
}

/// A tenant's receipts walked page by page (pages of 7).
fn paged_walk(ledger: &Ledger, tenant: &TenantId) -> Vec<u64> {
    let (mut out, mut after) = (Vec::new(), None);
    loop {
        let (page, next) = ledger.tenant_receipts_page(tenant, after, 7).unwrap();
        out.extend(page.iter().map(|r| r.seq));
        match next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

/// Every read of key `k` (and of its tenant) gives on `paged` what it gives on `reference`.
fn same_reads(paged: &Ledger, reference: &Ledger, k: u64) {
    let (tenant, kind, resource) = key(k);
    let at = |what: &str| format!("key {k} ({tenant}/{kind}/{resource}): {what}");
    assert_eq!(
        paged.resource_receipts(&tenant, kind, &resource).unwrap(),
        reference.resource_receipts(&tenant, kind, &resource).unwrap(),
        "{}",
        at("resource_receipts")
    );
    assert_eq!(
        paged.resource_may_have_receipts(&tenant, kind, &resource),
        reference.resource_may_have_receipts(&tenant, kind, &resource),
        "{}",
        at("resource_may_have_receipts")
    );
    let history = paged.resource_history(&tenant, kind, &resource).unwrap();
    assert!(history.base.is_none());
    assert_eq!(
        history.receipts,
        reference.resource_receipts(&tenant, kind, &resource).unwrap(),
        "{}",
        at("resource_history")
    );
    assert_eq!(
        paged.tenant_receipts(&tenant, None, Some(&resource)).unwrap(),
        reference.tenant_receipts(&tenant, None, Some(&resource)).unwrap(),
        "{}",
        at("tenant_receipts of a resource")
    );
}

/// The reads of a whole tenant (`key(k)`'s): all its receipts, those of its kind, by pages.
fn same_tenant_reads(paged: &Ledger, reference: &Ledger, k: u64) {
    let (tenant, kind, _) = key(k);
    for kind in [Some(kind), None] {
        assert_eq!(
            paged.tenant_receipts(&tenant, kind, None).unwrap(),
            reference.tenant_receipts(&tenant, kind, None).unwrap(),
            "tenant_receipts of {tenant}, {kind:?}"
        );
    }
    assert_eq!(paged_walk(paged, &tenant), paged_walk(reference, &tenant), "pages of {tenant}");
}

fn all_same(paged: &Ledger, reference: &Ledger) {
    for k in 0..KEYS {
        same_reads(paged, reference, k);
    }
    for k in 0..TENANTS * 3 {
        same_tenant_reads(paged, reference, k);
    }
    assert_eq!(paged.receipt_counts(), reference.receipt_counts());
    assert_eq!(paged.head(), reference.head());
}

/// Whether the index pages from a snapshot, and how many clean lists it holds.
fn paging(ledger: &Ledger) -> (bool, usize) {
    let inner = ledger.lock();
    (inner.index.paged.is_some(), inner.index.clean.len())
}

/// Random appends over many keys (a few hot, most cold), snapshots written at random points,
/// reopens, reads: on a ledger paging with `budget` and on one in memory holding every list,
/// every append gets the same number and hash and every read the same receipts.
fn run(seed: u64, budget: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut ledger = open(dir, budget);
    let reference = Ledger::in_memory();
    let (mut reopened_paged, mut snapshots) = (0, 0);
    for i in 0..700 {
        let k = if rng.below(3) == 0 { rng.below(6) } else { rng.below(KEYS) };
        let appended = ledger.append(body(k, i)).unwrap();
        assert_eq!(appended, reference.append(body(k, i)).unwrap(), "seed {seed}, append {i}");
        match rng.below(100) {
            0..3 => {
                ledger.commit().unwrap();
                if ledger.write_snapshot(dir).unwrap().is_some() {
                    snapshots += 1;
                    assert!(paging(&ledger).0, "a written snapshot is paged from");
                }
            }
            3..5 => {
                ledger.commit().unwrap();
                drop(ledger);
                ledger = open(dir, budget);
                if ledger.snapshot_len() > 0 {
                    assert!(paging(&ledger).0, "an open from a snapshot pages from it");
                    reopened_paged += 1;
                }
            }
            5..12 => same_reads(&ledger, &reference, rng.below(KEYS)),
            12..14 => same_tenant_reads(&ledger, &reference, rng.below(KEYS)),
            _ => {}
        }
        if budget == 0 {
            assert!(paging(&ledger).1 <= 1, "a budget of nothing holds the last list read only");
        }
    }
    ledger.commit().unwrap();
    all_same(&ledger, &reference);
    ledger.write_snapshot(dir).unwrap();
    drop(ledger);
    let ledger = open(dir, budget);
    assert!(paging(&ledger).0);
    all_same(&ledger, &reference);
    // Numbering continues, for cold keys and hot ones.
    for i in 700..800 {
        let k = rng.below(KEYS);
        assert_eq!(ledger.append(body(k, i)).unwrap(), reference.append(body(k, i)).unwrap());
    }
    ledger.commit().unwrap();
    all_same(&ledger, &reference);
    assert_eq!(ledger.verify().unwrap(), reference.head());
    assert!(
        snapshots > 0 && reopened_paged > 0,
        "seed {seed}: {snapshots} snapshots, {reopened_paged} paged opens"
    );
    if budget <= 1024 {
        assert!(ledger.lock().index.clean.bytes() <= 1024.max(budget) + 512);
    }
}

#[test]
fn a_ledger_paging_within_a_tiny_budget_reads_and_numbers_as_one_holding_every_list() {
    for seed in 1..=4 {
        for budget in [0, 1 << 10] {
            run(seed, budget);
        }
    }
}

#[test]
fn with_the_default_budget_lists_read_back_stay_and_a_smaller_budget_lets_them_go() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = open(tmp.path(), usize::MAX);
    let reference = Ledger::in_memory();
    for i in 0..600 {
        ledger.append(body(i % KEYS, i)).unwrap();
        reference.append(body(i % KEYS, i)).unwrap();
    }
    ledger.commit().unwrap();
    ledger.write_snapshot(tmp.path()).unwrap();
    drop(ledger);
    let ledger = open(tmp.path(), usize::MAX);
    assert_eq!(paging(&ledger), (true, 0), "nothing read back at the open");
    all_same(&ledger, &reference);
    // Every list read once and kept. `tenant_receipts` of a resource also looks up the
    // resource under every other kind: absent from the snapshot, which its key filter says
    // without a block read but for about 1 % of them (read, found absent, remembered).
    let absent = (GovernorKind::ALL.len() as u64 - 3) * TENANTS * RESOURCES;
    let held = paging(&ledger).1 as u64;
    assert!((KEYS..KEYS + absent / 20).contains(&held), "{held} lists held");
    let held = ledger.index_resident_bytes();
    ledger.set_index_budget(2 << 10);
    assert!(ledger.lock().index.clean.bytes() <= 2 << 10);
    assert!(ledger.index_resident_bytes() < held);
    all_same(&ledger, &reference);
}

/// (receipts counted in the snapshot, numbers held after it) of every tenant.
fn tenant_holdings(ledger: &Ledger) -> Vec<(u64, u64)> {
    let inner = ledger.lock();
    let mut out: Vec<(String, (u64, u64))> = inner
        .index
        .tenants
        .iter()
        .map(|(id, list)| (id.to_string(), (list.paged_len(), list.tail().list().len())))
        .collect();
    out.sort();
    out.into_iter().map(|(_, held)| held).collect()
}

#[test]
fn tenants_lists_are_counted_not_held_once_in_the_snapshot_and_rebuilt_for_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = open(tmp.path(), 0);
    let reference = Ledger::in_memory();
    let append = |from: u64, to: u64| {
        for i in from..to {
            ledger.append(body(i % KEYS, i)).unwrap();
            reference.append(body(i % KEYS, i)).unwrap();
        }
        ledger.commit().unwrap();
    };
    append(0, 900);
    // Before any snapshot, every number is held.
    assert_eq!(tenant_holdings(&ledger), vec![(0, 300); 3]);
    ledger.write_snapshot(tmp.path()).unwrap();
    // Once in the snapshot the index pages from, only counted.
    assert_eq!(tenant_holdings(&ledger), vec![(300, 0); 3]);
    append(900, 903);
    assert_eq!(tenant_holdings(&ledger), vec![(300, 1); 3]);
    // Reads rebuild each whole list (a budget of nothing keeps only the one read last).
    all_same(&ledger, &reference);
    let rebuilt = ledger.lock().index.tenant_cache.rebuilt;
    assert!(rebuilt >= 3, "{rebuilt}");
    // With room, a list read stays and appends go on to it: no rebuild on the next reads.
    ledger.set_index_budget(usize::MAX);
    same_tenant_reads(&ledger, &reference, 0);
    let rebuilt = ledger.lock().index.tenant_cache.rebuilt;
    append(903, 960);
    same_tenant_reads(&ledger, &reference, 0);
    assert_eq!(ledger.lock().index.tenant_cache.rebuilt, rebuilt);
    // Reopened from the snapshot: counted from its TENANTS section, the rest after it.
    drop(ledger);
    let ledger = open(tmp.path(), 0);
    assert_eq!(tenant_holdings(&ledger), vec![(300, 20); 3]);
    all_same(&ledger, &reference);
}

#[test]
fn a_snapshot_block_damaged_after_the_open_fails_its_reads_and_never_answers_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ledger = open(dir, 0);
    let reference = Ledger::in_memory();
    for i in 0..500 {
        ledger.append(body(i % KEYS, i)).unwrap();
        reference.append(body(i % KEYS, i)).unwrap();
    }
    ledger.commit().unwrap();
    ledger.write_snapshot(dir).unwrap();
    // Keys 0..10 are appended to after the snapshot: their whole lists are held.
    for i in 500..510 {
        ledger.append(body(i - 500, i)).unwrap();
        reference.append(body(i - 500, i)).unwrap();
    }
    ledger.commit().unwrap();
    drop(ledger);
    let ledger = open(dir, 0);
    // Every KEYS block damaged in place (the file the index reads through).
    let path = dir.join(SNAPSHOT_FILE);
    let (at, len) = Loaded::read(&path).unwrap().unwrap().span(2);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes[at as usize..(at + len) as usize].iter_mut().step_by(97) {
        *b ^= 0x20;
    }
    {
        use std::io::{Seek as _, Write as _};
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(std::io::SeekFrom::Start(0)).unwrap();
        file.write_all(&bytes).unwrap();
    }
    let mut failed = 0;
    for k in 0..KEYS {
        let (tenant, kind, resource) = key(k);
        match ledger.resource_receipts(&tenant, kind, &resource) {
            Ok(receipts) => {
                assert!(k < 10, "key {k}: its list is in a damaged block, yet it was read");
                assert_eq!(
                    receipts,
                    reference.resource_receipts(&tenant, kind, &resource).unwrap()
                );
            }
            Err(LedgerError::Corrupt { reason, .. }) => {
                assert!(reason.contains("KEYS block at byte"), "{reason}");
                failed += 1;
            }
            Err(e) => panic!("key {k}: {e}"),
        }
    }
    assert_eq!(failed, KEYS - 10);
    // An append to a key whose list cannot be read is refused, and poisons nothing; one to
    // a key held goes on.
    assert!(matches!(ledger.append(body(50, 510)), Err(LedgerError::Corrupt { .. })));
    assert!(!ledger.is_poisoned());
    assert_eq!(ledger.append(body(3, 510)).unwrap(), reference.append(body(3, 510)).unwrap());
    ledger.commit().unwrap();
    drop(ledger);
    // The next open checks the whole snapshot, does not use it, and reads every record.
    let (ledger, report) = Ledger::open_dir(dir, options()).unwrap();
    assert_eq!(report.snapshot, None);
    assert!(!paging(&ledger).0);
    all_same(&ledger, &reference);
}
