//! Billing governor: one payment, from request to settlement, with its refunds and dispute.
//!
//! Adopted from Stripe: refunds may be partial and several may follow one another, but their
//! total is bounded by the captured amount (`refundable` = paid − refunded); a dispute ends
//! `won` (the payment stands, back to `payment_settled`) or `lost` (the funds are withdrawn,
//! `terminated`); card payments settle straight from `payment_authorized`, skipping the
//! `payment_processing` step that bank debits go through. The machine does not restrict that
//! shortcut to cards: whether a method needs a processing step is the processor's fact.
//!
//! The seed's two-way arrow between `payment_pending` and `payment_failed` was decided as
//! one-way edges: `fail_payment` into `payment_failed`, and `retry_payment` back to
//! `payment_pending` with a bounded budget of [`PAYMENT_ATTEMPTS_MAX`] attempts in all
//! (the first request counts as attempt 1). A failed refund (`fail_refund`) returns to
//! `payment_settled`: the pending refund is dropped and the refunded total is unchanged, so
//! refunds settled earlier still count against the refundable balance.
//!
//! Every billing receipt carries the amount and currency it is about (the seed's "amount and
//! currency logged in every receipt"): `request_payment` and `request_refund` state theirs;
//! every other command may state the payment's (or, for `process_refund`, `settle_refund` and
//! `fail_refund`, the pending refund's) and is refused if it states another, and an accepted
//! command that states none is completed from the machine ([`Governor::complete`], through
//! [`Governor::accept`]) before its receipt is sealed, so that its arguments, which replay
//! parses, record them.

use rust_decimal::Decimal;

use crate::args::{ArgError, ArgReader, Args, CommandSpec};
use crate::codec::{CodecProblem, StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, Transition};
use crate::kind::GovernorKind;
use crate::limits::TEXT_ARG_LEN_MAX;
use crate::money::{Currency, Money};
use crate::rejection::Rejection;
use crate::time::{Ctx, Timestamp};

/// Most payment attempts (the first request plus retries) one payment may make.
pub const PAYMENT_ATTEMPTS_MAX: u32 = 4;

crate::define_states! {
    /// Where a payment is in its life.
    pub enum State {
        /// Created, no payment requested yet.
        Uninitialized => "uninitialized",
        /// Payment requested, waiting for the processor's authorization.
        PaymentPending => "payment_pending",
        /// Authorized by the processor, not yet captured.
        PaymentAuthorized => "payment_authorized",
        /// Captured and in flight (bank debits and transfers).
        PaymentProcessing => "payment_processing",
        /// Funds received; refunds and disputes start from here.
        PaymentSettled => "payment_settled",
        /// The attempt was declined or failed; it may be retried within the budget.
        PaymentFailed => "payment_failed",
        /// A refund was requested, not yet sent.
        RefundPending => "refund_pending",
        /// A refund was sent to the processor, not yet confirmed.
        RefundProcessing => "refund_processing",
        /// At least one refund has settled; more may follow up to the paid amount.
        RefundSettled => "refund_settled",
        /// The customer disputed the payment; waiting for the outcome.
        PaymentDisputed => "payment_disputed",
        /// Closed, or the funds were withdrawn by a lost dispute.
        Terminated => "terminated",
    }
    terminal: [Terminated]
}

crate::define_arg_enum! {
    /// How the customer pays.
    pub enum PaymentMethod {
        /// A credit or debit card.
        Card => "card",
        /// A US ACH direct debit.
        AchDebit => "ach_debit",
        /// A SEPA direct debit.
        SepaDebit => "sepa_debit",
        /// A bank transfer pushed by the customer.
        BankTransfer => "bank_transfer",
        /// A digital wallet.
        Wallet => "wallet",
    }
}

crate::define_arg_enum! {
    /// How a dispute ended.
    pub enum DisputeOutcome {
        /// The merchant won: the payment stands.
        Won => "won",
        /// The customer won: the funds are withdrawn.
        Lost => "lost",
    }
}

/// What can be asked of a payment.
///
/// A `money` field that is an `Option` holds the optional `amount` and `currency` arguments:
/// `None` when the caller does not state them; the governor completes it
/// ([`Governor::complete`]) once the command is accepted, so every receipt records them. A
/// stated amount must equal the payment's (the pending refund's, for the three refund steps),
/// else the command is refused `precondition_failed`: a processor confirming another amount
/// is not this payment's confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Requests the payment of `money` by `method`; counts as attempt 1.
    RequestPayment {
        /// The amount and currency to collect (arguments `amount` and `currency`).
        money: Money,
        /// How the customer pays.
        method: PaymentMethod,
    },
    /// Records the processor's authorization.
    AuthorizePayment {
        /// The processor's transaction id.
        transaction_id: String,
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
    /// Captures an authorized payment that needs a processing step (bank debits).
    ProcessPayment {
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
    /// Records that the funds were received (from authorized for cards, or from processing).
    SettlePayment {
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
    /// Records that the attempt was declined or failed.
    FailPayment {
        /// The processor's decline code, if it gave one.
        code: Option<String>,
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
    /// Tries a failed payment again, within [`PAYMENT_ATTEMPTS_MAX`] attempts.
    RetryPayment {
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
    /// Requests a (possibly partial) refund, at most the refundable balance.
    RequestRefund {
        /// The amount to refund, in the payment's currency (arguments `amount` and `currency`).
        money: Money,
    },
    /// Sends the pending refund to the processor.
    ProcessRefund {
        /// The pending refund's amount and currency, optional.
        money: Option<Money>,
    },
    /// Records that the refund reached the customer; it now counts as refunded.
    SettleRefund {
        /// The pending refund's amount and currency, optional.
        money: Option<Money>,
    },
    /// Records that the refund failed; the payment is settled again, the refund dropped.
    FailRefund {
        /// The pending refund's amount and currency, optional.
        money: Option<Money>,
    },
    /// Records a dispute (chargeback) opened by the customer.
    DisputePayment {
        /// The processor's dispute id.
        dispute_id: String,
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
    /// Records how the dispute ended.
    ResolveDispute {
        /// Won (the payment stands) or lost (the funds are withdrawn).
        outcome: DisputeOutcome,
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
    /// Closes a settled or failed payment.
    Close {
        /// The payment's amount and currency, optional.
        money: Option<Money>,
    },
}

/// A command's money, by whose it is: the two requests bring their `Own`; every other
/// command may state the `Payment`'s, or (the three refund steps) the pending `Refund`'s,
/// and is completed with it when it does not. `O` and `S` are the references to the owned
/// and stated money fields ([`Command::amount`], [`Command::amount_mut`]).
enum Amount<O, S> {
    Own(O),
    Payment(S),
    Refund(S),
}

impl Command {
    /// The amount and currency this command states (or was completed with), if any.
    #[must_use]
    pub fn money(&self) -> Option<Money> {
        match self.amount() {
            Amount::Own(money) => Some(*money),
            Amount::Payment(money) | Amount::Refund(money) => *money,
        }
    }

    /// This command's money field, and whose money it is.
    fn amount(&self) -> Amount<&Money, &Option<Money>> {
        match self {
            Self::RequestPayment { money, .. } | Self::RequestRefund { money } => {
                Amount::Own(money)
            }
            Self::ProcessRefund { money }
            | Self::SettleRefund { money }
            | Self::FailRefund { money } => Amount::Refund(money),
            Self::AuthorizePayment { money, .. }
            | Self::ProcessPayment { money }
            | Self::SettlePayment { money }
            | Self::FailPayment { money, .. }
            | Self::RetryPayment { money }
            | Self::DisputePayment { money, .. }
            | Self::ResolveDispute { money, .. }
            | Self::Close { money } => Amount::Payment(money),
        }
    }

    /// [`Self::amount`], to complete it.
    fn amount_mut(&mut self) -> Amount<&mut Money, &mut Option<Money>> {
        match self {
            Self::RequestPayment { money, .. } | Self::RequestRefund { money } => {
                Amount::Own(money)
            }
            Self::ProcessRefund { money }
            | Self::SettleRefund { money }
            | Self::FailRefund { money } => Amount::Refund(money),
            Self::AuthorizePayment { money, .. }
            | Self::ProcessPayment { money }
            | Self::SettlePayment { money }
            | Self::FailPayment { money, .. }
            | Self::RetryPayment { money }
            | Self::DisputePayment { money, .. }
            | Self::ResolveDispute { money, .. }
            | Self::Close { money } => Amount::Payment(money),
        }
    }
}

fn insert_money(a: &mut Args, money: Money) {
    a.insert("amount".into(), money.amount().to_string());
    a.insert("currency".into(), money.currency().code().to_owned());
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "request_payment",
        "authorize_payment",
        "process_payment",
        "settle_payment",
        "fail_payment",
        "retry_payment",
        "request_refund",
        "process_refund",
        "settle_refund",
        "fail_refund",
        "dispute_payment",
        "resolve_dispute",
        "close",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::RequestPayment { .. } => "request_payment",
            Self::AuthorizePayment { .. } => "authorize_payment",
            Self::ProcessPayment { .. } => "process_payment",
            Self::SettlePayment { .. } => "settle_payment",
            Self::FailPayment { .. } => "fail_payment",
            Self::RetryPayment { .. } => "retry_payment",
            Self::RequestRefund { .. } => "request_refund",
            Self::ProcessRefund { .. } => "process_refund",
            Self::SettleRefund { .. } => "settle_refund",
            Self::FailRefund { .. } => "fail_refund",
            Self::DisputePayment { .. } => "dispute_payment",
            Self::ResolveDispute { .. } => "resolve_dispute",
            Self::Close { .. } => "close",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::RequestPayment { method, .. } => {
                a.insert("method".into(), method.name().to_owned());
            }
            Self::AuthorizePayment { transaction_id, .. } => {
                a.insert("transaction_id".into(), transaction_id.clone());
            }
            Self::FailPayment { code: Some(code), .. } => {
                a.insert("code".into(), code.clone());
            }
            Self::DisputePayment { dispute_id, .. } => {
                a.insert("dispute_id".into(), dispute_id.clone());
            }
            Self::ResolveDispute { outcome, .. } => {
                a.insert("outcome".into(), outcome.name().to_owned());
            }
            Self::FailPayment { code: None, .. }
            | Self::ProcessPayment { .. }
            | Self::SettlePayment { .. }
            | Self::RetryPayment { .. }
            | Self::RequestRefund { .. }
            | Self::ProcessRefund { .. }
            | Self::SettleRefund { .. }
            | Self::FailRefund { .. }
            | Self::Close { .. } => {}
        }
        if let Some(money) = self.money() {
            insert_money(&mut a, money);
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "request_payment" => Self::RequestPayment {
                money: r.money()?,
                method: r.parsed("method", PaymentMethod::EXPECTED)?,
            },
            "authorize_payment" => Self::AuthorizePayment {
                transaction_id: r.text("transaction_id")?,
                money: r.optional_money()?,
            },
            "process_payment" => Self::ProcessPayment { money: r.optional_money()? },
            "settle_payment" => Self::SettlePayment { money: r.optional_money()? },
            "fail_payment" => {
                Self::FailPayment { code: r.optional_text("code")?, money: r.optional_money()? }
            }
            "retry_payment" => Self::RetryPayment { money: r.optional_money()? },
            "request_refund" => Self::RequestRefund { money: r.money()? },
            "process_refund" => Self::ProcessRefund { money: r.optional_money()? },
            "settle_refund" => Self::SettleRefund { money: r.optional_money()? },
            "fail_refund" => Self::FailRefund { money: r.optional_money()? },
            "dispute_payment" => Self::DisputePayment {
                dispute_id: r.text("dispute_id")?,
                money: r.optional_money()?,
            },
            "resolve_dispute" => Self::ResolveDispute {
                outcome: r.parsed("outcome", DisputeOutcome::EXPECTED)?,
                money: r.optional_money()?,
            },
            _ => Self::Close { money: r.optional_money()? },
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        // 100.00 USD paid and 40.00 USD refunded leaves 60.00, so `refund_settled` can be
        // refunded again.
        let usd = Currency::from_code("USD");
        let money = |cents: i64| usd.and_then(|c| Money::new(Decimal::new(cents, 2), c).ok());
        let mut out = Vec::new();
        if let Some(money) = money(10_000) {
            out.push(Self::RequestPayment { money, method: PaymentMethod::Card });
        }
        // Callers usually leave the payment's amount out: the governor completes it.
        out.extend([
            Self::AuthorizePayment { transaction_id: "txn_1".into(), money: None },
            Self::ProcessPayment { money: None },
            Self::SettlePayment { money: None },
            Self::FailPayment { code: Some("card_declined".into()), money: None },
            Self::RetryPayment { money: None },
        ]);
        if let Some(money) = money(4_000) {
            out.push(Self::RequestRefund { money });
        }
        out.extend([
            Self::ProcessRefund { money: None },
            Self::SettleRefund { money: None },
            Self::FailRefund { money: None },
            Self::DisputePayment { dispute_id: "dp_1".into(), money: None },
            Self::ResolveDispute { outcome: DisputeOutcome::Won, money: None },
            Self::ResolveDispute { outcome: DisputeOutcome::Lost, money: None },
            Self::Close { money: None },
        ]);
        out
    }
}

/// One payment: its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Billing {
    state: StateCell,
    /// The amount and currency requested; bounds refunds and fixes their currency.
    money: Option<Money>,
    /// How the customer pays, as requested.
    method: Option<PaymentMethod>,
    /// The processor's transaction id of the latest authorization, to reconcile with it.
    transaction_id: Option<String>,
    /// Payment attempts made so far (the request plus retries), bounded by
    /// [`PAYMENT_ATTEMPTS_MAX`].
    attempts: u32,
    /// Total of the refunds settled so far; `refundable` is what remains of the payment.
    refunded: Decimal,
    /// The refund requested and not yet settled or failed (in the payment's currency).
    refund_pending: Option<Money>,
    /// The processor's dispute id, once a dispute was opened.
    dispute_id: Option<String>,
    /// The decline code of the latest failure, to explain it and decide on a retry.
    failure_code: Option<String>,
    /// When the payment settled, for the record and reconciliation.
    settled_at: Option<Timestamp>,
}

impl Billing {
    /// The amount and currency requested, once requested.
    #[must_use]
    pub fn money(&self) -> Option<Money> {
        self.money
    }

    /// How the customer pays, once requested.
    #[must_use]
    pub fn method(&self) -> Option<PaymentMethod> {
        self.method
    }

    /// The processor's transaction id of the latest authorization.
    #[must_use]
    pub fn transaction_id(&self) -> Option<&str> {
        self.transaction_id.as_deref()
    }

    /// Payment attempts made so far (the request counts as 1).
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Total of the refunds settled so far (zero at first).
    #[must_use]
    pub fn refunded(&self) -> Decimal {
        self.refunded
    }

    /// The refund in flight, if any: its amount, in the payment's currency.
    #[must_use]
    pub fn refund_pending(&self) -> Option<Money> {
        self.refund_pending
    }

    /// What may still be refunded: paid − refunded; `None` before a payment was requested.
    #[must_use]
    pub fn refundable(&self) -> Option<Decimal> {
        self.money.map(|m| m.amount().saturating_sub(self.refunded))
    }

    /// The processor's dispute id, once a dispute was opened.
    #[must_use]
    pub fn dispute_id(&self) -> Option<&str> {
        self.dispute_id.as_deref()
    }

    /// The decline code of the latest failure, if it had one.
    #[must_use]
    pub fn failure_code(&self) -> Option<&str> {
        self.failure_code.as_deref()
    }

    /// When the payment settled.
    #[must_use]
    pub fn settled_at(&self) -> Option<Timestamp> {
        self.settled_at
    }

    /// The money the machine says a command of this `amount` is about: the payment's or the
    /// pending refund's; `None` for the two requests (they bring their own) and before there
    /// is any.
    fn known<O, S>(&self, amount: &Amount<O, S>) -> Option<Money> {
        match amount {
            Amount::Own(_) => None,
            Amount::Payment(_) => self.money,
            Amount::Refund(_) => self.refund_pending,
        }
    }

    /// A stated amount must be the one the command is about.
    fn check_stated_money(&self, command: &Command) -> Result<(), Rejection> {
        let amount = command.amount();
        let condition = match amount {
            Amount::Own(_) | Amount::Payment(None) | Amount::Refund(None) => return Ok(()),
            Amount::Payment(Some(stated)) | Amount::Refund(Some(stated))
                if Some(*stated) == self.known(&amount) =>
            {
                return Ok(());
            }
            Amount::Payment(_) => "the amount and currency must be the payment's",
            Amount::Refund(_) => "the amount and currency must be the pending refund's",
        };
        Err(Rejection::unmet(command.name(), condition))
    }

    fn check_refund(&self, refund: Money) -> Result<(), Rejection> {
        if self.money.is_some_and(|paid| paid.currency() != refund.currency()) {
            return Err(Rejection::unmet(
                "request_refund",
                "the refund currency differs from the payment's",
            ));
        }
        if refund.amount() > self.refundable().unwrap_or(Decimal::ZERO) {
            return Err(Rejection::unmet(
                "request_refund",
                "the refund exceeds the refundable balance",
            ));
        }
        Ok(())
    }
}

impl Governor for Billing {
    const KIND: GovernorKind = GovernorKind::Billing;
    type State = State;
    type Command = Command;

    fn state(&self) -> State {
        self.state.0
    }

    fn decide(&self, command: &Command, _ctx: &Ctx) -> Result<Transition<State>, Rejection> {
        use Command as C;
        use State as S;
        let from = self.state.0;
        let to = match (from, command) {
            (S::Uninitialized, C::RequestPayment { .. }) => S::PaymentPending,
            (S::PaymentPending, C::AuthorizePayment { .. }) => S::PaymentAuthorized,
            (S::PaymentAuthorized, C::ProcessPayment { .. }) => S::PaymentProcessing,
            (S::PaymentAuthorized | S::PaymentProcessing, C::SettlePayment { .. }) => {
                S::PaymentSettled
            }
            (
                S::PaymentPending | S::PaymentAuthorized | S::PaymentProcessing,
                C::FailPayment { .. },
            ) => S::PaymentFailed,
            (S::PaymentFailed, C::RetryPayment { .. }) => {
                if self.attempts >= PAYMENT_ATTEMPTS_MAX {
                    return Err(Rejection::unmet("retry_payment", "the retry budget is exhausted"));
                }
                S::PaymentPending
            }
            (S::PaymentSettled | S::RefundSettled, C::RequestRefund { money }) => {
                self.check_refund(*money)?;
                S::RefundPending
            }
            (S::RefundPending, C::ProcessRefund { .. }) => S::RefundProcessing,
            (S::RefundProcessing, C::SettleRefund { .. }) => S::RefundSettled,
            (S::RefundPending | S::RefundProcessing, C::FailRefund { .. }) => S::PaymentSettled,
            (S::PaymentSettled | S::RefundSettled, C::DisputePayment { .. }) => S::PaymentDisputed,
            (S::PaymentDisputed, C::ResolveDispute { outcome: DisputeOutcome::Won, .. }) => {
                S::PaymentSettled
            }
            (S::PaymentDisputed, C::ResolveDispute { outcome: DisputeOutcome::Lost, .. }) => {
                S::Terminated
            }
            (S::PaymentSettled | S::RefundSettled | S::PaymentFailed, C::Close { .. }) => {
                S::Terminated
            }
            (
                S::Uninitialized
                | S::PaymentPending
                | S::PaymentAuthorized
                | S::PaymentProcessing
                | S::PaymentSettled
                | S::PaymentFailed
                | S::RefundPending
                | S::RefundProcessing
                | S::RefundSettled
                | S::PaymentDisputed
                | S::Terminated,
                _,
            ) => return Err(self.invalid(command)),
        };
        self.check_stated_money(command)?;
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::RequestPayment { money, method } => {
                self.money = Some(*money);
                self.method = Some(*method);
                self.attempts = 1;
            }
            Command::AuthorizePayment { transaction_id, .. } => {
                self.transaction_id = Some(transaction_id.clone());
            }
            Command::SettlePayment { .. } => self.settled_at = Some(at),
            Command::FailPayment { code, .. } => self.failure_code.clone_from(code),
            Command::RetryPayment { .. } => self.attempts = self.attempts.saturating_add(1),
            Command::RequestRefund { money } => self.refund_pending = Some(*money),
            Command::SettleRefund { .. } => {
                if let Some(refund) = self.refund_pending.take() {
                    // Normalised as money is (0.5 + 0.5 is 1, not 1.0): machines that compare
                    // equal hold the same decimal, and so encode to the same bytes.
                    self.refunded = self.refunded.saturating_add(refund.amount()).normalize();
                }
            }
            // The failed refund is dropped; the refunded total keeps only settled refunds.
            Command::FailRefund { .. } => self.refund_pending = None,
            Command::DisputePayment { dispute_id, .. } => {
                self.dispute_id = Some(dispute_id.clone());
            }
            Command::ProcessPayment { .. }
            | Command::ProcessRefund { .. }
            | Command::ResolveDispute { .. }
            | Command::Close { .. } => {}
        }
        self.state.0 = to;
    }

    /// Completes an accepted command that left out its amount and currency with the ones it
    /// is about (the payment's, or the pending refund's), so that its receipt records them.
    fn complete(&self, command: &mut Command) {
        let amount = command.amount_mut();
        let known = self.known(&amount);
        if let Amount::Payment(stated @ None) | Amount::Refund(stated @ None) = amount {
            *stated = known;
        }
    }
}

impl StateCodec for Billing {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.option(self.money.as_ref(), |w, m| w.money(*m));
        w.option(self.method.as_ref(), |w, m| w.choice("method", m, PaymentMethod::ALL));
        w.opt_str("transaction_id", self.transaction_id.as_deref(), TEXT_ARG_LEN_MAX);
        w.u32(self.attempts);
        w.decimal(self.refunded);
        w.option(self.refund_pending.as_ref(), |w, m| w.money(*m));
        w.opt_str("dispute_id", self.dispute_id.as_deref(), TEXT_ARG_LEN_MAX);
        w.opt_str("failure_code", self.failure_code.as_deref(), TEXT_ARG_LEN_MAX);
        w.opt_timestamp(self.settled_at);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        let state = StateCell(r.state()?);
        let money = r.option("money", |r| r.money("money"))?;
        let method = r.option("method", |r| r.choice("method", PaymentMethod::ALL))?;
        let transaction_id = r.opt_str("transaction_id", TEXT_ARG_LEN_MAX)?;
        let attempts = r.u32("attempts")?;
        let refunded = r.decimal("refunded")?;
        // Settled refunds only add up positive amounts, normalised.
        if refunded.is_sign_negative() {
            return Err(r.err("refunded", CodecProblem::Invalid { expected: "zero or more" }));
        }
        if refunded.normalize().serialize() != refunded.serialize() {
            return Err(r.err("refunded", CodecProblem::NotCanonical));
        }
        Ok(Self {
            state,
            money,
            method,
            transaction_id,
            attempts,
            refunded,
            refund_pending: r.option("refund_pending", |r| r.money("refund_pending"))?,
            dispute_id: r.opt_str("dispute_id", TEXT_ARG_LEN_MAX)?,
            failure_code: r.opt_str("failure_code", TEXT_ARG_LEN_MAX)?,
            settled_at: r.opt_timestamp("settled_at")?,
        })
    }
}

#[cfg(test)]
mod tests;
