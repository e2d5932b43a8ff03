#!/usr/bin/env python3
"""Independent verifier of a govern data directory, written from docs/receipts.md alone.

No Rust source of the project was read while writing it: the segment files, frames, CRCs,
torn-tail rule, Merkle tree and checkpoint are checked as that page's "Data directory",
"Verifying a chain" and "Merkle tree, proofs and checkpoints" sections state them. Chain
records are checked and decoded by verify_receipts.py; the Merkle tree, both checkpoint forms
and the public key file by verify_export.py; Ed25519 is rfc8032.py (RFC 8032 section 6): all
in this directory, with the same independence. Standard library only, Python 3.11.

Usage:
  verify_data_dir.py DATA_DIR [--checkpoint FILE] [--public-key FILE]
      Verify a data directory. The checkpoint defaults to DATA_DIR/checkpoint.json, else
      DATA_DIR/checkpoint.note (the directory's latest checkpoint), and the public key to
      DATA_DIR/checkpoint.pub, each when present. Prints one line per finding
      (a torn tail, a note) and a summary:
        ok: N receipts in S segments; root R at size N; checkpoint size C verified
      or the first failure, with its segment, offset and sequence number.
  verify_data_dir.py --vector docs/receipts.md
      Assemble the page's segment "Vector" from its description and the test vectors, check
      it byte for byte against the page's whole-file hex, then verify it as a data directory.
  verify_data_dir.py --self-test DATA_DIR
      On copies of DATA_DIR, damage it in ways the verifier must catch, each by its own check
      (flipped bits in the last three frames and in segment headers, a deleted middle segment
      of the receipts re-split into four, a stray file, receipts cut below the checkpoint's
      size, a damaged checkpoint (either form) or key, appended records that hash correctly but
      do not decode or skip a resource_seq) and ways it must report as a torn tail without
      failing (a file cut inside its last frame, zeros appended, a new segment cut inside its
      header). Prints each case and its outcome.

Exit status: 0 iff it verifies (self-test: iff every case behaved), 1 on a failure, 2 on a
usage error.

Reading rules as implemented (where docs/receipts.md leaves a choice, the choice is marked
ASSUMED):
  - segments/ holds only regular files (ASSUMED: a symbolic link is refused) named by 20
    decimal digits and ".seg", besides segment indexes (20 digits and ".idx" or ".idx.tmp"),
    which are derived data and not read; the segments are read in name order; each one's name is the sequence
    number that follows the previous one's last receipt (so the first is 0 and none but the
    last is empty);
  - each segment starts with its 24-byte header (tag, version 2, first seq = name);
  - each frame: header CRC, payload_len <= 1 MiB, seq = the next expected, then the payload
    fits in the file, then the payload CRC, then the chain checks 1-5 and field decoding of
    "Verifying a chain" (with the governor and id checks the page gives a decoder), then
    resource_seq = the number of earlier receipts of the same (tenant, governor, resource);
  - torn tail, only in the last segment, to the end of the file: (a) fewer than 20 bytes from
    a frame's start, (b) fewer than 24 bytes from the file's start that are a prefix of the
    expected segment header (an empty file included), (c) a frame header that passes its
    checks (header CRC, payload_len bound, seq) whose payload runs past the end, (d) only zero
    bytes. Reported, not a failure; reading stops there. (The first version of this verifier
    found (a)-(c) ambiguous on the page; its wording was then made precise.)
  - Merkle root: RFC 6962, leaf SHA-256(0x00 || hash), node SHA-256(0x01 || l || r); the empty
    tree's root is SHA-256 of nothing (ASSUMED, RFC 6962's definition);
  - checkpoint, either form (verify_export.py): the JSON object of the page's file form,
    those five members and no other, key_id = SHA-256(public key)[:8], Ed25519 over
    "govern.checkpoint.v1\\n{size}\\n{root}\\n{timestamp_ms}\\n"; or the C2SP signed note
    signed under its origin; then size <= receipts read and the root of the first `size`
    receipts = `root`. The public key file holds 64 lowercase hex digits and a newline (the
    newline may be left out);
  - the other files (LOCK, checkpoint.key's mode, anything unlisted in DATA_DIR) bear on no
    receipt: what differs from the page is a note, not a failure.
"""

import hashlib
import json
import os
import re
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rfc8032  # noqa: E402  (for the self-test's other key)
import verify_export as ve  # noqa: E402  (the Merkle tree, checkpoints, the public key, Failure)
import verify_receipts as vr  # noqa: E402

# --------------------------------------------------------------------------
# Constants from "Data directory"
# --------------------------------------------------------------------------

SEGMENT_TAG = b"govern.segment"          # 14 bytes
SEGMENT_VERSION = 2
SEGMENT_HEADER_LEN = 24
FRAME_HEADER_LEN = 20
MAX_PAYLOAD = 1024 * 1024                # "payload_len ... at most 1 MiB"
DEFAULT_SEGMENT_LIMIT = 64 * 1024 * 1024  # "the size limit (64 MiB by default)"
SEGMENT_NAME_RE = re.compile(r"[0-9]{20}\.seg")     # fullmatch: `$` would allow a final newline
INDEX_NAME_RE = re.compile(r"[0-9]{20}\.idx(\.tmp)?")  # segment indexes: derived data, not read
CHECKPOINT_FILES = ("checkpoint.json", "checkpoint.note")   # the latest first
# Snapshots are derived data the page lets a verifier ignore; listed so that they are not noted.
SNAPSHOT_FILES = {"ledger.snap", "runtime.snap", "ledger.snap.tmp", "runtime.snap.tmp"}
DIR_FILES = {"LOCK", "segments", "checkpoint.key", "checkpoint.pub", *CHECKPOINT_FILES, *SNAPSHOT_FILES}

# --------------------------------------------------------------------------
# CRC32C (Castagnoli): polynomial 0x1EDC6F41, reflected (0x82F63B78), init and xorout 0xFFFFFFFF
# --------------------------------------------------------------------------

CRC32C_POLY_REFLECTED = 0x82F63B78


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ CRC32C_POLY_REFLECTED if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    table = CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


CRC32C_CHECK = 0xE3069283   # the page: CRC32C of ASCII "123456789"
if crc32c(b"123456789") != CRC32C_CHECK:
    raise SystemExit("crc32c('123456789') = %08x, the page says %08x" % (crc32c(b"123456789"), CRC32C_CHECK))

# --------------------------------------------------------------------------
# Writing (used by --vector to compare encodings and by --self-test to build cases)
# --------------------------------------------------------------------------


def segment_header(first_seq):
    return SEGMENT_TAG + struct.pack(">HQ", SEGMENT_VERSION, first_seq)


def frame_header(seq, payload):
    head = struct.pack(">IQI", len(payload), seq, crc32c(payload))
    return head + struct.pack(">I", crc32c(head))


def encode_segment(first_seq, records):
    out = [segment_header(first_seq)]
    for i, rec in enumerate(records):
        out.append(frame_header(first_seq + i, rec))
        out.append(rec)
    return b"".join(out)


def segment_name(first_seq):
    return "%020d.seg" % first_seq


# --------------------------------------------------------------------------
# Reading a data directory
# --------------------------------------------------------------------------

# The first check that failed: its kind, and segment/offset/seq where they apply.
Failure = ve.Failure


class Scan:
    def __init__(self):
        self.segments = []       # names, in order
        self.frames = []         # (segment name, offset, seq, payload_len) of every whole frame read
        self.leaves = []         # RFC 6962 leaf hashes, by seq
        self.torn = None         # description of the torn tail, if any
        self.notes = []
        self.failure = None


def is_zeros(b):
    return not b.strip(b"\x00")


def frame_header_fields(hdr):
    payload_len, seq, payload_crc, header_crc = struct.unpack(">IQII", hdr)
    return payload_len, seq, payload_crc, header_crc


def scan_dir(data_dir):
    """Reads DATA_DIR/segments as "Data directory" specifies. Returns a Scan; scan.failure is
    the first failure (reading stops there), scan.torn the torn tail (reading stops there)."""
    s = Scan()
    try:
        _scan(data_dir, s)
    except Failure as f:
        s.failure = f
    return s


def _scan(data_dir, s):
    seg_dir = os.path.join(data_dir, "segments")
    if not os.path.isdir(seg_dir):
        raise Failure("no_segments", "%s is not a directory" % seg_dir)
    names = sorted(n for n in os.listdir(seg_dir) if not INDEX_NAME_RE.fullmatch(n))
    for name in names:
        path = os.path.join(seg_dir, name)
        if not SEGMENT_NAME_RE.fullmatch(name):
            raise Failure("stray_file", "segments/%s: nothing but NNNNNNNNNNNNNNNNNNNN.seg files (and their "
                          ".idx indexes) may be in segments/" % name)
        if os.path.islink(path) or not os.path.isfile(path):
            raise Failure("stray_file", "segments/%s is not a regular file" % name)

    chain = vr.ChainVerifier()
    resource_counts = {}
    expected_seq = 0
    frames_before = 0
    for i, name in enumerate(names):
        last = i == len(names) - 1
        with open(os.path.join(seg_dir, name), "rb") as fh:
            data = fh.read()
        s.segments.append(name)
        if len(data) > DEFAULT_SEGMENT_LIMIT:
            s.notes.append("note: segment %s is %d bytes, over the default 64 MiB limit (a host may "
                           "configure a larger one)" % (name, len(data)))
        first = int(name[:20])
        if first != expected_seq:
            prev = ("; segment %s before it holds no frame, and only the last may be empty" % s.segments[-2]
                    if len(s.segments) > 1 and len(s.frames) == frames_before else "")
            raise Failure("segment_name", "named for seq %d, but the next receipt is seq %d (a segment missing, "
                          "added or renamed%s)" % (first, expected_seq, prev),
                          name, 0, expected_seq)

        frames_before = len(s.frames)

        # segment header
        want = segment_header(first)
        if len(data) < SEGMENT_HEADER_LEN:
            if last and data == want[:len(data)]:
                s.torn = ("torn tail (b) in segment %s at offset 0: %d bytes, less than a whole segment header"
                          % (name, len(data)))
                return
            if last and is_zeros(data):
                s.torn = "torn tail (d) in segment %s at offset 0: %d zero bytes" % (name, len(data))
                return
            raise Failure("segment_header", "%d bytes, less than a segment header%s"
                          % (len(data), "" if last else " (and not the last segment)"), name, 0, expected_seq)
        head = data[:SEGMENT_HEADER_LEN]
        if head != want:
            if last and is_zeros(data):
                s.torn = "torn tail (d) in segment %s at offset 0: %d zero bytes" % (name, len(data))
                return
            tag, version, hseq = head[:14], struct.unpack(">H", head[14:16])[0], struct.unpack(">Q", head[16:24])[0]
            if tag != SEGMENT_TAG:
                why = ("tag %s is not 'govern.segment' (no segment header: a segment of format 1, or no "
                       "segment)" % tag.hex())
            elif version != SEGMENT_VERSION:
                why = "segment format version %d, expected %d" % (version, SEGMENT_VERSION)
            else:
                why = "header says the first seq is %d, the name says %d" % (hseq, first)
            raise Failure("segment_header", why, name, 0, expected_seq)

        # frames
        off = SEGMENT_HEADER_LEN
        while off < len(data):
            rest = len(data) - off
            # (d) is looked for only where a frame's header checks fail (a header of zeros fails its
            # CRC), so that a long segment is not rescanned at every frame
            hdr = data[off:off + FRAME_HEADER_LEN]
            header_ok = rest >= FRAME_HEADER_LEN and crc32c(hdr[:16]) == struct.unpack(">I", hdr[16:20])[0]
            if last and not header_ok and is_zeros(data[off:]):
                s.torn = "torn tail (d) in segment %s at offset %d: %d zero byte(s)" % (name, off, rest)
                return
            if rest < FRAME_HEADER_LEN:
                if last:
                    s.torn = ("torn tail (a) in segment %s at offset %d: %d bytes, less than a frame header"
                              % (name, off, rest))
                    return
                raise Failure("partial_frame", "%d bytes, less than a frame header, at the end of a segment "
                              "that is not the last" % rest, name, off, expected_seq)
            payload_len, seq, payload_crc, header_crc = frame_header_fields(hdr)
            if not header_ok:
                raise Failure("frame_header_crc", "header_crc %08x, CRC32C of the header is %08x"
                              % (header_crc, crc32c(hdr[:16])), name, off, expected_seq)
            if payload_len > MAX_PAYLOAD:
                raise Failure("payload_len", "payload_len %d is over 1 MiB" % payload_len, name, off, expected_seq)
            if seq != expected_seq:
                raise Failure("frame_seq", "frame header says seq %d" % seq, name, off, expected_seq)
            end = off + FRAME_HEADER_LEN + payload_len
            if end > len(data):
                if last:
                    s.torn = ("torn tail (c) in segment %s at offset %d: a frame header of seq %d whose %d-byte "
                              "payload runs %d byte(s) past the end" % (name, off, seq, payload_len, end - len(data)))
                    return
                raise Failure("partial_frame", "the %d-byte payload runs past the end of a segment that is not "
                              "the last" % payload_len, name, off, expected_seq)
            payload = data[off + FRAME_HEADER_LEN:end]
            if crc32c(payload) != payload_crc:
                raise Failure("payload_crc", "payload_crc %08x, CRC32C of the payload is %08x"
                              % (payload_crc, crc32c(payload)), name, off, expected_seq)
            # "Verifying a chain", checks 1-5 then decoding
            try:
                chain.push_record(payload)
            except vr.ChainError as e:
                raise Failure(e.kind, str(e), name, off, expected_seq)
            r = vr.decode_record(payload)
            # what a decoder checks beyond verify_receipts.decode_record: governor name and ids
            if r["governor"] not in vr.GOVERNORS:
                raise Failure("malformed", "governor %r is not one of the ten" % r["governor"],
                              name, off, expected_seq)
            for f in ("tenant_id", "resource_id"):
                if not vr.ID_RE.fullmatch(r[f]):   # fullmatch: the pattern's `$` would allow a final newline
                    raise Failure("malformed", "%s %r is not 1 to 128 of A-Z a-z 0-9 . _ : -" % (f, r[f]),
                                  name, off, expected_seq)
            key = (r["tenant_id"], r["governor"], r["resource_id"])
            want_rs = resource_counts.get(key, 0)
            if r["resource_seq"] != want_rs:
                raise Failure("resource_seq", "resource_seq %d, but %s/%s/%s has %d earlier receipts"
                              % (r["resource_seq"], key[0], key[1], key[2], want_rs), name, off, expected_seq)
            resource_counts[key] = want_rs + 1
            s.frames.append((name, off, seq, payload_len))
            s.leaves.append(ve.leaf_hash(r["hash"]))
            expected_seq += 1
            off = end


def check_checkpoint(scan, checkpoint_path, public_key_path):
    """The size of the checkpoint (either form), verified with the public key and against the
    receipts read; raises Failure."""
    public = ve.load_public_key(public_key_path)
    size, root = ve.verify_checkpoint_text(ve.read_checkpoint_file(checkpoint_path), public)
    n = len(scan.leaves)
    if size > n:
        raise Failure("checkpoint_size", "the checkpoint signs %d receipts, the ledger holds %d: receipts were "
                      "cut off" % (size, n), seq=n)
    found = ve.tree_root(scan.leaves[:size])
    if found != root:
        raise Failure("checkpoint_root", "the root of the first %d receipts is %s, the checkpoint signed %s: "
                      "history was rewritten" % (size, found.hex(), root.hex()), seq=size)
    return size


def directory_notes(data_dir):
    """Things the page states about the other files; noted, not failed (they do not bear on the receipts)."""
    notes = []
    for name in sorted(os.listdir(data_dir)):
        if name not in DIR_FILES:
            notes.append("note: %s is not one of the files the page lists for a data directory" % name)
    lock = os.path.join(data_dir, "LOCK")
    if os.path.isfile(lock):
        with open(lock, "rb") as fh:
            content = fh.read()
        if content and not re.fullmatch(rb"[0-9]+\n", content):
            notes.append("note: LOCK holds %r, not a process id in decimal and a newline" % content[:40])
    key = os.path.join(data_dir, "checkpoint.key")
    if os.path.isfile(key) and os.stat(key).st_mode & 0o777 != 0o600:
        notes.append("note: checkpoint.key has mode %o, the page says 0600" % (os.stat(key).st_mode & 0o777))
    return notes


class Outcome:
    def __init__(self, lines, scan, failure=None):
        self.ok = failure is None
        self.lines = lines      # findings, then the summary line
        self.scan = scan
        self.failure = failure

    @property
    def summary(self):
        return self.lines[-1]


def verify_dir(data_dir, checkpoint_path=None, public_key_path=None):
    """Verifies DATA_DIR (no printing). checkpoint_path None: no checkpoint check."""
    lines = directory_notes(data_dir) if os.path.isdir(data_dir) else []
    scan = scan_dir(data_dir)
    lines += scan.notes
    if scan.torn:
        lines.append(scan.torn + " (the remains of a write that never completed; a writer truncates it)")
    if scan.failure:
        lines.append(scan.failure.line())
        return Outcome(lines, scan, scan.failure)
    n = len(scan.leaves)
    checked = "no checkpoint"
    if checkpoint_path is not None:
        try:
            size = check_checkpoint(scan, checkpoint_path, public_key_path)
        except OSError as e:
            f = Failure("checkpoint_unreadable", str(e))
        except Failure as e:
            f = e
        else:
            f = None
        if f is not None:
            lines.append(f.line())
            return Outcome(lines, scan, f)
        checked = "checkpoint size %d verified (%s)" % (size, os.path.basename(checkpoint_path))
    lines.append("ok: %d receipts in %d segments; root %s at size %d; %s"
                 % (n, len(scan.segments), ve.tree_root(scan.leaves).hex(), n, checked))
    return Outcome(lines, scan)


# --------------------------------------------------------------------------
# --vector
# --------------------------------------------------------------------------

def run_vector(md_path):
    with open(md_path, "r", encoding="utf-8") as fh:
        md = fh.read()
    failed = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failed.append(what)
        return cond

    m = re.search(r"CRC32C\s+of\s+the\s+ASCII\s+bytes\s+`123456789`\s+is\s+`0x([0-9A-Fa-f]{8})`", md)
    check(m is not None and int(m.group(1), 16) == crc32c(b"123456789"),
          "crc32c('123456789') = 0x%08X, as the page says" % crc32c(b"123456789"))

    block = re.search(r"<!--\s*segment-vector:start\s*-->(.*?)<!--\s*segment-vector:end\s*-->", md, re.S)
    if not block:
        print("FAIL segment-vector markers not found in %s" % md_path)
        return 1
    texts = re.findall(r"```text[ \t]*\n(.*?)\n```", block.group(1), re.S)
    if len(texts) != 2:
        print("FAIL expected two ```text blocks (the description and the whole file) between the markers, found %d"
              % len(texts))
        return 1
    description, whole_hex = texts[0].splitlines(), "".join(texts[1].split())
    vectors = vr.extract_vectors(md)
    records = [bytes.fromhex(dict(e)["preimage"]) + bytes.fromhex(dict(dict(e)["receipt"])["hash"])
               for e in vectors]

    first = re.fullmatch(r"([0-9]{20}\.seg): ([0-9]+) bytes", description[0].strip())
    if not first:
        print("FAIL first line %r is not 'NAME.seg: N bytes'" % description[0])
        return 1
    name, total = first.group(1), int(first.group(2))
    assembled = bytearray()
    for line in description[1:]:
        lm = re.fullmatch(r"offset ([0-9]+), (.*)", line.strip())
        if not lm:
            check(False, "line %r has the form 'offset N, ...'" % line)
            continue
        offset, what = int(lm.group(1)), lm.group(2)
        check(offset == len(assembled), "%s: at offset %d" % (what.split(":")[0], offset))
        hm = re.fullmatch(r"(segment header|frame header of receipt ([0-9]+)): ([0-9a-f ]+)", what)
        pm = re.fullmatch(r"payload: the ([0-9]+) bytes of receipt ([0-9]+)'s storage record", what)
        if hm:
            assembled += bytes.fromhex(hm.group(3).replace(" ", ""))
        elif pm and int(pm.group(2)) < len(records):
            rec = records[int(pm.group(2))]
            check(len(rec) == int(pm.group(1)), "receipt %s's storage record is %s bytes"
                  % (pm.group(2), pm.group(1)))
            assembled += rec
        else:
            check(False, "line %r is a segment header, a frame header or a payload of a test vector" % line)
    assembled = bytes(assembled)
    check(len(assembled) == total, "the assembled segment is %d bytes, as the page says" % total)
    check(assembled.hex() == whole_hex, "the assembled segment equals the page's whole-file hex, byte for byte")
    check(encode_segment(int(name[:20]), records) == bytes.fromhex(whole_hex),
          "this verifier's own encoding of the three records (headers and CRCs computed here) equals the "
          "page's whole-file hex")

    with tempfile.TemporaryDirectory(prefix="govern-vector-") as tmp:
        os.mkdir(os.path.join(tmp, "segments"))
        with open(os.path.join(tmp, "segments", name), "wb") as fh:
            fh.write(bytes.fromhex(whole_hex))
        out = verify_dir(tmp)
        for line in out.lines[:-1]:
            print(line)
        check(out.ok and len(out.scan.leaves) == len(records),
              "the page's segment verifies as a data directory: " + out.summary)
    print("vector: %s" % ("ok" if not failed else "%d checks failed" % len(failed)))
    return 1 if failed else 0


# --------------------------------------------------------------------------
# --self-test
# --------------------------------------------------------------------------

def run_self_test(data_dir):
    tmp = tempfile.mkdtemp(prefix="govern-selftest-")
    try:
        return _self_test(data_dir, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _self_test(data_dir, tmp):
    base = os.path.join(tmp, "base")
    shutil.copytree(data_dir, base)
    cp_path = os.path.join(base, "checkpoint.json")
    pub_path = os.path.join(base, "checkpoint.pub")
    if not (os.path.isfile(cp_path) and os.path.isfile(pub_path)):
        print("FAIL self-test needs DATA_DIR/checkpoint.json and DATA_DIR/checkpoint.pub")
        return 1
    orig = verify_dir(base, cp_path, pub_path)
    print("copy of %s: %s" % (data_dir, orig.summary))
    if not orig.ok or orig.scan.torn:
        print("FAIL self-test needs a directory that verifies without a torn tail")
        return 1
    frames = orig.scan.frames
    n = len(frames)
    with open(cp_path) as fh:
        cp_size = json.load(fh)["size"]
    if n < 4 or cp_size < 1:
        print("FAIL self-test needs at least 4 receipts and a checkpoint of at least 1 (have %d, %d)" % (n, cp_size))
        return 1

    results = []
    counter = [0]

    def fresh():
        counter[0] += 1
        d = os.path.join(tmp, "case%02d" % counter[0])
        shutil.copytree(base, d)
        return d

    def seg_path(d, name):
        return os.path.join(d, "segments", name)

    def flip(path, offset, bit=0):
        with open(path, "r+b") as fh:
            fh.seek(offset)
            b = fh.read(1)[0]
            fh.seek(offset)
            fh.write(bytes([b ^ (1 << bit)]))

    def truncate(path, size):
        with open(path, "r+b") as fh:
            fh.truncate(size)

    def append(path, data):
        with open(path, "ab") as fh:
            fh.write(data)

    def expect_fail(what, d, kind, seq=None, checkpoint="checkpoint.json"):
        """The verifier must fail, by the check `kind` (so that each check is shown to work, not
        only some later one), at receipt `seq` when given."""
        out = verify_dir(d, os.path.join(d, checkpoint) if checkpoint else None,
                         os.path.join(d, "checkpoint.pub"))
        good = not out.ok and out.failure.kind == kind and (seq is None or out.failure.seq == seq)
        results.append(good)
        print("%s fails: %s\n       -> %s" % ("ok  " if good else "FAIL", what, out.summary))
        if not good:
            print("       (expected a %s failure%s)" % (kind, "" if seq is None else " at seq %d" % seq))

    def expect_torn(what, d, receipts, form, checkpoint="checkpoint.json"):
        out = verify_dir(d, os.path.join(d, checkpoint) if checkpoint else None,
                         os.path.join(d, "checkpoint.pub"))
        good = (out.ok and out.scan.torn is not None and len(out.scan.leaves) == receipts
                and any(out.scan.torn.startswith("torn tail (%s)" % f) for f in form))
        results.append(good)
        print("%s torn, not failed: %s\n       -> %s\n       -> %s"
              % ("ok  " if good else "FAIL", what, out.scan.torn, out.summary))

    def expect_ok(what, d, receipts, checkpoint="checkpoint.json"):
        out = verify_dir(d, os.path.join(d, checkpoint) if checkpoint else None,
                         os.path.join(d, "checkpoint.pub"))
        good = out.ok and out.scan.torn is None and len(out.scan.leaves) == receipts
        results.append(good)
        print("%s verifies: %s\n       -> %s" % ("ok  " if good else "FAIL", what, out.summary))

    # 1. one flipped bit in each of the last three frames, in the header and in the payload
    header_spots = [(3, "payload_len"), (11, "seq"), (19, "header_crc")]
    payload_spots = ["first", "middle", "last"]
    for k in range(3):
        seg, off, seq, plen = frames[n - 1 - k]
        hb, field = header_spots[k]
        d = fresh()
        flip(seg_path(d, seg), off + hb, k)
        expect_fail("bit %d of frame header byte %d (%s) of seq %d (segment %s, offset %d)"
                    % (k, hb, field, seq, seg, off), d, "frame_header_crc", seq)
        pb = {"first": 0, "middle": plen // 2, "last": plen - 1}[payload_spots[k]]
        d = fresh()
        flip(seg_path(d, seg), off + FRAME_HEADER_LEN + pb, 7 - k)
        expect_fail("bit %d of payload byte %d (the %s) of seq %d" % (7 - k, pb, payload_spots[k], seq), d,
                    "payload_crc", seq)

    # 2. one flipped bit in a segment header: its tag, its version, its first seq
    first_seg = orig.scan.segments[0]
    for off, what in ((0, "tag"), (15, "version"), (23, "first seq")):
        d = fresh()
        flip(seg_path(d, first_seg), off, 1)
        expect_fail("a bit of segment %s's header, byte %d (%s)" % (first_seg, off, what), d, "segment_header", 0)

    # 3. the same receipts re-split into four segments (still a valid directory), then damaged
    records = []
    for seg, off, seq, plen in frames:
        with open(seg_path(base, seg), "rb") as fh:
            fh.seek(off + FRAME_HEADER_LEN)
            records.append(fh.read(plen))
    cuts = [0, n // 4, n // 2, 3 * n // 4, n]

    def resplit():
        d = fresh()
        for name in os.listdir(os.path.join(d, "segments")):
            os.remove(seg_path(d, name))
        names = []
        for a, b in zip(cuts, cuts[1:]):
            names.append(segment_name(a))
            with open(seg_path(d, names[-1]), "wb") as fh:
                fh.write(encode_segment(a, records[a:b]))
        return d, names

    d, names = resplit()
    expect_ok("the receipts re-split into %d segments (%s)" % (len(names), ", ".join(n_[:20].lstrip("0") or "0"
                                                                                      for n_ in names)), d, n)
    d, names = resplit()
    os.remove(seg_path(d, names[1]))
    expect_fail("segment %s (of 4) deleted" % names[1], d, "segment_name", cuts[1])
    d, names = resplit()
    append(seg_path(d, names[0]), bytes(30))
    expect_fail("30 zero bytes appended to segment %s, which is not the last" % names[0], d, "frame_header_crc",
                cuts[1])
    d, names = resplit()
    truncate(seg_path(d, names[2]), os.path.getsize(seg_path(d, names[2])) - 5)
    expect_fail("segment %s, not the last, cut 5 bytes short" % names[2], d, "partial_frame", cuts[3] - 1)

    # 4. a stray file in segments/; an index file (derived data) is no stray, whatever it holds
    for stray in ("notes.txt", "%019d.seg" % n, segment_name(0) + ".tmp", "%019d.idx" % n):
        d = fresh()
        with open(seg_path(d, stray), "wb") as fh:
            fh.write(b"x")
        expect_fail("a stray file segments/%s" % stray, d, "stray_file")
    for index in ("%020d.idx" % 0, "%020d.idx.tmp" % 0):
        d = fresh()
        with open(seg_path(d, index), "wb") as fh:
            fh.write(b"x")
        expect_ok("an index file segments/%s holding garbage" % index, d, n)

    # 5. receipts cut off below the checkpoint's size (at a frame boundary: no torn tail)
    d = fresh()
    seg, off, seq, plen = frames[cp_size - 1]
    truncate(seg_path(d, seg), off)
    for name in orig.scan.segments:
        if name > seg:
            os.remove(seg_path(d, name))
    expect_fail("the ledger cut to %d receipts, below the checkpoint's size %d" % (cp_size - 1, cp_size),
                d, "checkpoint_size", cp_size - 1)

    # the checkpoint itself: its signature, its signed fields, its key
    def edit_checkpoint(d, change):
        path = os.path.join(d, "checkpoint.json")
        with open(path) as fh:
            cp = json.load(fh)
        change(cp)
        with open(path, "w") as fh:
            json.dump(cp, fh)

    def flip_signature(cp):
        sig = bytearray.fromhex(cp["signature"])
        sig[40] ^= 0x04
        cp["signature"] = sig.hex()

    for what, change, kind in (
            ("a bit of the checkpoint's signature flipped", flip_signature, "checkpoint_signature"),
            ("the checkpoint's size lowered by one, not re-signed",
             lambda cp: cp.update(size=cp["size"] - 1), "checkpoint_signature"),
            ("the checkpoint's timestamp_ms raised by one, not re-signed",
             lambda cp: cp.update(timestamp_ms=cp["timestamp_ms"] + 1), "checkpoint_signature"),
            ("a member added to the checkpoint", lambda cp: cp.update(note="x"), "checkpoint_format")):
        d = fresh()
        edit_checkpoint(d, change)
        expect_fail(what, d, kind)
    d = fresh()
    with open(os.path.join(d, "checkpoint.pub"), "w") as fh:
        fh.write(rfc8032.TEST1_PUBLIC.hex() + "\n")
    expect_fail("another public key (RFC 8032's test 1 key) in checkpoint.pub", d, "checkpoint_key")
    d = fresh()
    edit_checkpoint(d, lambda cp: cp.update(key_id=hashlib.sha256(rfc8032.TEST1_PUBLIC).digest()[:8].hex()))
    with open(os.path.join(d, "checkpoint.pub"), "w") as fh:
        fh.write(rfc8032.TEST1_PUBLIC.hex() + "\n")
    expect_fail("another public key, and the checkpoint's key_id changed to match it", d, "checkpoint_signature")

    # the same tree head as a C2SP signed note: verified alone, and refused when changed
    note_path = os.path.join(base, "checkpoint.note")
    if os.path.isfile(note_path):
        with open(note_path, encoding="utf-8") as fh:
            note = fh.read()
        note_size = int(note.split("\n")[1])
        d = fresh()
        os.remove(os.path.join(d, "checkpoint.json"))
        expect_ok("checkpoint.json deleted: checkpoint.note (size %d) alone" % note_size, d, n,
                  checkpoint="checkpoint.note")
        d = fresh()
        with open(os.path.join(d, "checkpoint.note"), "w", encoding="utf-8") as fh:
            fh.write(note.replace("\n%d\n" % note_size, "\n%d\n" % (note_size - 1), 1))
        expect_fail("checkpoint.note's size lowered by one, not re-signed", d, "checkpoint_signature",
                    checkpoint="checkpoint.note")
        d = fresh()
        with open(os.path.join(d, "checkpoint.pub"), "w") as fh:
            fh.write(rfc8032.TEST1_PUBLIC.hex() + "\n")
        expect_fail("checkpoint.note against another public key", d, "checkpoint_key", checkpoint="checkpoint.note")
        d = fresh()
        with open(os.path.join(d, "checkpoint.note"), "w", encoding="utf-8") as fh:
            fh.write(note.replace("\n\n", "\nextension\n\n", 1))
        expect_fail("an extension line added to checkpoint.note", d, "checkpoint_format", checkpoint="checkpoint.note")
        if note_size >= 1:
            d = fresh()
            seg, off, seq, plen = frames[note_size - 1]
            truncate(seg_path(d, seg), off)
            for name in orig.scan.segments:
                if name > seg:
                    os.remove(seg_path(d, name))
            expect_fail("the ledger cut below checkpoint.note's size %d" % note_size, d, "checkpoint_size",
                        note_size - 1, checkpoint="checkpoint.note")

    # 6. torn tails: reported, not failed
    last_seg, last_off, last_seq, last_len = frames[-1]
    d = fresh()
    truncate(seg_path(d, last_seg), last_off + FRAME_HEADER_LEN + last_len // 2)
    expect_torn("the last segment cut inside its last frame's payload (no checkpoint: it signs that receipt)",
                d, n - 1, "c", checkpoint=None)
    d = fresh()
    truncate(seg_path(d, last_seg), last_off + FRAME_HEADER_LEN + last_len // 2)
    expect_fail("the same cut, with the checkpoint that signs that receipt", d, "checkpoint_size", n - 1)
    d = fresh()
    append(seg_path(d, last_seg), bytes(100))
    expect_torn("100 zero bytes appended to the last segment", d, n, "d")

    # a next receipt after the checkpoint, written whole, then cut: a crash mid-write
    prev = vr.decode_record(records[-1])

    def next_receipt(**changes):
        """Receipt n as a whole frame, chained and hashed correctly; `changes` alter its fields."""
        r = {"seq": n, "timestamp_ms": prev["timestamp_ms"] + 1, "tenant_id": "self-test", "governor": "tenant",
             "resource_id": "torn-%d" % n, "resource_seq": 0, "command": "self_test", "state_from": "a",
             "state_to": "b", "reason": "verify_data_dir.py --self-test", "args": [], "metadata": [],
             "prev_hash": prev["hash"]}
        r.update(changes)
        r["receipt_id"] = vr.derive_receipt_id(r["timestamp_ms"], r["prev_hash"])
        pre = vr.build_preimage(r)
        rec = pre + hashlib.sha256(pre).digest()
        return rec, frame_header(n, rec) + rec

    # records whose frames, CRCs and hashes hold but whose fields a reader refuses
    for what, changes, kind in (
            ("a governor that is not one of the ten", {"governor": "payroll"}, "malformed"),
            ("a tenant_id with a final newline", {"tenant_id": "self-test\n"}, "malformed"),
            ("a resource_seq of 1 for a resource with no earlier receipt", {"resource_seq": 1}, "resource_seq")):
        d = fresh()
        append(seg_path(d, last_seg), next_receipt(**changes)[1])
        expect_fail("receipt %d appended, whole and chained, with %s" % (n, what), d, kind, n)
    if len(frames) >= 2:
        # the last receipt's resource, one receipt further: resource_seq must count it
        last_r = vr.decode_record(records[-1])
        same = {"tenant_id": last_r["tenant_id"], "governor": last_r["governor"],
                "resource_id": last_r["resource_id"]}
        d = fresh()
        append(seg_path(d, last_seg), next_receipt(resource_seq=last_r["resource_seq"], **same)[1])
        expect_fail("receipt %d appended for %s/%s/%s repeating its resource_seq %d"
                    % (n, same["tenant_id"], same["governor"], same["resource_id"], last_r["resource_seq"]),
                    d, "resource_seq", n)
        d = fresh()
        append(seg_path(d, last_seg), next_receipt(resource_seq=last_r["resource_seq"] + 1, **same)[1])
        expect_ok("receipt %d appended for the same resource with resource_seq %d"
                  % (n, last_r["resource_seq"] + 1), d, n + 1)

    extra, extra_frame = next_receipt()
    d = fresh()
    append(seg_path(d, last_seg), extra_frame)
    expect_ok("a receipt %d written after the checkpoint" % n, d, n + 1)
    for keep, form, what in ((FRAME_HEADER_LEN + len(extra) - 1, "c", "its payload but the last byte"),
                             (FRAME_HEADER_LEN, "c", "its header and nothing of its payload"),
                             (FRAME_HEADER_LEN - 1, "a", "its header but the last byte"),
                             (1, "ad", "the first byte of its header (a zero: forms (a) and (d) both hold)")):
        d = fresh()
        append(seg_path(d, last_seg), extra_frame[:keep])
        expect_torn("receipt %d written after the checkpoint, cut after %s" % (n, what), d, n, form)
    d = fresh()
    cut = bytearray(extra_frame[:FRAME_HEADER_LEN + 5])
    cut[6] ^= 0x10
    append(seg_path(d, last_seg), bytes(cut))
    expect_fail("receipt %d cut inside its payload, and a bit of its frame header flipped (the header CRC "
                "fails: not torn)" % n, d, "frame_header_crc", n)
    d = fresh()
    append(seg_path(d, last_seg), extra_frame[:FRAME_HEADER_LEN + 10] + bytes(len(extra) - 10))
    expect_fail("receipt %d's frame whole but its payload zeroed after 10 bytes (the CRC fails: not torn)" % n,
                d, "payload_crc", n)
    d = fresh()
    with open(seg_path(d, segment_name(n)), "wb") as fh:
        fh.write(segment_header(n)[:10])
    expect_torn("a new segment %s holding 10 bytes of its header" % segment_name(n), d, n, "b")
    d = fresh()
    with open(seg_path(d, segment_name(n)), "wb") as fh:
        fh.write(segment_header(n))
    expect_ok("a new segment %s holding only its header" % segment_name(n), d, n)
    d = fresh()
    with open(seg_path(d, segment_name(n)), "wb") as fh:
        fh.write(SEGMENT_TAG + struct.pack(">H", 1) + bytes(4))
    expect_fail("a new segment %s of 20 bytes that are not a prefix of its header (version 1)" % segment_name(n),
                d, "segment_header", n)

    bad = results.count(False)
    print("self-test: %d cases, %s" % (len(results), "all as expected" if not bad else "%d NOT as expected" % bad))
    return 1 if bad else 0


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

USAGE = """usage: verify_data_dir.py DATA_DIR [--checkpoint FILE] [--public-key FILE]
       verify_data_dir.py --vector docs/receipts.md
       verify_data_dir.py --self-test DATA_DIR"""


def usage_error(msg):
    print("verify_data_dir.py: %s\n%s" % (msg, USAGE), file=sys.stderr)
    return 2


def main(argv):
    opts = {}
    positional = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(__doc__)
            return 0
        if a in ("--checkpoint", "--public-key", "--vector", "--self-test"):
            if i + 1 >= len(argv):
                return usage_error("%s needs a value" % a)
            if a in opts:
                return usage_error("%s given twice" % a)
            opts[a] = argv[i + 1]
            i += 2
            continue
        if a.startswith("-"):
            return usage_error("unknown option %s" % a)
        positional.append(a)
        i += 1

    if "--vector" in opts:
        if positional or len(opts) > 1:
            return usage_error("--vector takes only the page")
        if not os.path.isfile(opts["--vector"]):
            return usage_error("%s is not a file" % opts["--vector"])
        return run_vector(opts["--vector"])
    if "--self-test" in opts:
        if positional or len(opts) > 1:
            return usage_error("--self-test takes only the data directory")
        if not os.path.isdir(opts["--self-test"]):
            return usage_error("%s is not a directory" % opts["--self-test"])
        return run_self_test(opts["--self-test"])
    if len(positional) != 1:
        return usage_error("one DATA_DIR expected")
    data_dir = positional[0]
    if not os.path.isdir(data_dir):
        return usage_error("%s is not a directory" % data_dir)
    checkpoint = opts.get("--checkpoint")
    if checkpoint is None:
        present = [p for p in (os.path.join(data_dir, f) for f in CHECKPOINT_FILES) if os.path.isfile(p)]
        checkpoint = present[0] if present else None
    elif not os.path.isfile(checkpoint):
        return usage_error("checkpoint %s is not a file" % checkpoint)
    public_key = opts.get("--public-key")
    if public_key is None:
        default = os.path.join(data_dir, "checkpoint.pub")
        public_key = default if os.path.isfile(default) else None
    elif not os.path.isfile(public_key):
        return usage_error("public key %s is not a file" % public_key)
    if checkpoint is not None and public_key is None:
        return usage_error("a checkpoint (%s) but no public key: give --public-key FILE" % checkpoint)

    out = verify_dir(data_dir, checkpoint, public_key)
    for line in out.lines:
        print(line)
    return 0 if out.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
