//! Snapshots: a ledger opened from one is the ledger rebuilt from every record; a snapshot
//! that is damaged in any byte, or valid but of other records, is not used.

use std::path::Path;

use govern_governors::GovernorKind;
use govern_receipt::{Digest, ReceiptBody};

use super::{Loaded, SNAPSHOT_FILE, Writer};
use crate::ledger::seqs::ListParts;
use crate::ledger::{Ledger, TreeHead};
use crate::merkle::MerkleFrontier;
use crate::segment::{OpenReport, SegmentOptions};

fn body(i: u64) -> ReceiptBody {
    crate::testing::mixed_body(i, "original")
}

/// Small segments, so that a ledger of a few hundred receipts has many.
fn options() -> SegmentOptions {
    SegmentOptions { segment_bytes: 8 << 10, ..SegmentOptions::default() }
}

fn open(dir: &Path) -> (Ledger, OpenReport) {
    Ledger::open_dir(dir, options()).unwrap()
}

fn append(ledger: &Ledger, range: std::ops::Range<u64>) {
    for i in range {
        ledger.append(body(i)).unwrap();
    }
    ledger.commit().unwrap();
}

/// Everything the index holds, independent of the random key hashing: head, tree head,
/// every tenant's list (with its marks) and the multiset of resource lists.
#[derive(Debug, PartialEq)]
struct Dump {
    head: govern_receipt::Head,
    tree: Option<TreeHead>,
    tenants: Vec<(String, crate::ledger::seqs::MarkedList)>,
    keys: Vec<Vec<u64>>,
}

fn dump(ledger: &Ledger) -> Dump {
    let mut inner = ledger.lock();
    // Whole lists, however the index holds them (paged tenants' rebuilt from the snapshot).
    let ids: Vec<govern_governors::TenantId> = inner.index.tenants.keys().cloned().collect();
    let mut tenants: Vec<_> = ids
        .iter()
        .map(|id| {
            let list = inner.index.tenant_list(id).unwrap().unwrap().clone();
            (id.to_string(), list)
        })
        .collect();
    tenants.sort_by(|a, b| a.0.cmp(&b.0));
    let keys = inner.index.all_lists();
    let head = inner.head;
    drop(inner);
    Dump { head, tree: ledger.tree_head(), tenants, keys }
}

/// The dump of the ledger in `dir` opened from every record (its snapshot moved aside).
fn full_scan(dir: &Path) -> Dump {
    let snap = dir.join(SNAPSHOT_FILE);
    let aside = dir.join("aside");
    let had = std::fs::rename(&snap, &aside).is_ok();
    let (ledger, report) = open(dir);
    assert_eq!(report.snapshot, None);
    let out = dump(&ledger);
    drop(ledger);
    if had {
        std::fs::rename(&aside, &snap).unwrap();
    }
    out
}

/// A data directory of `n` receipts with a snapshot of the first `at`.
fn ledger_with_snapshot(n: u64, at: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = open(dir.path());
    append(&ledger, 0..at);
    let written = ledger.write_snapshot(dir.path()).unwrap().unwrap();
    assert_eq!((written.records, written.read), (at, at));
    append(&ledger, at..n);
    dir
}

#[test]
fn a_ledger_opened_from_a_snapshot_is_the_ledger_rebuilt_from_every_record() {
    let dir = ledger_with_snapshot(400, 300);
    let (ledger, report) = open(dir.path());
    assert_eq!(report.snapshot, Some(300));
    assert_eq!(report.records, 400);
    let opened = dump(&ledger);
    drop(ledger);
    assert_eq!(opened, full_scan(dir.path()));
    let (ledger, _) = open(dir.path());
    // Numbering and the chain continue: the next receipts of known resources get the next
    // numbers, and the whole chain verifies.
    append(&ledger, 400..450);
    assert_eq!(ledger.verify().unwrap().next_seq, 450);
    let r = ledger.resource_receipts(&body(449).tenant, body(449).governor, &body(449).resource);
    let numbers: Vec<u64> = r.unwrap().iter().map(|r| r.body.resource_seq).collect();
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    drop(ledger);
    let (_, report) = open(dir.path());
    assert_eq!((report.snapshot, report.records), (Some(300), 450));
}

#[test]
fn a_snapshot_of_every_record_opens_without_reading_a_record_after_it() {
    let dir = ledger_with_snapshot(250, 250);
    let (ledger, report) = open(dir.path());
    assert_eq!((report.snapshot, report.records), (Some(250), 250));
    let opened = dump(&ledger);
    drop(ledger);
    assert_eq!(opened, full_scan(dir.path()));
}

#[test]
fn a_merged_snapshot_is_byte_for_byte_the_one_written_from_every_record() {
    let dir = ledger_with_snapshot(500, 120);
    let (ledger, _) = open(dir.path());
    let merged = ledger.write_snapshot(dir.path()).unwrap().unwrap();
    assert_eq!((merged.records, merged.read), (500, 380));
    let merged_bytes = std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap();
    std::fs::remove_file(dir.path().join(SNAPSHOT_FILE)).unwrap();
    let fresh = ledger.write_snapshot(dir.path()).unwrap().unwrap();
    assert_eq!((fresh.records, fresh.read), (500, 500));
    assert_eq!(std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap(), merged_bytes);
    // Nothing new: nothing written.
    assert_eq!(ledger.write_snapshot(dir.path()).unwrap(), None);
}

#[test]
fn a_snapshot_damaged_in_any_byte_is_not_used_and_the_full_scan_gives_the_same_ledger() {
    let dir = ledger_with_snapshot(60, 40);
    let path = dir.path().join(SNAPSHOT_FILE);
    let good = std::fs::read(&path).unwrap();
    let expected = full_scan(dir.path());
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let (ledger, report) = open(dir.path());
        assert_eq!(report.snapshot, None, "byte {at} flipped, snapshot used");
        assert_eq!(dump(&ledger), expected, "byte {at}");
        drop(ledger);
    }
    for len in [0, 1, 17, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..len]).unwrap();
        let (_, report) = open(dir.path());
        assert_eq!(report.snapshot, None, "cut at {len}");
    }
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&path, &longer).unwrap();
    assert_eq!(open(dir.path()).1.snapshot, None);
    std::fs::write(&path, &good).unwrap();
    assert_eq!(open(dir.path()).1.snapshot, Some(40));
}

/// Rewrites the snapshot at `path` from its parsed contents, through `edit`, with valid
/// checksums: a snapshot whose every CRC holds but whose contents are wrong.
fn forge(path: &Path, edit: impl FnOnce(&mut Forged)) {
    let loaded = Loaded::read(path).unwrap().unwrap();
    let tenants = loaded.tenants().unwrap();
    let names: Vec<&str> = tenants.iter().map(|(id, _)| id.as_str()).collect();
    let mut keys = Vec::new();
    loaded
        .for_each_key(&names, |e, _| {
            keys.push((
                e.tenant,
                e.kind,
                e.resource.to_string(),
                e.list.iter().collect::<Vec<_>>(),
            ));
            Ok(())
        })
        .unwrap();
    let mut forged = Forged {
        records: loaded.records,
        last_hash: loaded.last_hash,
        frontier: loaded.frontier().unwrap(),
        tenants: tenants
            .iter()
            .map(|(id, l)| {
                (id.to_string(), l.list().to_parts().unwrap().iter().collect::<Vec<_>>())
            })
            .collect(),
        keys,
    };
    edit(&mut forged);
    let mut writer = Writer::new();
    for (id, seqs) in &forged.tenants {
        let (parts, buf) = parts(seqs);
        writer.tenant(id, ListParts { deltas: &buf, ..parts });
    }
    for (t, kind, resource, seqs) in &forged.keys {
        let (parts, buf) = parts(seqs);
        writer.key(*t, *kind, resource, ListParts { deltas: &buf, ..parts });
    }
    std::fs::write(path, writer.finish(forged.records, forged.last_hash, &forged.frontier, None))
        .unwrap();
}

struct Forged {
    records: u64,
    last_hash: Digest,
    frontier: MerkleFrontier,
    tenants: Vec<(String, Vec<u64>)>,
    keys: Vec<(u32, GovernorKind, String, Vec<u64>)>,
}

fn parts(seqs: &[u64]) -> (ListParts<'static>, Vec<u8>) {
    let mut buf = Vec::new();
    for w in seqs.windows(2) {
        super::put_varint(&mut buf, w[1].wrapping_sub(w[0]));
    }
    let first = seqs.first().copied().unwrap_or_default();
    let last = seqs.last().copied().unwrap_or_default();
    (ListParts { len: seqs.len() as u64, first, last, deltas: &[] }, buf)
}

#[test]
fn a_snapshot_with_valid_checksums_but_wrong_contents_is_not_used() {
    type Edit = Box<dyn FnOnce(&mut Forged)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("unchanged (control)", Box::new(|_| {})),
        ("more records than the ledger", Box::new(|f| f.records = 1_000)),
        // Refused before anything is allocated for them.
        ("more records than the lists could hold", Box::new(|f| f.records = 1 << 60)),
        ("fewer records", Box::new(|f| f.records -= 1)),
        ("another last hash", Box::new(|f| f.last_hash.0[0] ^= 1)),
        (
            "a record in no resource list",
            Box::new(|f| {
                f.keys[0].3.pop();
            }),
        ),
        (
            "a record in two resource lists",
            Box::new(|f| {
                let seq = f.keys[0].3[0];
                f.keys[1].3.insert(0, seq);
                f.keys[1].3.sort_unstable();
                f.keys[1].3.dedup();
            }),
        ),
        (
            "a record in no tenant list",
            Box::new(|f| {
                f.tenants[0].1.pop();
            }),
        ),
        ("keys out of order", Box::new(|f| f.keys.swap(0, 1))),
        ("tenants out of order", Box::new(|f| f.tenants.swap(0, 1))),
        ("an unknown tenant index", Box::new(|f| f.keys[3].0 = 99)),
        ("an invalid resource id", Box::new(|f| f.keys[3].2 = "bad id".into())),
        ("an invalid tenant id", Box::new(|f| f.tenants[4].0 = "Bad Id".into())),
        ("an empty list", Box::new(|f| f.keys[2].3.clear())),
        (
            "a frontier of another size",
            Box::new(|f| {
                f.frontier = MerkleFrontier::new();
            }),
        ),
    ];
    for (what, edit) in cases {
        let dir = ledger_with_snapshot(60, 40);
        let path = dir.path().join(SNAPSHOT_FILE);
        let control = what.starts_with("unchanged");
        forge(&path, edit);
        let (ledger, report) = open(dir.path());
        assert_eq!(report.snapshot, control.then_some(40), "{what}");
        let opened = dump(&ledger);
        drop(ledger);
        assert_eq!(opened, full_scan(dir.path()), "{what}");
    }
}

#[test]
fn a_snapshot_of_another_history_or_past_a_cut_ledger_is_not_used() {
    // Another data directory's snapshot: same length, other records.
    let a = ledger_with_snapshot(50, 50);
    let b = tempfile::tempdir().unwrap();
    {
        let (ledger, _) = open(b.path());
        for i in 0..50 {
            let mut body = body(i);
            body.reason = "another".into();
            ledger.append(body).unwrap();
        }
        ledger.commit().unwrap();
    }
    std::fs::copy(a.path().join(SNAPSHOT_FILE), b.path().join(SNAPSHOT_FILE)).unwrap();
    let (ledger, report) = open(b.path());
    assert_eq!(report.snapshot, None);
    let opened = dump(&ledger);
    drop(ledger);
    assert_eq!(opened, full_scan(b.path()));
    // The ledger cut below the snapshot's end (its last segment removed).
    let segments = a.path().join(crate::segment::SEGMENTS_DIR);
    let mut names: Vec<_> =
        std::fs::read_dir(&segments).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    std::fs::remove_file(names.last().unwrap()).unwrap();
    let (ledger, report) = open(a.path());
    assert_eq!(report.snapshot, None);
    assert!(ledger.head().next_seq < 50);
    let opened = dump(&ledger);
    drop(ledger);
    assert_eq!(opened, full_scan(a.path()));
}

#[test]
fn a_leftover_temporary_file_changes_nothing() {
    let dir = ledger_with_snapshot(80, 50);
    std::fs::write(dir.path().join(format!("{SNAPSHOT_FILE}.tmp")), b"half a snapshot").unwrap();
    let (ledger, report) = open(dir.path());
    assert_eq!(report.snapshot, Some(50));
    assert_eq!(ledger.write_snapshot(dir.path()).unwrap().unwrap().records, 80);
    drop(ledger);
    assert!(!dir.path().join(format!("{SNAPSHOT_FILE}.tmp")).exists());
    assert_eq!(open(dir.path()).1.snapshot, Some(80));
}

#[test]
fn a_snapshot_is_due_after_the_records_set_or_a_fiftieth_of_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = open(dir.path());
    ledger.set_snapshot_every(100);
    append(&ledger, 0..99);
    assert!(!ledger.snapshot_due());
    append(&ledger, 99..100);
    assert!(ledger.snapshot_due());
    ledger.write_snapshot(dir.path()).unwrap();
    assert_eq!(ledger.snapshot_len(), 100);
    assert!(!ledger.snapshot_due());
    // Past 5 000 covered records, a fiftieth is more than 100.
    append(&ledger, 100..5_100);
    ledger.write_snapshot(dir.path()).unwrap();
    append(&ledger, 5_100..5_201);
    assert!(!ledger.snapshot_due(), "101 < 5 100 / 50");
    append(&ledger, 5_201..5_202);
    assert!(ledger.snapshot_due());
}

#[test]
fn keys_sharing_a_hash_open_as_the_full_scan_opens_them() {
    // Every key one hash: one list for all, as appends and a full scan make it. The snapshot
    // keeps lists by ids, so the numbering after it (shared by the hash) does not match the
    // lists of the keys there: the open does not page from it and reads every record.
    let colliding = || crate::ledger::KeyHasher { bits: Some(0), ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let with = |keys| Ledger::open_dir_with(dir.path(), options(), keys).unwrap();
    let (ledger, _) = with(colliding());
    append(&ledger, 0..120);
    ledger.write_snapshot(dir.path()).unwrap();
    append(&ledger, 120..150);
    drop(ledger);
    let (ledger, report) = with(colliding());
    assert_eq!(report.snapshot, None);
    assert_eq!(dump(&ledger).keys, vec![(0..150).collect::<Vec<u64>>()]);
    let from_snapshot = dump(&ledger);
    drop(ledger);
    std::fs::remove_file(dir.path().join(SNAPSHOT_FILE)).unwrap();
    let (ledger, report) = with(colliding());
    assert_eq!(report.snapshot, None);
    assert_eq!(dump(&ledger), from_snapshot);
}

#[test]
fn a_snapshot_whose_lists_the_records_after_it_do_not_continue_is_not_used() {
    // Seven keys with receipts before and after the snapshot. Moving a number from one key's
    // list to another's keeps every record in exactly one list, with valid checksums: only
    // the numbering of the records after the snapshot, joined to those lists when the open
    // pages from it, shows it.
    let seven = |i: u64| {
        let kind = crate::testing::MIXED_KINDS[0];
        crate::testing::body("tenant-0", kind, &format!("r-{}", i % 7), format!("{i}"))
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let (ledger, _) = open(dir.path());
        for i in 0..300 {
            ledger.append(seven(i)).unwrap();
        }
        ledger.commit().unwrap();
        ledger.write_snapshot(dir.path()).unwrap();
        for i in 300..320 {
            ledger.append(seven(i)).unwrap();
        }
        ledger.commit().unwrap();
    }
    assert_eq!(open(dir.path()).1.snapshot, Some(300), "the control");
    forge(&dir.path().join(SNAPSHOT_FILE), |f| {
        let seq = f.keys[0].3.remove(0);
        f.keys[1].3.push(seq);
        f.keys[1].3.sort_unstable();
    });
    let (ledger, report) = open(dir.path());
    assert_eq!(report.snapshot, None);
    let opened = dump(&ledger);
    drop(ledger);
    assert_eq!(opened, full_scan(dir.path()));
}
