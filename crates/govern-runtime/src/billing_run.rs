//! The billing run (`docs/pricing.md`, "The billing run"): a calendar month that has ended
//! closes into an invoice, receipted in the tenant's audit trail (`record_invoice`), and the
//! billing governor takes it from there: a payment `invoice-YYYY-MM` is requested for the
//! total (none for a total of zero), to be settled by the host or a provider's webhook.
//!
//! What the invoice charges is decided purely from the tenant's receipts
//! ([`invoice_of`]): the plan its live subscription is on at the period's end, a plan change
//! during the period (the two bases prorated by day), and the month's metered usage (the
//! totals of the `record_usage` batches counted in that month), priced by the catalog
//! (`govern_pricing::invoice`). Closing twice writes nothing the second time: the recorded
//! invoice is the answer, and the payment is requested only if it was not.

use std::collections::BTreeMap;

use govern_governors::audit::{self, InvoiceLine};
use govern_governors::billing::{Billing, Command as BillingCommand, PaymentMethod};
use govern_governors::{
    DAY_MS, GovernorKind, Metadata, Money, Reason, Request, ResourceId, StateSpec, TenantId,
    Timestamp, days_from_civil,
};
use govern_plans::Catalog;
use govern_pricing::{Invoice, Period, PlanChange};
use govern_receipt::Receipt;

use crate::error::{Accepted, CommandError, Refusal};
use crate::runtime::RuntimeHandle;

/// The decline code of an invoice payment a billing-run saga cancelled as it compensated
/// (`cancel_invoice_payment`); a later close of the period retries that payment.
pub(crate) const PAYMENT_ABANDONED: &str = "billing_run_abandoned";

/// Subscription states in which a plan is served (and billed).
const LIVE: [&str; 3] = ["free_trial", "active", "cancellation_requested"];

/// A month to bill: `YYYY-MM`, with its bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingPeriod {
    /// `YYYY-MM`.
    pub label: String,
    /// Months since January 1970 (govern-usage's monthly period key).
    pub key: u64,
    /// Its first instant.
    pub start: Timestamp,
    /// The first instant after it.
    pub end: Timestamp,
    /// Its days.
    pub days: u32,
    /// The billing governor's resource of its invoice payment: `invoice-YYYY-MM`.
    pub payment_resource: ResourceId,
}

impl BillingPeriod {
    /// The calendar month `YYYY-MM` (UTC).
    ///
    /// # Errors
    /// Not `YYYY-MM`, or a year before 1970 or after 9999.
    pub fn month(text: &str) -> Result<Self, Refusal> {
        let bad = || Refusal::BadPeriod { period: text.to_owned() };
        if !audit::is_month(text) {
            return Err(bad());
        }
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        let (y, m): (u32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        let period = Period::month(y, m).map_err(|_| bad())?;
        let start = days_from_civil(y.into(), m.into(), 1).ok_or_else(bad)?;
        let payment_resource =
            ResourceId::new(&format!("invoice-{}", period.label)).map_err(|_| bad())?;
        Ok(Self {
            label: period.label,
            key: u64::from(y - 1970) * 12 + u64::from(m - 1),
            start: Timestamp(start * DAY_MS),
            end: Timestamp((start + u64::from(period.days)) * DAY_MS),
            days: period.days,
            payment_resource,
        })
    }
}

/// Why a tenant's receipts cannot be invoiced for a period.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotInvoiceable(pub String);

/// The invoice a tenant owes for `period`, from its receipts (any order; only those before
/// the period's end count) and the catalog. Pure.
///
/// # Errors
/// No subscription live at the period's end, a plan the catalog does not have, or what
/// `govern_pricing::invoice` refuses.
pub fn invoice_of(
    receipts: &[Receipt],
    catalog: &Catalog,
    period: &BillingPeriod,
) -> Result<Invoice, NotInvoiceable> {
    let mut sorted: Vec<&Receipt> = receipts
        .iter()
        .filter(|r| r.body.timestamp < period.end)
        .filter(|r| matches!(r.body.governor, GovernorKind::Subscription | GovernorKind::Quota))
        .collect();
    sorted.sort_by_key(|r| r.seq);
    // Each subscription: its plan and state as its receipts leave them, the first plan it was
    // live on in the period (at its start, or when it first became live in it), and the first
    // change from that plan inside the period.
    #[derive(Default)]
    struct Sub {
        plan: Option<String>,
        state: String,
        first: Option<String>,
        changed_at: Option<Timestamp>,
    }
    let live = |s: &Sub| s.plan.is_some() && LIVE.contains(&s.state.as_str());
    let mut subs: BTreeMap<&str, Sub> = BTreeMap::new();
    for r in sorted.iter().filter(|r| r.body.governor == GovernorKind::Subscription) {
        let s = subs.entry(r.body.resource.as_str()).or_default();
        let inside = r.body.timestamp >= period.start;
        if inside && s.first.is_none() && live(s) {
            s.first.clone_from(&s.plan);
        }
        if let Some(plan) = r.body.args.get("plan") {
            if inside
                && s.changed_at.is_none()
                && s.first.as_deref().is_some_and(|first| first != plan)
            {
                s.changed_at = Some(r.body.timestamp);
            }
            s.plan = Some(plan.clone());
        }
        s.state = r.body.state_to.to_string();
        if inside && s.first.is_none() && live(s) {
            s.first.clone_from(&s.plan);
        }
    }
    let Some(sub) = subs.values().find(|s| live(s)) else {
        return Err(NotInvoiceable(format!(
            "no subscription is live at the end of {}",
            period.label
        )));
    };
    let plan_id = sub.plan.as_deref().unwrap_or_default();
    let plan = catalog
        .plan(plan_id)
        .ok_or_else(|| NotInvoiceable(format!("plan `{plan_id}` is not in the catalog")))?;
    let from = match (&sub.first, sub.changed_at) {
        (Some(before), Some(at)) => {
            let day = (at.as_ms() - period.start.as_ms()) / DAY_MS;
            let day = u32::try_from(day).unwrap_or(u32::MAX);
            let from = catalog
                .plan(before)
                .ok_or_else(|| NotInvoiceable(format!("plan `{before}` is not in the catalog")))?;
            (day > 0 && day < period.days).then_some(PlanChange { from, day })
        }
        _ => None,
    };
    let usage = month_usage(&sorted, plan, period);
    let p = Period { label: period.label.clone(), days: period.days };
    govern_pricing::invoice(plan, &p, &usage, from.as_ref())
        .map_err(|e| NotInvoiceable(e.to_string()))
}

/// Each priced meter's quantity for the month, by its aggregation, from the meter's
/// `record_usage` batches (the quota governor's receipts, in sequence order):
///
/// - which batches are the month's: for a meter counted per calendar month (its limit resets
///   monthly, or the plan prices it without limiting it) those of the month's period; for any
///   other meter those written during the month;
/// - `sum`: their totals; `count` and `unique_count`: their events (each event id is counted
///   once by the deduplication, so the two agree); `max`: the meter's peak, the largest value
///   it reached after a batch of the month, or the value it held when the month began if it
///   never resets.
fn month_usage(
    sorted: &[&Receipt],
    plan: &govern_plans::Plan,
    period: &BillingPeriod,
) -> BTreeMap<String, u64> {
    use govern_plans::{Aggregation, Reset};
    let mut usage: BTreeMap<String, u64> = BTreeMap::new();
    for (meter, pricing) in &plan.pricing {
        let reset = plan.limits.get(meter).map_or(Reset::Monthly, |l| l.reset);
        let batches = sorted.iter().filter(|r| {
            r.body.command == "record_usage"
                && r.body.args.get("meter").map(String::as_str) == Some(meter.as_str())
        });
        let arg =
            |r: &Receipt, name: &str| r.body.args.get(name).and_then(|v| v.parse::<u64>().ok());
        let in_month = |r: &Receipt| match reset {
            Reset::Monthly => arg(r, "period") == Some(period.key),
            _ => r.body.timestamp >= period.start,
        };
        let mut quantity = 0u64;
        for r in batches {
            if !in_month(r) {
                if pricing.aggregation == Aggregation::Max && reset == Reset::None {
                    // The value the meter held as the month began.
                    quantity = arg(r, "usage").unwrap_or(0);
                }
                continue;
            }
            let add = match pricing.aggregation {
                Aggregation::Sum => arg(r, "total").unwrap_or(0),
                Aggregation::Count | Aggregation::UniqueCount => {
                    r.body.args.get("events").map_or(0, |e| e.split('\n').count() as u64)
                }
                Aggregation::Max => {
                    quantity = quantity.max(arg(r, "usage").unwrap_or(0));
                    0
                }
            };
            quantity = quantity.saturating_add(add);
        }
        usage.insert(meter.to_string(), quantity);
    }
    usage
}

/// The invoice's lines as the receipt keeps them.
#[must_use]
pub fn recorded_lines(invoice: &Invoice) -> Vec<InvoiceLine> {
    invoice
        .lines
        .iter()
        .map(|l| InvoiceLine {
            kind: match l.kind {
                govern_pricing::LineKind::Base => "base",
                govern_pricing::LineKind::Proration => "proration",
                govern_pricing::LineKind::Overage => "overage",
            }
            .to_owned(),
            meter: l.meter.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            amount: l.amount,
        })
        .collect()
}

/// A closed period: the recorded invoice and what the billing governor was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedInvoice {
    /// The tenant.
    pub tenant: TenantId,
    /// `YYYY-MM`.
    pub period: String,
    /// The plan at the period's end.
    pub plan: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The lines, as receipted.
    pub lines: Vec<InvoiceLine>,
    /// What is owed.
    pub total: rust_decimal::Decimal,
    /// The `record_invoice` receipt's sequence number.
    pub record_seq: u64,
    /// The invoice payment's resource (`invoice-YYYY-MM`), when the total is not zero.
    pub payment: Option<ResourceId>,
    /// Whether this call closed it (`false`: it was closed before; nothing was written
    /// unless the payment request was missing).
    pub closed_now: bool,
    /// Whether the billing-run saga finalized it (`finalize_invoice`: recorded, its payment
    /// requested, the tenant notified).
    pub finalized: bool,
}

impl ClosedInvoice {
    fn from_receipt(tenant: &TenantId, r: &Receipt, period: &BillingPeriod) -> Option<Self> {
        let a = &r.body.args;
        let audit::Command::RecordInvoice { plan, currency, lines, total, .. } =
            <audit::Command as govern_governors::CommandSpec>::parse("record_invoice", a).ok()?
        else {
            return None;
        };
        Some(Self {
            tenant: tenant.clone(),
            period: period.label.clone(),
            plan,
            currency,
            lines,
            total,
            record_seq: r.seq,
            payment: (!total.is_zero()).then(|| period.payment_resource.clone()),
            closed_now: false,
            finalized: false,
        })
    }
}

/// A tenant's month as [`RuntimeHandle::invoice`] answers it: the receipted invoice of a
/// closed month, or a preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvoiceView {
    /// Closed by the billing run: what was receipted.
    Closed(ClosedInvoice),
    /// Not closed: computed now as the billing run would, nothing written.
    Preview(Invoice),
}

/// One line of an [`InvoiceDoc`]: amounts as exact decimal strings, never floats.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineDoc {
    /// `base`, `proration` or `overage`.
    pub kind: String,
    /// The meter of an overage line.
    pub meter: Option<String>,
    /// Units, 1, or days.
    pub quantity: u64,
    /// The unit price, exact.
    pub unit_price: String,
    /// The amount, rounded to the currency's minor unit.
    pub amount: String,
    /// For people.
    pub description: String,
}

/// An invoice as a host shows it: the body of `GET …/invoices/{period}` and of `govern
/// invoices --format json`, one shape for both.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceDoc {
    /// The tenant.
    pub tenant: String,
    /// `YYYY-MM`.
    pub period: String,
    /// `closed` (receipted by the billing run), `final` (and finalized by the billing-run
    /// saga: `finalize_invoice`) or `preview` (computed now, nothing written).
    pub status: &'static str,
    /// The `record_invoice` receipt of a closed month.
    pub receipt: Option<u64>,
    /// The billing governor's resource of a closed month's payment (a total above zero).
    pub payment: Option<String>,
    /// The plan at the month's end.
    pub plan: String,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The lines.
    pub lines: Vec<LineDoc>,
    /// What is owed.
    pub total: String,
}

fn line_doc(l: &InvoiceLine, description: String) -> LineDoc {
    LineDoc {
        kind: l.kind.clone(),
        meter: l.meter.clone(),
        quantity: l.quantity,
        unit_price: l.unit_price.to_string(),
        amount: l.amount.to_string(),
        description,
    }
}

/// A recorded line, for people (a recorded invoice keeps the numbers, not the pricing's words).
fn describe(l: &InvoiceLine, currency: &str) -> String {
    match (l.kind.as_str(), &l.meter) {
        ("overage", Some(meter)) => {
            format!("{meter}: {} units at {} {currency}", l.quantity, l.unit_price)
        }
        ("proration", _) => {
            format!("base price {} {currency} for {} days", l.unit_price, l.quantity)
        }
        _ => format!("base price {} {currency}", l.unit_price),
    }
}

impl ClosedInvoice {
    /// As a host shows it.
    #[must_use]
    pub fn doc(&self) -> InvoiceDoc {
        InvoiceDoc {
            tenant: self.tenant.to_string(),
            period: self.period.clone(),
            status: if self.finalized { "final" } else { "closed" },
            receipt: Some(self.record_seq),
            payment: self.payment.as_ref().map(ToString::to_string),
            plan: self.plan.clone(),
            currency: self.currency.clone(),
            lines: self.lines.iter().map(|l| line_doc(l, describe(l, &self.currency))).collect(),
            total: self.total.to_string(),
        }
    }
}

impl InvoiceView {
    /// As a host shows it.
    #[must_use]
    pub fn doc(&self, tenant: &TenantId) -> InvoiceDoc {
        match self {
            Self::Closed(c) => c.doc(),
            Self::Preview(i) => InvoiceDoc {
                tenant: tenant.to_string(),
                period: i.period.clone(),
                status: "preview",
                receipt: None,
                payment: None,
                plan: i.plan.clone(),
                currency: i.currency.code().to_owned(),
                lines: i
                    .lines
                    .iter()
                    .zip(recorded_lines(i))
                    .map(|(l, r)| line_doc(&r, l.description.clone()))
                    .collect(),
                total: i.total.to_string(),
            },
        }
    }
}

impl RuntimeHandle {
    /// `tenant`'s invoice for `period` (`YYYY-MM`): the receipted one if the billing run
    /// closed the month, else a preview computed as it would be (an open month's preview is
    /// what the month holds so far). Writes nothing.
    ///
    /// # Errors
    /// As [`Self::close_period`], but never `period_open`.
    pub fn invoice(&self, tenant: &TenantId, period: &str) -> Result<InvoiceView, Refusal> {
        if !self.shared.catalog {
            return Err(Refusal::NoCatalog);
        }
        let period = BillingPeriod::month(period)?;
        if self.shared.registry.state(tenant).is_none() {
            return Err(Refusal::UnknownTenant(tenant.clone()));
        }
        let receipts = self
            .receipts(tenant, None, None)
            .map_err(|e| Refusal::LedgerUnavailable(e.to_string()))?;
        let not = |e: NotInvoiceable| Refusal::NotInvoiceable { reason: e.0 };
        if let Some(closed) = recorded_invoice(&receipts, tenant, &period).map_err(not)? {
            return Ok(InvoiceView::Closed(closed));
        }
        let catalog = self.shared.commercial.catalog().ok_or(Refusal::NoCatalog)?;
        invoice_of(&receipts, &catalog, &period)
            .map(InvoiceView::Preview)
            .map_err(|e| Refusal::NotInvoiceable { reason: e.0 })
    }

    /// Closes `tenant`'s month `period` (`YYYY-MM`, ended by the runtime's clock) into an
    /// invoice: computed from its receipts and the catalog ([`invoice_of`]), receipted in its
    /// audit trail (`record_invoice`), then a payment `invoice-YYYY-MM` of the total requested
    /// from the billing governor (by `method`; none for a zero total). Answered once both
    /// receipts are durable. Closing a closed period answers the recorded invoice and writes
    /// nothing (or only the payment request, if a crash came between the two).
    ///
    /// # Errors
    /// [`Refusal::NoCatalog`], [`Refusal::UnknownTenant`], [`Refusal::BadPeriod`],
    /// [`Refusal::PeriodOpen`] (the month has not ended), [`Refusal::NotInvoiceable`] (no
    /// live subscription at its end, a plan not in the catalog), a ledger read error as
    /// [`Refusal::LedgerUnavailable`]; the payment request's refusal or rejection.
    pub async fn close_period(
        &self,
        tenant: &TenantId,
        period: &str,
        method: PaymentMethod,
    ) -> Result<ClosedInvoice, CommandError> {
        let period = self.closable(tenant, period)?;
        let lock = self.shared.billing_runs.lock(tenant);
        let _held = lock.lock().await;
        let receipts = self.tenant_receipts_now(tenant)?;
        let mut closed = self.invoice_recorded(tenant, &period, &receipts).await?;
        if self.invoice_payment_requested(tenant, &period, &closed, &receipts, method).await? {
            closed.closed_now = true;
        }
        Ok(closed)
    }

    /// `period` parsed, for a tenant the runtime knows, ended by the runtime's clock, with a
    /// catalog to price it.
    fn closable(&self, tenant: &TenantId, period: &str) -> Result<BillingPeriod, Refusal> {
        let shared = &self.shared;
        if !shared.catalog {
            return Err(Refusal::NoCatalog);
        }
        let period = BillingPeriod::month(period)?;
        if shared.registry.state(tenant).is_none() {
            return Err(Refusal::UnknownTenant(tenant.clone()));
        }
        if shared.clock.now() < period.end {
            return Err(Refusal::PeriodOpen { period: period.label });
        }
        Ok(period)
    }

    /// Every receipt of `tenant`, a read error as [`Refusal::LedgerUnavailable`].
    fn tenant_receipts_now(&self, tenant: &TenantId) -> Result<Vec<Receipt>, Refusal> {
        self.receipts(tenant, None, None).map_err(|e| Refusal::LedgerUnavailable(e.to_string()))
    }

    /// The invoice recorded for `period`, recording it first if it is not (the first half
    /// of [`Self::close_period`]; the caller holds the tenant's billing-run lock and read
    /// `receipts` under it).
    async fn invoice_recorded(
        &self,
        tenant: &TenantId,
        period: &BillingPeriod,
        receipts: &[Receipt],
    ) -> Result<ClosedInvoice, CommandError> {
        let not = |e: NotInvoiceable| Refusal::NotInvoiceable { reason: e.0 };
        if let Some(closed) = recorded_invoice(receipts, tenant, period).map_err(not)? {
            return Ok(closed);
        }
        let catalog = self.shared.commercial.catalog().ok_or(Refusal::NoCatalog)?;
        let invoice = invoice_of(receipts, &catalog, period)
            .map_err(|e| Refusal::NotInvoiceable { reason: e.0 })?;
        let lines = recorded_lines(&invoice);
        let command = audit::Command::RecordInvoice {
            period: period.label.clone(),
            plan: audit::check_text(&invoice.plan),
            currency: invoice.currency.code().to_owned(),
            lines: lines.clone(),
            total: invoice.total,
        };
        let request = crate::governor::runtime_request(command, "billing period closed");
        let record = self.record_waiting(tenant, request).await?;
        Ok(ClosedInvoice {
            tenant: tenant.clone(),
            period: period.label.clone(),
            plan: invoice.plan.clone(),
            currency: invoice.currency.code().to_owned(),
            lines,
            total: invoice.total,
            record_seq: record.seq,
            payment: (!invoice.total.is_zero()).then(|| period.payment_resource.clone()),
            closed_now: true,
            finalized: false,
        })
    }

    /// Requests the invoice's payment unless its total is zero or its payment resource has a
    /// receipt already (the second half of [`Self::close_period`]); whether it requested it.
    async fn invoice_payment_requested(
        &self,
        tenant: &TenantId,
        period: &BillingPeriod,
        closed: &ClosedInvoice,
        receipts: &[Receipt],
        method: PaymentMethod,
    ) -> Result<bool, CommandError> {
        if closed.payment.is_none() {
            return Ok(false);
        }
        let last = receipts.iter().rev().find(|r| {
            r.body.governor == GovernorKind::Billing && r.body.resource == period.payment_resource
        });
        match last {
            None => {
                self.request_invoice_payment(tenant, period, closed, method).await?;
                Ok(true)
            }
            // A billing-run saga that compensated cancelled it: asked again, it is retried.
            Some(r)
                if r.body.command == "fail_payment"
                    && r.body.args.get("code").map(String::as_str) == Some(PAYMENT_ABANDONED) =>
            {
                let reason =
                    Reason::new(format!("invoice {} ({}) again", period.label, closed.record_seq))
                        .map_err(|e| Refusal::NotInvoiceable { reason: e.to_string() })?;
                let mut metadata = Metadata::new();
                metadata
                    .insert(
                        crate::IDEMPOTENCY_KEY,
                        format!("billing-run:{}:retry:{}", period.label, r.seq),
                    )
                    .map_err(|e| Refusal::NotInvoiceable { reason: e.expected().to_owned() })?;
                let request = Request {
                    command: BillingCommand::RetryPayment { money: None },
                    reason,
                    metadata,
                };
                self.governor::<Billing>(tenant, &period.payment_resource)
                    .send_request(request)
                    .await?;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    /// The billing run's saga steps (`saga::Operation`): records `period`'s invoice
    /// (`close_invoice`); or requests its payment, which needs the invoice recorded
    /// (`request_invoice_payment`). Each writes nothing when done already.
    pub(crate) async fn billing_run_step(
        &self,
        tenant: &TenantId,
        period: &str,
        payment: Option<PaymentMethod>,
    ) -> Result<ClosedInvoice, CommandError> {
        let period = self.closable(tenant, period)?;
        let lock = self.shared.billing_runs.lock(tenant);
        let _held = lock.lock().await;
        let receipts = self.tenant_receipts_now(tenant)?;
        let Some(method) = payment else {
            return self.invoice_recorded(tenant, &period, &receipts).await;
        };
        let not = |e: NotInvoiceable| Refusal::NotInvoiceable { reason: e.0 };
        let closed =
            recorded_invoice(&receipts, tenant, &period).map_err(not)?.ok_or_else(|| {
                Refusal::NotInvoiceable {
                    reason: format!("no invoice is recorded for {}", period.label),
                }
            })?;
        self.invoice_payment_requested(tenant, &period, &closed, &receipts, method).await?;
        Ok(closed)
    }

    async fn request_invoice_payment(
        &self,
        tenant: &TenantId,
        period: &BillingPeriod,
        closed: &ClosedInvoice,
        method: PaymentMethod,
    ) -> Result<Accepted, CommandError> {
        let currency =
            govern_governors::Currency::from_code(&closed.currency).ok_or_else(|| {
                Refusal::NotInvoiceable { reason: format!("unknown currency {}", closed.currency) }
            })?;
        let money = Money::new(closed.total, currency)
            .map_err(|e| Refusal::NotInvoiceable { reason: e.to_string() })?;
        let reason = Reason::new(format!("invoice {} ({})", period.label, closed.record_seq))
            .map_err(|e| Refusal::NotInvoiceable { reason: e.to_string() })?;
        let mut metadata = Metadata::new();
        metadata
            .insert(crate::IDEMPOTENCY_KEY, format!("billing-run:{}:payment", period.label))
            .map_err(|e| Refusal::NotInvoiceable { reason: e.expected().to_owned() })?;
        let request =
            Request { command: BillingCommand::RequestPayment { money, method }, reason, metadata };
        let accepted = self
            .governor::<Billing>(tenant, &period.payment_resource)
            .send_request(request)
            .await?;
        debug_assert_eq!(accepted.to, govern_governors::billing::State::PaymentPending.name());
        Ok(accepted)
    }

    /// Closes `period` for every tenant with a subscription (the billing run), at most
    /// `concurrency` tenants at a time; each tenant's outcome, by tenant. Tenants with
    /// nothing to invoice answer [`Refusal::NotInvoiceable`].
    pub async fn close_period_all(
        &self,
        period: &str,
        method: PaymentMethod,
        concurrency: usize,
    ) -> Vec<(TenantId, Result<ClosedInvoice, CommandError>)> {
        use futures::StreamExt as _;
        let tenants: Vec<TenantId> = self.tenants().into_iter().map(|(t, _)| t).collect();
        let mut out: Vec<_> = futures::stream::iter(tenants)
            .map(|t| async move {
                let r = self.close_period(&t, period, method).await;
                (t, r)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The invoice the billing run recorded for `tenant`'s `period`, if it did, from the tenant's
/// receipts.
///
/// # Errors
/// A `record_invoice` receipt of the period that does not read back as one: the month is not
/// priced again (that could bill twice), the receipt is named instead.
pub fn recorded_invoice(
    receipts: &[Receipt],
    tenant: &TenantId,
    period: &BillingPeriod,
) -> Result<Option<ClosedInvoice>, NotInvoiceable> {
    let Some(r) = period_record(receipts, "record_invoice", &period.label) else {
        return Ok(None);
    };
    let finalized = period_record(receipts, "finalize_invoice", &period.label).is_some();
    let closed =
        ClosedInvoice::from_receipt(tenant, r, period).map(|c| ClosedInvoice { finalized, ..c });
    closed.map(Some).ok_or_else(|| {
        NotInvoiceable(format!("receipt {} records {} but does not read back", r.seq, period.label))
    })
}

/// The last audit-trail receipt among `receipts` of `command` (`record_invoice`,
/// `finalize_invoice`) for the period `label`.
pub(crate) fn period_record<'a>(
    receipts: &'a [Receipt],
    command: &str,
    label: &str,
) -> Option<&'a Receipt> {
    receipts.iter().rev().find(|r| {
        r.body.governor == GovernorKind::Audit
            && r.body.command == command
            && r.body.args.get("period").map(String::as_str) == Some(label)
    })
}
