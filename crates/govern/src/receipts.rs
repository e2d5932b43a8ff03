//! Receipts: what every accepted command leaves behind, and how to check them.
//!
//! A [`Receipt`] is one accepted transition at its place in a SHA-256 hash chain; its
//! [`Digest`] is computed over a canonical binary preimage (`docs/receipts.md` specifies the
//! bytes for independent verifiers). [`verify_chain`] and [`ChainVerifier`] check a chain and
//! name the first bad receipt; [`replay`] folds one resource's receipts back into its
//! governor. A receipt serialises with serde as its JSON view, the object `govern export`
//! prints, and parses back from it.
//!
//! ```
//! use govern::governors::subscription::{self, Subscription};
//! use govern::governors::tenant::ResourceQuota;
//! use govern::governors::{Governor as _, GovernorKind};
//! use govern::receipts::{Receipt, replay};
//! use govern::{ResourceId, Runtime, TenantId};
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder().start().await?;
//! let h = runtime.handle();
//! let acme = TenantId::new("acme")?;
//! let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
//! h.provision_tenant(&acme, quota, "contract signed").await?;
//! let sub = h.subscription(&acme, &ResourceId::new("sub-1")?);
//! sub.start_trial("pro", 14, "self-serve sign-up").await?;
//! sub.activate(None, "card added").await?;
//!
//! // One subscription's receipts, as JSON and back.
//! let receipts = h.receipts(&acme, Some(GovernorKind::Subscription), None)?;
//! let json = serde_json::to_string(&receipts)?;
//! assert!(json.starts_with(r#"[{"seq":2,"receipt_id":""#));
//! let parsed: Vec<Receipt> = serde_json::from_str(&json)?;
//! assert_eq!(parsed, receipts);
//!
//! // The ledger is the system of record: the receipts rebuild the governor.
//! let rebuilt: Subscription = replay(&parsed)?;
//! assert_eq!(rebuilt.state(), subscription::State::Active);
//! assert_eq!(h.verify()?, h.head()); // the whole chain, re-read and verified
//! runtime.shutdown().await?;
//! # Ok(())
//! # }
//! # fn main() {
//! #     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! #     tokio.block_on(example()).unwrap();
//! # }
//! ```

pub use govern_receipt::*;
