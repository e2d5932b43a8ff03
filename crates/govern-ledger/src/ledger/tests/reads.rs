//! Reads beside appends: a read held inside the store lets appends and commits through; reads
//! see exactly what was appended, across memory chunks, segments and the writer's buffer;
//! a tenant's receipts page by page.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_receipt::Receipt;
use proptest::prelude::*;

use super::super::{
    Ledger, LedgerStore, Located, LocatedRecord, MemoryStore, READ_BATCH, StoreError,
    TENANT_PAGE_MAX,
};
use crate::segment::{SegmentOptions, SegmentStore};
use crate::testing::{Gate, HELD_READS, body, reads_do_not_hold_up_appends};

/// A memory store whose reads pass a gate: the located records' (read after the ledger's
/// lock) and its own `read` (which the ledger called under its lock before it located).
struct GatedStore {
    inner: MemoryStore,
    gate: Arc<Gate>,
}

/// Records located in a [`GatedStore`]: the first read passes the gate.
struct GatedLocated {
    inner: Box<dyn Located>,
    gate: Option<Arc<Gate>>,
}

impl Located for GatedLocated {
    fn next_record(&mut self) -> Option<LocatedRecord<'_>> {
        if let Some(gate) = self.gate.take() {
            gate.pass();
        }
        self.inner.next_record()
    }
}

impl GatedStore {
    fn gated(&self, inner: Box<dyn Located>) -> Box<dyn Located> {
        Box::new(GatedLocated { inner, gate: Some(Arc::clone(&self.gate)) })
    }
}

impl LedgerStore for GatedStore {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.inner.append(seq, record)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        self.gate.pass();
        self.inner.read(seq, out)
    }
    fn locate(&self, seqs: &[u64]) -> Result<Box<dyn Located>, StoreError> {
        Ok(self.gated(self.inner.locate(seqs)?))
    }
    fn locate_range(&self, range: Range<u64>) -> Result<Box<dyn Located>, StoreError> {
        Ok(self.gated(self.inner.locate_range(range)?))
    }
}

#[test]
fn a_read_held_inside_the_memory_store_lets_appends_and_commits_through() {
    let gate = Arc::new(Gate::default());
    // Chunks of a few records: the read finds sealed chunks and the open one.
    let store = GatedStore { inner: MemoryStore::with_chunk_bytes(600), gate: Arc::clone(&gate) };
    let ledger = Arc::new(Ledger::open(Box::new(store)).unwrap());
    for i in 0..5 {
        ledger.append(body("acme", GovernorKind::Quota, "q-1", format!("r{i}"))).unwrap();
    }
    ledger.commit().unwrap();
    for read in HELD_READS {
        reads_do_not_hold_up_appends(&ledger, &gate, read);
    }
}

/// One step of an interleaving.
#[derive(Clone, Debug)]
enum Op {
    /// A receipt of tenant `t`, kind `k`, resource `r`, with a reason of `pad` bytes (records
    /// of about 200 to 700 bytes: chunks and segments of a few).
    Append {
        t: u8,
        k: u8,
        r: u8,
        pad: u16,
    },
    Commit,
    Resource {
        t: u8,
        k: u8,
        r: u8,
    },
    /// `tenant_receipts_below`, `below` a fraction (in 256ths) of one past the head.
    Tenant {
        t: u8,
        k: Option<u8>,
        r: Option<u8>,
        below: u8,
    },
    /// A page after the `after`th receipt of the ledger (if any).
    Page {
        t: u8,
        after: Option<u8>,
        limit: u8,
        below: u8,
    },
    Verify,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u8, 0..2u8, 0..3u8, 0..500u16).prop_map(|(t, k, r, pad)| Op::Append { t, k, r, pad }),
        1 => Just(Op::Commit),
        2 => (0..3u8, 0..2u8, 0..3u8).prop_map(|(t, k, r)| Op::Resource { t, k, r }),
        2 => (0..3u8, prop::option::of(0..2u8), prop::option::of(0..3u8), any::<u8>())
            .prop_map(|(t, k, r, below)| Op::Tenant { t, k, r, below }),
        2 => (0..3u8, prop::option::of(any::<u8>()), 0..6u8, any::<u8>())
            .prop_map(|(t, after, limit, below)| Op::Page { t, after, limit, below }),
        1 => Just(Op::Verify),
    ]
}

const KINDS: [GovernorKind; 2] = [GovernorKind::Quota, GovernorKind::Billing];

fn tenant(t: u8) -> TenantId {
    TenantId::new(&format!("t{t}")).unwrap()
}

fn resource(r: u8) -> ResourceId {
    ResourceId::new(&format!("r{r}")).unwrap()
}

/// A receipt as the model keeps it: (seq, tenant, kind, resource, reason).
type Seen = (u64, u8, usize, u8, String);

/// What a read returned, as the model keeps receipts.
fn seen(receipts: &[Receipt]) -> Vec<Seen> {
    receipts
        .iter()
        .map(|r| {
            let t = r.body.tenant.as_str()[1..].parse().unwrap();
            let k = KINDS.iter().position(|&k| k == r.body.governor).unwrap();
            let res = r.body.resource.as_str()[1..].parse().unwrap();
            (r.seq, t, k, res, r.body.reason.clone())
        })
        .collect()
}

/// Runs `ops` against `ledger` and checks every read against a model of what was appended.
/// Returns the model.
fn run(ledger: &Ledger, ops: &[Op]) -> Result<Vec<Seen>, TestCaseError> {
    let mut model: Vec<Seen> = Vec::new();
    for op in ops {
        let head = model.len() as u64;
        let bound = |below: u8| (head + 1) * u64::from(below) / 255;
        match *op {
            Op::Append { t, k, r, pad } => {
                let reason = "x".repeat(usize::from(pad));
                let k = usize::from(k);
                let at = ledger
                    .append(body(&format!("t{t}"), KINDS[k], &format!("r{r}"), reason.clone()))
                    .unwrap();
                prop_assert_eq!(at.seq, head);
                model.push((at.seq, t, k, r, reason));
            }
            Op::Commit => {
                prop_assert_eq!(ledger.commit().unwrap(), head);
            }
            Op::Resource { t, k, r } => {
                let got = ledger.resource_receipts(&tenant(t), KINDS[usize::from(k)], &resource(r));
                let want: Vec<Seen> = model
                    .iter()
                    .filter(|m| (m.1, m.2, m.3) == (t, usize::from(k), r))
                    .cloned()
                    .collect();
                prop_assert_eq!(seen(&got.unwrap()), want, "{:?}", op);
            }
            Op::Tenant { t, k, r, below } => {
                let below = bound(below);
                let kind = k.map(|k| KINDS[usize::from(k)]);
                let res = r.map(resource);
                let got = ledger.tenant_receipts_below(&tenant(t), kind, res.as_ref(), below);
                let want: Vec<Seen> = model
                    .iter()
                    .filter(|m| m.1 == t && m.0 < below)
                    .filter(|m| k.is_none_or(|k| m.2 == usize::from(k)))
                    .filter(|m| r.is_none_or(|r| m.3 == r))
                    .cloned()
                    .collect();
                prop_assert_eq!(seen(&got.unwrap()), want, "{:?}", op);
            }
            Op::Page { t, after, limit, below } => {
                let after = after.map(|a| u64::from(a) * head / 255);
                let below = bound(below);
                let (got, next) = ledger
                    .tenant_receipts_page_below(&tenant(t), after, usize::from(limit), below)
                    .unwrap();
                let all: Vec<Seen> = model
                    .iter()
                    .filter(|m| m.1 == t && after.is_none_or(|a| m.0 > a) && m.0 < below)
                    .cloned()
                    .collect();
                let limit = usize::from(limit).max(1);
                let want = all.get(..limit.min(all.len())).unwrap_or_default();
                prop_assert_eq!(seen(&got), want.to_vec(), "{:?}", op);
                let more = all.len() > limit;
                prop_assert_eq!(next, more.then(|| want.last().map(|m| m.0)).flatten(), "{:?}", op);
            }
            Op::Verify => {
                prop_assert_eq!(ledger.verify().unwrap().next_seq, head);
            }
        }
    }
    Ok(model)
}

/// Every read of the model's receipts, after the run: each resource, each tenant.
fn check_all(ledger: &Ledger, model: &[Seen]) -> Result<(), TestCaseError> {
    prop_assert_eq!(ledger.verify().unwrap().next_seq, model.len() as u64);
    for t in 0..3 {
        let got = ledger.tenant_receipts(&tenant(t), None, None).unwrap();
        let want: Vec<Seen> = model.iter().filter(|m| m.1 == t).cloned().collect();
        prop_assert_eq!(seen(&got), want);
        for (k, r) in (0..2).flat_map(|k| (0..3).map(move |r| (k, r))) {
            let got = ledger.resource_receipts(&tenant(t), KINDS[k], &resource(r)).unwrap();
            let want: Vec<Seen> =
                model.iter().filter(|m| (m.1, m.2, m.3) == (t, k, r)).cloned().collect();
            prop_assert_eq!(seen(&got), want);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Memory chunks of 1 500 bytes (one to seven records), sealed as appends go, read with
    /// the open chunk's records copied.
    #[test]
    fn reads_see_exactly_what_was_appended_in_memory(ops in prop::collection::vec(op(), 1..80)) {
        let ledger = Ledger::open(Box::new(MemoryStore::with_chunk_bytes(1_500))).unwrap();
        let model = run(&ledger, &ops)?;
        check_all(&ledger, &model)?;
    }

    /// Segments of 2 000 bytes on the real filesystem: frames read from the files through the
    /// store's own handles, several per positioned read (and windows smaller than that in
    /// tests), the writer's buffer copied; then the directory reopened and read again.
    #[test]
    fn reads_see_exactly_what_was_appended_in_segments(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let options = SegmentOptions { segment_bytes: 2_000, ..SegmentOptions::default() };
        let (store, _) = SegmentStore::open(dir.path(), options).unwrap();
        let ledger = Ledger::open(Box::new(store)).unwrap();
        let model = run(&ledger, &ops)?;
        check_all(&ledger, &model)?;
        ledger.commit().unwrap();
        ledger.close();
        drop(ledger);
        let (reopened, _) = Ledger::open_dir(dir.path(), options).unwrap();
        check_all(&reopened, &model)?;
    }
}

/// Appends to four resources of two tenants on one thread while another reads, and checks
/// that every read returns a prefix of what is appended: each resource's receipts in order,
/// numbered 0, 1, 2, ..., and pages of one tenant only.
fn reads_during_appends_are_consistent(ledger: &Arc<Ledger>) {
    const N: u64 = 600;
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let writer = {
        let (ledger, done, start) = (Arc::clone(ledger), Arc::clone(&done), Arc::clone(&start));
        std::thread::spawn(move || {
            start.wait();
            for i in 0..N {
                let (t, r) = (i % 2, i % 4);
                let reason = "x".repeat((i * 37 % 400) as usize);
                ledger
                    .append(body(&format!("t{t}"), GovernorKind::Quota, &format!("r{r}"), reason))
                    .unwrap();
                if i % 25 == 24 {
                    ledger.commit().unwrap();
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    start.wait();
    let mut reads = 0u32;
    loop {
        let finished = done.load(Ordering::Acquire);
        for r in 0..4u8 {
            let t = r % 2;
            let got =
                ledger.resource_receipts(&tenant(t), GovernorKind::Quota, &resource(r)).unwrap();
            let seqs: Vec<u64> = got.iter().map(|x| x.seq).collect();
            let want: Vec<u64> = (0..seqs.len() as u64).map(|j| j * 4 + u64::from(r)).collect();
            assert_eq!(seqs, want, "resource r{r}");
            assert!(got.iter().zip(0..).all(|(x, j)| x.body.resource_seq == j));
        }
        let (page, _) = ledger.tenant_receipts_page(&tenant(1), Some(3), 50).unwrap();
        assert!(page.iter().all(|x| x.body.tenant.as_str() == "t1" && x.seq > 3 && x.seq % 2 == 1));
        assert!(page.windows(2).all(|w| w[1].seq == w[0].seq + 2));
        reads += 1;
        if finished {
            break;
        }
    }
    writer.join().unwrap();
    assert!(reads > 0);
    assert_eq!(ledger.verify().unwrap().next_seq, N);
}

#[test]
fn reads_during_appends_see_a_prefix_in_memory_and_in_segments() {
    let memory = Arc::new(Ledger::open(Box::new(MemoryStore::with_chunk_bytes(2_000))).unwrap());
    reads_during_appends_are_consistent(&memory);
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentOptions { segment_bytes: 5_000, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir.path(), options).unwrap();
    let durable = Arc::new(Ledger::open(Box::new(store)).unwrap());
    reads_during_appends_are_consistent(&durable);
}

#[test]
fn a_cursor_walks_a_tenants_receipts_once_and_never_another_tenants() {
    let ledger = Ledger::in_memory();
    // Three tenants interleaved unevenly: acme has three receipts in five.
    let mut acme = Vec::new();
    for i in 0..2_000u64 {
        let t = ["acme", "globex", "acme", "initech", "acme"][(i % 5) as usize];
        let at = ledger.append(body(t, GovernorKind::Quota, "q", String::new())).unwrap();
        if t == "acme" {
            acme.push(at.seq);
        }
    }
    assert!(acme.len() > TENANT_PAGE_MAX, "enough for a page cut at the maximum");
    let id = TenantId::new("acme").unwrap();
    for limit in [1, 2, 7, 100, TENANT_PAGE_MAX, TENANT_PAGE_MAX + 1, usize::MAX] {
        let mut walked = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = ledger.tenant_receipts_page(&id, cursor, limit).unwrap();
            assert!(page.iter().all(|r| r.body.tenant == id), "another tenant's receipt");
            assert!(!page.is_empty() && page.len() <= limit.min(TENANT_PAGE_MAX), "{limit}");
            walked.extend(page.iter().map(|r| r.seq));
            match next {
                Some(next) => {
                    assert_eq!(Some(next), walked.last().copied(), "the cursor is the page's last");
                    assert_eq!(
                        page.len(),
                        limit.min(TENANT_PAGE_MAX),
                        "only the last page is short"
                    );
                    cursor = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(walked, acme, "limit {limit}: each receipt once, in order");
    }
    // A limit of 0 is taken as 1; caught up, a page is empty and has no cursor.
    let (one, next) = ledger.tenant_receipts_page(&id, None, 0).unwrap();
    assert_eq!((one.len(), next), (1, Some(acme[0])));
    let last = *acme.last().unwrap();
    let (none, next) = ledger.tenant_receipts_page(&id, Some(last), 10).unwrap();
    assert_eq!((none.len(), next), (0, None));
    // A cursor need not be the tenant's own receipt: any sequence number will do.
    let (page, _) = ledger.tenant_receipts_page(&id, Some(acme[5] - 1), 1).unwrap();
    assert_eq!(page[0].seq, acme[5]);
    // Capped below a sequence number: the feed ends there, and says so.
    let below = acme[10];
    let (page, next) = ledger.tenant_receipts_page_below(&id, Some(acme[7]), 10, below).unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), acme[8..10]);
    assert_eq!(next, None);
    let unknown = TenantId::new("nobody").unwrap();
    assert_eq!(ledger.tenant_receipts_page(&unknown, None, 10).unwrap(), (Vec::new(), None));
}

#[test]
fn reads_go_on_in_batches_and_the_memory_store_holds_its_records_without_doubling() {
    // Reads are copied and located READ_BATCH at a time: more than one batch here.
    let ledger = Ledger::in_memory();
    let mut store = MemoryStore::with_chunk_bytes(4_096);
    let n = 40 * READ_BATCH as u64;
    for seq in 0..n {
        let receipt = ledger.append(body("acme", GovernorKind::Quota, "q", "y".repeat(300)));
        assert_eq!(receipt.unwrap().seq, seq);
    }
    let q = ResourceId::new("q").unwrap();
    let acme = TenantId::new("acme").unwrap();
    let replayed = ledger.resource_receipts(&acme, GovernorKind::Quota, &q).unwrap();
    assert_eq!(replayed.len() as u64, n);
    assert!(replayed.iter().zip(0..).all(|(r, i)| r.seq == i && r.body.resource_seq == i));
    // The store's heap: its records, a little slack per chunk, four bytes of offset per
    // record (a growing arena would hold up to twice its records).
    let mut record = Vec::new();
    for seq in 0..n {
        assert!(ledger.lock().store.read(seq, &mut record).unwrap());
        store.append(seq, &record).unwrap();
    }
    let held = store.bytes();
    let heap = store.heap_bytes();
    let chunks = held.div_ceil(4_096);
    assert!(heap >= held + 4 * n as usize, "heap {heap} must count every record");
    assert!(heap <= held + 8 * n as usize + chunks * (record.len() + 128), "heap {heap}, {held}");
}
