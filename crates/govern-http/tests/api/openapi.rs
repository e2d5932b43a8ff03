//! The OpenAPI document against the routes: every path and method it names answers on a
//! live server (not the fallback's 404 `no_route` or a 405), and every route the crate's
//! sources declare (`.route("…"`) is in it.

use std::path::Path;

use govern_http::Limits;

use super::support::Server;

fn document() -> serde_json::Value {
    serde_json::from_str(govern_http::openapi::DOCUMENT).expect("the document is JSON")
}

/// Every `.route("PATH"` in the `.rs` files under `dir`, outside comments (a doc example
/// routes a host's paths, not ours), unit-test files (`tests.rs`, `tests/`) and `node.rs`
/// (a node's own edge, in front of this API: its `/v1/cluster` is documented in
/// docs/scaling.md, and its tenant routes are this document's).
fn routes_in(dir: &Path, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() && name != "tests" {
            routes_in(&path, found);
        } else if name.ends_with(".rs") && name != "tests.rs" && name != "node.rs" {
            let text = std::fs::read_to_string(&path).expect("read");
            let code: Vec<&str> =
                text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            for piece in code.join("\n").split(".route(").skip(1) {
                let piece = piece.trim_start();
                if let Some(rest) = piece.strip_prefix('"')
                    && let Some(end) = rest.find('"')
                {
                    found.push((rest[..end].to_owned(), path.display().to_string()));
                }
            }
        }
    }
}

#[test]
fn every_route_in_the_sources_is_in_the_document() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let mut found = Vec::new();
    routes_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
    assert!(found.len() >= 9, "the scan finds the routes: {found:?}");
    let missing: Vec<String> = found
        .iter()
        .filter(|(route, _)| !paths.contains_key(route))
        .map(|(route, file)| format!("{route} ({file})"))
        .collect();
    assert!(missing.is_empty(), "routes missing from src/openapi.json: {missing:?}");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
}

#[tokio::test]
async fn every_path_and_method_of_the_document_answers() {
    let server = Server::start(Limits::default()).await;
    let doc = document();
    let served = server.call("GET", "/openapi.json", None, None).await;
    assert_eq!(served.json, doc, "the document served is the one in the sources");
    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = path.replace("{tenant}", "acme");
        for method in methods.iter().filter(|m| item.get(**m).is_some()) {
            let body = (*method == "post").then_some("{}");
            let answer = server.call(&method.to_uppercase(), &concrete, None, body).await;
            let fallback =
                answer.status == 405 || (answer.status == 404 && answer.code() == "no_route");
            assert!(!fallback, "{method} {path} is in the document but not routed: {answer:?}");
            tried += 1;
        }
    }
    assert!(tried >= 9, "{tried} operations tried");
    server.stop().await;
}
