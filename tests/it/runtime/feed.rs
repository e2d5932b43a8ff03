//! Following a tenant's receipts as a change feed (`RuntimeHandle::receipts_since`): every
//! receipt once, in order, never another tenant's, and a caught-up feed picks up where it was.

use govern_governors::quota::{Command as QuotaCommand, Quota, Resource};
use govern_runtime::RuntimeHandle;

use super::{resource, started, tenant};

/// Walks `tenant`'s feed from `cursor` in pages of `limit`; returns the sequence numbers
/// and the cursor to go on from.
fn walk(
    h: &RuntimeHandle,
    tenant: &govern_governors::TenantId,
    mut cursor: Option<u64>,
    limit: usize,
) -> (Vec<u64>, Option<u64>) {
    let mut seen = Vec::new();
    loop {
        let page = h.receipts_since(tenant, cursor, limit).unwrap();
        assert!(page.receipts.len() <= limit.max(1));
        assert!(page.receipts.iter().all(|r| r.body.tenant == *tenant), "another tenant's");
        seen.extend(page.receipts.iter().map(|r| r.seq));
        cursor = page.cursor;
        if page.caught_up {
            return (seen, cursor);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_tenants_feed_gives_each_of_its_receipts_once_in_order_and_goes_on_after_catching_up() {
    let rt = started(&["acme", "globex"]).await;
    let h = rt.handle();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let check =
        |usage| QuotaCommand::CheckQuota { resource: Resource::ApiCalls, usage, limit: 100 };
    for i in 0..10 {
        for t in [&acme, &globex] {
            let q = h.governor::<Quota>(t, &resource(&format!("q-{}", i % 3)));
            q.send(check(i * 10), "meter").await.unwrap();
        }
    }
    let all: Vec<u64> = h.receipts(&acme, None, None).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(all.len(), 12, "2 lifecycle receipts and 10 checks");
    for limit in [1, 3, 5, 12, 1_000] {
        let (seen, cursor) = walk(&h, &acme, None, limit);
        assert_eq!(seen, all, "limit {limit}");
        assert_eq!(cursor, all.last().copied());
    }
    // Caught up: nothing new until a command is accepted, then exactly it.
    let (_, cursor) = walk(&h, &acme, None, 4);
    let page = h.receipts_since(&acme, cursor, 4).unwrap();
    assert!(page.receipts.is_empty() && page.caught_up);
    assert_eq!(page.cursor, cursor, "an empty page keeps the cursor");
    let new = h.governor::<Quota>(&acme, &resource("q-9")).send(check(1), "meter").await.unwrap();
    h.governor::<Quota>(&globex, &resource("q-9")).send(check(1), "meter").await.unwrap();
    let (seen, _) = walk(&h, &acme, cursor, 4);
    assert_eq!(seen, [new.seq]);
    // A tenant with no receipts has an empty, caught-up feed.
    let page = h.receipts_since(&tenant("nobody"), None, 10).unwrap();
    assert!(page.receipts.is_empty() && page.caught_up && page.cursor.is_none());
    rt.shutdown().await.unwrap();
}
