//! Money: a decimal amount with an ISO 4217 currency. Never a float.

use std::fmt;

use rust_decimal::Decimal;

use crate::args::ArgProblem;

/// An ISO 4217 currency (from the `iso_currency` table), with its minor unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// The currency with this three-letter code, if ISO 4217 knows it.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        iso_currency::Currency::from_code(code).map(Self)
    }

    /// The three-letter code.
    #[must_use]
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Decimals of the minor unit (2 for USD, 0 for JPY, 3 for BHD); 0 when ISO gives none.
    #[must_use]
    pub fn decimals(self) -> u32 {
        self.0.exponent().map_or(0, u32::from)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why an amount is not valid money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Zero or negative.
    #[error("amount must be greater than zero")]
    NotPositive,
    /// More decimals than the currency's minor unit.
    #[error("amount has more than {decimals_max} decimals")]
    TooPrecise {
        /// The currency's decimals.
        decimals_max: u32,
    },
}

impl MoneyError {
    pub(crate) fn problem(self) -> ArgProblem {
        match self {
            Self::NotPositive => ArgProblem::NotPositive,
            Self::TooPrecise { decimals_max } => ArgProblem::TooPrecise { decimals_max },
        }
    }
}

/// A positive amount of one currency, exact to the currency's minor unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Validates and normalises an amount (trailing zeros are dropped, so `19.90` and `19.9`
    /// are the same money and print the same in receipts).
    ///
    /// # Errors
    /// [`MoneyError`] when the amount is not positive or too precise for the currency.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount <= Decimal::ZERO {
            return Err(MoneyError::NotPositive);
        }
        let amount = amount.normalize();
        let decimals_max = currency.decimals();
        if amount.scale() > decimals_max {
            return Err(MoneyError::TooPrecise { decimals_max });
        }
        Ok(Self { amount, currency })
    }

    /// The amount.
    #[must_use]
    pub fn amount(self) -> Decimal {
        self.amount
    }

    /// The currency.
    #[must_use]
    pub fn currency(self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}
