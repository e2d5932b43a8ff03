//! `POST /v1/tenants/{tenant}/plan-change:simulate|apply`: the dry run's gates as JSON, an
//! applied upgrade with its receipt, a downgrade refused 409 with the dry run, and who may ask.

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
    a.is_error(409, "plan_change_refused");
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
