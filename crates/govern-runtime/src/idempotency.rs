//! Idempotency keys: a command that carries `idempotency_key` in its metadata is answered, on
//! a repeat with the same key and the same request, with the first outcome, and writes
//! nothing (Stripe's contract, `docs/runtime-semantics.md`, "Idempotency keys").
//!
//! Per tenant, each key maps to the request it was first used for (governor kind, resource,
//! command name, arguments) and its outcome: in flight, accepted (the receipt's sequence
//! number, hash and transition), or rejected by the governor. Keys are kept for a window
//! (default 24 h) and at most a bound per tenant, oldest out first (counted). Accepted keys are
//! rebuilt from the receipts' metadata at start; a rejection is not receipted, so it is
//! remembered until the runtime stops. A runtime refusal (busy, timeout, ...) is not
//! remembered: nothing was decided, the key is free again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use govern_governors::{Args, GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::Receipt;

use crate::FastMap;
use crate::error::{Accepted, CommandError, Outcome, Refusal};

/// The metadata key that carries an idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";

/// What a key was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) kind: GovernorKind,
    pub(crate) resource: ResourceId,
    pub(crate) command: String,
    pub(crate) args: Args,
    /// Rebuilt from a receipt, whose arguments may have been completed by the governor (a
    /// billing amount the caller left out): a repeat matches when each of its arguments is
    /// the receipt's.
    pub(crate) from_receipt: bool,
}

impl Fingerprint {
    /// Whether `request` is the request this key was first used for.
    fn matches(&self, request: &Self) -> bool {
        self.kind == request.kind
            && self.resource == request.resource
            && self.command == request.command
            && if self.from_receipt {
                request.args.iter().all(|(k, v)| self.args.get(k) == Some(v))
            } else {
                self.args == request.args
            }
    }
}

/// Where a keyed request stands.
#[derive(Clone, Debug)]
enum State {
    InFlight,
    Done(Outcome),
}

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    state: State,
    /// When the key was first used (the window runs from here).
    at: Timestamp,
}

/// One tenant's keys, oldest first in `order`.
#[derive(Debug, Default)]
struct TenantKeys {
    #[allow(clippy::disallowed_types, reason = "lookup only; order is kept in `order`")]
    keys: std::collections::HashMap<Arc<str>, Entry, foldhash::fast::RandomState>,
    order: VecDeque<(Timestamp, Arc<str>)>,
}

/// Counters of the whole store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdempotencyStats {
    /// Keys held, over all tenants.
    pub keys: usize,
    /// Keys dropped because their tenant held `keys_max` (oldest first).
    pub evicted: u64,
    /// Keys dropped because their window passed.
    pub expired: u64,
    /// Repeats answered with the first outcome.
    pub replayed: u64,
}

/// What a keyed request may do.
#[derive(Debug)]
pub(crate) enum Begin {
    /// The key is new (or free again): run the request, then [`Idempotency::finish`].
    Run,
    /// A repeat: the first outcome.
    Replay(Outcome),
}

/// Every tenant's idempotency keys.
#[derive(Debug)]
pub(crate) struct Idempotency {
    tenants: FastMap<TenantId, Arc<Mutex<TenantKeys>>>,
    window_ms: u64,
    keys_max: usize,
    evicted: AtomicU64,
    expired: AtomicU64,
    replayed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Idempotency {
    pub(crate) fn new(window_ms: u64, keys_max: usize) -> Self {
        Self {
            tenants: FastMap::default(),
            window_ms,
            keys_max: keys_max.max(1),
            evicted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
        }
    }

    fn tenant(&self, tenant: &TenantId) -> Arc<Mutex<TenantKeys>> {
        if let Some(t) = self.tenants.get(tenant) {
            return Arc::clone(t.value());
        }
        Arc::clone(self.tenants.entry(tenant.clone()).or_default().value())
    }

    /// Drops the keys whose window has passed and, with `room`, the oldest until one more
    /// fits under the bound.
    fn prune(&self, t: &mut TenantKeys, now: Timestamp, room: bool) {
        let (mut expired, mut evicted) = (0, 0);
        while let Some((at, key)) = t.order.front() {
            let old = at.plus_ms(self.window_ms) <= now;
            let full = room && t.keys.len() >= self.keys_max;
            if !old && !full {
                break;
            }
            // The key's own entry (not a later use of the same key after a refusal freed it).
            let own = t.keys.get(key).is_some_and(|e| e.at == *at);
            // An in-flight key stays until it is finished, whatever its age.
            if own && t.keys.get(key).is_some_and(|e| matches!(e.state, State::InFlight)) && !full {
                break;
            }
            if own && t.keys.remove(key).is_some() {
                if old {
                    expired += 1;
                } else {
                    evicted += 1;
                }
            }
            t.order.pop_front();
        }
        if expired + evicted > 0 {
            self.expired.fetch_add(expired, Ordering::Relaxed);
            self.evicted.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// Looks `key` up for `request` at `now`: run it (the key is now in flight), replay the
    /// first outcome, or refuse (a different request: `idempotency_conflict`; the first still
    /// in flight: `idempotency_in_flight`).
    pub(crate) fn begin(
        &self,
        tenant: &TenantId,
        key: &str,
        request: Fingerprint,
        now: Timestamp,
    ) -> Result<Begin, Refusal> {
        let t = self.tenant(tenant);
        let mut t = lock(&t);
        self.prune(&mut t, now, false);
        if let Some(e) = t.keys.get(key) {
            if !e.fingerprint.matches(&request) {
                return Err(Refusal::IdempotencyConflict { key: key.to_owned() });
            }
            return match &e.state {
                State::InFlight => Err(Refusal::IdempotencyInFlight { key: key.to_owned() }),
                State::Done(outcome) => {
                    self.replayed.fetch_add(1, Ordering::Relaxed);
                    Ok(Begin::Replay(outcome.clone()))
                }
            };
        }
        self.prune(&mut t, now, true);
        let key: Arc<str> = Arc::from(key);
        t.keys.insert(
            Arc::clone(&key),
            Entry { fingerprint: request, state: State::InFlight, at: now },
        );
        t.order.push_back((now, key));
        Ok(Begin::Run)
    }

    /// Records the outcome of a keyed request begun with [`Self::begin`]: an acceptance or a
    /// governor's rejection is kept; a runtime refusal frees the key.
    pub(crate) fn finish(&self, tenant: &TenantId, key: &str, outcome: &Outcome) {
        let t = self.tenant(tenant);
        let mut t = lock(&t);
        match outcome {
            Ok(_) | Err(CommandError::Rejected(_)) => {
                if let Some(e) = t.keys.get_mut(key) {
                    e.state = State::Done(outcome.clone());
                }
            }
            Err(CommandError::Refused(_)) => {
                // Left in `order`: pruning skips a key it no longer finds.
                t.keys.remove(key);
                if t.keys.is_empty() {
                    drop(t);
                    // A tenant left with no key (a refused first request, an unknown tenant):
                    // its entry goes, unless another request holds it at this moment, so that
                    // made-up tenant ids do not accumulate entries.
                    self.tenants.remove_if(tenant, |_, held| {
                        Arc::strong_count(held) <= 2 && lock(held).keys.is_empty()
                    });
                }
            }
        }
    }

    /// The receipt a key's request was accepted with, if it was.
    pub(crate) fn accepted(&self, tenant: &TenantId, key: &str) -> Option<Accepted> {
        let t = self.tenants.get(tenant).map(|t| Arc::clone(t.value()))?;
        let t = lock(&t);
        match &t.keys.get(key)?.state {
            State::Done(Ok(accepted)) => Some(accepted.clone()),
            _ => None,
        }
    }

    /// Restores the accepted keys of `tenant` at start, from what its receipts left
    /// ([`kept`], folded by [`fold`]: each key's last use, oldest first), those whose window
    /// has not passed at `now`; past the bound, the oldest go first (counted as evicted).
    pub(crate) fn restore(&self, tenant: &TenantId, entries: &[Kept], now: Timestamp) {
        let t = self.tenant(tenant);
        let mut t = lock(&t);
        for e in entries {
            if e.at.plus_ms(self.window_ms) <= now {
                continue;
            }
            let fingerprint = Fingerprint {
                kind: e.kind,
                resource: e.resource.clone(),
                command: e.command.clone(),
                args: e.args.clone(),
                from_receipt: true,
            };
            let accepted = Accepted {
                seq: e.seq,
                hash: e.hash,
                resource_seq: e.resource_seq,
                from: static_name(e.kind, &e.from),
                to: static_name(e.kind, &e.to),
            };
            let key: Arc<str> = Arc::from(e.key.as_str());
            let entry = Entry { fingerprint, state: State::Done(Ok(accepted)), at: e.at };
            // Always queued at its own time: a key given twice keeps the later entry, and
            // pruning matches an entry by its time, skipping the earlier, stale one.
            t.keys.insert(Arc::clone(&key), entry);
            t.order.push_back((e.at, key));
        }
        self.prune(&mut t, now, false);
        // The newest `keys_max` stay (a running store makes room for one more at each new
        // key; a restored one holds as many as the bound allows).
        let mut evicted = 0;
        while t.keys.len() > self.keys_max {
            let Some((at, key)) = t.order.pop_front() else { break };
            if t.keys.get(&key).is_some_and(|e| e.at == at) && t.keys.remove(&key).is_some() {
                evicted += 1;
            }
        }
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
    }

    #[cfg(test)]
    /// Every tenant's keys and entries, in order (tests compare starts).
    pub(crate) fn entries(&self) -> BTreeMap<String, Vec<String>> {
        self.tenants
            .iter()
            .map(|e| {
                let t = lock(e.value());
                let keys = t
                    .order
                    .iter()
                    .filter_map(|(at, k)| {
                        let e = t.keys.get(k).filter(|e| e.at == *at)?;
                        Some(format!("{k} {:?} {:?} {:?}", e.fingerprint, e.state, e.at))
                    })
                    .collect();
                (e.key().to_string(), keys)
            })
            .filter(|(_, v): &(String, Vec<String>)| !v.is_empty())
            .collect()
    }

    /// The store's counters.
    pub(crate) fn stats(&self) -> IdempotencyStats {
        let keys = self.tenants.iter().map(|t| lock(t.value()).keys.len()).sum();
        IdempotencyStats {
            keys,
            evicted: self.evicted.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
        }
    }
}

/// An accepted key as its receipt leaves it: what a start restores
/// ([`Idempotency::restore`]) and the runtime's start state keeps (`runtime.snap`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) key: String,
    pub(crate) kind: GovernorKind,
    pub(crate) resource: ResourceId,
    pub(crate) command: String,
    pub(crate) args: Args,
    pub(crate) seq: u64,
    pub(crate) hash: govern_receipt::Digest,
    pub(crate) resource_seq: u64,
    pub(crate) from: String,
    pub(crate) to: String,
    /// The receipt's time: the key's window runs from here.
    pub(crate) at: Timestamp,
}

/// The key a receipt's metadata carries, as kept (`None`: the receipt has none).
pub(crate) fn kept(r: &Receipt) -> Option<Kept> {
    let key = r.body.metadata.get(IDEMPOTENCY_KEY)?;
    Some(Kept {
        key: key.clone(),
        kind: r.body.governor,
        resource: r.body.resource.clone(),
        command: r.body.command.to_string(),
        args: r.body.args.clone(),
        seq: r.seq,
        hash: r.hash,
        resource_seq: r.body.resource_seq,
        from: r.body.state_from.to_string(),
        to: r.body.state_to.to_string(),
        at: r.body.timestamp,
    })
}

/// One tenant's kept keys after `more` (in sequence order, after `kept`'s): each key's last
/// use whose window has not passed at `now`, the newest `keys_max` of them, oldest first.
/// Folding a ledger's receipts in one go or in two (a prefix, then the rest) gives the same
/// list, so a start state can be carried forward by the receipts after it (with receipt
/// times that do not go back by more than the window).
pub(crate) fn fold(
    kept: Vec<Kept>,
    more: impl IntoIterator<Item = Kept>,
    (window_ms, keys_max): (u64, usize),
    now: Timestamp,
) -> Vec<Kept> {
    let all: Vec<Kept> =
        kept.into_iter().chain(more).filter(|e| e.at.plus_ms(window_ms) > now).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut out: Vec<Kept> = Vec::new();
    for e in all.into_iter().rev() {
        if out.len() >= keys_max {
            break;
        }
        if seen.insert(e.key.clone()) {
            out.push(e);
        }
    }
    out.reverse();
    out
}

/// A receipt's state name as the `'static` name `Accepted` holds: the governors' state names
/// are `'static`; one not found (a receipt from another version) is leaked once per name.
fn static_name(kind: GovernorKind, name: &str) -> &'static str {
    static NAMES: Mutex<BTreeMap<String, &'static str>> = Mutex::new(BTreeMap::new());
    if let Some(n) = crate::hosted::state_name(kind, name) {
        return n;
    }
    let mut names = lock(&NAMES);
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(name.to_owned(), leaked);
    leaked
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

    use super::*;
    use govern_governors::Rejection;
    use govern_receipt::Digest;

    fn fp(command: &str, plan: &str) -> Fingerprint {
        Fingerprint {
            kind: GovernorKind::Subscription,
            resource: ResourceId::new("sub-1").unwrap(),
            command: command.to_owned(),
            args: [("plan".to_owned(), plan.to_owned())].into(),
            from_receipt: false,
        }
    }

    fn accepted(seq: u64) -> Outcome {
        Ok(Accepted { seq, hash: Digest::ZERO, resource_seq: 0, from: "pending", to: "free_trial" })
    }

    const T: Timestamp = Timestamp(1_000_000);

    #[test]
    fn in_flight_then_done_conflict_and_a_refusal_frees_the_key() {
        let store = Idempotency::new(60_000, 10);
        let acme = TenantId::new("acme").unwrap();
        assert!(matches!(store.begin(&acme, "k", fp("start_trial", "pro"), T), Ok(Begin::Run)));
        assert_eq!(
            store.begin(&acme, "k", fp("start_trial", "pro"), T).unwrap_err(),
            Refusal::IdempotencyInFlight { key: "k".into() }
        );
        assert_eq!(
            store.begin(&acme, "k", fp("start_trial", "starter"), T).unwrap_err(),
            Refusal::IdempotencyConflict { key: "k".into() }
        );
        store.finish(&acme, "k", &accepted(7));
        match store.begin(&acme, "k", fp("start_trial", "pro"), T).unwrap() {
            Begin::Replay(o) => assert_eq!(o, accepted(7)),
            Begin::Run => panic!("ran again"),
        }
        // A rejection is kept; a runtime refusal frees the key.
        assert!(matches!(store.begin(&acme, "r", fp("archive", ""), T), Ok(Begin::Run)));
        let rejected: Outcome = Err(CommandError::Rejected(Rejection::unmet("archive", "x")));
        store.finish(&acme, "r", &rejected);
        assert!(
            matches!(store.begin(&acme, "r", fp("archive", ""), T), Ok(Begin::Replay(o)) if o == rejected)
        );
        assert!(matches!(store.begin(&acme, "f", fp("archive", ""), T), Ok(Begin::Run)));
        store.finish(&acme, "f", &Err(Refusal::Busy { what: "x", max: 1 }.into()));
        assert!(matches!(store.begin(&acme, "f", fp("archive", ""), T), Ok(Begin::Run)));
        assert_eq!(store.stats().replayed, 2);
    }

    #[test]
    fn the_window_expires_keys_and_the_bound_evicts_the_oldest() {
        let store = Idempotency::new(60_000, 2);
        let acme = TenantId::new("acme").unwrap();
        for (i, k) in ["a", "b"].into_iter().enumerate() {
            store.begin(&acme, k, fp("start_trial", k), T.plus_ms(i as u64)).unwrap();
            store.finish(&acme, k, &accepted(i as u64));
        }
        // A third key evicts `a`, the oldest.
        store.begin(&acme, "c", fp("start_trial", "c"), T.plus_ms(2)).unwrap();
        store.finish(&acme, "c", &accepted(2));
        let s = store.stats();
        assert_eq!((s.keys, s.evicted, s.expired), (2, 1, 0));
        assert!(matches!(
            store.begin(&acme, "b", fp("start_trial", "b"), T.plus_ms(3)),
            Ok(Begin::Replay(_))
        ));
        // A minute after `b` and `c` were first used, both are gone.
        assert!(matches!(
            store.begin(&acme, "b", fp("start_trial", "b"), T.plus_ms(60_002)),
            Ok(Begin::Run)
        ));
        assert_eq!(store.stats().expired, 2);
    }

    #[test]
    fn a_receipts_completed_arguments_still_match_the_request_that_left_them_out() {
        let mut from_receipt = fp("process_payment", "");
        from_receipt.args =
            [("amount".into(), "10.00".into()), ("currency".into(), "USD".into())].into();
        from_receipt.from_receipt = true;
        let mut request = fp("process_payment", "");
        request.args = Args::new();
        assert!(from_receipt.matches(&request));
        request.args.insert("amount".into(), "11.00".into());
        assert!(!from_receipt.matches(&request));
    }

    #[test]
    fn a_refused_request_of_a_made_up_tenant_leaves_no_entry_behind() {
        let store = Idempotency::new(60_000, 10);
        for i in 0..100 {
            let nobody = TenantId::new(&format!("nobody-{i}")).unwrap();
            assert!(matches!(
                store.begin(&nobody, "k", fp("start_trial", "pro"), T),
                Ok(Begin::Run)
            ));
            store.finish(&nobody, "k", &Err(Refusal::UnknownTenant(nobody.clone()).into()));
        }
        assert_eq!(store.tenants.len(), 0);
        // A tenant that keeps a key keeps its entry.
        let acme = TenantId::new("acme").unwrap();
        store.begin(&acme, "a", fp("start_trial", "pro"), T).unwrap();
        store.finish(&acme, "a", &accepted(1));
        store.begin(&acme, "b", fp("start_trial", "x"), T).unwrap();
        store.finish(&acme, "b", &Err(Refusal::Busy { what: "x", max: 1 }.into()));
        assert_eq!(store.tenants.len(), 1);
        assert_eq!(store.stats().keys, 1);
    }
}
