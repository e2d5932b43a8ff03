//! The page's assets keep to the rules the module documentation states.

use super::status::after_last;
use super::{CONTENT_SECURITY_POLICY, PAGE_CSS, PAGE_HTML, PAGE_JS};

#[test]
fn the_script_never_writes_markup_and_the_shell_loads_nothing_from_elsewhere() {
    for forbidden in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
        assert!(!PAGE_JS.contains(forbidden), "page.js uses {forbidden}");
    }
    for text in [PAGE_HTML, PAGE_JS, PAGE_CSS] {
        assert!(!text.contains("http://") && !text.contains("https://"), "an external asset");
    }
    // Nothing inline for the policy to allow.
    assert!(!PAGE_HTML.contains("<script>") && !PAGE_HTML.contains("style="));
    assert!(PAGE_HTML.contains(r#"<script src="/page.js" defer></script>"#));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[test]
fn the_cursor_of_the_last_n_receipts() {
    // 10 receipts (0..=9), the last 3 are 7, 8, 9: after 6.
    assert_eq!(after_last(10, 3), Some(6));
    // The last 10 of 10, or more than there are: from the start.
    assert_eq!(after_last(10, 10), None);
    assert_eq!(after_last(10, 11), None);
    assert_eq!(after_last(11, 10), Some(0));
}
