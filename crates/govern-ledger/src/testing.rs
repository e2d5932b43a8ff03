//! Test helpers shared by the modules' tests.

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};

/// Reads that wait: once armed, the next read to pass it tells the test it has started, then
/// waits until the test releases it (or drops the release), so a test can hold a read inside
/// the store for as long as it checks what else goes on. No sleeps.
#[derive(Debug, Default)]
pub(crate) struct Gate(Mutex<Option<(Sender<()>, Receiver<()>)>>);

impl Gate {
    /// Arms the gate: returns the receiver of the "a read started" signal and the sender
    /// that releases it.
    pub(crate) fn arm(&self) -> (Receiver<()>, Sender<()>) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        *self.0.lock().unwrap() = Some((entered_tx, release_rx));
        (entered_rx, release_tx)
    }

    /// Passes the gate: at once unless armed; armed, signals and waits for the release.
    pub(crate) fn pass(&self) {
        let armed = self.0.lock().unwrap().take();
        if let Some((entered, release)) = armed {
            let _ = entered.send(());
            let _ = release.recv();
        }
    }
}

/// A receipt body of `tenant`'s `kind` governor of `resource`, its reason `reason`.
pub(crate) fn body(
    tenant: &str,
    kind: govern_governors::GovernorKind,
    resource: &str,
    reason: String,
) -> govern_receipt::ReceiptBody {
    govern_receipt::ReceiptBody {
        timestamp: govern_governors::Timestamp(1_767_225_600_000),
        tenant: govern_governors::TenantId::new(tenant).unwrap(),
        governor: kind,
        resource: govern_governors::ResourceId::new(resource).unwrap(),
        resource_seq: 0, // the ledger assigns it
        command: std::borrow::Cow::Borrowed("record"),
        state_from: std::borrow::Cow::Borrowed("a"),
        state_to: std::borrow::Cow::Borrowed("b"),
        reason,
        args: std::collections::BTreeMap::new(),
        metadata: std::collections::BTreeMap::new(),
    }
}

/// The kinds [`mixed_body`] cycles through.
pub(crate) const MIXED_KINDS: [govern_governors::GovernorKind; 3] = [
    govern_governors::GovernorKind::Subscription,
    govern_governors::GovernorKind::Billing,
    govern_governors::GovernorKind::Quota,
];

/// Receipt body number `i` of a mixed ledger: tenant `tenant-{i % 5}`, kind
/// `MIXED_KINDS[i % 3]`, resource `r-{i % 37}`, time `i` ms after 2026-01-01, reason
/// `reason`; the same `i` always gives the same body.
pub(crate) fn mixed_body(i: u64, reason: &str) -> govern_receipt::ReceiptBody {
    let kind = MIXED_KINDS[(i % 3) as usize];
    let mut b = body(&format!("tenant-{}", i % 5), kind, &format!("r-{}", i % 37), reason.into());
    b.timestamp = govern_governors::Timestamp(1_767_225_600_000 + i);
    b.command = std::borrow::Cow::Borrowed("activate");
    b.state_from = std::borrow::Cow::Borrowed("free_trial");
    b.state_to = std::borrow::Cow::Borrowed("active");
    b
}

/// A read, named: how many receipts it read.
pub(crate) type HeldRead = (&'static str, fn(&crate::Ledger) -> u64);

/// The reads [`reads_do_not_hold_up_appends`] holds inside the store, each returning how many
/// receipts it read: a governor's replay, a page of a tenant's change feed, verification.
pub(crate) const HELD_READS: [HeldRead; 3] = [
    ("resource_receipts", |ledger| {
        let (acme, q) = (tenant_id("acme"), resource_id("q-1"));
        ledger.resource_receipts(&acme, govern_governors::GovernorKind::Quota, &q).unwrap().len()
            as u64
    }),
    ("tenant_receipts_page", |ledger| {
        ledger.tenant_receipts_page(&tenant_id("acme"), None, 100).unwrap().0.len() as u64
    }),
    ("verify", |ledger| ledger.verify().unwrap().next_seq),
];

fn tenant_id(id: &str) -> govern_governors::TenantId {
    govern_governors::TenantId::new(id).unwrap()
}

fn resource_id(id: &str) -> govern_governors::ResourceId {
    govern_governors::ResourceId::new(id).unwrap()
}

/// Holds `read` inside the store (`gate`, which the store's reads pass: both the reads after
/// the ledger's lock and its own `read`, under it) and checks that another thread's append
/// and commit complete meanwhile, and that the read returns what the ledger held when it
/// began. Fails (after a timeout, never hanging) if the append or the commit waits for the
/// read. `ledger` holds 5 receipts of acme's quota q-1, committed.
pub(crate) fn reads_do_not_hold_up_appends(
    ledger: &std::sync::Arc<crate::Ledger>,
    gate: &Gate,
    (what, read): HeldRead,
) {
    use std::sync::Arc;
    use std::time::Duration;
    let quota = govern_governors::GovernorKind::Quota;
    let before = ledger.head().next_seq;
    // Generous: the machine may be loaded; what fails is the append's waiting for the read.
    let timeout = Duration::from_secs(10);
    let (entered, release) = gate.arm();
    let reader = {
        let ledger = Arc::clone(ledger);
        std::thread::spawn(move || read(&ledger))
    };
    let reached = entered.recv_timeout(timeout);
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let ledger = Arc::clone(ledger);
        std::thread::spawn(move || {
            let appended = ledger.append(body("acme", quota, "q-1", "during a read".into()));
            let committed = ledger.commit();
            let _ = done_tx.send(());
            (appended, committed)
        })
    };
    let through = reached.is_ok().then(|| done_rx.recv_timeout(timeout).is_ok());
    // Let the read go on either way, so that a failure does not hang the test.
    drop(release);
    let got = reader.join().unwrap();
    let (appended, committed) = writer.join().unwrap();
    assert!(reached.is_ok(), "{what}: the read never reached the store");
    assert_eq!(through, Some(true), "{what}: an append and a commit waited for a read");
    assert_eq!(appended.unwrap().seq, before);
    assert_eq!(committed.unwrap(), before + 1);
    // What the ledger held when the read began, not the receipt appended meanwhile.
    assert_eq!(got, before, "{what}");
    assert_eq!(read(ledger), before + 1, "{what}: read again");
}
