//! Commands as names and string arguments: how scripts send them and receipts record them.
//!
//! Every typed command has a stable name and a canonical list of string arguments. Parsing
//! that list back gives the same command: this is what lets a receipt be replayed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::limits::TEXT_ARG_LEN_MAX;
use crate::money::{Currency, Money};
use crate::time::{Ctx, Timestamp};

/// Command arguments by name, in a deterministic (sorted) order.
pub type Args = BTreeMap<String, String>;

/// What is wrong with one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgProblem {
    /// The command has no such command name.
    UnknownCommand {
        /// The command names this governor knows.
        expected: &'static [&'static str],
    },
    /// A required argument is absent.
    Missing,
    /// The command takes no argument of this name.
    Unexpected,
    /// The value is empty.
    Empty,
    /// The value is longer than allowed.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The value does not parse as the expected type.
    Malformed {
        /// What was expected, for the message.
        expected: &'static str,
    },
    /// The value is outside the allowed range.
    OutOfRange {
        /// The allowed range, for the message.
        expected: &'static str,
    },
    /// The money amount is zero or negative.
    NotPositive,
    /// The currency code is not an ISO 4217 currency.
    UnknownCurrency,
    /// The amount has more decimals than the currency's minor unit.
    TooPrecise {
        /// The currency's number of decimals.
        decimals_max: u32,
    },
    /// A timestamp that must lie in the future does not.
    NotInFuture,
}

impl fmt::Display for ArgProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCommand { expected } => {
                write!(f, "unknown command; expected one of {}", expected.join(", "))
            }
            Self::Missing => f.write_str("missing"),
            Self::Unexpected => f.write_str("not an argument of this command"),
            Self::Empty => f.write_str("empty"),
            Self::TooLong { max } => write!(f, "longer than {max} bytes"),
            Self::Malformed { expected } => write!(f, "expected {expected}"),
            Self::OutOfRange { expected } => write!(f, "out of range; expected {expected}"),
            Self::NotPositive => f.write_str("must be greater than zero"),
            Self::UnknownCurrency => f.write_str("not an ISO 4217 currency code"),
            Self::TooPrecise { decimals_max } => {
                write!(f, "more than {decimals_max} decimals for this currency")
            }
            Self::NotInFuture => f.write_str("must lie after the time of the command"),
        }
    }
}

/// A command or one of its arguments is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{command}: argument `{argument}` {}{problem}", value.as_ref().map(|v| format!("= {v:?}: ")).unwrap_or_default())]
pub struct ArgError {
    /// The command name as given.
    pub command: String,
    /// The argument name (`command` when the command name itself is unknown).
    pub argument: String,
    /// The offending value, when there is one.
    pub value: Option<String>,
    /// What is wrong.
    pub problem: ArgProblem,
}

impl ArgError {
    /// An error about `argument` of `command`.
    #[must_use]
    pub fn new(command: &str, argument: &str, value: Option<&str>, problem: ArgProblem) -> Self {
        Self {
            command: command.to_owned(),
            argument: argument.to_owned(),
            value: value.map(str::to_owned),
            problem,
        }
    }

    /// The command name is not one of `expected`.
    #[must_use]
    pub fn unknown_command(command: &str, expected: &'static [&'static str]) -> Self {
        Self::new(command, "command", Some(command), ArgProblem::UnknownCommand { expected })
    }
}

/// A governor's command type: a stable name, canonical arguments, and the way back.
pub trait CommandSpec: Sized + Clone + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Every command name of this governor, in table order.
    const NAMES: &'static [&'static str];

    /// The stable snake_case name used in receipts, logs and scripts.
    fn name(&self) -> &'static str;

    /// The canonical string arguments; `parse(name, args)` gives this command back.
    fn args(&self) -> Args;

    /// Parses a command from its name and string arguments.
    ///
    /// # Errors
    /// [`ArgError`] naming the argument and the problem.
    fn parse(name: &str, args: &Args) -> Result<Self, ArgError>;

    /// Valid example commands at `ctx`, covering every name at least once. Exploration, docs
    /// and the exhaustive tests drive the machine with them.
    fn samples(ctx: &Ctx) -> Vec<Self>;
}

/// Reads typed arguments out of [`Args`], then checks that none was left unread.
#[derive(Debug)]
pub struct ArgReader<'a> {
    command: &'static str,
    args: &'a Args,
    /// Names read so far, so that `finish` can name an argument nobody asked for.
    read: Vec<&'a str>,
}

impl<'a> ArgReader<'a> {
    /// A reader for the arguments of `command`.
    #[must_use]
    pub fn new(command: &'static str, args: &'a Args) -> Self {
        Self { command, args, read: Vec::new() }
    }

    /// A reader for the arguments of `name`, once `name` is found among a governor's command
    /// `names`.
    ///
    /// # Errors
    /// [`ArgProblem::UnknownCommand`] listing `names`.
    pub fn for_command(
        name: &str,
        names: &'static [&'static str],
        args: &'a Args,
    ) -> Result<Self, ArgError> {
        match names.iter().find(|n| **n == name) {
            Some(known) => Ok(Self::new(known, args)),
            None => Err(ArgError::unknown_command(name, names)),
        }
    }

    /// The command whose arguments this reads.
    #[must_use]
    pub fn command(&self) -> &'static str {
        self.command
    }

    fn err(&self, argument: &str, value: Option<&str>, problem: ArgProblem) -> ArgError {
        ArgError::new(self.command, argument, value, problem)
    }

    /// The raw value of `name`, if present.
    pub fn optional_raw(&mut self, name: &str) -> Option<&'a str> {
        let (key, value) = self.args.get_key_value(name)?;
        self.read.push(key);
        Some(value)
    }

    /// The raw value of `name`.
    ///
    /// # Errors
    /// [`ArgProblem::Missing`] when absent.
    pub fn raw(&mut self, name: &str) -> Result<&'a str, ArgError> {
        self.optional_raw(name).ok_or_else(|| self.err(name, None, ArgProblem::Missing))
    }

    /// A non-empty text argument of at most [`TEXT_ARG_LEN_MAX`] bytes.
    ///
    /// # Errors
    /// Missing, empty or too long.
    pub fn text(&mut self, name: &str) -> Result<String, ArgError> {
        let v = self.raw(name)?;
        self.check_text(name, v)?;
        Ok(v.to_owned())
    }

    /// An optional text argument (see [`Self::text`]).
    ///
    /// # Errors
    /// Empty or too long.
    pub fn optional_text(&mut self, name: &str) -> Result<Option<String>, ArgError> {
        match self.optional_raw(name) {
            None => Ok(None),
            Some(v) => {
                self.check_text(name, v)?;
                Ok(Some(v.to_owned()))
            }
        }
    }

    fn check_text(&self, name: &str, v: &str) -> Result<(), ArgError> {
        if v.trim().is_empty() {
            return Err(self.err(name, Some(v), ArgProblem::Empty));
        }
        if v.len() > TEXT_ARG_LEN_MAX {
            return Err(self.err(name, None, ArgProblem::TooLong { max: TEXT_ARG_LEN_MAX }));
        }
        Ok(())
    }

    /// An argument parsed with [`FromStr`]; `expected` names the type for the message.
    ///
    /// # Errors
    /// Missing or malformed.
    pub fn parsed<T: FromStr>(
        &mut self,
        name: &str,
        expected: &'static str,
    ) -> Result<T, ArgError> {
        let v = self.raw(name)?;
        v.parse().map_err(|_| self.err(name, Some(v), ArgProblem::Malformed { expected }))
    }

    /// An optional argument parsed with [`FromStr`].
    ///
    /// # Errors
    /// Malformed.
    pub fn optional_parsed<T: FromStr>(
        &mut self,
        name: &str,
        expected: &'static str,
    ) -> Result<Option<T>, ArgError> {
        match self.optional_raw(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| self.err(name, Some(v), ArgProblem::Malformed { expected })),
        }
    }

    /// An unsigned integer in `min..=max`.
    ///
    /// # Errors
    /// Missing, malformed or out of range.
    pub fn u32_in(
        &mut self,
        name: &str,
        min: u32,
        max: u32,
        expected: &'static str,
    ) -> Result<u32, ArgError> {
        let v: u32 = self.parsed(name, expected)?;
        if v < min || v > max {
            let s = v.to_string();
            return Err(self.err(name, Some(&s), ArgProblem::OutOfRange { expected }));
        }
        Ok(v)
    }

    /// An optional unsigned integer in `min..=max`.
    ///
    /// # Errors
    /// Malformed or out of range.
    pub fn optional_u32_in(
        &mut self,
        name: &str,
        min: u32,
        max: u32,
        expected: &'static str,
    ) -> Result<Option<u32>, ArgError> {
        let v: Option<u32> = self.optional_parsed(name, expected)?;
        match v {
            Some(v) if v < min || v > max => {
                let s = v.to_string();
                Err(self.err(name, Some(&s), ArgProblem::OutOfRange { expected }))
            }
            _ => Ok(v),
        }
    }

    /// A whole number greater than zero (a limit, a quota).
    ///
    /// # Errors
    /// Missing, malformed or zero.
    pub fn positive_u64(&mut self, name: &str, expected: &'static str) -> Result<u64, ArgError> {
        let v: u64 = self.parsed(name, expected)?;
        self.check_positive(name, v, expected)
    }

    /// An optional whole number greater than zero.
    ///
    /// # Errors
    /// Malformed or zero.
    pub fn optional_positive_u64(
        &mut self,
        name: &str,
        expected: &'static str,
    ) -> Result<Option<u64>, ArgError> {
        let v: Option<u64> = self.optional_parsed(name, expected)?;
        v.map(|v| self.check_positive(name, v, expected)).transpose()
    }

    fn check_positive(&self, name: &str, v: u64, expected: &'static str) -> Result<u64, ArgError> {
        if v == 0 {
            return Err(self.err(name, Some("0"), ArgProblem::OutOfRange { expected }));
        }
        Ok(v)
    }

    /// A timestamp in milliseconds since the epoch.
    ///
    /// # Errors
    /// Malformed.
    pub fn optional_timestamp(&mut self, name: &str) -> Result<Option<Timestamp>, ArgError> {
        Ok(self.optional_parsed::<u64>(name, "milliseconds since the Unix epoch")?.map(Timestamp))
    }

    /// A money amount from `amount` and `currency` arguments, positive and no more precise
    /// than the currency's minor unit.
    ///
    /// # Errors
    /// Missing, malformed, unknown currency, not positive or too precise.
    pub fn money(&mut self) -> Result<Money, ArgError> {
        let code = self.raw("currency")?;
        let currency = Currency::from_code(code)
            .ok_or_else(|| self.err("currency", Some(code), ArgProblem::UnknownCurrency))?;
        let raw = self.raw("amount")?;
        let amount = raw.parse().map_err(|_| {
            self.err(
                "amount",
                Some(raw),
                ArgProblem::Malformed { expected: "a decimal amount such as 19.99" },
            )
        })?;
        Money::new(amount, currency).map_err(|e| self.err("amount", Some(raw), e.problem()))
    }

    /// Optional `amount` and `currency` arguments: both or neither (see [`Self::money`]).
    ///
    /// # Errors
    /// As [`Self::money`], when either is given.
    pub fn optional_money(&mut self) -> Result<Option<Money>, ArgError> {
        if self.args.contains_key("amount") || self.args.contains_key("currency") {
            self.money().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Checks that every argument was read.
    ///
    /// # Errors
    /// [`ArgProblem::Unexpected`] naming the first argument not read.
    pub fn finish(self) -> Result<(), ArgError> {
        match self.args.keys().find(|k| !self.read.contains(&k.as_str())) {
            None => Ok(()),
            Some(unread) => Err(self.err(unread, None, ArgProblem::Unexpected)),
        }
    }
}

/// Declares a small closed enum used as a command argument (a payment method, a severity...):
/// stable snake_case names, `ALL`, an `EXPECTED` phrase for error messages, `FromStr` and
/// `Display`. Parse it with [`ArgReader::parsed`]`(name, T::EXPECTED)`.
#[macro_export]
macro_rules! define_arg_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// What an argument of this type must be, for error messages.
            pub const EXPECTED: &'static str = $crate::__one_of!($($text),+);

            /// The stable snake_case name used in arguments and receipts.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();

            fn from_str(s: &str) -> Result<Self, ()> {
                Self::ALL.iter().copied().find(|v| v.name() == s).ok_or(())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// `"one of a, b, c"` from string literals, at compile time.
#[doc(hidden)]
#[macro_export]
macro_rules! __one_of {
    ($first:literal $(, $rest:literal)*) => {
        concat!("one of ", $first $(, ", ", $rest)*)
    };
}
