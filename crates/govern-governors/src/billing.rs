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
//! command that states none is completed from the machine ([`Governor::complete`]) before its
//! receipt is sealed, so that its arguments, which replay parses, record them.

use rust_decimal::Decimal;

use crate::args::{ArgError, ArgReader, Args, CommandSpec};
use crate::governor::{Governor, Transition};
use crate::kind::GovernorKind;
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

impl Command {
    /// The amount and currency this command states (or was completed with), if any.
    #[must_use]
    pub fn money(&self) -> Option<Money> {
        match self {
            Self::RequestPayment { money, .. } | Self::RequestRefund { money } => Some(*money),
            Self::AuthorizePayment { money, .. }
            | Self::ProcessPayment { money }
            | Self::SettlePayment { money }
            | Self::FailPayment { money, .. }
            | Self::RetryPayment { money }
            | Self::ProcessRefund { money }
            | Self::SettleRefund { money }
            | Self::FailRefund { money }
            | Self::DisputePayment { money, .. }
            | Self::ResolveDispute { money, .. }
            | Self::Close { money } => *money,
        }
    }

    /// The money a command that does not require it states; `None` for the two that do.
    fn optional_money(&self) -> Option<Money> {
        match self {
            Self::RequestPayment { .. } | Self::RequestRefund { .. } => None,
            other => other.money(),
        }
    }

    /// The optional money of a command that does not require it; `None` for the two that do.
    fn optional_money_mut(&mut self) -> Option<&mut Option<Money>> {
        match self {
            Self::RequestPayment { .. } | Self::RequestRefund { .. } => None,
            Self::AuthorizePayment { money, .. }
            | Self::ProcessPayment { money }
            | Self::SettlePayment { money }
            | Self::FailPayment { money, .. }
            | Self::RetryPayment { money }
            | Self::ProcessRefund { money }
            | Self::SettleRefund { money }
            | Self::FailRefund { money }
            | Self::DisputePayment { money, .. }
            | Self::ResolveDispute { money, .. }
            | Self::Close { money } => Some(money),
        }
    }

    /// Whether the command is about the pending refund rather than the payment.
    fn is_refund_step(&self) -> bool {
        matches!(
            self,
            Self::RequestRefund { .. }
                | Self::ProcessRefund { .. }
                | Self::SettleRefund { .. }
                | Self::FailRefund { .. }
        )
    }
}

fn insert_money(a: &mut Args, money: Money) {
    a.insert("amount".into(), money.amount().to_string());
    a.insert("currency".into(), money.currency().code().to_owned());
}

fn insert_optional_money(a: &mut Args, money: Option<Money>) {
    if let Some(money) = money {
        insert_money(a, money);
    }
}

/// The optional `amount` and `currency` arguments: both or neither.
fn optional_money(r: &mut ArgReader<'_>, args: &Args) -> Result<Option<Money>, ArgError> {
    if args.contains_key("amount") || args.contains_key("currency") {
        r.money().map(Some)
    } else {
        Ok(None)
    }
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
        insert_optional_money(&mut a, self.money());
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
                money: optional_money(&mut r, args)?,
            },
            "process_payment" => Self::ProcessPayment { money: optional_money(&mut r, args)? },
            "settle_payment" => Self::SettlePayment { money: optional_money(&mut r, args)? },
            "fail_payment" => Self::FailPayment {
                code: r.optional_text("code")?,
                money: optional_money(&mut r, args)?,
            },
            "retry_payment" => Self::RetryPayment { money: optional_money(&mut r, args)? },
            "request_refund" => Self::RequestRefund { money: r.money()? },
            "process_refund" => Self::ProcessRefund { money: optional_money(&mut r, args)? },
            "settle_refund" => Self::SettleRefund { money: optional_money(&mut r, args)? },
            "fail_refund" => Self::FailRefund { money: optional_money(&mut r, args)? },
            "dispute_payment" => Self::DisputePayment {
                dispute_id: r.text("dispute_id")?,
                money: optional_money(&mut r, args)?,
            },
            "resolve_dispute" => Self::ResolveDispute {
                outcome: r.parsed("outcome", DisputeOutcome::EXPECTED)?,
                money: optional_money(&mut r, args)?,
            },
            _ => Self::Close { money: optional_money(&mut r, args)? },
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
    /// The amount of the refund requested and not yet settled or failed.
    refund_pending: Option<Decimal>,
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

    /// The amount of the refund in flight, if any.
    #[must_use]
    pub fn refund_pending(&self) -> Option<Decimal> {
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

    /// The money `command` is about, by the machine: the pending refund's for the refund
    /// steps, the payment's otherwise; `None` for the two requests (they bring their own) and
    /// before a payment was requested.
    fn money_of(&self, command: &Command) -> Option<Money> {
        match command {
            Command::RequestPayment { .. } | Command::RequestRefund { .. } => None,
            c if c.is_refund_step() => {
                let currency = self.money?.currency();
                Money::new(self.refund_pending?, currency).ok()
            }
            _ => self.money,
        }
    }

    /// A stated amount must be the one the command is about.
    fn check_stated_money(&self, command: &Command) -> Result<(), Rejection> {
        let Some(stated) = command.optional_money() else { return Ok(()) };
        if Some(stated) == self.money_of(command) {
            return Ok(());
        }
        Err(Rejection::unmet(
            command.name(),
            if command.is_refund_step() {
                "the amount and currency must be the pending refund's"
            } else {
                "the amount and currency must be the payment's"
            },
        ))
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
            Command::RequestRefund { money } => self.refund_pending = Some(money.amount()),
            Command::SettleRefund { .. } => {
                if let Some(amount) = self.refund_pending.take() {
                    self.refunded = self.refunded.saturating_add(amount);
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
        let known = self.money_of(command);
        if let Some(money @ None) = command.optional_money_mut() {
            *money = known;
        }
    }
}

#[cfg(test)]
mod tests;
