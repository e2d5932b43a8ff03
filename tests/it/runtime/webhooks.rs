//! Webhooks end to end in the runtime: a signed provider event, verified, mapped and sent as a
//! `RawCommand`, settles a payment the host started; its redelivery gets the first outcome
//! and writes nothing (the idempotency key `webhook:<event id>`).

use govern_governors::GovernorKind;
use govern_runtime::RawCommand;
use govern_webhooks::{Mapping, Verifier, map_event, parse_event, sign};

use super::{builder, quota, resource, tenant};

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
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let host = |name: &str, args: &[(&str, &str)]| RawCommand {
        tenant: acme.clone(),
        kind: GovernorKind::Billing,
        resource: resource("pay-1"),
        name: name.to_owned(),
        args: args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        reason: "checkout".into(),
        metadata: Vec::new(),
    };
    h.command(host(
        "request_payment",
        &[("amount", "19.99"), ("currency", "USD"), ("method", "card")],
    ))
    .await
    .unwrap();
    h.command(host("authorize_payment", &[("transaction_id", "pi_1")])).await.unwrap();

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
