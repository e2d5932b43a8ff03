//! Target `webhook`: the `Stripe-Signature` header parser and verifier
//! (`SignatureHeader::parse`, `Verifier::verify`) and the event parser and mapping
//! (`parse_event`, `map_event`) on arbitrary bytes: the header is the input's first line, the
//! body the rest.
//!
//! Properties: no panic; the verifier refuses exactly the headers the parser refuses, with the
//! parser's error; a parsed header written back in its canonical form parses to the same value;
//! the body signed by either secret at the header's time verifies, naming that secret, and
//! the header as given never verifies for a third secret.

use govern_webhooks::signature::SIGNATURE_HEADER_LEN_MAX;
use govern_webhooks::{SignatureHeader, Verifier, VerifyError, map_event, parse_event, sign};

/// The secrets the target verifies with (rotation: two at once).
pub const SECRETS: [&[u8]; 2] = [b"whsec_fuzz_current", b"whsec_fuzz_previous"];

/// The target's body.
///
/// # Panics
/// When a property fails.
pub fn run(data: &[u8]) {
    // A header twice the parser's bound still exercises its refusal; bodies as the
    // event parser bounds them.
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (head, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    if head.len() > 2 * SIGNATURE_HEADER_LEN_MAX
        || body.len() > 2 * govern_webhooks::event::EVENT_BODY_LEN_MAX
    {
        return;
    }
    if let Ok(event) = parse_event(body) {
        let _ = map_event(&event);
    }
    let Ok(header) = std::str::from_utf8(head) else { return };
    let Ok(verifier) = Verifier::new(&SECRETS) else { panic!("two short secrets refused") };
    let parsed = SignatureHeader::parse(header);
    let now = parsed.as_ref().map_or(0, |p| p.timestamp);
    let verified = verifier.verify(header, body, now);
    match &parsed {
        Err(e) => assert_eq!(verified, Err(VerifyError::Header(e.clone())), "verify vs parse"),
        Ok(p) => {
            let canonical = std::iter::once(format!("t={}", p.timestamp))
                .chain(p.signatures.iter().map(|s| format!("v1={}", hex::encode(s))))
                .collect::<Vec<_>>()
                .join(",");
            if canonical.len() <= SIGNATURE_HEADER_LEN_MAX {
                assert_eq!(SignatureHeader::parse(&canonical).as_ref(), Ok(p), "canonical form");
            }
            for (i, secret) in SECRETS.iter().enumerate() {
                let signed = sign(secret, p.timestamp, body);
                let v = verifier.verify(&signed, body, p.timestamp);
                assert_eq!(v.map(|v| v.secret_index), Ok(i), "a fresh signature");
            }
            let Ok(other) = Verifier::new(&[b"whsec_fuzz_other"]) else { panic!("refused") };
            assert!(other.verify(header, body, now).is_err(), "a header verified for a stranger");
        }
    }
}
