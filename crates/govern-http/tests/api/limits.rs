//! Bad input and slow clients get a clear answer in the error shape, or a closed connection,
//! within a bound, and change nothing; shutdown lets the request in hand finish, within a
//! bound.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use govern_http::Limits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};

use super::support::{ANSWER_WITHIN, Server, call, serve};

/// Short limits, so that the tests of timeouts are fast.
fn short() -> Limits {
    Limits {
        body_bytes_max: 4 * 1024,
        request_timeout: Duration::from_millis(400),
        header_read_timeout: Duration::from_millis(300),
        connections_max: 8,
        drain_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn bad_json_missing_fields_and_oversized_bodies_are_4xx_in_the_error_shape() {
    let server = Server::start(short()).await;
    let head = server.handle.head();
    let acme = Some(server.keys.acme.as_str());
    let path = "/v1/tenants/acme/commands";
    let a = server.call("POST", path, acme, Some("{ not json")).await;
    a.is_error(400, "bad_request");
    let a = server
        .call("POST", path, acme, Some(r#"{"kind":"subscription","resource":"s","name":"pause"}"#))
        .await;
    a.is_error(400, "bad_request");
    assert!(
        a.json["error"]["message"].as_str().unwrap_or("").contains("missing field `reason`"),
        "{a:?}"
    );
    let a = server
        .call(
            "POST",
            path,
            acme,
            Some(r#"{"kind":"x","resource":"s","name":"pause","reason":"r","extra":1}"#),
        )
        .await;
    assert!(
        a.json["error"]["message"].as_str().unwrap_or("").contains("unknown field `extra`"),
        "{a:?}"
    );
    let a = server
        .call(
            "POST",
            path,
            acme,
            Some(r#"{"kind":"wizard","resource":"s","name":"pause","reason":"r"}"#),
        )
        .await;
    a.is_error(400, "bad_request");
    let a = server
        .call(
            "POST",
            "/v1/tenants/acme/check",
            acme,
            Some(r#"{"feature":"x","action":"y","quantity":-1}"#),
        )
        .await;
    a.is_error(400, "bad_request");
    let a = call(server.addr, "POST", path, acme, None, &[("content-type", "text/plain")]).await;
    a.is_error(415, "unsupported_media_type");
    let big = format!(r#"{{"events":[],"pad":"{}"}}"#, "x".repeat(8 * 1024));
    server
        .call("POST", "/v1/tenants/acme/usage", acme, Some(&big))
        .await
        .is_error(413, "payload_too_large");
    let reason = "r".repeat(600);
    let long = format!(
        r#"{{"kind":"subscription","resource":"sub-1","name":"pause","reason":"{reason}"}}"#
    );
    server.call("POST", path, acme, Some(&long)).await.is_error(422, "invalid_argument");
    let bad_key = [("idempotency-key", "   ")];
    let pause = r#"{"kind":"subscription","resource":"sub-1","name":"pause","reason":"r"}"#;
    call(server.addr, "POST", path, acme, Some(pause), &bad_key).await.is_error(400, "bad_request");
    assert_eq!(server.handle.head(), head, "nothing was written");
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_404_and_405_in_the_error_shape() {
    let server = Server::start(short()).await;
    server.call("GET", "/nope", None, None).await.is_error(404, "no_route");
    server.call("GET", "/v1/tenants/acme/nothing", None, None).await.is_error(404, "no_route");
    server.call("DELETE", "/v1/tenants", None, None).await.is_error(405, "method_not_allowed");
    server
        .call("GET", "/v1/tenants/acme/check", None, None)
        .await
        .is_error(405, "method_not_allowed");
    let health = server.call("GET", "/health", None, None).await;
    assert_eq!((health.status.as_u16(), &health.json["status"]), (200, &"ok".into()));
    let ready = server.call("GET", "/ready", None, None).await;
    assert_eq!((ready.status.as_u16(), &ready.json["status"]), (200, &"ready".into()));
    server.stop().await;
}

/// Reads what the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, stream.read_to_end(&mut got)).await;
    read.expect("the server closed the connection in time").expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_client_that_sends_half_its_headers_is_cut_off_at_the_header_timeout() {
    let server = Server::start(short()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let got = read_to_close(&mut stream).await;
    assert!(!got.contains("200 OK"), "no answer to half a request: {got}");
    // A client that sends nothing at all is cut off the same way.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let got = read_to_close(&mut silent).await;
    assert!(!got.contains("200 OK"), "{got}");
    // A kept-alive connection that goes quiet after a request is closed the same way.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let got = read_to_close(&mut idle).await;
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    // And the server still answers others.
    assert_eq!(server.call("GET", "/health", None, None).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn beyond_the_connection_bound_a_client_waits_for_a_slot() {
    let limits = Limits { connections_max: 1, ..short() };
    let server = Server::start(limits).await;
    // A silent client holds the only slot until the header timeout closes it.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let began = tokio::time::Instant::now();
    let answer = server.call("GET", "/health", None, None).await;
    let waited = began.elapsed();
    assert_eq!(answer.status, 200);
    assert!(waited >= limits.header_read_timeout / 2, "answered after {waited:?}, with no slot");
    // By then the silent client had been closed.
    let got = read_to_close(&mut silent).await;
    assert!(got.is_empty(), "{got}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_half_its_body_gets_408_at_the_request_timeout() {
    let server = Server::start(short()).await;
    let head = server.handle.head();
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let request = format!(
        "POST /v1/tenants/acme/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"feature\":",
        server.keys.acme
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let got = read_to_close(&mut stream).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains(r#""code":"request_timeout""#), "{got}");
    assert_eq!(server.handle.head(), head);
    server.stop().await;
}

/// A router whose `/slow` tells when it has a request in hand, and answers when let go.
fn slow_router(started: oneshot::Sender<()>, release: Arc<Notify>) -> Router {
    let started = Arc::new(std::sync::Mutex::new(Some(started)));
    Router::new().route(
        "/slow",
        get(move || {
            let started = started.lock().expect("lock").take();
            let release = Arc::clone(&release);
            async move {
                if let Some(started) = started {
                    let _ = started.send(());
                }
                release.notified().await;
                "done"
            }
        }),
    )
}

/// `GET /slow` on a connection of its own; the status, or the error when the connection
/// closes first.
fn slow_request(
    addr: std::net::SocketAddr,
) -> tokio::task::JoinHandle<Result<hyper::StatusCode, hyper::Error>> {
    tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        let request = hyper::Request::get("/slow").header("host", "x").body(String::new());
        sender.send_request(request.expect("request")).await.map(|r| r.status())
    })
}

#[tokio::test]
async fn shutdown_lets_the_request_in_hand_finish_then_stops() {
    let (started_tx, started) = oneshot::channel();
    let release = Arc::new(Notify::new());
    let (addr, stop, served) = serve(slow_router(started_tx, Arc::clone(&release)), short()).await;
    let client = slow_request(addr);
    started.await.expect("the request is in hand");
    stop.send(()).expect("the server runs");
    // Shutdown waits for the request; let it finish.
    release.notify_one();
    let status = client.await.expect("client").expect("answered");
    assert_eq!(status, 200);
    let stopped = tokio::time::timeout(ANSWER_WITHIN, served).await.expect("stopped in time");
    assert_eq!(stopped.expect("task").expect("serve").closed_at_drain_timeout, 0);
    assert!(TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn shutdown_closes_what_is_still_open_at_the_drain_timeout() {
    let (started_tx, started) = oneshot::channel();
    let release = Arc::new(Notify::new());
    let limits = Limits { drain_timeout: Duration::from_millis(200), ..short() };
    let (addr, stop, served) = serve(slow_router(started_tx, release), limits).await;
    let client = slow_request(addr);
    started.await.expect("the request is in hand");
    stop.send(()).expect("the server runs");
    let stopped = tokio::time::timeout(ANSWER_WITHIN, served).await.expect("stopped in time");
    assert_eq!(stopped.expect("task").expect("serve").closed_at_drain_timeout, 1);
    let answer = tokio::time::timeout(ANSWER_WITHIN, client).await.expect("in time");
    assert!(answer.expect("client").is_err(), "the client saw its connection closed");
}
