//! Shards, leases and fencing on a throwaway PostgreSQL (docs/scaling.md): a stale epoch
//! cannot write; nodes share the shards, route with `wrong_node`, hand shards over on
//! shutdown, and a node whose lease was taken over is fenced and steps down. Keeper rounds
//! are driven by hand (`NodeHandle::keep`) with long leases, so nothing waits on a timer;
//! the multi-process tests (SIGKILL, SIGSTOP, a PostgreSQL restart) are in govern-cli's
//! `tests/nodes.rs`.

use std::time::Duration;

use govern_governors::{Args, TenantId, Timestamp};
use govern_ledger::LedgerStore;
use govern_postgres::testing::Cluster;
use govern_postgres::{Node, NodeConfig, PostgresStore, cluster, schema};
use govern_runtime::{Refusal, Runtime};

mod support;
use support::provision;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

const SHARDS: u32 = 8;

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

fn config(url: &str, node: &str) -> NodeConfig {
    NodeConfig::new(url, node, format!("{node}.test:80"))
        .shards(SHARDS)
        // Long leases: rounds are driven by hand, never by expiry, unless a test expires one.
        .lease_ttl(Duration::from_secs(600))
        .runtime(|_| Runtime::builder().epoch(T0))
}

/// A tenant whose shard is `shard`.
fn tenant_on(shard: u32) -> TenantId {
    (0..)
        .map(|i| format!("t-{i}"))
        .find(|t| cluster::shard_of(t, SHARDS) == shard)
        .map(|t| TenantId::new(&t).expect("id"))
        .expect("some tenant")
}

#[test]
fn a_stale_epoch_cannot_write_and_the_takeover_sees_every_committed_row() {
    let Some(pg) = Cluster::start_or_skip("a_stale_epoch_cannot_write") else { return };
    let url = pg.create_database("fence").expect("a database");
    let mut c = client(&url);
    schema::migrate(&mut c).expect("migrate");
    assert_eq!(cluster::init(&mut c, 4).expect("init"), 4);
    assert!(cluster::init(&mut c, 5).is_err(), "the shard count is fixed");
    let e1 = cluster::acquire(&mut c, 2, "a", 60_000).expect("acquire").expect("free");
    assert_eq!(cluster::acquire(&mut c, 2, "b", 60_000).expect("acquire"), None, "held by a");

    let mut a = PostgresStore::open_shard(&url, 2, e1).expect("open shard 2");
    for seq in 0..3 {
        a.append(seq, b"under the lease").expect("append");
    }
    a.sync().expect("committed under the current epoch");

    // b takes the shard over (here by force; in a cluster after a's lease expired).
    let e2 = cluster::seize(&mut c, 2, "b").expect("seize");
    assert!(e2 > e1);
    a.append(3, b"stale").expect("buffered");
    let refused = a.sync().expect_err("a stale epoch's commit");
    assert!(refused.to_string().contains("GV001"), "{refused}");
    assert!(refused.to_string().contains("fenced"), "{refused}");

    let b = PostgresStore::open_shard(&url, 2, e2).expect("b opens shard 2");
    assert_eq!(b.len(), 3, "b sees every committed row and nothing of the refused group");
    let epochs = pg
        .psql("fence", "SELECT string_agg(DISTINCT epoch::text, ',') FROM govern_receipts")
        .expect("psql");
    assert_eq!(epochs, e1.to_string());
    // Other shards are separate chains: shard 0 is empty, and numbered from 0.
    let e0 = cluster::acquire(&mut c, 0, "a", 60_000).expect("acquire").expect("free");
    let zero = PostgresStore::open_shard(&url, 0, e0).expect("open shard 0");
    assert_eq!(zero.len(), 0);
    // A one-process ledger refuses a database divided for nodes.
    let err = PostgresStore::open(&url).expect_err("four shards");
    assert!(err.to_string().contains("4 shards"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_the_shards_route_and_hand_over() {
    let Some(pg) = Cluster::start_or_skip("nodes_share_the_shards") else { return };
    let url = pg.create_database("nodes").expect("a database");
    let a = Node::start(config(&url, "a")).await.expect("node a");
    assert_eq!(a.handle().held().len(), 4, "alone, a node takes at most 4 shards a round");
    a.handle().keep().await;
    assert_eq!(a.handle().held().len(), SHARDS as usize, "then all of them");

    let b = Node::start(config(&url, "b")).await.expect("node b");
    assert!(b.handle().held().is_empty(), "every lease is a's");
    a.handle().keep().await; // a sees two live nodes: hands 4 over
    assert_eq!(a.handle().held().len(), 4);
    b.handle().keep().await; // b takes them
    let (ha, hb) = (a.handle().held(), b.handle().held());
    assert_eq!(hb.len(), 4);
    let mut all: Vec<u32> = ha.iter().chain(&hb).map(|&(s, _)| s).collect();
    all.sort_unstable();
    assert_eq!(all, (0..SHARDS).collect::<Vec<_>>(), "every shard owned once");
    for &(_, epoch) in &hb {
        assert!(epoch >= 2, "a moved shard has a new epoch: {epoch}");
    }

    // Routing: the owner accepts, the other names it.
    let (on_a, on_b) = (tenant_on(ha[0].0), tenant_on(hb[0].0));
    a.handle().command(provision(&on_a)).await.expect("a owns it");
    b.handle().command(provision(&on_b)).await.expect("b owns it");
    let err = b.handle().command(provision(&on_a)).await.expect_err("not b's");
    assert_eq!(err.code(), "wrong_node");
    match err {
        govern_runtime::CommandError::Refused(Refusal::WrongNode { shard, owner, address }) => {
            assert_eq!(shard, ha[0].0);
            assert_eq!(owner.as_deref(), Some(a.handle().instance()));
            assert!(a.handle().instance().starts_with("a#"));
            assert_eq!(address.as_deref(), Some("a.test:80"));
        }
        other => panic!("{other:?}"),
    }
    let owner = b.handle().owner_of(&on_b);
    assert!(owner.here && owner.node.as_deref() == Some(b.handle().instance()));

    // a shuts down: its shards' last commits, leases released, and b takes them all.
    a.shutdown().await;
    b.handle().keep().await;
    b.handle().keep().await;
    assert_eq!(b.handle().held().len(), SHARDS as usize);
    let (_, _, rt) = b.handle().runtime_for(&on_a).expect("b owns a's tenant now");
    let state = rt.tenant_state(&on_a).expect("replayed from a's receipts");
    assert_eq!(govern_governors::StateSpec::name(state), "provisioning");
    let again = b.handle().command(provision(&on_a)).await.expect("b continues the chain");
    assert_eq!(again.seq, 1, "the shard's chain goes on after a's receipt");
    assert_eq!(again.from, "provisioning");
    rt.verify().expect("the shard's chain verifies");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_moved_on_is_fenced_and_steps_down() {
    let Some(pg) = Cluster::start_or_skip("a_node_whose_lease_moved_on") else { return };
    let url = pg.create_database("stale").expect("a database");
    let a = Node::start(config(&url, "a")).await.expect("node a");
    a.handle().keep().await;
    for shard in 0..SHARDS {
        a.handle().command(provision(&tenant_on(shard))).await.expect("a owns every shard");
    }
    // a is paused past its lease (as if SIGSTOPped): its leases expire, b takes over its share.
    pg.psql("stale", "UPDATE govern_leases SET expires_at = now() - interval '1 second'")
        .expect("expire a's leases");
    let b = Node::start(config(&url, "b")).await.expect("node b");
    let taken = b.handle().held();
    assert_eq!(taken.len(), 4, "b takes its share of the expired leases: {taken:?}");
    let shard = taken[0].0;
    let tenant = tenant_on(shard);
    let rows_before = pg.psql("stale", "SELECT count(*) FROM govern_receipts").expect("psql");

    // a wakes up, not yet knowing: its write is refused by the database, not acknowledged.
    let mut next = provision(&tenant);
    next.name = "activate_tenant".into();
    next.args = Args::new();
    let err = a.handle().command(next.clone()).await.expect_err("fenced");
    assert_eq!(err.code(), "ledger_unavailable", "{err}");
    assert_eq!(
        pg.psql("stale", "SELECT count(*) FROM govern_receipts").expect("psql"),
        rows_before,
        "nothing a wrote after losing its lease exists"
    );
    // Its next round notices and steps down; it names the new owner.
    a.handle().keep().await;
    assert!(a.handle().held().iter().all(|&(s, _)| s != shard));
    assert!(a.handle().counters().lost >= 1);
    let err = a.handle().command(next.clone()).await.expect_err("not a's");
    assert_eq!(err.code(), "wrong_node");
    // The new owner continues the chain.
    b.handle().command(next).await.expect("b activates");
    let (_, _, rt) = b.handle().runtime_for(&tenant).expect("b's");
    rt.verify().expect("the shard's chain verifies");
    b.shutdown().await;
    a.shutdown().await;
}

#[test]
fn the_lease_row_lock_orders_a_commit_and_a_takeover_either_way() {
    let Some(pg) = Cluster::start_or_skip("the_lease_row_lock_orders") else { return };
    let url = pg.create_database("ordering").expect("a database");
    let mut c = client(&url);
    schema::migrate(&mut c).expect("migrate");
    cluster::init(&mut c, 4).expect("init");
    let insert =
        "INSERT INTO govern_receipts (shard, epoch, seq, record) VALUES ($1, $2, 0, '\\x00')";
    let take_over =
        "UPDATE govern_leases SET owner = 'b', epoch = epoch + 1 WHERE shard = $1 RETURNING epoch";

    // A writer's insert not yet committed holds the lease row: a takeover waits for it.
    let e1 = cluster::acquire(&mut c, 1, "a", 60_000).expect("acquire").expect("free");
    let mut writer = client(&url);
    let mut tx = writer.transaction().expect("begin");
    tx.execute(insert, &[&1i32, &e1]).expect("inserted under the current epoch");
    let mut taker = client(&url);
    taker.batch_execute("SET lock_timeout = '300ms'").expect("set");
    let waited = taker.query_one(take_over, &[&1i32]).expect_err("the row is held");
    assert_eq!(waited.code().map(|c| c.code()), Some("55P03"), "{waited}");
    tx.commit().expect("the writer commits");
    let e2: i64 = taker.query_one(take_over, &[&1i32]).expect("then the takeover").get(0);
    assert!(e2 > e1);
    let seen = PostgresStore::open_shard(&url, 1, e2).expect("the new owner opens");
    assert_eq!(seen.len(), 1, "and sees the row committed before it");

    // A takeover not yet committed holds the row: the writer's insert waits, then is refused.
    let e3 = cluster::acquire(&mut c, 2, "a", 60_000).expect("acquire").expect("free");
    let mut taker = client(&url);
    let mut takeover = taker.transaction().expect("begin");
    takeover.query_one(take_over, &[&2i32]).expect("taken, not committed");
    let (done, waiting) = std::sync::mpsc::channel();
    let writer_url = url.clone();
    std::thread::spawn(move || {
        let mut writer = client(&writer_url);
        let _ = done.send(writer.execute(insert, &[&2i32, &e3]).map_err(|e| {
            e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())
        }));
    });
    assert!(
        waiting.recv_timeout(Duration::from_millis(300)).is_err(),
        "the insert waits for the takeover"
    );
    takeover.commit().expect("the takeover commits");
    let refused = waiting.recv_timeout(Duration::from_secs(10)).expect("the insert ends");
    let refused = refused.expect_err("a stale epoch after the takeover");
    assert!(refused.contains("fenced"), "{refused}");
    assert_eq!(
        pg.psql("ordering", "SELECT count(*) FROM govern_receipts WHERE shard = 2").expect("psql"),
        "0"
    );
}

#[test]
fn a_temporary_lease_table_does_not_fool_the_fence() {
    let Some(pg) = Cluster::start_or_skip("a_temporary_lease_table") else { return };
    let url = pg.create_database("shadow").expect("a database");
    let mut c = client(&url);
    schema::migrate(&mut c).expect("migrate");
    cluster::init(&mut c, 2).expect("init");
    let e = cluster::acquire(&mut c, 0, "a", 60_000).expect("acquire").expect("free");
    c.batch_execute(&format!(
        "CREATE TEMPORARY TABLE govern_leases (shard integer, owner text, epoch bigint, expires_at timestamptz);
         INSERT INTO govern_leases VALUES (0, 'x', {stale}, 'infinity')",
        stale = e + 7
    ))
    .expect("a session's own lease table");
    let err = c
        .execute(
            "INSERT INTO govern_receipts (shard, epoch, seq, record) VALUES (0, $1, 0, '\\x00')",
            &[&(e + 7)],
        )
        .expect_err("the fence reads the real lease table");
    assert_eq!(err.code().map(|c| c.code()), Some("GV001"), "{err}");
}

#[test]
fn a_ledger_of_one_chain_is_not_divided() {
    let Some(pg) = Cluster::start_or_skip("a_ledger_of_one_chain") else { return };
    let url = pg.create_database("one").expect("a database");
    let mut store = PostgresStore::open(&url).expect("a one-process ledger");
    store.append(0, b"one chain").expect("append");
    store.sync().expect("commit");
    drop(store);
    // As a database written before shards existed: no division recorded.
    // (The table refuses changes; a superuser's replication role skips triggers.)
    let err = pg.psql("one", "UPDATE govern_cluster SET shards = 8").expect_err("fixed");
    assert!(err.to_string().contains("govern_cluster is append-only: UPDATE refused"), "{err}");
    pg.psql(
        "one",
        "SET session_replication_role = replica; DELETE FROM govern_cluster; DELETE FROM govern_leases",
    )
    .expect("psql");
    let mut c = client(&url);
    let err = cluster::init(&mut c, 8).expect_err("its tenants' history would be stranded");
    assert!(err.to_string().contains("one chain"), "{err}");
    assert_eq!(cluster::init(&mut c, 1).expect("one shard it is"), 1);
}
