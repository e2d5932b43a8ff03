//! Exhaustive tables: every (state, command) pair of every governor is decided as specified.
//!
//! The expected tables below are written from the governor specs (docs/governors/), not
//! generated from the code. Each line is `state command outcome`, where outcome is the set
//! of target states over the command's samples (`a|b`), or `!kind` for a refusal of that
//! kind. A pair without a line must be refused with `invalid_transition`. Pairs are decided
//! on the representative machine that exploration found for the state (set-up commands such
//! as `create_account` already applied), at the time exploration explored it, through
//! `Governor::accept`, which completes an accepted command before its receipt is sealed, as
//! the runtime does; `BILLING_AMOUNTS` says which amount each billing receipt must then carry.

use std::collections::{BTreeMap, BTreeSet};

use govern_governors::graph::explore;
use govern_governors::{CommandSpec, Governor, Reason, Request, ResourceId, StateSpec, TenantId};
use govern_receipt::{Digest, Receipt, ReceiptBody};

const SUBSCRIPTION: &str = "
pending                start_trial           free_trial
pending                activate              active
free_trial             activate              active
free_trial             end_trial             paused
free_trial             request_cancellation  cancellation_requested
active                 suspend               suspended
active                 pause                 paused
active                 request_cancellation  cancellation_requested
active                 change_plan           active
active                 rollback_plan         !precondition_failed
suspended              resume                active
suspended              request_cancellation  cancellation_requested
paused                 resume                active
paused                 request_cancellation  cancellation_requested
cancellation_requested activate              active
cancellation_requested confirm_cancellation  cancellation_confirmed
cancellation_confirmed terminate             terminated
cancellation_confirmed archive               archived
terminated             archive               archived
";

const ENTITLEMENT: &str = "
unentitled     grant_entitlement      pending_review
unentitled     revoke_entitlement     revoked
pending_review approve_grant          entitled
pending_review deny_grant             unentitled
pending_review revoke_entitlement     revoked
entitled       suspend_entitlement    suspended
entitled       revoke_entitlement     revoked
entitled       expire                 expired
suspended      reinstate_entitlement  entitled
suspended      escalate_issue         escalated
suspended      revoke_entitlement     revoked
suspended      expire                 expired
escalated      resolve_escalation     entitled
escalated      revoke_entitlement     revoked
escalated      archive_entitlement    archived
expired        grant_entitlement      pending_review
expired        archive_entitlement    archived
revoked        archive_entitlement    archived
";

const BILLING: &str = "
uninitialized      request_payment   payment_pending
payment_pending    authorize_payment payment_authorized
payment_pending    fail_payment      payment_failed
payment_authorized process_payment   payment_processing
payment_authorized settle_payment    payment_settled
payment_authorized fail_payment      payment_failed
payment_processing settle_payment    payment_settled
payment_processing fail_payment      payment_failed
payment_settled    request_refund    refund_pending
payment_settled    dispute_payment   payment_disputed
payment_settled    close             terminated
payment_failed     retry_payment     payment_pending
payment_failed     close             terminated
refund_pending     process_refund    refund_processing
refund_pending     fail_refund       payment_settled
refund_processing  settle_refund     refund_settled
refund_processing  fail_refund       payment_settled
refund_settled     request_refund    refund_pending
refund_settled     dispute_payment   payment_disputed
refund_settled     close             terminated
payment_disputed   resolve_dispute   payment_settled|terminated
";

/// The amount and currency each billing command's receipt carries once accepted: the
/// command's own (`own`: the two requests state theirs), the payment's (`payment`) or the
/// pending refund's (`refund`). The others may state it and are refused
/// `precondition_failed` if they state another; left out, it is completed from the machine.
const BILLING_AMOUNTS: &str = "
request_payment   own
authorize_payment payment
process_payment   payment
settle_payment    payment
fail_payment      payment
retry_payment     payment
request_refund    own
process_refund    refund
settle_refund     refund
fail_refund       refund
dispute_payment   payment
resolve_dispute   payment
close             payment
";

const CATALOG: &str = "
draft            submit_for_approval pending_approval
pending_approval approve_product     active
pending_approval reject_product      rejected
active           deprecate_product   deprecated
active           delist_product      delisted
deprecated       activate_product    active
deprecated       delist_product      delisted
delisted         request_restore     restore_pending
restore_pending  activate_product    active
restore_pending  deny_restore        delisted
rejected         revise_product      draft
";

const ACCOUNT: &str = "
new        create_account   !precondition_failed
new        verify_account   verified
new        close_account    closed
verified   activate_account active
verified   close_account    closed
active     suspend_account  suspended
active     restrict_account restricted
active     close_account    closed
suspended  activate_account active
suspended  restrict_account restricted
suspended  close_account    closed
restricted lift_restriction active
restricted close_account    closed
";

const QUOTA: &str = "
normal        check_quota       normal|warning|throttled|exceeded
normal        send_warning      warning
warning       check_quota       normal|warning|throttled|exceeded
warning       throttle_traffic  throttled
throttled     check_quota       normal|warning|throttled|exceeded
throttled     mark_exceeded     exceeded
exceeded      check_quota       exceeded
exceeded      degrade_mode      degraded_mode
exceeded      start_remediation remediation
degraded_mode check_quota       normal|warning|throttled|degraded_mode
degraded_mode start_remediation remediation
remediation   check_quota       remediation
remediation   restore_resources restored
restored      check_quota       normal|warning|throttled|exceeded
restored      resume_normal     normal
normal        record_usage      warning
warning       record_usage      warning
throttled     record_usage      warning
exceeded      record_usage      exceeded
degraded_mode record_usage      warning
remediation   record_usage      remediation
restored      record_usage      warning
";

const COMPLIANCE: &str = "
pending_audit        start_audit         !precondition_failed
pending_audit        begin_review        under_review
under_review         mark_compliant      compliant
under_review         mark_non_compliant  non_compliant
compliant            begin_review        under_review
non_compliant        request_remediation remediation_required
remediation_required mark_compliant      compliant
remediation_required remediation_overdue non_compliant
";

const TENANT: &str = "
provisioning provision_tenant     provisioning
provisioning activate_tenant      active
provisioning deprovision_tenant   deprovisioned
active       suspend_tenant       suspended
active       mark_degraded        degraded
active       schedule_maintenance maintenance
active       deprovision_tenant   deprovisioned
suspended    activate_tenant      active
suspended    deprovision_tenant   deprovisioned
degraded     activate_tenant      active
degraded     suspend_tenant       suspended
degraded     schedule_maintenance maintenance
degraded     deprovision_tenant   deprovisioned
maintenance  end_maintenance      active
maintenance  deprovision_tenant   deprovisioned
";

const SAGA: &str = "
pending      begin               running
running      step_done           completed
running      step_failed         compensating
compensating compensated         compensated
compensating compensation_failed compensating
compensating give_up             stuck
stuck        resolve             compensated
";

/// What a (state, command) pair must do.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Targets(BTreeSet<String>),
    Refused(String),
}

fn parse_table<G: Governor>(table: &str) -> BTreeMap<(String, String), Outcome> {
    let mut out = BTreeMap::new();
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [state, command, outcome] = cols[..] else { panic!("bad table line {line:?}") };
        assert!(
            G::State::from_name(state).is_some(),
            "{}: table names unknown state {state}",
            G::KIND
        );
        assert!(
            G::Command::NAMES.contains(&command),
            "{}: table names unknown command {command}",
            G::KIND
        );
        let outcome = match outcome.strip_prefix('!') {
            Some(kind) => Outcome::Refused(kind.to_owned()),
            None => Outcome::Targets(outcome.split('|').map(str::to_owned).collect()),
        };
        let dup = out.insert((state.to_owned(), command.to_owned()), outcome);
        assert!(dup.is_none(), "{}: duplicate table line {line:?}", G::KIND);
    }
    out
}

fn check<G: Governor>(table: &str) {
    let expected = parse_table::<G>(table);
    let exploration = explore::<G>();
    let reached: BTreeSet<&str> =
        exploration.representatives.iter().map(|(s, ..)| s.name()).collect();
    for s in G::State::ALL {
        assert!(reached.contains(s.name()), "{}: state {} is unreachable", G::KIND, s.name());
    }
    let tenant = TenantId::new("t-1").unwrap();
    let resource = ResourceId::new("r-1").unwrap();
    for (state, machine, ctx) in &exploration.representatives {
        let samples = G::Command::samples(ctx);
        for name in G::Command::NAMES {
            let mut targets = BTreeSet::new();
            let mut refusals = BTreeSet::new();
            for sample in samples.iter().filter(|s| s.name() == *name) {
                let mut command = sample.clone();
                match machine.accept(&mut command, ctx) {
                    Err(r) => {
                        refusals.insert(r.kind().to_owned());
                    }
                    Ok(t) => {
                        assert_eq!(t.from, *state);
                        assert!(
                            !state.is_terminal(),
                            "{}: terminal {} accepted {name}",
                            G::KIND,
                            state.name()
                        );
                        targets.insert(t.to.name().to_owned());
                        check_receipt::<G>(machine, &command, t, ctx, &tenant, &resource);
                    }
                }
            }
            let key = (state.name().to_owned(), (*name).to_owned());
            let actual = if targets.is_empty() {
                Outcome::Refused(refusals.into_iter().collect::<Vec<_>>().join(","))
            } else {
                Outcome::Targets(targets)
            };
            let want = expected.get(&key).map_or(
                Outcome::Refused("invalid_transition".into()),
                |o| match o {
                    Outcome::Targets(t) => Outcome::Targets(t.clone()),
                    Outcome::Refused(k) => Outcome::Refused(k.clone()),
                },
            );
            assert_eq!(actual, want, "{}: {} --{name}-->", G::KIND, state.name());
        }
    }
}

/// An accepted pair's receipt (of the command as `Governor::accept` completed it, as the
/// runtime does) names the pair and replays to the same machine.
fn check_receipt<G: Governor>(
    machine: &G,
    command: &G::Command,
    t: govern_governors::Transition<G::State>,
    ctx: &govern_governors::Ctx,
    tenant: &TenantId,
    resource: &ResourceId,
) {
    let request = Request::new(command.clone(), Reason::new("exhaustive").unwrap());
    let body =
        ReceiptBody::for_transition::<G>(tenant.clone(), resource.clone(), 0, &request, t, ctx.now);
    let receipt = Receipt::seal(body, 0, Digest::ZERO);
    assert_eq!(receipt.body.governor, G::KIND);
    assert_eq!(receipt.body.command, command.name());
    assert_eq!(receipt.body.state_from, t.from.name());
    assert_eq!(receipt.body.state_to, t.to.name());
    assert_eq!(receipt.body.args, command.args());
    assert_eq!(receipt.body.timestamp, ctx.now);
    assert_eq!(Receipt::decode(&receipt.encode()).unwrap(), receipt);
    let mut live = machine.clone();
    live.evolve(command, t.to, ctx.now);
    let mut replayed = machine.clone();
    govern_governors::replay_step(
        &mut replayed,
        receipt.body.governor.name(),
        &receipt.body.command,
        &receipt.body.args,
        &receipt.body.state_from,
        &receipt.body.state_to,
        receipt.body.timestamp,
    )
    .unwrap();
    assert_eq!(replayed, live, "{}: replaying {} differs from evolving", G::KIND, command.name());
}

#[test]
fn subscription_table() {
    check::<govern_governors::subscription::Subscription>(SUBSCRIPTION);
}

#[test]
fn entitlement_table() {
    check::<govern_governors::entitlement::Entitlement>(ENTITLEMENT);
}

#[test]
fn billing_table() {
    check::<govern_governors::billing::Billing>(BILLING);
}

/// Every accepted billing command's receipt carries the amount and currency `BILLING_AMOUNTS`
/// names; stating that same amount records the very same arguments, stating another is
/// refused.
#[test]
fn every_billing_receipt_carries_the_amount_it_is_about() {
    use govern_governors::billing::Billing;
    let sources: BTreeMap<&str, &str> = BILLING_AMOUNTS
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(c, s)| (c, s.trim()))
        .collect();
    for name in <Billing as Governor>::Command::NAMES {
        assert!(sources.contains_key(name), "BILLING_AMOUNTS has no line for {name}");
    }
    let mut accepted = 0;
    for (state, machine, ctx) in &explore::<Billing>().representatives {
        for sample in <Billing as Governor>::Command::samples(ctx) {
            let mut completed = sample.clone();
            if machine.accept(&mut completed, ctx).is_err() {
                continue;
            }
            accepted += 1;
            let at = format!("{} --{}-->", state.name(), sample.name());
            let recorded = completed.args();
            let (amount, currency) = (&recorded["amount"], &recorded["currency"]);
            let want = match sources[sample.name()] {
                "own" => sample.money().unwrap(),
                "payment" => machine.money().unwrap(),
                "refund" => machine.refund_pending().unwrap(),
                other => panic!("unknown amount source {other}"),
            };
            assert_eq!(
                (amount.as_str(), currency.as_str()),
                (want.amount().to_string().as_str(), want.currency().code()),
                "{at}"
            );
            if sources[sample.name()] == "own" {
                assert_eq!(completed, sample, "{at}: a request keeps its own amount");
                continue;
            }
            // Stated by the caller (as the receipt records it): accepted, same arguments.
            let stated = <Billing as Governor>::Command::parse(sample.name(), &recorded).unwrap();
            let mut stated_completed = stated.clone();
            assert!(machine.accept(&mut stated_completed, ctx).is_ok(), "{at}");
            assert_eq!(stated_completed.args(), recorded, "{at}: one encoding per receipt");
            // Stated otherwise: refused.
            let mut other = recorded.clone();
            other.insert("amount".into(), (want.amount() + want.amount()).to_string());
            let wrong = <Billing as Governor>::Command::parse(sample.name(), &other).unwrap();
            let refusal = machine.decide(&wrong, ctx).unwrap_err();
            assert_eq!(refusal.kind(), "precondition_failed", "{at}");
        }
    }
    assert!(accepted >= 21, "every accepted pair of the table was checked ({accepted})");
}

#[test]
fn catalog_table() {
    check::<govern_governors::catalog::Product>(CATALOG);
}

#[test]
fn account_table() {
    check::<govern_governors::account::Account>(ACCOUNT);
}

#[test]
fn quota_table() {
    check::<govern_governors::quota::Quota>(QUOTA);
}

#[test]
fn compliance_table() {
    check::<govern_governors::compliance::Audit>(COMPLIANCE);
}

#[test]
fn saga_table() {
    check::<govern_governors::saga::Saga>(SAGA);
}

#[test]
fn tenant_table() {
    check::<govern_governors::tenant::Tenant>(TENANT);
}
