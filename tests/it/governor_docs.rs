//! Each `docs/governors/<kind>.md` carries a block generated from the code; this test fails
//! when a page is stale (`UPDATE_DOCS=1 cargo test -p govern-tests` regenerates it).

use govern_governors::GovernorKind;
use govern_governors::graph::Graph;

const START: &str =
    "<!-- generated:start (UPDATE_DOCS=1 cargo test -p govern-tests regenerates this block) -->\n";
const END: &str = "<!-- generated:end -->";

#[test]
fn governor_pages_are_fresh() {
    let mut stale = Vec::new();
    for kind in GovernorKind::ALL {
        let path = crate::repo_path(&format!("docs/governors/{kind}.md"));
        let page =
            std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
        let start = page.find(START).map(|i| i + START.len());
        let end = page.find(END);
        let (Some(start), Some(end)) = (start, end) else {
            panic!("{}: no generated block markers", path.display());
        };
        let block = Graph::of_kind(kind).doc_block();
        if page[start..end] != block {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                std::fs::write(&path, format!("{}{}{}", &page[..start], block, &page[end..]))
                    .unwrap();
            } else {
                stale.push(kind.name());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale governor pages {stale:?}: run UPDATE_DOCS=1 cargo test -p govern-tests"
    );
}
