//! Governors' machine states as bytes: what a ledger snapshot keeps of a governor so that its
//! replay starts from there instead of from its first (perhaps archived) receipt.
//!
//! One small binary format for every kind, written by [`StateWriter`] and read back by
//! [`StateReader`]. An encoded state is
//!
//! ```text
//! kind tag (1 byte) · format version (1 byte) · the machine's fields, in declaration order
//! ```
//!
//! Fields are: integers as unsigned LEB128 (the shortest form only), a timestamp as its
//! milliseconds, a `bool` or an `Option`'s presence as one byte 0 or 1, a text as its length
//! then UTF-8 bytes, a closed enum (a state, a payment method...) as its index in the enum's
//! `ALL` table, a decimal as `rust_decimal`'s own 16-byte form, money as its currency's three
//! letters then its amount. Nothing is a map or a set, so nothing needs sorting: the same
//! machine always gives the same bytes, and every accepted input is the only encoding of the
//! state it decodes to (decoding re-checks what encoding would write: shortest integers,
//! canonical decimals, normalised money).
//!
//! Bounds: a whole state is at most [`STATE_LEN_MAX`] bytes; every text has the maximum its
//! command argument is parsed with (a state rebuilt from receipts never holds more) and is
//! checked against it and against what is left of the input before anything is allocated.
//! A state built from typed commands beyond those limits (which its own receipts could not
//! replay either) is refused when encoding, with the field named, rather than written as
//! bytes that would not decode.

use std::fmt;

use rust_decimal::Decimal;

use crate::args::Args;
use crate::governor::{Governor, ReplayError, StateSpec, replay_step};
use crate::kind::GovernorKind;
use crate::limits::STATE_LEN_MAX;
use crate::money::{Currency, Money};
use crate::time::Timestamp;
use crate::{account, audit, billing, catalog, compliance, entitlement, quota, saga};
use crate::{subscription, tenant};

/// What is wrong with one field of an encoded state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecProblem {
    /// The input ends inside the field.
    Truncated,
    /// A text (or the whole state) is longer than its maximum.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A tag byte (presence, enum index, kind) that names nothing.
    BadTag {
        /// The byte.
        tag: u8,
    },
    /// The state is of another governor kind.
    WrongKind {
        /// The kind the bytes are of, if their tag names one.
        found: Option<GovernorKind>,
    },
    /// A format version this build does not read.
    UnsupportedVersion {
        /// The version in the input.
        found: u8,
        /// The version this build reads and writes.
        supported: u8,
    },
    /// An integer beyond its type's range.
    OutOfRange,
    /// A text that is not UTF-8.
    NotUtf8,
    /// A value that is not in the one form encoding writes (a longer integer, an
    /// unnormalised amount, a decimal with stray flag bits).
    NotCanonical,
    /// A value its type refuses (an e-mail address, a currency, an amount, a domain).
    Invalid {
        /// What was expected.
        expected: &'static str,
    },
    /// Bytes after the last field.
    TrailingBytes {
        /// How many.
        len: usize,
    },
}

impl fmt::Display for CodecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input ends inside it"),
            Self::TooLong { len, max } => write!(f, "{len} bytes long, more than {max}"),
            Self::BadTag { tag } => write!(f, "tag {tag} names nothing"),
            Self::WrongKind { found: Some(kind) } => write!(f, "the state is of governor {kind}"),
            Self::WrongKind { found: None } => f.write_str("the state is of no known governor"),
            Self::UnsupportedVersion { found, supported } => {
                write!(f, "format version {found}, this build reads {supported}")
            }
            Self::OutOfRange => f.write_str("out of range"),
            Self::NotUtf8 => f.write_str("not UTF-8"),
            Self::NotCanonical => f.write_str("not in canonical form"),
            Self::Invalid { expected } => write!(f, "expected {expected}"),
            Self::TrailingBytes { len } => write!(f, "{len} bytes after the last field"),
        }
    }
}

/// Why a machine state does not encode or decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} state, field `{field}`: {problem}")]
pub struct StateCodecError {
    /// The governor kind being encoded or decoded.
    pub kind: GovernorKind,
    /// The field (`state` for the machine's state name, `kind` and `version` for the header,
    /// `input` for the whole).
    pub field: &'static str,
    /// What is wrong.
    pub problem: CodecProblem,
}

/// A governor machine's fields as bytes. Every [`Governor`] implements it; callers use
/// [`Governor::encode_state`] and [`Governor::decode_state`], which add the header, or
/// [`Machine`] for a kind known at run time.
pub trait StateCodec: Sized {
    /// The format version this build writes and reads, the byte after the kind tag. A change
    /// of the fields written bumps it; the golden tests pin each kind's bytes.
    const STATE_VERSION: u8;

    /// The oldest format version this build still reads (default: only the current one). A
    /// machine that reads older versions asks [`StateReader::version`] which fields follow.
    const STATE_VERSION_MIN: u8 = Self::STATE_VERSION;

    /// Writes every field of the machine, in a fixed order.
    fn encode_fields(&self, w: &mut StateWriter);

    /// Reads the fields [`Self::encode_fields`] writes.
    ///
    /// # Errors
    /// [`StateCodecError`] naming the first field that is missing or wrong.
    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError>;
}

/// The stable tag byte of each kind at the head of an encoded state (never reused).
#[must_use]
pub const fn kind_tag(kind: GovernorKind) -> u8 {
    match kind {
        GovernorKind::Entitlement => 1,
        GovernorKind::Billing => 2,
        GovernorKind::Catalog => 3,
        GovernorKind::Subscription => 4,
        GovernorKind::Account => 5,
        GovernorKind::Quota => 6,
        GovernorKind::Compliance => 7,
        GovernorKind::Tenant => 8,
        GovernorKind::Audit => 9,
        GovernorKind::Saga => 10,
    }
}

/// The kind whose tag is `tag`, if any.
#[must_use]
pub fn kind_of_tag(tag: u8) -> Option<GovernorKind> {
    GovernorKind::ALL.into_iter().find(|k| kind_tag(*k) == tag)
}

/// Encodes `machine` with its header (see [`Governor::encode_state`]).
pub(crate) fn encode<G: Governor>(machine: &G) -> Result<Vec<u8>, StateCodecError> {
    let mut w = StateWriter { out: Vec::with_capacity(64), kind: G::KIND, error: None };
    w.out.push(kind_tag(G::KIND));
    w.out.push(G::STATE_VERSION);
    machine.encode_fields(&mut w);
    if let Some(e) = w.error {
        return Err(e);
    }
    if w.out.len() > STATE_LEN_MAX {
        return Err(StateCodecError {
            kind: G::KIND,
            field: "input",
            problem: CodecProblem::TooLong { len: w.out.len(), max: STATE_LEN_MAX },
        });
    }
    Ok(w.out)
}

/// Decodes a machine of kind `G` with its header (see [`Governor::decode_state`]).
pub(crate) fn decode<G: Governor>(bytes: &[u8]) -> Result<G, StateCodecError> {
    let mut r = StateReader { bytes, pos: 0, kind: G::KIND, version: G::STATE_VERSION };
    if bytes.len() > STATE_LEN_MAX {
        return Err(r.err("input", CodecProblem::TooLong { len: bytes.len(), max: STATE_LEN_MAX }));
    }
    let tag = r.u8("kind")?;
    if tag != kind_tag(G::KIND) {
        return Err(r.err("kind", CodecProblem::WrongKind { found: kind_of_tag(tag) }));
    }
    let version = r.u8("version")?;
    if !(G::STATE_VERSION_MIN..=G::STATE_VERSION).contains(&version) {
        return Err(r.err(
            "version",
            CodecProblem::UnsupportedVersion { found: version, supported: G::STATE_VERSION },
        ));
    }
    r.version = version;
    let machine = G::decode_fields(&mut r)?;
    let left = bytes.len() - r.pos;
    if left > 0 {
        return Err(r.err("input", CodecProblem::TrailingBytes { len: left }));
    }
    Ok(machine)
}

/// Writes a machine's fields (see the module documentation for the format). Encoding never
/// fails field by field: the first field over its bound is kept and reported at the end.
#[derive(Debug)]
pub struct StateWriter {
    out: Vec<u8>,
    kind: GovernorKind,
    error: Option<StateCodecError>,
}

impl StateWriter {
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    /// `false` as 0, `true` as 1.
    pub fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    /// An unsigned integer, LEB128.
    pub fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            // The low seven bits, with the continuation bit.
            self.out.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// An unsigned integer, LEB128.
    pub fn u32(&mut self, v: u32) {
        self.u64(u64::from(v));
    }

    /// A timestamp, as its milliseconds.
    pub fn timestamp(&mut self, t: Timestamp) {
        self.u64(t.as_ms());
    }

    /// A text of at most `max` bytes; a longer one is refused, naming `field`.
    pub fn str(&mut self, field: &'static str, s: &str, max: usize) {
        if s.len() > max {
            self.fail(field, CodecProblem::TooLong { len: s.len(), max });
        }
        self.u64(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A decimal, in `rust_decimal`'s 16-byte form (exact: scale and sign included).
    pub fn decimal(&mut self, d: Decimal) {
        self.out.extend_from_slice(&d.serialize());
    }

    /// Money: the currency's three letters, then the amount.
    pub fn money(&mut self, m: Money) {
        self.out.extend_from_slice(m.currency().code().as_bytes());
        self.decimal(m.amount());
    }

    /// A value of a closed enum, as its index in `all` (the enum's `ALL`, declaration order).
    pub fn choice<T: PartialEq>(&mut self, field: &'static str, v: &T, all: &[T]) {
        match all.iter().position(|x| x == v).and_then(|i| u8::try_from(i).ok()) {
            Some(i) => self.out.push(i),
            None => self.fail(field, CodecProblem::OutOfRange),
        }
    }

    /// A machine's state, as its index in its `ALL` table.
    pub fn state<S: StateSpec>(&mut self, s: S) {
        self.choice("state", &s, S::ALL);
    }

    /// An option: 0 for `None`, else 1 and the value written by `put`.
    pub fn option<T>(&mut self, v: Option<&T>, put: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.out.push(0),
            Some(v) => {
                self.out.push(1);
                put(self, v);
            }
        }
    }

    /// An optional timestamp.
    pub fn opt_timestamp(&mut self, t: Option<Timestamp>) {
        self.option(t.as_ref(), |w, t| w.timestamp(*t));
    }

    /// An optional text of at most `max` bytes.
    pub fn opt_str(&mut self, field: &'static str, s: Option<&str>, max: usize) {
        self.option(s.as_ref(), |w, s| w.str(field, s, max));
    }

    fn fail(&mut self, field: &'static str, problem: CodecProblem) {
        if self.error.is_none() {
            self.error = Some(StateCodecError { kind: self.kind, field, problem });
        }
    }
}

/// Reads a machine's fields, each checked against the input left and its bound; every error
/// names the field.
#[derive(Debug)]
pub struct StateReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: GovernorKind,
    /// The format version of the input (between the machine's oldest read and current one).
    version: u8,
}

/// Longest LEB128 form of a `u64`.
const LEB128_U64_LEN_MAX: usize = 10;

impl<'a> StateReader<'a> {
    /// An error about `field` of the machine being read.
    #[must_use]
    pub fn err(&self, field: &'static str, problem: CodecProblem) -> StateCodecError {
        StateCodecError { kind: self.kind, field, problem }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], StateCodecError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.bytes.len());
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(self.err(field, CodecProblem::Truncated)),
        }
    }

    /// The format version of the input: a machine that reads older versions
    /// ([`StateCodec::STATE_VERSION_MIN`]) reads the fields that version has.
    #[must_use]
    pub fn version(&self) -> u8 {
        self.version
    }

    /// One byte.
    ///
    /// # Errors
    /// Truncated.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, StateCodecError> {
        let b = self.take(field, 1)?;
        b.first().copied().ok_or_else(|| self.err(field, CodecProblem::Truncated))
    }

    /// A `bool`: 0 or 1.
    ///
    /// # Errors
    /// Truncated, or another byte.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, StateCodecError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(self.err(field, CodecProblem::BadTag { tag })),
        }
    }

    /// An unsigned LEB128 integer, in its shortest form.
    ///
    /// # Errors
    /// Truncated, beyond `u64`, or a longer form than needed.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, StateCodecError> {
        let mut v: u64 = 0;
        for i in 0..LEB128_U64_LEN_MAX {
            let b = self.u8(field)?;
            let bits = u64::from(b & 0x7f);
            let shift = 7 * i as u32;
            // The tenth byte holds bit 63 only.
            if i == LEB128_U64_LEN_MAX - 1 && bits > 1 {
                return Err(self.err(field, CodecProblem::OutOfRange));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                // A last byte of zero after others is a longer form of a shorter number.
                if b == 0 && i > 0 {
                    return Err(self.err(field, CodecProblem::NotCanonical));
                }
                return Ok(v);
            }
        }
        Err(self.err(field, CodecProblem::OutOfRange))
    }

    /// An unsigned LEB128 integer that fits a `u32`.
    ///
    /// # Errors
    /// As [`Self::u64`], or beyond `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, StateCodecError> {
        let v = self.u64(field)?;
        u32::try_from(v).map_err(|_| self.err(field, CodecProblem::OutOfRange))
    }

    /// A timestamp.
    ///
    /// # Errors
    /// As [`Self::u64`].
    pub fn timestamp(&mut self, field: &'static str) -> Result<Timestamp, StateCodecError> {
        self.u64(field).map(Timestamp)
    }

    /// A text of at most `max` bytes, checked before it is copied.
    ///
    /// # Errors
    /// Truncated, too long or not UTF-8.
    pub fn str(&mut self, field: &'static str, max: usize) -> Result<String, StateCodecError> {
        let len = self.u64(field)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| self.err(field, CodecProblem::TooLong { len: saturate(len), max }))?;
        let bytes = self.take(field, len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.err(field, CodecProblem::NotUtf8)),
        }
    }

    /// A decimal in its 16-byte form, exactly as [`StateWriter::decimal`] writes it.
    ///
    /// # Errors
    /// Truncated, or bytes `rust_decimal` would not write (stray flag bits, scale over 28).
    pub fn decimal(&mut self, field: &'static str) -> Result<Decimal, StateCodecError> {
        let raw: [u8; 16] = self
            .take(field, 16)?
            .try_into()
            .map_err(|_| self.err(field, CodecProblem::Truncated))?;
        let d = Decimal::deserialize(raw);
        if d.serialize() == raw { Ok(d) } else { Err(self.err(field, CodecProblem::NotCanonical)) }
    }

    /// Money: an ISO 4217 code, then a positive amount, normalised and no more precise than
    /// the currency's minor unit (what [`Money::new`] makes).
    ///
    /// # Errors
    /// Truncated, an unknown currency, or an amount [`Money::new`] refuses or would change.
    pub fn money(&mut self, field: &'static str) -> Result<Money, StateCodecError> {
        let code = self.take(field, 3)?;
        let currency = std::str::from_utf8(code)
            .ok()
            .and_then(Currency::from_code)
            .filter(|c| c.code().as_bytes() == code)
            .ok_or_else(|| {
                self.err(field, CodecProblem::Invalid { expected: "an ISO 4217 currency code" })
            })?;
        let amount = self.decimal(field)?;
        let money = Money::new(amount, currency).map_err(|_| {
            self.err(field, CodecProblem::Invalid { expected: "a positive amount of the currency" })
        })?;
        if money.amount().serialize() == amount.serialize() {
            Ok(money)
        } else {
            Err(self.err(field, CodecProblem::NotCanonical))
        }
    }

    /// A value of a closed enum, by its index in `all`.
    ///
    /// # Errors
    /// Truncated, or an index past the table.
    pub fn choice<T: Copy>(
        &mut self,
        field: &'static str,
        all: &[T],
    ) -> Result<T, StateCodecError> {
        let tag = self.u8(field)?;
        all.get(usize::from(tag))
            .copied()
            .ok_or_else(|| self.err(field, CodecProblem::BadTag { tag }))
    }

    /// A machine's state, by its index in its `ALL` table.
    ///
    /// # Errors
    /// As [`Self::choice`].
    pub fn state<S: StateSpec>(&mut self) -> Result<S, StateCodecError> {
        self.choice("state", S::ALL)
    }

    /// An option: a presence byte 0 or 1, then the value `get` reads when present.
    ///
    /// # Errors
    /// Truncated, a presence byte other than 0 or 1, or what `get` returns.
    pub fn option<T>(
        &mut self,
        field: &'static str,
        get: impl FnOnce(&mut Self) -> Result<T, StateCodecError>,
    ) -> Result<Option<T>, StateCodecError> {
        if self.bool(field)? { get(self).map(Some) } else { Ok(None) }
    }

    /// An optional timestamp.
    ///
    /// # Errors
    /// As [`Self::option`] and [`Self::timestamp`].
    pub fn opt_timestamp(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Timestamp>, StateCodecError> {
        self.option(field, |r| r.timestamp(field))
    }

    /// An optional text of at most `max` bytes.
    ///
    /// # Errors
    /// As [`Self::option`] and [`Self::str`].
    pub fn opt_str(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<Option<String>, StateCodecError> {
        self.option(field, |r| r.str(field, max))
    }
}

/// `len` as a `usize` for an error message, saturating.
fn saturate(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Declares [`Machine`], one variant per governor kind, and its kind dispatch.
macro_rules! machines {
    ($($kind:ident => $ty:ty),+ $(,)?) => {
        /// A governor machine of a kind known at run time: what a ledger or a snapshot holds
        /// beside the kind and resource of each governor.
        #[derive(Clone, Debug, PartialEq)]
        #[non_exhaustive]
        pub enum Machine {
            $(
                #[doc = concat!("A machine of kind `", stringify!($kind), "`.")]
                $kind($ty),
            )+
        }

        impl Machine {
            /// The machine of `kind` before its first command.
            #[must_use]
            pub fn new(kind: GovernorKind) -> Self {
                match kind {
                    $(GovernorKind::$kind => Self::$kind(<$ty>::default()),)+
                }
            }

            /// Its kind.
            #[must_use]
            pub fn kind(&self) -> GovernorKind {
                match self {
                    $(Self::$kind(_) => GovernorKind::$kind,)+
                }
            }

            /// The stable name of its current state.
            #[must_use]
            pub fn state_name(&self) -> &'static str {
                match self {
                    $(Self::$kind(m) => m.state().name(),)+
                }
            }

            /// Encodes the machine with its header ([`Governor::encode_state`] of its type).
            ///
            /// # Errors
            /// As [`Governor::encode_state`].
            pub fn encode_state(&self) -> Result<Vec<u8>, StateCodecError> {
                match self {
                    $(Self::$kind(m) => m.encode_state(),)+
                }
            }

            /// Decodes a machine of `kind` ([`Governor::decode_state`] of its type).
            ///
            /// # Errors
            /// As [`Governor::decode_state`]; `kind` refused as
            /// [`CodecProblem::WrongKind`] when the bytes are another kind's state.
            pub fn decode_state(kind: GovernorKind, bytes: &[u8]) -> Result<Self, StateCodecError> {
                match kind {
                    $(GovernorKind::$kind => <$ty>::decode_state(bytes).map(Self::$kind),)+
                }
            }

            /// Applies one recorded transition to the machine: [`replay_step`] of its
            /// type, so that a ledger folds receipts of a kind it learns at run time.
            ///
            /// # Errors
            /// As [`replay_step`]: [`ReplayError::WrongGovernor`] when `governor` is not
            /// this machine's kind.
            pub fn replay_step(
                &mut self,
                governor: &str,
                command: &str,
                args: &Args,
                state_from: &str,
                state_to: &str,
                at: Timestamp,
            ) -> Result<(), ReplayError> {
                match self {
                    $(Self::$kind(m) => {
                        replay_step(m, governor, command, args, state_from, state_to, at)
                    })+
                }
            }

            /// Decides a command given by name and arguments (as a host or a script sends
            /// it) at `ctx` and, when accepted, applies it: the completed arguments (what the
            /// receipt records) and the transition's states; the rejection otherwise. What a
            /// model of the runtime decides through (`govern simulate`).
            ///
            /// # Errors
            /// The governor's rejection, or the arguments' (`invalid_argument`).
            pub fn accept_raw(
                &mut self,
                name: &str,
                args: &Args,
                ctx: &crate::Ctx,
            ) -> Result<RawTransition, crate::Rejection> {
                use crate::CommandSpec as _;
                match self {
                    $(Self::$kind(m) => {
                        let mut command = <<$ty as Governor>::Command>::parse(name, args)
                            .map_err(crate::Rejection::from)?;
                        let t = m.accept(&mut command, ctx)?;
                        m.evolve(&command, t.to, ctx.now);
                        Ok(RawTransition {
                            args: command.args(),
                            from: t.from.name(),
                            to: t.to.name(),
                        })
                    })+
                }
            }

            /// The sample commands of `kind` (every command, with typical arguments), as
            /// names and arguments.
            #[must_use]
            pub fn samples(kind: GovernorKind, ctx: &crate::Ctx) -> Vec<(&'static str, Args)> {
                use crate::CommandSpec as _;
                match kind {
                    $(GovernorKind::$kind => <<$ty as Governor>::Command>::samples(ctx)
                        .iter()
                        .map(|c| (c.name(), c.args()))
                        .collect(),)+
                }
            }

            /// Its state timeout: when it is due, and the command's name and arguments.
            #[must_use]
            pub fn state_timeout_raw(&self) -> Option<(Timestamp, &'static str, Args)> {
                use crate::CommandSpec as _;
                match self {
                    $(Self::$kind(m) => m
                        .state_timeout()
                        .map(|t| (t.at, t.command.name(), t.command.args())),)+
                }
            }
        }

        /// A command [`Machine::accept_raw`] accepted: its completed arguments and the
        /// names of the states it went from and to.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct RawTransition {
            /// The arguments the receipt records.
            pub args: Args,
            /// The state before.
            pub from: &'static str,
            /// The state after.
            pub to: &'static str,
        }

        $(
            impl From<$ty> for Machine {
                fn from(m: $ty) -> Self {
                    Self::$kind(m)
                }
            }
        )+
    };
}

machines! {
    Entitlement => entitlement::Entitlement,
    Billing => billing::Billing,
    Catalog => catalog::Product,
    Subscription => subscription::Subscription,
    Account => account::Account,
    Quota => quota::Quota,
    Compliance => compliance::Audit,
    Tenant => tenant::Tenant,
    Audit => audit::Trail,
    Saga => saga::Saga,
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
