//! `govern serve` and `govern keys` as a user runs them: keys created, listed and revoked on
//! the command line; the server started on a free port answers /health and the API with
//! those keys, sees a revocation at once, and on SIGTERM drains and exits 0 with a ledger
//! that `govern verify` accepts (its checkpoint signed at shutdown).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/http.rs"]
mod http;
#[path = "support/govern.rs"]
mod support;
use support::{govern, s, text};

/// Every wait of this test (the address printed, an answer, the exit) is bounded by this.
const WITHIN: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request on its own connection: the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> =
        auth.as_deref().map(|a| ("Authorization", a)).into_iter().collect();
    let r = http::request(addr, method, path, &headers, body, WITHIN).unwrap();
    (r.status, r.body)
}

/// Waits for the child to exit, at most [`WITHIN`].
fn wait(mut child: Child) -> (ExitStatus, String) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let mut rest = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut rest);
        }
        let _ = tx.send((status, rest));
    });
    let (status, rest) = rx.recv_timeout(WITHIN).expect("govern serve exits in time");
    (status.unwrap(), rest)
}

#[test]
fn serve_answers_with_keys_and_stops_on_sigterm_with_a_verified_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let d = s(dir.path());
    let created =
        govern(&["keys", "create", "--data-dir", d, "--scope", "operator", "--label", "ops"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let operator = text(&created.stdout).trim().to_owned();
    assert!(operator.starts_with("gk_"), "{operator}");
    let created = govern(&["keys", "create", "--data-dir", d, "--scope", "tenant:acme"]);
    let acme = text(&created.stdout).trim().to_owned();
    let bad = govern(&["keys", "create", "--data-dir", d, "--scope", "everyone"]);
    assert_eq!(bad.status.code(), Some(2), "clap refuses a bad scope");

    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/plans/pricing.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_govern"))
        .args(["serve", "--data-dir", d, "--catalog", catalog, "--addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let _ = tx.send(line);
        stdout
    });
    let line = rx.recv_timeout(WITHIN).expect("the address is printed");
    let addr: SocketAddr =
        line.trim().strip_prefix("listening on http://").expect(&line).parse().unwrap();
    child.stdout = Some(reader.join().unwrap().into_inner());

    assert_eq!(http(addr, "GET", "/health", None, "").0, 200);
    assert_eq!(http(addr, "GET", "/v1/tenants", None, "").0, 401);
    let provision = r#"{"kind":"tenant","name":"provision_tenant","args":{"storage_gb":10,"compute_units":2,"bandwidth_mbps":100},"reason":"contract"}"#;
    let (status, body) =
        http(addr, "POST", "/v1/tenants/acme/commands", Some(&operator), provision);
    assert_eq!(status, 200, "{body}");
    let activate = r#"{"kind":"tenant","name":"activate_tenant","reason":"go"}"#;
    assert_eq!(http(addr, "POST", "/v1/tenants/acme/commands", Some(&operator), activate).0, 200);
    let (status, body) = http(addr, "GET", "/v1/tenants/acme", Some(&acme), "");
    assert_eq!((status, body.as_str()), (200, r#"{"tenant":"acme","state":"active"}"#));

    // Revoked on the command line: refused at the next request.
    let acme_id = &acme[3..11];
    let revoked = govern(&["keys", "revoke", acme_id, "--data-dir", d]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert_eq!(http(addr, "GET", "/v1/tenants/acme", Some(&acme), "").0, 401);
    let list = text(&govern(&["keys", "list", "--data-dir", d]).stdout);
    assert!(list.contains("tenant:acme") && list.contains("2 keys"), "{list}");
    assert!(!list.contains(&operator[12..]), "no token is listed: {list}");

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let (status, rest) = wait(child);
    assert!(status.success(), "exit status {status:?}");
    assert!(rest.contains("stopped: 2 receipts"), "{rest}");

    let verify = govern(&["verify", d]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let out = text(&verify.stdout);
    assert!(out.contains("ok: 2 receipts"), "{out}");
    assert!(
        out.contains("signature and history verified"),
        "the checkpoint signed at shutdown: {out}"
    );
}

#[test]
fn keys_list_and_revoke_need_the_data_directory_and_create_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("govrn");
    for args in [
        vec!["keys", "list", "--data-dir", s(&missing)],
        vec!["keys", "revoke", "0badc0de", "--data-dir", s(&missing)],
    ] {
        let out = govern(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains("is not a directory"), "{}", text(&out.stderr));
        assert!(!missing.exists(), "{args:?} created the directory");
    }
    // `create` makes it.
    let out = govern(&["keys", "create", "--data-dir", s(&missing), "--scope", "operator"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(missing.join("api-keys.json").is_file());
}
