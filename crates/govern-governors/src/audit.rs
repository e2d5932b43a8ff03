//! Audit governor: one tenant's trail of what the runtime itself decided about the tenant,
//! beside its governors' own transitions.
//!
//! A governor's receipts record what was asked of it and accepted. Some decisions are the
//! runtime's, not a governor's: it quarantined one of the tenant's governors after repeated
//! crashes (and refused its commands meanwhile). Those are receipted here, one receipt per
//! decision, so that the tenant's audit trail shows them in order with everything else and an
//! export carries them. The audit governor has one state, `recording`, and every command is a
//! self-transition that is always accepted: the runtime has already decided; the receipt is
//! the record of it. Its resource id is the tenant's own id, as the tenant governor's is.
//!
//! Checks (`RuntimeHandle::check`) are the runtime's decisions too: a refusal is receipted
//! here (`record_refusals`: the first of a kind in a window at once, its repeats in that window
//! counted into one more receipt when the window closes), and allowed checks are counted per
//! feature and receipted once per window (`record_checks`), so the trail shows use without a
//! write per request.
//!
//! Not to be confused with the compliance governor (`compliance`), whose resource is one
//! compliance audit with a lifecycle of its own.

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, Transition};
use crate::kind::GovernorKind;
use crate::rejection::Rejection;
use crate::time::{Ctx, Timestamp};

crate::define_states! {
    /// The audit trail has one state: it records.
    pub enum State {
        /// Recording the runtime's decisions about the tenant.
        Recording => "recording",
    }
    terminal: []
}

/// What a quarantine's level must be, for the message.
const LEVEL_EXPECTED: &str = "a quarantine level of 1 or more";
/// What a quarantine's length must be, for the message.
const LENGTH_EXPECTED: &str = "a quarantine length of 1 ms or more";

/// The longest feature, action or decided-by text recorded, in bytes (longer is cut at a
/// character boundary).
pub const CHECK_TEXT_LEN_MAX: usize = 128;
/// The most features one `record_checks` lists.
pub const CHECK_FEATURES_MAX: usize = 256;

/// What a `counts` argument must be, for the message.
const COUNTS_EXPECTED: &str =
    "one `COUNT FEATURE` line per feature, counts of 1 or more, at most 256 lines";

/// The most lines one `record_invoice` holds.
pub const INVOICE_LINES_MAX: usize = 256;

/// What an invoice's `lines` argument must be, for the message.
const LINES_EXPECTED: &str = "one `KIND METER QUANTITY UNIT_PRICE AMOUNT` line per invoice line \
     (kind base, proration or overage; meter `-` for none; decimals), at most 256 lines";

crate::define_arg_enum! {
    /// What became of one payment-provider webhook delivery.
    pub enum WebhookOutcome {
        /// Verified and new: its command (if its type maps to one) was accepted.
        Accepted => "accepted",
        /// Verified, and an event id already delivered: answered the first outcome, nothing
        /// run again.
        Duplicate => "duplicate",
        /// Verified, but not taken: its command was refused or rejected, or the event is
        /// malformed for its type (the detail says why).
        Rejected => "rejected",
    }
}

crate::define_arg_enum! {
    /// A violation of a tenant's SLA opening or closing.
    pub enum SlaEvent {
        /// A dimension went over the plan's promise (sustained: the runtime's hysteresis).
        Violated => "violated",
        /// It came back within.
        Recovered => "recovered",
    }
}

crate::define_arg_enum! {
    /// What the SLA monitor measures against a plan's envelope.
    pub enum SlaDimension {
        /// Requests per second, above the envelope's `throughput_rps`.
        Throughput => "throughput",
        /// The 99th percentile latency, above `p99_latency_ms`.
        P99Latency => "p99_latency",
        /// The share of failed requests, above `error_rate_max`.
        ErrorRate => "error_rate",
    }
}

/// What a `measured` or `promised` figure must be, for the message.
const FIGURE_EXPECTED: &str = "a decimal of 0 or more as written back (`12.5`, not `12.50`)";

/// `text` as a canonical decimal of 0 or more: written back the same.
fn figure(text: &str) -> Option<rust_decimal::Decimal> {
    let d: rust_decimal::Decimal = text.parse().ok()?;
    (!d.is_sign_negative() && d.normalize().to_string() == text).then_some(d)
}

crate::define_arg_enum! {
    /// What became of one outbound notification delivery attempt (`docs/notifications.md`).
    pub enum NotificationOutcome {
        /// The endpoint answered 2xx: the event is delivered and never sent there again.
        Delivered => "delivered",
        /// The attempt failed (a non-2xx status, a timeout, a connection error); another
        /// attempt follows after a backoff.
        Failed => "failed",
        /// The attempt failed and was the last one allowed: the event is not sent there again.
        GivenUp => "given_up",
        /// The endpoint's queue was full: the event was never attempted there (attempt 0).
        Dropped => "dropped",
    }
}

impl NotificationOutcome {
    /// Whether nothing more is sent of the event to the endpoint after this record.
    #[must_use]
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Failed)
    }
}

/// One line of a recorded invoice (`govern_pricing::LineItem`, as the receipt keeps it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceLine {
    /// `base`, `proration` or `overage`.
    pub kind: String,
    /// The meter of an overage line.
    pub meter: Option<String>,
    /// Units, 1, or days.
    pub quantity: u64,
    /// The unit price, exact.
    pub unit_price: rust_decimal::Decimal,
    /// The line's amount, rounded to the currency's minor unit.
    pub amount: rust_decimal::Decimal,
}

impl InvoiceLine {
    fn write(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.kind,
            self.meter.as_deref().unwrap_or("-"),
            self.quantity,
            self.unit_price,
            self.amount
        )
    }

    fn read(line: &str) -> Option<Self> {
        let mut f = line.split(' ');
        let kind = f.next()?;
        if !matches!(kind, "base" | "proration" | "overage") {
            return None;
        }
        let meter = f.next()?;
        if meter.is_empty() || check_text(meter) != meter {
            return None;
        }
        let quantity = f.next()?.parse().ok()?;
        let unit_price: rust_decimal::Decimal = f.next()?.parse().ok()?;
        let amount: rust_decimal::Decimal = f.next()?.parse().ok()?;
        if f.next().is_some() || unit_price.is_sign_negative() || amount.is_sign_negative() {
            return None;
        }
        let parsed = Self {
            kind: kind.to_owned(),
            meter: (meter != "-").then(|| meter.to_owned()),
            quantity,
            unit_price,
            amount,
        };
        // One encoding per line: `1.50` and `1.5` are not both accepted.
        (parsed.write() == line).then_some(parsed)
    }
}

/// Parses a `lines` argument.
fn parse_lines(text: &str) -> Option<Vec<InvoiceLine>> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        out.push(InvoiceLine::read(line)?);
        if out.len() > INVOICE_LINES_MAX {
            return None;
        }
    }
    Some(out)
}

/// `text` cut to at most [`CHECK_TEXT_LEN_MAX`] bytes, at a character boundary, with control
/// characters replaced by spaces: what a check record may hold of free text.
#[must_use]
pub fn check_text(text: &str) -> String {
    let mut end = text.len().min(CHECK_TEXT_LEN_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// What the runtime records about a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// One of the tenant's governors crashed again and again and is quarantined: its
    /// commands are refused `governor_unavailable` until `until`.
    RecordQuarantine {
        /// The quarantined governor's kind.
        governor: GovernorKind,
        /// Its resource id.
        resource: String,
        /// Which quarantine of this governor this is (1 for the first; each lasts twice as
        /// long as the one before, up to the runtime's maximum).
        level: u64,
        /// How long it lasts, in milliseconds.
        length_ms: u64,
    },
    /// Checks of the tenant were refused: `count` identical refusals (same feature, action
    /// and code) in the window that began at `window_start_ms`.
    RecordRefusals {
        /// The feature asked for.
        feature: String,
        /// The action asked for.
        action: String,
        /// The refusal's stable code (`plan_upgrade_required`, `quota_exceeded`, ...).
        code: String,
        /// Its HTTP status.
        status: u64,
        /// What decided it (a grant, a rule, a limit, the default).
        decided_by: String,
        /// How many.
        count: u64,
        /// The start of the window they fell in, in ms since the epoch.
        window_start_ms: u64,
    },
    /// The runtime's plan catalog was replaced while the tenant had a live subscription: its
    /// checks decide with catalog `version` from here on.
    RecordCatalog {
        /// The new catalog's version.
        version: String,
        /// How many plans it has.
        plans: u64,
    },
    /// A payment provider's webhook delivery about the tenant, verified by its signature, and
    /// what became of it.
    RecordWebhook {
        /// The provider's event id (`evt_…`).
        event_id: String,
        /// The event's type (`payment_intent.succeeded`, ...).
        event_type: String,
        /// Accepted, duplicate or rejected.
        outcome: WebhookOutcome,
        /// The command it became (`billing pay-1 settle_payment`), `none` for a type that
        /// maps to nothing, or why it was rejected.
        detail: String,
    },
    /// A billing period closed into an invoice: its plan, lines and total (the billing
    /// governor's `invoice-<period>` payment asks for the total).
    RecordInvoice {
        /// The period, `YYYY-MM`.
        period: String,
        /// The plan at the period's end.
        plan: String,
        /// ISO 4217 code of every amount.
        currency: String,
        /// The lines.
        lines: Vec<InvoiceLine>,
        /// What is owed.
        total: rust_decimal::Decimal,
    },
    /// The billing run finished the period's invoice: recorded, its payment requested, the
    /// tenant notified (the billing-run saga's last step); the invoice is final.
    FinalizeInvoice {
        /// The period, `YYYY-MM`.
        period: String,
    },
    /// The tenant's SLA monitor saw a dimension go over its plan's promise
    /// (`record_sla_violation`), or come back within (`record_sla_recovery`), over the window
    /// that began at `window_start_ms` and lasted `window_ms`.
    RecordSla {
        /// Violated or recovered: which of the two commands this is.
        event: SlaEvent,
        /// Which dimension.
        dimension: SlaDimension,
        /// The figure over the window (requests per second, ms, or a fraction); `None` when
        /// the window had no request to measure (a recovery by quiet).
        measured: Option<rust_decimal::Decimal>,
        /// The plan's promise of that dimension.
        promised: rust_decimal::Decimal,
        /// The window's start, in ms since the epoch.
        window_start_ms: u64,
        /// Its length in ms.
        window_ms: u64,
    },
    /// One attempt to deliver an outbound notification (`docs/notifications.md`) to one of
    /// the tenant's endpoints, and its outcome. Never the body, never a secret.
    RecordNotification {
        /// The event's id (`evt_<seq>`: the sequence number of the receipt it is about).
        event_id: String,
        /// The event's type (`quota.warning`, ...).
        event_type: String,
        /// The endpoint's id, as the host configured it.
        endpoint: String,
        /// Which attempt (1 for the first; 0 for an event dropped before any attempt).
        attempt: u64,
        /// Delivered, failed, given up or dropped.
        outcome: NotificationOutcome,
        /// What the endpoint answered (`status 200`) or why the attempt failed.
        detail: String,
    },
    /// Allowed checks of the tenant, counted per feature over the window that began at
    /// `window_start_ms` and lasted `window_ms`.
    RecordChecks {
        /// The window's start, in ms since the epoch.
        window_start_ms: u64,
        /// Its length in ms.
        window_ms: u64,
        /// (count, feature), by feature.
        allowed: Vec<(u64, String)>,
    },
}

/// Whether `text` is `YYYY-MM` (a month from 1970 to 9999).
#[must_use]
pub fn is_month(text: &str) -> bool {
    let Some((y, m)) = text.split_once('-') else { return false };
    y.len() == 4
        && m.len() == 2
        && y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
        && y.parse::<u32>().is_ok_and(|y| (1970..=9999).contains(&y))
        && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
}

/// Parses a `counts` argument: `COUNT FEATURE` lines.
fn parse_counts(text: &str) -> Option<Vec<(u64, String)>> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let (n, feature) = line.split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        if n == 0 || feature.is_empty() || check_text(feature) != feature {
            return None;
        }
        out.push((n, feature.to_owned()));
        if out.len() > CHECK_FEATURES_MAX {
            return None;
        }
    }
    Some(out)
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "record_quarantine",
        "record_refusals",
        "record_checks",
        "record_catalog",
        "record_webhook",
        "record_invoice",
        "finalize_invoice",
        "record_sla_violation",
        "record_sla_recovery",
        "record_notification",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::RecordQuarantine { .. } => "record_quarantine",
            Self::RecordRefusals { .. } => "record_refusals",
            Self::RecordChecks { .. } => "record_checks",
            Self::RecordCatalog { .. } => "record_catalog",
            Self::RecordWebhook { .. } => "record_webhook",
            Self::RecordInvoice { .. } => "record_invoice",
            Self::FinalizeInvoice { .. } => "finalize_invoice",
            Self::RecordSla { event: SlaEvent::Violated, .. } => "record_sla_violation",
            Self::RecordSla { event: SlaEvent::Recovered, .. } => "record_sla_recovery",
            Self::RecordNotification { .. } => "record_notification",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::RecordQuarantine { governor, resource, level, length_ms } => {
                a.insert("governor".into(), governor.name().into());
                a.insert("resource".into(), resource.clone());
                a.insert("level".into(), level.to_string());
                a.insert("length_ms".into(), length_ms.to_string());
            }
            Self::RecordRefusals {
                feature,
                action,
                code,
                status,
                decided_by,
                count,
                window_start_ms,
            } => {
                a.insert("feature".into(), feature.clone());
                a.insert("action".into(), action.clone());
                a.insert("code".into(), code.clone());
                a.insert("status".into(), status.to_string());
                a.insert("decided_by".into(), decided_by.clone());
                a.insert("count".into(), count.to_string());
                a.insert("window_start_ms".into(), window_start_ms.to_string());
            }
            Self::RecordCatalog { version, plans } => {
                a.insert("version".into(), version.clone());
                a.insert("plans".into(), plans.to_string());
            }
            Self::RecordWebhook { event_id, event_type, outcome, detail } => {
                a.insert("event_id".into(), event_id.clone());
                a.insert("event_type".into(), event_type.clone());
                a.insert("outcome".into(), outcome.name().into());
                a.insert("detail".into(), detail.clone());
            }
            Self::RecordInvoice { period, plan, currency, lines, total } => {
                a.insert("period".into(), period.clone());
                a.insert("plan".into(), plan.clone());
                a.insert("currency".into(), currency.clone());
                let lines: Vec<String> = lines.iter().map(InvoiceLine::write).collect();
                a.insert("lines".into(), lines.join("\n"));
                a.insert("total".into(), total.to_string());
            }
            Self::FinalizeInvoice { period } => {
                a.insert("period".into(), period.clone());
            }
            // The event is the command's name (`record_sla_violation`, `..._recovery`), so that
            // a notification rule can take violations alone.
            Self::RecordSla {
                event: _,
                dimension,
                measured,
                promised,
                window_start_ms,
                window_ms,
            } => {
                a.insert("dimension".into(), dimension.name().into());
                let measured =
                    measured.map_or_else(|| "none".to_owned(), |m| m.normalize().to_string());
                a.insert("measured".into(), measured);
                a.insert("promised".into(), promised.normalize().to_string());
                a.insert("window_start_ms".into(), window_start_ms.to_string());
                a.insert("window_ms".into(), window_ms.to_string());
            }
            Self::RecordNotification {
                event_id,
                event_type,
                endpoint,
                attempt,
                outcome,
                detail,
            } => {
                a.insert("event_id".into(), event_id.clone());
                a.insert("event_type".into(), event_type.clone());
                a.insert("endpoint".into(), endpoint.clone());
                a.insert("attempt".into(), attempt.to_string());
                a.insert("outcome".into(), outcome.name().into());
                a.insert("detail".into(), detail.clone());
            }
            Self::RecordChecks { window_start_ms, window_ms, allowed } => {
                a.insert("window_start_ms".into(), window_start_ms.to_string());
                a.insert("window_ms".into(), window_ms.to_string());
                let counts: Vec<String> =
                    allowed.iter().map(|(n, feature)| format!("{n} {feature}")).collect();
                a.insert("allowed".into(), counts.join("\n"));
            }
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let text = |r: &mut ArgReader<'_>, arg: &str| -> Result<String, ArgError> {
            let v = r.raw(arg)?;
            if v.is_empty() || check_text(v) != v {
                return Err(ArgError::new(
                    name,
                    arg,
                    None,
                    ArgProblem::Malformed { expected: "1 to 128 bytes without control characters" },
                ));
            }
            Ok(v.to_owned())
        };
        let month = |r: &mut ArgReader<'_>| -> Result<String, ArgError> {
            let period = r.raw("period")?;
            if !is_month(period) {
                return Err(ArgError::new(
                    name,
                    "period",
                    Some(period),
                    ArgProblem::Malformed { expected: "a month, YYYY-MM" },
                ));
            }
            Ok(period.to_owned())
        };
        match r.command() {
            "record_refusals" => {
                let cmd = Self::RecordRefusals {
                    feature: text(&mut r, "feature")?,
                    action: text(&mut r, "action")?,
                    code: r.text("code")?,
                    status: r.positive_u64("status", "an HTTP status")?,
                    decided_by: text(&mut r, "decided_by")?,
                    count: r.positive_u64("count", "a count of 1 or more")?,
                    window_start_ms: r.parsed("window_start_ms", "ms since the epoch")?,
                };
                r.finish()?;
                return Ok(cmd);
            }
            "record_catalog" => {
                let cmd = Self::RecordCatalog {
                    version: r.text("version")?,
                    plans: r.parsed("plans", "a number of plans")?,
                };
                r.finish()?;
                return Ok(cmd);
            }
            "record_webhook" => {
                let cmd = Self::RecordWebhook {
                    event_id: text(&mut r, "event_id")?,
                    event_type: text(&mut r, "event_type")?,
                    outcome: r.parsed("outcome", WebhookOutcome::EXPECTED)?,
                    detail: text(&mut r, "detail")?,
                };
                r.finish()?;
                return Ok(cmd);
            }
            "record_notification" => {
                let cmd = Self::RecordNotification {
                    event_id: text(&mut r, "event_id")?,
                    event_type: text(&mut r, "event_type")?,
                    endpoint: text(&mut r, "endpoint")?,
                    attempt: r.parsed("attempt", "an attempt number, 0 or more")?,
                    outcome: r.parsed("outcome", NotificationOutcome::EXPECTED)?,
                    detail: text(&mut r, "detail")?,
                };
                r.finish()?;
                return Ok(cmd);
            }
            "finalize_invoice" => {
                let period = month(&mut r)?;
                let cmd = Self::FinalizeInvoice { period };
                r.finish()?;
                return Ok(cmd);
            }
            "record_invoice" => {
                let period = month(&mut r)?;
                let plan = r.text("plan")?;
                let currency = r.raw("currency")?;
                if crate::Currency::from_code(currency).is_none() {
                    return Err(ArgError::new(
                        name,
                        "currency",
                        Some(currency),
                        ArgProblem::Malformed { expected: "an ISO 4217 code" },
                    ));
                }
                let currency = currency.to_owned();
                let lines = parse_lines(r.raw("lines")?).ok_or_else(|| {
                    ArgError::new(
                        name,
                        "lines",
                        None,
                        ArgProblem::Malformed { expected: LINES_EXPECTED },
                    )
                })?;
                let total_text = r.raw("total")?;
                let total: rust_decimal::Decimal = total_text
                    .parse()
                    .ok()
                    .filter(|t: &rust_decimal::Decimal| {
                        !t.is_sign_negative() && t.to_string() == total_text
                    })
                    .ok_or_else(|| {
                        ArgError::new(
                            name,
                            "total",
                            Some(total_text),
                            ArgProblem::Malformed { expected: "a decimal amount of 0 or more" },
                        )
                    })?;
                r.finish()?;
                return Ok(Self::RecordInvoice { period, plan, currency, lines, total });
            }
            "record_sla_violation" | "record_sla_recovery" => {
                let event = if r.command() == "record_sla_violation" {
                    SlaEvent::Violated
                } else {
                    SlaEvent::Recovered
                };
                let dimension = r.parsed("dimension", SlaDimension::EXPECTED)?;
                let malformed = |arg: &'static str, v: &str| {
                    ArgError::new(
                        name,
                        arg,
                        Some(v),
                        ArgProblem::Malformed { expected: FIGURE_EXPECTED },
                    )
                };
                let measured_text = r.raw("measured")?;
                let measured = if measured_text == "none" {
                    None
                } else {
                    Some(
                        figure(measured_text)
                            .ok_or_else(|| malformed("measured", measured_text))?,
                    )
                };
                let promised_text = r.raw("promised")?;
                let promised =
                    figure(promised_text).ok_or_else(|| malformed("promised", promised_text))?;
                let window_start_ms = r.parsed("window_start_ms", "ms since the epoch")?;
                let window_ms = r.positive_u64("window_ms", "a window of 1 ms or more")?;
                r.finish()?;
                return Ok(Self::RecordSla {
                    event,
                    dimension,
                    measured,
                    promised,
                    window_start_ms,
                    window_ms,
                });
            }
            "record_checks" => {
                let window_start_ms = r.parsed("window_start_ms", "ms since the epoch")?;
                let window_ms = r.positive_u64("window_ms", "a window of 1 ms or more")?;
                let allowed = parse_counts(r.raw("allowed")?).ok_or_else(|| {
                    ArgError::new(
                        name,
                        "allowed",
                        None,
                        ArgProblem::Malformed { expected: COUNTS_EXPECTED },
                    )
                })?;
                r.finish()?;
                return Ok(Self::RecordChecks { window_start_ms, window_ms, allowed });
            }
            _ => {}
        }
        let governor = r.raw("governor")?;
        let governor = GovernorKind::from_name(governor).ok_or_else(|| {
            ArgError::new(
                name,
                "governor",
                Some(governor),
                ArgProblem::Malformed { expected: "a governor kind" },
            )
        })?;
        let cmd = Self::RecordQuarantine {
            governor,
            resource: r.text("resource")?,
            level: r.positive_u64("level", LEVEL_EXPECTED)?,
            length_ms: r.positive_u64("length_ms", LENGTH_EXPECTED)?,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        vec![
            Self::RecordQuarantine {
                governor: GovernorKind::Billing,
                resource: "pay-1".into(),
                level: 1,
                length_ms: 1_000,
            },
            Self::RecordRefusals {
                feature: "sso".into(),
                action: "login".into(),
                code: "plan_upgrade_required".into(),
                status: 402,
                decided_by: "default".into(),
                count: 3,
                window_start_ms: 1_767_225_600_000,
            },
            Self::RecordChecks {
                window_start_ms: 1_767_225_600_000,
                window_ms: 60_000,
                allowed: vec![(12, "api_access".into()), (1, "reports".into())],
            },
            Self::RecordCatalog { version: "2026-12-06".into(), plans: 9 },
            Self::RecordSla {
                event: SlaEvent::Violated,
                dimension: SlaDimension::P99Latency,
                measured: Some(rust_decimal::Decimal::new(163_839, 3)),
                promised: rust_decimal::Decimal::new(100, 0),
                window_start_ms: 1_767_225_600_000,
                window_ms: 30_000,
            },
            Self::RecordSla {
                event: SlaEvent::Recovered,
                dimension: SlaDimension::ErrorRate,
                measured: None,
                promised: rust_decimal::Decimal::new(1, 2),
                window_start_ms: 1_767_225_630_000,
                window_ms: 30_000,
            },
            Self::RecordWebhook {
                event_id: "evt_1".into(),
                event_type: "payment_intent.succeeded".into(),
                outcome: WebhookOutcome::Accepted,
                detail: "billing pay-1 settle_payment".into(),
            },
            Self::RecordNotification {
                event_id: "evt_12".into(),
                event_type: "quota.warning".into(),
                endpoint: "ops".into(),
                attempt: 2,
                outcome: NotificationOutcome::Delivered,
                detail: "status 200".into(),
            },
            Self::RecordInvoice {
                period: "2026-01".into(),
                plan: "starter".into(),
                currency: "USD".into(),
                lines: vec![
                    InvoiceLine {
                        kind: "base".into(),
                        meter: None,
                        quantity: 1,
                        unit_price: rust_decimal::Decimal::new(29, 0),
                        amount: rust_decimal::Decimal::new(2900, 2),
                    },
                    InvoiceLine {
                        kind: "overage".into(),
                        meter: Some("api_calls".into()),
                        quantity: 5_000,
                        unit_price: rust_decimal::Decimal::new(1, 3),
                        amount: rust_decimal::Decimal::new(500, 2),
                    },
                ],
                total: rust_decimal::Decimal::new(3400, 2),
            },
            Self::FinalizeInvoice { period: "2026-01".into() },
        ]
    }
}

/// One tenant's audit trail: what has been recorded so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trail {
    state: StateCell,
    /// Quarantines recorded.
    quarantines: u64,
    /// When the last one was recorded.
    last_quarantine_at: Option<Timestamp>,
    /// Refused checks recorded (the sum of the counts).
    refusals: u64,
    /// Allowed checks recorded (the sum of the counts).
    allowed_checks: u64,
    /// Webhook deliveries recorded.
    webhooks: u64,
    /// Invoices recorded.
    invoices: u64,
}

impl Trail {
    /// How many quarantines have been recorded.
    #[must_use]
    pub fn quarantines(&self) -> u64 {
        self.quarantines
    }

    /// Refused checks recorded (the sum of the counts).
    #[must_use]
    pub fn refusals(&self) -> u64 {
        self.refusals
    }

    /// Allowed checks recorded (the sum of the counts).
    #[must_use]
    pub fn allowed_checks(&self) -> u64 {
        self.allowed_checks
    }

    /// Webhook deliveries recorded (accepted, duplicate and rejected).
    #[must_use]
    pub fn webhooks(&self) -> u64 {
        self.webhooks
    }

    /// Invoices recorded.
    #[must_use]
    pub fn invoices(&self) -> u64 {
        self.invoices
    }

    /// When the last quarantine was recorded.
    #[must_use]
    pub fn last_quarantine_at(&self) -> Option<Timestamp> {
        self.last_quarantine_at
    }
}

impl Governor for Trail {
    const KIND: GovernorKind = GovernorKind::Audit;
    type State = State;
    type Command = Command;

    fn state(&self) -> State {
        self.state.0
    }

    fn decide(&self, command: &Command, _ctx: &Ctx) -> Result<Transition<State>, Rejection> {
        // The runtime has decided already; the record is always taken.
        match command {
            Command::RecordQuarantine { .. }
            | Command::RecordRefusals { .. }
            | Command::RecordChecks { .. }
            | Command::RecordCatalog { .. }
            | Command::RecordWebhook { .. }
            | Command::RecordInvoice { .. }
            | Command::FinalizeInvoice { .. }
            | Command::RecordSla { .. }
            | Command::RecordNotification { .. } => {
                Ok(Transition { from: State::Recording, to: State::Recording })
            }
        }
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::RecordQuarantine { .. } => {
                self.quarantines = self.quarantines.saturating_add(1);
                self.last_quarantine_at = Some(at);
            }
            Command::RecordRefusals { count, .. } => {
                self.refusals = self.refusals.saturating_add(*count);
            }
            // Recorded for the trail (and notifications), not counted: the trail's codec
            // stays as it is; the runtime rebuilds SLA monitors' open violations and the
            // notifier its deliveries from these receipts.
            Command::RecordCatalog { .. }
            | Command::FinalizeInvoice { .. }
            | Command::RecordSla { .. }
            | Command::RecordNotification { .. } => {}
            // Saturating, as the sums: a decoded state may hold any count.
            Command::RecordWebhook { .. } => self.webhooks = self.webhooks.saturating_add(1),
            Command::RecordInvoice { .. } => self.invoices = self.invoices.saturating_add(1),
            Command::RecordChecks { allowed, .. } => {
                let n = allowed.iter().fold(0u64, |sum, (n, _)| sum.saturating_add(*n));
                self.allowed_checks = self.allowed_checks.saturating_add(n);
            }
        }
        self.state.0 = to;
    }
}

impl StateCodec for Trail {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.u64(self.quarantines);
        w.opt_timestamp(self.last_quarantine_at);
        w.u64(self.refusals);
        w.u64(self.allowed_checks);
        w.u64(self.webhooks);
        w.u64(self.invoices);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        Ok(Self {
            state: StateCell(r.state()?),
            quarantines: r.u64("quarantines")?,
            last_quarantine_at: r.opt_timestamp("last_quarantine_at")?,
            refusals: r.u64("refusals")?,
            allowed_checks: r.u64("allowed_checks")?,
            webhooks: r.u64("webhooks")?,
            invoices: r.u64("invoices")?,
        })
    }
}

#[cfg(test)]
mod tests;
