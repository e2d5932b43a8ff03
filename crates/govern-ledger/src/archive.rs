//! Archiving (issue 15): the oldest sealed segments of a ledger, receipts `[0, B)`, leave the
//! data directory, and what replay needs of them stays behind. Module [`states`] keeps every
//! governor's machine state after its receipts below the boundary `B` and their count
//! (`base.states`), so that a governor whose early receipts are archived replays from that
//! state and its receipts from `B` on, never from archived segments.

pub mod states;
