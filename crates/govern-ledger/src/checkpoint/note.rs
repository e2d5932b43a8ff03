//! Checkpoints as C2SP signed notes (`c2sp.org/tlog-checkpoint` over `c2sp.org/signed-note`),
//! the form Go's checksum database, Sigstore and Tessera publish, so that existing
//! transparency-log tooling can read and verify a ledger's tree heads.
//!
//! # Note text
//!
//! ```text
//! {origin}\n{size}\n{base64 root}\n
//! ```
//!
//! `origin` names the log (by default `govern/` and the 16 hex digits of the key id, see
//! [`default_origin`]); `size` is decimal without leading zeros; the root is the RFC 6962
//! Merkle root in standard base64 (RFC 4648 §4, with padding). govern writes no extension
//! lines and refuses notes that have any: a verifier could not tell what they claim.
//!
//! # Signature
//!
//! The text, a blank line, then one line per signature:
//! `— {key name} {base64(key id ‖ signature)}` (U+2014, a space, the name, a space). The key
//! name is the origin. The Ed25519 signature (RFC 8032, pure) is over the note text, final
//! newline included; the 4-byte key id is the first four bytes of
//! `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)` ([`note_key_id`]). The same key signs the
//! JSON checkpoints; the two messages cannot be confused (the JSON one starts with the line
//! `govern.checkpoint.v1` and has a hex root, the note's root is base64).
//!
//! # Verifying
//!
//! [`Note::parse`] applies the signed-note syntax (UTF-8, no control characters but newline,
//! the text separated from the signature lines by the last blank line, at most
//! [`NOTE_SIGNATURES_MAX`] signatures, [`NOTE_LEN_MAX`] bytes); [`Note::verify`] checks the
//! signatures of one known key (name and key id both match): each must verify, at least one
//! must exist, and signatures of other keys are ignored, as the format requires.

use base64ct::{Base64, Encoding as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use govern_receipt::Digest;
use sha2::{Digest as _, Sha256};

use super::{CheckpointError, SIGNATURE_LEN, cut, key_id, parse_hex};

/// The signed-note signature type of Ed25519.
pub const ED25519_TYPE: u8 = 0x01;

/// The most bytes a note may have.
pub const NOTE_LEN_MAX: usize = 64 * 1024;

/// The most signature lines a note may have (signed-note asks verifiers to accept 16).
pub const NOTE_SIGNATURES_MAX: usize = 100;

/// The most bytes an origin (and so a key name) may have.
pub const ORIGIN_LEN_MAX: usize = 256;

/// The em dash that starts a signature line, and the space after it.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The default origin of a key: `govern/` and its key id in 16 lowercase hex digits.
#[must_use]
pub fn default_origin(key: &VerifyingKey) -> String {
    format!("govern/{}", hex::encode(key_id(key)))
}

/// Checks that `name` can be a key name: 1 to [`ORIGIN_LEN_MAX`] bytes, no Unicode white
/// space, no `+`, no control character.
///
/// # Errors
/// [`CheckpointError::Origin`] naming the problem.
pub fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    let bad = |why: &str| Err(CheckpointError::Origin(format!("{why}: {:?}", cut(name))));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > ORIGIN_LEN_MAX {
        return bad(&format!("longer than {ORIGIN_LEN_MAX} bytes"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+') {
        return bad("a key name holds no white space, control character or '+'");
    }
    Ok(())
}

/// Checks that `origin` can be the origin of govern's notes: a key name ([`check_key_name`]:
/// the note is signed under its origin) that does not start with `{` (a checkpoint file
/// starting with `{` is read as the JSON form, so a note with such an origin could not be
/// read back).
///
/// # Errors
/// [`CheckpointError::Origin`] naming the problem.
pub fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    check_key_name(origin)?;
    if origin.starts_with('{') {
        return Err(CheckpointError::Origin(format!(
            "starts with '{{', as a JSON checkpoint does: {:?}",
            cut(origin)
        )));
    }
    Ok(())
}

/// The signed-note key id of an Ed25519 key under a name:
/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[..4]`.
#[must_use]
pub fn note_key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519_TYPE]);
    h.update(key.as_bytes());
    let hash: [u8; 32] = h.finalize().into();
    [hash[0], hash[1], hash[2], hash[3]]
}

/// The signed-note verifier key (`vkey`) of an Ed25519 key under a name:
/// `{name}+{hex key id}+{base64(0x01 ‖ public key)}`, what Go's `note.NewVerifier` and other
/// tools take.
#[must_use]
pub fn verifier_key(name: &str, key: &VerifyingKey) -> String {
    let mut typed = [0u8; 33];
    typed[0] = ED25519_TYPE;
    typed[1..].copy_from_slice(key.as_bytes());
    format!("{name}+{}+{}", hex::encode(note_key_id(name, key)), Base64::encode_string(&typed))
}

/// Parses a signed-note verifier key of an Ed25519 key: its name and key. The key id must be
/// the one the name and key give.
///
/// # Errors
/// [`CheckpointError::VerifierKey`] if it is not one.
pub fn parse_verifier_key(vkey: &str) -> Result<(String, VerifyingKey), CheckpointError> {
    let bad = |why: &str| CheckpointError::VerifierKey(format!("{why}: {:?}", cut(vkey)));
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id), Some(typed)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected name+keyid+key"));
    };
    check_key_name(name).map_err(|_| bad("bad key name"))?;
    let typed = Base64::decode_vec(typed).map_err(|_| bad("the key is not base64"))?;
    let [ED25519_TYPE, key @ ..] = typed.as_slice() else {
        return Err(bad("not an Ed25519 key (type 0x01)"));
    };
    let key: [u8; 32] = key.try_into().map_err(|_| bad("an Ed25519 key has 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
    if parse_hex::<4>(id) != Some(note_key_id(name, &key)) {
        return Err(bad("the key id is not the name's and key's"));
    }
    Ok((name.to_owned(), key))
}

/// The note text of a checkpoint: `{origin}\n{size}\n{base64 root}\n`.
#[must_use]
pub fn checkpoint_text(origin: &str, size: u64, root: &Digest) -> String {
    format!("{origin}\n{size}\n{}\n", Base64::encode_string(root.as_bytes()))
}

/// A checkpoint's note text, parsed: origin, size and root.
///
/// # Errors
/// [`CheckpointError::NoteCheckpoint`] if it is not exactly three lines of the documented
/// form (extension lines are refused).
pub fn parse_checkpoint_text(text: &str) -> Result<(String, u64, Digest), CheckpointError> {
    let bad = |why: String| CheckpointError::NoteCheckpoint(why);
    let body = text.strip_suffix('\n').ok_or_else(|| bad("no final newline".into()))?;
    let lines: Vec<&str> = body.split('\n').collect();
    let [origin, size, root] = lines[..] else {
        return Err(bad(format!(
            "expected 3 lines (origin, size, root), found {}{}",
            lines.len(),
            if lines.len() > 3 { ": govern refuses extension lines" } else { "" }
        )));
    };
    // tlog-checkpoint asks only for a non-empty origin; govern's are also key names, which
    // `verify_checkpoint_text` checks (`check_origin`).
    if origin.is_empty() {
        return Err(bad("an empty origin".into()));
    }
    let canonical = size.bytes().all(|b| b.is_ascii_digit())
        && !size.is_empty()
        && (size == "0" || !size.starts_with('0'));
    let size = canonical.then(|| size.parse::<u64>().ok()).flatten().ok_or_else(|| {
        bad(format!("size: not a decimal u64 without leading zeros: {:?}", cut(size)))
    })?;
    let bytes = Base64::decode_vec(root)
        .ok()
        .filter(|b| Base64::encode_string(b) == root)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| bad(format!("root: not the base64 of 32 bytes: {:?}", cut(root))))?;
    Ok(((*origin).to_owned(), size, Digest(bytes)))
}

/// Signs `text` as a note by `name` with `key`: the text, a blank line and one signature
/// line. `text` must end with a newline and `name` be a valid key name.
#[must_use]
pub(crate) fn sign_note(text: &str, name: &str, key: &SigningKey) -> String {
    let signature = key.sign(text.as_bytes()).to_bytes();
    let mut blob = Vec::with_capacity(4 + SIGNATURE_LEN);
    blob.extend_from_slice(&note_key_id(name, &key.verifying_key()));
    blob.extend_from_slice(&signature);
    format!("{text}\n{SIGNATURE_PREFIX}{name} {}\n", Base64::encode_string(&blob))
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id (the first 4 bytes of the decoded signature).
    pub key_id: [u8; 4],
    /// The signature proper (the bytes after the key id).
    pub signature: Vec<u8>,
}

/// A signed note, parsed but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The text, with its final newline (the signed bytes).
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note (the signed-note syntax; no signature is checked).
    ///
    /// # Errors
    /// [`CheckpointError::Note`] naming what is wrong.
    pub fn parse(note: &str) -> Result<Self, CheckpointError> {
        let bad = |why: &str| Err(CheckpointError::Note(why.to_owned()));
        if note.len() > NOTE_LEN_MAX {
            return bad(&format!("longer than {NOTE_LEN_MAX} bytes"));
        }
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return bad("a control character other than newline");
        }
        if !note.ends_with('\n') {
            return bad("no final newline");
        }
        let Some(split) = note.rfind("\n\n") else {
            return bad("no blank line before the signatures");
        };
        let text = &note[..=split];
        if text == "\n" {
            return bad("no text before the blank line");
        }
        let lines = &note[split + 2..];
        let mut signatures = Vec::new();
        for line in lines.strip_suffix('\n').unwrap_or(lines).split('\n') {
            if signatures.len() == NOTE_SIGNATURES_MAX {
                return bad(&format!("more than {NOTE_SIGNATURES_MAX} signatures"));
            }
            let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
                return bad("a line after the blank line is not a signature ('— name signature')");
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return bad("a signature line without a signature");
            };
            if check_key_name(name).is_err() {
                return bad("a signature line with a bad key name");
            }
            let blob = Base64::decode_vec(blob)
                .map_err(|_| CheckpointError::Note("a signature that is not base64".to_owned()))?;
            let [a, b, c, d, signature @ ..] = blob.as_slice() else {
                return bad("a signature shorter than its key id");
            };
            if signature.is_empty() {
                return bad("an empty signature");
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: [*a, *b, *c, *d],
                signature: signature.to_vec(),
            });
        }
        Ok(Self { text: text.to_owned(), signatures })
    }

    /// Checks the signatures of the key `name` with `key` (those whose name and key id are
    /// the key's; others are ignored): each must verify over the text, and there must be one.
    ///
    /// # Errors
    /// [`CheckpointError::BadSignature`] if one does not verify;
    /// [`CheckpointError::NoteUnsigned`] if the key signed none.
    pub fn verify(&self, name: &str, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let id = note_key_id(name, key);
        let mut verified = 0;
        for s in self.signatures.iter().filter(|s| s.name == name && s.key_id == id) {
            let bytes: [u8; SIGNATURE_LEN] =
                s.signature.as_slice().try_into().map_err(|_| CheckpointError::BadSignature)?;
            key.verify_strict(self.text.as_bytes(), &Signature::from_bytes(&bytes))
                .map_err(|_| CheckpointError::BadSignature)?;
            verified += 1;
        }
        if verified == 0 {
            return Err(CheckpointError::NoteUnsigned {
                name: name.to_owned(),
                key_id: hex::encode(id),
                found: self
                    .signatures
                    .iter()
                    .map(|s| format!("{}+{}", s.name, hex::encode(s.key_id)))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
