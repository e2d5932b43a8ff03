//! Every route over a loopback socket: who may call it (no key, a wrong, revoked or other
//! tenant's key, an operator's), and what it answers.

use govern_governors::GovernorKind;
use govern_http::Limits;

use super::support::{Server, call, tenant};

/// Every authenticated endpoint, on tenant acme, with a valid body.
const ENDPOINTS: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/v1/tenants", None),
    ("GET", "/v1/tenants/acme", None),
    (
        "POST",
        "/v1/tenants/acme/commands",
        Some(
            r#"{"kind":"subscription","resource":"sub-9","name":"start_trial","args":{"plan":"starter","trial_days":14},"reason":"try"}"#,
        ),
    ),
    ("POST", "/v1/tenants/acme/check", Some(r#"{"feature":"report_builder","action":"create"}"#)),
    (
        "POST",
        "/v1/tenants/acme/usage",
        Some(r#"{"events":[{"meter":"reports","quantity":1,"event_id":"m-1"}]}"#),
    ),
    ("GET", "/v1/tenants/acme/receipts", None),
    ("GET", "/v1/tenants/acme/sla", None),
    ("GET", "/v1/tenants/acme/invoices/2026-01", None),
    ("POST", "/v1/tenants/acme/invoices/2026-01/close", None),
    ("POST", "/v1/billing-runs/2026-01", None),
    ("GET", "/v1/status", None),
    ("GET", "/metrics", None),
];

/// Routes only an operator's key reaches.
const OPERATOR_ONLY: &[&str] = &[
    "/v1/tenants",
    "/v1/tenants/acme/invoices/2026-01/close",
    "/v1/billing-runs/2026-01",
    "/v1/status",
    "/metrics",
];

#[tokio::test]
async fn no_wrong_revoked_or_other_tenants_key_reaches_anything_and_nothing_changes() {
    let server = Server::start(Limits::default()).await;
    let head = server.handle.head();
    let acme = &server.keys.acme;
    let last = if acme.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &acme[..acme.len() - 1]);
    for &(method, path, body) in ENDPOINTS {
        server.call(method, path, None, body).await.is_error(401, "unauthorized");
        server.call(method, path, Some(&wrong), body).await.is_error(401, "unauthorized");
        server.call(method, path, Some("Basic abc"), body).await.is_error(401, "unauthorized");
        let revoked = server.call(method, path, Some(&server.keys.revoked), body).await;
        revoked.is_error(401, "unauthorized");
        let other = server.call(method, path, Some(&server.keys.globex), body).await;
        other.is_error(403, "forbidden");
    }
    assert_eq!(server.handle.head(), head, "no refused request wrote anything");
    server.stop().await;
}

#[tokio::test]
async fn an_operator_reaches_every_route_and_a_tenant_its_own() {
    let server = Server::start(Limits::default()).await;
    for &(method, path, body) in ENDPOINTS {
        let answer = server.call(method, path, Some(&server.keys.operator), body).await;
        if path.contains("/invoices/2026-01/close") || path.starts_with("/v1/billing-runs") {
            // Reached, and refused by the runtime: January has not ended.
            answer.is_error(409, "period_open");
        } else {
            assert_eq!(answer.status, 200, "{method} {path}: {answer:?}");
        }
    }
    for &(method, path, body) in ENDPOINTS {
        let answer = server.call(method, path, Some(&server.keys.acme), body).await;
        if OPERATOR_ONLY.contains(&path) {
            answer.is_error(403, "forbidden");
        } else if path.ends_with("/commands") {
            // The same command again: the trial is under way.
            answer.is_error(409, "invalid_transition");
        } else {
            assert_eq!(answer.status, 200, "{method} {path}: {answer:?}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_operator_provisions_a_tenant_by_commands_and_a_tenant_key_cannot() {
    let server = Server::start(Limits::default()).await;
    let op = Some(server.keys.operator.as_str());
    let provision = r#"{"kind":"tenant","name":"provision_tenant","args":{"storage_gb":10,"compute_units":2,"bandwidth_mbps":100},"reason":"contract"}"#;
    let a = server.call("POST", "/v1/tenants/initech/commands", op, Some(provision)).await;
    assert_eq!((a.status.as_u16(), a.json["to"].as_str()), (200, Some("provisioning")), "{a:?}");
    let activate = r#"{"kind":"tenant","name":"activate_tenant","reason":"go"}"#;
    let a = server.call("POST", "/v1/tenants/initech/commands", op, Some(activate)).await;
    assert_eq!(
        (a.json["from"].as_str(), a.json["to"].as_str()),
        (Some("provisioning"), Some("active"))
    );
    assert_eq!(a.json["seq"], server.handle.head().next_seq - 1, "{a:?}");
    let state = server.call("GET", "/v1/tenants/initech", op, None).await;
    assert_eq!(state.json, serde_json::json!({"tenant": "initech", "state": "active"}));

    // A tenant's key may not move its own tenant governor (a suspended tenant would lift it).
    let head = server.handle.head();
    let suspend = r#"{"kind":"tenant","name":"suspend_tenant","reason":"self"}"#;
    let a = server
        .call("POST", "/v1/tenants/acme/commands", Some(&server.keys.acme), Some(suspend))
        .await;
    a.is_error(403, "forbidden");
    assert_eq!(server.handle.head(), head);
    server.stop().await;
}

#[tokio::test]
async fn a_command_is_receipted_with_its_key_and_an_idempotency_key_replays_its_answer() {
    let server = Server::start(Limits::default()).await;
    let acme = Some(server.keys.acme.as_str());
    let trial = r#"{"kind":"subscription","resource":"sub-2","name":"start_trial","args":{"plan":"starter","trial_days":"7"},"reason":"try"}"#;
    let key = [("idempotency-key", "trial-sub-2")];
    let path = "/v1/tenants/acme/commands";
    let first = call(server.addr, "POST", path, acme, Some(trial), &key).await;
    assert_eq!(first.status, 200, "{first:?}");
    let head = server.handle.head();
    let again = call(server.addr, "POST", path, acme, Some(trial), &key).await;
    assert_eq!(again.json, first.json, "the first answer, replayed");
    assert_eq!(server.handle.head(), head, "and nothing written");
    let other = r#"{"kind":"subscription","resource":"sub-2","name":"activate","reason":"paid"}"#;
    call(server.addr, "POST", path, acme, Some(other), &key)
        .await
        .is_error(422, "idempotency_conflict");

    let receipts = server
        .handle
        .receipts(&tenant("acme"), Some(GovernorKind::Subscription), None)
        .expect("receipts");
    let last = receipts.last().expect("a receipt");
    assert_eq!(last.seq, first.json["seq"]);
    let metadata = &last.body.metadata;
    assert_eq!(metadata.get("idempotency_key").map(String::as_str), Some("trial-sub-2"));
    let key_id = &server.keys.acme[3..11];
    assert_eq!(metadata.get("api_key").map(String::as_str), Some(key_id));

    // The governor's rejection, the runtime's refusal, a bad argument.
    let archive = r#"{"kind":"subscription","resource":"sub-2","name":"archive","reason":"x"}"#;
    server.call("POST", path, acme, Some(archive)).await.is_error(409, "invalid_transition");
    let bad = r#"{"kind":"subscription","resource":"sub-3","name":"start_trial","args":{"plan":"starter","trial_days":0},"reason":"x"}"#;
    server.call("POST", path, acme, Some(bad)).await.is_error(422, "invalid_argument");
    let op = Some(server.keys.operator.as_str());
    let path = "/v1/tenants/nobody/commands";
    server.call("POST", path, op, Some(trial)).await.is_error(404, "unknown_tenant");
    server.stop().await;
}

#[tokio::test]
async fn a_check_answers_allowed_or_the_refusal_with_its_status_and_retry_after() {
    let server = Server::start(Limits::default()).await;
    let acme = Some(server.keys.acme.as_str());
    let check = |feature: &str, quantity: u64| {
        format!(r#"{{"feature":"{feature}","action":"create","quantity":{quantity}}}"#)
    };
    let path = "/v1/tenants/acme/check";
    let ok = server.call("POST", path, acme, Some(&check("report_builder", 1))).await;
    assert_eq!(
        ok.json,
        serde_json::json!({"allowed": true, "decided_by": "plan_feature:report_builder"})
    );
    // On a higher plan only: 402; on none: 403.
    server
        .call("POST", path, acme, Some(&check("forecast", 1)))
        .await
        .is_error(402, "plan_upgrade_required");
    server
        .call("POST", path, acme, Some(&check("teleport", 1)))
        .await
        .is_error(403, "not_entitled");
    // Over the month's 10 reports: 429, and Retry-After until the month resets, as the
    // runtime's own check says.
    let over = server.call("POST", path, acme, Some(&check("report_builder", 11))).await;
    over.is_error(429, "quota_exceeded");
    let decision =
        server.handle.check(&tenant("acme"), "report_builder", "create", 11).expect("check");
    let refusal = decision.refusal().expect("refused");
    let secs = refusal.retry_after_secs.expect("a retry-after");
    assert_eq!(over.json["error"]["retry_after"], secs);
    assert_eq!(over.headers["retry-after"].to_str().expect("ascii"), secs.to_string());
    assert_eq!(over.json["error"]["decided_by"], refusal.decided_by.to_string());
    // Five requests a second on starter: the sixth in a burst is rate limited.
    let mut limited = None;
    for _ in 0..20 {
        let a = server.call("POST", path, acme, Some(&check("export_pdf", 1))).await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    let limited = limited.expect("rate limited within 20 checks");
    limited.is_error(429, "rate_limited");
    let header = limited.headers["retry-after"].to_str().expect("ascii").to_owned();
    assert_eq!(limited.json["error"]["retry_after"].to_string(), header);

    let op = Some(server.keys.operator.as_str());
    let unknown = server.call("POST", "/v1/tenants/nobody/check", op, Some(&check("x", 1))).await;
    unknown.is_error(404, "unknown_tenant");
    server.stop().await;
}

#[tokio::test]
async fn usage_is_counted_once_per_event_with_a_result_for_each() {
    let server = Server::start(Limits::default()).await;
    let acme = Some(server.keys.acme.as_str());
    let path = "/v1/tenants/acme/usage";
    let body = r#"{"events":[
        {"meter":"reports","quantity":7,"event_id":"e1"},
        {"meter":"reports","quantity":1,"event_id":"e2"},
        {"meter":"reports","quantity":1,"event_id":"e1"},
        {"meter":"nonsense","quantity":1,"event_id":"e3"},
        {"meter":"reports","quantity":0,"event_id":"e4"}]}"#;
    let a = server.call("POST", path, acme, Some(body)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        (&a.json["counted"], &a.json["duplicates"], &a.json["refused"]),
        (&2.into(), &1.into(), &2.into())
    );
    let outcomes: Vec<&str> = a.json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, ["counted", "counted", "duplicate", "refused", "refused"]);
    assert_eq!(a.json["results"][1]["value"], 8);
    assert_eq!(a.json["results"][1]["crossed"], serde_json::json!(["warning"]));
    assert_eq!(a.json["results"][1]["limit"], 10);
    // Sent again: every event a duplicate, nothing written.
    let head = server.handle.head();
    let again = server.call("POST", path, acme, Some(body)).await;
    assert_eq!((&again.json["counted"], &again.json["duplicates"]), (&0.into(), &3.into()));
    assert_eq!(server.handle.head(), head);

    let many: Vec<String> = (0..=govern_http::limits::USAGE_EVENTS_PER_REQUEST_MAX)
        .map(|i| format!(r#"{{"meter":"reports","quantity":1,"event_id":"b{i}"}}"#))
        .collect();
    let many = format!(r#"{{"events":[{}]}}"#, many.join(","));
    server.call("POST", path, acme, Some(&many)).await.is_error(400, "bad_request");
    assert_eq!(server.handle.head(), head);
    server.stop().await;
}

#[tokio::test]
async fn receipts_page_as_a_change_feed_of_the_tenants_own() {
    let server = Server::start(Limits::default()).await;
    let acme = Some(server.keys.acme.as_str());
    let expected: Vec<u64> = server
        .handle
        .receipts(&tenant("acme"), None, None)
        .expect("receipts")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert!(expected.len() >= 3, "{expected:?}");
    let mut seen = Vec::new();
    let mut after: Option<u64> = None;
    for _ in 0..=expected.len() {
        let path = match after {
            Some(a) => format!("/v1/tenants/acme/receipts?limit=2&after={a}"),
            None => "/v1/tenants/acme/receipts?limit=2".to_owned(),
        };
        let page = server.call("GET", &path, acme, None).await;
        assert_eq!(page.status, 200, "{page:?}");
        for r in page.json["receipts"].as_array().expect("receipts") {
            assert_eq!(r["tenant_id"], "acme");
            assert_eq!(r["hash"].as_str().map(str::len), Some(64));
            seen.push(r["seq"].as_u64().expect("seq"));
        }
        after = page.json["next"].as_u64();
        if page.json["caught_up"] == true {
            break;
        }
    }
    assert_eq!(seen, expected);
    for bad in ["limit=0", "limit=5000", "after=abc", "colour=red"] {
        let path = format!("/v1/tenants/acme/receipts?{bad}");
        server.call("GET", &path, acme, None).await.is_error(400, "bad_request");
    }
    let op = Some(server.keys.operator.as_str());
    server
        .call("GET", "/v1/tenants/nobody/receipts", op, None)
        .await
        .is_error(404, "unknown_tenant");
    server.call("GET", "/v1/tenants/nobody", op, None).await.is_error(404, "unknown_tenant");
    server.call("GET", "/v1/tenants/Not%20an%20id", op, None).await.is_error(400, "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn an_operator_lists_the_tenants_a_page_at_a_time() {
    let server = Server::start(Limits::default()).await;
    let op = Some(server.keys.operator.as_str());
    let all = server.call("GET", "/v1/tenants", op, None).await;
    assert_eq!(
        all.json,
        serde_json::json!({"tenants": [{"tenant": "acme", "state": "active"}, {"tenant": "globex", "state": "active"}], "next": null})
    );
    let first = server.call("GET", "/v1/tenants?limit=1", op, None).await;
    assert_eq!(
        (first.json["tenants"][0]["tenant"].as_str(), first.json["next"].as_str()),
        (Some("acme"), Some("acme"))
    );
    let acme = Some(server.keys.acme.as_str());
    server.call("GET", "/v1/tenants?limit=0", acme, None).await.is_error(403, "forbidden");
    server.call("GET", "/v1/tenants?limit=0", op, None).await.is_error(400, "bad_request");
    let second = server.call("GET", "/v1/tenants?limit=1&after=acme", op, None).await;
    assert_eq!(
        (second.json["tenants"][0]["tenant"].as_str(), &second.json["next"]),
        (Some("globex"), &serde_json::Value::Null)
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_answer_the_exposition_text_to_an_operator_after_a_command() {
    let server = Server::start(Limits::default()).await;
    let command = r#"{"kind":"subscription","resource":"sub-9","name":"start_trial","args":{"plan":"starter","trial_days":14},"reason":"try"}"#;
    let posted = server
        .call("POST", "/v1/tenants/acme/commands", Some(&server.keys.acme), Some(command))
        .await;
    assert_eq!(posted.status, 200, "{posted:?}");
    server
        .call("POST", "/v1/tenants/acme/commands", Some(&server.keys.acme), Some(command))
        .await
        .is_error(409, "invalid_transition");

    let answer = server.call("GET", "/metrics", Some(&server.keys.operator), None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = &answer.text;
    // The setup's 2 × (provision, activate) and the one command over HTTP (the setup's
    // subscriptions are 2 × 2 more).
    let line = |series: &str| {
        text.lines()
            .find(|l| l.starts_with(series))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };
    assert_eq!(
        line(r#"govern_commands_total{governor="subscription",outcome="accepted"}"#).as_deref(),
        Some("5"),
        "{text}"
    );
    assert_eq!(
        line(r#"govern_commands_total{governor="tenant",outcome="accepted"}"#).as_deref(),
        Some("4"),
        "{text}"
    );
    assert_eq!(line(r#"govern_command_refusals_total{governor="subscription",outcome="rejected",code="invalid_transition"}"#).as_deref(), Some("1"), "{text}");
    assert!(text.contains("# TYPE govern_commands_total counter"), "{text}");
    // One latency per subscription command: the 4 of the setup, the 2 over HTTP.
    assert_eq!(
        line(r#"govern_command_duration_seconds_count{governor="subscription"}"#).as_deref(),
        Some("6"),
        "{text}"
    );
    // The routes' own, by pattern: the tenant's id is nowhere.
    assert!(text.contains(r#"govern_http_requests_total{route="/v1/tenants/{tenant}/commands",method="POST",status="2xx"} 1"#), "{text}");
    assert!(!text.contains("acme"), "{text}");

    // Operators only.
    server.call("GET", "/metrics", Some(&server.keys.acme), None).await.is_error(403, "forbidden");
    server.call("GET", "/metrics", None, None).await.is_error(401, "unauthorized");
    server.stop().await;
}
