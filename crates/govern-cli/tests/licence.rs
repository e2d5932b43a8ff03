//! `govern licence` as an issuer and a verifier run it: keygen writes private files, issue
//! prints a token that verify accepts (exit 0, the licence as JSON); expired, not yet valid,
//! tampered, wrong-key and malformed tokens exit 1, each with its own message; a token of
//! the old key verifies while both keys are given (rotation); --catalog refuses what the
//! catalog does not name.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};

#[path = "support/govern.rs"]
mod support;
use support::{fails_with, govern, s, text};

/// Runs `govern licence keygen` and returns the secret key file's path.
fn keygen(dir: &Path, alg: &str, kid: &str) -> PathBuf {
    let out = dir.join(format!("{kid}.key"));
    let run = govern(&["licence", "keygen", "--alg", alg, "--kid", kid, "--out", s(&out)]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    out
}

/// Runs `govern licence issue` with `extra` arguments and returns the token.
fn issue(key: &Path, extra: &[&str]) -> String {
    let mut args =
        vec!["licence", "issue", "--key", s(key), "--tenant", "acme", "--plan", "professional"];
    args.extend_from_slice(extra);
    let run = govern(&args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let token = text(&run.stdout);
    assert_eq!(token.lines().count(), 1, "one line: {token}");
    token.trim().to_owned()
}

fn verify(token: &str, keys: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut args = vec!["licence", "verify", token];
    for k in keys {
        args.extend(["--key", s(k)]);
    }
    args.extend_from_slice(extra);
    govern(&args)
}

fn public(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

#[test]
fn keygen_issue_verify_with_both_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let ed = keygen(dir.path(), "ed25519", "ed-2026");
    let hs = keygen(dir.path(), "hmac", "hs-2026");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&ed), mode(&hs), mode(&public(&ed))), (0o600, 0o600, 0o644));
    }
    assert!(!public(&hs).exists(), "an HMAC key has no public half");
    assert!(
        text(&std::fs::read(public(&ed)).unwrap()).starts_with("govlic-public1 ed25519 ed-2026 ")
    );

    let extra = [
        "--feature",
        "sso",
        "--feature",
        "audit_log",
        "--limit",
        "projects=100",
        "--seats",
        "25",
        "--licence-id",
        "lic-7",
        "--not-before",
        "2026-01-01",
        "--expires",
        "2027-01-01T00:00:00Z",
    ];
    for (key, verifier, alg) in [(&ed, public(&ed), "ed25519"), (&hs, hs.clone(), "hs256")] {
        let token = issue(key, &extra);
        assert!(token.starts_with(&format!("govlic1.{alg}.")), "{token}");
        let out = verify(&token, &[&verifier], &["--at", "2026-06-01"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let kid = key.file_stem().unwrap().to_str().unwrap();
        assert_eq!(json["kid"], kid);
        assert_eq!(json["alg"], alg);
        assert_eq!(json["licence_id"], "lic-7");
        assert_eq!(json["tenant"], "acme");
        assert_eq!(json["plan"], "professional");
        assert_eq!(json["features"], serde_json::json!(["audit_log", "sso"]));
        assert_eq!(json["limits"], serde_json::json!({"projects": 100}));
        assert_eq!(json["seats"], 25);
        assert_eq!(
            (json["not_before"].as_u64(), json["expires_at"].as_u64()),
            (Some(1_767_225_600), Some(1_798_761_600))
        );
    }
    // The secret file of an Ed25519 key verifies too; a token file works like the argument.
    let token = issue(&ed, &["--days", "30"]);
    let file = dir.path().join("acme.lic");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let out = govern(&["licence", "verify", "--token-file", s(&file), "--key", s(&ed)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Only a regular file is read as a token or a key (a directory, or a FIFO, never waited on).
    let out = govern(&["licence", "verify", "--token-file", s(dir.path()), "--key", s(&ed)]);
    fails_with(&out, "not a regular file");
    // keygen never overwrites, and leaves no temporary file (it writes one, then links it).
    let before = std::fs::read(&hs).unwrap();
    let again = govern(&["licence", "keygen", "--alg", "hmac", "--kid", "x", "--out", s(&hs)]);
    fails_with(&again, "exists");
    assert_eq!(std::fs::read(&hs).unwrap(), before, "the key is not overwritten");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn each_refusal_exits_1_with_its_own_message() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "ed25519", "current");
    let other = keygen(dir.path(), "ed25519", "other");
    let pubkey = public(&key);
    let window = ["--not-before", "2026-01-01", "--expires", "2027-01-01"];
    let token = issue(&key, &window);

    let expired = verify(&token, &[&pubkey], &["--at", "2027-01-01"]);
    fails_with(
        &expired,
        "licence refused (expired): expired at 2027-01-01T00:00:00Z, checked at 2027-01-01T00:00:00Z",
    );
    let early = verify(&token, &[&pubkey], &["--at", "2025-12-31T23:59:59Z"]);
    fails_with(&early, "licence refused (not_yet_valid): not valid before 2026-01-01T00:00:00Z");

    // One character of the payload changed.
    let mut bytes = token.clone().into_bytes();
    let at = token.rfind('.').unwrap() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = verify(&String::from_utf8(bytes).unwrap(), &[&pubkey], &["--at", "2026-06-01"]);
    fails_with(&tampered, "licence refused (bad_signature)");

    let wrong_key = verify(&token, &[&public(&other)], &["--at", "2026-06-01"]);
    fails_with(
        &wrong_key,
        "licence refused (unknown_key): licence signed with unknown key \"current\"",
    );
    // Another key under the same id: the signature does not match.
    let impostor = dir.path().join("impostor");
    std::fs::create_dir(&impostor).unwrap();
    let same_kid = keygen(&impostor, "ed25519", "current");
    fails_with(
        &verify(&token, &[&public(&same_kid)], &["--at", "2026-06-01"]),
        "licence refused (bad_signature)",
    );
    let hmac_same_kid = keygen(&impostor, "hmac", "current2");
    let renamed = std::fs::read_to_string(&hmac_same_kid).unwrap().replace("current2", "current");
    let renamed_path = impostor.join("renamed.key");
    std::fs::write(&renamed_path, renamed).unwrap();
    fails_with(
        &verify(&token, &[&renamed_path], &["--at", "2026-06-01"]),
        "licence refused (wrong_algorithm)",
    );

    let malformed = verify("govlic1.ed25519.current.not-a-token", &[&pubkey], &[]);
    fails_with(
        &malformed,
        "licence refused (malformed): malformed licence token at byte 35: 4 dot-separated parts",
    );

    let stderrs: Vec<String> = [&expired, &early, &tampered, &wrong_key, &malformed]
        .iter()
        .map(|o| {
            assert_eq!(text(&o.stdout), "", "nothing on stdout when refused");
            text(&o.stderr)
        })
        .collect();
    let mut unique = stderrs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stderrs.len(), "distinct messages: {stderrs:?}");
}

#[test]
fn rotation_a_token_of_the_old_key_verifies_while_both_keys_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let old = keygen(dir.path(), "hmac", "2025");
    let new = keygen(dir.path(), "ed25519", "2026");
    let old_token = issue(&old, &["--days", "400"]);
    let new_token = issue(&new, &["--days", "400"]);
    for token in [&old_token, &new_token] {
        let out = verify(token, &[&public(&new), &old], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // The old key retired: its tokens are refused, the new key's still verify.
    fails_with(&verify(&old_token, &[&public(&new)], &[]), "unknown_key");
    assert_eq!(verify(&new_token, &[&public(&new)], &[]).status.code(), Some(0));
    // Two files with one key id are a mistake, not a rotation.
    fails_with(
        &verify(&new_token, &[&public(&new), &new], &[]),
        "two --key files have the key id 2026",
    );
}

#[test]
fn issue_with_a_catalog_refuses_a_plan_or_feature_it_does_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "ed25519", "k");
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans/licensing.toml");
    let catalog = s(&catalog);
    let base = [
        "licence",
        "issue",
        "--key",
        s(&key),
        "--tenant",
        "acme",
        "--days",
        "30",
        "--catalog",
        catalog,
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        govern(&args)
    };
    let ok = run(&["--plan", "professional", "--feature", "sso"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    fails_with(
        &run(&["--plan", "platinum"]),
        "the catalog has no plan \"platinum\" (its plans: community, enterprise, professional)",
    );
    fails_with(
        &run(&["--plan", "professional", "--feature", "teleport"]),
        "the catalog has no feature \"teleport\"",
    );
    assert_eq!(text(&run(&["--plan", "platinum"]).stdout), "", "no token printed");
}

#[test]
fn bad_inputs_to_issue_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "ed25519", "k");
    let args = |extra: &[&str]| {
        let mut a = vec!["licence", "issue", "--key", s(&key), "--tenant", "acme", "--plan", "p"];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        govern(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    fails_with(&run(&["--days", "1", "--feature", "a b"]), "cannot issue: features \"a b\"");
    fails_with(
        &run(&["--not-before", "2027-01-01", "--expires", "2026-01-01"]),
        "cannot issue: not_before",
    );
    fails_with(
        &run(&["--days", "1", "--limit", "x=1", "--limit", "x=2"]),
        "a --limit is given twice",
    );
    let pubkey = public(&key);
    let from_public = govern(&[
        "licence",
        "issue",
        "--key",
        s(&pubkey),
        "--tenant",
        "a",
        "--plan",
        "p",
        "--days",
        "1",
    ]);
    fails_with(&from_public, "a public key verifies, it cannot issue");
    // Neither --expires nor --days: clap refuses (exit 2).
    assert_eq!(run(&[]).status.code(), Some(2));
}
