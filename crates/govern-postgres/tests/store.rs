//! `PostgresStore` on a throwaway PostgreSQL cluster (`govern_postgres::testing::Cluster`):
//! records read back byte for byte, a runtime continued across restarts, the table refusing
//! changes, and a group that never committed never acknowledged. Each test starts its own
//! cluster; without PostgreSQL they pass with a notice unless `GOVERN_REQUIRE_POSTGRES=1`.

use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_ledger::{LedgerStore, StoreError};
use govern_postgres::testing::Cluster;
use govern_postgres::{PostgresStore, limits, schema};
use govern_runtime::Runtime;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn quota() -> ResourceQuota {
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 }
}

/// Record `seq`'s bytes: every byte value, lengths from 0 up.
fn record(seq: u64) -> Vec<u8> {
    let len = usize::try_from(seq % 300).expect("small");
    (0..len).map(|i| u8::try_from((seq as usize * 7 + i) % 256).expect("a byte")).collect()
}

fn append_all(store: &mut PostgresStore, range: std::ops::Range<u64>) {
    for seq in range {
        store.append(seq, &record(seq)).expect("append");
    }
}

#[test]
fn records_read_back_byte_identical_across_reopen_and_pages() {
    let Some(cluster) = Cluster::start_or_skip("records_read_back") else { return };
    let url = cluster.create_database("bytes").expect("a database");
    // More than the cache and one read page, in groups of several INSERTs.
    let n = limits::CACHE_RECORDS + limits::READ_PAGE as u64 + 77;
    let mut store = PostgresStore::open(&url).expect("open");
    assert_eq!(store.len(), 0);
    append_all(&mut store, 0..10);
    store.sync().expect("first group");
    append_all(&mut store, 10..n);
    store.sync().expect("second group");
    assert_eq!(store.durable(), n);
    let mut out = Vec::new();
    for seq in [0, 1, 9, 10, 299, n - 1] {
        assert!(store.read(seq, &mut out).expect("read"), "record {seq}");
        assert_eq!(out, record(seq), "record {seq}");
    }
    assert!(!store.read(n, &mut out).expect("read past the end"));
    drop(store);

    let mut store = PostgresStore::open(&url).expect("reopen");
    assert_eq!(store.len(), n, "len from max(seq)+1");
    let mut seen = 0;
    store
        .for_each(&mut |seq, bytes| {
            assert_eq!(seq, seen);
            assert_eq!(bytes, &record(seq)[..], "record {seq}");
            seen += 1;
            std::ops::ControlFlow::Continue(())
        })
        .expect("for_each");
    assert_eq!(seen, n);
    // Located reads: some from the table, some in memory (not yet committed), some absent.
    append_all(&mut store, n..n + 3);
    let seqs = [3, 1_500, n - 1, n, n + 2, n + 3];
    let mut located = store.locate(&seqs).expect("locate");
    for &want in &seqs {
        let (seq, bytes) = located.next_record().expect("a record");
        assert_eq!(seq, want);
        let bytes = bytes.expect("readable");
        if want < n + 3 {
            assert_eq!(bytes, Some(&record(want)[..]), "record {want}");
        } else {
            assert_eq!(bytes, None, "record {want} is absent");
        }
    }
    assert!(located.next_record().is_none());
    let mut range = store.locate_range(n - 5..n + 10).expect("locate_range");
    let mut got = Vec::new();
    while let Some((seq, bytes)) = range.next_record() {
        assert_eq!(bytes.expect("readable"), Some(&record(seq)[..]));
        got.push(seq);
    }
    assert_eq!(got, (n - 5..n + 3).collect::<Vec<_>>(), "cut at len");
    // Out of order is refused.
    assert_eq!(store.append(n, b"x"), Err(StoreError::OutOfOrder { expected: n + 3, found: n }));
    // The schema's version is recorded.
    let version =
        cluster.psql("bytes", "SELECT max(version) FROM govern_schema_version").expect("psql");
    assert_eq!(version, schema::SCHEMA_VERSION.to_string());
}

#[test]
fn the_table_refuses_update_delete_and_truncate() {
    let Some(cluster) = Cluster::start_or_skip("refuses_changes") else { return };
    let url = cluster.create_database("appendonly").expect("a database");
    let mut store = PostgresStore::open(&url).expect("open");
    append_all(&mut store, 0..5);
    store.sync().expect("commit");
    for sql in [
        "UPDATE govern_receipts SET record = '\\x00' WHERE seq = 1",
        "DELETE FROM govern_receipts WHERE seq = 4",
        "TRUNCATE govern_receipts",
    ] {
        let err = cluster.psql("appendonly", sql).expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        cluster.psql("appendonly", "SELECT count(*) FROM govern_receipts").expect("count"),
        "5"
    );
    let mut out = Vec::new();
    drop(store);
    let store = PostgresStore::open(&url).expect("reopen");
    assert!(store.read(1, &mut out).expect("read"));
    assert_eq!(out, record(1), "the update did not happen");
}

#[test]
fn a_group_that_never_committed_is_not_acknowledged() {
    let Some(mut cluster) = Cluster::start_or_skip("uncommitted_group") else { return };
    let url = cluster.create_database("crash").expect("a database");
    let mut store = PostgresStore::open(&url).expect("open");
    append_all(&mut store, 0..20);
    store.sync().expect("the first group commits");
    append_all(&mut store, 20..50);
    let job = store.begin_sync().expect("begin");
    assert_eq!(job.upto(), 50);
    // PostgreSQL crashes before the group's transaction: the job fails, nothing is durable.
    cluster.stop().expect("stop");
    let upto = job.upto();
    let result = job.run();
    assert!(matches!(result, Err(StoreError::Io(_))), "{result:?}");
    assert!(store.end_sync(upto, result).is_err(), "the commit is reported failed");
    assert_eq!(store.durable(), 20, "the group is not acknowledged");
    drop(store);

    cluster.start_again().expect("restart");
    let store = PostgresStore::open(&url).expect("reopen");
    assert_eq!(store.len(), 20, "only the committed group is in the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_on_postgres_continues_its_chain_after_a_restart() {
    let Some(mut cluster) = Cluster::start_or_skip("runtime_continues") else { return };
    let url = cluster.create_database("ledger").expect("a database");
    let acme = TenantId::new("acme").expect("id");
    let sub_id = ResourceId::new("sub-1").expect("id");

    let store = PostgresStore::open(&url).expect("open");
    let rt = Runtime::builder().epoch(T0).store(Box::new(store)).start().await.expect("start");
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.expect("provision");
    let sub = h.subscription(&acme, &sub_id);
    sub.start_trial("pro", 14, "signed up").await.expect("trial");
    let activated = sub.activate(None, "converted").await.expect("activate");
    assert!(h.ledger_status().durable > activated.seq, "acknowledged once durable");
    let first_head = rt.shutdown().await.expect("shutdown");
    let rows = cluster.psql("ledger", "SELECT count(*) FROM govern_receipts").expect("count");
    assert_eq!(rows, first_head.next_seq.to_string(), "every receipt is a row");

    // A new runtime on the same database: the governor comes back by replay and the chain goes on.
    let store = PostgresStore::open(&url).expect("reopen");
    let rt = Runtime::builder().epoch(T0).store(Box::new(store)).start().await.expect("restart");
    let h = rt.handle();
    let sub = h.subscription(&acme, &sub_id);
    let paused = sub.pause("holiday").await.expect("the active subscription pauses");
    assert_eq!(paused.seq, first_head.next_seq, "the chain continues where it stopped");
    let head = h.verify().expect("the chain verifies");
    assert_eq!(head.next_seq, first_head.next_seq + 1);

    // PostgreSQL goes away: the next command is refused as ledger_unavailable, not acknowledged.
    cluster.stop().expect("stop");
    let err = sub.resume("back").await.expect_err("no database, no acknowledgement");
    assert_eq!(err.code(), "ledger_unavailable", "{err}");
    assert!(rt.shutdown().await.is_err(), "shutdown reports the failure");
    cluster.start_again().expect("restart");
    let store = PostgresStore::open(&url).expect("reopen after the crash");
    assert_eq!(store.len(), head.next_seq, "the refused command left no receipt");
}

#[test]
fn a_read_only_store_creates_nothing_and_refuses_appends() {
    let Some(cluster) = Cluster::start_or_skip("a_read_only_store") else { return };
    let url = cluster.create_database("ro").expect("a database");
    let err = PostgresStore::open_read_only(&url).expect_err("no schema yet");
    assert!(err.to_string().contains("no govern ledger in this database"), "{err}");
    let tables = cluster
        .psql("ro", "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'govern%'")
        .expect("psql");
    assert_eq!(tables, "0", "opening read-only created tables");

    let mut store = PostgresStore::open(&url).expect("open");
    append_all(&mut store, 0..5);
    store.sync().expect("commit");
    drop(store);
    let mut reader = PostgresStore::open_read_only(&url).expect("open read-only");
    assert_eq!(reader.len(), 5);
    assert_eq!(reader.rows().expect("count"), 5);
    let mut out = Vec::new();
    assert!(reader.read(4, &mut out).expect("read"));
    assert_eq!(out, record(4));
    let refused = reader.append(5, &record(5)).expect_err("read-only");
    assert!(refused.to_string().contains("read-only"), "{refused}");
    assert_eq!(cluster.psql("ro", "SELECT count(*) FROM govern_receipts").expect("psql"), "5");
}
