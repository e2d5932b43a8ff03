//! Crash recovery: thousands of random commands from concurrent clients while panics are
//! injected into random governors, at both crash points. Afterwards every acknowledged
//! transition has its receipt (and nothing else does), every governor equals the replay of
//! its receipts, and the chain verifies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use govern_governors::quota::Quota;
use govern_governors::subscription::Subscription;
use govern_governors::{CommandSpec, Ctx, Governor, GovernorKind, ResourceId, TenantId};
use govern_receipt::replay;
use govern_runtime::{CrashPoint, Hosted, RawCommand, RuntimeHandle};

use super::{builder, quota, resource, tenant};

/// A small deterministic generator (xorshift64*), so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const PER_KIND: usize = 8;
const CLIENTS: u64 = 8;
const COMMANDS_PER_CLIENT: usize = 400;
const CRASHES: usize = 300;

type Target = (TenantId, GovernorKind, ResourceId);

fn targets() -> Vec<Target> {
    let mut out = Vec::new();
    for t in TENANTS {
        for i in 0..PER_KIND {
            out.push((tenant(t), GovernorKind::Subscription, resource(&format!("sub-{i}"))));
            out.push((tenant(t), GovernorKind::Quota, resource(&format!("quota-{i}"))));
        }
    }
    out
}

/// A random sample command of governor `G`, by name and string arguments.
fn random_command<G: Governor>(
    rng: &mut Rng,
    h: &RuntimeHandle,
) -> (String, govern_governors::Args) {
    // Not the runtime's own commands (a quota's `record_usage`, a subscription's
    // `change_plan`): a host's are refused.
    let samples: Vec<G::Command> = G::Command::samples(&Ctx { now: h.now() })
        .into_iter()
        .filter(|c| !matches!(c.name(), "record_usage" | "change_plan"))
        .collect();
    let c = &samples[rng.below(samples.len())];
    (c.name().to_owned(), c.args())
}

/// What a client saw for one accepted command.
#[derive(Debug)]
struct Ack {
    target: Target,
    seq: u64,
    hash: govern_receipt::Digest,
}

async fn client(h: RuntimeHandle, seed: u64, acks: Arc<Mutex<Vec<Ack>>>) -> (usize, usize) {
    let mut rng = Rng(seed);
    let targets = targets();
    let (mut rejected, mut refused) = (0, 0);
    for _ in 0..COMMANDS_PER_CLIENT {
        let target = targets[rng.below(targets.len())].clone();
        let (name, args) = match target.1 {
            GovernorKind::Quota => random_command::<Quota>(&mut rng, &h),
            _ => random_command::<Subscription>(&mut rng, &h),
        };
        let raw = RawCommand {
            tenant: target.0.clone(),
            kind: target.1,
            resource: target.2.clone(),
            name,
            args,
            reason: "chaos".into(),
            metadata: vec![],
        };
        match h.command(raw).await {
            Ok(a) => acks.lock().unwrap().push(Ack { target, seq: a.seq, hash: a.hash }),
            Err(govern_runtime::CommandError::Rejected(_)) => rejected += 1,
            Err(e) => {
                eprintln!("refused: {e}");
                refused += 1;
            }
        }
    }
    (rejected, refused)
}

async fn chaos(h: RuntimeHandle, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let targets = targets();
    let mut injected = 0;
    for _ in 0..CRASHES {
        let (t, kind, r) = targets[rng.below(targets.len())].clone();
        let point = if rng.below(2) == 0 { CrashPoint::Now } else { CrashPoint::AfterNextAppend };
        if h.inject_crash(&t, kind, &r, point).await.is_ok() {
            injected += 1;
        }
        // Interleave with the clients (this is scheduling, not synchronisation).
        tokio::task::yield_now().await;
    }
    injected
}

async fn assert_replays<G: Hosted>(h: &RuntimeHandle, t: &TenantId, r: &ResourceId) {
    let receipts = h.receipts(t, Some(G::KIND), Some(r)).unwrap();
    let live = h.governor::<G>(t, r).snapshot().await.unwrap();
    let replayed: G = replay(&receipts).unwrap();
    assert_eq!(live.machine, replayed, "{} {t}/{r}", G::KIND);
    assert_eq!(live.receipts, receipts.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn nothing_acknowledged_is_lost_and_every_governor_replays_after_random_crashes() {
    let rt = builder().governor_restarts(1_000_000, Duration::from_secs(1)).start().await.unwrap();
    let h = rt.handle();
    for t in TENANTS {
        h.provision_tenant(&tenant(t), quota(), "onboarding").await.unwrap();
    }
    let acks = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(tokio::spawn(client(
            h.clone(),
            0x9e37_79b9_7f4a_7c15 ^ (c + 1),
            Arc::clone(&acks),
        )));
    }
    let injected = tokio::spawn(chaos(h.clone(), 42)).await.unwrap();
    let (mut rejected, mut refused) = (0, 0);
    for c in clients {
        let (rj, rf) = c.await.unwrap();
        rejected += rj;
        refused += rf;
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    assert_eq!(injected, CRASHES, "every crash was injected");
    assert_eq!(refused, 0, "no command was lost or timed out");
    assert_eq!(acks.len() + rejected, CLIENTS as usize * COMMANDS_PER_CLIENT);
    assert!(acks.len() > 500, "the workload made progress: {} accepted", acks.len());

    // Every acknowledged transition has its receipt, with the acknowledged hash, on the
    // acknowledged governor; and no receipt exists that nobody was told about.
    let mut by_seq = BTreeMap::new();
    for t in TENANTS {
        for r in h.receipts(&tenant(t), None, None).unwrap() {
            if r.body.governor != GovernorKind::Tenant {
                by_seq.insert(r.seq, r);
            }
        }
    }
    assert_eq!(by_seq.len(), acks.len(), "one receipt per acknowledged command, no more");
    for ack in &acks {
        let r = by_seq
            .get(&ack.seq)
            .unwrap_or_else(|| panic!("no receipt for acknowledged seq {}", ack.seq));
        assert_eq!(r.hash, ack.hash);
        assert_eq!(
            (&r.body.tenant, r.body.governor, &r.body.resource),
            (&ack.target.0, ack.target.1, &ack.target.2)
        );
    }
    for (t, kind, r) in targets() {
        match kind {
            GovernorKind::Quota => assert_replays::<Quota>(&h, &t, &r).await,
            _ => assert_replays::<Subscription>(&h, &t, &r).await,
        }
    }
    let head = h.verify().unwrap();
    assert_eq!(head.next_seq, (acks.len() + 2 * TENANTS.len()) as u64);
    rt.shutdown().await.unwrap();
}
