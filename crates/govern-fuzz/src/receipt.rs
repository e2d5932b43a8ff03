//! Target `receipt`: the storage record decoder (`Receipt::decode`, `Receipt::decode_key`) on
//! arbitrary bytes.
//!
//! Properties: no panic; at most `RECORD_LEN_MAX` bytes are offered (no frame holds more);
//! `decode_key` succeeds exactly when `decode` does and fails with the same error; a record
//! that decodes is the one canonical encoding of what it decodes to (`encode` gives the same
//! bytes back) and its key is the decoded receipt's.

use govern_receipt::{RECORD_LEN_MAX, Receipt};

/// The target's body.
///
/// # Panics
/// When a property fails.
pub fn run(data: &[u8]) {
    if data.len() > RECORD_LEN_MAX {
        return;
    }
    let full = Receipt::decode(data);
    let key = Receipt::decode_key(data);
    match (&full, &key) {
        (Ok(receipt), Ok(key)) => {
            assert_eq!(receipt.encode(), data, "a decoded record does not encode back to itself");
            assert_eq!(key.tenant, receipt.body.tenant.as_str(), "decode_key's tenant");
            assert_eq!(key.governor, receipt.body.governor, "decode_key's governor");
            assert_eq!(key.resource, receipt.body.resource.as_str(), "decode_key's resource");
            assert_eq!(key.resource_seq, receipt.body.resource_seq, "decode_key's resource_seq");
            assert_eq!(Receipt::decode(&receipt.encode()).as_ref(), Ok(receipt), "round trip");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "decode and decode_key disagree on the error"),
        _ => panic!("decode {:?} but decode_key {:?}", full.is_ok(), key.is_ok()),
    }
}
