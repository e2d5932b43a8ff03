//! Property tests of the state codec, for every kind: a machine encoded after random commands
//! and decoded goes on exactly as the one that was never encoded (decisions, states, timeouts,
//! receipts replayed onto it); the same machine gives the same bytes; truncated, corrupted or
//! arbitrary bytes give an error or a valid machine in their one canonical form, never a panic.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rust_decimal::Decimal;

use crate::args::{Args, CommandSpec};
use crate::codec::Machine;
use crate::governor::{Governor, StateSpec, replay_step};
use crate::kind::GovernorKind;
use crate::money::{Currency, Money};
use crate::testing::T0_MS;
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{
    account, audit, billing, catalog, compliance, entitlement, quota, saga, subscription, tenant,
};

/// Commands per generated history.
const STEPS_MAX: usize = 40;

/// A recorded accepted transition, as a receipt keeps it.
struct Record {
    command: &'static str,
    args: Args,
    from: &'static str,
    to: &'static str,
    at: Timestamp,
}

/// `(time since the previous command in ms, command)` histories, and where to cut them.
fn history<C: std::fmt::Debug + Clone>(
    command: impl Strategy<Value = C>,
) -> impl Strategy<Value = (Vec<(u64, C)>, Index, u8)> {
    let gap = prop_oneof![3 => 0..=2 * DAY_MS, 1 => 0..=400 * DAY_MS];
    (prop::collection::vec((gap, command), 0..STEPS_MAX), any::<Index>(), 1..=u8::MAX)
}

/// One of `C`'s samples at the test epoch.
fn sample<C: CommandSpec>() -> impl Strategy<Value = C> {
    prop::sample::select(C::samples(&Ctx::at_ms(T0_MS)))
}

/// A timestamp within two years of the test epoch.
fn instant() -> impl Strategy<Value = Timestamp> {
    (0..730 * DAY_MS).prop_map(|ms| Timestamp(T0_MS + ms))
}

/// A text argument: non-empty, not only white space, at most 40 bytes, some of it non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-z0-9_é€ -]{0,39}[a-z0-9]"
}

/// Money in one of four currencies (0, 2 and 3 decimals), any valid amount.
fn money() -> impl Strategy<Value = Money> {
    (1..1_000_000_000i64, 0..=3u32, prop::sample::select(vec!["USD", "EUR", "JPY", "BHD"]))
        .prop_filter_map("an amount the currency allows", |(units, scale, code)| {
            Money::new(Decimal::new(units, scale), Currency::from_code(code)?).ok()
        })
}

/// US dollars, cents 1 to 150.00: refunds of the samples' 100.00 USD payment.
fn usd() -> impl Strategy<Value = Money> {
    (1..15_000i64).prop_filter_map("a valid amount", |cents| {
        Money::new(Decimal::new(cents, 2), Currency::from_code("USD")?).ok()
    })
}

/// Sometimes the amount a command may state: a sample payment's or refund's, or another.
fn stated() -> impl Strategy<Value = Option<Money>> {
    prop::option::weighted(0.2, usd())
}

/// Runs `steps` on a fresh machine, and again from `machine` encoded and decoded after the
/// first `cut` of them, and from receipts replayed after the state was decoded: every
/// decision, state and timeout must agree. Then corrupts the final bytes.
fn resumes_exactly<G: Governor>(
    steps: &[(u64, G::Command)],
    cut: Index,
    mask: u8,
) -> Result<(), TestCaseError>
where
    Machine: From<G>,
{
    let cut = cut.index(steps.len() + 1);
    let mut whole = G::default();
    let mut resumed: Option<G> = None;
    let mut records = Vec::new();
    let mut records_before_cut = 0;
    let mut now = T0_MS;
    for (i, (gap, command)) in steps.iter().enumerate() {
        if i == cut {
            resumed = Some(round_trip(&whole)?);
            records_before_cut = records.len();
        }
        now += gap;
        let ctx = Ctx::at_ms(now);
        let from = whole.state().name();
        let mut completed = command.clone();
        let decided = whole.accept(&mut completed, &ctx);
        if let Some(resumed) = resumed.as_mut() {
            prop_assert_eq!(&resumed.apply(command, &ctx), &decided, "step {}", i);
        }
        if let Ok(t) = decided {
            whole.evolve(&completed, t.to, ctx.now);
            records.push(Record {
                command: completed.name(),
                args: completed.args(),
                from,
                to: t.to.name(),
                at: ctx.now,
            });
        }
        if let Some(resumed) = resumed.as_ref() {
            prop_assert_eq!(resumed, &whole, "after step {}", i);
            prop_assert_eq!(resumed.state_timeout(), whole.state_timeout());
        }
    }
    if cut == steps.len() {
        records_before_cut = records.len();
        resumed = Some(round_trip(&whole)?);
    }
    prop_assert_eq!(resumed.as_ref(), Some(&whole));

    // Receipts replayed onto the decoded state of their prefix give the whole history's.
    let mut replayed = G::default();
    for r in &records[..records_before_cut] {
        replay(&mut replayed, r)?;
    }
    let mut replayed = round_trip(&replayed)?;
    for r in &records[records_before_cut..] {
        replay(&mut replayed, r)?;
    }
    prop_assert_eq!(&replayed, &whole);

    // The same through `Machine`, the kind known only at run time, from the decoded prefix.
    let mut dynamic =
        Machine::decode_state(G::KIND, &whole_prefix_bytes::<G>(&records[..records_before_cut])?)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for r in &records[records_before_cut..] {
        dynamic
            .replay_step(G::KIND.name(), r.command, &r.args, r.from, r.to, r.at)
            .map_err(|e| TestCaseError::fail(format!("replay of {}: {e}", r.command)))?;
    }
    prop_assert_eq!(dynamic, Machine::from(whole.clone()));

    corrupted_bytes_are_refused_or_canonical(&whole, mask)
}

/// The bytes of the machine `records` replay into from the initial one.
fn whole_prefix_bytes<G: Governor>(records: &[Record]) -> Result<Vec<u8>, TestCaseError> {
    let mut m = G::default();
    for r in records {
        replay(&mut m, r)?;
    }
    m.encode_state().map_err(|e| TestCaseError::fail(e.to_string()))
}

fn replay<G: Governor>(machine: &mut G, r: &Record) -> Result<(), TestCaseError> {
    replay_step(machine, G::KIND.name(), r.command, &r.args, r.from, r.to, r.at)
        .map_err(|e| TestCaseError::fail(format!("replay of {}: {e}", r.command)))
}

/// `machine` encoded and decoded, after checking that its bytes are deterministic and that
/// the decoded machine equals it and encodes to the same bytes.
fn round_trip<G: Governor>(machine: &G) -> Result<G, TestCaseError>
where
    Machine: From<G>,
{
    let bytes = machine.encode_state().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let again = machine.clone().encode_state();
    prop_assert_eq!(again.as_ref(), Ok(&bytes), "deterministic");
    let decoded = G::decode_state(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, machine);
    prop_assert_eq!(decoded.encode_state(), Ok(bytes), "same state, same bytes");
    prop_assert_eq!(decoded.state_timeout(), machine.state_timeout());
    let dynamic = Machine::from(machine.clone());
    prop_assert_eq!(dynamic.kind(), G::KIND);
    prop_assert_eq!(dynamic.state_name(), machine.state().name());
    let bytes = dynamic.encode_state().map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(Machine::decode_state(G::KIND, &bytes), Ok(dynamic));
    Ok(decoded)
}

/// Every truncation of `machine`'s bytes is refused; every byte xor-ed with `mask` is refused
/// or decodes to a machine whose bytes are exactly the corrupted ones, and which decides
/// every sample command without panicking.
fn corrupted_bytes_are_refused_or_canonical<G: Governor>(
    machine: &G,
    mask: u8,
) -> Result<(), TestCaseError> {
    let bytes = machine.encode_state().map_err(|e| TestCaseError::fail(e.to_string()))?;
    for len in 0..bytes.len() {
        prop_assert!(G::decode_state(&bytes[..len]).is_err(), "truncated to {}", len);
    }
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert!(G::decode_state(&longer).is_err(), "a trailing byte");
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= mask;
        if let Ok(m) = G::decode_state(&bad) {
            prop_assert_eq!(m.encode_state(), Ok(bad), "byte {} ^ {:#x}", i, mask);
            exercise(&m);
        }
    }
    Ok(())
}

/// Decides and applies every sample command to copies of `machine`, at three times; a decoded
/// machine must not panic whatever its values.
fn exercise<G: Governor>(machine: &G) {
    let _ = machine.state_timeout();
    for at in [0, T0_MS, u64::MAX] {
        let ctx = Ctx::at_ms(at);
        for command in G::Command::samples(&ctx) {
            let mut m = machine.clone();
            let _ = m.apply(&command, &ctx);
            let _ = m.state_timeout();
        }
    }
}

/// [`exercise`] for a machine of a kind known at run time.
fn exercise_machine(m: &Machine) {
    match m {
        Machine::Entitlement(m) => exercise(m),
        Machine::Billing(m) => exercise(m),
        Machine::Catalog(m) => exercise(m),
        Machine::Subscription(m) => exercise(m),
        Machine::Account(m) => exercise(m),
        Machine::Quota(m) => exercise(m),
        Machine::Compliance(m) => exercise(m),
        Machine::Tenant(m) => exercise(m),
        Machine::Audit(m) => exercise(m),
        Machine::Saga(m) => exercise(m),
    }
}

fn account_command() -> impl Strategy<Value = account::Command> {
    use account::{Channel, Command as C, Email};
    prop_oneof![
        4 => sample::<C>(),
        1 => "[a-z0-9.+]{1,20}@[a-z]{1,10}\\.(com|org|example)".prop_filter_map(
            "a valid address",
            |s| Email::parse(&s).ok().map(|email| C::CreateAccount { email })
        ),
        1 => prop::sample::select(Channel::ALL).prop_map(|channel| C::VerifyAccount { channel }),
    ]
}

fn billing_command() -> impl Strategy<Value = billing::Command> {
    use billing::{Command as C, PaymentMethod};
    prop_oneof![
        6 => sample::<C>(),
        1 => (money(), prop::sample::select(PaymentMethod::ALL))
            .prop_map(|(money, method)| C::RequestPayment { money, method }),
        1 => (text(), stated())
            .prop_map(|(transaction_id, money)| C::AuthorizePayment { transaction_id, money }),
        1 => (prop::option::of(text()), stated())
            .prop_map(|(code, money)| C::FailPayment { code, money }),
        2 => usd().prop_map(|money| C::RequestRefund { money }),
        1 => stated().prop_map(|money| C::SettleRefund { money }),
        1 => (text(), stated()).prop_map(|(dispute_id, money)| C::DisputePayment { dispute_id, money }),
    ]
}

fn catalog_command() -> impl Strategy<Value = catalog::Command> {
    use catalog::Command as C;
    prop_oneof![
        4 => sample::<C>(),
        1 => "[A-Za-z0-9._-]{1,64}".prop_map(|sku| C::SubmitForApproval { sku }),
        1 => prop::option::of(instant()).prop_map(|sunset_at| C::DeprecateProduct { sunset_at }),
    ]
}

fn compliance_command() -> impl Strategy<Value = compliance::Command> {
    use compliance::{Command as C, Domain, Severity};
    let domain = prop_oneof![
        prop::sample::select(vec![
            Domain::Gdpr,
            Domain::Hipaa,
            Domain::Soc2,
            Domain::PciDss,
            Domain::Iso27001
        ]),
        "[a-z0-9_-]{1,64}".prop_filter_map("a custom domain", |s| Domain::custom(&s)),
    ];
    prop_oneof![
        4 => sample::<C>(),
        1 => domain.prop_map(|domain| C::StartAudit { domain }),
        1 => (prop::sample::select(Severity::ALL), text())
            .prop_map(|(severity, finding)| C::MarkNonCompliant { severity, finding }),
        1 => (1..=365u32).prop_map(|deadline_days| C::RequestRemediation { deadline_days }),
    ]
}

fn entitlement_command() -> impl Strategy<Value = entitlement::Command> {
    use entitlement::{Command as C, GrantKind};
    prop_oneof![
        4 => sample::<C>(),
        2 => (text(), prop::option::of(instant()), prop::sample::select(GrantKind::ALL.to_vec()), 0..=1_000u32)
            .prop_map(|(feature, expires_at, kind, priority)| C::GrantEntitlement {
                feature,
                expires_at,
                kind,
                priority,
            }),
    ]
}

fn quota_command() -> impl Strategy<Value = quota::Command> {
    use quota::{Command as C, Resource, UsageBatch};
    let batch = (0..4u64, 1..500u64, 0..500u64, prop::option::of(1..400u64), 1..4usize).prop_map(
        |(period, total, extra, limit, n)| {
            let events = (0..n).map(|i| (T0_MS + i as u64, format!("evt-{i}"))).collect();
            UsageBatch {
                meter: "api_calls".into(),
                period,
                total,
                usage: total + extra,
                limit,
                events,
            }
        },
    );
    prop_oneof![
        4 => sample::<C>(),
        2 => (prop::sample::select(Resource::ALL), any::<u64>(), 1..=u64::MAX)
            .prop_map(|(resource, usage, limit)| C::CheckQuota { resource, usage, limit }),
        2 => (prop::sample::select(vec![Resource::ApiCalls]), 0..200u64, 1..200u64)
            .prop_map(|(resource, usage, limit)| C::CheckQuota { resource, usage, limit }),
        2 => batch.prop_map(C::RecordUsage),
        1 => prop::option::of(1..1_000u64).prop_map(|limit| C::RestoreResources { limit }),
    ]
}

fn saga_command() -> impl Strategy<Value = saga::Command> {
    use saga::Command as C;
    let step = 0..4u32;
    prop_oneof![
        3 => sample::<C>(),
        1 => (text(), 1..=4u32, "([a-z]{1,8}=[a-z0-9]{0,8}\n){0,3}")
            .prop_map(|(saga, steps, params)| C::Begin { saga, steps, params }),
        2 => step.clone().prop_map(|step| C::StepDone { step }),
        1 => (step.clone(), text()).prop_map(|(step, reason)| C::StepFailed { step, reason }),
        2 => step.clone().prop_map(|step| C::Compensated { step }),
        1 => (step, 1..=u32::MAX, text())
            .prop_map(|(step, attempt, reason)| C::CompensationFailed { step, attempt, reason }),
        1 => text().prop_map(|reason| C::GiveUp { reason }),
    ]
}

fn subscription_command() -> impl Strategy<Value = subscription::Command> {
    use subscription::Command as C;
    prop_oneof![
        4 => sample::<C>(),
        1 => (text(), 1..=365u32).prop_map(|(plan, trial_days)| C::StartTrial { plan, trial_days }),
        1 => prop::option::of(text()).prop_map(|plan| C::Activate { plan }),
        1 => prop::option::of(instant()).prop_map(|ends_at| C::ConfirmCancellation { ends_at }),
    ]
}

fn tenant_command() -> impl Strategy<Value = tenant::Command> {
    use tenant::{Command as C, ResourceQuota};
    prop_oneof![
        4 => sample::<C>(),
        1 => (1..=u64::MAX, 1..=u64::MAX, 1..=u64::MAX).prop_map(|(s, c, b)| C::ProvisionTenant {
            quota: ResourceQuota { storage_gb: s, compute_units: c, bandwidth_mbps: b },
        }),
        1 => prop::option::of(1..=10_080u32)
            .prop_map(|duration_minutes| C::ScheduleMaintenance { duration_minutes }),
    ]
}

fn audit_command() -> impl Strategy<Value = audit::Command> {
    use audit::Command as C;
    prop_oneof![
        4 => sample::<C>(),
        1 => (1..=u64::MAX, any::<u64>()).prop_map(|(count, window_start_ms)| C::RecordRefusals {
            feature: "sso".into(),
            action: "login".into(),
            code: "quota_exceeded".into(),
            status: 429,
            decided_by: "default".into(),
            count,
            window_start_ms,
        }),
        1 => prop::collection::vec((1..=u64::MAX, "[a-z]{1,8}"), 1..4)
            .prop_map(|allowed| C::RecordChecks { window_start_ms: T0_MS, window_ms: 60_000, allowed }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn account_resumes_from_its_bytes((steps, cut, mask) in history(account_command())) {
        resumes_exactly::<account::Account>(&steps, cut, mask)?;
    }

    #[test]
    fn billing_resumes_from_its_bytes((steps, cut, mask) in history(billing_command())) {
        resumes_exactly::<billing::Billing>(&steps, cut, mask)?;
    }

    #[test]
    fn catalog_resumes_from_its_bytes((steps, cut, mask) in history(catalog_command())) {
        resumes_exactly::<catalog::Product>(&steps, cut, mask)?;
    }

    #[test]
    fn compliance_resumes_from_its_bytes((steps, cut, mask) in history(compliance_command())) {
        resumes_exactly::<compliance::Audit>(&steps, cut, mask)?;
    }

    #[test]
    fn entitlement_resumes_from_its_bytes((steps, cut, mask) in history(entitlement_command())) {
        resumes_exactly::<entitlement::Entitlement>(&steps, cut, mask)?;
    }

    #[test]
    fn quota_resumes_from_its_bytes((steps, cut, mask) in history(quota_command())) {
        resumes_exactly::<quota::Quota>(&steps, cut, mask)?;
    }

    #[test]
    fn saga_resumes_from_its_bytes((steps, cut, mask) in history(saga_command())) {
        resumes_exactly::<saga::Saga>(&steps, cut, mask)?;
    }

    #[test]
    fn subscription_resumes_from_its_bytes((steps, cut, mask) in history(subscription_command())) {
        resumes_exactly::<subscription::Subscription>(&steps, cut, mask)?;
    }

    #[test]
    fn tenant_resumes_from_its_bytes((steps, cut, mask) in history(tenant_command())) {
        resumes_exactly::<tenant::Tenant>(&steps, cut, mask)?;
    }

    #[test]
    fn audit_resumes_from_its_bytes((steps, cut, mask) in history(audit_command())) {
        resumes_exactly::<audit::Trail>(&steps, cut, mask)?;
    }

    /// Arbitrary bytes after a valid header (biased to small bytes, so that decoding gets
    /// past the first fields), and arbitrary bytes with no header at all.
    #[test]
    fn arbitrary_bytes_are_refused_or_canonical(
        kind in prop::sample::select(GovernorKind::ALL.to_vec()),
        body in prop::collection::vec(prop_oneof![4 => 0u8..4, 1 => any::<u8>()], 0..96),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = vec![crate::codec::kind_tag(kind), 1];
        bytes.extend_from_slice(&body);
        for input in [&bytes, &raw] {
            if let Ok(m) = Machine::decode_state(kind, input) {
                prop_assert_eq!(m.kind(), kind);
                let encoded = m.encode_state();
                prop_assert_eq!(encoded.as_ref(), Ok(input));
                exercise_machine(&m);
            }
        }
    }
}
