//! Lookups through a snapshot find what a read of every record finds; a damaged block the
//! lookup needs is refused (and every record read instead), never taken as it is.

use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_receipt::ReceiptBody;

use super::{ReceiptFilter, find_receipts};
use crate::ledger::Ledger;
use crate::ledger::snapshot::{Header, SNAPSHOT_FILE};
use crate::segment::{SegmentOptions, SegmentReader};

fn body(i: u64) -> ReceiptBody {
    crate::testing::mixed_body(i, "lookup")
}

type Query = (TenantId, Option<GovernorKind>, Option<ResourceId>);

/// Every query a listing can make of this ledger, and its answer read from every body.
fn queries(n: u64) -> Vec<(Query, Vec<u64>)> {
    let mut out = Vec::new();
    for t in 0..6 {
        let tenant = TenantId::new(&format!("tenant-{t}")).unwrap();
        for kind in [None, Some(GovernorKind::Billing), Some(GovernorKind::Saga)] {
            for r in [None, Some(3), Some(36)] {
                let resource = r.map(|r| ResourceId::new(&format!("r-{r}")).unwrap());
                let seqs = (0..n)
                    .filter(|&i| {
                        let b = body(i);
                        b.tenant == tenant
                            && kind.is_none_or(|k| k == b.governor)
                            && resource.as_ref().is_none_or(|r| *r == b.resource)
                    })
                    .collect();
                out.push(((tenant.clone(), kind, resource), seqs));
            }
        }
    }
    out
}

fn find(dir: &std::path::Path, q: &Query) -> super::FoundReceipts {
    let (store, _) = SegmentReader::open(dir).unwrap();
    let filter = ReceiptFilter { tenant: &q.0, kind: q.1, resource: q.2.as_ref() };
    find_receipts(dir, &store, filter).unwrap()
}

#[test]
fn lookups_through_a_snapshot_and_the_records_after_it_find_what_every_record_gives() {
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentOptions { segment_bytes: 16 << 10, ..SegmentOptions::default() };
    let (ledger, _) = Ledger::open_dir(dir.path(), options).unwrap();
    for i in 0..300 {
        ledger.append(body(i)).unwrap();
    }
    ledger.commit().unwrap();
    ledger.write_snapshot(dir.path()).unwrap();
    for i in 300..400 {
        ledger.append(body(i)).unwrap();
    }
    ledger.commit().unwrap();
    drop(ledger);
    for (q, expected) in queries(400) {
        let found = find(dir.path(), &q);
        assert_eq!((found.snapshot, found.read, &found.unused), (Some(300), 100, &None), "{q:?}");
        assert_eq!(found.seqs, expected, "{q:?}");
    }
    // A byte of the KEYS section damaged: a lookup that reads its block refuses it and
    // reads every record; one that does not read it still uses the snapshot.
    let path = dir.path().join(SNAPSHOT_FILE);
    let good = std::fs::read(&path).unwrap();
    let keys = Header::parse(&good, good.len() as u64).unwrap().sections[2];
    let mut bad = good.clone();
    bad[(keys.0 + keys.1 / 2) as usize] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let mut refused = 0;
    for (q, expected) in queries(400) {
        let found = find(dir.path(), &q);
        assert_eq!(found.seqs, expected, "{q:?}");
        if found.unused.is_some() {
            assert_eq!((found.snapshot, found.read), (None, 400), "{q:?}");
            refused += 1;
        }
    }
    assert!(refused > 0, "some lookup read the damaged block");
}
