//! Concrete machine states of every kind and their pinned bytes, and each way a state's bytes
//! are refused, by field. The properties are in `props.rs`; the figures in `benches/codec.rs`.

use rust_decimal::Decimal;

use super::{CodecProblem, Machine, StateCodecError, kind_of_tag, kind_tag};
use crate::governor::Governor;
use crate::kind::GovernorKind;
use crate::limits::{STATE_LEN_MAX, TEXT_ARG_LEN_MAX};
use crate::money::{Currency, Money};
use crate::testing::{T0_MS, transcript};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{
    account, audit, billing, catalog, compliance, entitlement, quota, saga, subscription, tenant,
};

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn usd(cents: i64) -> Money {
    Money::new(Decimal::new(cents, 2), Currency::from_code("USD").expect("USD")).expect("money")
}

/// Runs `steps` (all accepted) from the initial machine.
#[track_caller]
fn machine<G: Governor>(steps: &[(u64, G::Command)]) -> G {
    let mut m = G::default();
    let out = transcript(&mut m, steps);
    assert!(!out.contains("rejected"), "{out}");
    m
}

/// `m` encodes to `expected` (hex), and those bytes decode to `m`, typed and by kind.
#[track_caller]
fn pinned<G: Governor>(m: &G, expected: &str)
where
    Machine: From<G>,
{
    let bytes = m.encode_state().expect("encodes");
    assert_eq!(hex(&bytes), expected, "{m:?}");
    assert_eq!(G::decode_state(&bytes).as_ref(), Ok(m));
    assert_eq!(Machine::decode_state(G::KIND, &bytes), Ok(Machine::from(m.clone())));
}

#[track_caller]
fn refused<G: Governor>(bytes: &[u8], field: &'static str, problem: CodecProblem) {
    assert_eq!(
        G::decode_state(bytes),
        Err(StateCodecError { kind: G::KIND, field, problem }),
        "{}",
        hex(bytes)
    );
}

#[test]
fn a_trial_subscription() {
    use subscription::Command as C;
    let m: subscription::Subscription =
        machine(&[(0, C::StartTrial { plan: "pro".into(), trial_days: 14 })]);
    // Tag 4, version 2, state 1 (free_trial), plan "pro" (present, 3 bytes), trial end
    // (present, LEB128 ms), no activation, no end, no plan change, no previous plan.
    pinned(&m, "040201010370726f0180e0cef7bb3300000000");
    // The same state as version 1 wrote it (before plan changes) still decodes.
    let v1 = (0..34).step_by(2).map(|i| {
        u8::from_str_radix(&"040101010370726f0180e0cef7bb330000"[i..i + 2], 16).expect("hex")
    });
    assert_eq!(subscription::Subscription::decode_state(&v1.collect::<Vec<u8>>()).as_ref(), Ok(&m));
    assert_eq!(m.trial_end(), Some(Timestamp(T0_MS + 14 * DAY_MS)));
}

#[test]
fn a_billing_with_an_amount_and_a_settled_refund() {
    use billing::{Command as C, PaymentMethod};
    let m: billing::Billing = machine(&[
        (0, C::RequestPayment { money: usd(10_000), method: PaymentMethod::Card }),
        (0, C::AuthorizePayment { transaction_id: "txn_1".into(), money: None }),
        (0, C::SettlePayment { money: None }),
        (1, C::RequestRefund { money: usd(4_050) }),
        (1, C::ProcessRefund { money: None }),
        (2, C::SettleRefund { money: None }),
    ]);
    assert_eq!(m.refunded(), Decimal::new(4_050, 2));
    // ... refund_settled, money present: "USD" then 100 as 16 bytes; card; "txn_1";
    // 1 attempt; refunded 40.5 (scale 1, 405); no refund pending, dispute or failure code.
    pinned(
        &m,
        "02010801555344000000006400000000000000000000000100010574786e5f3101000001009501000000000000000000000000000180d0eab6b733",
    );
}

#[test]
fn equal_billing_machines_give_equal_bytes_whatever_the_refunds_added_up() {
    use billing::{Command as C, PaymentMethod};
    let refunds = |cents: &[i64]| {
        let mut steps = vec![
            (0, C::RequestPayment { money: usd(10_000), method: PaymentMethod::Card }),
            (0, C::AuthorizePayment { transaction_id: "txn_1".into(), money: None }),
            (0, C::SettlePayment { money: None }),
        ];
        for c in cents {
            steps.push((1, C::RequestRefund { money: usd(*c) }));
            steps.push((1, C::ProcessRefund { money: None }));
            steps.push((1, C::SettleRefund { money: None }));
        }
        machine::<billing::Billing>(&steps)
    };
    let (halves, whole) = (refunds(&[50, 50]), refunds(&[100]));
    assert_eq!(halves, whole);
    assert_eq!(halves.refunded().to_string(), "1");
    assert_eq!(halves.encode_state(), whole.encode_state());
}

#[test]
fn an_active_account() {
    use account::{Channel, Command as C, Email};
    let email = Email::parse("ada@example.com").expect("email");
    let m: account::Account = machine(&[
        (0, C::CreateAccount { email }),
        (0, C::VerifyAccount { channel: Channel::Phone }),
        (1, C::ActivateAccount),
    ]);
    pinned(&m, "050102010f616461406578616d706c652e636f6d0180d0eab6b73301010180d0eab6b73300");
}

#[test]
fn a_deprecated_product_with_a_sunset() {
    use catalog::Command as C;
    let m: catalog::Product = machine(&[
        (0, C::SubmitForApproval { sku: "PRO-2026.m".into() }),
        (1, C::ApproveProduct),
        (2, C::DeprecateProduct { sunset_at: Some(Timestamp(T0_MS + 90 * DAY_MS)) }),
    ]);
    pinned(
        &m,
        "030103010a50524f2d323032362e6d0180d0eab6b73301808884e0b7330180c09d89b833018080dcb2d43300",
    );
}

#[test]
fn a_compliance_audit_in_remediation_of_a_custom_domain() {
    use compliance::{Command as C, Domain, Severity};
    let m: compliance::Audit = machine(&[
        (0, C::StartAudit { domain: Domain::custom("eu-ai-act").expect("domain") }),
        (0, C::BeginReview),
        (1, C::MarkNonCompliant { severity: Severity::High, finding: "no DPIA".into() }),
        (1, C::RequestRemediation { deadline_days: 30 }),
    ]);
    pinned(&m, "07010401050965752d61692d616374010201076e6f2044504941018098ffb3c1330100");
}

#[test]
fn an_entitled_beta_grant() {
    use entitlement::{Command as C, GrantKind};
    let m: entitlement::Entitlement = machine(&[
        (
            0,
            C::GrantEntitlement {
                feature: "beta_dashboards".into(),
                expires_at: Some(Timestamp(T0_MS + 365 * DAY_MS)),
                kind: GrantKind::Beta,
                priority: 10,
            },
        ),
        (1, C::ApproveGrant),
        (2, C::SuspendEntitlement),
        (3, C::ReinstateEntitlement),
    ]);
    pinned(
        &m,
        "010102010f626574615f64617368626f617264730180a8aff4ac340180d0eab6b73301808884e0b73301030a",
    );
}

#[test]
fn a_throttled_quota_from_metered_usage() {
    use quota::{Command as C, UsageBatch};
    let m: quota::Quota = machine(&[(
        0,
        C::RecordUsage(UsageBatch {
            meter: "api_calls".into(),
            period: 672,
            total: 3,
            usage: 95,
            limit: Some(100),
            events: vec![(T0_MS, "e1".into()), (T0_MS + 1, "e2".into())],
        }),
    )]);
    pinned(&m, "06010200015f01640180d0eab6b73301a005");
}

#[test]
fn a_saga_compensating_after_a_failed_step() {
    use saga::Command as C;
    let m: saga::Saga = machine(&[
        (0, C::Begin { saga: "onboarding".into(), steps: 3, params: "plan=pro\n".into() }),
        (0, C::StepDone { step: 0 }),
        (0, C::StepDone { step: 1 }),
        (0, C::StepFailed { step: 2, reason: "declined".into() }),
        (0, C::CompensationFailed { step: 1, attempt: 2, reason: "busy".into() }),
    ]);
    pinned(
        &m,
        "0a0102010a6f6e626f617264696e6709706c616e3d70726f0a0302020102086465636c696e656402000180d0eab6b733",
    );
}

#[test]
fn a_tenant_in_maintenance() {
    use tenant::{Command as C, ResourceQuota};
    let quota = ResourceQuota { storage_gb: 500, compute_units: 16, bandwidth_mbps: 1_000 };
    let m: tenant::Tenant = machine(&[
        (0, C::ProvisionTenant { quota }),
        (0, C::ActivateTenant),
        (1, C::ScheduleMaintenance { duration_minutes: Some(120) }),
    ]);
    pinned(&m, "08010401f40310e8070180c2bbe3b7330180d0eab6b73300");
}

#[test]
fn an_audit_trail_with_counts() {
    let samples = <audit::Command as crate::CommandSpec>::samples(&Ctx::at_ms(T0_MS));
    let steps: Vec<_> = samples.into_iter().map(|c| (0, c)).collect();
    let m: audit::Trail = machine(&steps);
    pinned(&m, "090100010180d0eab6b733030d0101");
}

/// `m` round-trips, typed and by kind, and is in state `state`.
#[track_caller]
fn round_trips<G: Governor>(m: &G, state: &str)
where
    Machine: From<G>,
{
    let bytes = m.encode_state().expect("encodes");
    assert_eq!(G::decode_state(&bytes).as_ref(), Ok(m));
    let dynamic = Machine::decode_state(G::KIND, &bytes).expect("decodes by kind");
    assert_eq!(dynamic.state_name(), state);
    assert_eq!(dynamic.encode_state(), Ok(bytes));
}

#[test]
fn more_states_of_each_kind_round_trip() {
    use crate::StateTimeout;
    let a: account::Account = machine(&[
        (
            0,
            account::Command::CreateAccount {
                email: account::Email::parse("bob+1@mail.example.org").expect("email"),
            },
        ),
        (3, account::Command::CloseAccount),
    ]);
    round_trips(&a, "closed");
    let b: billing::Billing = machine(&[
        (
            0,
            billing::Command::RequestPayment {
                money: Money::new(Decimal::new(1_500, 0), Currency::from_code("JPY").expect("JPY"))
                    .expect("money"),
                method: billing::PaymentMethod::SepaDebit,
            },
        ),
        (0, billing::Command::FailPayment { code: Some("insufficient_funds".into()), money: None }),
        (1, billing::Command::RetryPayment { money: None }),
    ]);
    round_trips(&b, "payment_pending");
    assert_eq!(b.attempts(), 2);
    let q: quota::Quota = machine(&[
        (
            0,
            quota::Command::CheckQuota {
                resource: quota::Resource::Seats,
                usage: u64::MAX,
                limit: 1,
            },
        ),
        (0, quota::Command::DegradeMode),
    ]);
    round_trips(&q, "degraded_mode");
    let s: saga::Saga = machine(&[
        (0, saga::Command::Begin { saga: "offboarding".into(), steps: 1, params: String::new() }),
        (0, saga::Command::StepDone { step: 0 }),
    ]);
    round_trips(&s, "completed");
    let sub: subscription::Subscription = machine(&[
        (0, subscription::Command::Activate { plan: Some("team".into()) }),
        (0, subscription::Command::RequestCancellation),
        (
            0,
            subscription::Command::ConfirmCancellation {
                ends_at: Some(Timestamp(T0_MS + 30 * DAY_MS)),
            },
        ),
    ]);
    round_trips(&sub, "cancellation_confirmed");
    let decoded = subscription::Subscription::decode_state(&sub.encode_state().expect("encodes"))
        .expect("decodes");
    assert_eq!(
        decoded.state_timeout(),
        Some(StateTimeout {
            at: Timestamp(T0_MS + 30 * DAY_MS),
            command: subscription::Command::Terminate
        })
    );
    let c: compliance::Audit = machine(&[
        (0, compliance::Command::StartAudit { domain: compliance::Domain::PciDss }),
        (0, compliance::Command::BeginReview),
        (0, compliance::Command::MarkCompliant),
    ]);
    round_trips(&c, "compliant");
}

#[test]
fn every_initial_machine_round_trips_behind_its_kind_and_version() {
    for kind in GovernorKind::ALL {
        let m = Machine::new(kind);
        let bytes = m.encode_state().expect("encodes");
        // Subscription's format is at version 2 (plan changes); every other kind's at 1.
        let version = if kind == GovernorKind::Subscription { 2 } else { 1 };
        assert_eq!(bytes[..2], [kind_tag(kind), version]);
        assert_eq!(Machine::decode_state(kind, &bytes), Ok(m), "{kind}");
        assert_eq!(kind_of_tag(kind_tag(kind)), Some(kind));
    }
    assert_eq!(kind_of_tag(0), None);
    assert_eq!(kind_of_tag(11), None);
}

#[test]
fn another_kinds_state_is_refused_by_kind() {
    let bytes = Machine::new(GovernorKind::Billing).encode_state().expect("encodes");
    refused::<account::Account>(
        &bytes,
        "kind",
        CodecProblem::WrongKind { found: Some(GovernorKind::Billing) },
    );
    refused::<account::Account>(&[0xee, 1], "kind", CodecProblem::WrongKind { found: None });
}

#[test]
fn a_machine_replays_only_its_own_kinds_records() {
    let mut m = Machine::new(GovernorKind::Quota);
    let at = Timestamp(T0_MS);
    let args = crate::args::Args::new();
    let err = m.replay_step("billing", "authorize", &args, "pending", "authorized", at);
    assert_eq!(
        err,
        Err(crate::governor::ReplayError::WrongGovernor {
            expected: GovernorKind::Quota,
            found: "billing".into()
        })
    );
    assert_eq!(m, Machine::new(GovernorKind::Quota), "unchanged");
}

#[test]
fn header_and_length_are_checked_first() {
    type A = account::Account;
    refused::<A>(&[], "kind", CodecProblem::Truncated);
    refused::<A>(&[5], "version", CodecProblem::Truncated);
    refused::<A>(&[5, 2], "version", CodecProblem::UnsupportedVersion { found: 2, supported: 1 });
    refused::<A>(&[5, 1], "state", CodecProblem::Truncated);
    refused::<A>(&[5, 1, 6], "state", CodecProblem::BadTag { tag: 6 });
    let huge = vec![0; STATE_LEN_MAX + 1];
    refused::<A>(
        &huge,
        "input",
        CodecProblem::TooLong { len: STATE_LEN_MAX + 1, max: STATE_LEN_MAX },
    );
    // The initial account, then a byte too many.
    refused::<A>(&[5, 1, 0, 0, 0, 0, 0, 0, 0], "input", CodecProblem::TrailingBytes { len: 1 });
    refused::<A>(&[5, 1, 0, 2, 0, 0, 0, 0], "email", CodecProblem::BadTag { tag: 2 });
}

#[test]
fn integers_are_read_in_their_shortest_form_only() {
    type T = audit::Trail;
    // quarantines = 1 written in two bytes.
    refused::<T>(&[9, 1, 0, 0x81, 0x00], "quarantines", CodecProblem::NotCanonical);
    // Eleven bytes, and a tenth byte beyond bit 63.
    let mut long = vec![9, 1, 0];
    long.extend([0xff; 9]);
    long.push(0x02);
    refused::<T>(&long, "quarantines", CodecProblem::OutOfRange);
    // u64::MAX itself is read.
    let mut max = vec![9, 1, 0];
    max.extend([0xff; 9]);
    max.extend([0x01, 0, 0, 0, 0, 0]);
    let m = T::decode_state(&max).expect("u64::MAX quarantines");
    assert_eq!(m.quarantines(), u64::MAX);
    assert_eq!(m.encode_state(), Ok(max));
    // A u32 field beyond u32: entitlement suspensions.
    let mut e = vec![1, 1, 0, 0, 0, 0, 0];
    e.extend([0x80, 0x80, 0x80, 0x80, 0x10]);
    refused::<entitlement::Entitlement>(&e, "suspensions", CodecProblem::OutOfRange);
}

#[test]
fn texts_are_bounded_before_they_are_read() {
    type S = subscription::Subscription;
    // A plan claiming 2^63 bytes, one claiming one byte more than the limit, one cut short.
    let mut huge = vec![4, 1, 0, 1];
    huge.extend([0xff; 8]);
    huge.push(0x7f);
    refused::<S>(
        &huge,
        "plan",
        CodecProblem::TooLong { len: (1 << 63) - 1, max: TEXT_ARG_LEN_MAX },
    );
    let over = TEXT_ARG_LEN_MAX + 1;
    refused::<S>(
        &[4, 1, 0, 1, 0x81, 0x02],
        "plan",
        CodecProblem::TooLong { len: over, max: TEXT_ARG_LEN_MAX },
    );
    refused::<S>(&[4, 1, 0, 1, 3, b'p', b'r'], "plan", CodecProblem::Truncated);
    refused::<S>(&[4, 1, 0, 1, 1, 0xff, 0, 0, 0], "plan", CodecProblem::NotUtf8);
}

#[test]
fn a_typed_command_beyond_the_argument_limit_does_not_encode() {
    use subscription::Command as C;
    let plan = "p".repeat(TEXT_ARG_LEN_MAX + 1);
    let m: subscription::Subscription = machine(&[(0, C::Activate { plan: Some(plan) })]);
    assert_eq!(
        m.encode_state(),
        Err(StateCodecError {
            kind: GovernorKind::Subscription,
            field: "plan",
            problem: CodecProblem::TooLong { len: TEXT_ARG_LEN_MAX + 1, max: TEXT_ARG_LEN_MAX },
        })
    );
}

#[test]
fn money_and_values_are_checked_by_their_own_rules() {
    type B = billing::Billing;
    let paid = {
        let m: B = machine(&[(
            0,
            billing::Command::RequestPayment {
                money: usd(1_990),
                method: billing::PaymentMethod::Card,
            },
        )]);
        m.encode_state().expect("encodes")
    };
    // tag, version, state, money present, "USD", then the 16-byte amount at 7..23.
    assert_eq!(&paid[4..7], b"USD");
    let with = |at: usize, byte: u8| {
        let mut b = paid.clone();
        b[at] = byte;
        b
    };
    // An unknown code, and a known one in lower case (not the one form written).
    let currency = CodecProblem::Invalid { expected: "an ISO 4217 currency code" };
    refused::<B>(&with(4, b'X'), "money", currency.clone());
    refused::<B>(&with(4, b'u'), "money", currency);
    // Stray flag bits; a scale of 29.
    refused::<B>(&with(7, 1), "money", CodecProblem::NotCanonical);
    refused::<B>(&with(9, 29), "money", CodecProblem::NotCanonical);
    // Negative; three decimals for a two-decimal currency; 19.90 instead of 19.9.
    let invalid = CodecProblem::Invalid { expected: "a positive amount of the currency" };
    refused::<B>(&with(10, 0x80), "money", invalid.clone());
    refused::<B>(&with(9, 3), "money", invalid);
    let mut unnormalised = paid.clone();
    unnormalised[7..23].copy_from_slice(&Decimal::new(1_990, 2).serialize());
    refused::<B>(&unnormalised, "money", CodecProblem::NotCanonical);

    let account = [5, 1, 0, 1, 3, b'a', b'@', b'b', 0, 0, 0, 0];
    refused::<account::Account>(
        &account,
        "email",
        CodecProblem::Invalid { expected: "an e-mail address such as ada@example.com" },
    );
    let audit = [7, 1, 0, 1, 5, 2, b'A', b'B', 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        compliance::Audit::decode_state(&audit),
        Err(StateCodecError { field: "domain", problem: CodecProblem::Invalid { .. }, .. })
    ));
}

#[test]
fn the_largest_saga_fits_the_state_limit() {
    use saga::Command as C;
    let long = "x".repeat(TEXT_ARG_LEN_MAX);
    let m: saga::Saga = machine(&[
        (
            0,
            C::Begin {
                saga: long.clone(),
                steps: saga::SAGA_STEPS_MAX,
                params: "p".repeat(saga::SAGA_PARAMS_LEN_MAX),
            },
        ),
        (0, C::StepDone { step: 0 }),
        (0, C::StepFailed { step: 1, reason: long.clone() }),
        (0, C::CompensationFailed { step: 0, attempt: u32::MAX, reason: long.clone() }),
        (0, C::GiveUp { reason: long }),
    ]);
    let bytes = m.encode_state().expect("the largest saga encodes");
    assert!(bytes.len() <= STATE_LEN_MAX, "{}", bytes.len());
    assert_eq!(saga::Saga::decode_state(&bytes), Ok(m));
}
