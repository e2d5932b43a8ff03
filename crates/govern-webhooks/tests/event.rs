//! Event parsing and mapping: each type's command asserted exactly, and parsed by the
//! governor's own parser.

use govern_governors::{
    Args, CommandSpec, GovernorKind, IdError, Money, ResourceId, TenantId, billing, subscription,
};
use govern_webhooks::event::{EVENT_BODY_LEN_MAX, EVENT_ID_LEN_MAX};
use govern_webhooks::{
    EventError, EventKind, Ignored, MappedCommand, Mapping, map_event, parse_event,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn body(event_type: &str, object: &str, previous: Option<&str>) -> String {
    let prev = previous
        .map(|s| format!(r#","previous_attributes":{{"status":"{s}"}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"id":"evt_1","object":"event","type":"{event_type}","created":1700000000,"livemode":false,"data":{{"object":{object}{prev}}}}}"#
    )
}

const META: &str = r#""metadata":{"govern_tenant":"acme","govern_resource":"pay-1","other":"x"}"#;

fn map(event_type: &str, object: &str, previous: Option<&str>) -> Result<Mapping, EventError> {
    let event = parse_event(body(event_type, object, previous).as_bytes())?;
    map_event(&event)
}

fn command(event_type: &str, object: &str, previous: Option<&str>) -> MappedCommand {
    match map(event_type, object, previous) {
        Ok(Mapping::Command(c)) => c,
        other => panic!("{event_type}: expected a command, got {other:?}"),
    }
}

fn args(pairs: &[(&str, &str)]) -> Args {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn expected(
    kind: GovernorKind,
    resource: &str,
    name: &'static str,
    a: Args,
    t: &str,
) -> MappedCommand {
    MappedCommand {
        kind,
        tenant: TenantId::new("acme").unwrap_or_else(|e| panic!("{e}")),
        resource: ResourceId::new(resource).unwrap_or_else(|e| panic!("{e}")),
        name,
        args: a,
        reason: format!("payment provider webhook {t} evt_1"),
        metadata: vec![
            ("idempotency_key".into(), "webhook:evt_1".into()),
            ("webhook_event_type".into(), t.into()),
        ],
    }
}

fn billing_parses(c: &MappedCommand) -> billing::Command {
    assert_eq!(c.kind, GovernorKind::Billing);
    let parsed =
        billing::Command::parse(c.name, &c.args).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    // The mapped arguments are the governor's canonical ones (the idempotency fingerprint
    // compares them).
    assert_eq!((parsed.name(), parsed.args()), (c.name, c.args.clone()));
    parsed
}

fn subscription_parses(c: &MappedCommand) -> subscription::Command {
    assert_eq!(c.kind, GovernorKind::Subscription);
    let parsed =
        subscription::Command::parse(c.name, &c.args).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    assert_eq!((parsed.name(), parsed.args()), (c.name, c.args.clone()));
    parsed
}

fn usd(cents: i64) -> Money {
    let usd = govern_governors::Currency::from_code("USD").unwrap_or_else(|| panic!("USD"));
    Money::new(Decimal::new(cents, 2), usd).unwrap_or_else(|e| panic!("{e}"))
}

const PI: &str = "payment_intent.succeeded";

#[test]
fn payment_succeeded_settles() {
    let obj = format!(
        r#"{{"id":"pi_1","object":"payment_intent","amount":1999,"currency":"usd",{META}}}"#
    );
    let c = command(PI, &obj, None);
    assert_eq!(
        c,
        expected(
            GovernorKind::Billing,
            "pay-1",
            "settle_payment",
            args(&[("amount", "19.99"), ("currency", "USD")]),
            PI
        )
    );
    assert_eq!(billing_parses(&c), billing::Command::SettlePayment { money: Some(usd(1999)) });
}

#[test]
fn amounts_use_the_currency_minor_unit() {
    let jpy = format!(r#"{{"amount":1999,"currency":"jpy",{META}}}"#);
    assert_eq!(command(PI, &jpy, None).args, args(&[("amount", "1999"), ("currency", "JPY")]));
    let bhd = format!(r#"{{"amount":1999,"currency":"BHD",{META}}}"#);
    let c = command(PI, &bhd, None);
    assert_eq!(c.args, args(&[("amount", "1.999"), ("currency", "BHD")]));
    billing_parses(&c);
}

#[test]
fn payment_failed_fails_with_code() {
    let t = "payment_intent.payment_failed";
    let obj = format!(
        r#"{{"id":"pi_1","amount":500,"currency":"eur","last_payment_error":{{"code":"card_declined","message":"no"}},{META}}}"#
    );
    let c = command(t, &obj, None);
    assert_eq!(
        c,
        expected(
            GovernorKind::Billing,
            "pay-1",
            "fail_payment",
            args(&[("amount", "5"), ("code", "card_declined"), ("currency", "EUR")]),
            t
        )
    );
    let eur = govern_governors::Currency::from_code("EUR").unwrap_or_else(|| panic!("EUR"));
    let money = Money::new(Decimal::new(500, 2), eur).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        billing_parses(&c),
        billing::Command::FailPayment { code: Some("card_declined".into()), money: Some(money) }
    );
    // Without an error code.
    let obj = format!(r#"{{"amount":500,"currency":"eur",{META}}}"#);
    let c = command(t, &obj, None);
    assert_eq!(c.args, args(&[("amount", "5"), ("currency", "EUR")]));
    assert_eq!(
        billing_parses(&c),
        billing::Command::FailPayment { code: None, money: Some(money) }
    );
}

#[test]
fn charge_refunded_settles_the_pending_refund() {
    let t = "charge.refunded";
    let obj =
        format!(r#"{{"id":"ch_1","amount":1999,"amount_refunded":500,"currency":"usd",{META}}}"#);
    let c = command(t, &obj, None);
    assert_eq!(c, expected(GovernorKind::Billing, "pay-1", "settle_refund", Args::new(), t));
    assert_eq!(billing_parses(&c), billing::Command::SettleRefund { money: None });
}

#[test]
fn dispute_created_disputes() {
    let t = "charge.dispute.created";
    let obj = format!(r#"{{"id":"dp_9","amount":1999,"currency":"usd","charge":"ch_1",{META}}}"#);
    let c = command(t, &obj, None);
    assert_eq!(
        c,
        expected(
            GovernorKind::Billing,
            "pay-1",
            "dispute_payment",
            args(&[("dispute_id", "dp_9")]),
            t
        )
    );
    assert_eq!(
        billing_parses(&c),
        billing::Command::DisputePayment { dispute_id: "dp_9".into(), money: None }
    );
    let no_id = format!(r#"{{"amount":1999,{META}}}"#);
    assert_eq!(
        map(t, &no_id, None),
        Err(EventError::MissingField { event_type: t.into(), field: "id" })
    );
}

const SUB_META: &str = r#""metadata":{"govern_tenant":"acme","govern_resource":"sub-1"}"#;
const UPD: &str = "customer.subscription.updated";

fn sub(status: &str, plan: Option<&str>) -> String {
    let plan =
        plan.map(|p| format!(r#""plan":{{"id":"{p}","object":"plan"}},"#)).unwrap_or_default();
    format!(r#"{{"id":"sub_1","status":"{status}",{plan}{SUB_META}}}"#)
}

#[test]
fn subscription_updates_by_status_change() {
    use subscription::Command as S;
    // (previous status, status, plan, command, its args, the command parsed)
    type Case = (&'static str, &'static str, Option<&'static str>, &'static str, Args, S);
    let cases: [Case; 8] = [
        (
            "trialing",
            "active",
            Some("pro"),
            "activate",
            args(&[("plan", "pro")]),
            S::Activate { plan: Some("pro".into()) },
        ),
        ("incomplete", "active", None, "activate", Args::new(), S::Activate { plan: None }),
        ("past_due", "active", Some("pro"), "resume", Args::new(), S::Resume),
        ("unpaid", "active", None, "resume", Args::new(), S::Resume),
        ("paused", "active", None, "resume", Args::new(), S::Resume),
        ("active", "past_due", None, "suspend", Args::new(), S::Suspend),
        ("active", "unpaid", None, "suspend", Args::new(), S::Suspend),
        ("active", "canceled", None, "terminate", Args::new(), S::Terminate),
    ];
    for (prev, status, plan, name, a, parsed) in cases {
        let c = command(UPD, &sub(status, plan), Some(prev));
        assert_eq!(
            c,
            expected(GovernorKind::Subscription, "sub-1", name, a, UPD),
            "{prev}->{status}"
        );
        assert_eq!(subscription_parses(&c), parsed, "{prev}->{status}");
    }
    let c = command(UPD, &sub("paused", None), Some("active"));
    assert_eq!(c.name, "pause");
    assert_eq!(subscription_parses(&c), S::Pause);
    let c = command(UPD, &sub("paused", None), Some("trialing"));
    assert_eq!(c.name, "end_trial");
    assert_eq!(subscription_parses(&c), S::EndTrial);
}

#[test]
fn subscription_updates_that_change_nothing_are_ignored() {
    assert_eq!(map(UPD, &sub("active", None), None), Ok(Mapping::Ignored(Ignored::NoStatusChange)));
    assert_eq!(
        map(UPD, &sub("incomplete_expired", None), Some("incomplete")),
        Ok(Mapping::Ignored(Ignored::UnhandledStatus { status: "incomplete_expired".into() }))
    );
    let no_status = format!(r#"{{"id":"sub_1",{SUB_META}}}"#);
    assert_eq!(
        map(UPD, &no_status, Some("active")),
        Err(EventError::MissingField { event_type: UPD.into(), field: "status" })
    );
}

#[test]
fn subscription_deleted_terminates() {
    let t = "customer.subscription.deleted";
    let c = command(t, &sub("canceled", None), None);
    assert_eq!(c, expected(GovernorKind::Subscription, "sub-1", "terminate", Args::new(), t));
    assert_eq!(subscription_parses(&c), subscription::Command::Terminate);
}

#[test]
fn other_types_are_ignored() {
    let e =
        parse_event(body("invoice.paid", "{}", None).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.kind, EventKind::Other("invoice.paid".into()));
    assert_eq!(
        map_event(&e),
        Ok(Mapping::Ignored(Ignored::UnhandledType { event_type: "invoice.paid".into() }))
    );
}

#[test]
fn parsed_event_fields() {
    let obj = format!(r#"{{"amount":1,"currency":"usd",{META}}}"#);
    let e =
        parse_event(body(UPD, &obj, Some("trialing")).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.id, "evt_1");
    assert_eq!(e.kind, EventKind::CustomerSubscriptionUpdated);
    assert_eq!(e.kind.as_str(), UPD);
    assert_eq!(e.created, 1_700_000_000);
    assert_eq!(e.object.amount, Some(1));
    assert_eq!(e.previous_status.as_deref(), Some("trialing"));
}

#[test]
fn tenant_and_resource_errors() {
    let none = r#"{"amount":1,"currency":"usd"}"#;
    assert_eq!(map(PI, none, None), Err(EventError::MissingMetadata { key: "govern_tenant" }));
    let no_res = r#"{"amount":1,"currency":"usd","metadata":{"govern_tenant":"acme"}}"#;
    assert_eq!(map(PI, no_res, None), Err(EventError::MissingMetadata { key: "govern_resource" }));
    let bad_t =
        r#"{"amount":1,"currency":"usd","metadata":{"govern_tenant":"a b","govern_resource":"r"}}"#;
    assert_eq!(
        map(PI, bad_t, None),
        Err(EventError::BadTenant {
            value: "a b".into(),
            source: IdError::BadChar { found: ' ', index: 1 }
        })
    );
    let bad_r =
        r#"{"amount":1,"currency":"usd","metadata":{"govern_tenant":"acme","govern_resource":""}}"#;
    assert_eq!(
        map(PI, bad_r, None),
        Err(EventError::BadResource { value: String::new(), source: IdError::Empty })
    );
    // Ignored types need no target.
    assert!(matches!(map("invoice.paid", none, None), Ok(Mapping::Ignored(_))));
}

#[test]
fn amount_and_currency_errors() {
    let no_amount = format!(r#"{{"currency":"usd",{META}}}"#);
    assert_eq!(
        map(PI, &no_amount, None),
        Err(EventError::MissingField { event_type: PI.into(), field: "amount" })
    );
    let no_cur = format!(r#"{{"amount":1,{META}}}"#);
    assert_eq!(
        map(PI, &no_cur, None),
        Err(EventError::MissingField { event_type: PI.into(), field: "currency" })
    );
    let bad_cur = format!(r#"{{"amount":1,"currency":"xxq",{META}}}"#);
    assert_eq!(map(PI, &bad_cur, None), Err(EventError::UnknownCurrency { code: "xxq".into() }));
    for amount in [0, -5] {
        let obj = format!(r#"{{"amount":{amount},"currency":"usd",{META}}}"#);
        assert_eq!(map(PI, &obj, None), Err(EventError::BadAmount { amount }));
    }
}

#[test]
fn body_errors() {
    let big = vec![b' '; EVENT_BODY_LEN_MAX + 1];
    assert_eq!(
        parse_event(&big),
        Err(EventError::TooLong { len: EVENT_BODY_LEN_MAX + 1, max: EVENT_BODY_LEN_MAX })
    );
    match parse_event(b"{\n  \"id\": 5}") {
        Err(EventError::Json { line, column, .. }) => {
            // Column 9 is the `5`.
            assert_eq!((line, column), (2, 9));
        }
        other => panic!("{other:?}"),
    }
    match parse_event(br#"{"id":"evt_1","type":"x","created":1}"#) {
        Err(EventError::Json { message, .. }) => {
            assert!(message.contains("missing field `data`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let bad_ids = [String::new(), "evt 1".into(), "x".repeat(EVENT_ID_LEN_MAX + 1)];
    for id in bad_ids {
        let b = format!(r#"{{"id":"{id}","type":"x","created":1,"data":{{"object":{{}}}}}}"#);
        assert_eq!(
            parse_event(b.as_bytes()),
            Err(EventError::BadEventId { max: EVENT_ID_LEN_MAX })
        );
    }
    let at_max = "x".repeat(EVENT_ID_LEN_MAX);
    let b = format!(r#"{{"id":"{at_max}","type":"x","created":1,"data":{{"object":{{}}}}}}"#);
    assert!(parse_event(b.as_bytes()).is_ok());
}

#[test]
fn longest_event_id_fits_governor_metadata_and_reason() {
    // The command built from the longest id passes the governors' own metadata and reason
    // checks.
    let id = "e".repeat(EVENT_ID_LEN_MAX);
    let obj = format!(r#"{{"amount":1,"currency":"usd",{META}}}"#);
    let b = format!(r#"{{"id":"{id}","type":"{PI}","created":1,"data":{{"object":{obj}}}}}"#);
    let e = parse_event(b.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let Ok(Mapping::Command(c)) = map_event(&e) else { panic!("no command") };
    govern_governors::Metadata::from_pairs(c.metadata.clone()).unwrap_or_else(|e| panic!("{e}"));
    govern_governors::Reason::new(c.reason.clone()).unwrap_or_else(|e| panic!("{e}"));
}

proptest! {
    #[test]
    fn event_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(e) = parse_event(&bytes) {
            let _ = map_event(&e);
        }
    }

    #[test]
    fn any_positive_usd_amount_maps_to_a_parsable_command(cents in 1i64..=i64::MAX / 4) {
        let obj = format!(r#"{{"amount":{cents},"currency":"usd",{META}}}"#);
        let c = command(PI, &obj, None);
        let parsed = billing::Command::parse(c.name, &c.args).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed, billing::Command::SettlePayment { money: Some(usd(cents)) });
    }
}
