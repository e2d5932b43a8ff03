#!/usr/bin/env python3
"""Independent verifier of a tenant's export, written from docs/receipts.md alone
("Merkle tree, proofs and checkpoints": the tree, the proofs, both checkpoint forms and
"Exports with proofs"), standard library only. Ed25519 verification is RFC 8032 section 6's
reference code (rfc8032.py); the receipt's JSON view and preimage come from verify_receipts.py
(also written from the page alone). verify_data_dir.py uses its tree and checkpoint code.

Usage:
  python3 tests/independent/verify_export.py --self-test [docs/receipts.md]
      checks the page's vectors (Merkle roots and proofs, the signed note and its key ids)
      and the signed-note example of c2sp.org, with this file's own code;
  python3 tests/independent/verify_export.py EXPORT --public-key PUB [--checkpoint CP]
      verifies an export made by `govern export --with-proofs` against CP (JSON checkpoint
      or C2SP signed note, saved earlier) or else the export's own checkpoint.

Exit status 0 when everything verifies, 1 on the first failure (printed), 2 on bad usage.
"""

import base64
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rfc8032  # noqa: E402  (Ed25519 verification)
import verify_receipts as vr  # noqa: E402  (the JSON view, preimage encoding and receipt ids)

EXPORT_FORMAT = "govern.export.v1"
NOTE_MAX = 64 * 1024            # also the most a checkpoint file (either form) may have
KEY_FILE_MAX = 1024
NOTE_SIGNATURES_MAX = 100
ORIGIN_MAX = 256
EM_DASH = "\u2014"


class Failure(Exception):
    """The first check that failed. `kind` names the check (a self-test asserts that a damage
    is caught by its own check); segment, offset and seq say where, when known."""

    def __init__(self, kind, detail, segment=None, offset=None, seq=None):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.segment = segment
        self.offset = offset
        self.seq = seq

    def line(self):
        where = []
        if self.segment is not None:
            where.append("segment %s" % self.segment)
        if self.offset is not None:
            where.append("offset %d" % self.offset)
        if self.seq is not None:
            where.append("seq %d" % self.seq)
        return "FAIL: %s%s: %s" % (self.kind, (" at " + ", ".join(where)) if where else "", self.detail)


def fail(msg, kind="export"):
    raise Failure(kind, msg)


class FailFast:
    """A tally for verify_receipts' checks that fails at the first check that does not hold."""

    def __init__(self, where):
        self.where = where

    def check(self, cond, what, detail=""):
        if not cond:
            fail("%s: %s%s" % (self.where, what, (": " + detail) if detail else ""))
        return True

    def eq(self, got, want, what):
        return self.check(got == want, what, "found %r, expected %r" % (got, want))


# --------------------------------------------------------------------------
# The tree ("The tree")
# --------------------------------------------------------------------------

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(receipt_hash):
    return hashlib.sha256(b"\x00" + receipt_hash).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(leaves):
    """Root of a list of leaf hashes, by the recursive definition."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(tree_root(leaves[:k]), tree_root(leaves[k:]))


def verify_inclusion(leaf, index, size, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m, n, first_root, second_root, proof):
    if m > n:
        return False
    if m == 0:
        return not proof and first_root == EMPTY_ROOT
    if m == n:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, first_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --------------------------------------------------------------------------
# Checkpoints ("Signed checkpoints")
# --------------------------------------------------------------------------

def hex_field(value, chars, what, kind="export"):
    # fullmatch: `$` would let a final newline through (and bytes.fromhex ignores it)
    if not isinstance(value, str) or not re.fullmatch("[0-9a-f]{%d}" % chars, value):
        fail("%s: expected %d lowercase hex characters, found %r" % (what, chars, value), kind)
    return bytes.fromhex(value)


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 64


def load_json(text, kind="export"):
    """A JSON value; objects as dicts, in document order, a repeated key refused."""
    try:
        return json.loads(text, object_pairs_hook=lambda pairs: dict(vr.no_dup_pairs(pairs)))
    except ValueError as e:
        fail("not JSON: %s" % e, kind)


def verify_json_checkpoint(obj, public):
    """Returns (size, root) of a JSON checkpoint object whose signature verifies. Fails with
    kind checkpoint_format, checkpoint_key (another key's) or checkpoint_signature."""
    fields = ["size", "root", "timestamp_ms", "key_id", "signature"]
    if not isinstance(obj, dict) or sorted(obj) != sorted(fields):
        fail("a JSON checkpoint has exactly the fields %s, found %r" % (fields, obj), "checkpoint_format")
    for f in ("size", "timestamp_ms"):
        if not is_uint(obj[f]):
            fail("%s is %r, not an unsigned integer" % (f, obj[f]), "checkpoint_format")
    root = hex_field(obj["root"], 64, "root", "checkpoint_format")
    key_id = hex_field(obj["key_id"], 16, "key_id", "checkpoint_format")
    signature = hex_field(obj["signature"], 128, "signature", "checkpoint_format")
    if key_id != hashlib.sha256(public).digest()[:8]:
        fail("key id mismatch: the checkpoint names key %s, the public key's id is %s"
             % (obj["key_id"], hashlib.sha256(public).digest()[:8].hex()), "checkpoint_key")
    message = "govern.checkpoint.v1\n%d\n%s\n%d\n" % (obj["size"], obj["root"], obj["timestamp_ms"])
    if not rfc8032.verify(public, message.encode(), signature):
        fail("bad checkpoint signature: it does not verify with the public key", "checkpoint_signature")
    return obj["size"], root


def b64(s):
    try:
        raw = base64.b64decode(s, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode() == s else None


def note_key_id(name, public):
    return hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]


def key_name_ok(name):
    return bool(name) and not any(c.isspace() or ord(c) < 0x20 or c == "+" for c in name)


def parse_note(note):
    """(text, [(name, key id, signature bytes)]) of a signed note, by its syntax."""
    def bad(msg):
        fail(msg, "checkpoint_format")

    if len(note.encode()) > NOTE_MAX:
        bad("a note larger than %d bytes" % NOTE_MAX)
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        bad("a control character in the note")
    if not note.endswith("\n"):
        bad("the note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        bad("no blank line before the signatures")
    text, lines = note[:split + 1], note[split + 2:-1].split("\n")
    if len(lines) > NOTE_SIGNATURES_MAX:
        bad("too many signatures")
    sigs = []
    for line in lines:
        if not line.startswith(EM_DASH + " "):
            bad("a line after the blank line is not a signature: %r" % line)
        parts = line[2:].split(" ")
        if len(parts) != 2 or not key_name_ok(parts[0]):
            bad("a malformed signature line: %r" % line)
        blob = b64(parts[1])
        if blob is None or len(blob) < 5:
            bad("a signature that is not base64 of a key id and a signature: %r" % line)
        sigs.append((parts[0], blob[:4], blob[4:]))
    return text, sigs


def verify_note_checkpoint(note, public):
    """Returns (size, root, origin) of a C2SP checkpoint note signed by `public`. Fails with
    kind checkpoint_format, checkpoint_key (no signature of the key) or checkpoint_signature."""
    text, sigs = parse_note(note)
    lines = text[:-1].split("\n")
    if len(lines) != 3:
        fail("a checkpoint note text has 3 lines (no extension lines), found %d" % len(lines), "checkpoint_format")
    origin, size, root = lines
    # the origin is also the key name, 1 to 256 bytes, and does not start with "{"
    if not key_name_ok(origin) or len(origin.encode()) > ORIGIN_MAX or origin.startswith("{"):
        fail("origin %r cannot be a key name" % origin, "checkpoint_format")
    if not re.fullmatch(r"0|[1-9][0-9]*", size) or int(size) >= 2 ** 64:
        fail("size %r is not a decimal u64 without leading zeros" % size, "checkpoint_format")
    root_bytes = b64(root)
    if root_bytes is None or len(root_bytes) != 32:
        fail("root %r is not the base64 of 32 bytes" % root, "checkpoint_format")
    kid = note_key_id(origin, public)
    mine = [s for s in sigs if s[0] == origin and s[1] == kid]
    if not mine:
        fail("the note has no signature by key %s+%s" % (origin, kid.hex()), "checkpoint_key")
    for _, _, sig in mine:
        if not rfc8032.verify(public, text.encode(), sig):
            fail("bad signature on the note", "checkpoint_signature")
    return int(size), root_bytes, origin


def verify_checkpoint_text(text, public):
    """(size, root) of a checkpoint file's text, either form, whose signature verifies."""
    if text.lstrip().startswith("{"):
        return verify_json_checkpoint(load_json(text, "checkpoint_format"), public)[:2]
    return verify_note_checkpoint(text, public)[:2]


def read_checkpoint_file(path):
    """A checkpoint file's text: at most 64 KiB of UTF-8."""
    with open(path, "rb") as fh:
        raw = fh.read(NOTE_MAX + 1)
    if len(raw) > NOTE_MAX:
        fail("%s is larger than %d bytes" % (path, NOTE_MAX), "checkpoint_format")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("%s is not UTF-8: %s" % (path, e), "checkpoint_format")


def load_public_key(path):
    """The 32 bytes of a public key file: 64 lowercase hex digits and a newline, as
    checkpoint.pub is written (the newline may be left out)."""
    with open(path, "rb") as fh:
        raw = fh.read(KEY_FILE_MAX + 1)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        fail("%s is not ASCII text" % path, "public_key")
    if text.endswith("\n"):
        text = text[:-1]
    return hex_field(text, 64, "public key in %s" % path, "public_key")


# --------------------------------------------------------------------------
# Exports ("Exports with proofs")
# --------------------------------------------------------------------------

def receipt_native(j, where):
    """A receipt's JSON view -> the native form verify_receipts.build_preimage takes, by
    verify_receipts' rules of the JSON view (args and metadata keys in bytewise order
    included), and the governor and id rules a decoder applies."""
    if not isinstance(j, dict):
        fail("%s: a receipt is a JSON object" % where)
    r, _ = vr.receipt_from_json(j, T=FailFast(where))
    for f in ("tenant_id", "resource_id"):
        if not vr.ID_RE.fullmatch(r[f]):
            fail("%s: %s %r is outside the alphabet" % (where, f, r[f]))
    if r["governor"] not in vr.GOVERNORS:
        fail("%s: an unknown governor %r" % (where, r["governor"]))
    return r


def hexes(v, what):
    if not isinstance(v, list):
        fail("%s is not an array" % what)
    return [hex_field(h, 64, what) for h in v]


def verify_export(lines, public, trusted):
    """lines: the export's lines (str); trusted: (name, size, root) or None. Returns a report."""
    if not lines:
        fail("empty export")
    header = load_json(lines[0])
    want = ["export", "tenant_id", "tree_size", "root", "checkpoint", "checkpoint_note",
            "consistency_proofs"]
    if not isinstance(header, dict) or sorted(header) != sorted(want):
        fail("line 1 is not an export header with the fields %s" % want)
    if header["export"] != EXPORT_FORMAT:
        fail("unknown export format %r" % header["export"])
    n, root = header["tree_size"], hex_field(header["root"], 64, "root")
    if not is_uint(n) or not isinstance(header["tenant_id"], str):
        fail("bad tree_size or tenant_id")
    own = None
    if header["checkpoint"] is not None:
        if verify_json_checkpoint(header["checkpoint"], public) != (n, root):
            fail("the header's checkpoint is not of the export's tree")
        own = ("the export's own", n, root)
    note_checked = False
    if header["checkpoint_note"] is not None:
        if not isinstance(header["checkpoint_note"], str):
            fail("checkpoint_note is not a string")
        if verify_note_checkpoint(header["checkpoint_note"], public)[:2] != (n, root):
            fail("the header's checkpoint_note is not of the export's tree")
        own = own or ("the export's own note", n, root)
        note_checked = True
    proofs = header["consistency_proofs"]
    if not isinstance(proofs, list):
        fail("consistency_proofs is not an array")
    by_size = {}
    for p in proofs:
        keys = ["first_size", "first_root", "second_size", "second_root", "hashes"]
        if not isinstance(p, dict) or sorted(p) != sorted(keys):
            fail("a consistency proof has exactly the fields %s" % keys)
        first, second = hex_field(p["first_root"], 64, "first_root"), hex_field(p["second_root"], 64, "second_root")
        if p["second_size"] != n or second != root:
            fail("a consistency proof does not end at the export's tree")
        if not is_uint(p["first_size"]) or not verify_consistency(p["first_size"], n, first, root, hexes(p["hashes"], "hashes")):
            fail("the consistency proof from size %r does not verify" % p["first_size"])
        by_size[p["first_size"]] = first
    anchor = trusted or own
    if anchor is None:
        fail("the export carries no signed checkpoint: give --checkpoint")
    name, m, anchor_root = anchor
    if m > n:
        fail("the checkpoint %s (size %d) is newer than the export's tree (size %d): make a new export" % (name, m, n))
    if m == n and anchor_root != root:
        fail("the checkpoint and the export's tree differ at size %d" % n)
    if m < n:
        if m not in by_size:
            fail("the export carries no consistency proof from size %d: make it with --consistency-from" % m)
        if by_size[m] != anchor_root:
            fail("the consistency proof from size %d starts at another root than the checkpoint's" % m)
    covered = newer = not_covered = 0
    next_rseq = {}
    previous = None
    count = 0
    for number, line in enumerate(lines[1:], start=2):
        obj = load_json(line)
        if isinstance(obj, dict) and "end" in obj:
            if sorted(obj) != ["end", "receipts"]:
                fail("line %d: an end line has exactly the fields end and receipts" % number)
            if obj["end"] != EXPORT_FORMAT:
                fail("the end line names format %r, not %s" % (obj["end"], EXPORT_FORMAT))
            if obj["receipts"] != count:
                fail("the end line counts %r receipts, the export holds %d" % (obj["receipts"], count))
            if number != len(lines):
                fail("lines after the end line")
            return {"tenant": header["tenant_id"], "receipts": count, "anchor": name, "m": m,
                    "n": n, "covered": covered, "newer": newer, "not_covered": not_covered,
                    "note_checked": note_checked, "consistency": m < n}
        if not isinstance(obj, dict) or sorted(obj) != ["inclusion_proof", "receipt"]:
            fail("line %d is neither a receipt line nor the end line" % number)
        r = receipt_native(obj["receipt"], "line %d" % number)
        seq = r["seq"]
        where = "receipt %d (line %d)" % (seq, number)
        pre = vr.build_preimage(r)
        if hashlib.sha256(pre).digest() != r["hash"]:
            fail("%s: its fields do not hash to its hash" % where)
        if vr.derive_receipt_id(r["timestamp_ms"], r["prev_hash"]) != r["receipt_id"]:
            fail("%s: receipt_id is not the derived one" % where)
        if r["tenant_id"] != header["tenant_id"]:
            fail("%s: another tenant" % where)
        if previous is not None and seq <= previous[0]:
            fail("%s: out of order" % where)
        if previous is not None and seq == previous[0] + 1 and r["prev_hash"] != previous[1]:
            fail("%s: broken link" % where)
        if seq == 0 and r["prev_hash"] != bytes(32):
            fail("%s: receipt 0's prev_hash is not zero" % where)
        previous = (seq, r["hash"])
        key = (r["governor"], r["resource_id"])
        if r["resource_seq"] != next_rseq.get(key, 0):
            fail("%s: resource_seq %d, expected %d" % (where, r["resource_seq"], next_rseq.get(key, 0)))
        next_rseq[key] = r["resource_seq"] + 1
        p = obj["inclusion_proof"]
        if p is None:
            if seq < n:
                fail("%s: no inclusion proof" % where)
            not_covered += 1
        else:
            keys = ["leaf_index", "tree_size", "leaf_hash", "root", "hashes"]
            if not isinstance(p, dict) or sorted(p) != sorted(keys):
                fail("%s: an inclusion proof has exactly the fields %s" % (where, keys))
            leaf = leaf_hash(r["hash"])
            if (p["leaf_index"] != seq or p["tree_size"] != n
                    or hex_field(p["root"], 64, "root") != root
                    or hex_field(p["leaf_hash"], 64, "leaf_hash") != leaf):
                fail("%s: the inclusion proof is not of its leaf in the export's tree" % where)
            if not verify_inclusion(leaf, seq, n, hexes(p["hashes"], "hashes"), root):
                fail("%s: the inclusion proof does not verify" % where)
            if seq < m:
                covered += 1
            else:
                newer += 1
        count += 1
    fail("the export ends without its end line")


# --------------------------------------------------------------------------
# Self-test on the page's vectors
# --------------------------------------------------------------------------

C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = ("This is an example message.\n\n" + EM_DASH +
             " example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")


def self_test(page):
    passed = failed = 0

    def check(cond, what):
        nonlocal passed, failed
        if cond:
            passed += 1
        else:
            failed += 1
            print("FAIL %s" % what)

    for what, held in rfc8032.self_check():
        check(held, what)
    m = re.search(r"<!--\s*merkle-vectors:start\s*-->.*?```json\n(.*?)\n```", page, re.S)
    if not m:
        print("FAIL no merkle-vectors block in the page")
        return 1
    v = json.loads(m.group(1))
    hashes = [bytes.fromhex(h) for h in v["receipt_hashes"]]
    leaves = [leaf_hash(h) for h in hashes]
    check([x.hex() for x in leaves] == v["leaf_hashes"], "leaf hashes")
    for size, want in v["roots"].items():
        check(tree_root(leaves[:int(size)]).hex() == want, "root at %s" % size)
    check(v["roots"]["0"] == EMPTY_ROOT.hex(), "the empty tree's root is SHA-256 of nothing")
    root3 = bytes.fromhex(v["roots"]["3"])
    for p in v["inclusion_proofs"]:
        i, n = p["leaf_index"], p["tree_size"]
        proof = [bytes.fromhex(h) for h in p["hashes"]]
        root = bytes.fromhex(v["roots"][str(n)])
        check(verify_inclusion(leaves[i], i, n, proof, root), "inclusion %d in %d" % (i, n))
        check(not verify_inclusion(leaves[(i + 1) % n], i, n, proof, root), "inclusion, wrong leaf")
    for p in v["consistency_proofs"]:
        a, b = p["first_size"], p["second_size"]
        proof = [bytes.fromhex(h) for h in p["hashes"]]
        first = bytes.fromhex(v["roots"][str(a)])
        check(verify_consistency(a, b, first, root3, proof), "consistency %d to %d" % (a, b))
        check(not verify_consistency(a, b, root3, root3, proof), "consistency, wrong first root")
    s = v["signed_note"]
    public = bytes.fromhex(s["public_key"])
    check(hashlib.sha256(public).digest()[:8].hex() == s["key_id"], "key id")
    check(s["origin"] == "govern/" + s["key_id"], "default origin")
    check(note_key_id(s["origin"], public).hex() == s["note_key_id"], "note key id")
    check(s["verifier_key"] == "%s+%s+%s" % (s["origin"], s["note_key_id"],
                                             base64.b64encode(b"\x01" + public).decode()), "verifier key")
    size, root, origin = verify_note_checkpoint(s["note"], public)
    check((size, root, origin) == (0, EMPTY_ROOT, s["origin"]), "the empty ledger's note")
    try:
        verify_note_checkpoint(s["note"].replace("\n0\n", "\n1\n"), public)
        check(False, "a changed note is refused")
    except Failure:
        check(True, "")
    # The JSON view's rules, on the page's receipt test vectors: read as they are, refused
    # with a final newline in a hex field, an id or the tenant, or args keys out of order.
    m = re.search(r"<!--\s*test-vectors:start\s*-->.*?```json[ \t]*\n(.*?)\n```", page, re.S)
    if not m:
        print("FAIL no test-vectors block in the page")
        return 1
    good = load_json(m.group(1))[0]["receipt"]

    def refused(j):
        try:
            receipt_native(j, "the vector")
        except Failure:
            return True
        return False

    r = receipt_native(good, "the vector")
    check(hashlib.sha256(vr.build_preimage(r)).digest() == r["hash"], "the page's first receipt vector is read")
    for f in ("hash", "prev_hash", "receipt_id", "tenant_id", "resource_id"):
        check(refused(dict(good, **{f: good[f] + "\n"})), "%s with a final newline is refused" % f)
    check(len(good["args"]) >= 2 and refused(dict(good, args=dict(reversed(list(good["args"].items()))))),
          "args keys out of bytewise order are refused")
    check(refused(dict(good, seq=2 ** 53)), "a seq of 2^53 or more is refused")
    name, kid, key = C2SP_VKEY.split("+")
    key = base64.b64decode(key)
    check(key[0] == 1 and note_key_id(name, key[1:]).hex() == kid, "c2sp.org verifier key id")
    text, sigs = parse_note(C2SP_NOTE)
    check(sigs[0][1].hex() == kid and rfc8032.verify(key[1:], text.encode(), sigs[0][2]),
          "c2sp.org signed-note example")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main(argv):
    if argv[:1] == ["--self-test"]:
        path = argv[1] if len(argv) > 1 else "docs/receipts.md"
        with open(path, encoding="utf-8") as fh:
            return self_test(fh.read())
    args = {"--public-key": None, "--checkpoint": None}
    export = None
    rest = list(argv)
    while rest:
        a = rest.pop(0)
        if a in args and rest:
            args[a] = rest.pop(0)
        elif export is None and not a.startswith("--"):
            export = a
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if export is None or args["--public-key"] is None:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        public = load_public_key(args["--public-key"])
        trusted = None
        if args["--checkpoint"]:
            size, root = verify_checkpoint_text(read_checkpoint_file(args["--checkpoint"]), public)
            trusted = (args["--checkpoint"], size, root)
        with open(export, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8")
        if not text.endswith("\n"):
            fail("the export does not end with a newline")
        report = verify_export(text[:-1].split("\n"), public, trusted)
    except (Failure, UnicodeDecodeError, OSError, ValueError) as e:
        print("FAIL %s" % e)
        return 1
    print("ok: %(receipts)d receipts of tenant %(tenant)s; checkpoint %(anchor)s (size %(m)d)"
          " verified%(how)s" % dict(report, how=" through a consistency proof to the export's tree (size %d)" % report["n"] if report["consistency"] else ""))
    print("%(covered)d covered, %(newer)d newer than the checkpoint, %(not_covered)d not covered"
          "%(note)s" % dict(report, note="; the export's signed note verified" if report["note_checked"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
