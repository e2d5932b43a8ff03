//! Product catalog governor: one SKU's lifecycle, from draft through approval to delisting.
//!
//! A product is sold only after approval: `submit_for_approval` then `approve_product` (or
//! `reject_product`, the seed's "(deny)", after which it is revised back to a draft). The seed's
//! "activate from any state" is refused here outside `deprecated` (un-deprecation) and
//! `restore_pending` (restoration approved), because activating a draft, a rejected or a
//! delisted product would bypass approval. A deprecation may name a sunset, at which the
//! product is delisted by the state timeout.

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, StateTimeout, Transition};
use crate::kind::GovernorKind;
use crate::limits::SKU_LEN_MAX;
use crate::rejection::Rejection;
use crate::time::{Ctx, DAY_MS, Timestamp};

/// What a SKU must look like, for the message of a malformed one.
const SKU_EXPECTED: &str = "1 to 64 characters of A-Z a-z 0-9 . _ -";
// The message above names the limit.
const _: () = assert!(SKU_LEN_MAX == 64);

crate::define_states! {
    /// Where a product is in its life. No state is terminal: a delisted product may be restored.
    pub enum State {
        /// Being written; not submitted yet.
        Draft => "draft",
        /// Submitted and awaiting approval.
        PendingApproval => "pending_approval",
        /// Approved and on sale.
        Active => "active",
        /// Still on sale but on its way out (until `sunset_at`, if given).
        Deprecated => "deprecated",
        /// Off sale.
        Delisted => "delisted",
        /// Off sale, with a request to restore it awaiting approval.
        RestorePending => "restore_pending",
        /// Approval was refused; may be revised back to a draft.
        Rejected => "rejected",
    }
    terminal: []
}

/// What can be asked of a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Submits the draft for approval under `sku`.
    SubmitForApproval {
        /// The stock-keeping unit: 1 to [`SKU_LEN_MAX`] characters of `A-Z a-z 0-9 . _ -`.
        sku: String,
    },
    /// Approves the submitted product: it goes on sale.
    ApproveProduct,
    /// Refuses the submitted product.
    RejectProduct,
    /// Takes a rejected product back to a draft.
    ReviseProduct,
    /// Marks an active product as on its way out, optionally delisting it at `sunset_at`.
    DeprecateProduct {
        /// When the product is delisted; must lie after the time of the command.
        sunset_at: Option<Timestamp>,
    },
    /// Puts a product (back) on sale: un-deprecates it, or approves its restoration.
    ActivateProduct,
    /// Takes a product off sale; sent by the state timeout at `sunset_at`.
    DelistProduct,
    /// Asks for a delisted product to be put back on sale.
    RequestRestore,
    /// Refuses the restoration; the product stays delisted.
    DenyRestore,
}

/// Checks a SKU argument of `submit_for_approval`.
fn sku(r: &mut ArgReader<'_>) -> Result<String, ArgError> {
    let v = r.raw("sku")?;
    let err =
        |value: Option<&str>, problem| ArgError::new("submit_for_approval", "sku", value, problem);
    if v.is_empty() {
        return Err(err(Some(v), ArgProblem::Empty));
    }
    if v.len() > SKU_LEN_MAX {
        return Err(err(None, ArgProblem::TooLong { max: SKU_LEN_MAX }));
    }
    if !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(err(Some(v), ArgProblem::Malformed { expected: SKU_EXPECTED }));
    }
    Ok(v.to_owned())
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "submit_for_approval",
        "approve_product",
        "reject_product",
        "revise_product",
        "deprecate_product",
        "activate_product",
        "delist_product",
        "request_restore",
        "deny_restore",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::SubmitForApproval { .. } => "submit_for_approval",
            Self::ApproveProduct => "approve_product",
            Self::RejectProduct => "reject_product",
            Self::ReviseProduct => "revise_product",
            Self::DeprecateProduct { .. } => "deprecate_product",
            Self::ActivateProduct => "activate_product",
            Self::DelistProduct => "delist_product",
            Self::RequestRestore => "request_restore",
            Self::DenyRestore => "deny_restore",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::SubmitForApproval { sku } => {
                a.insert("sku".into(), sku.clone());
            }
            Self::DeprecateProduct { sunset_at: Some(t) } => {
                a.insert("sunset_at".into(), t.as_ms().to_string());
            }
            Self::DeprecateProduct { sunset_at: None }
            | Self::ApproveProduct
            | Self::RejectProduct
            | Self::ReviseProduct
            | Self::ActivateProduct
            | Self::DelistProduct
            | Self::RequestRestore
            | Self::DenyRestore => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "submit_for_approval" => Self::SubmitForApproval { sku: sku(&mut r)? },
            "approve_product" => Self::ApproveProduct,
            "reject_product" => Self::RejectProduct,
            "revise_product" => Self::ReviseProduct,
            "deprecate_product" => {
                Self::DeprecateProduct { sunset_at: r.optional_timestamp("sunset_at")? }
            }
            "activate_product" => Self::ActivateProduct,
            "delist_product" => Self::DelistProduct,
            "request_restore" => Self::RequestRestore,
            _ => Self::DenyRestore,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(ctx: &Ctx) -> Vec<Self> {
        vec![
            Self::SubmitForApproval { sku: "PRO-2026.m".into() },
            Self::ApproveProduct,
            Self::RejectProduct,
            Self::ReviseProduct,
            Self::DeprecateProduct { sunset_at: Some(ctx.now.plus_ms(90 * DAY_MS)) },
            Self::ActivateProduct,
            Self::DelistProduct,
            Self::RequestRestore,
            Self::DenyRestore,
        ]
    }
}

/// One product (SKU): its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Product {
    state: StateCell,
    /// The SKU it was last submitted under; the catalog and receipts name the product by it.
    sku: Option<String>,
    /// When it was last submitted for approval, for approval queues and audit.
    submitted_at: Option<Timestamp>,
    /// When it was first approved, for audit (restorations and re-approvals do not reset it).
    approved_at: Option<Timestamp>,
    /// When it was last deprecated, for audit.
    deprecated_at: Option<Timestamp>,
    /// When a deprecated product is delisted; drives the state timeout.
    sunset_at: Option<Timestamp>,
    /// When it was last delisted, for audit.
    delisted_at: Option<Timestamp>,
}

impl Product {
    /// The SKU, once submitted.
    #[must_use]
    pub fn sku(&self) -> Option<&str> {
        self.sku.as_deref()
    }

    /// When the product was last submitted for approval.
    #[must_use]
    pub fn submitted_at(&self) -> Option<Timestamp> {
        self.submitted_at
    }

    /// When the product was first approved.
    #[must_use]
    pub fn approved_at(&self) -> Option<Timestamp> {
        self.approved_at
    }

    /// When the product was last deprecated.
    #[must_use]
    pub fn deprecated_at(&self) -> Option<Timestamp> {
        self.deprecated_at
    }

    /// When a deprecated product is delisted, if a sunset was given (cleared on activation).
    #[must_use]
    pub fn sunset_at(&self) -> Option<Timestamp> {
        self.sunset_at
    }

    /// When the product was last delisted.
    #[must_use]
    pub fn delisted_at(&self) -> Option<Timestamp> {
        self.delisted_at
    }
}

impl Governor for Product {
    const KIND: GovernorKind = GovernorKind::Catalog;
    type State = State;
    type Command = Command;

    fn state(&self) -> State {
        self.state.0
    }

    fn decide(&self, command: &Command, ctx: &Ctx) -> Result<Transition<State>, Rejection> {
        use Command as C;
        use State as S;
        let from = self.state.0;
        let to = match (from, command) {
            (S::Draft, C::SubmitForApproval { .. }) => S::PendingApproval,
            (S::PendingApproval, C::ApproveProduct) => S::Active,
            (S::PendingApproval, C::RejectProduct) => S::Rejected,
            (S::Rejected, C::ReviseProduct) => S::Draft,
            (S::Active, C::DeprecateProduct { sunset_at }) => match sunset_at {
                Some(end) if *end <= ctx.now => {
                    return Err(ArgError::new(
                        "deprecate_product",
                        "sunset_at",
                        Some(&end.as_ms().to_string()),
                        ArgProblem::NotInFuture,
                    )
                    .into());
                }
                _ => S::Deprecated,
            },
            (S::Deprecated | S::RestorePending, C::ActivateProduct) => S::Active,
            (S::Active | S::Deprecated, C::DelistProduct) => S::Delisted,
            (S::Delisted, C::RequestRestore) => S::RestorePending,
            (S::RestorePending, C::DenyRestore) => S::Delisted,
            (
                S::Draft
                | S::PendingApproval
                | S::Active
                | S::Deprecated
                | S::Delisted
                | S::RestorePending
                | S::Rejected,
                _,
            ) => return Err(self.invalid(command)),
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::SubmitForApproval { sku } => {
                self.sku = Some(sku.clone());
                self.submitted_at = Some(at);
            }
            Command::ApproveProduct => {
                self.approved_at.get_or_insert(at);
            }
            Command::DeprecateProduct { sunset_at } => {
                self.deprecated_at = Some(at);
                // No sunset given means no state timeout: the product stays until delisted.
                self.sunset_at = *sunset_at;
            }
            Command::ActivateProduct => {
                // Back on sale: a pending sunset no longer applies.
                self.sunset_at = None;
            }
            Command::DelistProduct => {
                self.delisted_at = Some(at);
            }
            Command::RejectProduct
            | Command::ReviseProduct
            | Command::RequestRestore
            | Command::DenyRestore => {}
        }
        self.state.0 = to;
    }

    fn state_timeout(&self) -> Option<StateTimeout<Command>> {
        match self.state.0 {
            State::Deprecated => {
                self.sunset_at.map(|at| StateTimeout { at, command: Command::DelistProduct })
            }
            State::Draft
            | State::PendingApproval
            | State::Active
            | State::Delisted
            | State::RestorePending
            | State::Rejected => None,
        }
    }
}

impl StateCodec for Product {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.opt_str("sku", self.sku.as_deref(), SKU_LEN_MAX);
        w.opt_timestamp(self.submitted_at);
        w.opt_timestamp(self.approved_at);
        w.opt_timestamp(self.deprecated_at);
        w.opt_timestamp(self.sunset_at);
        w.opt_timestamp(self.delisted_at);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        Ok(Self {
            state: StateCell(r.state()?),
            sku: r.opt_str("sku", SKU_LEN_MAX)?,
            submitted_at: r.opt_timestamp("submitted_at")?,
            approved_at: r.opt_timestamp("approved_at")?,
            deprecated_at: r.opt_timestamp("deprecated_at")?,
            sunset_at: r.opt_timestamp("sunset_at")?,
            delisted_at: r.opt_timestamp("delisted_at")?,
        })
    }
}

#[cfg(test)]
mod tests;
