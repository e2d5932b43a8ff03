//! Webhooks end to end in the runtime: a signed provider event, verified, mapped and sent as a
//! `RawCommand`, settles a payment the host started; its redelivery gets the first outcome
//! and writes nothing (the idempotency key `webhook:<event id>`).

use govern_governors::GovernorKind;
use govern_runtime::RawCommand;
use govern_webhooks::{Mapping, Verifier, map_event, parse_event, sign};

use super::{builder, quota, raw_command, tenant};

/// A tenant `acme` with a payment `pay-1` of 19.99 USD authorized (`pi_1`).
async fn authorized(rt: &govern_runtime::Runtime) -> govern_runtime::RuntimeHandle {
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let pay = |name: &str, args: &[(&str, &str)]| {
        raw_command(&acme, GovernorKind::Billing, "pay-1", name, args)
    };
    let request = [("amount", "19.99"), ("currency", "USD"), ("method", "card")];
    h.command(pay("request_payment", &request)).await.unwrap();
    h.command(pay("authorize_payment", &[("transaction_id", "pi_1")])).await.unwrap();
    h
}

fn raw(c: govern_webhooks::MappedCommand) -> RawCommand {
    RawCommand {
        tenant: c.tenant,
        kind: c.kind,
        resource: c.resource,
        name: c.name.to_owned(),
        args: c.args,
        reason: c.reason,
        metadata: c.metadata,
    }
}

#[tokio::test(start_paused = true)]
async fn a_signed_payment_succeeded_settles_once() {
    let rt = builder().start().await.unwrap();
    let h = authorized(&rt).await;

    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","created":1700000000,
        "data":{"object":{"id":"pi_1","amount":1999,"currency":"usd",
        "metadata":{"govern_tenant":"acme","govern_resource":"pay-1"}}}}"#;
    let t = 1_700_000_000;
    let header = sign(b"whsec_new", t, body);
    let verifier = Verifier::new(&[b"whsec_new".as_slice(), b"whsec_old".as_slice()]).unwrap();
    assert_eq!(verifier.verify(&header, body, t + 5).unwrap().secret_index, 0);
    let Mapping::Command(c) = map_event(&parse_event(body).unwrap()).unwrap() else {
        panic!("payment_intent.succeeded maps to a command")
    };
    // The same event for another amount is not this payment's settlement: refused by the
    // governor, and the payment stays authorized.
    let other = String::from_utf8_lossy(body).replace("evt_1", "evt_2").replace("1999", "2999");
    let Mapping::Command(wrong) = map_event(&parse_event(other.as_bytes()).unwrap()).unwrap()
    else {
        panic!("maps to a command")
    };
    let err = h.command(raw(wrong)).await.unwrap_err();
    assert_eq!(err.code(), "precondition_failed", "{err:?}");
    let first = h.command(raw(c.clone())).await.unwrap();
    assert_eq!(first.to, "payment_settled", "{first:?}");
    let head = h.head();
    assert_eq!(h.command(raw(c.clone())).await.unwrap(), first, "a redelivery: the first outcome");
    assert_eq!(h.head(), head, "nothing written");
    rt.shutdown().await.unwrap();
}

/// Deliveries through `RuntimeHandle::deliver_webhook`: signed at the runtime's clock.
mod deliveries {
    use govern_governors::GovernorKind;
    use govern_governors::audit::WebhookOutcome;
    use govern_runtime::{RuntimeHandle, WebhookError};
    use govern_webhooks::{Verifier, sign};

    use super::super::{T0, builder, resource, tenant};
    use super::authorized;

    const SECRET: &[u8] = b"whsec_test";

    fn verifier() -> Verifier {
        Verifier::new(&[SECRET]).unwrap()
    }

    fn body(id: &str, kind: &str, amount: u64, tenant: &str) -> Vec<u8> {
        format!(
            r#"{{"id":"{id}","type":"{kind}","created":1700000000,"data":{{"object":{{"id":"pi_1","amount":{amount},"currency":"usd","metadata":{{"govern_tenant":"{tenant}","govern_resource":"pay-1"}}}}}}}}"#
        )
        .into_bytes()
    }

    fn now_secs(h: &RuntimeHandle) -> u64 {
        h.now().as_ms() / 1000
    }

    /// The tenant's `record_webhook` receipts: (outcome, detail).
    fn records(h: &RuntimeHandle) -> Vec<(String, String)> {
        h.receipts(&tenant("acme"), Some(GovernorKind::Audit), None)
            .unwrap()
            .into_iter()
            .filter(|r| r.body.command == "record_webhook")
            .map(|r| (r.body.args["outcome"].clone(), r.body.args["detail"].clone()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_is_receipted_accepted_and_its_redelivery_duplicate() {
        let rt = builder().start().await.unwrap();
        let h = authorized(&rt).await;
        let b = body("evt_1", "payment_intent.succeeded", 1999, "acme");
        let header = sign(SECRET, now_secs(&h), &b);
        let first = h.deliver_webhook(&verifier(), &header, &b).await.unwrap();
        assert_eq!(first.outcome, WebhookOutcome::Accepted);
        let settled = first.command.clone().expect("the settlement's receipt");
        assert_eq!(settled.to, "payment_settled");
        let again = h.deliver_webhook(&verifier(), &header, &b).await.unwrap();
        assert_eq!(again.outcome, WebhookOutcome::Duplicate);
        assert_eq!(again.command, Some(settled.clone()), "the first delivery's settlement");
        assert!(again.record.seq > first.record.seq);
        let recs = records(&h);
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[0].0, "accepted");
        assert_eq!(recs[0].1, format!("billing pay-1 settle_payment (receipt {})", settled.seq));
        assert_eq!(recs[1].0, "duplicate");
        // One settlement only.
        let settles = h
            .receipts(&tenant("acme"), Some(GovernorKind::Billing), None)
            .unwrap()
            .iter()
            .filter(|r| r.body.command == "settle_payment")
            .count();
        assert_eq!(settles, 1);
        assert_eq!(h.webhook_stats().receipted, 2);
        rt.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_decision_against_the_event_is_receipted_rejected_with_why() {
        let rt = builder().start().await.unwrap();
        let h = authorized(&rt).await;
        // Another amount than the payment's: the governor refuses; the delivery is receipted.
        let b = body("evt_2", "payment_intent.succeeded", 2999, "acme");
        let d = h.deliver_webhook(&verifier(), &sign(SECRET, now_secs(&h), &b), &b).await.unwrap();
        assert_eq!(d.outcome, WebhookOutcome::Rejected);
        assert!(
            d.detail.starts_with("billing pay-1 settle_payment: precondition_failed"),
            "{}",
            d.detail
        );
        assert_eq!(d.command, None);
        // A type that maps to nothing: accepted, nothing run.
        let b = body("evt_3", "invoice.created", 1999, "acme");
        let d = h.deliver_webhook(&verifier(), &sign(SECRET, now_secs(&h), &b), &b).await.unwrap();
        assert_eq!(
            (d.outcome, d.detail.as_str()),
            (WebhookOutcome::Accepted, "none: type invoice.created is not mapped")
        );
        let recs: Vec<String> = records(&h).into_iter().map(|r| r.0).collect();
        assert_eq!(recs, ["rejected", "accepted"]);
        rt.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn unsigned_stale_and_unattributable_deliveries_write_nothing() {
        let rt = builder().start().await.unwrap();
        let h = authorized(&rt).await;
        let head = h.head();
        let b = body("evt_4", "payment_intent.succeeded", 1999, "acme");
        let now = now_secs(&h);
        let cases = [
            sign(b"whsec_forged", now, &b),
            sign(SECRET, now - 301, &b),
            sign(SECRET, now + 301, &b),
            "garbage".to_owned(),
        ];
        for header in &cases {
            let e = h.deliver_webhook(&verifier(), header, &b).await.unwrap_err();
            assert!(matches!(e, WebhookError::Signature(_)), "{header}: {e:?}");
            assert_eq!(e.code(), "bad_signature");
        }
        let globex = body("evt_5", "payment_intent.succeeded", 1999, "globex");
        let e =
            h.deliver_webhook(&verifier(), &sign(SECRET, now, &globex), &globex).await.unwrap_err();
        assert_eq!(e.code(), "unknown_tenant", "{e:?}");
        let e = h.deliver_webhook(&verifier(), &sign(SECRET, now, b"{"), b"{").await.unwrap_err();
        assert_eq!(e.code(), "bad_event", "{e:?}");
        assert_eq!(h.head(), head, "nothing written");
        let stats = h.webhook_stats();
        assert_eq!(
            (stats.bad_signature, stats.no_tenant, stats.bad_event, stats.receipted),
            (4, 1, 1, 0)
        );
        rt.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivery_after_a_restart_is_still_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let rt = builder().data_dir(dir.path()).start().await.unwrap();
        let h = authorized(&rt).await;
        let b = body("evt_6", "payment_intent.succeeded", 1999, "acme");
        let first =
            h.deliver_webhook(&verifier(), &sign(SECRET, now_secs(&h), &b), &b).await.unwrap();
        assert_eq!(first.outcome, WebhookOutcome::Accepted);
        rt.shutdown().await.unwrap();
        let rt = builder().epoch(T0).data_dir(dir.path()).start().await.unwrap();
        let h = rt.handle();
        let again =
            h.deliver_webhook(&verifier(), &sign(SECRET, now_secs(&h), &b), &b).await.unwrap();
        assert_eq!(again.outcome, WebhookOutcome::Duplicate);
        assert_eq!(again.command, first.command);
        rt.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_cannot_write_to_the_audit_trail() {
        let rt = builder().start().await.unwrap();
        let h = authorized(&rt).await;
        let forged = govern_runtime::RawCommand {
            tenant: tenant("acme"),
            kind: GovernorKind::Audit,
            resource: resource("acme"),
            name: "record_webhook".into(),
            args: [
                ("event_id", "evt_9"),
                ("event_type", "x"),
                ("outcome", "accepted"),
                ("detail", "forged"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
            reason: "forged".into(),
            metadata: Vec::new(),
        };
        assert_eq!(h.command(forged).await.unwrap_err().code(), "reserved");
        rt.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_suspended_tenant_or_a_reused_event_id_is_receipted_rejected_and_keeps_the_first() {
        let rt = builder().start().await.unwrap();
        let h = authorized(&rt).await;
        let b = body("evt_7", "payment_intent.succeeded", 1999, "acme");
        let first = h.deliver_webhook(&verifier(), &sign(SECRET, now_secs(&h), &b), &b).await;
        assert_eq!(first.unwrap().outcome, WebhookOutcome::Accepted);
        // The same event id for another type: rejected, and the first delivery is still the
        // one a redelivery replays.
        let reused = body("evt_7", "charge.refunded", 1999, "acme");
        let header = sign(SECRET, now_secs(&h), &reused);
        let d = h.deliver_webhook(&verifier(), &header, &reused).await.unwrap();
        assert_eq!(d.outcome, WebhookOutcome::Rejected, "{}", d.detail);
        let again = h.deliver_webhook(&verifier(), &sign(SECRET, now_secs(&h), &b), &b).await;
        assert_eq!(again.unwrap().outcome, WebhookOutcome::Duplicate);
        // A suspended tenant's payment event is a decision, not a reason to retry: receipted.
        h.tenant(&tenant("acme"))
            .send(govern_governors::tenant::Command::SuspendTenant, "unpaid")
            .await
            .unwrap();
        let late = body("evt_8", "payment_intent.payment_failed", 1999, "acme");
        let d = h.deliver_webhook(&verifier(), &sign(SECRET, now_secs(&h), &late), &late).await;
        let d = d.unwrap();
        assert_eq!(d.outcome, WebhookOutcome::Rejected);
        assert!(d.detail.contains("tenant_suspended"), "{}", d.detail);
        let recs: Vec<String> = records(&h).into_iter().map(|r| r.0).collect();
        assert_eq!(recs, ["accepted", "rejected", "duplicate", "rejected"]);
        rt.shutdown().await.unwrap();
    }
}
