//! Increasing lists of sequence numbers, stored compactly: the index keeps one per resource
//! (what its governor replays) and one per tenant. The last number is kept whole and the
//! others as LEB128 varint deltas between neighbours, so a list of one costs no bytes beyond
//! the list itself, and deltas are mostly small. Up to [`INLINE`] bytes of deltas live in the
//! list itself (24 bytes in all); longer lists spill to the heap. Most resources have few
//! receipts, and a resource's list is most of what a passivated governor costs.

/// Bytes of deltas a list keeps in place before spilling to the heap.
const INLINE: usize = 14;

/// A [`MarkedList`] marks every this many numbers.
const MARK_EVERY: u64 = if cfg!(test) { 4 } else { 1_024 };

/// An increasing list of sequence numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum SeqList {
    /// No numbers yet.
    #[default]
    Empty,
    /// A few numbers: `last`, and the deltas before it in `bytes[..used]` (each at least 1,
    /// so their count is that of bytes without the continuation bit).
    Inline {
        /// The last number pushed.
        last: u64,
        /// Bytes of `bytes` in use.
        used: u8,
        /// Varint deltas: the first is the second number minus the first.
        bytes: [u8; INLINE],
    },
    /// More numbers than fit in place.
    Spilled(Box<Spilled>),
}

/// A list too long to keep in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spilled {
    /// The first number.
    first: u64,
    /// The last number.
    last: u64,
    /// How many numbers.
    len: u64,
    /// Varint deltas between neighbours.
    bytes: Vec<u8>,
}

/// Writes `delta` as a LEB128 varint into `out`; returns how many bytes it took.
fn encode(mut delta: u64, out: &mut [u8; 10]) -> usize {
    let mut n = 0;
    for slot in out.iter_mut() {
        let byte = (delta & 0x7f) as u8;
        delta >>= 7;
        n += 1;
        if delta == 0 {
            *slot = byte;
            break;
        }
        *slot = byte | 0x80;
    }
    n
}

/// The varint delta starting at byte `at` of `bytes`, and where the next starts.
fn delta_at(bytes: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut delta = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *bytes.get(at)?;
        at += 1;
        delta |= u64::from(byte & 0x7f) << shift.min(63);
        shift += 7;
        if byte & 0x80 == 0 {
            return Some((delta, at));
        }
    }
}

/// Where a walk through a list stopped: after the number `last` (`None`: before the first),
/// the deltas after it starting at byte `at`. Still valid after more numbers are pushed (the
/// deltas only grow at the end, also when the list spills).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Resume {
    last: Option<u64>,
    at: usize,
}

/// The varint deltas in `bytes`, in order.
fn deltas(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let mut delta = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = *bytes.get(at)?;
            at += 1;
            delta |= u64::from(byte & 0x7f) << shift.min(63);
            shift += 7;
            if byte & 0x80 == 0 {
                return Some(delta);
            }
        }
    })
}

impl SeqList {
    /// How many sequence numbers the list holds.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Empty => 0,
            Self::Inline { used, bytes, .. } => {
                let ends = bytes.get(..usize::from(*used)).unwrap_or_default();
                1 + ends.iter().filter(|&&b| b & 0x80 == 0).count() as u64
            }
            Self::Spilled(s) => s.len,
        }
    }

    /// Appends `seq`, which must be greater than the last one (the ledger only grows).
    pub(crate) fn push(&mut self, seq: u64) {
        match self {
            Self::Empty => *self = Self::Inline { last: seq, used: 0, bytes: [0; INLINE] },
            Self::Inline { last, used, bytes } => {
                let mut varint = [0u8; 10];
                let n = encode(seq.wrapping_sub(*last), &mut varint);
                let at = usize::from(*used);
                if let Some(slot) = bytes.get_mut(at..at + n) {
                    slot.copy_from_slice(varint.get(..n).unwrap_or_default());
                    *used += n as u8;
                    *last = seq;
                    return;
                }
                // Spill: the first number is recovered from the deltas before `last`.
                let kept = bytes.get(..at).unwrap_or_default();
                let first = last.wrapping_sub(deltas(kept).fold(0u64, u64::wrapping_add));
                let mut heap = Vec::with_capacity(2 * INLINE);
                heap.extend_from_slice(kept);
                heap.extend_from_slice(varint.get(..n).unwrap_or_default());
                let len = 2 + kept.iter().filter(|&&b| b & 0x80 == 0).count() as u64;
                *self = Self::Spilled(Box::new(Spilled { first, last: seq, len, bytes: heap }));
            }
            Self::Spilled(s) => {
                let mut varint = [0u8; 10];
                let n = encode(seq.wrapping_sub(s.last), &mut varint);
                if s.bytes.capacity() - s.bytes.len() < n {
                    // Grow by a quarter: geometric (a tenant's list holds all its receipts)
                    // with little slack (capacity is what a passivated governor costs).
                    s.bytes.reserve_exact((s.bytes.capacity() / 4).max(16));
                }
                s.bytes.extend_from_slice(varint.get(..n).unwrap_or_default());
                s.last = seq;
                s.len += 1;
            }
        }
    }

    /// The sequence numbers, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let (first, bytes) = self.parts();
        first.into_iter().flat_map(move |first| {
            std::iter::once(first).chain(deltas(bytes).scan(first, |at, delta| {
                *at = at.wrapping_add(delta);
                Some(*at)
            }))
        })
    }

    /// The first number and the deltas after it.
    fn parts(&self) -> (Option<u64>, &[u8]) {
        match self {
            Self::Empty => (None, &[][..]),
            Self::Inline { last, used, bytes } => {
                let bytes = bytes.get(..usize::from(*used)).unwrap_or_default();
                (Some(last.wrapping_sub(deltas(bytes).fold(0u64, u64::wrapping_add))), bytes)
            }
            Self::Spilled(s) => (Some(s.first), &s.bytes[..]),
        }
    }

    /// Walks from `from` while `keep` holds for the next number (and it exists), handing
    /// each to `keep`; returns where it stopped (before the first number not kept).
    fn walk(&self, from: Resume, mut keep: impl FnMut(u64) -> bool) -> Resume {
        let (Some(first), bytes) = self.parts() else { return from };
        let mut at = from;
        let mut last = match at.last {
            Some(last) => last,
            None if keep(first) => first,
            None => return at,
        };
        at = Resume { last: Some(last), at: at.at };
        while let Some((delta, next)) = delta_at(bytes, at.at) {
            let seq = last.wrapping_add(delta);
            if !keep(seq) {
                break;
            }
            last = seq;
            at = Resume { last: Some(seq), at: next };
        }
        at
    }

    /// Appends to `out` the numbers after `from` that are below `below`, at most `n`;
    /// returns where it stopped.
    pub(crate) fn copy_from(
        &self,
        from: Resume,
        n: usize,
        below: u64,
        out: &mut Vec<u64>,
    ) -> Resume {
        let mut left = n;
        self.walk(from, |seq| {
            let take = left > 0 && seq < below;
            if take {
                left -= 1;
                out.push(seq);
            }
            take
        })
    }

    /// Where the numbers greater than `after` start, walking from `from`.
    pub(crate) fn skip_through(&self, from: Resume, after: u64) -> Resume {
        self.walk(from, |seq| seq <= after)
    }

    /// The list as a snapshot stores it ([`super::snapshot`]): its length, first and last
    /// numbers and its varint deltas, exactly the bytes it holds.
    pub(crate) fn to_parts(&self) -> Option<ListParts<'_>> {
        let (first, deltas) = self.parts();
        let last = match self {
            Self::Empty => return None,
            Self::Inline { last, .. } => *last,
            Self::Spilled(s) => s.last,
        };
        Some(ListParts { len: self.len(), first: first?, last, deltas })
    }

    /// The list whose parts are `parts`, checked: every delta a well-formed varint of at
    /// least 1, as many numbers as `len` says, the last one `last` and below `below`.
    /// `each` sees every number in order, with the byte offset after its delta (0 for the
    /// first), and may refuse it.
    pub(crate) fn from_parts(
        parts: ListParts<'_>,
        below: u64,
        mut each: impl FnMut(u64, usize) -> Result<(), String>,
    ) -> Result<Self, String> {
        let ListParts { len, first, last, deltas } = parts;
        if len == 0 {
            return Err("an empty list".into());
        }
        if first >= below {
            return Err(format!("number {first} is not below {below}"));
        }
        each(first, 0)?;
        let (mut at, mut seq, mut count) = (0usize, first, 1u64);
        while at < deltas.len() {
            // A varint of the shortest form only (as pushing writes it): its last byte is
            // not zero unless it is the only one.
            let (delta, next) = delta_at(deltas, at)
                .filter(|&(_, next)| next - at <= 10)
                .filter(|&(_, next)| next - at == 1 || deltas.get(next - 1) != Some(&0))
                .ok_or_else(|| format!("a malformed delta at byte {at}"))?;
            seq = seq
                .checked_add(delta)
                .filter(|&s| delta > 0 && s < below)
                .ok_or_else(|| format!("a delta of {delta} after {seq} (numbers below {below})"))?;
            at = next;
            count += 1;
            each(seq, at)?;
        }
        if count != len || seq != last {
            return Err(format!(
                "{count} numbers ending at {seq}, the list says {len} ending at {last}"
            ));
        }
        if deltas.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes.get_mut(..deltas.len()).unwrap_or_default().copy_from_slice(deltas);
            Ok(Self::Inline { last, used: deltas.len() as u8, bytes })
        } else {
            Ok(Self::Spilled(Box::new(Spilled { first, last, len, bytes: deltas.to_vec() })))
        }
    }

    /// Bytes of deltas in use: where the delta of the next number pushed will start.
    fn delta_len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Inline { used, .. } => usize::from(*used),
            Self::Spilled(s) => s.bytes.len(),
        }
    }

    /// The last number, if any.
    pub(crate) fn last(&self) -> Option<u64> {
        match self {
            Self::Empty => None,
            Self::Inline { last, .. } => Some(*last),
            Self::Spilled(s) => Some(s.last),
        }
    }

    /// Heap bytes the list holds beyond itself.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Spilled(s) => size_of::<Spilled>() + s.bytes.capacity(),
            _ => 0,
        }
    }
}

/// A list's parts as a snapshot stores them (see [`SeqList::to_parts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListParts<'a> {
    /// How many numbers.
    pub(crate) len: u64,
    /// The first.
    pub(crate) first: u64,
    /// The last.
    pub(crate) last: u64,
    /// The varint deltas between neighbours.
    pub(crate) deltas: &'a [u8],
}

impl ListParts<'_> {
    /// The numbers, in order (parts already checked by [`SeqList::from_parts`], or
    /// written by this ledger).
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        std::iter::once(self.first).chain(deltas(self.deltas).scan(self.first, |at, delta| {
            *at = at.wrapping_add(delta);
            Some(*at)
        }))
    }
}

/// Writes `n` as a LEB128 varint at the end of `out`.
pub(crate) fn put_varint(out: &mut Vec<u8>, n: u64) {
    let mut varint = [0u8; 10];
    let len = encode(n, &mut varint);
    out.extend_from_slice(varint.get(..len).unwrap_or_default());
}

/// A [`SeqList`] marked every [`MARK_EVERY`] numbers, so that a walk from a given number
/// starts at the mark before it instead of at the list's start: a tenant's list, read page by
/// page from a cursor. A mark costs 16 bytes per `MARK_EVERY` numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MarkedList {
    list: SeqList,
    /// After every `MARK_EVERY`th number: where a walk stands after it.
    marks: Vec<Resume>,
}

impl MarkedList {
    /// Appends `seq`, greater than the last one.
    pub(crate) fn push(&mut self, seq: u64) {
        self.list.push(seq);
        // A list marked at all has spilled: its length is kept, not counted.
        if self.list.len().is_multiple_of(MARK_EVERY) {
            self.marks.push(Resume { last: Some(seq), at: self.list.delta_len() });
        }
    }

    /// The list whose parts are `parts` (checked as [`SeqList::from_parts`] checks them),
    /// marked as pushing its numbers one by one would have marked it.
    pub(crate) fn from_parts(
        parts: ListParts<'_>,
        below: u64,
        mut each: impl FnMut(u64) -> Result<(), String>,
    ) -> Result<Self, String> {
        let mut marks = Vec::new();
        let mut count = 0u64;
        let list = SeqList::from_parts(parts, below, |seq, at| {
            count += 1;
            if count.is_multiple_of(MARK_EVERY) {
                marks.push(Resume { last: Some(seq), at });
            }
            each(seq)
        })?;
        Ok(Self { list, marks })
    }

    /// Heap bytes the list and its marks hold beyond themselves.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.list.heap_bytes() + self.marks.capacity() * size_of::<Resume>()
    }

    /// The list.
    pub(crate) fn list(&self) -> &SeqList {
        &self.list
    }

    /// Where the numbers greater than `after` start (all of them for `None`).
    pub(crate) fn resume_after(&self, after: Option<u64>) -> Resume {
        let Some(after) = after else { return Resume::default() };
        let i = self.marks.partition_point(|m| m.last.is_some_and(|last| last <= after));
        let from = i.checked_sub(1).and_then(|i| self.marks.get(i)).copied().unwrap_or_default();
        self.list.skip_through(from, after)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{MarkedList, Resume, SeqList};

    #[test]
    fn a_list_is_24_bytes_and_short_lists_stay_in_place() {
        assert_eq!(size_of::<SeqList>(), 24);
        let mut s = SeqList::default();
        assert_eq!((s.len(), s.iter().next()), (0, None));
        // A governor's nine receipts a few hundred apart: 8 deltas of 2 bytes would not fit,
        // of 1 byte do.
        for seq in (0..9).map(|i| 10_000_000 + i * 100) {
            s.push(seq);
        }
        assert_eq!(s.len(), 9);
        assert_eq!(s.heap_bytes(), 0);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            (0..9).map(|i| 10_000_000 + i * 100).collect::<Vec<_>>()
        );
        // One receipt, however large its number, takes no delta at all.
        let mut one = SeqList::default();
        one.push(u64::MAX - 1);
        assert_eq!((one.len(), one.heap_bytes()), (1, 0));
        assert_eq!(one.iter().collect::<Vec<_>>(), [u64::MAX - 1]);
    }

    #[test]
    fn long_lists_spill_and_grow_geometrically() {
        let mut s = SeqList::default();
        for seq in 0..1_000_000u64 {
            s.push(seq * 3);
        }
        assert_eq!(s.len(), 1_000_000);
        // One byte per delta, at most a quarter more in capacity.
        assert!(s.heap_bytes() <= 1_000_000 * 5 / 4 + 100, "{}", s.heap_bytes());
        assert!(s.iter().eq((0..1_000_000u64).map(|q| q * 3)));
    }

    proptest! {
        #[test]
        fn any_increasing_list_round_trips(mut seqs in prop::collection::vec(any::<u64>(), 0..50)) {
            seqs.sort_unstable();
            seqs.dedup();
            let mut s = SeqList::default();
            for (n, &q) in seqs.iter().enumerate() {
                s.push(q);
                prop_assert_eq!(s.len(), n as u64 + 1);
                prop_assert_eq!(s.iter().collect::<Vec<_>>(), seqs[..=n].to_vec());
            }
            prop_assert_eq!(s.len(), seqs.len() as u64);
        }

        #[test]
        fn small_deltas_round_trip(start in any::<u32>(), steps in prop::collection::vec(1u64..300, 0..40)) {
            let mut seqs = vec![u64::from(start)];
            for step in steps {
                let next = seqs[seqs.len() - 1] + step;
                seqs.push(next);
            }
            let mut s = SeqList::default();
            for &q in &seqs {
                s.push(q);
            }
            prop_assert_eq!(s.len(), seqs.len() as u64);
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), seqs);
        }
    }

    proptest! {
        #[test]
        fn walks_resume_where_they_stopped_and_pages_start_after_any_number(
            steps in prop::collection::vec(1u64..400, 0..60),
            batch in 1usize..7,
            below in any::<u16>(),
            after in any::<u16>(),
        ) {
            let mut seqs = Vec::new();
            let mut marked = MarkedList::default();
            let mut at = 0u64;
            for step in steps {
                at += step;
                seqs.push(at);
                marked.push(at);
            }
            // In batches, each resuming where the last stopped, as reads copy a list under
            // several holds of the ledger's lock.
            let (below, after) = (u64::from(below), u64::from(after));
            let mut got = Vec::new();
            let mut from = Resume::default();
            loop {
                let before = got.len();
                from = marked.list().copy_from(from, batch, below, &mut got);
                if got.len() - before < batch {
                    break;
                }
            }
            let want: Vec<u64> = seqs.iter().copied().filter(|&q| q < below).collect();
            prop_assert_eq!(&got, &want);
            let mut page = Vec::new();
            marked.list().copy_from(marked.resume_after(Some(after)), usize::MAX, u64::MAX, &mut page);
            let want: Vec<u64> = seqs.iter().copied().filter(|&q| q > after).collect();
            prop_assert_eq!(page, want);
            let mut all = Vec::new();
            marked.list().copy_from(marked.resume_after(None), usize::MAX, u64::MAX, &mut all);
            prop_assert_eq!(all, seqs);
        }
    }
}
