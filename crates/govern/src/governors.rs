//! The eight governors, each a module with its `Command`s and `State`s: [`account`],
//! [`billing`], [`catalog`], [`compliance`], [`entitlement`], [`quota`], [`subscription`],
//! [`tenant`]; and what they share: ids ([`TenantId`], [`ResourceId`]), [`GovernorKind`],
//! [`Timestamp`], [`Money`] and [`Currency`], a command's [`Reason`] and [`Metadata`]
//! ([`Request`]), and [`Rejection`], a governor's "no". The governors are pure: they decide
//! at a time given to them and do no I/O; the runtime hosts them.
//!
//! ```
//! use govern::governors::{Currency, Money, Rejection, ResourceId, TenantId, billing};
//!
//! let money = Money::new("49.90".parse()?, Currency::from_code("EUR").ok_or("EUR")?)?;
//! let pay = billing::Command::RequestPayment { money, method: billing::PaymentMethod::Card };
//! assert!(TenantId::new("acme").is_ok());
//! assert!(ResourceId::new("not an id").is_err()); // ids are checked when made
//! assert!(Money::new("0.001".parse()?, Currency::from_code("EUR").ok_or("EUR")?).is_err());
//! # let _ = (pay, None::<Rejection>);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use govern_governors::*;
