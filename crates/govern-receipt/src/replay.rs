//! Rebuilding a governor from its receipts: the ledger is the system of record.

use govern_governors::{
    Args, Governor, Machine, ReplayError as StepError, ResourceId, TenantId, Timestamp, replay_step,
};

use crate::receipt::Receipt;

/// Why receipts do not replay into a governor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The receipt at `seq` does not fit the machine.
    #[error("receipt {seq}: {source}")]
    Step {
        /// The receipt's global sequence number.
        seq: u64,
        /// Why.
        source: govern_governors::ReplayError,
    },
    /// The receipts skip or repeat a per-resource sequence number.
    #[error("receipt {seq}: resource_seq {found}, expected {expected}")]
    ResourceSeq {
        /// The receipt's global sequence number.
        seq: u64,
        /// The expected per-resource number.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// The receipts belong to more than one (tenant, resource).
    #[error("receipt {seq} belongs to another tenant or resource")]
    OtherResource {
        /// The receipt's global sequence number.
        seq: u64,
    },
}

/// Folds the receipts of one resource, in order, into the governor they describe.
///
/// # Errors
/// [`ReplayError`] on the first receipt that does not fit.
pub fn replay<'a, G: Governor>(
    receipts: impl IntoIterator<Item = &'a Receipt>,
) -> Result<G, ReplayError> {
    replay_from(G::default(), 0, receipts)
}

/// Folds the receipts of one resource, in order, into `machine`, the state its first
/// `first_resource_seq` receipts left (decoded from a snapshot, when those receipts are
/// archived): the first receipt must have `resource_seq` `first_resource_seq`, and each next
/// one the number after. [`replay`] is this from the initial machine and 0.
///
/// # Errors
/// [`ReplayError`] on the first receipt that does not fit.
pub fn replay_from<'a, G: Governor>(
    machine: G,
    first_resource_seq: u64,
    receipts: impl IntoIterator<Item = &'a Receipt>,
) -> Result<G, ReplayError> {
    let mut machine = machine;
    fold(first_resource_seq, receipts, |r| {
        apply(r, |governor, command, args, from, to, at| {
            replay_step(&mut machine, governor, command, args, from, to, at)
        })
    })?;
    Ok(machine)
}

/// [`replay_from`] for a machine of a kind known at run time ([`Machine`]): what a ledger
/// folds archived receipts into, and checks them with.
///
/// # Errors
/// [`ReplayError`] on the first receipt that does not fit.
pub fn replay_machine_from<'a>(
    machine: Machine,
    first_resource_seq: u64,
    receipts: impl IntoIterator<Item = &'a Receipt>,
) -> Result<Machine, ReplayError> {
    let mut machine = machine;
    fold(first_resource_seq, receipts, |r| replay_machine_step(&mut machine, r))?;
    Ok(machine)
}

/// Applies receipt `r`'s recorded transition to `machine` (its `resource_seq` is the
/// caller's to check, as [`replay_machine_from`] does). A failed step leaves the machine as
/// it was.
///
/// # Errors
/// [`ReplayError::Step`] when the receipt does not fit the machine.
pub fn replay_machine_step(machine: &mut Machine, r: &Receipt) -> Result<(), ReplayError> {
    apply(r, |governor, command, args, from, to, at| {
        machine.replay_step(governor, command, args, from, to, at)
    })
}

/// Checks that `receipts` are of one resource and numbered from `first_resource_seq` on,
/// handing each to `step` in order.
fn fold<'a>(
    first_resource_seq: u64,
    receipts: impl IntoIterator<Item = &'a Receipt>,
    mut step: impl FnMut(&Receipt) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    let mut owner: Option<(&TenantId, &ResourceId)> = None;
    for (expected, r) in (first_resource_seq..).zip(receipts) {
        let b = &r.body;
        match owner {
            None => owner = Some((&b.tenant, &b.resource)),
            Some((t, res)) if *t != b.tenant || *res != b.resource => {
                return Err(ReplayError::OtherResource { seq: r.seq });
            }
            Some(_) => {}
        }
        if b.resource_seq != expected {
            return Err(ReplayError::ResourceSeq { seq: r.seq, expected, found: b.resource_seq });
        }
        step(r)?;
    }
    Ok(())
}

/// One recorded transition's step (`replay_step` of a type, or of a [`Machine`]) applied
/// with receipt `r`'s fields, its failure named by the receipt.
fn apply(
    r: &Receipt,
    step: impl FnOnce(&str, &str, &Args, &str, &str, Timestamp) -> Result<(), StepError>,
) -> Result<(), ReplayError> {
    let b = &r.body;
    step(b.governor.name(), &b.command, &b.args, &b.state_from, &b.state_to, b.timestamp)
        .map_err(|source| ReplayError::Step { seq: r.seq, source })
}
