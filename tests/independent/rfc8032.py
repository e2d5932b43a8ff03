#!/usr/bin/env python3
"""Ed25519 signature verification: the verification half of RFC 8032 section 6's reference code.

Standard library only, so that the independent verifiers in this directory need nothing
installed. Written from RFC 8032 (https://www.rfc-editor.org/rfc/rfc8032#section-6), not from
any govern source. Import it and call `verify(public_key, message, signature)`; it returns
True or False (and False, never an exception, for a key or signature of the wrong length).

Differences from the RFC's listing, all on the side of refusing bad input:
  - `verify` returns False for a signature that is not 64 bytes (the listing builds an
    Exception there but forgets to raise it) and for a key that is not 32 bytes;
  - `recover_x` reduces x^2 modulo p before testing it for zero (the listing tests the
    unreduced product, which y = p - 1 makes a non-zero multiple of p);
  - a non-canonical encoding (y >= p) is refused, as the listing already does.
This is "pure" Ed25519 (no context, no prehash) with the RFC's cofactorless check
[S]B = R + [k]A, which is what the listing does.

Run as a script it checks RFC 8032 section 7.1's TEST 1 and TEST 2 (and that a changed
message, signature or key fails); exit status 0 iff they hold.

This code is not constant-time; it only verifies public data.
"""

import hashlib
import sys

# Base field Z_p
p = 2 ** 255 - 19


def modp_inv(x):
    return pow(x, p - 2, p)


# Curve constant
d = -121665 * modp_inv(121666) % p

# Group order
q = 2 ** 252 + 27742317777372353535851937790883648493


def sha512_modq(s):
    return int.from_bytes(hashlib.sha512(s).digest(), "little") % q


# Points are tuples (X, Y, Z, T) of extended coordinates, x = X/Z, y = Y/Z, x*y = T/Z.

def point_add(P, Q):
    A, B = (P[1] - P[0]) * (Q[1] - Q[0]) % p, (P[1] + P[0]) * (Q[1] + Q[0]) % p
    C, D = 2 * P[3] * Q[3] * d % p, 2 * P[2] * Q[2] % p
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F, G * H, F * G, E * H)


def point_mul(s, P):
    """Q = s * P."""
    Q = (0, 1, 1, 0)  # neutral element
    while s > 0:
        if s & 1:
            Q = point_add(Q, P)
        P = point_add(P, P)
        s >>= 1
    return Q


def point_equal(P, Q):
    # x1 / z1 == x2 / z2  <==>  x1 * z2 == x2 * z1
    if (P[0] * Q[2] - Q[0] * P[2]) % p != 0:
        return False
    if (P[1] * Q[2] - Q[1] * P[2]) % p != 0:
        return False
    return True


# Square root of -1
modp_sqrt_m1 = pow(2, (p - 1) // 4, p)


def recover_x(y, sign):
    """The x-coordinate for y whose low bit is `sign`, or None."""
    if y >= p:
        return None
    x2 = (y * y - 1) * modp_inv(d * y * y + 1) % p
    if x2 == 0:
        if sign:
            return None
        return 0
    # square root of x2
    x = pow(x2, (p + 3) // 8, p)
    if (x * x - x2) % p != 0:
        x = x * modp_sqrt_m1 % p
    if (x * x - x2) % p != 0:
        return None
    if (x & 1) != sign:
        x = p - x
    return x


# Base point
g_y = 4 * modp_inv(5) % p
g_x = recover_x(g_y, 0)
G = (g_x, g_y, 1, g_x * g_y % p)


def point_decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % p)


def verify(public, msg, signature):
    """True iff `signature` (64 bytes) is a valid Ed25519 signature of `msg` under `public` (32 bytes)."""
    public, msg, signature = bytes(public), bytes(msg), bytes(signature)
    if len(public) != 32 or len(signature) != 64:
        return False
    A = point_decompress(public)
    if not A:
        return False
    Rs = signature[:32]
    R = point_decompress(Rs)
    if not R:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= q:
        return False
    h = sha512_modq(Rs + public + msg)
    sB = point_mul(s, G)
    hA = point_mul(h, A)
    return point_equal(sB, point_add(R, hA))


# RFC 8032 section 7.1, TEST 1 (the empty message).
TEST1_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
TEST1_MESSAGE = b""
TEST1_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")

# RFC 8032 section 7.1, TEST 2 (the one-byte message 0x72).
TEST2_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
TEST2_MESSAGE = bytes.fromhex("72")
TEST2_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")


def self_check():
    """RFC 8032 TEST 1 and TEST 2 verify, and stop verifying when any part is changed.
    Returns (what, held) pairs."""
    results = [
        ("RFC 8032 TEST 1 verifies", verify(TEST1_PUBLIC, TEST1_MESSAGE, TEST1_SIGNATURE)),
        ("TEST 1 with one message byte added fails",
         not verify(TEST1_PUBLIC, b"\x00", TEST1_SIGNATURE)),
        ("TEST 1 with a bit of R flipped fails",
         not verify(TEST1_PUBLIC, TEST1_MESSAGE, bytes([TEST1_SIGNATURE[0] ^ 1]) + TEST1_SIGNATURE[1:])),
        ("TEST 1 with a bit of S flipped fails",
         not verify(TEST1_PUBLIC, TEST1_MESSAGE, TEST1_SIGNATURE[:40] + bytes([TEST1_SIGNATURE[40] ^ 1])
                    + TEST1_SIGNATURE[41:])),
        ("TEST 1 with a bit of the key flipped fails",
         not verify(bytes([TEST1_PUBLIC[0] ^ 1]) + TEST1_PUBLIC[1:], TEST1_MESSAGE, TEST1_SIGNATURE)),
        ("TEST 1 with S + q (non-canonical) fails",
         not verify(TEST1_PUBLIC, TEST1_MESSAGE,
                    TEST1_SIGNATURE[:32]
                    + (int.from_bytes(TEST1_SIGNATURE[32:], "little") + q).to_bytes(32, "little"))),
        ("a truncated signature fails", not verify(TEST1_PUBLIC, TEST1_MESSAGE, TEST1_SIGNATURE[:63])),
        ("RFC 8032 TEST 2 verifies", verify(TEST2_PUBLIC, TEST2_MESSAGE, TEST2_SIGNATURE)),
        ("TEST 2 with its message byte changed fails", not verify(TEST2_PUBLIC, b"\x73", TEST2_SIGNATURE)),
        ("TEST 2 with a bit of R flipped fails",
         not verify(TEST2_PUBLIC, TEST2_MESSAGE, bytes([TEST2_SIGNATURE[0] ^ 1]) + TEST2_SIGNATURE[1:])),
        ("TEST 2's signature with TEST 1's key fails", not verify(TEST1_PUBLIC, TEST2_MESSAGE, TEST2_SIGNATURE)),
    ]
    return results


def main():
    results = self_check()
    failed = 0
    for what, ok in results:
        print("%s %s" % ("ok  " if ok else "FAIL", what))
        failed += not ok
    print("rfc8032: %d checks, %d failed" % (len(results), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
