//! Amounts serialise as strings (`"149.00"`: exact, never a JSON float), currencies as their
//! ISO 4217 code.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serializer, de::Error};

pub(crate) mod decimal {
    use super::{Decimal, Deserialize, Deserializer, Error, FromStr, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let s = String::deserialize(d)?;
        Decimal::from_str(&s).map_err(|e| D::Error::custom(format!("`{s}` is not an amount: {e}")))
    }
}

pub(crate) mod currency {
    use super::{Deserialize, Deserializer, Error, Serializer};
    use iso_currency::Currency;

    pub(crate) fn serialize<S: Serializer>(c: &Currency, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.code())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let s = String::deserialize(d)?;
        Currency::from_code(&s)
            .ok_or_else(|| D::Error::custom(format!("`{s}` is not an ISO 4217 currency code")))
    }
}
