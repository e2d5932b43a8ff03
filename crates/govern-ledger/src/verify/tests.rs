//! Verification of a data directory: a good ledger verifies; damage anywhere is named.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::{ChainError, ChainVerifier, Digest, Head, ReceiptBody};

use super::verify_clean;
use super::{VerifyError, VerifyReport, verify_by_stages, verify_dir, verify_dir_roots};
use crate::ledger::Ledger;
use crate::merkle::{LeafStretch, MerkleFrontier, MerkleTree, leaf_hash_bytes};
use crate::segment::{SegmentOptions, SegmentStore};

fn body(i: u64) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new("acme").unwrap(),
        governor: GovernorKind::Quota,
        resource: ResourceId::new(&format!("q-{}", i % 3)).unwrap(),
        resource_seq: 0,
        command: Cow::Borrowed("check_quota"),
        state_from: Cow::Borrowed("normal"),
        state_to: Cow::Borrowed("normal"),
        reason: "metering".into(),
        args: BTreeMap::from([("usage".to_owned(), i.to_string())]),
        metadata: BTreeMap::new(),
    }
}

/// A ledger of `n` receipts in small segments under a fresh temporary directory.
fn ledger_dir(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentOptions { segment_bytes: 1_024, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir.path(), options).unwrap();
    let ledger = Ledger::open(Box::new(store)).unwrap();
    for i in 0..n {
        ledger.append(body(i)).unwrap();
    }
    ledger.sync().unwrap();
    dir
}

#[test]
fn a_good_ledger_verifies_with_its_root() {
    let dir = ledger_dir(20);
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.receipts, 20);
    assert!(report.segments > 3, "{} segments", report.segments);
    assert_eq!(report.tree.len(), 20);
    assert_eq!(report.root, report.tree.root());
    assert!(report.torn.is_none());
}

#[test]
fn verification_changes_nothing_and_a_missing_ledger_is_an_error() {
    let dir = ledger_dir(5);
    let before: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    verify_dir(dir.path()).unwrap();
    let after: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(before, after);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(verify_dir(empty.path()), Err(VerifyError::Open(_))));
    assert!(!empty.path().join("segments").exists(), "verification created nothing");
}

#[test]
fn a_flipped_byte_is_named_by_its_sequence_number() {
    let dir = ledger_dir(12);
    let files = segment_files(dir.path());
    // Damage the middle of the second segment's first frame payload.
    let victim = &files[1];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let first_seq_of_second: u64 = victim.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let err = verify_dir(dir.path()).unwrap_err();
    assert_eq!(err.seq(), Some(first_seq_of_second), "{err}");
}

/// The segment files of `dir`, in order (their index files aside).
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// The first sequence number of a segment file.
fn first_seq(file: &std::path::Path) -> u64 {
    file.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Changes a byte of the first receipt's preimage in segment `file` and fixes the frame's
/// checksums, so that the frames check and only the chain catches it.
fn tamper_first_receipt(file: &std::path::Path) {
    let found = crate::segment::rewrite_payload(file, first_seq(file), |payload| {
        // Before the stored hash and the previous hash: inside the receipt's body.
        let at = payload.len() - 80;
        payload[at] ^= 0x01;
    });
    assert!(found, "{}", file.display());
}

#[test]
fn a_tampered_receipt_with_valid_frames_is_a_chain_error_naming_it() {
    let dir = ledger_dir(20);
    let files = segment_files(dir.path());
    assert!(files.len() > 3, "{} segments", files.len());
    let victim = &files[2];
    tamper_first_receipt(victim);
    let err = verify_dir(dir.path()).unwrap_err();
    assert!(
        matches!(err, VerifyError::Chain(ChainError::HashMismatch { seq, .. }) if seq == first_seq(victim)),
        "{err}"
    );
}

#[test]
fn a_damaged_frame_is_reported_before_an_earlier_chain_error() {
    let dir = ledger_dir(20);
    let files = segment_files(dir.path());
    tamper_first_receipt(&files[1]);
    let victim = &files[3];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let err = verify_dir(dir.path()).unwrap_err();
    assert!(matches!(err, VerifyError::Open(_)), "{err}");
    assert_eq!(err.seq(), Some(first_seq(victim)), "{err}");
}

#[test]
fn a_torn_tail_is_reported_and_the_receipts_before_it_verify() {
    let dir = ledger_dir(20);
    let files = segment_files(dir.path());
    let last = files.last().unwrap();
    let full = std::fs::read(last).unwrap();
    std::fs::write(last, &full[..full.len() - 7]).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.receipts, 19);
    assert_eq!(report.tree.len(), 19);
    assert_eq!(report.torn.as_ref().map(|t| t.seq), Some(19));
    assert_eq!(std::fs::read(last).unwrap().len(), full.len() - 7, "nothing truncated");
}

/// A ledger of `n` receipts of `body_of` in segments of `segment_bytes` under `dir`.
fn write_ledger(
    dir: &std::path::Path,
    n: u64,
    segment_bytes: u64,
    body_of: impl Fn(u64) -> ReceiptBody,
) {
    let options = SegmentOptions { segment_bytes, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir, options).unwrap();
    let ledger = Ledger::open(Box::new(store)).unwrap();
    for i in 0..n {
        ledger.append(body_of(i)).unwrap();
    }
    ledger.sync().unwrap();
}

/// The fast path's report, which must be the reference path's in every field.
fn assert_same_report(dir: &std::path::Path) -> VerifyReport {
    let fast = verify_clean(dir).expect("a clean ledger takes the fast path");
    let reference = verify_by_stages(dir).unwrap();
    assert_eq!(fast.receipts, reference.receipts);
    assert_eq!(fast.segments, reference.segments);
    assert_eq!(fast.head, reference.head);
    assert_eq!(fast.root, reference.root);
    assert_eq!(fast.torn, reference.torn);
    assert_eq!(fast.tree.len(), reference.tree.len());
    let n = fast.tree.len();
    for size in [0, 1, 2, 3, n / 3, n / 2 + 1, n.saturating_sub(1), n] {
        assert_eq!(fast.tree.root_at(size), reference.tree.root_at(size), "size {size}");
        assert_eq!(
            fast.tree.consistency_proof(size, n),
            reference.tree.consistency_proof(size, n),
            "size {size}"
        );
        if size < n {
            assert_eq!(
                fast.tree.inclusion_proof(size, n),
                reference.tree.inclusion_proof(size, n),
                "index {size}"
            );
        }
    }
    // Keeping only the roots at some sizes: the same report, the same roots.
    let sizes: Vec<u64> = (0..=n.min(40)).chain([n / 3, n / 2 + 1, n - n / 7, n, n + 1]).collect();
    let roots = verify_dir_roots(dir, &sizes).unwrap();
    assert_eq!(roots.receipts, reference.receipts);
    assert_eq!(roots.segments, reference.segments);
    assert_eq!(roots.head, reference.head);
    assert_eq!(roots.root, reference.root);
    assert_eq!(roots.torn, reference.torn);
    for &size in &sizes {
        assert_eq!(roots.root_at(size), reference.tree.root_at(size).ok(), "size {size}");
    }
    fast
}

#[test]
fn the_fast_path_gives_the_reference_report_for_clean_ledgers() {
    // Small segments (one stretch each), and segments several stretches long, so that
    // frames straddle the reads.
    for (n, segment_bytes) in [(0, 1_024), (1, 1_024), (20, 1_024), (3_000, 400_000)] {
        let dir = tempfile::tempdir().unwrap();
        write_ledger(dir.path(), n, segment_bytes, body);
        let report = assert_same_report(dir.path());
        assert_eq!(report.receipts, n);
        let report = verify_dir(dir.path()).unwrap();
        assert_eq!(report.receipts, n);
    }
}

#[test]
fn the_fast_path_declines_damage_and_the_reference_path_names_it() {
    let dir = ledger_dir(20);
    let files = segment_files(dir.path());
    assert!(verify_clean(dir.path()).is_some());
    tamper_first_receipt(&files[2]);
    assert!(verify_clean(dir.path()).is_none(), "a tampered receipt is not clean");

    let dir = ledger_dir(20);
    let last = segment_files(dir.path()).pop().unwrap();
    let full = std::fs::read(&last).unwrap();
    std::fs::write(&last, &full[..full.len() - 7]).unwrap();
    assert!(verify_clean(dir.path()).is_none(), "a torn tail is for the reference path");

    let dir = ledger_dir(5);
    std::fs::write(dir.path().join("segments").join("stray.txt"), b"x").unwrap();
    assert!(verify_clean(dir.path()).is_none());
    assert!(matches!(verify_dir(dir.path()), Err(VerifyError::Open(_))));

    let empty = tempfile::tempdir().unwrap();
    assert!(verify_clean(empty.path()).is_none());
}

#[test]
fn a_link_broken_between_stretches_is_caught_and_named() {
    // Two chains of receipts of equal sizes, so their segments start at the same sequence
    // numbers: segments of one followed by segments of the other are internally sound,
    // and only the link into the first foreign segment is broken.
    let other = |i: u64| ReceiptBody { tenant: TenantId::new("acmf").unwrap(), ..body(i) };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_ledger(a.path(), 3_000, 300_000, body);
    write_ledger(b.path(), 3_000, 300_000, other);
    let (files_a, files_b) = (segment_files(a.path()), segment_files(b.path()));
    assert_eq!(
        files_a.iter().map(|f| f.file_name()).collect::<Vec<_>>(),
        files_b.iter().map(|f| f.file_name()).collect::<Vec<_>>()
    );
    assert!(files_a.len() >= 3, "{} segments", files_a.len());
    std::fs::copy(&files_b[2], &files_a[2]).unwrap();
    assert!(verify_clean(a.path()).is_none());
    let err = verify_dir(a.path()).unwrap_err();
    assert!(
        matches!(err, VerifyError::Chain(ChainError::BrokenLink { seq, .. }) if seq == first_seq(&files_a[2])),
        "{err}"
    );
    // Keeping only roots: the same error.
    let roots_err = verify_dir_roots(a.path(), &[1, 3_000]).unwrap_err();
    assert_eq!(roots_err.to_string(), err.to_string());

    // A torn tail: the fast path declines, the reference path reports it with the roots.
    let dir = ledger_dir(20);
    let last = segment_files(dir.path()).pop().unwrap();
    let full = std::fs::read(&last).unwrap();
    std::fs::write(&last, &full[..full.len() - 7]).unwrap();
    let (report, roots) =
        (verify_dir(dir.path()).unwrap(), verify_dir_roots(dir.path(), &[0, 5, 19, 20]).unwrap());
    assert!(roots.torn.is_some());
    assert_eq!(
        (roots.receipts, roots.root, &roots.torn),
        (report.receipts, report.root, &report.torn)
    );
    for size in [0, 5, 19, 20] {
        assert_eq!(roots.root_at(size), report.tree.root_at(size).ok(), "size {size}");
    }
}

#[test]
fn a_stretch_verifies_from_its_first_records_prev_hash() {
    let dir = ledger_dir(10);
    let (store, _) = SegmentStore::open(
        dir.path(),
        SegmentOptions { read_only: true, ..SegmentOptions::default() },
    )
    .unwrap();
    let mut records = Vec::new();
    store
        .for_each_record(|_, record| {
            records.push(record.to_vec());
            Ok::<_, crate::ledger::StoreError>(())
        })
        .unwrap();
    let mut whole = ChainVerifier::new();
    let hashes: Vec<_> = records.iter().map(|r| whole.push_record(r).unwrap()).collect();
    // From receipt 4 on, knowing nothing of the receipts before.
    let prev = ChainVerifier::record_prev_hash(&records[4]).unwrap();
    assert_eq!(prev, hashes[3]);
    let mut stretch = ChainVerifier::resume(Head { next_seq: 4, last_hash: prev });
    for (record, hash) in records.iter().zip(&hashes).skip(4) {
        assert_eq!(stretch.push_record(record).unwrap(), *hash);
    }
    assert_eq!(stretch.head(), whole.head());
    assert_eq!(ChainVerifier::record_prev_hash(&[0u8; 63]), None);
}

#[test]
fn a_tree_built_from_stretches_is_the_pushed_tree() {
    // Stretches of every length from 0 to 9 leaves at every alignment, and long ones.
    let cuts: [&[u64]; 4] = [
        &[0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        &[3, 1, 4, 1, 5, 9, 2, 6],
        &[1],
        &[1_000, 4_096, 24, 5_000],
    ];
    for lengths in cuts {
        let n: u64 = lengths.iter().sum();
        let leaves: Vec<Digest> = (0..n).map(|i| leaf_hash_bytes(&i.to_be_bytes())).collect();
        let mut pushed = MerkleTree::new();
        let mut built = MerkleTree::new();
        let mut first = 0;
        for &len in lengths {
            let stretch = leaves[first as usize..(first + len) as usize].to_vec();
            assert!(built.append_stretch(LeafStretch::new(first, stretch)));
            for &leaf in &leaves[first as usize..(first + len) as usize] {
                pushed.push_leaf_hash(leaf);
            }
            first += len;
            assert_eq!(built.len(), first);
            assert_eq!(built.root(), pushed.root(), "after {first} leaves");
        }
        for size in 1..=n.min(40) {
            assert_eq!(built.root_at(size), pushed.root_at(size));
            assert_eq!(built.inclusion_proof(size - 1, n), pushed.inclusion_proof(size - 1, n));
            assert_eq!(built.consistency_proof(size, n), pushed.consistency_proof(size, n));
        }
    }
    // A stretch that does not start at the tree's end is refused.
    let mut tree = MerkleTree::new();
    assert!(!tree.append_stretch(LeafStretch::new(1, vec![Digest::ZERO])));
    assert!(tree.is_empty());
}

#[test]
fn a_frontier_built_from_stretches_gives_the_pushed_trees_roots() {
    // Stretches of every length from 0 to 9 leaves at every alignment, and long ones; the
    // frontier's root after every whole stretch and after every prefix of one is the full
    // tree's root at that size.
    let cuts: [&[u64]; 5] = [
        &[0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        &[3, 1, 4, 1, 5, 9, 2, 6],
        &[1],
        &[16, 16, 32, 7, 64, 33],
        &[1_000, 4_096, 24, 5_000, 1_023],
    ];
    for lengths in cuts {
        let n: u64 = lengths.iter().sum();
        let leaves: Vec<Digest> = (0..n).map(|i| leaf_hash_bytes(&i.to_be_bytes())).collect();
        let mut pushed = MerkleTree::new();
        for &leaf in &leaves {
            pushed.push_leaf_hash(leaf);
        }
        let mut frontier = MerkleFrontier::new();
        let mut first = 0;
        for &len in lengths {
            let stretch =
                LeafStretch::new(first, leaves[first as usize..(first + len) as usize].to_vec());
            // Every prefix for short stretches, a spread of them for long ones.
            let step = (len / 97).max(1);
            for prefix in (0..=len).step_by(step as usize).chain([len]) {
                let mut partial = frontier.clone();
                assert!(partial.append_stretch_prefix(&stretch, prefix));
                assert_eq!(partial.len(), first + prefix);
                assert_eq!(
                    Ok(partial.root()),
                    pushed.root_at(first + prefix),
                    "at {}",
                    first + prefix
                );
            }
            assert!(!frontier.clone().append_stretch_prefix(&stretch, len + 1));
            assert!(frontier.append_stretch_prefix(&stretch, len));
            first += len;
        }
        assert_eq!(frontier.root(), pushed.root());
    }
    // A stretch that does not start at the frontier's end is refused.
    let mut frontier = MerkleFrontier::new();
    assert!(!frontier.append_stretch_prefix(&LeafStretch::new(1, vec![Digest::ZERO]), 1));
    assert!(frontier.is_empty());
}

/// Verifies data directory `dir` every way there is (the fast path must decline; both
/// entry points and the reference path must give the same error) and returns the error.
fn every_way_fails(dir: &std::path::Path, what: &str) -> ChainError {
    let err = match verify_dir(dir) {
        Err(VerifyError::Chain(e)) => e,
        Err(other) => panic!("{what}: expected a chain error, got {other}"),
        Ok(report) => panic!("{what}: verified {} receipts", report.receipts),
    };
    assert!(verify_clean(dir).is_none(), "{what}: the fast path took it as clean");
    let roots = verify_dir_roots(dir, &[1, 5]).map(|r| r.receipts).unwrap_err();
    assert_eq!(roots.to_string(), err.to_string(), "{what}");
    let stages = verify_by_stages(dir).map(|r| r.receipts).unwrap_err();
    assert_eq!(stages.to_string(), err.to_string(), "{what}");
    err
}

#[test]
fn a_record_that_hashes_but_does_not_decode_is_malformed_at_its_receipt() {
    use super::crafted;
    for (what, spoil) in crafted::undecodable() {
        // Small segments, and a ledger of a few stretches with the bad record deep inside.
        for (n, bad, segment_bytes) in [(12, 7, 1_024), (3_000, 2_222, 400_000)] {
            let mut fields = crafted::good_fields(n);
            spoil(&mut fields[bad]);
            let dir = tempfile::tempdir().unwrap();
            crafted::write_dir(dir.path(), segment_bytes, &fields);
            let err = every_way_fails(dir.path(), what);
            assert!(
                matches!(err, ChainError::Malformed { seq, .. } if seq == bad as u64),
                "{what}: {err}"
            );
            assert_eq!(err.kind(), "malformed", "{what}");
        }
    }
}

#[test]
fn the_crafted_records_verify_when_nothing_is_spoiled() {
    use super::crafted;
    for (n, segment_bytes) in [(12, 1_024), (3_000, 400_000)] {
        let dir = tempfile::tempdir().unwrap();
        crafted::write_dir(dir.path(), segment_bytes, &crafted::good_fields(n));
        assert_eq!(assert_same_report(dir.path()).receipts, n);
    }
}

/// The fields of a `resource_seq` break, and where it is reported: (tenant, governor,
/// resource, expected, found) at `seq`.
fn resource_seq_gap(err: &ChainError) -> Option<(u64, &str, GovernorKind, &str, u64, u64)> {
    match err {
        ChainError::ResourceSeqGap { seq, tenant, governor, resource, expected, found } => {
            Some((*seq, tenant.as_str(), *governor, resource.as_str(), *expected, *found))
        }
        _ => None,
    }
}

#[test]
fn a_break_in_a_resources_numbering_is_named_at_its_receipt() {
    use super::crafted;
    // Receipt 7 is q-1's third (resource_seq 2): skipped, repeated; receipt 1, q-1's first,
    // numbered 1; and the same deep inside a ledger of a few stretches.
    type Spoil = fn(&mut [crafted::Fields]);
    let cases: [(&str, u64, Spoil, u64, u64, u64); 5] = [
        ("a gap", 12, |f| f[7].resource_seq = 3, 7, 2, 3),
        ("a repeat", 12, |f| f[7].resource_seq = 1, 7, 2, 1),
        ("a first receipt not numbered 0", 12, |f| f[1].resource_seq = 1, 1, 0, 1),
        ("a gap deep inside", 3_000, |f| f[2_222].resource_seq += 1, 2_222, 740, 741),
        ("a repeat deep inside", 3_000, |f| f[2_222].resource_seq -= 1, 2_222, 740, 739),
    ];
    for (what, n, spoil, seq, expected, found) in cases {
        let mut fields = crafted::good_fields(n);
        spoil(&mut fields);
        let dir = tempfile::tempdir().unwrap();
        crafted::write_dir(dir.path(), if n > 100 { 400_000 } else { 1_024 }, &fields);
        let err = every_way_fails(dir.path(), what);
        let resource = format!("q-{}", seq % 3);
        assert_eq!(
            resource_seq_gap(&err),
            Some((seq, "acme", GovernorKind::Quota, resource.as_str(), expected, found)),
            "{what}: {err}"
        );
        assert_eq!((err.seq(), err.kind()), (seq, "resource_seq_gap"), "{what}");
        assert!(err.to_string().contains(&format!("receipt {seq}")), "{err}");
    }
}

#[test]
fn a_resources_numbering_is_followed_across_stretches() {
    use super::crafted;
    // Resource "x" has receipts 5 and 2 900 only, in different stretches: numbered 0 and 1
    // it verifies (by the fast path), 0 and 2 is a gap that only joining the stretches sees.
    for (second, ok) in [(1, true), (2, false), (0, false)] {
        let mut fields = crafted::good_fields(3_000);
        fields[5] = crafted::Fields::good("x", 0);
        fields[2_900] = crafted::Fields::good("x", second);
        // The receipts replaced were of q-2 and q-2's numbering goes on from them.
        for (i, f) in fields.iter_mut().enumerate().filter(|(_, f)| f.resource == b"q-2") {
            let skipped = u64::from(i > 5) + u64::from(i > 2_900);
            f.resource_seq = (i as u64 / 3) - skipped;
        }
        let dir = tempfile::tempdir().unwrap();
        crafted::write_dir(dir.path(), 400_000, &fields);
        if ok {
            assert_eq!(assert_same_report(dir.path()).receipts, 3_000);
            continue;
        }
        let err = every_way_fails(dir.path(), "x numbered across stretches");
        assert_eq!(
            resource_seq_gap(&err),
            Some((2_900, "acme", GovernorKind::Quota, "x", 1, second)),
            "{err}"
        );
    }
}

#[test]
fn any_store_verifies_as_its_data_directory_and_names_a_bad_record() {
    use crate::ledger::{LedgerStore, MemoryStore};
    let dir = ledger_dir(20);
    let by_dir = verify_dir(dir.path()).unwrap();
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir.path(), options).unwrap();
    let by_store = super::verify_store(&store).unwrap();
    assert_eq!((by_store.head, by_store.root), (by_dir.head, by_dir.root));
    assert_eq!(by_store.tree.root_at(7).unwrap(), by_dir.tree.root_at(7).unwrap());
    let roots = super::verify_store_roots(&store, &[7, 0, 20]).unwrap();
    assert_eq!((roots.head, roots.root), (by_dir.head, by_dir.root));
    assert_eq!(roots.root_at(7), Some(by_dir.tree.root_at(7).unwrap()));
    assert_eq!(roots.root_at(0), Some(crate::merkle::EMPTY_ROOT));
    assert_eq!(roots.root_at(20), Some(by_dir.root));

    // The same records in memory, one byte of receipt 9 changed: named.
    let mut records = Vec::new();
    store
        .for_each_record(|_, r| -> Result<(), crate::ledger::StoreError> {
            records.push(r.to_vec());
            Ok(())
        })
        .unwrap();
    let mut memory = MemoryStore::new();
    for (seq, r) in (0..).zip(&records) {
        let mut r = r.clone();
        if seq == 9 {
            r[30] ^= 1;
        }
        memory.append(seq, &r).unwrap();
    }
    let e = super::verify_store(&memory).unwrap_err();
    assert_eq!(e.seq(), Some(9), "{e}");
    let e = super::verify_store_roots(&memory, &[]).unwrap_err();
    assert_eq!(e.seq(), Some(9), "{e}");
}
