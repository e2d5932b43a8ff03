//! Invoices of every shipped catalog (`examples/plans/pricing.toml`, `licensing.toml`,
//! `platform.toml`) checked against totals computed by hand (each row's computation is in its
//! comment), proration, each aggregation, rounding, errors, serde, and properties of tier
//! prices.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::collections::BTreeMap;
use std::path::Path;

use govern_plans::{Aggregation, Catalog, Interval, MeterPricing, Tier, TierMode};
use govern_pricing::{
    Event, Invoice, LineKind, Period, PlanChange, PricingError, aggregate, count, invoice, max,
    meter_charge, round, sum, unique_count,
};
use iso_currency::Currency;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn catalog() -> Catalog {
    catalog_of("pricing.toml")
}

/// One shipped catalog file of `examples/plans`.
fn catalog_of(file: &str) -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans").join(file);
    govern_plans::load(&path).unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn usage(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(m, q)| ((*m).to_owned(), *q)).collect()
}

fn month() -> Period {
    Period { label: "2026-01".into(), days: 31 }
}

fn bill(plan: &str, pairs: &[(&str, u64)]) -> Invoice {
    bill_in("pricing.toml", plan, pairs)
}

/// A plan of a shipped catalog file invoiced for January 2026 (31 days).
fn bill_in(file: &str, plan: &str, pairs: &[(&str, u64)]) -> Invoice {
    let c = catalog_of(file);
    invoice(c.plan(plan).unwrap(), &month(), &usage(pairs), None).unwrap()
}

/// A row of a hand-computed table: each meter's usage, each line's amount, the total.
type Row<'a> = (&'a [(&'a str, u64)], &'a [&'a str], &'a str);

/// Checks rows of (usage, each line's amount, total) for one plan of one catalog file: the
/// amounts as strings (two decimals for USD), the subtotal equal to the total, in USD.
fn check_rows(file: &str, plan: &str, rows: &[Row<'_>]) {
    for (pairs, lines, total) in rows {
        let i = bill_in(file, plan, pairs);
        assert_eq!(amounts(&i), *lines, "{file} {plan} {pairs:?}: {i:#?}");
        assert_eq!(i.total.to_string(), *total, "{file} {plan} {pairs:?}");
        assert_eq!(i.subtotal, i.total, "{file} {plan} {pairs:?}");
        assert_eq!(i.currency, Currency::USD, "{file} {plan}");
    }
}

/// Each line's amount, as strings (exact scale: "0.00" is not "0").
fn amounts(i: &Invoice) -> Vec<String> {
    i.lines.iter().map(|l| l.amount.to_string()).collect()
}

#[test]
fn starter_totals_match_the_hand_computed_table() {
    // Starter: base 29.00 USD; api_calls: 10 000 included, graduated: the next 90 000 at
    // 0.001, every unit beyond at 0.0005.
    let rows: &[(u64, &[&str], &str)] = &[
        // 0 calls: base only. 29.00
        (0, &["29.00"], "29.00"),
        // 10 000 calls: all included. 29.00
        (10_000, &["29.00"], "29.00"),
        // 10 001: 1 x 0.001 = 0.001 -> 0.00 (rounded to cents); 29.00 + 0.00 = 29.00
        (10_001, &["29.00", "0.00"], "29.00"),
        // 15 005: 5 005 x 0.001 = 5.005, a midpoint -> 5.00 (half-even: 0 is even); 34.00
        (15_005, &["29.00", "5.00"], "34.00"),
        // 15 015: 5 015 x 0.001 = 5.015 -> 5.02 (half-even: 1 is odd, up to 2); 34.02
        (15_015, &["29.00", "5.02"], "34.02"),
        // 100 000: 90 000 x 0.001 = 90.00 (tier 1 full); 29 + 90 = 119.00
        (100_000, &["29.00", "90.00"], "119.00"),
        // 250 001: tier 1 90 000 x 0.001 = 90.00; tier 2 (240 001 - 90 000) = 150 001 x
        // 0.0005 = 75.0005 -> 75.00; 29 + 90 + 75 = 194.00
        (250_001, &["29.00", "90.00", "75.00"], "194.00"),
    ];
    for (calls, lines, total) in rows {
        let i = bill("starter", &[("api_calls", *calls)]);
        assert_eq!(amounts(&i), *lines, "{calls} calls: {i:#?}");
        assert_eq!(i.total, d(total), "{calls} calls");
        assert_eq!(i.total.to_string(), *total, "{calls} calls: two decimals");
        assert_eq!(i.subtotal, i.total);
        assert_eq!(i.currency, Currency::USD);
    }
}

#[test]
fn pro_totals_match_the_hand_computed_table() {
    // Pro: base 149.00 USD; api_calls: 100 000 included, graduated: the next 900 000 at
    // 0.0008, beyond at 0.0004; active_users (unique count): 50 included, volume: up to 50
    // more all at 4.00, more than 50 more all at 3.00.
    let rows: &[(u64, u64, &[&str], &str)] = &[
        // nothing used: 149.00
        (0, 0, &["149.00"], "149.00"),
        // 1 000 000 calls: 900 000 x 0.0008 = 720.00; 60 users: 10 x 4.00 = 40.00;
        // 149 + 720 + 40 = 909.00
        (1_000_000, 60, &["149.00", "40.00", "720.00"], "909.00"),
        // 2 500 000 calls: 720.00 + (2 400 000 - 900 000) = 1 500 000 x 0.0004 = 600.00;
        // 151 users: 101 beyond, over 50 -> all 101 x 3.00 = 303.00;
        // 149 + 303 + 720 + 600 = 1772.00
        (2_500_000, 151, &["149.00", "303.00", "720.00", "600.00"], "1772.00"),
        // 100 users: 50 beyond, in tier 1 -> 50 x 4.00 = 200.00; 149 + 200 = 349.00
        (0, 100, &["149.00", "200.00"], "349.00"),
        // 101 users: 51 beyond, tier 2 for all -> 51 x 3.00 = 153.00 (volume is cheaper
        // past the bound); 149 + 153 = 302.00
        (0, 101, &["149.00", "153.00"], "302.00"),
    ];
    for (calls, users, lines, total) in rows {
        let i = bill("pro", &[("api_calls", *calls), ("active_users", *users)]);
        assert_eq!(amounts(&i), *lines, "{calls} calls, {users} users: {i:#?}");
        assert_eq!(i.total.to_string(), *total, "{calls} calls, {users} users");
    }
}

#[test]
fn enterprise_has_no_pricing_table_and_costs_its_base() {
    // pricing-enterprise prices no meter: 1499.00 whatever the usage.
    let i = bill("pricing-enterprise", &[("api_calls", 9_000_000), ("active_users", 9_000)]);
    assert_eq!(amounts(&i), ["1499.00"]);
    assert_eq!(i.total, d("1499.00"));
}

#[test]
fn licensing_professional_totals_match_the_hand_computed_table() {
    // Professional: base 99.00 USD; compute_gb: 500 included (the seed's), graduated: the
    // next 1 000 GB at 0.125, every GB beyond at 0.085.
    let rows: &[Row<'_>] = &[
        // nothing used: base only. 99.00
        (&[("compute_gb", 0)], &["99.00"], "99.00"),
        // 320 GB, inside the 500 included; executions are not priced. 99.00
        (&[("compute_gb", 320), ("executions", 100_000)], &["99.00"], "99.00"),
        // 500 GB: the whole allowance, no line. 99.00
        (&[("compute_gb", 500)], &["99.00"], "99.00"),
        // 501 GB: 1 x 0.125 = 0.125, a midpoint -> 0.12 (half-even: 2 is even); 99.12
        (&[("compute_gb", 501)], &["99.00", "0.12"], "99.12"),
        // 503 GB: 3 x 0.125 = 0.375 -> 0.38 (half-even: 7 is odd, up to 8); 99.38
        (&[("compute_gb", 503)], &["99.00", "0.38"], "99.38"),
        // 1 500 GB: tier 1 full, 1 000 x 0.125 = 125.00; 99 + 125 = 224.00
        (&[("compute_gb", 1_500)], &["99.00", "125.00"], "224.00"),
        // 2 345 GB: 1 845 beyond; tier 1 1 000 x 0.125 = 125.00; tier 2 845 x 0.085 =
        // 71.825, a midpoint -> 71.82 (2 is even); 99 + 125 + 71.82 = 295.82
        (&[("compute_gb", 2_345)], &["99.00", "125.00", "71.82"], "295.82"),
    ];
    check_rows("licensing.toml", "professional", rows);
}

#[test]
fn licensing_enterprise_totals_match_the_hand_computed_table() {
    // Enterprise: base 999.00 USD; compute_gb: 100 000 included (the seed's), volume: an
    // overage of up to 50 000 GB all at 0.075, a larger one all at 0.055.
    let rows: &[Row<'_>] = &[
        // nothing used: 999.00
        (&[], &["999.00"], "999.00"),
        // 100 000 GB, the allowance; unlimited executions are not priced. 999.00
        (&[("compute_gb", 100_000), ("executions", 9_000_000)], &["999.00"], "999.00"),
        // 100 001 GB: 1 x 0.075 = 0.075, a midpoint -> 0.08 (half-even: 7 is odd); 999.08
        (&[("compute_gb", 100_001)], &["999.00", "0.08"], "999.08"),
        // 100 003 GB: 3 x 0.075 = 0.225 -> 0.22 (half-even: 2 is even); 999.22
        (&[("compute_gb", 100_003)], &["999.00", "0.22"], "999.22"),
        // 150 000 GB: 50 000 beyond, tier 1 for all: 50 000 x 0.075 = 3750.00; 4749.00
        (&[("compute_gb", 150_000)], &["999.00", "3750.00"], "4749.00"),
        // 150 001 GB: 50 001 beyond, tier 2 for all: 50 001 x 0.055 = 2750.055 -> 2750.06
        // (half-even: 5 is odd, up to 6); cheaper past the bound; 999 + 2750.06 = 3749.06
        (&[("compute_gb", 150_001)], &["999.00", "2750.06"], "3749.06"),
    ];
    check_rows("licensing.toml", "enterprise", rows);
}

#[test]
fn licensing_community_has_no_pricing_table_and_is_free() {
    // Community: base 0 USD, no pricing table: its compute and executions are capped by
    // limits, never charged. 0.00 whatever the usage.
    let i = bill_in("licensing.toml", "community", &[("compute_gb", 10), ("executions", 1_000)]);
    assert_eq!(amounts(&i), ["0.00"]);
    assert_eq!(i.total, Decimal::ZERO);
    assert!(catalog_of("licensing.toml").plan("community").unwrap().pricing.is_empty());
}

#[test]
fn platform_team_totals_match_the_hand_computed_table() {
    // Team: base 499.00 USD; seats (peak): 10 included, graduated: 5 more at 45.00, beyond
    // at 40.00; connections (peak): 5 000 included, graduated: the next 10 000 at 0.045,
    // beyond at 0.0325. Lines by meter id: connections, then seats.
    let rows: &[Row<'_>] = &[
        // nothing used: 499.00
        (&[("seats", 0), ("connections", 0)], &["499.00"], "499.00"),
        // 10 seats, 5 000 connections: both allowances exactly. 499.00
        (&[("seats", 10), ("connections", 5_000)], &["499.00"], "499.00"),
        // 5 001 connections: 1 x 0.045 = 0.045, a midpoint -> 0.04 (half-even: 4 is even);
        // 499.04
        (&[("seats", 7), ("connections", 5_001)], &["499.00", "0.04"], "499.04"),
        // 5 003 connections: 3 x 0.045 = 0.135 -> 0.14 (half-even: 3 is odd, up to 4); 499.14
        (&[("connections", 5_003)], &["499.00", "0.14"], "499.14"),
        // 12 seats: 2 x 45.00 = 90.00; 17 345 connections: 12 345 beyond; tier 1 10 000 x
        // 0.045 = 450.00; tier 2 2 345 x 0.0325 = 76.2125 -> 76.21;
        // 499 + 450 + 76.21 + 90 = 1115.21
        (
            &[("seats", 12), ("connections", 17_345)],
            &["499.00", "450.00", "76.21", "90.00"],
            "1115.21",
        ),
        // 20 seats (the limit): 5 x 45.00 = 225.00, 5 x 40.00 = 200.00; 25 000 connections
        // (the limit): 450.00, then 10 000 x 0.0325 = 325.00;
        // 499 + 450 + 325 + 225 + 200 = 1699.00
        (
            &[("seats", 20), ("connections", 25_000)],
            &["499.00", "450.00", "325.00", "225.00", "200.00"],
            "1699.00",
        ),
    ];
    check_rows("platform.toml", "team", rows);
}

#[test]
fn platform_enterprise_totals_match_the_hand_computed_table() {
    // platform-enterprise: base 4999.00 USD; connections (peak): 50 000 included, volume: an
    // overage of up to 25 000 all at 0.0325, a larger one all at 0.0275; seats unlimited and
    // not priced.
    let rows: &[Row<'_>] = &[
        // nothing used: 4999.00
        (&[("connections", 0)], &["4999.00"], "4999.00"),
        // 40 000 connections, 900 seats: inside the allowance, seats not priced. 4999.00
        (&[("connections", 40_000), ("seats", 900)], &["4999.00"], "4999.00"),
        // 50 002: 2 x 0.0325 = 0.065, a midpoint -> 0.06 (half-even: 6 is even); 4999.06
        (&[("connections", 50_002)], &["4999.00", "0.06"], "4999.06"),
        // 50 006: 6 x 0.0325 = 0.195 -> 0.20 (half-even: 9 is odd, up to 10); 4999.20
        (&[("connections", 50_006)], &["4999.00", "0.20"], "4999.20"),
        // 75 000: 25 000 beyond, tier 1 for all: 25 000 x 0.0325 = 812.50; 5811.50
        (&[("connections", 75_000)], &["4999.00", "812.50"], "5811.50"),
        // 75 001: 25 001 beyond, tier 2 for all: 25 001 x 0.0275 = 687.5275 -> 687.53;
        // 4999 + 687.53 = 5686.53
        (&[("connections", 75_001)], &["4999.00", "687.53"], "5686.53"),
        // 100 000 (the limit): 50 000 x 0.0275 = 1375.00; 6374.00
        (&[("connections", 100_000)], &["4999.00", "1375.00"], "6374.00"),
    ];
    check_rows("platform.toml", "platform-enterprise", rows);
}

#[test]
fn platform_gov_has_no_pricing_table_and_costs_its_yearly_base() {
    // gov: 120000.00 USD a year, no pricing table: one base line whatever the usage.
    let c = catalog_of("platform.toml");
    let gov = c.plan("gov").unwrap();
    assert!(gov.pricing.is_empty());
    let year = Period { label: "2026".into(), days: 365 };
    let i = invoice(gov, &year, &usage(&[("connections", 256), ("seats", 5_000)]), None).unwrap();
    assert_eq!(amounts(&i), ["120000.00"]);
    assert_eq!(i.total, d("120000.00"));
}

#[test]
fn overage_lines_say_quantity_unit_price_and_tier() {
    let i = bill("starter", &[("api_calls", 250_001), ("unpriced_meter", 5)]);
    let l = &i.lines[2];
    assert_eq!(l.kind, LineKind::Overage);
    assert_eq!(l.meter.as_deref(), Some("api_calls"));
    assert_eq!(l.quantity, 150_001);
    assert_eq!(l.unit_price, d("0.0005"));
    assert_eq!(
        l.description,
        "api_calls: 150001 units of 250001 beyond the 10000 included, graduated at 0.0005 USD (tier 2 of 2)"
    );
    assert_eq!(i.lines.len(), 3, "a meter the plan does not price is not charged");
}

#[test]
fn a_mid_period_change_prorates_both_bases_by_day() {
    let c = catalog();
    let (starter, pro) = (c.plan("starter").unwrap(), c.plan("pro").unwrap());
    // Starter for days 0-9 (10 days), Pro from day 10 (21 days) of 31:
    // 29.00 x 10 / 31 = 9.3548... -> 9.35; 149.00 x 21 / 31 = 100.9354... -> 100.94;
    // 9.35 + 100.94 = 110.29
    let change = PlanChange { from: starter, day: 10 };
    let i = invoice(pro, &month(), &usage(&[]), Some(&change)).unwrap();
    assert_eq!(amounts(&i), ["9.35", "100.94"]);
    assert_eq!(i.total, d("110.29"));
    assert_eq!(i.lines[0].kind, LineKind::Proration);
    assert_eq!(i.lines[0].plan, "starter");
    assert_eq!(i.lines[0].quantity, 10);
    assert_eq!(i.lines[1].plan, "pro");
    assert_eq!(i.lines[1].quantity, 21);
    assert_eq!(i.lines[1].proration.unwrap().of_days, 31);
    // A 30-day period changed on day 15: 29.00 x 15/30 = 14.50; 149.00 x 15/30 = 74.50;
    // the period's 1 000 000 calls are priced by Pro (the plan at the end): 720.00;
    // 14.50 + 74.50 + 720.00 = 809.00
    let june = Period { label: "2026-06".into(), days: 30 };
    let change = PlanChange { from: starter, day: 15 };
    let i = invoice(pro, &june, &usage(&[("api_calls", 1_000_000)]), Some(&change)).unwrap();
    assert_eq!(amounts(&i), ["14.50", "74.50", "720.00"]);
    assert_eq!(i.total, d("809.00"));
}

#[test]
fn bad_periods_and_changes_are_typed_errors() {
    let c = catalog();
    let (starter, pro) = (c.plan("starter").unwrap(), c.plan("pro").unwrap());
    let none = usage(&[]);
    let p0 = Period { label: "x".into(), days: 0 };
    assert_eq!(invoice(pro, &p0, &none, None), Err(PricingError::PeriodDays { days: 0 }));
    let p367 = Period { label: "x".into(), days: 367 };
    assert_eq!(invoice(pro, &p367, &none, None), Err(PricingError::PeriodDays { days: 367 }));
    for day in [0, 31, 40] {
        let change = PlanChange { from: starter, day };
        assert_eq!(
            invoice(pro, &month(), &none, Some(&change)),
            Err(PricingError::ChangeDay { day, days: 31 })
        );
    }
    let mut euro = starter.clone();
    euro.price.currency = Currency::EUR;
    let change = PlanChange { from: &euro, day: 3 };
    assert_eq!(
        invoice(pro, &month(), &none, Some(&change)),
        Err(PricingError::CurrencyMismatch { from: "EUR", to: "USD" })
    );
    let mut yearly = starter.clone();
    yearly.price.interval = Interval::Year;
    let change = PlanChange { from: &yearly, day: 3 };
    assert_eq!(
        invoice(pro, &month(), &none, Some(&change)),
        Err(PricingError::IntervalMismatch { from: Interval::Year, to: Interval::Month })
    );
}

#[test]
fn rounding_is_half_even_to_the_minor_unit() {
    assert_eq!(round(d("2.5"), Currency::JPY).to_string(), "2");
    assert_eq!(round(d("3.5"), Currency::JPY).to_string(), "4");
    assert_eq!(round(d("0.125"), Currency::USD).to_string(), "0.12");
    assert_eq!(round(d("0.135"), Currency::USD).to_string(), "0.14");
    assert_eq!(round(d("1.0005"), Currency::KWD).to_string(), "1.000");
    assert_eq!(round(d("7"), Currency::USD).to_string(), "7.00");
}

#[test]
fn each_aggregation() {
    let events = [
        Event { quantity: 5, id: "a" },
        Event { quantity: 3, id: "b" },
        Event { quantity: 5, id: "a" },
        Event { quantity: 0, id: "c" },
    ];
    // count: 4 events; sum: 5 + 3 + 5 + 0 = 13; max: 5; unique: a, b, c = 3
    assert_eq!(count(&events), Ok(4));
    assert_eq!(sum(&events), Ok(13));
    assert_eq!(max(&events), Ok(5));
    assert_eq!(unique_count(&events), Ok(3));
    assert_eq!(aggregate(Aggregation::Count, &events), Ok(4));
    assert_eq!(aggregate(Aggregation::Sum, &events), Ok(13));
    assert_eq!(aggregate(Aggregation::Max, &events), Ok(5));
    assert_eq!(aggregate(Aggregation::UniqueCount, &events), Ok(3));
    for a in [Aggregation::Count, Aggregation::Sum, Aggregation::Max, Aggregation::UniqueCount] {
        assert_eq!(aggregate(a, &[]), Ok(0), "{a}");
    }
    let big = [Event { quantity: u64::MAX, id: "a" }, Event { quantity: 1, id: "b" }];
    assert_eq!(sum(&big), Err(PricingError::Overflow { what: "sum".into() }));
}

#[test]
fn aggregated_events_feed_an_invoice() {
    // Pro's active_users counts distinct users: 120 events from 60 users -> 60; 10 beyond
    // the 50 included x 4.00 = 40.00; 149 + 40 = 189.00
    let c = catalog();
    let pro = c.plan("pro").unwrap();
    let ids: Vec<String> = (0..120).map(|i| format!("user-{}", i % 60)).collect();
    let events: Vec<Event<'_>> = ids.iter().map(|id| Event { quantity: 1, id }).collect();
    let users = aggregate(pro.pricing["active_users"].aggregation, &events).unwrap();
    assert_eq!(users, 60);
    let i = invoice(pro, &month(), &usage(&[("active_users", users)]), None).unwrap();
    assert_eq!(i.total, d("189.00"));
}

#[test]
fn an_invoice_serialises_amounts_as_strings_and_back() {
    let i = bill("starter", &[("api_calls", 15_015)]);
    let json = serde_json::to_value(&i).unwrap();
    assert_eq!(json["total"], "34.02");
    assert_eq!(json["currency"], "USD");
    assert_eq!(json["lines"][1]["unit_price"], "0.001");
    assert_eq!(json["lines"][1]["kind"], "overage");
    let back: Invoice = serde_json::from_value(json).unwrap();
    assert_eq!(back, i);
}

/// Tiers with increasing bounds and unit prices of 0 to 9.9999 (four decimals).
fn pricing(mode: TierMode) -> impl Strategy<Value = MeterPricing> {
    (0_u64..1_000, prop::collection::vec((1_u64..10_000, 0_i64..100_000), 1..6)).prop_map(
        move |(included, steps)| {
            let mut bound = 0;
            let last = steps.len() - 1;
            let tiers = steps
                .into_iter()
                .enumerate()
                .map(|(i, (step, unit))| {
                    bound += step;
                    Tier { up_to: (i != last).then_some(bound), unit: Decimal::new(unit, 4) }
                })
                .collect();
            MeterPricing { included, mode, tiers, aggregation: Aggregation::Sum }
        },
    )
}

proptest! {
    #[test]
    fn a_graduated_price_is_monotonic_in_quantity(
        p in pricing(TierMode::Graduated), a in 0_u64..100_000, b in 0_u64..100_000,
    ) {
        let (lo, hi) = (a.min(b), a.max(b));
        let (x, y) = (meter_charge(&p, lo).unwrap(), meter_charge(&p, hi).unwrap());
        prop_assert!(x <= y, "{lo} costs {x}, {hi} costs {y}");
        prop_assert!(round(x, Currency::USD) <= round(y, Currency::USD));
    }

    #[test]
    fn a_volume_price_is_every_billable_unit_at_its_tiers_price(
        p in pricing(TierMode::Volume), q in 0_u64..100_000,
    ) {
        // The reference, written out: the units beyond the allowance, all at the unit price
        // of the first tier whose bound holds them (the last tier's otherwise).
        let billable = q.saturating_sub(p.included);
        let tier = p
            .tiers
            .iter()
            .find(|t| t.up_to.is_none_or(|up| billable <= up))
            .unwrap_or_else(|| p.tiers.last().unwrap());
        let want = Decimal::from(billable) * tier.unit;
        prop_assert_eq!(meter_charge(&p, q).unwrap(), want, "{} units", q);
    }
}

#[test]
fn a_yen_plan_rounds_every_line_to_whole_yen() {
    let text = r#"version = "1"
[refusals.quota_exceeded]
status = 429
message = "over"
[plans.basic]
name = "Basic"
price = { amount = "1000", currency = "JPY", interval = "month" }
[plans.team]
name = "Team"
price = { amount = "3000", currency = "JPY", interval = "month" }
[plans.team.pricing.exports]
included = 10
mode = "graduated"
aggregation = "count"
tiers = [{ up_to = 5, unit = "2.5" }, { up_to = "inf", unit = "1.5" }]
"#;
    let c = govern_plans::validate(text, "yen.toml").unwrap();
    let (basic, team) = (c.plan("basic").unwrap(), c.plan("team").unwrap());
    // Basic for 10 days of 31: 1000 x 10 / 31 = 322.58... -> 323; Team for 21 days:
    // 3000 x 21 / 31 = 2032.25... -> 2032; 13 exports, 3 beyond the 10 included, tier 1:
    // 3 x 2.5 = 7.5 -> 8 (half-even: 7 is odd, up to 8); 323 + 2032 + 8 = 2363
    let change = PlanChange { from: basic, day: 10 };
    let i = invoice(team, &month(), &usage(&[("exports", 13)]), Some(&change)).unwrap();
    assert_eq!(amounts(&i), ["323", "2032", "8"]);
    assert_eq!(i.total.to_string(), "2363");
    // 11 exports: 1 x 2.5 = 2.5 -> 2 (half-even: 2 is even); 3000 + 2 = 3002.
    // 16 exports: 5 x 2.5 = 12.5 -> 12; 1 x 1.5 = 1.5 -> 2; 3000 + 12 + 2 = 3014.
    let i = invoice(team, &month(), &usage(&[("exports", 11)]), None).unwrap();
    assert_eq!(amounts(&i), ["3000", "2"]);
    let i = invoice(team, &month(), &usage(&[("exports", 16)]), None).unwrap();
    assert_eq!(amounts(&i), ["3000", "12", "2"]);
    assert_eq!(i.total, d("3014"));
}

#[test]
fn calendar_months_have_their_days() {
    let days = |y, m| Period::month(y, m).unwrap().days;
    assert_eq!(Period::month(2026, 1).unwrap(), Period { label: "2026-01".into(), days: 31 });
    assert_eq!([days(2026, 2), days(2028, 2), days(2100, 2), days(2000, 2)], [28, 29, 28, 29]);
    assert_eq!([days(2026, 4), days(2026, 6), days(2026, 9), days(2026, 11)], [30; 4]);
    assert_eq!(Period::month(2026, 13), Err(PricingError::BadMonth { year: 2026, month: 13 }));
    assert_eq!(Period::month(2026, 0), Err(PricingError::BadMonth { year: 2026, month: 0 }));
    assert_eq!(Period::month(1969, 12), Err(PricingError::BadMonth { year: 1969, month: 12 }));
    // govern-usage's monthly key: months since 1970-01; (2026 - 1970) x 12 + 0 = 672
    assert_eq!(Period::of_month_key(672).unwrap().label, "2026-01");
    assert_eq!(Period::of_month_key(0).unwrap().label, "1970-01");
    assert_eq!(Period::of_month_key(673).unwrap().days, 28);
    assert!(matches!(Period::of_month_key(u64::MAX), Err(PricingError::BadMonth { .. })));
}

#[test]
fn tiers_built_in_code_that_do_not_rise_are_an_error_and_a_bounded_last_tier_takes_the_rest() {
    let tiered = |bounds: &[Option<u64>]| MeterPricing {
        included: 0,
        mode: TierMode::Graduated,
        tiers: bounds.iter().map(|&up_to| Tier { up_to, unit: d("1") }).collect(),
        aggregation: Aggregation::Sum,
    };
    // A second tier whose bound is below the first's: refused, never a panic or a wrap.
    let falling = tiered(&[Some(10), Some(5), None]);
    assert!(matches!(meter_charge(&falling, 20), Err(PricingError::TierOrder { tier: 1, .. })));
    // A last tier with a bound still takes every unit beyond the tiers before it, as a volume
    // price would: 10 at 1 in tier 0, then 90 at 1 in tier 1 (bounded at 20, but the last).
    let bounded_last = tiered(&[Some(10), Some(20)]);
    assert_eq!(meter_charge(&bounded_last, 100).unwrap(), d("100"));
}
