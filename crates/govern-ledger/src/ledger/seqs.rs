//! The sequence numbers of one resource's receipts, stored compactly: they only grow, so
//! each is kept as a LEB128 varint delta from the previous one. Nine receipts of a governor
//! take about 20 bytes instead of a 128-byte `Vec<u64>`; this is most of what a passivated
//! governor costs.

/// An increasing list of sequence numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SeqList {
    /// Varint deltas; the first is from 0.
    bytes: Vec<u8>,
    /// The last sequence number pushed.
    last: u64,
    /// How many were pushed.
    len: u32,
}

impl SeqList {
    /// How many sequence numbers the list holds.
    pub(crate) fn len(&self) -> u64 {
        u64::from(self.len)
    }

    /// Appends `seq`, which must be greater than the last one (the ledger only grows).
    pub(crate) fn push(&mut self, seq: u64) {
        let mut delta = seq.wrapping_sub(if self.len == 0 { 0 } else { self.last });
        if self.bytes.len() == self.bytes.capacity() {
            // Grow by a little: most lists stay short, and capacity is what a passivated
            // governor costs.
            self.bytes.reserve_exact(8);
        }
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                self.bytes.push(byte);
                break;
            }
            self.bytes.push(byte | 0x80);
        }
        self.last = seq;
        self.len = self.len.saturating_add(1);
    }

    /// The sequence numbers, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let mut at = 0;
        let mut prev = 0u64;
        std::iter::from_fn(move || {
            let mut delta = 0u64;
            let mut shift = 0u32;
            loop {
                let byte = *self.bytes.get(at)?;
                at += 1;
                delta |= u64::from(byte & 0x7f) << shift.min(63);
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            prev = prev.wrapping_add(delta);
            Some(prev)
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::SeqList;

    #[test]
    fn nine_receipts_fit_in_a_few_bytes() {
        let mut s = SeqList::default();
        for seq in (0..9).map(|i| 1_000_000 + i * 40_000) {
            s.push(seq);
        }
        assert_eq!(s.len(), 9);
        // 3 bytes for the first (about a million), 3 for each delta of 40 000: 27, in 32.
        assert!(s.bytes.capacity() <= 32, "{}", s.bytes.capacity());
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            (0..9).map(|i| 1_000_000 + i * 40_000).collect::<Vec<_>>()
        );
    }

    proptest! {
        #[test]
        fn any_increasing_list_round_trips(mut seqs in prop::collection::vec(any::<u64>(), 0..50)) {
            seqs.sort_unstable();
            seqs.dedup();
            let mut s = SeqList::default();
            for &q in &seqs {
                s.push(q);
            }
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), seqs.clone());
            prop_assert_eq!(s.len(), seqs.len() as u64);
        }
    }
}
