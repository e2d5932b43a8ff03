//! Signed checkpoints of a ledger on PostgreSQL (migration 3), on a throwaway cluster: a
//! runtime with a signer writes them at shutdown and at its interval, they verify against the
//! chain (signature, size, root of the first `size` receipts) in both forms, a repeat of a
//! size is kept once, the tables refuse changes, and each shard of a node keeps its own
//! series. Without PostgreSQL they pass with a notice unless `GOVERN_REQUIRE_POSTGRES=1`.

use std::time::Duration;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_ledger::checkpoint::{VerifyingKey, verify_checkpoint_text};
use govern_ledger::verify::verify_store;
use govern_ledger::{
    CheckpointSigner, CommitOptions, LedgerStore as _, SignedCheckpoint, verify_history,
};
use govern_postgres::testing::Cluster;
use govern_postgres::{Node, NodeConfig, PostgresStore, StoredCheckpoint, cluster};
use govern_runtime::Runtime;

mod support;
use support::provision;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn quota() -> ResourceQuota {
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 }
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[7; 32])
}

/// A runtime's builder on the one-process ledger in `url`, signing its checkpoints into the
/// database with [`signer`].
fn signing(url: &str) -> govern_runtime::RuntimeBuilder {
    let store = PostgresStore::open(url).expect("open");
    let checkpointer = store.checkpointer(signer()).expect("a checkpointer");
    Runtime::builder().epoch(T0).checkpoints(checkpointer).store(Box::new(store))
}

/// Checks a stored checkpoint row against shard `shard`'s chain as read back from the
/// database: both forms verify with `key`, the row's size is theirs, and the root of the
/// chain's first `size` receipts is theirs. Returns the JSON form.
fn check_row(url: &str, row: &StoredCheckpoint, key: &VerifyingKey) -> SignedCheckpoint {
    let store = PostgresStore::open_read_only_shard(url, row.shard).expect("open read-only");
    let report = verify_store(&store).expect("the chain verifies");
    let signed = SignedCheckpoint::from_json(&row.checkpoint).expect("the JSON form parses");
    verify_history(&report.tree, &signed, key).expect("signature, size and root hold");
    assert_eq!(signed.checkpoint.size, row.size, "the row's size is the checkpoint's");
    let root = report.tree.root_at(row.size).expect("a root at the size");
    assert_eq!(signed.checkpoint.root, root);
    let note = verify_checkpoint_text(&row.note, key).expect("the note verifies");
    assert_eq!((note.size(), note.root()), (row.size, root), "the note says the same");
    assert_eq!(row.public_key, hex_of(key), "the key row is the signer's");
    signed
}

fn hex_of(key: &VerifyingKey) -> String {
    key.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_on_postgres_signs_checkpoints_that_verify_against_the_chain() {
    let Some(cluster) = Cluster::start_or_skip("signs_checkpoints") else { return };
    let url = cluster.create_database("cp").expect("a database");
    let key = signer().verifying_key();
    let acme = TenantId::new("acme").expect("id");
    let sub_id = ResourceId::new("sub-1").expect("id");

    // First run: nothing signed until shutdown (the interval is the default 10 s).
    let rt = signing(&url).start().await.expect("start");
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.expect("provision");
    h.subscription(&acme, &sub_id).start_trial("pro", 14, "signed up").await.expect("trial");
    let first = rt.shutdown().await.expect("shutdown");
    let reader = PostgresStore::open_read_only(&url).expect("open read-only");
    let row = reader.latest_checkpoint().expect("read").expect("a checkpoint at shutdown");
    assert_eq!((row.shard, row.size), (0, first.next_seq), "it covers every receipt");
    let first_signed = check_row(&url, &row, &key);

    // Second run, a checkpoint after every commit: the runtime's last_checkpoint reads the
    // table while it runs; a restart without new receipts adds no row.
    let every_commit =
        CommitOptions { checkpoint_every: Duration::ZERO, ..CommitOptions::default() };
    let rt = signing(&url).group_commit(every_commit).start().await.expect("restart");
    let h = rt.handle();
    let activated =
        h.subscription(&acme, &sub_id).activate(None, "converted").await.expect("activate");
    // A commit round acknowledges, then signs; the next round starts after it: once the
    // next command is acknowledged, the first's checkpoint is written.
    let paused = h.subscription(&acme, &sub_id).pause("holiday").await.expect("pause");
    let running = h.last_checkpoint().expect("it verifies").expect("signed after the commit");
    assert!(running.checkpoint.size > activated.seq, "the commit's checkpoint covers it");
    let second = rt.shutdown().await.expect("shutdown");
    assert_eq!(second.next_seq, paused.seq + 1);
    let sizes = cluster
        .psql("cp", "SELECT string_agg(size::text, ',' ORDER BY size) FROM govern_checkpoints")
        .expect("psql");
    assert_eq!(sizes, format!("{},{},{}", first.next_seq, activated.seq + 1, second.next_seq));
    let reader = PostgresStore::open_read_only(&url).expect("open read-only");
    let row = reader.latest_checkpoint().expect("read").expect("the latest");
    assert_eq!(row.size, second.next_seq);
    check_row(&url, &row, &key);
    // The first checkpoint still holds against the grown chain.
    let report = verify_store(&reader).expect("the chain verifies");
    verify_history(&report.tree, &first_signed, &key).expect("an older checkpoint holds");

    // Stored once per size: the table's conflict rule keeps the first.
    let rt = signing(&url).start().await.expect("third start");
    rt.shutdown().await.expect("shutdown");
    let rows = cluster.psql("cp", "SELECT count(*) FROM govern_checkpoints").expect("psql");
    assert_eq!(rows, "3", "a run without receipts signs nothing new");
    let keys = cluster.psql("cp", "SELECT count(*) FROM govern_checkpoint_keys").expect("psql");
    assert_eq!(keys, "1");
}

#[test]
fn checkpoint_rows_cannot_be_changed() {
    let Some(cluster) = Cluster::start_or_skip("checkpoint_rows_unchanged") else { return };
    let url = cluster.create_database("cpfixed").expect("a database");
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let rt = signing(&url).start().await.expect("start");
        let acme = TenantId::new("acme").expect("id");
        rt.handle().provision_tenant(&acme, quota(), "onboarding").await.expect("provision");
        rt.shutdown().await.expect("shutdown");
    });
    let before = cluster.psql("cpfixed", "SELECT size || checkpoint FROM govern_checkpoints");
    let before = before.expect("one row");
    for sql in [
        "UPDATE govern_checkpoints SET size = 0",
        "UPDATE govern_checkpoints SET checkpoint = '{}'",
        "DELETE FROM govern_checkpoints",
        "TRUNCATE govern_checkpoints",
        "UPDATE govern_checkpoint_keys SET public_key = repeat('0', 64)",
        "DELETE FROM govern_checkpoint_keys",
    ] {
        let err = cluster.psql("cpfixed", sql).expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let after = cluster.psql("cpfixed", "SELECT size || checkpoint FROM govern_checkpoints");
    assert_eq!(after.expect("the row"), before, "the row is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_of_a_node_keeps_its_own_checkpoints() {
    const SHARDS: u32 = 3;
    let Some(pg) = Cluster::start_or_skip("shard_checkpoints") else { return };
    let url = pg.create_database("shards").expect("a database");
    let config = NodeConfig::new(&url, "a", "a.test:80")
        .shards(SHARDS)
        .lease_ttl(Duration::from_secs(600))
        .runtime(|_| Runtime::builder().epoch(T0))
        .checkpoint_signer(signer());
    let node = Node::start(config).await.expect("a node");
    let h = node.handle();
    assert_eq!(h.held().len(), 3, "one node holds every shard");
    // Shard s gets s + 1 tenants: the series differ in size.
    let mut per_shard = [0u64; SHARDS as usize];
    for i in 0.. {
        let tenant = TenantId::new(&format!("t-{i}")).expect("id");
        let shard = cluster::shard_of(tenant.as_str(), SHARDS);
        let n = &mut per_shard[shard as usize];
        if *n <= u64::from(shard) {
            h.command(provision(&tenant)).await.expect("provisioned");
            *n += 1;
        }
        if per_shard.iter().enumerate().all(|(s, n)| *n == s as u64 + 1) {
            break;
        }
    }
    node.shutdown().await;
    let key = signer().verifying_key();
    let origin = signer().origin().to_owned();
    for shard in 0..SHARDS {
        let reader = PostgresStore::open_read_only_shard(&url, shard).expect("open");
        let row = reader.latest_checkpoint().expect("read").expect("a checkpoint per shard");
        assert_eq!(row.shard, shard);
        assert_eq!(row.size, reader.len(), "shard {shard}'s checkpoint covers its chain");
        assert!(row.size > 0);
        check_row(&url, &row, &key);
        let first_line = row.note.lines().next().expect("an origin line");
        assert_eq!(first_line, format!("{origin}/shard-{shard}"), "a log per shard");
    }
}
