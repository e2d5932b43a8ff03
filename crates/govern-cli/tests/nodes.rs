//! Nodes as processes (`govern serve --postgres URL --node NAME`) on loopback against one
//! throwaway PostgreSQL (docs/scaling.md): a node SIGKILLed under load has its shards taken
//! over within the lease time and loses nothing acknowledged; a node SIGSTOPped past its
//! lease is fenced and redirects once resumed, and nothing of a stale epoch follows a newer
//! one; PostgreSQL restarted under load makes commands `ledger_unavailable`, then they
//! succeed again. After each: every acknowledged receipt is in its shard's chain with its
//! hash, every chain verifies, and every tenant's state equals its last receipt's.
//!
//! Without PostgreSQL the tests pass with a notice, unless `GOVERN_REQUIRE_POSTGRES=1`.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
#![allow(
    clippy::disallowed_methods,
    reason = "other processes run on real time: every wait for them is bounded by the monotonic clock"
)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use govern_governors::TenantId;
use govern_ledger::Ledger;
use govern_postgres::testing::Cluster;
use govern_postgres::{PostgresStore, cluster};

#[path = "support/http.rs"]
mod http;
#[path = "support/govern.rs"]
mod support;
use support::{govern, s, text};

const SHARDS: u32 = 8;
/// The nodes' lease time: short, so that takeovers happen within the test.
const LEASE_MS: u64 = 1_500;
/// Every wait on a process or an answer is bounded by this.
const WITHIN: Duration = Duration::from_secs(30);
/// Attempts of one command (redirects, retries on refusals while shards move), and the time
/// they may take.
const ATTEMPTS: usize = 5_000;
const ATTEMPTS_WITHIN: Duration = Duration::from_secs(90);
/// Between retries of a command refused for now (a shard between owners, a database away).
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// A node process.
struct NodeProc {
    addr: SocketAddr,
    child: Child,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(url: &str, keys: &str, name: &str) -> NodeProc {
    let lease = LEASE_MS.to_string();
    let shards = SHARDS.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_govern"))
        .args(["serve", "--postgres", url, "--node", name, "--data-dir", keys])
        .args(["--addr", "127.0.0.1:0", "--shards", &shards, "--lease-ms", &lease])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading, so the node never blocks on a full pipe.
        let mut sink = String::new();
        while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    let line = rx.recv_timeout(WITHIN).expect("the node prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    NodeProc { addr, child }
}

fn signal(node: &NodeProc, sig: &str) {
    let ok = Command::new("kill").args([sig, &node.child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

/// An acknowledged command.
#[derive(Clone, Debug)]
struct Ack {
    tenant: String,
    /// The idempotency key it was sent under.
    key: String,
    seq: u64,
    hash: String,
}

/// The cluster's callers' side: the nodes' addresses and an operator key.
#[derive(Clone)]
struct Client {
    nodes: Arc<Mutex<Vec<SocketAddr>>>,
    key: String,
    /// `ledger_unavailable` answers seen.
    unavailable: Arc<AtomicU64>,
}

enum Sent {
    Acked(Ack),
    /// A decision against the command (not retried).
    Refused(String),
}

impl Client {
    fn auth(&self) -> String {
        format!("Bearer {}", self.key)
    }

    /// Sends a request to some node, following redirects to the owner and retrying while
    /// shards move, at most [`ATTEMPTS`] times; the final answer.
    fn call(&self, method: &str, path: &str, idem: Option<&str>, body: &str) -> http::Response {
        let auth = self.auth();
        let mut target: Option<SocketAddr> = None;
        let deadline = Instant::now() + ATTEMPTS_WITHIN;
        for attempt in 0..ATTEMPTS {
            if Instant::now() > deadline {
                break;
            }
            let addr = target.take().unwrap_or_else(|| {
                let nodes = self.nodes.lock().unwrap();
                nodes[attempt % nodes.len()]
            });
            let mut headers = vec![("Authorization", auth.as_str())];
            if let Some(k) = idem {
                headers.push(("Idempotency-Key", k));
            }
            match http::request(addr, method, path, &headers, body, Duration::from_secs(5)) {
                Ok(r) if r.status == 307 => {
                    let location = r.header("location").unwrap_or_default();
                    target = location
                        .strip_prefix("http://")
                        .and_then(|rest| rest.split('/').next())
                        .and_then(|a| a.parse().ok());
                }
                Ok(r)
                    if r.status == 421
                        || r.status == 503
                        || r.status == 504
                        || (r.status == 409 && r.body.contains("idempotency_in_flight")) =>
                {
                    if r.body.contains("ledger_unavailable") {
                        self.unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(RETRY_PAUSE);
                }
                Ok(r) if r.status != 0 => return r,
                // A node killed or stopped (no connection, or closed without an answer):
                // try another.
                Ok(_) | Err(_) => std::thread::sleep(RETRY_PAUSE),
            }
        }
        panic!("{method} {path}: no answer within {ATTEMPTS} attempts or {ATTEMPTS_WITHIN:?}");
    }

    fn command(&self, tenant: &str, idem: &str, body: &str) -> Sent {
        let r = self.call("POST", &format!("/v1/tenants/{tenant}/commands"), Some(idem), body);
        if r.status != 200 {
            return Sent::Refused(format!("{} {}", r.status, r.body));
        }
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        Sent::Acked(Ack {
            tenant: tenant.to_owned(),
            key: idem.to_owned(),
            seq: v["seq"].as_u64().unwrap(),
            hash: v["hash"].as_str().unwrap().to_owned(),
        })
    }

    fn state(&self, tenant: &str) -> String {
        let r = self.call("GET", &format!("/v1/tenants/{tenant}"), None, "");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        v["state"].as_str().unwrap().to_owned()
    }
}

const PROVISION: &str = r#"{"kind":"tenant","name":"provision_tenant","args":{"storage_gb":10,"compute_units":2,"bandwidth_mbps":100},"reason":"load"}"#;
const ACTIVATE: &str = r#"{"kind":"tenant","name":"activate_tenant","reason":"load"}"#;
const SUSPEND: &str = r#"{"kind":"tenant","name":"suspend_tenant","reason":"load"}"#;

/// Drives `tenants` through provision, activate, then suspend/activate, `ops` commands
/// each, each command under an idempotency key (a retry after an unknown outcome replays
/// the first answer, on whichever node owns the shard by then).
fn drive(
    client: &Client,
    tenants: &[String],
    ops: usize,
    acked: &Mutex<Vec<Ack>>,
    count: &AtomicU64,
) {
    for op in 0..ops {
        for tenant in tenants {
            let body = match op {
                0 => PROVISION,
                n if n % 2 == 1 => ACTIVATE,
                _ => SUSPEND,
            };
            match client.command(tenant, &format!("{tenant}-{op}"), body) {
                Sent::Acked(ack) => {
                    acked.lock().unwrap().push(ack);
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Sent::Refused(why) => panic!("{tenant} op {op}: {why}"),
            }
        }
    }
}

/// Everything the database holds, checked: each shard's chain verifies; every
/// acknowledged receipt is in its tenant's shard with its hash; each tenant's state (read
/// through the nodes) equals its last receipt's; no row of an older epoch follows one of a
/// newer epoch in any shard.
fn check_everything(
    pg: &Cluster,
    db: &str,
    url: &str,
    client: &Client,
    acked: &[Ack],
    nodes: Vec<NodeProc>,
) {
    let mut by_tenant: BTreeMap<&str, Vec<&Ack>> = BTreeMap::new();
    for a in acked {
        by_tenant.entry(&a.tenant).or_default().push(a);
    }
    let mut ledgers = BTreeMap::new();
    for shard in 0..SHARDS {
        let store = PostgresStore::open_read_only_shard(url, shard).unwrap();
        let ledger = Ledger::open(Box::new(store)).unwrap();
        ledger.verify().unwrap_or_else(|e| panic!("shard {shard}: {e}"));
        ledgers.insert(shard, ledger);
    }
    for (tenant, acks) in &by_tenant {
        let id = TenantId::new(tenant).unwrap();
        let ledger = &ledgers[&cluster::shard_of(tenant, SHARDS)];
        let receipts = ledger.tenant_receipts(&id, None, None).unwrap();
        for ack in acks {
            let r = receipts.iter().find(|r| r.seq == ack.seq);
            let r = r.unwrap_or_else(|| panic!("acknowledged {ack:?} is missing"));
            assert_eq!(r.hash.to_string(), ack.hash, "{ack:?}");
            // Applied exactly once, however many times it was sent.
            let applied = receipts
                .iter()
                .filter(|r| r.body.metadata.get("idempotency_key") == Some(&ack.key))
                .count();
            assert_eq!(applied, 1, "{ack:?} applied {applied} times");
        }
        let last = receipts.last().unwrap();
        assert_eq!(
            client.state(tenant),
            last.body.state_to,
            "{tenant}: state = replay of its receipts"
        );
    }
    // The nodes stop (SIGTERM: each shard's last commit and signed checkpoint, then its lease
    // released); then the CLI agrees: every shard's chain and its checkpoint verify.
    for node in &nodes {
        signal(node, "-TERM");
    }
    for mut node in nodes {
        let deadline = Instant::now() + WITHIN;
        while node.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "a node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let verify = govern(&["verify", url]);
    let out = text(&verify.stdout);
    assert!(verify.status.success(), "{out}{}", text(&verify.stderr));
    assert!(out.contains(&format!("in {SHARDS} shards")), "{out}");
    assert!(!out.contains("checkpoint: none"), "every shard has a signed checkpoint: {out}");
    let stale = pg
        .psql(
            db,
            "SELECT count(*) FROM (SELECT epoch < max(epoch) OVER (PARTITION BY shard ORDER BY seq) \
             AS stale FROM govern_receipts) r WHERE stale",
        )
        .unwrap();
    assert_eq!(stale, "0", "a row of an older epoch after a newer one");
}

/// A cluster of PostgreSQL and `n` nodes, with an operator key.
fn setup(
    test: &str,
    n: usize,
) -> Option<(Cluster, String, tempfile::TempDir, Vec<NodeProc>, Client)> {
    let pg = Cluster::start_or_skip(test)?;
    let url = pg.create_database("govern").unwrap();
    let keys = tempfile::tempdir().unwrap();
    let created = govern(&["keys", "create", "--data-dir", s(keys.path()), "--scope", "operator"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).trim().to_owned();
    let nodes: Vec<NodeProc> =
        (1..=n).map(|i| start_node(&url, s(keys.path()), &format!("n{i}"))).collect();
    let client = Client {
        nodes: Arc::new(Mutex::new(nodes.iter().map(|p| p.addr).collect())),
        key,
        unavailable: Arc::new(AtomicU64::new(0)),
    };
    // Every shard owned, each node holding some: bounded.
    let deadline = Instant::now() + WITHIN;
    loop {
        let holding: Vec<usize> = nodes.iter().map(|p| held_by(p, &client).len()).collect();
        if holding.iter().sum::<usize>() == SHARDS as usize && holding.iter().all(|&h| h > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "shards not spread: {holding:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((pg, url, keys, nodes, client))
}

/// The shards `node` holds, by its `/v1/cluster` (an operator route).
fn held_by(node: &NodeProc, client: &Client) -> Vec<u32> {
    let auth = client.auth();
    let r = http::request(node.addr, "GET", "/v1/cluster", &[("Authorization", &auth)], "", WITHIN)
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v["held"].as_array().unwrap().iter().map(|h| h["shard"].as_u64().unwrap() as u32).collect()
}

fn tenants(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("t-{i}")).collect()
}

/// The load's threads, what they had acknowledged, and how many.
type Load = (Vec<std::thread::JoinHandle<()>>, Arc<Mutex<Vec<Ack>>>, Arc<AtomicU64>);

/// Runs `threads` load threads over 8 tenants each for `ops` commands per tenant.
fn load(client: &Client, threads: usize, ops: usize) -> Load {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicU64::new(0));
    let handles = (0..threads)
        .map(|t| {
            let (client, acked, count) = (client.clone(), Arc::clone(&acked), Arc::clone(&count));
            std::thread::spawn(move || {
                drive(&client, &tenants(t * 8..t * 8 + 8), ops, &acked, &count)
            })
        })
        .collect();
    (handles, acked, count)
}

fn wait_for(count: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + WITHIN;
    while count.load(Ordering::Relaxed) < at_least {
        assert!(Instant::now() < deadline, "the load did not reach {at_least} acknowledgements");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_node_killed_under_load_has_its_shards_taken_over_and_loses_nothing_acknowledged() {
    // Then a fourth node joins under load and is handed shards.
    let Some((pg, url, keys, mut nodes, client)) = setup("node_killed", 3) else { return };
    let (threads, acked, count) = load(&client, 4, 32);
    wait_for(&count, 150);
    let victim = nodes.remove(1);
    let orphaned = held_by(&victim, &client);
    client.nodes.lock().unwrap().retain(|a| *a != victim.addr);
    signal(&victim, "-KILL");
    let killed_at = Instant::now();
    // Failover: a tenant of one of the victim's shards is served again.
    let orphan = (0..)
        .map(|i| format!("t-{i}"))
        .find(|t| orphaned.contains(&cluster::shard_of(t, SHARDS)))
        .unwrap();
    let _ = client.call("GET", &format!("/v1/tenants/{orphan}"), None, "");
    let failover = killed_at.elapsed();
    eprintln!("failover after SIGKILL: {} ms (lease {LEASE_MS} ms)", failover.as_millis());
    assert!(failover < Duration::from_millis(LEASE_MS * 4), "failover took {failover:?}");
    // A node joins, still under load: the others hand shards over to it (drain, last commit,
    // release) and it takes them.
    let joiner = start_node(&url, s(keys.path()), "n4");
    client.nodes.lock().unwrap().push(joiner.addr);
    let deadline = Instant::now() + WITHIN;
    while held_by(&joiner, &client).is_empty() {
        assert!(Instant::now() < deadline, "the joining node was handed no shard");
        std::thread::sleep(Duration::from_millis(20));
    }
    let during = count.load(Ordering::Relaxed);
    eprintln!("n4 holds shards after {during} of {} acknowledgements", 4 * 8 * 32);
    nodes.push(joiner);
    for t in threads {
        t.join().unwrap();
    }
    drop(victim);
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 4 * 8 * 32, "every command acknowledged once");
    let held: Vec<u32> = nodes.iter().flat_map(|n| held_by(n, &client)).collect();
    assert_eq!(held.len(), SHARDS as usize, "the survivors hold every shard: {held:?}");
    check_everything(&pg, "govern", &url, &client, &acked, nodes);
}

#[test]
fn a_node_paused_past_its_lease_is_fenced_and_steps_down() {
    let Some((pg, url, _keys, nodes, client)) = setup("node_paused", 3) else { return };
    let (threads, acked, count) = load(&client, 2, 16);
    wait_for(&count, 60);
    let paused = &nodes[2];
    let had = held_by(paused, &client);
    client.nodes.lock().unwrap().retain(|a| *a != paused.addr);
    signal(paused, "-STOP");
    // The others take its shards over once its leases expire.
    let deadline = Instant::now() + WITHIN;
    loop {
        let others: Vec<u32> = nodes[..2].iter().flat_map(|n| held_by(n, &client)).collect();
        if had.iter().all(|s| others.contains(s)) {
            break;
        }
        assert!(Instant::now() < deadline, "{had:?} not taken over: {others:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(paused, "-CONT");
    // Resumed, it answers for none of the shards it lost: a redirect to their new owner.
    let tenant = (0..)
        .map(|i| format!("t-{i}"))
        .find(|t| had.contains(&cluster::shard_of(t, SHARDS)))
        .unwrap();
    // It refuses (421, owner not known yet: by its own clock, if its keeper has not run yet)
    // until its next keeper round, then redirects. Never does it answer from the state it
    // lost (an answer of 200 fails here).
    let deadline = Instant::now() + WITHIN;
    let r = loop {
        let auth = client.auth();
        let path = format!("/v1/tenants/{tenant}");
        let r = http::request(paused.addr, "GET", &path, &[("Authorization", &auth)], "", WITHIN)
            .unwrap();
        assert!(r.body.contains("wrong_node"), "{} {}", r.status, r.body);
        if r.status == 307 {
            break r;
        }
        assert_eq!(r.status, 421, "{}", r.body);
        assert!(Instant::now() < deadline, "the resumed node never stepped down");
        std::thread::sleep(Duration::from_millis(20));
    };
    let location = r.header("location").unwrap();
    assert!(nodes[..2].iter().any(|n| location.contains(&n.addr.to_string())), "{location}");
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 2 * 8 * 16);
    check_everything(&pg, "govern", &url, &client, &acked, nodes);
    let epochs = pg.psql("govern", "SELECT count(*) FROM govern_leases WHERE epoch >= 2").unwrap();
    assert_ne!(epochs, "0", "the paused node's shards changed epoch");
}

#[test]
fn postgres_restarted_under_load_makes_commands_unavailable_then_they_succeed_again() {
    let Some((mut pg, url, _keys, nodes, client)) = setup("postgres_restarted", 2) else {
        return;
    };
    let (threads, acked, count) = load(&client, 2, 40);
    wait_for(&count, 60);
    pg.stop().unwrap();
    // While it is away, commands are refused ledger_unavailable (the load retries them).
    let deadline = Instant::now() + WITHIN;
    while client.unavailable.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "no ledger_unavailable while PostgreSQL is down");
        std::thread::sleep(Duration::from_millis(10));
    }
    pg.start_again().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 2 * 8 * 40, "every command acknowledged once it came back");
    check_everything(&pg, "govern", &url, &client, &acked, nodes);
}
