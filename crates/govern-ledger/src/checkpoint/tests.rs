//! Signed checkpoints: round trips, every field tampered with, another key, rewritten,
//! truncated and extended history, a pinned known answer, and the key files.

use ed25519_dalek::VerifyingKey;
use govern_governors::Timestamp;
use govern_receipt::Digest;
use sha2::{Digest as _, Sha256};

use super::{
    Checkpoint, CheckpointError, CheckpointSigner, PUBLIC_KEY_FILE, SECRET_KEY_FILE,
    SignedCheckpoint, key_id, load_public_key, parse_public_key, verify_history,
};
use crate::merkle::{EMPTY_ROOT, MerkleTree};
use crate::text_file::ReadError;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn signer(byte: u8) -> CheckpointSigner {
    CheckpointSigner::from_seed(&[byte; 32])
}

/// A receipt hash standing in for receipt `i` of history `tag`.
fn receipt_hash(tag: &str, i: u64) -> Digest {
    Digest(Sha256::digest(format!("{tag}/{i}")).into())
}

/// A tree of `n` receipts of history `tag`.
fn tree(tag: &str, n: u64) -> MerkleTree {
    let mut t = MerkleTree::new();
    for i in 0..n {
        t.push(receipt_hash(tag, i));
    }
    t
}

fn sample() -> (CheckpointSigner, SignedCheckpoint) {
    let s = signer(7);
    let signed = s.sign(Checkpoint::of_tree(&tree("a", 5), T0));
    (s, signed)
}

fn assert_key_id_mismatch(err: CheckpointError) {
    assert!(matches!(err, CheckpointError::KeyIdMismatch { .. }), "{err:?}");
}

fn assert_bad_signature(err: CheckpointError) {
    assert!(matches!(err, CheckpointError::BadSignature), "{err:?}");
}

#[test]
fn the_signed_message_is_the_documented_bytes() {
    let c = Checkpoint { size: 0, root: EMPTY_ROOT, timestamp: T0 };
    assert_eq!(
        c.signed_message(),
        b"govern.checkpoint.v1\n0\n\
          e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
          1767225600000\n"
    );
    let c = Checkpoint { size: u64::MAX, root: Digest([0xab; 32]), timestamp: Timestamp(7) };
    let expected = format!("govern.checkpoint.v1\n{}\n{}\n7\n", u64::MAX, "ab".repeat(32));
    assert_eq!(c.signed_message(), expected.into_bytes());
}

#[test]
fn sign_verify_and_json_round_trip() {
    let (s, signed) = sample();
    signed.verify(&s.verifying_key()).unwrap();
    assert_eq!(signed.key_id, s.key_id());
    assert_eq!(signed.checkpoint.size, 5);

    let json = signed.to_json();
    let expected = format!(
        r#"{{"size":5,"root":"{}","timestamp_ms":1767225600000,"key_id":"{}","signature":"{}"}}"#,
        signed.checkpoint.root,
        hex::encode(signed.key_id),
        hex::encode(signed.signature),
    );
    assert_eq!(json, expected);
    let back = SignedCheckpoint::from_json(&json).unwrap();
    assert_eq!(back, signed);
    back.verify(&s.verifying_key()).unwrap();
    verify_history(&tree("a", 5), &back, &s.verifying_key()).unwrap();
}

#[test]
fn signing_is_deterministic() {
    let (s, signed) = sample();
    assert_eq!(s.sign(signed.checkpoint), signed);
}

#[test]
fn every_changed_field_fails() {
    let (s, signed) = sample();
    let key = s.verifying_key();

    let mut t = signed;
    t.checkpoint.size += 1;
    assert_bad_signature(t.verify(&key).unwrap_err());

    let mut t = signed;
    t.checkpoint.size -= 1;
    assert_bad_signature(t.verify(&key).unwrap_err());

    let mut t = signed;
    t.checkpoint.root.0[31] ^= 1;
    assert_bad_signature(t.verify(&key).unwrap_err());

    let mut t = signed;
    t.checkpoint.timestamp = t.checkpoint.timestamp.plus_ms(1);
    assert_bad_signature(t.verify(&key).unwrap_err());

    let mut t = signed;
    t.key_id[0] ^= 1;
    let err = t.verify(&key).unwrap_err();
    match err {
        CheckpointError::KeyIdMismatch { expected, found } => {
            assert_eq!(expected, hex::encode(s.key_id()));
            assert_eq!(found, hex::encode(t.key_id));
        }
        other => panic!("expected a key id mismatch, got {other:?}"),
    }

    for i in [0, 31, 32, 63] {
        let mut t = signed;
        t.signature[i] ^= 1;
        assert_bad_signature(t.verify(&key).unwrap_err());
    }
}

#[test]
fn another_key_fails() {
    let (_, signed) = sample();
    let other = signer(8);
    assert_key_id_mismatch(signed.verify(&other.verifying_key()).unwrap_err());
    assert_key_id_mismatch(
        verify_history(&tree("a", 5), &signed, &other.verifying_key()).unwrap_err(),
    );

    // Claiming the other key's id does not help: the signature is not the other key's.
    let mut forged = signed;
    forged.key_id = other.key_id();
    assert_bad_signature(forged.verify(&other.verifying_key()).unwrap_err());

    // Nor does signing with the other key under the first key's id.
    let (s, _) = sample();
    let mut forged = other.sign(signed.checkpoint);
    forged.key_id = s.key_id();
    assert_bad_signature(forged.verify(&s.verifying_key()).unwrap_err());
}

#[test]
fn rewritten_history_is_caught_even_with_every_hash_recomputed() {
    let s = signer(7);
    let key = s.verifying_key();
    let n = 6;
    let signed = s.sign(Checkpoint::of_tree(&tree("a", n), T0));

    // A consistent rewrite: other receipts, every hash and the whole tree recomputed.
    let rewritten = tree("b", n);
    assert_eq!(
        verify_history(&rewritten, &signed, &key).unwrap_err().to_string(),
        CheckpointError::Rewritten { size: n }.to_string()
    );
    assert!(matches!(
        verify_history(&rewritten, &signed, &key),
        Err(CheckpointError::Rewritten { size: 6 })
    ));

    // One receipt changed before the checkpoint, then history grown past it.
    let mut t = MerkleTree::new();
    for i in 0..n + 4 {
        t.push(if i == 2 { receipt_hash("b", i) } else { receipt_hash("a", i) });
    }
    assert!(matches!(
        verify_history(&t, &signed, &key),
        Err(CheckpointError::Rewritten { size: 6 })
    ));
}

#[test]
fn truncated_history_is_caught() {
    let s = signer(7);
    let key = s.verifying_key();
    let signed = s.sign(Checkpoint::of_tree(&tree("a", 6), T0));
    for len in [0, 1, 5] {
        let err = verify_history(&tree("a", len), &signed, &key).unwrap_err();
        assert!(
            matches!(err, CheckpointError::Truncated { checkpoint_size: 6, ledger_size } if ledger_size == len),
            "{err:?}"
        );
    }
}

#[test]
fn extended_history_still_verifies() {
    let s = signer(7);
    let key = s.verifying_key();
    for n in [0, 1, 6, 8] {
        let signed = s.sign(Checkpoint::of_tree(&tree("a", n), T0));
        for grown in [n, n + 1, n + 7, 33] {
            verify_history(&tree("a", grown), &signed, &key).unwrap();
        }
    }
}

#[test]
fn known_answer() {
    // Checked against OpenSSL 3 (`openssl pkeyutl -sign -rawin`) with the same seed and
    // message.
    let s = signer(0x01);
    assert_eq!(s.to_seed_hex(), "01".repeat(32));
    assert_eq!(
        hex::encode(s.verifying_key().as_bytes()),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    assert_eq!(hex::encode(s.key_id()), "34750f98bd59fcfc");
    let signed = s.sign(Checkpoint { size: 3, root: Digest([0xab; 32]), timestamp: T0 });
    assert_eq!(
        hex::encode(signed.signature),
        "3f082511210a9d424a72633e82f7e06d78a7f6e3f8f122cce8bfa6e26bce7ed6\
         9b4424673c0d47f71c9aeb56f2c7ec35623092ee9499646ab48c3726c3f5870f"
    );
    let json = format!(
        r#"{{"size":3,"root":"{}","timestamp_ms":1767225600000,"key_id":"34750f98bd59fcfc","signature":"{}"}}"#,
        "ab".repeat(32),
        hex::encode(signed.signature),
    );
    assert_eq!(signed.to_json(), json);
    let key = parse_public_key("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c")
        .unwrap();
    SignedCheckpoint::from_json(&json).unwrap().verify(&key).unwrap();
}

#[test]
fn seeds_round_trip_through_hex() {
    let s = CheckpointSigner::generate().unwrap();
    let back = CheckpointSigner::from_seed_hex(&s.to_seed_hex()).unwrap();
    assert_eq!(back.verifying_key(), s.verifying_key());
    assert_ne!(CheckpointSigner::generate().unwrap().verifying_key(), s.verifying_key());

    for bad in ["", &"01".repeat(31), &"01".repeat(33), &"AB".repeat(32), &"zz".repeat(32)] {
        assert!(matches!(
            CheckpointSigner::from_seed_hex(bad),
            Err(CheckpointError::InvalidSecretKey)
        ));
    }
    // The debug form shows the key id, not the secret.
    let debug = format!("{s:?}");
    assert!(debug.contains(&hex::encode(s.key_id())));
    assert!(!debug.contains(&s.to_seed_hex()));
}

#[test]
fn bad_json_fields_are_named() {
    let (_, signed) = sample();
    let good = signed.to_json();
    let root = signed.checkpoint.root.to_string();
    let kid = hex::encode(signed.key_id);
    let sig = hex::encode(signed.signature);

    let hex_err = |json: &str| match SignedCheckpoint::from_json(json) {
        Err(CheckpointError::Hex { field, expected, .. }) => (field, expected),
        other => panic!("expected a hex error, got {other:?}"),
    };
    let swap = |from: &str, to: &str| good.replacen(from, to, 1);

    assert_eq!(hex_err(&swap(&root, &root[..62])), ("root", 64));
    assert_eq!(hex_err(&swap(&root, &root.to_uppercase())), ("root", 64));
    assert_eq!(hex_err(&swap(&kid, &format!("{kid}00"))), ("key_id", 16));
    assert_eq!(hex_err(&swap(&kid, "zz5f0f98bd59fcfc")), ("key_id", 16));
    assert_eq!(hex_err(&swap(&sig, &sig[2..])), ("signature", 128));

    for json in [
        String::new(),
        "[]".to_owned(),
        good.replacen(r#""size":5"#, r#""size":-5"#, 1),
        good.replacen(r#""size":5"#, r#""size":"5""#, 1),
        good.replacen(r#""timestamp_ms":1767225600000"#, r#""timestamp_ms":1.5"#, 1),
        good.replacen(r#","signature""#, r#","extra":1,"signature""#, 1),
        good.replacen(&format!(r#","key_id":"{kid}""#), "", 1),
    ] {
        let err = SignedCheckpoint::from_json(&json).unwrap_err();
        assert!(matches!(err, CheckpointError::Json(_)), "{json}: {err:?}");
    }
}

#[test]
fn public_keys_parse_strictly() {
    let key = signer(7).verifying_key();
    let hex_key = hex::encode(key.as_bytes());
    assert_eq!(parse_public_key(&hex_key).unwrap(), key);
    assert!(matches!(
        parse_public_key(&hex_key[2..]),
        Err(CheckpointError::Hex { field: "public key", expected: 64, .. })
    ));
    // The y coordinate 2 is not on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(VerifyingKey::from_bytes(&not_a_point).is_err());
    assert!(matches!(
        parse_public_key(&hex::encode(not_a_point)),
        Err(CheckpointError::InvalidPublicKey)
    ));
}

#[test]
fn key_ids_are_the_first_bytes_of_the_public_key_hash() {
    let key = signer(9).verifying_key();
    let hash = Sha256::digest(key.as_bytes());
    assert_eq!(key_id(&key)[..], hash[..8]);
}

#[test]
fn load_or_generate_creates_the_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let (first, generated) = CheckpointSigner::load_or_generate(dir.path()).unwrap();
    assert!(generated);
    let secret = std::fs::read_to_string(dir.path().join(SECRET_KEY_FILE)).unwrap();
    assert_eq!(secret, format!("{}\n", first.to_seed_hex()));
    let public_path = dir.path().join(PUBLIC_KEY_FILE);
    assert_eq!(load_public_key(&public_path).unwrap(), first.verifying_key());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode =
            std::fs::metadata(dir.path().join(SECRET_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [SECRET_KEY_FILE, PUBLIC_KEY_FILE]);

    let (second, generated) = CheckpointSigner::load_or_generate(dir.path()).unwrap();
    assert!(!generated);
    assert_eq!(second.to_seed_hex(), first.to_seed_hex());

    // A checkpoint signed by the first verifies with the public key file.
    let signed = first.sign(Checkpoint::of_tree(&tree("a", 3), T0));
    verify_history(&tree("a", 4), &signed, &load_public_key(&public_path).unwrap()).unwrap();

    // A missing public key file is written again.
    std::fs::remove_file(&public_path).unwrap();
    let (third, generated) = CheckpointSigner::load_or_generate(dir.path()).unwrap();
    assert!(!generated);
    assert_eq!(load_public_key(&public_path).unwrap(), third.verifying_key());
}

#[test]
fn load_or_generate_refuses_inconsistent_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = CheckpointSigner::load_or_generate(dir.path()).unwrap();
    let public_path = dir.path().join(PUBLIC_KEY_FILE);

    // Another public key.
    let other = hex::encode(signer(3).verifying_key().as_bytes());
    std::fs::write(&public_path, format!("{other}\n")).unwrap();
    assert!(matches!(
        CheckpointSigner::load_or_generate(dir.path()),
        Err(CheckpointError::PublicKeyMismatch { path }) if path == public_path
    ));

    // A public key without its secret key is not replaced.
    std::fs::remove_file(dir.path().join(SECRET_KEY_FILE)).unwrap();
    assert!(matches!(
        CheckpointSigner::load_or_generate(dir.path()),
        Err(CheckpointError::SecretKeyMissing { path }) if path == public_path
    ));
    assert_eq!(std::fs::read_to_string(&public_path).unwrap(), format!("{other}\n"));

    // A damaged secret key.
    std::fs::write(dir.path().join(SECRET_KEY_FILE), "not hex\n").unwrap();
    assert!(matches!(
        CheckpointSigner::load_or_generate(dir.path()),
        Err(CheckpointError::InvalidSecretKey)
    ));
    drop(s);

    // A missing public key file to load.
    assert!(matches!(
        load_public_key(&dir.path().join("nope.pub")),
        Err(CheckpointError::Read { source, .. }) if source.is_not_found()
    ));
}

#[test]
fn load_reads_the_key_pair_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // No key: nothing is generated.
    assert!(matches!(
        CheckpointSigner::load(dir.path()),
        Err(CheckpointError::Read { source, .. }) if source.is_not_found()
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let (s, _) = CheckpointSigner::load_or_generate(dir.path()).unwrap();
    assert_eq!(CheckpointSigner::load(dir.path()).unwrap().to_seed_hex(), s.to_seed_hex());
    // checkpoint.pub may be missing (the secret key holds the public one); it is not written.
    let public_path = dir.path().join(PUBLIC_KEY_FILE);
    std::fs::remove_file(&public_path).unwrap();
    assert_eq!(CheckpointSigner::load(dir.path()).unwrap().to_seed_hex(), s.to_seed_hex());
    assert!(!public_path.exists());
    // Another public key is refused.
    std::fs::write(
        &public_path,
        format!("{}\n", hex::encode(signer(3).verifying_key().as_bytes())),
    )
    .unwrap();
    assert!(matches!(
        CheckpointSigner::load(dir.path()),
        Err(CheckpointError::PublicKeyMismatch { .. })
    ));
    // The secret key file is read with a bound, and exactly as written (hex and a newline).
    let secret_path = dir.path().join(SECRET_KEY_FILE);
    std::fs::write(&secret_path, vec![b'0'; super::KEY_FILE_MAX + 1]).unwrap();
    assert!(matches!(
        CheckpointSigner::load(dir.path()),
        Err(CheckpointError::Read { source: ReadError::TooLarge { .. }, .. })
    ));
    std::fs::write(&secret_path, format!("{}\n\n", s.to_seed_hex())).unwrap();
    assert!(matches!(CheckpointSigner::load(dir.path()), Err(CheckpointError::InvalidSecretKey)));
}

#[test]
fn either_form_verifies_into_a_verified_checkpoint_checked_against_history() {
    let (s, signed) = sample();
    let key = s.verifying_key();
    let json = super::verify_checkpoint_text(&signed.to_json(), &key).unwrap();
    assert_eq!((json.size(), json.root()), (5, tree("a", 5).root()));
    assert_eq!(json.json(), Some(&signed));
    assert_eq!(json.to_json_value()["size"], 5);
    let note = super::verify_checkpoint_text(&s.sign_note(&signed.checkpoint), &key).unwrap();
    assert_eq!((note.size(), note.root()), (json.size(), json.root()));
    assert!(note.to_json_value().is_string());
    for v in [&json, &note] {
        let grown = tree("a", 9);
        v.check_history(grown.len(), |n| grown.root_at(n).ok()).unwrap();
        let other = tree("b", 9);
        assert!(matches!(
            v.check_history(other.len(), |n| other.root_at(n).ok()),
            Err(CheckpointError::Rewritten { size: 5 })
        ));
        assert!(matches!(
            v.check_history(4, |_| None),
            Err(CheckpointError::Truncated { checkpoint_size: 5, ledger_size: 4 })
        ));
    }
    // Another key, and an unknown field, are refused before anything is used.
    assert_key_id_mismatch(
        super::verify_checkpoint_text(&signed.to_json(), &signer(8).verifying_key()).unwrap_err(),
    );
    let extra = signed.to_json().replacen('{', "{\"note\":\"x\",", 1);
    assert!(matches!(super::verify_checkpoint_text(&extra, &key), Err(CheckpointError::Json(_))));
}

#[test]
fn checkpoint_and_key_files_are_read_with_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b' '; super::CHECKPOINT_FILE_MAX + 1]).unwrap();
    assert!(matches!(
        super::read_checkpoint_file(&big),
        Err(CheckpointError::Read {
            source: ReadError::TooLarge { limit: super::CHECKPOINT_FILE_MAX },
            ..
        })
    ));
    assert!(matches!(
        load_public_key(&big),
        Err(CheckpointError::Read {
            source: ReadError::TooLarge { limit: super::KEY_FILE_MAX },
            ..
        })
    ));
    let fine = dir.path().join("fine");
    std::fs::write(&fine, vec![b' '; super::CHECKPOINT_FILE_MAX]).unwrap();
    assert_eq!(super::read_checkpoint_file(&fine).unwrap().len(), super::CHECKPOINT_FILE_MAX);
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_as_a_checkpoint_or_key_file_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for err in
        [super::read_checkpoint_file(&fifo).unwrap_err(), load_public_key(&fifo).unwrap_err()]
    {
        assert!(
            matches!(err, CheckpointError::Read { source: ReadError::NotRegular("a FIFO"), .. }),
            "{err}"
        );
    }
}
