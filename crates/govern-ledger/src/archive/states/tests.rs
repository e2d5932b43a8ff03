//! Base-states files: written then read back by key and whole; absent keys; every damaged
//! byte and every cut refused, never wrong data; the writer's refusals; the fold's checks.

use std::path::{Path, PathBuf};

use govern_governors::{GovernorKind, Machine, ResourceId, TenantId};
use govern_receipt::{Receipt, ReplayError};
use sha2::{Digest as _, Sha256};

use super::props::{KEYS, Step, ledger};
use super::{
    BLOCK_BYTES, BaseState, BaseStates, Part, StateKey, StatesError, StatesFold, StatesWriter,
    fold_states, kind_pos, write_states,
};

fn key(tenant: &str, kind: GovernorKind, resource: &str) -> StateKey {
    StateKey {
        tenant: TenantId::new(tenant).unwrap(),
        kind,
        resource: ResourceId::new(resource).unwrap(),
    }
}

/// `n` entries in file order: tenants `t-00`.., every kind, resources `r-0`..; each state
/// its kind's initial machine, with `kind`-dependent counts.
fn entries(n: usize) -> Vec<(StateKey, BaseState)> {
    let mut out: Vec<(StateKey, BaseState)> = (0..n)
        .map(|i| {
            let kind = GovernorKind::ALL[i % GovernorKind::ALL.len()];
            let k = key(&format!("t-{:02}", i / 23), kind, &format!("r-{}", i % 7));
            let state = Machine::new(kind).encode_state().unwrap();
            (k, BaseState { count: (i % 5 + 1) as u64, state })
        })
        .collect();
    out.sort_by(|a, b| a.0.order().cmp(&b.0.order()));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Writes `entries` (their counts' sum as the boundary) to `dir/name`.
fn write(dir: &Path, name: &str, entries: &[(StateKey, BaseState)]) -> super::StatesWritten {
    let boundary = entries.iter().map(|(_, s)| s.count).sum();
    let mut w = StatesWriter::create(&dir.join(name), boundary).unwrap();
    for (k, s) in entries {
        w.push(&k.tenant, k.kind, &k.resource, s.count, &s.state).unwrap();
    }
    w.finish().unwrap()
}

fn all(states: &BaseStates) -> Result<Vec<(StateKey, BaseState)>, StatesError> {
    let mut out = Vec::new();
    states.for_each(|k, s| {
        out.push((k, s));
        Ok::<(), StatesError>(())
    })?;
    Ok(out)
}

fn get(states: &BaseStates, k: &StateKey) -> Result<Option<BaseState>, StatesError> {
    states.get(&k.tenant, k.kind, &k.resource)
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_entry_written_is_read_back_by_key_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let entries = entries(300);
    let written = write(dir.path(), "base.states", &entries);
    let bytes = std::fs::read(dir.path().join("base.states")).unwrap();
    assert_eq!(written.bytes, bytes.len() as u64);
    assert_eq!(written.sha256.0, <[u8; 32]>::from(Sha256::digest(&bytes)));
    assert_eq!(files(dir.path()), ["base.states"], "no temporary file left");
    assert!(written.blocks > 3, "{written:?}: blocks of about {BLOCK_BYTES} bytes");

    let states = BaseStates::open(&dir.path().join("base.states")).unwrap();
    assert_eq!(states.len(), entries.len() as u64);
    assert_eq!(states.blocks(), written.blocks as usize);
    assert_eq!(states.boundary(), entries.iter().map(|(_, s)| s.count).sum::<u64>());
    for (k, s) in &entries {
        assert_eq!(get(&states, k).unwrap().as_ref(), Some(s), "{k}");
        assert_eq!(s.machine(k.kind).unwrap(), Machine::new(k.kind));
    }
    assert_eq!(all(&states).unwrap(), entries);
}

#[test]
fn absent_keys_are_none_before_between_and_after_the_entries() {
    let dir = tempfile::tempdir().unwrap();
    let entries = entries(120);
    write(dir.path(), "s", &entries);
    let states = BaseStates::open(&dir.path().join("s")).unwrap();
    let absent = [
        key("a", GovernorKind::Entitlement, "r-0"),
        key("t-00", GovernorKind::Entitlement, "r-00"),
        key("t-01", GovernorKind::Billing, "r-9"),
        key("t-02", GovernorKind::Saga, "zzz"),
        key("t-020", GovernorKind::Entitlement, "a"),
        key("zz", GovernorKind::Saga, "r-0"),
    ];
    for k in &absent {
        assert!(!entries.iter().any(|(e, _)| e == k), "{k} is absent");
        assert_eq!(get(&states, k).unwrap(), None, "{k}");
    }
    // The same ids under another kind than the entry's.
    let (first, _) = &entries[0];
    let other = GovernorKind::ALL.into_iter().find(|k| *k != first.kind).unwrap();
    let moved = StateKey { kind: other, ..first.clone() };
    if !entries.iter().any(|(e, _)| *e == moved) {
        assert_eq!(get(&states, &moved).unwrap(), None);
    }
}

#[test]
fn an_empty_file_has_boundary_0_and_no_entries() {
    let dir = tempfile::tempdir().unwrap();
    let written = write(dir.path(), "empty", &[]);
    assert_eq!((written.entries, written.blocks, written.boundary), (0, 0, 0));
    let states = BaseStates::open(&dir.path().join("empty")).unwrap();
    assert!(states.is_empty());
    assert_eq!(get(&states, &key("acme", GovernorKind::Tenant, "acme")).unwrap(), None);
    assert_eq!(all(&states).unwrap(), []);
}

/// The file at `path` is refused, or read only as `entries` say: `for_each` fails (every
/// byte is in some checked part) and each lookup fails or gives the right answer.
fn refused_or_right(
    path: &Path,
    entries: &[(StateKey, BaseState)],
    absent: &[StateKey],
    what: &str,
) {
    let Ok(states) = BaseStates::open(path) else { return };
    assert!(all(&states).is_err(), "{what}: a full read of a damaged file passed");
    for (k, s) in entries {
        if let Ok(found) = get(&states, k) {
            assert_eq!(found.as_ref(), Some(s), "{what}: {k}");
        }
    }
    for k in absent {
        if let Ok(found) = get(&states, k) {
            assert_eq!(found, None, "{what}: {k}");
        }
    }
}

#[test]
fn every_flipped_byte_and_every_cut_is_refused_never_read_as_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let entries = entries(60);
    write(dir.path(), "good", &entries);
    let good = std::fs::read(dir.path().join("good")).unwrap();
    assert!(good.len() > 2 * BLOCK_BYTES, "several blocks");
    let absent =
        [key("t-00", GovernorKind::Saga, "r-x"), key("t-01", GovernorKind::Billing, "r-9")];
    let bad: PathBuf = dir.path().join("bad");
    for i in 0..good.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[i] ^= mask;
            std::fs::write(&bad, &bytes).unwrap();
            refused_or_right(&bad, &entries, &absent, &format!("byte {i} ^ {mask:#x}"));
        }
    }
    for len in 0..good.len() {
        std::fs::write(&bad, &good[..len]).unwrap();
        assert!(BaseStates::open(&bad).is_err(), "cut to {len} bytes");
    }
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&bad, &longer).unwrap();
    assert!(BaseStates::open(&bad).is_err(), "a byte appended");
}

#[test]
fn a_missing_file_or_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = BaseStates::open(&dir.path().join("none")).unwrap_err();
    assert!(
        matches!(&missing, StatesError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    let err = BaseStates::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StatesError::Damaged { part: Part::File, field: "its type", .. }),
        "{err}"
    );
}

#[test]
fn damage_is_named_by_part_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let entries = entries(60);
    write(dir.path(), "good", &entries);
    let good = std::fs::read(dir.path().join("good")).unwrap();
    let path = dir.path().join("bad");
    let damaged = |at: usize| {
        let mut bytes = good.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
    };
    // The header's version byte: damage (its CRC), not another version.
    damaged(18);
    assert!(matches!(
        BaseStates::open(&path),
        Err(StatesError::Damaged { part: Part::Header, field: "its CRC", .. })
    ));
    damaged(good.len() - 1);
    assert!(matches!(
        BaseStates::open(&path),
        Err(StatesError::Damaged { part: Part::Trailer, .. })
    ));
    // A byte of the second block: open passes (blocks are read when asked for), a lookup in
    // that block names it, one in the first block is answered.
    let states = BaseStates::open(&dir.path().join("good")).unwrap();
    let fence = states.fence();
    let in_second = entries
        .iter()
        .position(|(k, _)| fence.partition_point(|(_, first)| first.order() <= k.order()) == 2);
    let in_second = in_second.unwrap();
    let offset = fence[1].0 as usize;
    damaged(offset + 3);
    let states = BaseStates::open(&path).unwrap();
    let err = get(&states, &entries[in_second].0).unwrap_err();
    assert!(
        matches!(
            err,
            StatesError::Damaged { part: Part::Block { index: 1, .. }, field: "its CRC", .. }
        ),
        "{err}"
    );
    assert_eq!(get(&states, &entries[0].0).unwrap().as_ref(), Some(&entries[0].1));
    assert!(all(&states).unwrap_err().to_string().contains("block 1"));
}

#[test]
fn the_writer_refuses_keys_out_of_order_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let state = |kind| Machine::new(kind).encode_state().unwrap();
    let (b, e) = (GovernorKind::Billing, GovernorKind::Entitlement);
    let mut w = StatesWriter::create(&path, 3).unwrap();
    let k1 = key("acme", e, "z");
    let k2 = key("acme", b, "a"); // a later kind sorts after, whatever the resource
    let k3 = key("acme", b, "b");
    w.push(&k2.tenant, k2.kind, &k2.resource, 1, &state(b)).unwrap();
    for (k, s) in [(&k2, state(b)), (&k1, state(e))] {
        let err = w.push(&k.tenant, k.kind, &k.resource, 1, &s).unwrap_err();
        assert!(matches!(err, StatesError::OutOfOrder { .. }), "{k}: {err}");
    }
    let before = key("aaa", b, "z");
    assert!(matches!(
        w.push(&before.tenant, b, &before.resource, 1, &state(b)),
        Err(StatesError::OutOfOrder { .. })
    ));
    w.push(&k3.tenant, k3.kind, &k3.resource, 2, &state(b)).unwrap();
    let written = w.finish().unwrap();
    assert_eq!(written.entries, 2);
    let states = BaseStates::open(&path).unwrap();
    let keys: Vec<StateKey> = all(&states).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [k2, k3]);
    assert!(kind_pos(e) < kind_pos(b));
    let mut w = StatesWriter::create(&path, 1).unwrap();
    w.push(&k1.tenant, k1.kind, &k1.resource, 1, &state(e)).unwrap();
    w.push(&k1.tenant, b, &k1.resource, 1, &state(b)).unwrap_err();
}

#[test]
fn the_writer_refuses_entries_the_format_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let k = key("acme", GovernorKind::Quota, "q-1");
    let quota = Machine::new(GovernorKind::Quota).encode_state().unwrap();
    let billing = Machine::new(GovernorKind::Billing).encode_state().unwrap();
    let mut w = StatesWriter::create(&path, 5).unwrap();
    let push = |w: &mut StatesWriter, count, state: &[u8]| {
        w.push(&k.tenant, k.kind, &k.resource, count, state)
    };
    assert!(matches!(push(&mut w, 0, &quota), Err(StatesError::BadEntry { .. })));
    assert!(matches!(push(&mut w, 1, &billing), Err(StatesError::BadEntry { .. })));
    assert!(matches!(push(&mut w, 1, &[]), Err(StatesError::BadEntry { .. })));
    let mut long = quota.clone();
    long.resize(govern_governors::limits::STATE_LEN_MAX + 1, 0);
    assert!(matches!(push(&mut w, 1, &long), Err(StatesError::BadEntry { .. })));
    assert!(matches!(
        push(&mut w, 6, &quota),
        Err(StatesError::Counts { counted: 6, boundary: 5 })
    ));
    push(&mut w, 4, &quota).unwrap();
    assert!(matches!(w.finish(), Err(StatesError::Counts { counted: 4, boundary: 5 })));
    assert!(files(dir.path()).is_empty(), "nothing left: {:?}", files(dir.path()));
    // Given up: the temporary file goes.
    let w = StatesWriter::create(&path, 5).unwrap();
    assert_eq!(files(dir.path()), ["s.tmp"]);
    drop(w);
    assert!(files(dir.path()).is_empty());
}

/// A fixed ledger of the generated kind, with receipts for every key.
fn fixed_ledger() -> Vec<Receipt> {
    let steps: Vec<Step> = (0..120).map(|i| (i % KEYS.len(), i / KEYS.len(), 3_600_000)).collect();
    ledger(&steps)
}

#[test]
fn the_fold_takes_exactly_the_records_between_the_boundaries() {
    let receipts = fixed_ledger();
    let n = receipts.len() as u64;
    let gap = fold_states(None, receipts[1..].iter().cloned(), n).unwrap_err();
    assert!(matches!(gap, StatesError::Records { expected: 0, found: 1, .. }), "{gap}");
    let short = fold_states(None, receipts[..10].iter().cloned(), 11).unwrap_err();
    assert!(matches!(short, StatesError::RecordsEnded { expected: 10, boundary: 11 }), "{short}");
    let long = fold_states(None, receipts[..11].iter().cloned(), 10).unwrap_err();
    assert!(matches!(long, StatesError::Records { expected: 10, found: 10, .. }), "{long}");

    let dir = tempfile::tempdir().unwrap();
    let states = fold_states(None, receipts[..20].iter().cloned(), 20).unwrap();
    write_states(&dir.path().join("one"), 20, &states).unwrap();
    let one = BaseStates::open(&dir.path().join("one")).unwrap();
    let before = StatesFold::new(Some(&one), 19).unwrap_err();
    assert!(matches!(before, StatesError::Boundary { boundary: 19, prior: 20 }), "{before}");
    let restart = fold_states(Some(&one), receipts[..30].iter().cloned(), 30).unwrap_err();
    assert!(matches!(restart, StatesError::Records { expected: 20, found: 0, .. }), "{restart}");
    let stacked = fold_states(Some(&one), receipts[20..].iter().cloned(), n).unwrap();
    assert_eq!(stacked, fold_states(None, receipts.iter().cloned(), n).unwrap());
}

#[test]
fn the_fold_checks_each_keys_numbering_and_states_and_is_unchanged_by_a_refusal() {
    let receipts = fixed_ledger();
    let n = receipts.len() as u64;
    // The first receipt of a key that already has one, and a key's very first receipt.
    let later = (1..receipts.len()).find(|&i| receipts[i].body.resource_seq > 0).unwrap();
    for i in [0, later] {
        let mut fold = StatesFold::new(None, n).unwrap();
        for r in &receipts[..i] {
            fold.push(r).unwrap();
        }
        let mut renumbered = receipts[i].clone();
        renumbered.body.resource_seq += 1;
        let err = fold.push(&renumbered).unwrap_err();
        assert!(
            matches!(err, StatesError::Replay(ReplayError::ResourceSeq { .. })),
            "receipt {i}: {err}"
        );
        let mut misplaced = receipts[i].clone();
        misplaced.body.state_from = "nowhere".into();
        let err = fold.push(&misplaced).unwrap_err();
        assert!(matches!(err, StatesError::Replay(ReplayError::Step { .. })), "receipt {i}: {err}");
        for r in &receipts[i..] {
            fold.push(r).unwrap();
        }
        assert_eq!(fold.finish().unwrap(), fold_states(None, receipts.iter().cloned(), n).unwrap());
    }
}

#[test]
fn states_of_a_machine_under_another_kind_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut states = super::StatesMap::new();
    states.insert(
        (
            TenantId::new("acme").unwrap(),
            kind_pos(GovernorKind::Quota),
            ResourceId::new("q").unwrap(),
        ),
        (1, Machine::new(GovernorKind::Billing)),
    );
    let err = write_states(&dir.path().join("s"), 1, &states).unwrap_err();
    assert!(matches!(err, StatesError::BadEntry { .. }), "{err}");
    assert!(files(dir.path()).is_empty());
}
