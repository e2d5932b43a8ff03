//! Deduplication: window, eviction and exact counts.

use super::Dedup;
use crate::EventId;
use govern_governors::Timestamp;

fn id(n: u64) -> EventId {
    EventId::new(format!("e{n}")).unwrap()
}

#[test]
fn an_id_is_a_duplicate_exactly_inside_its_window() {
    let mut d = Dedup::new(1_000, 10);
    d.remember(id(1), Timestamp(100));
    assert!(d.is_duplicate(&id(1), Timestamp(1_100)));
    assert!(!d.is_duplicate(&id(1), Timestamp(1_101)), "not yet expired, but out of the window");
    assert!(!d.is_duplicate(&id(2), Timestamp(100)));
    // Reused after its window: the entry moves to the new time, still one entry.
    d.remember(id(1), Timestamp(2_000));
    assert_eq!((d.len(), d.at(&id(1))), (1, Some(Timestamp(2_000))));
    assert!(d.is_duplicate(&id(1), Timestamp(3_000)));
}

#[test]
fn ids_expire_exactly_after_the_window() {
    let mut d = Dedup::new(1_000, 10);
    d.remember(id(1), Timestamp(100));
    d.remember(id(2), Timestamp(200));
    d.expire(Timestamp(1_100));
    assert_eq!((d.len(), d.expired()), (2, 0), "at + window == now is still inside");
    d.expire(Timestamp(1_101));
    assert_eq!((d.len(), d.expired()), (1, 1));
    assert!(!d.contains(&id(1)));
    assert!(d.contains(&id(2)));
    d.expire(Timestamp(5_000));
    assert_eq!((d.len(), d.expired(), d.evicted()), (0, 2, 0));
    assert!(d.is_empty());
}

#[test]
fn a_full_memory_evicts_the_oldest_and_counts_it() {
    let mut d = Dedup::new(1_000_000, 3);
    for n in 0..10 {
        d.remember(id(n), Timestamp(n));
    }
    assert_eq!((d.len(), d.evicted(), d.expired()), (3, 7, 0));
    let kept: Vec<_> = d.ids().map(|(i, _)| i.as_str().to_owned()).collect();
    assert_eq!(kept, ["e7", "e8", "e9"]);
    for n in 0..7 {
        assert!(!d.contains(&id(n)));
    }
    // An evicted id is new again.
    assert!(!d.is_duplicate(&id(0), Timestamp(20)));
    d.remember(id(0), Timestamp(20));
    assert_eq!((d.len(), d.evicted()), (3, 8));
}

#[test]
fn many_ids_stay_findable_through_the_ring_turning() {
    let mut d = Dedup::new(u64::MAX / 2, 1_000);
    for n in 0..50_000 {
        assert!(!d.is_duplicate(&id(n), Timestamp(n)));
        d.remember(id(n), Timestamp(n));
        assert!(d.is_duplicate(&id(n), Timestamp(n)));
    }
    assert_eq!((d.len(), d.evicted()), (1_000, 49_000));
    for n in 49_000..50_000 {
        assert!(d.contains(&id(n)), "{n}");
    }
}
