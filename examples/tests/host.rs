//! The host example keeps its word: runs its `run` on a fresh data directory and checks that
//! the transcript lists exactly the receipts it says acme has, and the ledger's total.

#[allow(dead_code, reason = "the example's `main` is not called here")]
#[path = "../host.rs"]
mod host;

#[test]
fn the_transcript_lists_every_receipt_it_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    tokio.block_on(host::run(dir.path(), &mut out)).unwrap();
    let text = String::from_utf8(out).unwrap();

    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("acme has ")).expect("a count line");
    let count: usize = lines[at]
        .strip_prefix("acme has ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a number of receipts");
    let listed: Vec<&str> =
        lines[at + 1..].iter().take_while(|l| l.starts_with("  #")).copied().collect();
    assert_eq!(listed.len(), count, "the count and the listing disagree:\n{text}");
    // acme's: two of its tenant governor, two of its subscription, three of its payment.
    assert_eq!(count, 7, "{text}");
    for (governor, n) in [("tenant", 2), ("subscription", 2), ("billing", 3)] {
        let found = listed.iter().filter(|l| l.split_whitespace().nth(1) == Some(governor));
        assert_eq!(found.count(), n, "{governor} receipts listed:\n{text}");
    }
    // The ledger holds both tenants': acme's 7 and globex's 7.
    assert!(text.contains("chain verified: 14 receipts"), "{text}");
}
