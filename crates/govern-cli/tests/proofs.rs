//! Proofs and checkpoints as a user and an outside auditor meet them: `prove` and `export`
//! use a checkpoint only after verifying it against the ledger, `--public-key` takes a file,
//! `prove --consistency` links a saved checkpoint to the current one, `verify --export`
//! checks a tenant's export without the data directory (against the export's checkpoint or
//! an older saved one), and the runtime publishes its checkpoints as C2SP signed notes too.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use govern_governors::Timestamp;
use govern_ledger::checkpoint::{Checkpoint, CheckpointSigner};

fn govern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_govern")).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A data directory with `n` receipts (bench ledger: receipt i is tenant i % 16's) and a
/// checkpoint signed at `n`.
fn ledger(n: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out =
        govern(&["bench", "ledger", "--receipts", &n.to_string(), "--data-dir", s(dir.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

/// The tour scenario's data directory (12 receipts: acme 8, globex 4), in `parent`.
fn tour(parent: &Path) -> PathBuf {
    let dir = parent.join("tour");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/tour.toml");
    let out = govern(&["run", "--data-dir", s(&dir), s(&file)]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    dir
}

/// Signs, with the data directory's own key, a checkpoint of its first `size` receipts and
/// writes it to `to` (an older checkpoint an auditor saved earlier).
fn sign_at(dir: &Path, size: u64, to: &Path) {
    let report = govern_ledger::verify::verify_dir(dir).unwrap();
    let (signer, generated) = CheckpointSigner::load_or_generate(dir).unwrap();
    assert!(!generated);
    let checkpoint = Checkpoint {
        size,
        root: report.tree.root_at(size).unwrap(),
        timestamp: Timestamp(1_767_225_600_000),
    };
    std::fs::write(to, signer.sign(checkpoint).to_json()).unwrap();
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_str(&text(&out.stdout)).unwrap()
}

fn digest(v: &serde_json::Value) -> govern_receipt::Digest {
    v.as_str().unwrap().parse().unwrap()
}

fn fails_with(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

#[test]
fn prove_and_export_refuse_a_checkpoint_of_another_ledger() {
    let ours = ledger(33);
    // Another history: bench ledgers are deterministic, the tour is not one of them.
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tour(tmp.path());
    std::fs::copy(theirs.join("checkpoint.json"), ours.path().join("checkpoint.json")).unwrap();
    // Signed by another key than DATA_DIR/checkpoint.pub.
    let prove = govern(&["prove", s(ours.path()), "--seq", "5"]);
    fails_with(&prove, "key id mismatch");
    assert!(prove.stdout.is_empty(), "nothing printed: {}", text(&prove.stdout));
    let export = govern(&["export", s(ours.path()), "--tenant", "tenant-0003", "--with-proofs"]);
    fails_with(&export, "key id mismatch");
    assert!(export.stdout.is_empty());
    // Signed by the key the directory names, but of another history.
    std::fs::copy(theirs.join("checkpoint.pub"), ours.path().join("checkpoint.pub")).unwrap();
    fails_with(&govern(&["prove", s(ours.path()), "--seq", "5"]), "history rewritten");
    fails_with(
        &govern(&["export", s(ours.path()), "--tenant", "tenant-0003", "--with-proofs"]),
        "history rewritten",
    );
    // Without --with-proofs the export prints no checkpoint and needs none.
    let plain = govern(&["export", s(ours.path()), "--tenant", "tenant-0003"]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
}

#[test]
fn public_key_options_take_a_file_holding_the_key_in_hex() {
    for command in ["verify", "prove", "export"] {
        let help = text(&govern(&[command, "--help"]).stdout);
        assert!(help.contains("a file holding the public key in hex"), "{command}: {help}");
        assert!(!help.contains("as hex"), "{command}: {help}");
    }
    let ours = ledger(10);
    let theirs = ledger(10);
    let other_key = theirs.path().join("checkpoint.pub");
    let own_key = ours.path().join("checkpoint.pub");
    fails_with(
        &govern(&["verify", s(ours.path()), "--public-key", s(&other_key)]),
        "key id mismatch",
    );
    fails_with(
        &govern(&["prove", s(ours.path()), "--seq", "3", "--public-key", s(&other_key)]),
        "key id mismatch",
    );
    // Exactly what checkpoint.pub holds (hex and a newline), or the hex alone.
    assert!(
        govern(&["prove", s(ours.path()), "--seq", "3", "--public-key", s(&own_key)])
            .status
            .success()
    );
    let bare = ours.path().join("bare.pub");
    let hex = std::fs::read_to_string(&own_key).unwrap();
    std::fs::write(&bare, hex.trim_end()).unwrap();
    assert!(govern(&["verify", s(ours.path()), "--public-key", s(&bare)]).status.success());
    // Anything else is named as such.
    std::fs::write(&bare, hex.to_uppercase()).unwrap();
    fails_with(&govern(&["verify", s(ours.path()), "--public-key", s(&bare)]), "public key");
}

#[test]
fn prove_consistency_links_a_saved_checkpoint_to_the_current_one() {
    let dir = ledger(40);
    let old = dir.path().join("old.json");
    sign_at(dir.path(), 17, &old);
    let v = json(&govern(&["prove", s(dir.path()), "--consistency", s(&old)]));
    assert_eq!(v["old_checkpoint"]["size"], 17);
    assert_eq!(v["checkpoint"]["size"], 40);
    let p = &v["consistency_proof"];
    assert_eq!(p["first_size"], 17);
    assert_eq!(p["second_size"], 40);
    assert_eq!(p["first_root"], v["old_checkpoint"]["root"]);
    assert_eq!(p["second_root"], v["checkpoint"]["root"]);
    let hashes: Vec<_> = p["hashes"].as_array().unwrap().iter().map(digest).collect();
    let (first, second) = (digest(&p["first_root"]), digest(&p["second_root"]));
    govern_ledger::verify_consistency(17, 40, &first, &second, &hashes).unwrap();
    // A saved checkpoint of another ledger is refused.
    let other = ledger(17);
    fails_with(
        &govern(&[
            "prove",
            s(dir.path()),
            "--consistency",
            s(&other.path().join("checkpoint.json")),
        ]),
        "key id mismatch",
    );
    // `govern checkpoint` signs older tree heads with the directory's key, in either form;
    // a note is printed back as a string.
    let out = govern(&["checkpoint", s(dir.path()), "--size", "9", "--note"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let note = dir.path().join("old.note");
    std::fs::write(&note, &out.stdout).unwrap();
    let v = json(&govern(&["prove", s(dir.path()), "--consistency", s(&note)]));
    assert_eq!(v["old_checkpoint"], text(&out.stdout));
    assert_eq!(v["consistency_proof"]["first_size"], 9);
    // It refuses to sign over a history its latest checkpoint contradicts.
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tour(tmp.path());
    std::fs::copy(theirs.join("checkpoint.json"), dir.path().join("checkpoint.json")).unwrap();
    fails_with(&govern(&["checkpoint", s(dir.path())]), "key id mismatch");
    // --seq and --consistency exclude each other.
    let both = govern(&["prove", s(dir.path()), "--seq", "1", "--consistency", s(&old)]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn verify_export_checks_a_tenant_s_export_against_saved_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tour(tmp.path());
    let key = dir.join("checkpoint.pub");
    let current = dir.join("checkpoint.json");
    let old = tmp.path().join("old.json");
    sign_at(&dir, 5, &old);
    let export = |extra: &[&str]| {
        let mut args = vec!["export", s(&dir), "--tenant", "acme", "--with-proofs"];
        args.extend_from_slice(extra);
        let out = govern(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let with_consistency = tmp.path().join("acme.jsonl");
    std::fs::write(&with_consistency, export(&["--consistency-from", s(&old)])).unwrap();
    let verify = |file: &Path, checkpoint: &Path| {
        govern(&[
            "verify",
            "--export",
            s(file),
            "--checkpoint",
            s(checkpoint),
            "--public-key",
            s(&key),
        ])
    };
    // Against the checkpoint the proofs were made with.
    let out = verify(&with_consistency, &current);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("8 receipts of tenant acme"), "{stdout}");
    assert!(stdout.contains("8 covered"), "{stdout}");
    // Against an older saved checkpoint, through the consistency proof the export carries:
    // acme's receipts 0, 1 and 4 are below size 5, the other five are newer.
    let out = verify(&with_consistency, &old);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("3 covered"), "{stdout}");
    assert!(stdout.contains("5 newer than the checkpoint"), "{stdout}");
    assert!(stdout.contains("consistency proof verified"), "{stdout}");
    // Without that proof, the message says how to get one.
    let without = tmp.path().join("plain.jsonl");
    std::fs::write(&without, export(&[])).unwrap();
    fails_with(&verify(&without, &old), "--consistency-from");
    // Another key.
    let other = ledger(3);
    let out = govern(&[
        "verify",
        "--export",
        s(&with_consistency),
        "--checkpoint",
        s(&current),
        "--public-key",
        s(&other.path().join("checkpoint.pub")),
    ]);
    fails_with(&out, "key id mismatch");
    // A changed reason is caught at its receipt; so is a dropped one (resource_seq).
    let lines: Vec<String> =
        std::fs::read_to_string(&with_consistency).unwrap().lines().map(str::to_owned).collect();
    let tampered = tmp.path().join("tampered.jsonl");
    let mut changed = lines.clone();
    changed[3] = changed[3].replace("self-serve sign-up", "self-serve sign-up!");
    assert_ne!(changed, lines);
    std::fs::write(&tampered, changed.join("\n") + "\n").unwrap();
    fails_with(&verify(&tampered, &current), "receipt 4");
    let mut dropped = lines.clone();
    dropped.remove(1);
    std::fs::write(&tampered, dropped.join("\n") + "\n").unwrap();
    fails_with(&verify(&tampered, &current), "resource_seq");
    // A checkpoint newer than the export's: the export cannot be linked to it.
    let older_export = tmp.path().join("older.jsonl");
    sign_at(&dir, 6, &dir.join("checkpoint.json"));
    std::fs::write(&older_export, export(&[])).unwrap();
    let newer = tmp.path().join("newer.json");
    sign_at(&dir, 12, &newer);
    fails_with(&verify(&older_export, &newer), "newer than the export");
    // Receipts past the export's checkpoint carry no proof and are reported, not failed.
    let out = verify(&older_export, &dir.join("checkpoint.json"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("not covered"), "{}", text(&out.stdout));
}

#[test]
fn the_runtime_publishes_each_checkpoint_as_a_c2sp_signed_note_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tour(tmp.path());
    let note = std::fs::read_to_string(dir.join("checkpoint.note")).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("checkpoint.json")).unwrap())
            .unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 5, "{note}");
    let key_id = json["key_id"].as_str().unwrap();
    assert_eq!(lines[0], format!("govern/{key_id}"));
    assert_eq!(lines[1], "12");
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with(&format!("\u{2014} govern/{key_id} ")), "{note}");
    // govern verify takes it as --checkpoint, and refuses it changed.
    let out = govern(&["verify", s(&dir), "--checkpoint", s(&dir.join("checkpoint.note"))]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("(size 12) signature and history verified"));
    let changed = tmp.path().join("changed.note");
    std::fs::write(&changed, note.replacen("\n12\n", "\n11\n", 1)).unwrap();
    fails_with(&govern(&["verify", s(&dir), "--checkpoint", s(&changed)]), "signature");
}

#[test]
fn a_flipped_bit_anywhere_in_an_export_fails_its_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tour(tmp.path());
    let old = tmp.path().join("old.json");
    sign_at(&dir, 5, &old);
    let out = govern(&[
        "export",
        s(&dir),
        "--tenant",
        "globex",
        "--with-proofs",
        "--consistency-from",
        s(&old),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export = out.stdout;
    let file = tmp.path().join("export.jsonl");
    let key = dir.join("checkpoint.pub");
    let verify = || {
        govern(&["verify", "--export", s(&file), "--public-key", s(&key), "--checkpoint", s(&old)])
    };
    std::fs::write(&file, &export).unwrap();
    assert!(verify().status.success(), "{}", text(&verify().stderr));
    // Every 97th byte (a prime step: lines, fields and proofs are all hit somewhere).
    for at in (0..export.len()).step_by(97) {
        let mut flipped = export.clone();
        flipped[at] ^= 0x01;
        std::fs::write(&file, &flipped).unwrap();
        let out = verify();
        assert_eq!(out.status.code(), Some(1), "byte {at} flipped passed: {}", text(&out.stdout));
    }
}
