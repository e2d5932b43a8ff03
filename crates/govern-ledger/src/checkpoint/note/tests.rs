//! Signed notes against the format's published examples: the signed-note example of
//! c2sp.org (its verifier key and note), the tlog-checkpoint example (parsed by the rules),
//! Go's `golang.org/x/mod/sumdb/note` tests (a signature reproduced byte for byte from its
//! published secret key, verified with its verifier keys, its malformed notes refused) and
//! `sumdb/tlog`'s tree-head text; then govern's own notes: round trip, key id by the
//! formula, a pinned known answer, tampering, another key, extension lines, bad origins.

use base64ct::{Base64, Encoding as _};
use ed25519_dalek::SigningKey;
use govern_receipt::Digest;
use sha2::{Digest as _, Sha256};

use super::{
    Note, check_key_name, check_origin, checkpoint_text, note_key_id, parse_checkpoint_text,
    parse_verifier_key, sign_note, verifier_key,
};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointSigner, verify_checkpoint_text};
use crate::merkle::{EMPTY_ROOT, leaf_hash_bytes};

/// c2sp.org/signed-note, "Verifier keys", "Example".
const C2SP_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const C2SP_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// c2sp.org/tlog-checkpoint's example (its key is not published).
const C2SP_CHECKPOINT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

/// golang.org/x/mod/sumdb/note/note_test.go.
const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/// golang.org/x/mod/sumdb/tlog/note_test.go: the tree head of 123456789012 records whose
/// root is `RecordHash("hello world")` (an RFC 6962 leaf hash).
const GO_TREE: &str =
    "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";

#[test]
fn the_c2sp_signed_note_example_verifies() {
    let (name, key) = parse_verifier_key(C2SP_VKEY).unwrap();
    assert_eq!(name, "example.com/foo");
    assert_eq!(hex::encode(note_key_id(&name, &key)), "530d903a");
    assert_eq!(verifier_key(&name, &key), C2SP_VKEY);
    let note = Note::parse(C2SP_NOTE).unwrap();
    assert_eq!(note.text, "This is an example message.\n");
    note.verify(&name, &key).unwrap();
    // Changed text: the signature fails; another name: not the key's signature.
    let changed = Note::parse(&C2SP_NOTE.replace("example message", "example massage")).unwrap();
    assert!(matches!(changed.verify(&name, &key), Err(CheckpointError::BadSignature)));
    assert!(matches!(
        note.verify("example.com/bar", &key),
        Err(CheckpointError::NoteUnsigned { .. })
    ));
}

#[test]
fn the_c2sp_checkpoint_example_parses_by_the_rules() {
    let note = Note::parse(C2SP_CHECKPOINT).unwrap();
    assert_eq!(note.signatures.len(), 1);
    assert_eq!(note.signatures[0].name, "example.com/behind-the-sofa");
    assert_eq!(note.signatures[0].signature.len(), 64, "an Ed25519 signature");
    let (origin, size, root) = parse_checkpoint_text(&note.text).unwrap();
    assert_eq!(origin, "example.com/behind-the-sofa");
    assert_eq!(size, 20_852_163);
    assert_eq!(
        Base64::encode_string(root.as_bytes()),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    assert_eq!(checkpoint_text(&origin, size, &root), note.text);
    // Without its key it verifies with nobody's: a random key's id is not in the note.
    let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
    assert!(matches!(
        verify_checkpoint_text(C2SP_CHECKPOINT, &key),
        Err(CheckpointError::NoteUnsigned { .. })
    ));
}

/// The Ed25519 seed of Go's published test signer key (base64 of 0x01 ‖ seed).
fn go_seed() -> [u8; 32] {
    // The base64 itself holds a '+': take everything after the fourth '+'.
    let b64 = GO_SKEY.splitn(5, '+').nth(4).unwrap();
    let typed = Base64::decode_vec(b64).unwrap();
    assert_eq!(typed[0], 0x01);
    typed[1..].try_into().unwrap()
}

#[test]
fn go_s_sumdb_note_signature_is_reproduced_byte_for_byte() {
    let key = SigningKey::from_bytes(&go_seed());
    let (name, vkey) = parse_verifier_key(PETER_VKEY).unwrap();
    assert_eq!(key.verifying_key(), vkey, "the published keys are one pair");
    assert_eq!(sign_note(GO_TEXT, &name, &key), format!("{GO_TEXT}\n{PETER_SIG}"));
}

#[test]
fn go_s_sumdb_notes_verify_and_its_malformed_notes_are_refused() {
    let (peter, peter_key) = parse_verifier_key(PETER_VKEY).unwrap();
    let (enoch, enoch_key) = parse_verifier_key(ENOCH_VKEY).unwrap();
    let both = Note::parse(&format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}")).unwrap();
    assert_eq!(both.text, GO_TEXT);
    // Each key verifies its own signature; the other one's is ignored.
    both.verify(&peter, &peter_key).unwrap();
    both.verify(&enoch, &enoch_key).unwrap();
    // A damaged signature of the key fails the whole note.
    let damaged = format!("{GO_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let damaged = Note::parse(&damaged).unwrap();
    assert!(matches!(damaged.verify(&peter, &peter_key), Err(CheckpointError::BadSignature)));
    // Go's malformed notes (its "\xff" case cannot be a Rust string: the CLI reads UTF-8).
    for bad in [
        GO_TEXT.to_owned(),
        format!("{GO_TEXT}\n"),
        format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{GO_TEXT}\n{PETER_SIG}"),
        format!(
            "{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
        format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101)),
        format!("\n\n{PETER_SIG}"),
    ] {
        assert!(matches!(Note::parse(&bad), Err(CheckpointError::Note(_))), "{bad:?}");
    }
    // The mangled verifier keys of Go's test are refused too.
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
    ] {
        assert!(parse_verifier_key(bad).is_err(), "{bad}");
    }
}

#[test]
fn go_s_tree_head_text_is_a_checkpoint_text() {
    let root = leaf_hash_bytes(b"hello world");
    assert_eq!(checkpoint_text("go.sum database tree", 123_456_789_012, &root), GO_TREE);
    assert_eq!(
        parse_checkpoint_text(GO_TREE).unwrap(),
        ("go.sum database tree".to_owned(), 123_456_789_012, root)
    );
    for bad in [
        GO_TREE.replace("123456789012", "0xabcdef"),
        GO_TREE.replace("Bb0=", "BTOOBIG="),
        GO_TREE.replace("123456789012", "0123"),
        GO_TREE.replace("123456789012", "18446744073709551616"),
        GO_TREE.replace("Bb0=", "Bb1="),
        // Go ignores lines after the root; govern refuses extension lines.
        format!("{GO_TREE}JOE\n"),
        GO_TREE.trim_end().to_owned(),
        "\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n".to_owned(),
    ] {
        assert!(
            matches!(parse_checkpoint_text(&bad), Err(CheckpointError::NoteCheckpoint(_))),
            "{bad:?}"
        );
    }
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[7; 32])
}

#[test]
fn govern_s_notes_follow_the_format() {
    let s = signer();
    let root = Digest(Sha256::digest(b"some tree").into());
    let note =
        s.sign_note(&Checkpoint { size: 42, root, timestamp: govern_governors::Timestamp(5) });
    let origin = format!("govern/{}", hex::encode(s.key_id()));
    assert_eq!(s.origin(), origin);
    let parsed = Note::parse(&note).unwrap();
    assert_eq!(parsed.text, checkpoint_text(&origin, 42, &root));
    let [sig] = &parsed.signatures[..] else { panic!("one signature: {note}") };
    assert_eq!(sig.name, origin);
    // The key id by the signed-note formula, computed here by hand.
    let mut preimage = origin.as_bytes().to_vec();
    preimage.extend_from_slice(&[0x0a, 0x01]);
    preimage.extend_from_slice(s.verifying_key().as_bytes());
    assert_eq!(sig.key_id[..], Sha256::digest(&preimage)[..4]);
    let verified = verify_checkpoint_text(&note, &s.verifying_key()).unwrap();
    assert_eq!((verified.size(), verified.root()), (42, root));
    assert_eq!(verified.origin(), Some(origin.as_str()));
    assert_eq!(verified.note(), Some(note.as_str()));
    // Go's verifier key form of it parses back to the key.
    let vkey = verifier_key(&origin, &s.verifying_key());
    assert_eq!(parse_verifier_key(&vkey).unwrap(), (origin, s.verifying_key()));
}

/// The empty ledger's note under the seed 07…07: pinned, and quoted in docs/receipts.md.
#[test]
fn known_answer() {
    let s = signer();
    let note = s.sign_note(&Checkpoint {
        size: 0,
        root: EMPTY_ROOT,
        timestamp: govern_governors::Timestamp(0),
    });
    assert_eq!(note, KNOWN_NOTE, "{note}");
    assert_eq!(
        verifier_key(s.origin(), &s.verifying_key()),
        KNOWN_VKEY,
        "{}",
        verifier_key(s.origin(), &s.verifying_key())
    );
}

const KNOWN_NOTE: &str = "govern/fe812c12f3ab4ce6\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\u{2014} govern/fe812c12f3ab4ce6 QoccynZhY2IgbFZDilJTAwWnHxb54Q7wpqtczBa0sBSb7AKPqISkeTBc0gcoAD0y9K1h177avyBFBkALFo7H/JBHEQI=\n";
const KNOWN_VKEY: &str =
    "govern/fe812c12f3ab4ce6+42871cca+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs";

#[test]
fn tampering_another_key_and_extension_lines_fail() {
    let s = signer();
    let key = s.verifying_key();
    let note = s.sign_note(&Checkpoint {
        size: 3,
        root: EMPTY_ROOT,
        timestamp: govern_governors::Timestamp(0),
    });
    let changed = note.replacen("\n3\n", "\n4\n", 1);
    assert!(matches!(verify_checkpoint_text(&changed, &key), Err(CheckpointError::BadSignature)));
    let other = CheckpointSigner::from_seed(&[8; 32]).verifying_key();
    assert!(matches!(
        verify_checkpoint_text(&note, &other),
        Err(CheckpointError::NoteUnsigned { .. })
    ));
    // The same key under another origin is another signed-note key.
    let renamed = s.with_origin("billing.example.com/govern").unwrap();
    let note = renamed.sign_note(&Checkpoint {
        size: 3,
        root: EMPTY_ROOT,
        timestamp: govern_governors::Timestamp(0),
    });
    assert!(note.starts_with("billing.example.com/govern\n3\n"));
    verify_checkpoint_text(&note, &key).unwrap();
    let text = format!("{}extension\n", checkpoint_text("o", 3, &EMPTY_ROOT));
    let signing = SigningKey::from_bytes(&[7; 32]);
    let extended = sign_note(&text, "o", &signing);
    assert!(matches!(
        verify_checkpoint_text(&extended, &key),
        Err(CheckpointError::NoteCheckpoint(_))
    ));
}

#[test]
fn origins_are_key_names() {
    for good in ["govern/0123456789abcdef", "example.com/log42", "é"] {
        check_key_name(good).unwrap();
        assert!(signer().with_origin(good).is_ok());
    }
    for bad in ["", "a b", "a+b", "a\tb", "a\u{2003}b", &"x".repeat(257)] {
        assert!(matches!(check_key_name(bad), Err(CheckpointError::Origin(_))), "{bad:?}");
        assert!(signer().with_origin(bad).is_err());
    }
    // A key name may start with '{' (another's signature line), an origin may not: a file
    // starting with '{' is read as a JSON checkpoint.
    check_key_name("{acme}").unwrap();
    assert!(matches!(check_origin("{acme}"), Err(CheckpointError::Origin(_))));
    assert!(matches!(signer().with_origin("{acme}"), Err(CheckpointError::Origin(_))));
}

#[test]
fn a_note_whose_origin_is_no_key_name_is_named_as_such() {
    // Go's tree head has spaces in its origin: a checkpoint text, but govern signs under its
    // origin, and no key name has a space. Said so, not "no signature by key".
    let key = signer().verifying_key();
    let note = sign_note(GO_TREE, "go.sum", &SigningKey::from_bytes(&[7; 32]));
    let err = verify_checkpoint_text(&note, &key).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::NoteCheckpoint(m) if m.contains("white space")),
        "{err}"
    );
}

/// The vectors docs/receipts.md quotes ("Vectors"), recomputed.
#[test]
fn the_documented_vectors_hold() {
    let page = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/receipts.md"));
    let start = page.find("<!-- merkle-vectors:start -->").unwrap();
    let block = &page[start..page.find("<!-- merkle-vectors:end -->").unwrap()];
    let json = &block[block.find("```json\n").unwrap() + 8..block.rfind("```").unwrap()];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let d = |v: &serde_json::Value| v.as_str().unwrap().parse::<Digest>().unwrap();
    let list = |v: &serde_json::Value| v.as_array().unwrap().iter().map(d).collect::<Vec<_>>();
    let mut tree = crate::merkle::MerkleTree::new();
    for (i, h) in list(&v["receipt_hashes"]).iter().enumerate() {
        assert_eq!(crate::merkle::leaf_hash(h), list(&v["leaf_hashes"])[i]);
        tree.push(*h);
    }
    for size in 0..=3u64 {
        assert_eq!(tree.root_at(size).unwrap(), d(&v["roots"][size.to_string()]), "{size}");
    }
    for p in v["inclusion_proofs"].as_array().unwrap() {
        let (i, n) = (p["leaf_index"].as_u64().unwrap(), p["tree_size"].as_u64().unwrap());
        assert_eq!(tree.inclusion_proof(i, n).unwrap(), list(&p["hashes"]));
    }
    for p in v["consistency_proofs"].as_array().unwrap() {
        let (m, n) = (p["first_size"].as_u64().unwrap(), p["second_size"].as_u64().unwrap());
        assert_eq!(tree.consistency_proof(m, n).unwrap(), list(&p["hashes"]));
    }
    let n = &v["signed_note"];
    let s = CheckpointSigner::from_seed(&[7; 32]);
    assert_eq!(n["seed"], s.to_seed_hex());
    assert_eq!(n["public_key"], hex::encode(s.verifying_key().as_bytes()));
    assert_eq!(n["key_id"], hex::encode(s.key_id()));
    assert_eq!(n["origin"], s.origin());
    assert_eq!(n["note_key_id"], hex::encode(note_key_id(s.origin(), &s.verifying_key())));
    assert_eq!(n["verifier_key"], KNOWN_VKEY);
    assert_eq!(n["note"], KNOWN_NOTE);
    assert!(page.contains(C2SP_VKEY));
}
