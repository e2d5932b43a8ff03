//! The schedule's order (deadline, tenant, kind, resource), stale generations, holding and
//! releasing, and the admission rules for commands and due timeouts by tenant state.

use govern_governors::tenant::State as TenantState;
use govern_governors::{GovernorKind, ResourceId, StateSpec, TenantId, Timestamp};

use super::{Due, Schedule};
use crate::registry::{Bar, TimeoutRule, bar, holds, timeout_rule};

fn due(at: u64, tenant: &str, kind: GovernorKind, resource: &str) -> Due {
    Due {
        at: Timestamp(at),
        tenant: TenantId::new(tenant).unwrap(),
        kind,
        resource: ResourceId::new(resource).unwrap(),
    }
}

fn drain(s: &Schedule, now: u64) -> Vec<(Due, u64)> {
    std::iter::from_fn(|| s.pop_due(Timestamp(now))).collect()
}

#[test]
fn due_timeouts_come_by_deadline_then_tenant_then_kind_then_resource() {
    use GovernorKind::{Compliance, Entitlement, Subscription};
    let s = Schedule::new();
    let entries = [
        due(25, "acme", Entitlement, "g-1"),
        due(4, "beta", Subscription, "s-1"),
        due(4, "acme", Compliance, "a-1"),
        due(4, "acme", Subscription, "s-2"),
        due(4, "acme", Subscription, "s-1"),
        due(40, "acme", Subscription, "s-9"),
    ];
    for (g, d) in entries.iter().enumerate() {
        s.insert(d.clone(), g as u64);
    }
    assert_eq!(s.next_deadline(), Some(Timestamp(4)));
    let order: Vec<u64> = drain(&s, 30).into_iter().map(|(_, g)| g).collect();
    assert_eq!(order, [4, 3, 2, 1, 0], "deadline, then tenant, kind (enum order), resource");
    assert_eq!(s.next_deadline(), Some(Timestamp(40)), "not yet due, still armed");
}

#[test]
fn removing_a_replaced_generation_leaves_the_current_one() {
    let s = Schedule::new();
    let d = due(4, "acme", GovernorKind::Subscription, "s-1");
    s.insert(d.clone(), 7);
    s.remove(&d, 6);
    assert_eq!(drain(&s, 4), [(d.clone(), 7)]);
    s.insert(d.clone(), 8);
    s.remove(&d, 8);
    assert_eq!(drain(&s, 4), []);
}

#[test]
fn held_timeouts_leave_the_order_until_their_tenant_is_released() {
    let s = Schedule::new();
    let (a, b) = (
        due(4, "acme", GovernorKind::Subscription, "s-1"),
        due(5, "beta", GovernorKind::Quota, "q"),
    );
    s.insert(a.clone(), 1);
    s.insert(b.clone(), 2);
    for (d, g) in drain(&s, 10) {
        s.hold(d, g);
    }
    assert_eq!(s.next_deadline(), None, "held timeouts are not due: nothing spins on them");
    assert_eq!(s.release(&TenantId::new("other").unwrap()), 0);
    assert_eq!(s.release(&a.tenant), 1);
    assert_eq!(drain(&s, 10), [(a, 1)]);
    assert_eq!(s.release(&b.tenant), 1);
    assert_eq!(drain(&s, 10), [(b, 2)]);
}

#[test]
fn a_released_timeout_never_replaces_the_one_armed_since_for_the_same_deadline() {
    let s = Schedule::new();
    let d = due(4, "acme", GovernorKind::Subscription, "s-1");
    s.insert(d.clone(), 1);
    for (d, g) in drain(&s, 10) {
        s.hold(d, g);
    }
    // Armed again for the same deadline while the stale generation is held (its removal is
    // the next test's): the release keeps the entry armed since.
    s.insert(d.clone(), 2);
    s.release(&d.tenant);
    assert_eq!(drain(&s, 10), [(d, 2)], "the current generation is delivered");
}

#[test]
fn a_cancelled_timeout_is_forgotten_even_while_held() {
    let s = Schedule::new();
    let d = due(4, "acme", GovernorKind::Subscription, "s-1");
    s.insert(d.clone(), 1);
    for (d, g) in drain(&s, 10) {
        s.hold(d, g);
    }
    s.remove(&d, 1);
    assert_eq!(s.release(&d.tenant), 0, "nothing held any more");
    assert_eq!(drain(&s, 10), []);
}

#[test]
fn a_due_timeout_is_delivered_held_or_dropped_by_its_tenants_state() {
    use TimeoutRule::{Deliver, Drop, Hold};
    for state in TenantState::ALL {
        let (governors, lifecycle) = match state {
            TenantState::Active | TenantState::Degraded | TenantState::Maintenance => {
                (Deliver, Deliver)
            }
            TenantState::Provisioning | TenantState::Suspended => (Hold, Deliver),
            TenantState::Deprovisioned => (Drop, Drop),
        };
        assert_eq!(timeout_rule(Some(*state), false), governors, "{}", state.name());
        assert_eq!(timeout_rule(Some(*state), true), lifecycle, "{}", state.name());
    }
    assert_eq!(timeout_rule(None, false), Hold);
    assert_eq!(timeout_rule(None, true), Hold);
    // A tenant governor's commit releases what its tenant held unless the new state holds
    // them as well (a deprovisioning releases them to be dropped).
    let holding: Vec<_> =
        TenantState::ALL.iter().filter(|s| holds(Some(**s))).map(|s| s.name()).collect();
    assert_eq!(holding, ["provisioning", "suspended"]);
    assert!(holds(None));
}

#[test]
fn a_command_is_barred_by_its_tenants_state_as_a_timeout_is_held() {
    for state in TenantState::ALL.iter().copied().map(Some).chain([None]) {
        for lifecycle in [false, true] {
            let barred = bar(state, lifecycle);
            let want = match state {
                Some(TenantState::Deprovisioned) => Some(Bar::Deprovisioned),
                _ if lifecycle => None,
                None => Some(Bar::Unknown),
                Some(TenantState::Provisioning) => Some(Bar::NotActive),
                Some(TenantState::Suspended) => Some(Bar::Suspended),
                Some(TenantState::Active | TenantState::Degraded | TenantState::Maintenance) => {
                    None
                }
            };
            assert_eq!(barred, want, "{state:?} lifecycle={lifecycle}");
            let rule = timeout_rule(state, lifecycle);
            match barred {
                None if state.is_some() => assert_eq!(rule, TimeoutRule::Deliver),
                Some(Bar::Deprovisioned) => assert_eq!(rule, TimeoutRule::Drop),
                _ => assert_eq!(rule, TimeoutRule::Hold, "{state:?} lifecycle={lifecycle}"),
            }
        }
    }
}
