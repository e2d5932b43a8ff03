//! Billing walks: payment, partial refunds, disputes, the retry budget, guards and parsing.

use rust_decimal::Decimal;

use super::{Billing, Command as C, DisputeOutcome, PAYMENT_ATTEMPTS_MAX, PaymentMethod, State};
use crate::args::{ArgError, ArgProblem, Args, CommandSpec};
use crate::graph::explore;
use crate::money::{Currency, Money};
use crate::testing::{T0_MS, assert_replay_tracks_live, assert_round_trip, transcript};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{Governor, StateSpec};

fn money(amount: &str, code: &str) -> Money {
    Money::new(dec(amount), Currency::from_code(code).unwrap()).unwrap()
}

fn dec(amount: &str) -> Decimal {
    amount.parse().unwrap()
}

fn pay(method: PaymentMethod) -> C {
    C::RequestPayment { money: money("100.00", "USD"), method }
}

fn refund(amount: &str) -> C {
    C::RequestRefund { money: money(amount, "USD") }
}

fn authorize() -> C {
    C::AuthorizePayment { transaction_id: "txn_1".into(), money: None }
}

fn dispute() -> C {
    C::DisputePayment { dispute_id: "dp_1".into(), money: None }
}

fn resolve(outcome: DisputeOutcome) -> C {
    C::ResolveDispute { outcome, money: None }
}

fn args(pairs: &[(&str, &str)]) -> Args {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A billing machine settled at day 0 with 100 USD paid by card.
fn settled() -> Billing {
    let mut b = Billing::default();
    let out = transcript(
        &mut b,
        &[(0, pay(PaymentMethod::Card)), (0, authorize()), (0, C::SettlePayment { money: None })],
    );
    assert!(out.ends_with("payment_authorized --settle_payment--> payment_settled\n"), "{out}");
    b
}

fn main_walk() -> Vec<(u64, C)> {
    vec![
        (0, pay(PaymentMethod::AchDebit)),
        (0, authorize()),
        (1, C::ProcessPayment { money: None }),
        (3, C::SettlePayment { money: None }),
        (5, refund("40.00")),
        (5, C::ProcessRefund { money: None }),
        (7, C::SettleRefund { money: None }),
        (8, dispute()),
        (20, resolve(DisputeOutcome::Won)),
        (21, refund("60")),
        (22, C::FailRefund { money: None }),
        (23, C::Close { money: None }),
    ]
}

#[test]
fn a_bank_debit_is_paid_partly_refunded_disputed_and_closed() {
    let mut b = Billing::default();
    assert_eq!(
        transcript(&mut b, &main_walk()),
        "uninitialized --request_payment--> payment_pending
payment_pending --authorize_payment--> payment_authorized
payment_authorized --process_payment--> payment_processing
payment_processing --settle_payment--> payment_settled
payment_settled --request_refund--> refund_pending
refund_pending --process_refund--> refund_processing
refund_processing --settle_refund--> refund_settled
refund_settled --dispute_payment--> payment_disputed
payment_disputed --resolve_dispute--> payment_settled
payment_settled --request_refund--> refund_pending
refund_pending --fail_refund--> payment_settled
payment_settled --close--> terminated
"
    );
    assert_eq!(b.state(), State::Terminated);
    assert_eq!(b.money(), Some(money("100", "USD")));
    assert_eq!(b.method(), Some(PaymentMethod::AchDebit));
    assert_eq!(b.transaction_id(), Some("txn_1"));
    assert_eq!(b.attempts(), 1);
    assert_eq!(b.refunded(), dec("40"));
    assert_eq!(b.refund_pending(), None);
    assert_eq!(b.refundable(), Some(dec("60")));
    assert_eq!(b.dispute_id(), Some("dp_1"));
    assert_eq!(b.failure_code(), None);
    assert_eq!(b.settled_at(), Some(Timestamp(T0_MS + 3 * DAY_MS)));
}

#[test]
fn a_card_payment_settles_without_processing() {
    let mut b = Billing::default();
    let out = transcript(
        &mut b,
        &[(0, pay(PaymentMethod::Card)), (0, authorize()), (0, C::SettlePayment { money: None })],
    );
    assert_eq!(
        out,
        "uninitialized --request_payment--> payment_pending
payment_pending --authorize_payment--> payment_authorized
payment_authorized --settle_payment--> payment_settled
"
    );
    assert_eq!(b.settled_at(), Some(Timestamp(T0_MS)));
}

#[test]
fn a_fresh_machine_has_nothing_to_refund() {
    let b = Billing::default();
    assert_eq!(b.state(), State::Uninitialized);
    assert_eq!(b.refundable(), None);
    assert_eq!(b.refunded(), Decimal::ZERO);
    assert_eq!(b.attempts(), 0);
}

#[test]
fn partial_refunds_follow_one_another_up_to_the_paid_amount() {
    let mut b = settled();
    let steps = [
        (1, refund("40")),
        (1, C::ProcessRefund { money: None }),
        (2, C::SettleRefund { money: None }),
        (3, refund("60.00")),
        (3, C::ProcessRefund { money: None }),
        (4, C::SettleRefund { money: None }),
        (5, refund("0.01")),
    ];
    assert_eq!(
        transcript(&mut b, &steps),
        "payment_settled --request_refund--> refund_pending
refund_pending --process_refund--> refund_processing
refund_processing --settle_refund--> refund_settled
refund_settled --request_refund--> refund_pending
refund_pending --process_refund--> refund_processing
refund_processing --settle_refund--> refund_settled
refund_settled --request_refund--> rejected precondition_failed: request_refund refused: the refund exceeds the refundable balance
"
    );
    assert_eq!(b.refunded(), dec("100"));
    assert_eq!(b.refundable(), Some(Decimal::ZERO));
}

#[test]
fn a_refund_exceeding_the_balance_is_refused() {
    let mut b = settled();
    assert_eq!(
        transcript(&mut b, &[(1, refund("100.01")), (1, refund("100"))]),
        "payment_settled --request_refund--> rejected precondition_failed: request_refund refused: the refund exceeds the refundable balance
payment_settled --request_refund--> refund_pending
"
    );
    assert_eq!(b.refund_pending(), Some(money("100", "USD")));
}

#[test]
fn a_refund_in_another_currency_is_refused() {
    let mut b = settled();
    let eur = C::RequestRefund { money: money("40", "EUR") };
    assert_eq!(
        transcript(&mut b, &[(1, eur)]),
        "payment_settled --request_refund--> rejected precondition_failed: request_refund refused: the refund currency differs from the payment's\n"
    );
    assert_eq!(b.state(), State::PaymentSettled);
    assert_eq!(b.refund_pending(), None);
}

#[test]
fn a_failed_refund_returns_to_settled_and_keeps_the_refunded_total() {
    let mut b = settled();
    let steps = [
        (1, refund("40")),
        (1, C::ProcessRefund { money: None }),
        (2, C::SettleRefund { money: None }),
        (3, refund("30")),
        (3, C::ProcessRefund { money: None }),
        (4, C::FailRefund { money: None }),
    ];
    let out = transcript(&mut b, &steps);
    assert!(out.ends_with("refund_processing --fail_refund--> payment_settled\n"), "{out}");
    assert_eq!(b.refunded(), dec("40"));
    assert_eq!(b.refund_pending(), None);
    assert_eq!(b.refundable(), Some(dec("60")));
}

#[test]
fn the_retry_budget_is_exhausted_after_four_attempts() {
    let mut b = Billing::default();
    let declined = || C::FailPayment { code: Some("card_declined".into()), money: None };
    let steps = [
        (0, pay(PaymentMethod::Card)),
        (0, declined()),
        (1, C::RetryPayment { money: None }),
        (1, declined()),
        (2, C::RetryPayment { money: None }),
        (2, authorize()),
        (2, declined()),
        (3, C::RetryPayment { money: None }),
        (3, C::FailPayment { code: None, money: None }),
        (4, C::RetryPayment { money: None }),
        (5, C::Close { money: None }),
    ];
    assert_eq!(
        transcript(&mut b, &steps),
        "uninitialized --request_payment--> payment_pending
payment_pending --fail_payment--> payment_failed
payment_failed --retry_payment--> payment_pending
payment_pending --fail_payment--> payment_failed
payment_failed --retry_payment--> payment_pending
payment_pending --authorize_payment--> payment_authorized
payment_authorized --fail_payment--> payment_failed
payment_failed --retry_payment--> payment_pending
payment_pending --fail_payment--> payment_failed
payment_failed --retry_payment--> rejected precondition_failed: retry_payment refused: the retry budget is exhausted
payment_failed --close--> terminated
"
    );
    assert_eq!(b.attempts(), PAYMENT_ATTEMPTS_MAX);
    // The latest failure gave no code.
    assert_eq!(b.failure_code(), None);
}

#[test]
fn the_failure_code_is_the_latest_one() {
    let mut b = Billing::default();
    let code = C::FailPayment { code: Some("insufficient_funds".into()), money: None };
    transcript(
        &mut b,
        &[
            (0, pay(PaymentMethod::Wallet)),
            (0, authorize()),
            (0, C::ProcessPayment { money: None }),
            (1, code),
        ],
    );
    assert_eq!(b.state(), State::PaymentFailed);
    assert_eq!(b.failure_code(), Some("insufficient_funds"));
    assert_eq!(b.attempts(), 1);
}

#[test]
fn a_lost_dispute_terminates_and_nothing_leaves_terminated() {
    let mut b = settled();
    let out = transcript(
        &mut b,
        &[
            (1, dispute()),
            (2, C::Close { money: None }),
            (30, resolve(DisputeOutcome::Lost)),
            (31, C::Close { money: None }),
        ],
    );
    assert_eq!(
        out,
        "payment_settled --dispute_payment--> payment_disputed
payment_disputed --close--> rejected invalid_transition: close is not allowed in state payment_disputed of the billing governor
payment_disputed --resolve_dispute--> terminated
terminated --close--> rejected invalid_transition: close is not allowed in state terminated of the billing governor
"
    );
    assert!(State::Terminated.is_terminal());
    let ctx = Ctx::at_ms(T0_MS + 40 * DAY_MS);
    for c in C::samples(&ctx) {
        assert_eq!(b.decide(&c, &ctx), Err(b.invalid(&c)), "{c:?}");
    }
}

#[test]
fn commands_out_of_order_are_invalid_transitions() {
    let mut b = Billing::default();
    let steps = [
        (0, C::SettlePayment { money: None }),
        (0, pay(PaymentMethod::SepaDebit)),
        (0, C::ProcessPayment { money: None }),
        (0, pay(PaymentMethod::Card)),
    ];
    assert_eq!(
        transcript(&mut b, &steps),
        "uninitialized --settle_payment--> rejected invalid_transition: settle_payment is not allowed in state uninitialized of the billing governor
uninitialized --request_payment--> payment_pending
payment_pending --process_payment--> rejected invalid_transition: process_payment is not allowed in state payment_pending of the billing governor
payment_pending --request_payment--> rejected invalid_transition: request_payment is not allowed in state payment_pending of the billing governor
"
    );
}

#[test]
fn no_state_arms_a_timeout() {
    for (state, machine, _) in explore::<Billing>().representatives {
        assert_eq!(machine.state_timeout(), None, "{state}");
    }
}

#[test]
fn replaying_the_record_rebuilds_the_machine() {
    assert_replay_tracks_live::<Billing>(&main_walk());
}

#[test]
fn money_arguments_are_checked_at_parse() {
    let problem = |name: &str, amount: &str, currency: &str| {
        let mut a = args(&[("amount", amount), ("currency", currency)]);
        if name == "request_payment" {
            a.insert("method".into(), "card".into());
        }
        C::parse(name, &a).unwrap_err()
    };
    for name in ["request_payment", "request_refund"] {
        assert_eq!(
            problem(name, "10", "XYZ"),
            ArgError::new(name, "currency", Some("XYZ"), ArgProblem::UnknownCurrency)
        );
        assert_eq!(
            problem(name, "0", "USD"),
            ArgError::new(name, "amount", Some("0"), ArgProblem::NotPositive)
        );
        assert_eq!(
            problem(name, "-5", "USD"),
            ArgError::new(name, "amount", Some("-5"), ArgProblem::NotPositive)
        );
        assert_eq!(
            problem(name, "1.001", "USD"),
            ArgError::new(
                name,
                "amount",
                Some("1.001"),
                ArgProblem::TooPrecise { decimals_max: 2 }
            )
        );
        assert_eq!(
            problem(name, "1.5", "JPY"),
            ArgError::new(name, "amount", Some("1.5"), ArgProblem::TooPrecise { decimals_max: 0 })
        );
        assert_eq!(
            problem(name, "ten", "USD"),
            ArgError::new(
                name,
                "amount",
                Some("ten"),
                ArgProblem::Malformed { expected: "a decimal amount such as 19.99" }
            )
        );
    }
    assert_eq!(
        problem("request_payment", "1.001", "USD").to_string(),
        "request_payment: argument `amount` = \"1.001\": more than 2 decimals for this currency"
    );
    let jpy =
        C::parse("request_refund", &args(&[("amount", "1500"), ("currency", "JPY")])).unwrap();
    assert_eq!(jpy, C::RequestRefund { money: money("1500", "JPY") });
}

#[test]
fn an_unknown_method_or_outcome_is_refused_at_parse() {
    let err = C::parse(
        "request_payment",
        &args(&[("amount", "10"), ("currency", "USD"), ("method", "cheque")]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ArgError::new(
            "request_payment",
            "method",
            Some("cheque"),
            ArgProblem::Malformed {
                expected: "one of card, ach_debit, sepa_debit, bank_transfer, wallet"
            }
        )
    );
    assert_eq!(
        err.to_string(),
        "request_payment: argument `method` = \"cheque\": expected one of card, ach_debit, sepa_debit, bank_transfer, wallet"
    );
    let err = C::parse("resolve_dispute", &args(&[("outcome", "draw")])).unwrap_err();
    assert_eq!(
        err,
        ArgError::new(
            "resolve_dispute",
            "outcome",
            Some("draw"),
            ArgProblem::Malformed { expected: "one of won, lost" }
        )
    );
}

#[test]
fn missing_empty_and_unexpected_arguments_are_refused_at_parse() {
    assert_eq!(
        C::parse("request_payment", &args(&[("amount", "10"), ("currency", "USD")])).unwrap_err(),
        ArgError::new("request_payment", "method", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse("request_refund", &args(&[("currency", "USD")])).unwrap_err(),
        ArgError::new("request_refund", "amount", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse("authorize_payment", &Args::new()).unwrap_err(),
        ArgError::new("authorize_payment", "transaction_id", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse("authorize_payment", &args(&[("transaction_id", "")])).unwrap_err(),
        ArgError::new("authorize_payment", "transaction_id", Some(""), ArgProblem::Empty)
    );
    assert_eq!(
        C::parse("dispute_payment", &args(&[("dispute_id", " ")])).unwrap_err(),
        ArgError::new("dispute_payment", "dispute_id", Some(" "), ArgProblem::Empty)
    );
    assert_eq!(
        C::parse("fail_payment", &args(&[("code", "")])).unwrap_err(),
        ArgError::new("fail_payment", "code", Some(""), ArgProblem::Empty)
    );
    // The optional amount and currency come together or not at all.
    assert_eq!(
        C::parse("settle_payment", &args(&[("amount", "10")])).unwrap_err(),
        ArgError::new("settle_payment", "currency", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse("close", &args(&[("currency", "USD")])).unwrap_err(),
        ArgError::new("close", "amount", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse("settle_payment", &args(&[("method", "card")])).unwrap_err(),
        ArgError::new("settle_payment", "method", None, ArgProblem::Unexpected)
    );
    assert_eq!(
        C::parse(
            "request_refund",
            &args(&[("amount", "10"), ("currency", "USD"), ("method", "card")])
        )
        .unwrap_err(),
        ArgError::new("request_refund", "method", None, ArgProblem::Unexpected)
    );
    assert_eq!(
        C::parse("refund", &Args::new()).unwrap_err(),
        ArgError::unknown_command("refund", C::NAMES)
    );
}

#[test]
fn samples_cover_every_command_and_round_trip() {
    let samples = C::samples(&Ctx::at_ms(T0_MS));
    for name in C::NAMES {
        assert!(samples.iter().any(|c| c.name() == *name), "{name} has no sample");
    }
    for c in &samples {
        assert_round_trip(c);
    }
    assert_round_trip(&C::FailPayment { code: None, money: None });
    assert_round_trip(&C::FailPayment { code: Some("do_not_honor".into()), money: None });
    assert_round_trip(&resolve(DisputeOutcome::Lost));
    assert_round_trip(&C::SettlePayment { money: Some(money("100.00", "USD")) });
    assert_round_trip(&C::FailPayment { code: Some("x".into()), money: Some(money("3", "JPY")) });
    assert_round_trip(&C::RequestRefund { money: money("1.5", "BHD") });
    for &method in PaymentMethod::ALL {
        assert_round_trip(&C::RequestPayment { money: money("1500", "JPY"), method });
    }
    assert_eq!(
        pay(PaymentMethod::BankTransfer).args(),
        args(&[("amount", "100"), ("currency", "USD"), ("method", "bank_transfer")])
    );
}

/// Accepts `command` on `b` at day `day` as a host does before sealing its receipt (decided,
/// then completed), replays the completed command's recorded arguments into a copy of the
/// machine as it was, applies it, and checks that both agree. Returns the completed command.
fn accept_and_complete(b: &mut Billing, day: u64, command: C) -> C {
    let ctx = Ctx::at_ms(T0_MS + day * DAY_MS);
    let mut completed = command.clone();
    let t = b.accept(&mut completed, &ctx).unwrap_or_else(|r| panic!("{}: {r}", command.name()));
    let mut replayed = b.clone();
    crate::replay_step(
        &mut replayed,
        "billing",
        completed.name(),
        &completed.args(),
        t.from.name(),
        t.to.name(),
        ctx.now,
    )
    .unwrap();
    b.evolve(&completed, t.to, ctx.now);
    assert_eq!(replayed, *b, "replaying the completed {} differs", completed.name());
    completed
}

#[test]
fn every_accepted_command_is_completed_with_the_amount_it_is_about() {
    let mut b = Billing::default();
    let mut amounts = Vec::new();
    for (day, command) in main_walk() {
        let completed = accept_and_complete(&mut b, day, command);
        let recorded = completed.args();
        amounts.push(format!(
            "{} {} {}",
            completed.name(),
            recorded.get("amount").map_or("-", String::as_str),
            recorded.get("currency").map_or("-", String::as_str)
        ));
    }
    assert_eq!(
        amounts,
        [
            "request_payment 100 USD",
            "authorize_payment 100 USD",
            "process_payment 100 USD",
            "settle_payment 100 USD",
            "request_refund 40 USD",
            "process_refund 40 USD",
            "settle_refund 40 USD",
            "dispute_payment 100 USD",
            "resolve_dispute 100 USD",
            "request_refund 60 USD",
            "fail_refund 60 USD",
            "close 100 USD",
        ]
    );
}

#[test]
fn completing_never_changes_a_stated_amount_nor_a_request() {
    let mut b = Billing::default();
    let request = pay(PaymentMethod::Card);
    assert_eq!(accept_and_complete(&mut b, 0, request.clone()), request);
    let stated =
        C::AuthorizePayment { transaction_id: "t".into(), money: Some(money("100", "USD")) };
    assert_eq!(accept_and_complete(&mut b, 0, stated.clone()), stated);
    // A rejected command is never completed by a host; nothing to fill in before a payment.
    let mut early = C::SettlePayment { money: None };
    Billing::default().complete(&mut early);
    assert_eq!(early, C::SettlePayment { money: None });
}

#[test]
fn stating_the_amount_or_leaving_it_out_records_the_same_arguments() {
    let ctx = Ctx::at_ms(T0_MS);
    let b = settled();
    let mut left_out = dispute();
    b.complete(&mut left_out);
    let stated =
        C::DisputePayment { dispute_id: "dp_1".into(), money: Some(money("100.00", "USD")) };
    assert!(b.decide(&stated, &ctx).is_ok());
    assert_eq!(left_out, stated, "one encoding per receipt: 100.00 is 100");
    assert_eq!(left_out.args(), stated.args());
}

#[test]
fn a_stated_amount_other_than_the_payments_or_the_pending_refunds_is_refused() {
    let ctx = Ctx::at_ms(T0_MS + DAY_MS);
    let b = settled();
    let refused = |b: &Billing, c: &C| b.decide(c, &ctx).unwrap_err();
    let close = |m| C::Close { money: Some(m) };
    for wrong in [money("99.99", "USD"), money("100", "EUR"), money("40", "USD")] {
        let r = refused(&b, &close(wrong));
        assert_eq!(r.kind(), "precondition_failed");
        assert_eq!(r.to_string(), refused(&b, &close(money("1", "USD"))).to_string());
        assert!(r.to_string().contains("the amount and currency must be the payment's"), "{r}");
    }
    assert!(b.decide(&close(money("100", "USD")), &ctx).is_ok());

    // During a refund, its three steps are about the refund's amount.
    let mut b = settled();
    accept_and_complete(&mut b, 1, refund("40"));
    let process = |m| C::ProcessRefund { money: Some(m) };
    let r = refused(&b, &process(money("100", "USD")));
    assert_eq!(r.kind(), "precondition_failed");
    assert!(r.to_string().contains("the amount and currency must be the pending refund's"), "{r}");
    assert!(b.decide(&process(money("40.00", "USD")), &ctx).is_ok());

    // The edge comes first: a command that has none is an invalid transition, whatever it
    // states.
    let settle = C::SettlePayment { money: Some(money("5", "USD")) };
    assert_eq!(refused(&Billing::default(), &settle).kind(), "invalid_transition");
}
