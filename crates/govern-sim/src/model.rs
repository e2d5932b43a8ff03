//! The pure model the simulator checks the runtime against: every governor the run touched,
//! as a [`Machine`] decided through the pure core alone (`Machine::accept_raw`), and the
//! receipts it must have (command, arguments as completed, states, time), in order. The
//! runtime's receipts and states must equal these after every check: the pure core is the
//! oracle.

use std::collections::BTreeMap;

use govern_governors::{Args, Ctx, GovernorKind, Machine, RawTransition, ResourceId, TenantId};
use govern_governors::{Rejection, Timestamp};

/// One governor of the model.
#[derive(Clone, Debug)]
pub(crate) struct Gov {
    pub(crate) machine: Machine,
    /// The receipts it must have, in `resource_seq` order.
    pub(crate) receipts: Vec<Expected>,
}

/// A receipt the model expects: what a receipt body of the runtime must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) command: String,
    pub(crate) args: Args,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) at: Timestamp,
}

/// A governor's key.
pub(crate) type Key = (TenantId, GovernorKind, ResourceId);

/// Every governor the run touched.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub(crate) govs: BTreeMap<Key, Gov>,
}

impl Model {
    /// The governor of `key`, new if the run never touched it.
    pub(crate) fn gov(&self, key: &Key) -> Gov {
        self.govs
            .get(key)
            .cloned()
            .unwrap_or_else(|| Gov { machine: Machine::new(key.1), receipts: Vec::new() })
    }

    /// What the model decides for `name(args)` at `now`, without applying it.
    pub(crate) fn decide(
        &self,
        key: &Key,
        name: &str,
        args: &Args,
        now: Timestamp,
    ) -> Result<(Gov, RawTransition), Rejection> {
        self.decide_from(self.gov(key), name, args, now)
    }

    /// What the model decides for `name(args)` at `now` from `gov`.
    pub(crate) fn decide_from(
        &self,
        mut gov: Gov,
        name: &str,
        args: &Args,
        now: Timestamp,
    ) -> Result<(Gov, RawTransition), Rejection> {
        let t = gov.machine.accept_raw(name, args, &Ctx { now })?;
        gov.receipts.push(Expected {
            command: name.to_owned(),
            args: t.args.clone(),
            from: t.from.to_owned(),
            to: t.to.to_owned(),
            at: now,
        });
        Ok((gov, t))
    }

    /// Keeps a decision the runtime agreed with.
    pub(crate) fn commit(&mut self, key: Key, gov: Gov) {
        self.govs.insert(key, gov);
    }
}
