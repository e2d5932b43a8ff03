//! Proofs and checkpoints as a user and an outside auditor meet them: `prove` and `export`
//! use a checkpoint only after verifying it against the ledger, `--public-key` takes a file,
//! `prove --consistency` links a saved checkpoint to the current one, `verify --export`
//! checks a tenant's export without the data directory (against the export's checkpoint or
//! an older saved one), and the runtime publishes its checkpoints as C2SP signed notes too.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "support/govern.rs"]
mod support;
use support::{digest, fails_with, govern, ledger, s, text, tour_ledger as tour};

/// Signs, with `govern checkpoint` (the data directory's own key), a checkpoint of its first
/// `size` receipts and writes it to `to` (an older checkpoint an auditor saved earlier).
fn sign_at(dir: &Path, size: u64, to: &Path) {
    let out = govern(&["checkpoint", s(dir), "--size", &size.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(to, &out.stdout).unwrap();
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_str(&text(&out.stdout)).unwrap()
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
    // Receipts past the export's checkpoint carry no proof and are reported, not failed:
    // acme's receipts 6, 7, 8 and 9 are past size 6.
    let out = verify(&older_export, &dir.join("checkpoint.json"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("4 covered by the checkpoint"), "{stdout}");
    assert!(stdout.contains("; 4 not covered"), "{stdout}");
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

#[test]
fn a_directory_with_only_its_signed_note_is_proved_against_the_note() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tour(tmp.path());
    let note = std::fs::read_to_string(dir.join("checkpoint.note")).unwrap();
    let old = tmp.path().join("old.json");
    sign_at(&dir, 5, &old);
    std::fs::remove_file(dir.join("checkpoint.json")).unwrap();
    // verify, prove (both modes) and export all take checkpoint.note as the latest.
    let out = govern(&["verify", s(&dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("checkpoint.note (size 12) signature and history verified"));
    let v = json(&govern(&["prove", s(&dir), "--seq", "3"]));
    assert_eq!(v["checkpoint"], note.as_str());
    assert_eq!(v["inclusion_proof"]["tree_size"], 12);
    let v = json(&govern(&["prove", s(&dir), "--consistency", s(&old)]));
    assert_eq!(v["checkpoint"], note.as_str());
    assert_eq!(v["consistency_proof"]["second_size"], 12);
    let out = govern(&["export", s(&dir), "--tenant", "acme", "--with-proofs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("note:"), "{}", text(&out.stderr));
    let export = text(&out.stdout);
    let header: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(header["checkpoint"], serde_json::Value::Null);
    assert_eq!(header["checkpoint_note"], note.as_str());
    assert_eq!(header["tree_size"], 12);
    let file = tmp.path().join("acme.jsonl");
    std::fs::write(&file, &export).unwrap();
    let key = dir.join("checkpoint.pub");
    let out = govern(&["verify", "--export", s(&file), "--public-key", s(&key)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("the export's own (size 12)"), "{stdout}");
    assert!(stdout.contains("signed note verified"), "{stdout}");
    // A note one tree head behind checkpoint.json (a crash between the two renames) is left
    // out of the export, and the message names both files.
    sign_at(&dir, 12, &dir.join("checkpoint.json"));
    let behind = govern(&["checkpoint", s(&dir), "--size", "7", "--note"]);
    assert!(behind.status.success(), "{}", text(&behind.stderr));
    std::fs::write(dir.join("checkpoint.note"), &behind.stdout).unwrap();
    let out = govern(&["export", s(&dir), "--tenant", "acme", "--with-proofs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("checkpoint.note (size 7) is not of the tree head of")
            && stderr.contains("checkpoint.json (size 12)"),
        "{stderr}"
    );
    let header: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(header["checkpoint"]["size"], 12);
    assert_eq!(header["checkpoint_note"], serde_json::Value::Null);
}

#[test]
fn checkpoint_signs_with_the_secret_key_alone_and_refuses_a_foreign_public_key() {
    let dir = ledger(10);
    let public = dir.path().join("checkpoint.pub");
    let saved = std::fs::read(&public).unwrap();
    // checkpoint.pub is not needed: the secret key holds the public key; nothing is written.
    std::fs::remove_file(&public).unwrap();
    let v = json(&govern(&["checkpoint", s(dir.path()), "--size", "4"]));
    assert_eq!(v["size"], 4);
    assert!(!public.exists());
    // A checkpoint.pub that is not the secret key's is refused.
    std::fs::copy(ledger(3).path().join("checkpoint.pub"), &public).unwrap();
    fails_with(&govern(&["checkpoint", s(dir.path())]), "does not hold the public key");
    std::fs::write(&public, saved).unwrap();
    fails_with(&govern(&["checkpoint", s(dir.path()), "--size", "11"]), "holds only 10 receipts");
}

#[cfg(unix)]
#[test]
fn a_fifo_given_as_a_checkpoint_or_key_is_refused_without_blocking() {
    let dir = ledger(5);
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for args in [
        vec!["verify", s(dir.path()), "--checkpoint", s(&fifo)],
        vec!["verify", s(dir.path()), "--public-key", s(&fifo)],
        vec!["prove", s(dir.path()), "--consistency", s(&fifo)],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_govern"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // At most 30 s (in 20 ms steps) for what takes milliseconds unless it blocks.
        let mut polls = 0;
        while child.try_wait().unwrap().is_none() {
            polls += 1;
            if polls > 1500 {
                child.kill().unwrap();
                panic!("{args:?} blocked on the FIFO");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        fails_with(&child.wait_with_output().unwrap(), "not a regular file: it is a FIFO");
    }
}

/// The acme export of the tour with a saved checkpoint at 5, and a function that verifies a
/// changed copy of it.
fn acme_export(tmp: &Path) -> (PathBuf, String, impl Fn(&str) -> Output) {
    let dir = tour(tmp);
    let out = govern(&["export", s(&dir), "--tenant", "acme", "--with-proofs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export = text(&out.stdout);
    let file = tmp.join("changed.jsonl");
    let key = dir.join("checkpoint.pub");
    let verify = move |changed: &str| {
        std::fs::write(&file, changed).unwrap();
        govern(&["verify", "--export", s(&file), "--public-key", s(&key)])
    };
    assert!(verify(&export).status.success());
    (dir, export, verify)
}

#[test]
fn verify_export_names_what_is_wrong_in_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, export, verify) = acme_export(tmp.path());
    // A misspelt or unknown field is named (in a receipt line, and in the end line).
    fails_with(
        &verify(&export.replacen("\"inclusion_proof\"", "\"inclusion_prof\"", 1)),
        "inclusion_prof",
    );
    let end = "{\"end\":\"govern.export.v1\",\"receipts\":8}";
    assert!(export.contains(end), "{export}");
    fails_with(
        &verify(&export.replace(end, "{\"end\":\"govern.export.v1\",\"receipts\":8,\"x\":1}")),
        "unknown field `x`",
    );
    // The end line: another format, another count, each said as such.
    fails_with(
        &verify(&export.replace(end, "{\"end\":\"govern.export.v2\",\"receipts\":8}")),
        "the end line names format \"govern.export.v2\"",
    );
    fails_with(
        &verify(&export.replace(end, "{\"end\":\"govern.export.v1\",\"receipts\":7}")),
        "the end line counts 7 receipts, the export holds 8",
    );
    // args keys out of bytewise order: the same hash, but not the canonical JSON view.
    let sorted = "\"args\":{\"plan\":\"pro\",\"trial_days\":\"14\"}";
    assert!(export.contains(sorted), "{export}");
    fails_with(
        &verify(&export.replace(sorted, "\"args\":{\"trial_days\":\"14\",\"plan\":\"pro\"}")),
        "bytewise order",
    );
}

#[test]
fn verify_export_says_whether_the_header_s_note_differs_in_size_or_in_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, export, verify) = acme_export(tmp.path());
    let note = std::fs::read_to_string(dir.join("checkpoint.note")).unwrap();
    let quoted = serde_json::to_string(&note).unwrap();
    assert!(export.contains(&quoted));
    // A note of size 7 signed by the same key.
    let older = govern(&["checkpoint", s(&dir), "--size", "7", "--note"]);
    assert!(older.status.success(), "{}", text(&older.stderr));
    let older = serde_json::to_string(&text(&older.stdout)).unwrap();
    fails_with(
        &verify(&export.replacen(&quoted, &older, 1)),
        "the header's checkpoint_note is of size 7, the export's tree of size 12",
    );
    // A note of size 12 of another history, signed by the same key.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let bench = ledger(12);
    std::fs::rename(bench.path().join("segments"), other.join("segments")).unwrap();
    for name in ["checkpoint.key", "checkpoint.pub"] {
        std::fs::copy(dir.join(name), other.join(name)).unwrap();
    }
    let forged = govern(&["checkpoint", s(&other), "--note"]);
    assert!(forged.status.success(), "{}", text(&forged.stderr));
    let forged = serde_json::to_string(&text(&forged.stdout)).unwrap();
    fails_with(
        &verify(&export.replacen(&quoted, &forged, 1)),
        "the header's checkpoint_note has another root than the export's tree (both of size 12)",
    );
}
