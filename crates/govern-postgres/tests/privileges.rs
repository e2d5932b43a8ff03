//! The least-privilege recipe of docs/postgres.md, run as written: a node works as the
//! `govern` role (signing checkpoints too), which cannot change or remove a receipt or a
//! checkpoint nor switch the triggers off; the `auditor` role reads the ledger and its
//! checkpoints and writes nothing.

use std::time::Duration;

use govern_governors::TenantId;
use govern_ledger::{CheckpointSigner, LedgerStore};
use govern_postgres::testing::Cluster;
use govern_postgres::{Node, NodeConfig, PostgresStore, cluster, schema};

mod support;
use support::provision;

/// The first ```sql block after "## Least privileges" in docs/postgres.md, passwords removed
/// (the throwaway cluster trusts loopback).
fn recipe() -> String {
    let doc = include_str!("../../../docs/postgres.md");
    let section = &doc[doc.find("## Least privileges").expect("the section")..];
    let start = section.find("```sql\n").expect("a sql block") + "```sql\n".len();
    let block = &section[start..];
    block[..block.find("```").expect("its end")].replace(" PASSWORD '...'", "")
}

fn as_role(url: &str, role: &str) -> String {
    url.replace("user=postgres", &format!("user={role}"))
}

#[test]
fn the_documented_grants_suffice_for_a_node_and_refuse_every_change() {
    let Some(pg) = Cluster::start_or_skip("least_privileges") else { return };
    let url = pg.create_database("govern").expect("a database");
    // Once, as the owner: the schema and the shards.
    let mut owner = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    schema::migrate(&mut owner).expect("migrate");
    cluster::init(&mut owner, 4).expect("shards");
    pg.psql("govern", &recipe()).expect("the documented grants run as written");

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(run_a_node(&as_role(&url, "govern")));

    let mut govern =
        postgres::Client::connect(&as_role(&url, "govern"), postgres::NoTls).expect("as govern");
    for sql in [
        "UPDATE govern_receipts SET record = '\\x00'",
        "DELETE FROM govern_receipts",
        "TRUNCATE govern_receipts",
        "ALTER TABLE govern_receipts DISABLE TRIGGER govern_receipts_fenced",
        "DROP TRIGGER govern_receipts_no_update_or_delete ON govern_receipts",
        "UPDATE govern_cluster SET shards = 1",
        "UPDATE govern_checkpoints SET size = 0",
        "DELETE FROM govern_checkpoints",
        "TRUNCATE govern_checkpoint_keys",
        "ALTER TABLE govern_checkpoints DISABLE TRIGGER govern_checkpoints_no_update_or_delete",
    ] {
        let err = govern.batch_execute(sql).expect_err(sql);
        let code = err.code().map(|c| c.code().to_owned());
        assert!(
            matches!(code.as_deref(), Some("42501")),
            "{sql}: refused for want of privilege, not {err}"
        );
    }

    let auditor = as_role(&url, "auditor");
    let shard = cluster::shard_of("acme", 4);
    let mut reader =
        PostgresStore::open_read_only_shard(&auditor, shard).expect("the auditor reads");
    assert_eq!(reader.len(), 1, "acme's receipt");
    assert!(reader.append(1, b"x").is_err(), "read-only");
    let checkpoint = reader.latest_checkpoint().expect("the auditor reads checkpoints");
    assert_eq!(checkpoint.map(|c| c.size), Some(1), "the node signed acme's shard as govern");
    let mut auditor = postgres::Client::connect(&auditor, postgres::NoTls).expect("as auditor");
    for sql in [
        "INSERT INTO govern_receipts (shard, epoch, seq, record) VALUES (0, 0, 99, '\\x00')",
        "UPDATE govern_leases SET epoch = epoch + 1",
    ] {
        let err = auditor.batch_execute(sql).expect_err(sql);
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err}");
    }
}

/// A node as `url`'s role: it takes every shard and appends a receipt.
async fn run_a_node(url: &str) {
    let node = Node::start(
        NodeConfig::new(url, "n1", "127.0.0.1:1")
            .shards(4)
            .lease_ttl(Duration::from_secs(600))
            .checkpoint_signer(CheckpointSigner::from_seed(&[3; 32])),
    )
    .await
    .expect("a node runs as the govern role");
    node.handle().keep().await;
    assert_eq!(node.handle().held().len(), 4);
    let tenant = TenantId::new("acme").expect("id");
    node.handle().command(provision(&tenant)).await.expect("appended as the govern role");
    node.shutdown().await;
}
