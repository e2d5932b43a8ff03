//! `GET /v1/tenants/{tenant}/sla` over loopback: the status of a tenant on `starter`, the
//! tenant routes measured into it (refused keys not counted), and 404 `no_envelope` for a
//! tenant with no plan.

use govern_http::Limits;

use super::support::{Server, tenant};

#[tokio::test]
async fn the_sla_route_reports_the_envelope_and_counts_the_tenants_requests() {
    let server = Server::start(Limits::default()).await;
    let acme = server.keys.acme.clone();
    let first = server.call("GET", "/v1/tenants/acme/sla", Some(&acme), None).await;
    assert_eq!(first.status.as_u16(), 200, "{first:?}");
    let j = &first.json;
    assert_eq!(j["tenant"], "acme");
    assert_eq!(j["compliance"], "no_data");
    assert_eq!(
        j["promise"],
        serde_json::json!({ "throughput_rps": 5, "p99_latency_ms": 800, "error_rate_max": "0.01" })
    );
    assert_eq!(j["violations"], serde_json::json!([]));
    assert_eq!(
        (j["window"]["requests"].as_u64(), j["window"]["window_ms"].as_u64()),
        (Some(0), Some(60_000))
    );
    assert_eq!(j["trend"]["p99_latency"], "unknown");

    // Three reads of acme, and two refused calls that are not acme's traffic.
    for _ in 0..3 {
        let r = server.call("GET", "/v1/tenants/acme", Some(&acme), None).await;
        assert_eq!(r.status.as_u16(), 200);
    }
    server
        .call("GET", "/v1/tenants/acme", Some(&server.keys.globex), None)
        .await
        .is_error(403, "forbidden");
    server.call("GET", "/v1/tenants/acme", None, None).await.is_error(401, "unauthorized");
    let second = server.call("GET", "/v1/tenants/acme/sla", Some(&acme), None).await;
    let j = &second.json;
    // The first status read and the three reads; in the bucket filling now, or judged into
    // the window if a 10 s boundary passed meanwhile.
    let counted =
        j["filling"]["requests"].as_u64().unwrap() + j["window"]["requests"].as_u64().unwrap();
    assert_eq!(counted, 4, "{j}");
    assert_eq!(j["filling"]["errors"], 0);

    // A tenant with no plan has no envelope to be held to.
    let bare = tenant("bare");
    let quota = govern_governors::tenant::ResourceQuota {
        storage_gb: 1,
        compute_units: 1,
        bandwidth_mbps: 1,
    };
    server.handle.provision_tenant(&bare, quota, "onboarding").await.unwrap();
    let op = server.keys.operator.clone();
    server.call("GET", "/v1/tenants/bare/sla", Some(&op), None).await.is_error(404, "no_envelope");
    server
        .call("GET", "/v1/tenants/nobody/sla", Some(&op), None)
        .await
        .is_error(404, "unknown_tenant");
    server.stop().await;
}
