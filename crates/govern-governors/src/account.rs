//! Account governor: one customer account, from sign-up to closure.
//!
//! An account is created with an e-mail address, verified over a channel, then activated.
//! The provider may suspend it or, for fraud or abuse, restrict it; a customer may always
//! leave, so closure is allowed from every live state.

use std::fmt;

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::codec::{CodecProblem, StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, Transition};
use crate::kind::GovernorKind;
use crate::limits::EMAIL_LEN_MAX;
use crate::rejection::Rejection;
use crate::time::{Ctx, Timestamp};

/// Longest local part (before the `@`) of an e-mail address, in bytes (RFC 5321).
pub const EMAIL_LOCAL_LEN_MAX: usize = 64;

crate::define_states! {
    /// Where an account is in its life.
    pub enum State {
        /// Not verified yet; `create_account` records the e-mail here.
        New => "new",
        /// The customer proved control of a channel; not yet in service.
        Verified => "verified",
        /// In service.
        Active => "active",
        /// Service withheld by the provider; may be activated again.
        Suspended => "suspended",
        /// Locked for fraud or abuse until the restriction is lifted.
        Restricted => "restricted",
        /// Closed for good.
        Closed => "closed",
    }
    terminal: [Closed]
}

/// A syntactically valid e-mail address, as given (not case-folded).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// What a malformed address is told to look like.
    const EXPECTED: &'static str = "an e-mail address such as ada@example.com";

    /// Validates an address: at most [`EMAIL_LEN_MAX`] bytes, exactly one `@`, a local part
    /// of 1 to [`EMAIL_LOCAL_LEN_MAX`] bytes, a domain of at least two non-empty dot-separated
    /// labels, and no white space or control characters anywhere.
    ///
    /// # Errors
    /// [`ArgProblem::TooLong`] for a long address, else [`ArgProblem::Malformed`].
    pub fn parse(s: &str) -> Result<Self, ArgProblem> {
        if s.len() > EMAIL_LEN_MAX {
            return Err(ArgProblem::TooLong { max: EMAIL_LEN_MAX });
        }
        let malformed = ArgProblem::Malformed { expected: Self::EXPECTED };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(malformed);
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(malformed);
        };
        let local_ok = (1..=EMAIL_LOCAL_LEN_MAX).contains(&local.len());
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty());
        if local_ok && domain_ok { Ok(Self(s.to_owned())) } else { Err(malformed) }
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::define_arg_enum! {
    /// How the customer proved control of the account.
    pub enum Channel {
        /// A link or code sent by e-mail.
        Email => "email",
        /// A code sent by SMS or voice call.
        Phone => "phone",
    }
}

/// What can be asked of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Records the account's e-mail address; once only.
    CreateAccount {
        /// The customer's e-mail address.
        email: Email,
    },
    /// Records that the customer proved control of a channel.
    VerifyAccount {
        /// The channel used.
        channel: Channel,
    },
    /// Puts a verified or suspended account in service.
    ActivateAccount,
    /// Withholds service from an active account.
    SuspendAccount,
    /// Locks an active or suspended account for fraud or abuse.
    RestrictAccount,
    /// Lifts a restriction, putting the account back in service.
    LiftRestriction,
    /// Closes the account for good, from any live state.
    CloseAccount,
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "create_account",
        "verify_account",
        "activate_account",
        "suspend_account",
        "restrict_account",
        "lift_restriction",
        "close_account",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::CreateAccount { .. } => "create_account",
            Self::VerifyAccount { .. } => "verify_account",
            Self::ActivateAccount => "activate_account",
            Self::SuspendAccount => "suspend_account",
            Self::RestrictAccount => "restrict_account",
            Self::LiftRestriction => "lift_restriction",
            Self::CloseAccount => "close_account",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::CreateAccount { email } => {
                a.insert("email".into(), email.as_str().to_owned());
            }
            Self::VerifyAccount { channel } => {
                a.insert("channel".into(), channel.name().to_owned());
            }
            Self::ActivateAccount
            | Self::SuspendAccount
            | Self::RestrictAccount
            | Self::LiftRestriction
            | Self::CloseAccount => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "create_account" => {
                let raw = r.raw("email")?;
                let email = Email::parse(raw).map_err(|problem| {
                    // A too-long value is not echoed back, as for any text argument.
                    let value = match problem {
                        ArgProblem::TooLong { .. } => None,
                        _ => Some(raw),
                    };
                    ArgError::new(r.command(), "email", value, problem)
                })?;
                Self::CreateAccount { email }
            }
            "verify_account" => {
                Self::VerifyAccount { channel: r.parsed("channel", Channel::EXPECTED)? }
            }
            "activate_account" => Self::ActivateAccount,
            "suspend_account" => Self::SuspendAccount,
            "restrict_account" => Self::RestrictAccount,
            "lift_restriction" => Self::LiftRestriction,
            _ => Self::CloseAccount,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        vec![
            Self::CreateAccount { email: Email("ada@example.com".into()) },
            Self::VerifyAccount { channel: Channel::Email },
            Self::VerifyAccount { channel: Channel::Phone },
            Self::ActivateAccount,
            Self::SuspendAccount,
            Self::RestrictAccount,
            Self::LiftRestriction,
            Self::CloseAccount,
        ]
    }
}

/// One customer account: its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    state: StateCell,
    /// The customer's address; its presence means the account was created (checked by
    /// `create_account` and `verify_account`).
    email: Option<Email>,
    /// When `create_account` was accepted, for the account's age.
    created_at: Option<Timestamp>,
    /// The channel the customer verified with, for audit.
    verified_via: Option<Channel>,
    /// When the account was verified, for audit.
    verified_at: Option<Timestamp>,
    /// When the account was closed, for retention periods.
    closed_at: Option<Timestamp>,
}

impl Account {
    /// The e-mail address, once created.
    #[must_use]
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }

    /// When the account was created.
    #[must_use]
    pub fn created_at(&self) -> Option<Timestamp> {
        self.created_at
    }

    /// The channel the account was verified with.
    #[must_use]
    pub fn verified_via(&self) -> Option<Channel> {
        self.verified_via
    }

    /// When the account was verified.
    #[must_use]
    pub fn verified_at(&self) -> Option<Timestamp> {
        self.verified_at
    }

    /// When the account was closed.
    #[must_use]
    pub fn closed_at(&self) -> Option<Timestamp> {
        self.closed_at
    }
}

impl Governor for Account {
    const KIND: GovernorKind = GovernorKind::Account;
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
            (S::New, C::CreateAccount { .. }) => {
                if self.email.is_some() {
                    return Err(Rejection::unmet("create_account", "the account already exists"));
                }
                S::New
            }
            (S::New, C::VerifyAccount { .. }) => {
                if self.email.is_none() {
                    return Err(Rejection::unmet(
                        "verify_account",
                        "create_account must come first",
                    ));
                }
                S::Verified
            }
            (S::Verified | S::Suspended, C::ActivateAccount) => S::Active,
            (S::Active, C::SuspendAccount) => S::Suspended,
            (S::Active | S::Suspended, C::RestrictAccount) => S::Restricted,
            (S::Restricted, C::LiftRestriction) => S::Active,
            (S::New | S::Verified | S::Active | S::Suspended | S::Restricted, C::CloseAccount) => {
                S::Closed
            }
            (S::New | S::Verified | S::Active | S::Suspended | S::Restricted | S::Closed, _) => {
                return Err(self.invalid(command));
            }
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::CreateAccount { email } => {
                self.email = Some(email.clone());
                self.created_at = Some(at);
            }
            Command::VerifyAccount { channel } => {
                self.verified_via = Some(*channel);
                self.verified_at = Some(at);
            }
            Command::CloseAccount => {
                self.closed_at = Some(at);
            }
            Command::ActivateAccount
            | Command::SuspendAccount
            | Command::RestrictAccount
            | Command::LiftRestriction => {}
        }
        self.state.0 = to;
    }
}

impl StateCodec for Account {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.opt_str("email", self.email.as_ref().map(Email::as_str), EMAIL_LEN_MAX);
        w.opt_timestamp(self.created_at);
        w.option(self.verified_via.as_ref(), |w, c| w.choice("verified_via", c, Channel::ALL));
        w.opt_timestamp(self.verified_at);
        w.opt_timestamp(self.closed_at);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        let state = StateCell(r.state()?);
        let email = match r.opt_str("email", EMAIL_LEN_MAX)? {
            None => None,
            Some(s) => Some(Email::parse(&s).map_err(|_| {
                r.err("email", CodecProblem::Invalid { expected: Email::EXPECTED })
            })?),
        };
        Ok(Self {
            state,
            email,
            created_at: r.opt_timestamp("created_at")?,
            verified_via: r.option("verified_via", |r| r.choice("verified_via", Channel::ALL))?,
            verified_at: r.opt_timestamp("verified_at")?,
            closed_at: r.opt_timestamp("closed_at")?,
        })
    }
}

#[cfg(test)]
mod tests;
