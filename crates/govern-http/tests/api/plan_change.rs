//! `POST /v1/tenants/{tenant}/plan-change:simulate|apply`: the dry run's gates as JSON, an
//! applied upgrade with its receipt, a downgrade refused 409 with the dry run, who may ask,
//! and each refusal's status: the path's 422/409/403, a gate's 409 (over the cooldown), the
//! cooldown's 429 with `Retry-After`.

use govern_http::Limits;

use super::support::Server;

#[tokio::test]
async fn a_plan_change_is_simulated_applied_and_refused_through_the_api() {
    let server = Server::start(Limits::default()).await;
    let acme = Some(server.keys.acme.as_str());
    let simulate = "/v1/tenants/acme/plan-change:simulate";
    let apply = "/v1/tenants/acme/plan-change:apply";

    let before = server.handle.head();
    let a = server.call("POST", simulate, acme, Some(r#"{"to":"pro"}"#)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        (&a.json["from"], &a.json["kind"], &a.json["allowed"]),
        (&"starter".into(), &"upgrade".into(), &true.into())
    );
    assert_eq!(a.json["gates"].as_array().unwrap().len(), 5, "{a:?}");
    assert_eq!(a.json["gates"][4]["gate"], "resource_availability");
    // Simulating writes nothing; another tenant's key does not reach acme.
    assert_eq!(server.handle.head(), before);
    let other =
        server.call("POST", simulate, Some(&server.keys.globex), Some(r#"{"to":"pro"}"#)).await;
    assert_eq!(other.status, 403, "{other:?}");
    let bad = server.call("POST", simulate, acme, Some(r#"{"to":"pro","when":"now"}"#)).await;
    assert_eq!(bad.status, 400, "{bad:?}");

    let a = server
        .call("POST", apply, acme, Some(r#"{"to":"pro","subscription":"sub-1","reason":"grow"}"#))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.json["receipt"].is_u64(), "{a:?}");
    assert_eq!(server.handle.meter_usage(&super::support::tenant("acme")).plans, ["pro"]);

    // 10 seats in use: back to Starter (5 seats) is refused, naming the limit.
    let usage = r#"{"events":[{"meter":"seats","quantity":10,"event_id":"s1"}]}"#;
    assert_eq!(server.call("POST", "/v1/tenants/acme/usage", acme, Some(usage)).await.status, 200);
    let head = server.handle.head();
    let a = server.call("POST", apply, acme, Some(r#"{"to":"starter"}"#)).await;
    a.is_error(409, "plan_change_gate_failed");
    assert_eq!(a.json["error"]["decided_by"], "gate:resource_availability", "{a:?}");
    assert!(a.headers.get("retry-after").is_none(), "{a:?}");
    assert!(
        a.json["error"]["message"].as_str().unwrap().contains("seats usage 10 > limit 5"),
        "{a:?}"
    );
    assert_eq!(a.json["simulation"]["kind"], "downgrade");
    assert_eq!(a.json["simulation"]["overages"][0]["meter"], "seats");
    assert_eq!(server.handle.head(), head, "a refused change writes nothing");
    // The plan in force: refused naming the rule.
    let a = server.call("POST", simulate, acme, Some(r#"{"to":"pro"}"#)).await;
    assert_eq!(a.json["path_refusal"], "the tenant is already on `pro`", "{a:?}");
    server.stop().await;
}

/// 14 days, Pro's upgrade path's cooldown in examples/plans/pricing.toml.
const PRO_COOLDOWN_MS: u64 = 14 * 86_400_000;

#[tokio::test]
async fn each_plan_change_refusal_has_its_status_and_a_cooldown_says_when_to_retry() {
    let server = Server::start(Limits::default()).await;
    let acme = Some(server.keys.acme.as_str());
    let apply = "/v1/tenants/acme/plan-change:apply";
    let head = server.handle.head();

    // The path: a plan the catalog lacks, the plan in force, a step skipped.
    for (to, status, code) in [
        ("nope", 422, "unknown_plan"),
        ("starter", 409, "same_plan"),
        ("pricing-enterprise", 403, "no_upgrade_path"),
    ] {
        let a = server.call("POST", apply, acme, Some(&format!(r#"{{"to":"{to}"}}"#))).await;
        a.is_error(status, code);
        assert_eq!(a.json["error"]["decided_by"], "path", "{a:?}");
        assert!(a.json["simulation"]["path_refusal"].is_string(), "{a:?}");
        assert!(a.headers.get("retry-after").is_none() && a.json.get("retry_after_ms").is_none());
    }
    assert_eq!(server.handle.head(), head, "a refused change writes nothing");

    let a = server.call("POST", apply, acme, Some(r#"{"to":"pro"}"#)).await;
    assert_eq!(a.status, 200, "{a:?}");

    // Enterprise requires evidence and Pro's path has a cooldown: the failing gate decides
    // (waiting would not help), with no Retry-After; the dry run still shows the cooldown.
    let a = server.call("POST", apply, acme, Some(r#"{"to":"pricing-enterprise"}"#)).await;
    a.is_error(409, "plan_change_gate_failed");
    assert_eq!(a.json["error"]["decided_by"], "gate:certification_valid", "{a:?}");
    assert!(a.headers.get("retry-after").is_none() && a.json.get("retry_after_ms").is_none());
    assert!(a.json["simulation"]["cooldown"]["until_ms"].is_u64(), "{a:?}");
    let message = a.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("upgrade_cooldown") && message.contains("certification_valid"));

    // A compliant audit: only the cooldown refuses now, with the catalog's status (429) and
    // the time left, in seconds rounded up and in ms.
    let operator = Some(server.keys.operator.as_str());
    for (name, args) in
        [("start_audit", r#"{"domain":"soc2"}"#), ("begin_review", "{}"), ("mark_compliant", "{}")]
    {
        let body = format!(
            r#"{{"kind":"compliance","resource":"soc2","name":"{name}","args":{args},"reason":"audit"}}"#
        );
        let c = server.call("POST", "/v1/tenants/acme/commands", operator, Some(&body)).await;
        assert_eq!(c.status, 200, "{c:?}");
    }
    let head = server.handle.head();
    let a = server.call("POST", apply, acme, Some(r#"{"to":"pricing-enterprise"}"#)).await;
    a.is_error(429, "upgrade_cooldown");
    assert_eq!(a.json["error"]["decided_by"], "cooldown", "{a:?}");
    let left_ms = a.json["retry_after_ms"].as_u64().expect("retry_after_ms");
    let until_ms = a.json["simulation"]["cooldown"]["until_ms"].as_u64().expect("until_ms");
    let changed_ms =
        a.json["simulation"]["cooldown"]["plan_changed_at_ms"].as_u64().expect("changed");
    assert_eq!(until_ms, changed_ms + PRO_COOLDOWN_MS);
    // Counted from the dry run's now, which is after the change and within this test.
    assert!(left_ms < PRO_COOLDOWN_MS && left_ms > PRO_COOLDOWN_MS - 60_000, "{left_ms}");
    let header = a.headers.get("retry-after").and_then(|v| v.to_str().ok());
    let seconds = left_ms.div_ceil(1_000);
    assert_eq!(header, Some(seconds.to_string().as_str()), "{a:?}");
    assert_eq!(a.json["error"]["retry_after"], seconds, "{a:?}");
    assert_eq!(server.handle.head(), head, "a refused change writes nothing");

    // The dry run is not a refusal: 200, whatever it says.
    let simulate = "/v1/tenants/acme/plan-change:simulate";
    let a = server.call("POST", simulate, acme, Some(r#"{"to":"pricing-enterprise"}"#)).await;
    assert_eq!((a.status.as_u16(), &a.json["allowed"]), (200, &false.into()), "{a:?}");
    server.stop().await;
}
