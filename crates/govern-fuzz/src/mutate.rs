//! A small deterministic mutator for `cargo test`'s runs of the targets: no coverage, no
//! feedback (that is the fuzzing engine's job in `fuzz/`); each input derives from a seed by a
//! few byte-level and token-level edits drawn from a fixed-seed xorshift generator, so a
//! failing input is the same on every run.

/// Xorshift64*: enough randomness to mutate bytes, reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift stays at 0).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// Fragments that parsers treat specially: structure of TOML and JSON, number edges, UTF-8
/// edges, the header's own syntax.
const TOKENS: &[&[u8]] = &[
    b"=",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b",",
    b"\"",
    b"'",
    b"\n",
    b"\r\n",
    b"#",
    b".",
    b":",
    b"\\u0000",
    b"0",
    b"-1",
    b"18446744073709551616",
    b"9223372036854775807",
    b"1e999",
    b"-0",
    b"nan",
    b"inf",
    b"true",
    b"null",
    b"1979-05-27T07:32:00Z",
    b"\"\"\"",
    b"\xc3\xa9",
    b"\xf0\x9f\x92\xb8",
    b"\xff",
    b"t=",
    b"v1=",
    b"v0=",
    b"[]",
    b"{}",
    b"\0",
    b"   ",
];

/// Applies one to four random edits to `input`, staying within `max` bytes; `other` (another
/// seed) may be spliced in.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], max: usize) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        let at = rng.below(len + 1);
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let n = 1 + rng.below(len.min(64));
                let start = rng.below(len - n + 1);
                input.drain(start..start + n);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let n = 1 + rng.below(len.min(256));
                let start = rng.below(len - n + 1);
                let chunk = input[start..start + n].to_vec();
                input.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let n = 1 + rng.below(other.len().min(512));
                let start = rng.below(other.len() - n + 1);
                input.splice(at..at, other[start..start + n].iter().copied());
            }
            6 => input.truncate(at),
            7 if len >= 4 => {
                // An interesting integer over four bytes (lengths, sequence numbers, CRCs).
                let i = rng.below(len - 3);
                let v: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 1 << 20, (1 << 20) + 1][rng.below(6)];
                input[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let end = (at + token.len()).min(len);
                input.splice(at..end, token.iter().copied());
            }
        }
    }
    input.truncate(max);
}
