//! Tenant isolation over HTTP as a property (issue 17): the real router, in process
//! (`tower::ServiceExt::oneshot`), driven by random commands, grants, usage and checks of three
//! tenants that share every resource id, idempotency key and usage event id, each with its
//! own tenant key. For every tenant:
//!
//! - every answer it gets, at every step (commands, idempotent repeats, usage, checks, and
//!   the reads of its state, receipts, SLA and invoice in between), is the answer a twin
//!   server where that tenant alone ran its operations gives (receipt numbers and hashes
//!   aside, which count every tenant's receipts): nothing of another tenant shows, and
//!   another's idempotency keys, event ids, grants, usage or rate change nothing;
//! - its receipts (`GET …/receipts`, page by page) are exactly the ledger's receipts of that
//!   tenant, as many at each of its governors as the test saw accepted, each accepted
//!   command's receipt among them and sent with its own key; its usage answers count its own
//!   events only (an event id another tenant used is not a duplicate);
//! - its key on another tenant's routes is refused 403 and writes nothing, and so is it on
//!   the routes over every tenant (`/v1/tenants`, `/v1/status`: an operator's).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use govern_governors::{Ctx, GovernorKind, Machine, ResourceId};
use govern_http::keys::Scope;
use govern_http::{AppState, KeyStore};
use govern_runtime::Runtime;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use govern_http::limits::RECEIPTS_PAGE_MAX;

use super::support::{T0, tenant};

/// Cases a run: `GOVERN_ISOLATION_CASES` when set (more, by hand), else `default` (CI).
fn cases(default: u32) -> u32 {
    std::env::var("GOVERN_ISOLATION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The tenants, each `sub-1` on Starter.
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// The governor kinds commands go to, at resources `r0` and `r1`.
const KINDS: [GovernorKind; 4] = [
    GovernorKind::Billing,
    GovernorKind::Entitlement,
    GovernorKind::Account,
    GovernorKind::Compliance,
];

/// The resources every tenant's commands go to.
const RESOURCES: [&str; 2] = ["r0", "r1"];

/// Features checked: the plan's (metered), one a sample grant gives, one nothing gives.
const FEATURES: [&str; 3] = ["report_builder", "sso", "forecast"];

/// Meters used: `reports` (limited by Starter) and `api_calls` (priced beyond 10 000).
const METERS: [(&str, u64); 2] = [("reports", 5), ("api_calls", 4_000)];

/// A tenant's read routes (after `/v1/tenants/{t}`).
const READS: [&str; 4] = ["", "/receipts", "/sla", "/invoices/2026-01"];

/// What one step does.
#[derive(Clone, Debug)]
enum Op {
    /// Sample command `sample` of `KINDS[kind]` at `r{r}`, under idempotency key `k{key}`
    /// if given (keys are shared by the tenants).
    Command { t: usize, kind: usize, r: u8, sample: usize, key: Option<u8> },
    /// An `sso` grant at entitlement `r{r}`, then its approval.
    Grant { t: usize, r: u8 },
    /// One usage event of `METERS[meter]`, id `e{event}` (ids are shared by the tenants).
    Usage { t: usize, meter: usize, quantity: u64, event: u8 },
    /// A check of `FEATURES[feature]`.
    Check { t: usize, feature: usize },
    /// A read of `READS[read]`.
    Read { t: usize, read: usize },
    /// Tenant `t`'s key on tenant `u`'s route `route` of [`probes`].
    Probe { t: usize, u: usize, route: usize },
}

impl Op {
    const fn tenant(&self) -> usize {
        match *self {
            Self::Command { t, .. }
            | Self::Grant { t, .. }
            | Self::Usage { t, .. }
            | Self::Check { t, .. }
            | Self::Read { t, .. }
            | Self::Probe { t, .. } => t,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..KINDS.len(), 0..2u8, 0..64usize, proptest::option::of(0..4u8))
            .prop_map(|(t, kind, r, sample, key)| Op::Command { t, kind, r, sample, key }),
        1 => (0..3usize, 0..2u8).prop_map(|(t, r)| Op::Grant { t, r }),
        2 => (0..3usize, 0..METERS.len(), 1..=4u64, 0..6u8)
            .prop_map(|(t, meter, quantity, event)| Op::Usage { t, meter, quantity, event }),
        2 => (0..3usize, 0..FEATURES.len()).prop_map(|(t, feature)| Op::Check { t, feature }),
        1 => (0..3usize, 0..READS.len()).prop_map(|(t, read)| Op::Read { t, read }),
        1 => (0..3usize, 1..3usize, 0..8usize)
            .prop_map(|(t, d, route)| Op::Probe { t, u: (t + d) % 3, route }),
    ]
}

/// Tenant `u`'s routes a probe tries: (method, path after `/v1/tenants/{u}`, body).
fn probes() -> [(&'static str, &'static str, Option<Value>); 8] {
    [
        ("GET", "", None),
        ("GET", "/receipts", None),
        ("GET", "/sla", None),
        ("GET", "/invoices/2026-01", None),
        (
            "POST",
            "/commands",
            Some(
                json!({"kind": "account", "resource": "r0", "name": "open_account", "reason": "x"}),
            ),
        ),
        ("POST", "/check", Some(json!({"feature": "report_builder", "action": "open"}))),
        (
            "POST",
            "/usage",
            Some(json!({"events": [{"meter": "reports", "quantity": 1, "event_id": "p"}]})),
        ),
        ("POST", "/plan-change:simulate", Some(json!({"to": "pro"}))),
    ]
}

/// The router over a runtime with the tenants `TENANTS[i]`, `i` in `only`, and their keys.
struct Edge {
    router: axum::Router,
    runtime: Runtime,
    /// Each tenant's key and its id (empty for a tenant not in `only`).
    keys: Vec<(String, String)>,
    operator: String,
    _dir: tempfile::TempDir,
}

async fn edge(only: &[usize]) -> Edge {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/plans/pricing.toml");
    let catalog = govern_plans::load(std::path::Path::new(path)).expect("the pricing catalog");
    let runtime = Runtime::builder().epoch(T0).catalog(catalog).start().await.expect("runtime");
    let h = runtime.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::open_in(dir.path()).expect("key store");
    let mut keys = vec![(String::new(), String::new()); TENANTS.len()];
    for &i in only {
        let t = tenant(TENANTS[i]);
        let quota = govern_governors::tenant::ResourceQuota {
            storage_gb: 100,
            compute_units: 8,
            bandwidth_mbps: 1_000,
        };
        h.provision_tenant(&t, quota, "isolation").await.expect("provision");
        let sub = h.subscription(&t, &ResourceId::new("sub-1").expect("id"));
        sub.start_trial("starter", 14, "isolation").await.expect("trial");
        sub.activate(None, "isolation").await.expect("activate");
        let (info, key) = store.create(Scope::Tenant(t), TENANTS[i]).expect("key");
        keys[i] = (key, info.id);
    }
    let (_, operator) = store.create(Scope::Operator, "ops").expect("key");
    let state = AppState { runtime: h, keys: Arc::new(store) };
    Edge { router: govern_http::router(state), runtime, keys, operator, _dir: dir }
}

impl Edge {
    /// One request through the router: its status and its body as JSON.
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"));
        if let Some(k) = idempotency_key {
            request = request.header("idempotency-key", k);
        }
        let body = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let request = request.body(body).expect("request");
        let Ok(response) = self.router.clone().oneshot(request).await;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("a JSON answer"))
    }

    /// Tenant `i`'s receipts, `limit` a page through `GET …/receipts`: each page its own.
    async fn receipts(&self, i: usize, limit: usize) -> Vec<Value> {
        let t = TENANTS[i];
        let mut all = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let query = after.map_or(String::new(), |a| format!("&after={a}"));
            let path = format!("/v1/tenants/{t}/receipts?limit={limit}{query}");
            let (status, page) = self.call("GET", &path, &self.keys[i].0, None, None).await;
            assert_eq!((status, page["tenant"].as_str()), (200, Some(t)), "{page}");
            let receipts = page["receipts"].as_array().expect("receipts");
            assert!(receipts.iter().all(|r| r["tenant_id"] == t), "{t}: another's receipt: {page}");
            all.extend(receipts.iter().cloned());
            after = page["next"].as_u64();
            if page["caught_up"] == true {
                return all;
            }
        }
    }
}

/// What the test saw of one tenant: its answers in order (for the twin), its accepted
/// commands' receipts, by governor and resource, its usage.
#[derive(Default)]
struct Seen {
    /// The tenant, for failure messages.
    tenant: &'static str,
    /// Every answer, in order, normalized: what its twin must answer too.
    answers: Vec<(String, u16, Value)>,
    /// Accepted commands by governor and resource: its receipts there.
    accepted: BTreeMap<(String, String), u64>,
    /// The receipt numbers of its accepted commands.
    seqs: BTreeSet<u64>,
    /// Each idempotency key's first request and answer: a repeat is answered the same.
    keyed: BTreeMap<String, (Value, u16, Value)>,
    /// The usage event ids it sent.
    events: BTreeSet<String>,
    /// Its usage counted, by meter.
    used: BTreeMap<&'static str, u64>,
}

impl Seen {
    /// Counts an accepted command's receipt at `kind` `r{r}`: one no tenant was answered
    /// before (`answered`, every tenant's).
    fn accept(&mut self, answered: &mut BTreeSet<u64>, kind: GovernorKind, r: u8, a: &Value) {
        let seq = a["seq"].as_u64().expect("seq");
        assert!(answered.insert(seq), "{}: {a} is not a new receipt", self.tenant);
        self.seqs.insert(seq);
        *self.accepted.entry((kind.name().to_owned(), format!("r{r}"))).or_default() += 1;
    }

    /// Checks a command's answer under idempotency key `idem` against this tenant's own use
    /// of the key (another tenant's use of it must change nothing), and counts it.
    fn keyed(
        &mut self,
        answered: &mut BTreeSet<u64>,
        (kind, r, body): (GovernorKind, u8, Value),
        idem: Option<String>,
        (status, answer): (u16, &Value),
    ) {
        match idem.as_ref().and_then(|k| self.keyed.get(k)) {
            // Its own key again: the first answer for the same request, else a conflict.
            Some((b, st, a)) if *b == body => {
                assert_eq!((status, answer), (*st, a), "{}: a repeat", self.tenant)
            }
            Some(_) => assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (422, Some("idempotency_conflict")),
                "{}: {answer}",
                self.tenant
            ),
            // A key new to this tenant (whatever the others did with it): decided afresh.
            None => {
                if status == 200 {
                    self.accept(answered, kind, r, answer);
                } else {
                    let code = &answer["error"]["code"];
                    let t = self.tenant;
                    assert_ne!(code, "idempotency_conflict", "{t}: another tenant's key: {answer}");
                }
                if let Some(k) = idem {
                    self.keyed.insert(k, (body, status, answer.clone()));
                }
            }
        }
    }

    /// Checks a usage answer for event `event_id` of `quantity` on `meter`: counted on this
    /// tenant's own total, or a duplicate of its own event only.
    fn usage(&mut self, meter: &'static str, quantity: u64, event_id: String, answer: &Value) {
        let result = &answer["results"][0];
        if self.events.insert(event_id) {
            let used = self.used.entry(meter).or_default();
            *used += quantity;
            let got = (result["outcome"].as_str(), result["value"].as_u64());
            assert_eq!(got, (Some("counted"), Some(*used)), "{}: {answer}", self.tenant);
        } else {
            assert_eq!(result["outcome"], "duplicate", "{}: {answer}", self.tenant);
        }
    }
}

/// An answer as a twin would give it: receipt numbers, hashes, cursors and the key's id (each
/// server's keys have their own) removed; the audit trail's receipts (of checks, written in
/// the background, so not at the same step in both) left out of receipt lists.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !["seq", "hash", "prev_hash", "receipt_id", "next", "api_key", "caught_up"]
                        .contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(a) => {
            Value::Array(a.iter().filter(|x| x["governor"] != "audit").map(normalized).collect())
        }
        other => other.clone(),
    }
}

/// A command's body: `name` with `args` (a sample's) to `kind` `r{r}`.
fn command(kind: GovernorKind, r: u8, (name, args): (&str, govern_governors::Args)) -> Value {
    let (kind, resource) = (kind.name(), format!("r{r}"));
    json!({"kind": kind, "resource": resource, "name": name, "args": args, "reason": "why"})
}

/// Runs the operations of the tenants in `only` through `edge`: what each saw.
async fn drive(edge: &Edge, ops: &[Op], only: &[usize]) -> Vec<Seen> {
    let mut seen: Vec<Seen> =
        TENANTS.iter().map(|t| Seen { tenant: t, ..Seen::default() }).collect();
    // Every receipt number answered so far, to any tenant.
    let mut answered = BTreeSet::new();
    let h = edge.runtime.handle();
    for op in ops {
        let t = op.tenant();
        if !only.contains(&t) {
            continue;
        }
        let (key, name) = (edge.keys[t].0.as_str(), TENANTS[t]);
        let base = format!("/v1/tenants/{name}");
        let s = &mut seen[t];
        match *op {
            Op::Command { kind, r, sample, key: idem, .. } => {
                let kind = KINDS[kind];
                let samples = Machine::samples(kind, &Ctx { now: h.now() });
                let body = command(kind, r, samples[sample % samples.len()].clone());
                let idem = idem.map(|k| format!("k{k}"));
                let path = format!("{base}/commands");
                let (status, answer) =
                    edge.call("POST", &path, key, Some(&body), idem.as_deref()).await;
                s.keyed(&mut answered, (kind, r, body), idem, (status, &answer));
                s.answers.push(("command".into(), status, normalized(&answer)));
            }
            Op::Grant { r, .. } => {
                let kind = GovernorKind::Entitlement;
                let samples = Machine::samples(kind, &Ctx { now: h.now() });
                for sample in [0, 2] {
                    let body = command(kind, r, samples[sample].clone());
                    let path = format!("{base}/commands");
                    let (status, answer) = edge.call("POST", &path, key, Some(&body), None).await;
                    if status == 200 {
                        s.accept(&mut answered, kind, r, &answer);
                    }
                    s.answers.push(("grant".into(), status, normalized(&answer)));
                }
            }
            Op::Usage { meter, quantity, event, .. } => {
                let (meter, unit) = METERS[meter];
                let (event_id, quantity) = (format!("e{event}"), quantity * unit);
                let event = json!({"meter": meter, "quantity": quantity, "event_id": event_id});
                let body = json!({ "events": [event] });
                let (status, answer) =
                    edge.call("POST", &format!("{base}/usage"), key, Some(&body), None).await;
                assert_eq!(status, 200, "{name}: {answer}");
                s.usage(meter, quantity, event_id, &answer);
                s.answers.push(("usage".into(), status, normalized(&answer)));
            }
            Op::Check { feature, .. } => {
                let body = json!({"feature": FEATURES[feature], "action": "open"});
                let (status, answer) =
                    edge.call("POST", &format!("{base}/check"), key, Some(&body), None).await;
                s.answers.push(("check".into(), status, normalized(&answer)));
            }
            Op::Read { read, .. } => {
                // One request whatever the read (the SLA's count of requests is compared).
                let answer = if READS[read] == "/receipts" {
                    (200, Value::Array(edge.receipts(t, RECEIPTS_PAGE_MAX).await))
                } else {
                    edge.call("GET", &format!("{base}{}", READS[read]), key, None, None).await
                };
                if let Some(of) = answer.1.get("tenant") {
                    assert_eq!(of, name, "{name}: {}", answer.1);
                }
                s.answers.push((READS[read].into(), answer.0, normalized(&answer.1)));
            }
            Op::Probe { u, route, .. } => {
                let head = h.head();
                let (method, path, body) = &probes()[route];
                let path = format!("/v1/tenants/{}{path}", TENANTS[u]);
                let (status, answer) = edge.call(method, &path, key, body.as_ref(), None).await;
                assert_eq!(
                    (status, answer["error"]["code"].as_str()),
                    (403, Some("forbidden")),
                    "{name} on {path}: {answer}"
                );
                assert_eq!(h.head(), head, "{name} on {path}: nothing written");
            }
        }
    }
    seen
}

/// Tenant `i`'s reads at the end, in `s`'s answers: its state, SLA and invoice, then its
/// receipts 7 a page (after the SLA, which counts requests); the receipts.
async fn end_reads(edge: &Edge, i: usize, s: &mut Seen) -> Vec<Value> {
    let t = TENANTS[i];
    for read in READS.iter().filter(|r| **r != "/receipts") {
        let path = format!("/v1/tenants/{t}{read}");
        let (status, answer) = edge.call("GET", &path, &edge.keys[i].0, None, None).await;
        assert_eq!((status, answer["tenant"].as_str()), (200, Some(t)), "{path}: {answer}");
        s.answers.push((format!("end{read}"), status, normalized(&answer)));
    }
    let receipts = edge.receipts(i, 7).await;
    s.answers.push(("receipts".into(), 200, normalized(&Value::Array(receipts.clone()))));
    receipts
}

/// What each tenant reads at the end is its own, and as much as it did.
async fn check_reads(edge: &Edge, seen: &mut [Seen]) {
    let h = edge.runtime.handle();
    for (i, s) in seen.iter_mut().enumerate() {
        let t = TENANTS[i];
        let receipts = end_reads(edge, i, s).await;
        let seqs: Vec<u64> = receipts.iter().map(|r| r["seq"].as_u64().expect("seq")).collect();
        let ledger = h.receipts(&tenant(t), None, None).expect("receipts");
        let ledger: Vec<u64> = ledger.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, ledger, "{t}: the feed is the ledger's receipts of the tenant");
        assert!(s.seqs.iter().all(|q| seqs.contains(q)), "{t}: an accepted receipt is missing");
        for kind in KINDS {
            for r in RESOURCES {
                let at: Vec<&Value> = receipts
                    .iter()
                    .filter(|x| x["governor"] == kind.name() && x["resource_id"] == r)
                    .collect();
                let want = s.accepted.get(&(kind.name().to_owned(), r.to_owned()));
                assert_eq!(at.len() as u64, want.copied().unwrap_or(0), "{t} {kind}/{r}");
                let key_id = edge.keys[i].1.as_str();
                assert!(at.iter().all(|x| x["metadata"]["api_key"] == key_id), "{t}: another key");
            }
        }
    }
    // The routes over every tenant are an operator's: a tenant's key is refused there.
    for (key, _) in &edge.keys {
        for path in ["/v1/tenants", "/v1/status"] {
            let (status, answer) = edge.call("GET", path, key, None, None).await;
            assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")));
        }
    }
    let (status, all) = edge.call("GET", "/v1/tenants", &edge.operator, None, None).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = all["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter_map(|t| t["tenant"].as_str())
        .collect();
    assert_eq!(listed, TENANTS);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(32), ..ProptestConfig::default() })]

    #[test]
    fn no_route_hands_a_tenant_another_tenants_data(ops in proptest::collection::vec(op(), 1..50)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio");
        rt.block_on(async {
            let all = [0, 1, 2];
            let shared = edge(&all).await;
            let mut seen = drive(&shared, &ops, &all).await;
            check_reads(&shared, &mut seen).await;
            for (i, s) in seen.iter().enumerate() {
                let twin = edge(&[i]).await;
                let mut alone = drive(&twin, &ops, &[i]).await;
                end_reads(&twin, i, &mut alone[i]).await;
                let pairs = s.answers.iter().zip(&alone[i].answers);
                for (n, (together, by_itself)) in pairs.enumerate() {
                    assert_eq!(together, by_itself, "{}: answer {n} beside the others", TENANTS[i]);
                }
                assert_eq!(s.answers.len(), alone[i].answers.len());
                twin.runtime.shutdown().await.expect("shutdown");
            }
            shared.runtime.shutdown().await.expect("shutdown");
        });
    }
}
