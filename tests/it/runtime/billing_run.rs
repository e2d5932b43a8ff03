//! The billing run: a month that has ended closes into an invoice receipted in the tenant's
//! audit trail, the billing governor is asked for the total (`invoice-YYYY-MM`), a second close
//! writes nothing, a plan change mid-month prorates, and a provider's webhook settles it.

use std::time::Duration;

use govern_governors::GovernorKind;
use govern_governors::billing::PaymentMethod;
use govern_runtime::{Refusal, Runtime, RuntimeHandle};

use super::{builder, quota, raw_command, resource, tenant};

fn pricing() -> govern_plans::Catalog {
    govern_plans::load(&crate::repo_path("examples/plans/pricing.toml")).unwrap()
}

const DAY: Duration = Duration::from_secs(86_400);

/// `acme` on starter from 2026-01-01 (the test epoch).
async fn acme(rt: &Runtime) -> RuntimeHandle {
    let h = rt.handle();
    super::acme_paying_for_starter(&h).await;
    h
}

fn refusal(e: govern_runtime::CommandError) -> Refusal {
    match e {
        govern_runtime::CommandError::Refused(r) => r,
        other => panic!("not a refusal: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_month_closes_once_into_a_receipted_invoice_and_a_payment() {
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = acme(&rt).await;
    let acme = tenant("acme");
    // 15 005 calls in January: 5 005 beyond the 10 000 included, at 0.001 = 5.005 → 5.00
    // (half-even); with the 29.00 base, 34.00.
    h.record_usage(&acme, "api_calls", 15_005, "jan-1", h.now()).await.unwrap();
    let e = h.close_period(&acme, "2026-01", PaymentMethod::Card).await.unwrap_err();
    assert_eq!(refusal(e), Refusal::PeriodOpen { period: "2026-01".into() });
    tokio::time::advance(31 * DAY).await;
    // February's usage is not January's.
    h.record_usage(&acme, "api_calls", 99_000, "feb-1", h.now()).await.unwrap();

    let closed = h.close_period(&acme, "2026-01", PaymentMethod::Card).await.unwrap();
    assert!(closed.closed_now);
    assert_eq!((closed.plan.as_str(), closed.currency.as_str()), ("starter", "USD"));
    assert_eq!(closed.total.to_string(), "34.00");
    let lines: Vec<String> = closed
        .lines
        .iter()
        .map(|l| format!("{} {:?} {} {}", l.kind, l.meter, l.quantity, l.amount))
        .collect();
    assert_eq!(lines, ["base None 1 29.00", "overage Some(\"api_calls\") 5005 5.00"]);
    let record = h.receipts(&acme, Some(GovernorKind::Audit), None).unwrap();
    let record = record.iter().find(|r| r.body.command == "record_invoice").expect("receipted");
    assert_eq!(record.seq, closed.record_seq);
    assert_eq!(record.body.args["total"], "34.00");
    assert_eq!(record.body.args["period"], "2026-01");
    // The billing governor takes it from there: a payment of the total, pending.
    let pay = resource("invoice-2026-01");
    assert_eq!(closed.payment.as_ref(), Some(&pay));
    let payment = h.receipts(&acme, Some(GovernorKind::Billing), Some(&pay)).unwrap();
    assert_eq!(payment.len(), 1);
    assert_eq!(payment[0].body.command, "request_payment");
    assert_eq!(payment[0].body.state_to, "payment_pending");
    assert_eq!(
        (payment[0].body.args["amount"].as_str(), payment[0].body.args["currency"].as_str()),
        ("34", "USD")
    );

    // Closing again answers the recorded invoice and writes nothing.
    let head = h.head();
    let again = h.close_period(&acme, "2026-01", PaymentMethod::Card).await.unwrap();
    assert!(!again.closed_now);
    assert_eq!(
        (again.total, again.record_seq, again.lines.clone()),
        (closed.total, closed.record_seq, closed.lines.clone())
    );
    assert_eq!(h.head(), head);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bad_periods_unknown_tenants_and_nothing_to_invoice_are_refused_and_write_nothing() {
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = acme(&rt).await;
    tokio::time::advance(40 * DAY).await;
    let head = h.head();
    for bad in ["2026-13", "2026-1", "january", "1969-12"] {
        let e = h.close_period(&tenant("acme"), bad, PaymentMethod::Card).await.unwrap_err();
        assert_eq!(e.code(), "bad_period", "{bad}");
    }
    let e = h.close_period(&tenant("globex"), "2026-01", PaymentMethod::Card).await.unwrap_err();
    assert_eq!(e.code(), "unknown_tenant");
    // A tenant without a subscription has nothing to invoice.
    h.provision_tenant(&tenant("initech"), quota(), "onboarding").await.unwrap();
    let head = if h.head() == head { head } else { h.head() };
    let e = h.close_period(&tenant("initech"), "2026-01", PaymentMethod::Card).await.unwrap_err();
    assert_eq!(e.code(), "not_invoiceable", "{e:?}");
    assert_eq!(h.head(), head);
    rt.shutdown().await.unwrap();
    // Without a catalog there is no billing run.
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let e = h.close_period(&tenant("acme"), "2026-01", PaymentMethod::Card).await.unwrap_err();
    assert_eq!(e.code(), "no_catalog");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_mid_month_prorates_both_bases_by_day() {
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    // A trial of starter from January 1; paid, on pro, from January 11 (day 10 of 31).
    sub.start_trial("starter", 14, "signed up").await.unwrap();
    tokio::time::advance(10 * DAY).await;
    sub.activate(Some("pro"), "paid, on pro").await.unwrap();
    tokio::time::advance(25 * DAY).await;
    let closed = h.close_period(&acme, "2026-01", PaymentMethod::Card).await.unwrap();
    // Starter 29.00 × 10/31 = 9.354838… → 9.35; Pro 149.00 × 21/31 = 100.935483… → 100.94.
    let lines: Vec<String> =
        closed.lines.iter().map(|l| format!("{} {} {}", l.kind, l.quantity, l.amount)).collect();
    assert_eq!(lines, ["proration 10 9.35", "proration 21 100.94"]);
    assert_eq!(closed.total.to_string(), "110.29");
    assert_eq!(closed.plan, "pro");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_closed_month_stays_closed_after_a_restart_and_a_webhook_settles_its_payment() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder().catalog(pricing()).data_dir(dir.path()).start().await.unwrap();
    let h = acme(&rt).await;
    let acme = tenant("acme");
    tokio::time::advance(32 * DAY).await;
    let closed = h.close_period(&acme, "2026-01", PaymentMethod::Card).await.unwrap();
    assert_eq!(closed.total.to_string(), "29.00");
    rt.shutdown().await.unwrap();

    let rt = builder()
        .epoch(super::T0.plus_ms(32 * 86_400_000))
        .catalog(pricing())
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let h = rt.handle();
    let head = h.head();
    let again = h.close_period(&acme, "2026-01", PaymentMethod::Card).await.unwrap();
    assert!(!again.closed_now);
    assert_eq!(again.record_seq, closed.record_seq);
    assert_eq!(h.head(), head, "nothing written");
    // The host confirms the card payment; the provider's webhook settles it.
    let authorize = [("transaction_id", "pi_inv")];
    let authorize = raw_command(
        &acme,
        GovernorKind::Billing,
        "invoice-2026-01",
        "authorize_payment",
        &authorize,
    );
    h.command(authorize).await.unwrap();
    let body = br#"{"id":"evt_inv","type":"payment_intent.succeeded","created":1769900000,
        "data":{"object":{"id":"pi_inv","amount":2900,"currency":"usd",
        "metadata":{"govern_tenant":"acme","govern_resource":"invoice-2026-01"}}}}"#;
    let verifier = govern_webhooks::Verifier::new(&[b"whsec"]).unwrap();
    let header = govern_webhooks::sign(b"whsec", h.now().as_ms() / 1000, body);
    let d = h.deliver_webhook(&verifier, &header, body).await.unwrap();
    assert_eq!(d.command.map(|c| c.to), Some("payment_settled"), "{}", d.detail);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_peak_meter_is_billed_at_its_peak_each_month_it_holds() {
    let platform = govern_plans::load(&crate::repo_path("examples/plans/platform.toml")).unwrap();
    let rt = builder().catalog(platform).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("team", 14, "signed up").await.unwrap();
    sub.activate(None, "paid").await.unwrap();
    // Seats never reset: 12 in January, then 3 more (15) in February.
    tokio::time::advance(4 * DAY).await;
    h.record_usage(&acme, "seats", 12, "s1", h.now()).await.unwrap();
    tokio::time::advance(31 * DAY).await;
    h.record_usage(&acme, "seats", 3, "s2", h.now()).await.unwrap();
    tokio::time::advance(30 * DAY).await;
    let line = |c: &govern_runtime::ClosedInvoice| {
        c.lines
            .iter()
            .map(|l| format!("{} {:?} {} {}", l.kind, l.meter, l.quantity, l.amount))
            .collect::<Vec<_>>()
    };
    // January's peak, 12: 2 seats beyond the 10 included at 45.00.
    let jan = h.close_period(&acme, "2026-01", PaymentMethod::Card).await.unwrap();
    assert_eq!(line(&jan), ["base None 1 499.00", "overage Some(\"seats\") 2 90.00"]);
    assert_eq!(jan.total.to_string(), "589.00");
    // February's peak, 15: 5 beyond at 45.00 (the first tier).
    let feb = h.close_period(&acme, "2026-02", PaymentMethod::Card).await.unwrap();
    assert_eq!(feb.total.to_string(), "724.00", "{:?}", line(&feb));
    // March had no batch: the peak is the 15 held since February.
    let mar = h.close_period(&acme, "2026-03", PaymentMethod::Card);
    let e = mar.await.unwrap_err();
    assert_eq!(e.code(), "period_open", "March has not ended");
    tokio::time::advance(25 * DAY).await;
    let mar = h.close_period(&acme, "2026-03", PaymentMethod::Card).await.unwrap();
    assert_eq!(mar.total.to_string(), "724.00", "{:?}", line(&mar));
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn concurrent_closes_of_one_month_record_one_invoice() {
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = acme(&rt).await;
    h.provision_tenant(&tenant("initech"), quota(), "onboarding").await.unwrap();
    tokio::time::advance(32 * DAY).await;
    let acme = tenant("acme");
    let (a, b, c) = tokio::join!(
        h.close_period(&acme, "2026-01", PaymentMethod::Card),
        h.close_period(&acme, "2026-01", PaymentMethod::Card),
        h.close_period_all("2026-01", PaymentMethod::Card, 8),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.record_seq, b.record_seq, "one invoice");
    assert_eq!(u8::from(a.closed_now) + u8::from(b.closed_now), 1, "closed by one of them");
    let invoices = h.receipts(&acme, Some(GovernorKind::Audit), None).unwrap();
    assert_eq!(invoices.iter().filter(|r| r.body.command == "record_invoice").count(), 1);
    let payments = h.receipts(&acme, Some(GovernorKind::Billing), None).unwrap();
    assert_eq!(payments.len(), 1, "one payment request");
    // The billing run saw acme closed (by whichever came first) and initech with nothing to
    // invoice.
    let codes: Vec<(String, String)> = c
        .iter()
        .map(|(t, r)| {
            (
                t.to_string(),
                r.as_ref().map_or_else(|e| e.code().to_owned(), |c| c.total.to_string()),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [("acme".into(), "29.00".into()), ("initech".into(), "not_invoiceable".into())]
    );
    rt.shutdown().await.unwrap();
}
