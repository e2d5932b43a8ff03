//! The states at a new boundary: the prior file's states (a second archive stacks on a
//! first) with the receipts between the two boundaries folded in, then written.
//!
//! Memory: one entry per key with receipts below the new boundary (its two ids, its count
//! and its machine: a few hundred bytes), for the whole fold; the receipts are streamed.

use std::collections::BTreeMap;
use std::path::Path;

use govern_governors::{GovernorKind, Machine, ResourceId, TenantId};
use govern_receipt::{Receipt, ReplayError};

use super::{BaseStates, StateKey, StatesError, StatesWriter, StatesWritten, kind_pos};

/// Every key's count of receipts and machine, by (tenant, kind position in
/// [`GovernorKind::ALL`], resource): the file's order.
pub type StatesMap = BTreeMap<(TenantId, u8, ResourceId), (u64, Machine)>;

/// A fold in progress: the states so far and the next receipt due.
#[derive(Debug)]
pub struct StatesFold {
    /// The states so far.
    states: StatesMap,
    /// The sequence number of the next receipt due.
    next: u64,
    /// The boundary the fold goes to.
    boundary: u64,
}

impl StatesFold {
    /// Starts from `prior`'s states (every block read, checked and decoded), or from none,
    /// to fold the receipts from `prior`'s boundary (or 0) up to `boundary`.
    ///
    /// # Errors
    /// [`StatesError::Boundary`] when `boundary` is before `prior`'s; what reading `prior`
    /// gives; [`StatesError::Codec`] for a prior state that does not decode.
    pub fn new(prior: Option<&BaseStates>, boundary: u64) -> Result<Self, StatesError> {
        let mut states = StatesMap::new();
        let next = prior.map_or(0, BaseStates::boundary);
        if boundary < next {
            return Err(StatesError::Boundary { boundary, prior: next });
        }
        if let Some(prior) = prior {
            prior.for_each(|key: StateKey, base| {
                let machine = base
                    .machine(key.kind)
                    .map_err(|source| StatesError::Codec { key: key.to_string(), source })?;
                states
                    .insert((key.tenant, kind_pos(key.kind), key.resource), (base.count, machine));
                Ok::<(), StatesError>(())
            })?;
        }
        Ok(Self { states, next, boundary })
    }

    /// Folds the next receipt into its key's state, checking that it is the receipt due
    /// (sequence numbers consecutive, below the boundary) and that its `resource_seq`
    /// continues its key's count, as `govern_receipt::replay` does. The hash chain is the
    /// ledger's to check, not this.
    ///
    /// # Errors
    /// [`StatesError::Records`] for another receipt than the one due;
    /// [`StatesError::Replay`] when it does not fit its key's state. The states are
    /// unchanged on error.
    pub fn push(&mut self, receipt: &Receipt) -> Result<(), StatesError> {
        if receipt.seq != self.next || receipt.seq >= self.boundary {
            return Err(StatesError::Records {
                expected: self.next,
                found: receipt.seq,
                boundary: self.boundary,
            });
        }
        let b = &receipt.body;
        let key = (b.tenant.clone(), kind_pos(b.governor), b.resource.clone());
        let mut fresh = None;
        let (count, machine) = match self.states.get_mut(&key) {
            Some(entry) => entry,
            None => fresh.insert((0, Machine::new(b.governor))),
        };
        if b.resource_seq != *count {
            return Err(ReplayError::ResourceSeq {
                seq: receipt.seq,
                expected: *count,
                found: b.resource_seq,
            }
            .into());
        }
        // A failed step leaves the machine as it was (replay_step checks before it moves).
        govern_receipt::replay_machine_step(machine, receipt)?;
        *count += 1;
        if let Some(entry) = fresh {
            self.states.insert(key, entry);
        }
        self.next += 1;
        Ok(())
    }

    /// The states at the boundary, once every receipt below it was folded.
    ///
    /// # Errors
    /// [`StatesError::RecordsEnded`] when receipts are missing before the boundary.
    pub fn finish(self) -> Result<StatesMap, StatesError> {
        if self.next != self.boundary {
            return Err(StatesError::RecordsEnded { expected: self.next, boundary: self.boundary });
        }
        Ok(self.states)
    }
}

/// The states at `boundary`: `prior`'s states (or none) with `records` folded in, which must
/// be exactly the receipts from `prior`'s boundary (or 0) up to `boundary`, in order (see
/// [`StatesFold`]; memory is one entry per key).
///
/// # Errors
/// As [`StatesFold::new`], [`StatesFold::push`] and [`StatesFold::finish`].
pub fn fold_states(
    prior: Option<&BaseStates>,
    records: impl IntoIterator<Item = Receipt>,
    boundary: u64,
) -> Result<StatesMap, StatesError> {
    let mut fold = StatesFold::new(prior, boundary)?;
    for receipt in records {
        fold.push(&receipt)?;
    }
    fold.finish()
}

/// Writes `states` at `boundary` to `path` (see [`StatesWriter`]), each machine encoded.
///
/// # Errors
/// [`StatesError::Codec`] for a machine that does not encode; [`StatesError::BadEntry`]
/// for a kind position that names no kind; what [`StatesWriter`] refuses.
pub fn write_states(
    path: &Path,
    boundary: u64,
    states: &StatesMap,
) -> Result<StatesWritten, StatesError> {
    let mut writer = StatesWriter::create(path, boundary)?;
    for ((tenant, pos, resource), (count, machine)) in states {
        let key = || format!("{tenant}/{pos}/{resource}");
        let Some(&kind) = GovernorKind::ALL.get(usize::from(*pos)) else {
            return Err(StatesError::BadEntry { key: key(), problem: "no such kind".into() });
        };
        if machine.kind() != kind {
            let problem = format!("a {} machine under kind {kind}", machine.kind());
            return Err(StatesError::BadEntry { key: key(), problem });
        }
        let state =
            machine.encode_state().map_err(|source| StatesError::Codec { key: key(), source })?;
        writer.push(tenant, kind, resource, *count, &state)?;
    }
    writer.finish()
}
