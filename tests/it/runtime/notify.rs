//! Outbound notifications end to end, against receivers on loopback: one that fails then
//! succeeds, one that answers too late, one that answers twice, a dead one, a full queue, and
//! a restart mid-retry. Every wait is on something observed (a request the receiver saw, the
//! notifier settled), bounded by a timeout; retries use millisecond backoffs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use govern_governors::GovernorKind;
use govern_governors::audit::NotificationOutcome;
use govern_receipt::Receipt;
use govern_runtime::notify::{
    ATTEMPT_HEADER, EVENT_ID_HEADER, Endpoint, EventKind, Notifications, RetryPolicy,
    SIGNATURE_HEADER,
};
use govern_runtime::{Runtime, RuntimeBuilder, RuntimeHandle};
use govern_webhooks::Verifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{T0, builder, quota, raw_command, tenant};

const SECRET: &[u8] = b"whsec_out_new";
const OLD_SECRET: &[u8] = b"whsec_out_old";
/// The longest any test waits for something it expects.
const WAIT: Duration = Duration::from_secs(20);

/// One request a receiver saw.
#[derive(Clone, Debug)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
}

/// What a receiver does with its n-th request (0-based) and the requests seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Status(u16),
    /// Answers 200 twice to the one request.
    Twice,
    /// Answers nothing until the receiver has seen `n` requests, then 200 (too late).
    HoldUntil(usize),
    /// Never answers.
    Hang,
}

type Script = Arc<dyn Fn(usize, &Seen) -> Answer + Send + Sync>;

/// A loopback HTTP/1 receiver (hand-written: a request line, headers, a content-length
/// body; several requests per connection).
struct Receiver {
    url: String,
    seen: watch::Receiver<Vec<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: Script) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks/govern", listener.local_addr().expect("addr"));
        let (tx, seen) = watch::channel(Vec::new());
        let tx = Arc::new(tx);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (tx, script) = (Arc::clone(&tx), Arc::clone(&script));
                tokio::spawn(serve(stream, tx, script));
            }
        });
        Self { url, seen, task }
    }

    async fn wait_for(&self, what: &str, n: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let mut rx = self.seen.clone();
        match tokio::time::timeout(WAIT, rx.wait_for(|v| n(v))).await {
            Ok(Ok(v)) => v.clone(),
            _ => panic!("receiver: {what} never happened; saw {:?}", self.seen.borrow().len()),
        }
    }

    fn all(&self) -> Vec<Seen> {
        self.seen.borrow().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    tx: Arc<watch::Sender<Vec<Seen>>>,
    script: Script,
) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[end + 4..end + 4 + len].to_vec();
        buf.drain(..end + 4 + len);
        let seen = Seen { headers, body };
        let mut index = 0;
        tx.send_modify(|v| {
            index = v.len();
            v.push(seen.clone());
        });
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let reply = match script(index, &seen) {
            Answer::Status(s) => format!("HTTP/1.1 {s} X\r\ncontent-length: 0\r\n\r\n"),
            Answer::Twice => format!("{ok}{ok}"),
            Answer::HoldUntil(n) => {
                let mut rx = tx.subscribe();
                let _ = rx.wait_for(|v| v.len() >= n).await;
                ok.to_owned()
            }
            Answer::Hang => {
                std::future::pending::<()>().await;
                return;
            }
        };
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Millisecond retries: `attempts` attempts, `timeout_ms` each.
fn fast(attempts: u32, timeout_ms: u64) -> RetryPolicy {
    RetryPolicy {
        attempts_max: attempts,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        attempt_timeout: Duration::from_millis(timeout_ms),
    }
}

fn with_endpoint(
    b: RuntimeBuilder,
    url: &str,
    policy: RetryPolicy,
    queue_max: usize,
) -> RuntimeBuilder {
    let endpoint = Endpoint::new(tenant("acme"), "ops", url, SECRET)
        .secret(OLD_SECRET)
        .events([EventKind::PaymentFailed, EventKind::TenantSuspended]);
    b.notifications(Notifications::new().endpoint(endpoint).retry(policy).queue_max(queue_max))
}

/// A failed payment `pay-<n>` of acme: one `payment.failed` event. Returns its event id.
async fn fail_payment(h: &RuntimeHandle, n: u32) -> String {
    let acme = tenant("acme");
    let id = format!("pay-{n}");
    let request = [("amount", "19.99"), ("currency", "USD"), ("method", "card")];
    h.command(raw_command(&acme, GovernorKind::Billing, &id, "request_payment", &request))
        .await
        .expect("requested");
    let failed = h
        .command(raw_command(
            &acme,
            GovernorKind::Billing,
            &id,
            "fail_payment",
            &[("code", "card_declined")],
        ))
        .await
        .expect("failed");
    format!("evt_{}", failed.seq)
}

/// acme's `record_notification` receipts: (event id, attempt, outcome, detail).
fn attempts(h: &RuntimeHandle) -> Vec<(String, u64, NotificationOutcome, String)> {
    let receipts: Vec<Receipt> =
        h.receipts(&tenant("acme"), Some(GovernorKind::Audit), None).expect("receipts");
    receipts
        .into_iter()
        .filter(|r| r.body.command == "record_notification")
        .map(|r| {
            let a = &r.body.args;
            let keys: Vec<&str> = a.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["attempt", "detail", "endpoint", "event_id", "event_type", "outcome"]
            );
            assert!(a.values().all(|v| !v.contains("whsec")), "no secret in {a:?}");
            assert_eq!(a["endpoint"], "ops");
            (
                a["event_id"].clone(),
                a["attempt"].parse().expect("attempt"),
                a["outcome"].parse().expect("outcome"),
                a["detail"].clone(),
            )
        })
        .collect()
}

async fn settled(h: &RuntimeHandle) {
    tokio::time::timeout(WAIT, h.notifications_settled()).await.expect("notifications settle");
}

async fn started(b: RuntimeBuilder) -> (Runtime, RuntimeHandle) {
    let rt = b.start().await.expect("start");
    let h = rt.handle();
    h.provision_tenant(&tenant("acme"), quota(), "onboarding").await.expect("provisioned");
    (rt, h)
}

#[tokio::test]
async fn a_receiver_that_fails_then_succeeds_gets_the_event_after_retries_each_attempt_receipted() {
    let rx =
        Receiver::start(Arc::new(
            |i, _| if i < 2 { Answer::Status(500) } else { Answer::Status(204) },
        ))
        .await;
    let (rt, h) = started(with_endpoint(builder(), &rx.url, fast(5, 5_000), 16)).await;
    let id = fail_payment(&h, 1).await;
    settled(&h).await;
    let seen = rx.all();
    assert_eq!(seen.len(), 3);
    let verifier = Verifier::new(&[SECRET]).expect("verifier");
    let old = Verifier::new(&[OLD_SECRET]).expect("verifier");
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.header(EVENT_ID_HEADER), id);
        assert_eq!(s.header(ATTEMPT_HEADER), (i + 1).to_string());
        assert_eq!(s.header("govern-event-type"), "payment.failed");
        let now = h.now().as_ms() / 1000;
        // Signed with both secrets while they rotate: either verifies.
        verifier.verify(s.header(SIGNATURE_HEADER), &s.body, now).expect("signature (new)");
        old.verify(s.header(SIGNATURE_HEADER), &s.body, now).expect("signature (old)");
        let v: serde_json::Value = serde_json::from_slice(&s.body).expect("json");
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["data"]["command"], "fail_payment");
    }
    use NotificationOutcome::{Delivered, Failed};
    let got = attempts(&h);
    let want = vec![
        (id.clone(), 1, Failed, "status 500".to_owned()),
        (id.clone(), 2, Failed, "status 500".to_owned()),
        (id, 3, Delivered, "status 204".to_owned()),
    ];
    assert_eq!(got, want);
    let stats = h.notify_stats();
    assert_eq!((stats.fed, stats.delivered, stats.failed_attempts, stats.given_up), (1, 1, 2, 0));
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_answer_later_than_the_attempt_timeout_is_retried_and_recorded_once() {
    // The first request is held until the second (the retry) arrives, then answered: too late.
    let rx =
        Receiver::start(Arc::new(
            |i, _| if i == 0 { Answer::HoldUntil(2) } else { Answer::Status(200) },
        ))
        .await;
    let (rt, h) = started(with_endpoint(builder(), &rx.url, fast(5, 200), 16)).await;
    let id = fail_payment(&h, 1).await;
    settled(&h).await;
    let seen = rx.all();
    assert_eq!(seen.len(), 2, "the same event twice");
    assert!(
        seen.iter().all(|s| s.header(EVENT_ID_HEADER) == id),
        "one event id for the receiver to dedupe by"
    );
    let got = attempts(&h);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].1, got[0].2, got[0].3.as_str()),
        (1, NotificationOutcome::Failed, "timeout after 200 ms")
    );
    assert_eq!((got[1].1, got[1].2), (2, NotificationOutcome::Delivered));
    assert_eq!(h.notify_stats().delivered, 1, "one delivery recorded");
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_receiver_that_answers_twice_gets_each_event_delivered_once() {
    let rx = Receiver::start(Arc::new(|_, _| Answer::Twice)).await;
    let (rt, h) = started(with_endpoint(builder(), &rx.url, fast(5, 5_000), 16)).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(fail_payment(&h, n).await);
    }
    settled(&h).await;
    let delivered: Vec<String> = attempts(&h)
        .into_iter()
        .filter(|a| a.2 == NotificationOutcome::Delivered)
        .map(|a| a.0)
        .collect();
    let mut sorted = delivered.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), delivered.len(), "each event delivered once: {delivered:?}");
    let mut want = ids.clone();
    want.sort();
    assert_eq!(sorted, want);
    // A stray second answer may spoil the kept-alive connection for the next event (an
    // attempt failed and retried): the receiver dedupes by id; every id arrived.
    let mut seen: Vec<String> =
        rx.all().iter().map(|s| s.header(EVENT_ID_HEADER).to_owned()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, want);
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_dead_endpoint_is_given_up_after_the_last_attempt_and_commands_keep_being_answered() {
    // A port nothing listens on: connections are refused.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", dead.local_addr().expect("addr"));
    drop(dead);
    let (rt, h) = started(with_endpoint(builder(), &url, fast(4, 1_000), 16)).await;
    let id = fail_payment(&h, 1).await;
    // Meanwhile the runtime answers: 100 commands, each well within its reply timeout.
    let bob = tenant("bob");
    h.provision_tenant(&bob, quota(), "onboarding").await.expect("bob");
    for n in 0..100 {
        let request = [("amount", "1.00"), ("currency", "USD"), ("method", "card")];
        let c = raw_command(
            &bob,
            GovernorKind::Billing,
            &format!("p-{n}"),
            "request_payment",
            &request,
        );
        tokio::time::timeout(Duration::from_secs(5), h.command(c))
            .await
            .expect("answered")
            .expect("accepted");
    }
    settled(&h).await;
    let got = attempts(&h);
    assert_eq!(got.len(), 4, "{got:?}");
    for (i, (event, attempt, outcome, detail)) in got.iter().enumerate() {
        assert_eq!((event, *attempt), (&id, i as u64 + 1));
        let want = if i == 3 { NotificationOutcome::GivenUp } else { NotificationOutcome::Failed };
        assert_eq!(*outcome, want);
        assert!(detail.starts_with("connect:"), "{detail}");
    }
    let stats = h.notify_stats();
    assert_eq!((stats.delivered, stats.failed_attempts, stats.given_up), (0, 4, 1));
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_full_endpoint_queue_drops_counts_and_receipts_the_overflow() {
    // Every request hangs until its single attempt times out: meanwhile the queue (2: the one
    // in flight and one waiting) is full, and three events are dropped.
    let rx = Receiver::start(Arc::new(|_, _| Answer::Hang)).await;
    let (rt, h) = started(with_endpoint(builder(), &rx.url, fast(1, 300), 2)).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(fail_payment(&h, n).await);
    }
    settled(&h).await;
    let stats = h.notify_stats();
    assert_eq!((stats.fed, stats.dropped, stats.given_up), (5, 3, 2));
    let mut got = attempts(&h);
    got.sort_by(|a, b| (a.2.name(), &a.0).cmp(&(b.2.name(), &b.0)));
    let mut want: Vec<(String, u64, NotificationOutcome)> = ids[2..]
        .iter()
        .map(|id| (id.clone(), 0, NotificationOutcome::Dropped))
        .chain(ids[..2].iter().map(|id| (id.clone(), 1, NotificationOutcome::GivenUp)))
        .collect();
    want.sort_by(|a, b| (a.2.name(), &a.0).cmp(&(b.2.name(), &b.0)));
    let got: Vec<_> = got.into_iter().map(|(e, n, o, _)| (e, n, o)).collect();
    assert_eq!(got, want);
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_restart_mid_retry_resumes_from_receipts_and_never_resends_a_delivered_event() {
    let dir = tempfile::tempdir().expect("dir");
    // First run: the first event is delivered; the second fails twice, then its third
    // attempt hangs when the runtime stops.
    let delivered_id: Arc<Mutex<Option<String>>> = Arc::default();
    let first = Arc::clone(&delivered_id);
    let rx1 = Receiver::start(Arc::new(move |i, s: &Seen| {
        if i == 0 {
            *first.lock().expect("lock") = Some(s.header(EVENT_ID_HEADER).to_owned());
            return Answer::Status(200);
        }
        match s.header(ATTEMPT_HEADER) {
            "1" | "2" => Answer::Status(503),
            _ => Answer::Hang,
        }
    }))
    .await;
    let b = builder().data_dir(dir.path());
    let rt = with_endpoint(b, &rx1.url, fast(10, 60_000), 16).start().await.expect("start");
    let h = rt.handle();
    h.provision_tenant(&tenant("acme"), quota(), "onboarding").await.expect("provisioned");
    let a = fail_payment(&h, 1).await;
    rx1.wait_for("the first delivery", |v| !v.is_empty()).await;
    let b_id = fail_payment(&h, 2).await;
    rx1.wait_for("the third attempt", |v| v.iter().any(|s| s.header(ATTEMPT_HEADER) == "3")).await;
    assert_eq!(delivered_id.lock().expect("lock").as_deref(), Some(a.as_str()));
    rt.shutdown().await.expect("shutdown");

    // Second run: resumes the second event at attempt 3 (the cut-short one was not receipted),
    // and never sends the first again.
    let rx2 = Receiver::start(Arc::new(|_, _| Answer::Status(200))).await;
    let b = Runtime::builder().epoch(T0).data_dir(dir.path());
    let rt = with_endpoint(b, &rx2.url, fast(10, 60_000), 16).start().await.expect("restart");
    let h = rt.handle();
    settled(&h).await;
    let seen = rx2.all();
    assert_eq!(seen.len(), 1, "only the pending event");
    assert_eq!(
        (seen[0].header(EVENT_ID_HEADER), seen[0].header(ATTEMPT_HEADER)),
        (b_id.as_str(), "3")
    );
    use NotificationOutcome::{Delivered, Failed};
    let got: Vec<(String, u64, NotificationOutcome)> =
        attempts(&h).into_iter().map(|(e, n, o, _)| (e, n, o)).collect();
    assert_eq!(
        got,
        vec![
            (a.clone(), 1, Delivered),
            (b_id.clone(), 1, Failed),
            (b_id.clone(), 2, Failed),
            (b_id.clone(), 3, Delivered),
        ]
    );
    rt.shutdown().await.expect("shutdown");

    // A third run finds nothing to send.
    let rx3 = Receiver::start(Arc::new(|_, _| Answer::Status(200))).await;
    let b = Runtime::builder().epoch(T0).data_dir(dir.path());
    let rt = with_endpoint(b, &rx3.url, fast(10, 60_000), 16).start().await.expect("restart");
    settled(&rt.handle()).await;
    assert!(rx3.all().is_empty());
    assert_eq!(rt.handle().notify_stats().recovery_scans, 1);
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_crashed_notifier_is_restarted_and_resumes_from_the_receipts() {
    // The first attempt hangs; the notifier crashes mid-attempt; its successor attempts again.
    let rx =
        Receiver::start(Arc::new(|i, _| if i == 0 { Answer::Hang } else { Answer::Status(200) }))
            .await;
    let (rt, h) = started(with_endpoint(builder(), &rx.url, fast(5, 60_000), 16)).await;
    let id = fail_payment(&h, 1).await;
    rx.wait_for("the first attempt", |v| !v.is_empty()).await;
    assert!(h.inject_notifier_crash());
    settled(&h).await;
    let seen = rx.all();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter().all(|s| s.header(EVENT_ID_HEADER) == id && s.header(ATTEMPT_HEADER) == "1")
    );
    let got = attempts(&h);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].1, got[0].2), (1, NotificationOutcome::Delivered));
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn events_the_feed_had_no_room_for_are_found_by_a_recovery_scan_and_delivered_once() {
    // A feed of one: the receipt actor answers a commit's events in one go, without yielding,
    // so concurrent events overflow it; the router asks for a scan, which finds them.
    let rx = Receiver::start(Arc::new(|_, _| Answer::Status(200))).await;
    let endpoint = Endpoint::new(tenant("acme"), "ops", &rx.url, SECRET);
    let notifications = Notifications::new().endpoint(endpoint).retry(fast(3, 5_000)).feed_max(1);
    let (rt, h) = started(builder().notifications(notifications)).await;
    let ids: Vec<String> = futures::future::join_all((0..40).map(|n| fail_payment(&h, n))).await;
    settled(&h).await;
    let stats = h.notify_stats();
    assert!(stats.feed_overflows > 0, "the feed overflowed: {stats:?}");
    assert!(stats.recovery_scans >= 2, "a scan after the overflow: {stats:?}");
    assert_eq!(stats.fed + stats.feed_overflows, 40, "{stats:?}");
    assert_eq!(stats.delivered, 40, "{stats:?}");
    let mut seen: Vec<String> =
        rx.all().iter().map(|s| s.header(EVENT_ID_HEADER).to_owned()).collect();
    seen.sort();
    let mut want = ids;
    want.sort();
    assert_eq!(seen, want, "each event once");
    rt.shutdown().await.expect("shutdown");
}
