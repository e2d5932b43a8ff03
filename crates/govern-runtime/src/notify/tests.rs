//! The pure parts of notifications: the mapping from receipts to events, event ids, the
//! body's one encoding, the retry schedule.

use std::time::Duration;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

use super::{Event, EventKind, RULES, RetryPolicy, Rule, delivered, event_id, event_seq, kind_of};

fn body(
    governor: GovernorKind,
    command: &'static str,
    from: &'static str,
    to: &'static str,
) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000),
        tenant: TenantId::new("acme").expect("id"),
        governor,
        resource: ResourceId::new("api").expect("id"),
        resource_seq: 3,
        command: command.into(),
        state_from: from.into(),
        state_to: to.into(),
        reason: "r".into(),
        args: Default::default(),
        metadata: Default::default(),
    }
}

#[test]
fn quota_crossings_suspensions_and_payment_failures_are_events_and_nothing_else_is() {
    let q = GovernorKind::Quota;
    let cases = [
        (q, "record_usage", "normal", "warning", Some(EventKind::QuotaWarning)),
        (q, "check_quota", "warning", "throttled", Some(EventKind::QuotaCritical)),
        (q, "mark_exceeded", "throttled", "exceeded", Some(EventKind::QuotaExhausted)),
        // Staying in a state is no crossing; going down is none either.
        (q, "record_usage", "warning", "warning", None),
        (q, "record_usage", "throttled", "warning", Some(EventKind::QuotaWarning)),
        (q, "record_usage", "warning", "normal", None),
        (
            GovernorKind::Billing,
            "fail_payment",
            "authorized",
            "payment_failed",
            Some(EventKind::PaymentFailed),
        ),
        (GovernorKind::Billing, "settle_payment", "authorized", "payment_settled", None),
        (
            GovernorKind::Tenant,
            "suspend_tenant",
            "active",
            "suspended",
            Some(EventKind::TenantSuspended),
        ),
        (
            GovernorKind::Account,
            "suspend_account",
            "active",
            "suspended",
            Some(EventKind::AccountSuspended),
        ),
        (
            GovernorKind::Audit,
            "record_invoice",
            "recording",
            "recording",
            Some(EventKind::InvoiceClosed),
        ),
        (GovernorKind::Audit, "record_notification", "recording", "recording", None),
        (
            GovernorKind::Audit,
            "record_sla_violation",
            "recording",
            "recording",
            Some(EventKind::SlaViolated),
        ),
        (GovernorKind::Audit, "record_sla_recovery", "recording", "recording", None),
        (GovernorKind::Subscription, "suspend", "active", "suspended", None),
    ];
    for (governor, command, from, to, want) in cases {
        assert_eq!(
            kind_of(RULES, governor, command, from, to),
            want,
            "{governor:?} {command} {from}->{to}"
        );
    }
    // The hook: a rule added before the shipped ones maps a new source.
    let sla = Rule {
        governor: GovernorKind::Audit,
        command: Some("record_host_alarm"),
        to: None,
        event: EventKind::SlaViolated,
    };
    let rules: Vec<Rule> = std::iter::once(sla).chain(RULES.iter().copied()).collect();
    let k = kind_of(&rules, GovernorKind::Audit, "record_host_alarm", "recording", "recording");
    assert_eq!(k, Some(EventKind::SlaViolated));
}

#[test]
fn event_ids_are_the_receipt_seq_and_parse_back_in_one_spelling() {
    assert_eq!(event_id(42), "evt_42");
    assert_eq!(event_seq("evt_42"), Some(42));
    for bad in ["evt_", "evt_042", "evt_-1", "evt_4x", "ev_42", "evt_99999999999999999999"] {
        assert_eq!(event_seq(bad), None, "{bad}");
    }
    for k in EventKind::ALL {
        assert_eq!(EventKind::from_name(k.name()), Some(k));
    }
}

#[test]
fn an_event_body_is_one_encoding_of_the_receipt() {
    let b = body(GovernorKind::Quota, "record_usage", "normal", "warning");
    let e = Event::of(RULES, &b, 12, "ab".repeat(32)).expect("an event");
    assert_eq!(e.id(), "evt_12");
    let text = String::from_utf8(e.body()).expect("utf-8");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["id"], "evt_12");
    assert_eq!(v["type"], "quota.warning");
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["created_ms"], 1_767_225_600_000u64);
    assert_eq!(v["data"]["to"], "warning");
    assert_eq!(v["data"]["receipt_seq"], 12);
    assert_eq!(e.body(), Event::of(RULES, &b, 12, "ab".repeat(32)).expect("event").body());
}

#[test]
fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half_drawn_from_the_id() {
    let p = RetryPolicy {
        attempts_max: 10,
        base: Duration::from_secs(1),
        cap: Duration::from_secs(60),
        attempt_timeout: Duration::from_secs(5),
    };
    for attempt in 1..=40u32 {
        let full = if attempt > 7 {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(60))
        };
        let d = p.delay(attempt, "evt_7");
        assert!(
            d >= full / 2 && d <= full,
            "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
            full / 2
        );
        assert_eq!(d, p.delay(attempt, "evt_7"), "deterministic");
    }
    // Two events' retries spread out.
    let spread: std::collections::BTreeSet<_> = (0..20).map(|i| p.delay(3, &event_id(i))).collect();
    assert!(spread.len() > 10, "{spread:?}");
    assert!(p.retries_after(9) && !p.retries_after(10));
    assert!(
        delivered(200) && delivered(204) && !delivered(500) && !delivered(404) && !delivered(301)
    );
}
