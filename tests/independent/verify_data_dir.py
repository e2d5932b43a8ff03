#!/usr/bin/env python3
"""Independent verifier of a govern data directory, written from docs/receipts.md alone.

No Rust source of the project was read while writing it: the segment files, frames, CRCs,
torn-tail rule, Merkle tree and checkpoint are checked as that page's "Data directory",
"Verifying a chain", "Merkle tree, proofs and checkpoints" and "The archive manifest" sections
state them (and, for what a crashed archival leaves, docs/runtime-semantics.md, "Archival"). Chain
records are checked and decoded by verify_receipts.py; the Merkle tree, both checkpoint forms
and the public key file by verify_export.py; Ed25519 is rfc8032.py (RFC 8032 section 6): all
in this directory, with the same independence. Standard library only, Python 3.11.

Usage:
  verify_data_dir.py DATA_DIR [--archive ARCHIVE_DIR] [--checkpoint FILE] [--public-key FILE]
      Verify a data directory. The checkpoint defaults to DATA_DIR/checkpoint.json, else
      DATA_DIR/checkpoint.note (the directory's latest checkpoint), and the public key to
      DATA_DIR/checkpoint.pub, each when present. Prints one line per finding
      (a torn tail, a note) and a summary:
        ok: N receipts in S segments; root R at size N; checkpoint size C verified
      or the first failure, with its segment, offset and sequence number. When DATA_DIR has
      an archive manifest (archive.json, "The archive manifest"), the summary says how the
      archived receipts below its boundary B were checked: by the manifest alone, or, with
      --archive ARCHIVE_DIR (the directory `govern archive --to` wrote), read in full.
  verify_data_dir.py --vector docs/receipts.md
      Assemble the page's segment "Vector" from its description and the test vectors, check
      it byte for byte against the page's whole-file hex, then verify it as a data directory.
  verify_data_dir.py --self-test DATA_DIR --archive ARCHIVE_DIR
      The same for an archived DATA_DIR and its archive (e.g. `govern bench ledger --receipts
      3000 --per-resource 10 --segment-bytes 16384 --data-dir D`, then `govern archive D
      --below 1500 --to A`): on copies of both, damaged archived segments (caught only with
      --archive, by their SHA-256, or by their frames and chain when the manifest's digest is
      updated too), each condition of the manifest broken by its own check, a damaged or
      missing base file, archived segments left in DATA_DIR/segments (noted, not failed), the
      first live segment deleted, resource_seq across the boundary with and without the
      archive, and a checkpoint below the boundary (refused without --archive, verified with).
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

Archived data directories ("Data directory" table, "The archive manifest"; and
docs/runtime-semantics.md, "Archival", for what a crash leaves), when DATA_DIR/archive.json
exists:
  - the manifest is checked first, before any segment: format "govern.archive", version 1;
    boundary an unsigned integer; every digest 64 lowercase hex digits; the members the page
    lists and no other (ASSUMED, as for the JSON checkpoint); archived_at a non-empty string
    (ASSUMED: the page says only "when it was archived"; govern writes RFC 3339 text; not
    interpreted); at least one range (ASSUMED: the file exists once segments were moved out);
    then, as the page states, ranges contiguous from 0 to B and none empty, each range's
    `segment` the name of a segment holding receipts from its first_seq, each prev_hash the
    last_hash before it (32 zero bytes for the first), each consistency proof (RFC 9162,
    verify_export.verify_consistency) from the previous range's root (the empty tree's for
    the first) to its own, the last range's last_hash = boundary_hash, one frontier node per
    set bit of B and the frontier's root = the last range's root; then the base files at the
    names the page gives (archive/base-B.snap, archive/base-B.states, relative to DATA_DIR)
    with the recorded lengths and SHA-256. Their contents are not read: the page gives a
    verifier no format for them;
  - without --archive, the live segments start at B (the first named for B); the chain
    starts at seq B from boundary_hash; the tree is the manifest's frontier at B plus the
    live leaves (a compact range: the root at every size >= B); the checkpoint's size must be
    >= B (a checkpoint below B needs --archive: checkpoint_archived). A resource's first live
    receipt may continue a numbering begun in the archived receipts, whose counts are not
    read: its resource_seq is accepted as found when it is at most B (ASSUMED; above B it
    cannot count its earlier receipts), and the numbering is checked from it on; a note
    counts such resources;
  - with --archive ARCHIVE_DIR, exactly the manifest's ranges are read from
    ARCHIVE_DIR/segments/: each file's length and SHA-256 against the manifest, then every
    frame and record as for a sealed segment (no torn tail), from receipt 0, with the chain,
    the numbering and the tree running on; at each range's end the last hash and the root
    against the manifest's, at B the frontier; then the live segments follow with the full
    counts and the full tree (any checkpoint size). Other files in ARCHIVE_DIR/segments (a
    copy a crashed archival left) are noted and not read; ARCHIVE_DIR/manifest.json is
    compared with archive.json (a difference is a note; the ranges read are archive.json's);
  - segment files named below B still in DATA_DIR/segments (an archival that stopped after
    its manifest; runtime-semantics.md: an open ignores them and a writer removes them) are
    noted and not read; archive.json and DATA_DIR/archive/ are listed files, files in
    archive/ other than the two base files are noted.
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
DIR_FILES = {"LOCK", "segments", "trees", "checkpoint.key", "checkpoint.pub", *CHECKPOINT_FILES, *SNAPSHOT_FILES}

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


class CompactRange:
    """The Merkle frontier of the first `size` leaves: the roots of the perfect subtrees of the
    RFC 6962 tree, largest first, one per set bit of `size` ("frontier" in "The archive
    manifest"). Leaves are pushed one by one; the root at the current size folds the nodes from
    the right, which is the tree's recursive definition (its left subtrees are perfect)."""

    def __init__(self, size=0, nodes=()):
        # (subtree size, hash), the subtree sizes being the set bits of `size`, largest first
        self.size = size
        self.nodes = []
        bits = [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
        if len(bits) != len(nodes):
            raise ValueError("%d frontier nodes for size %d, which has %d set bits" % (len(nodes), size, len(bits)))
        self.nodes = list(zip(bits, nodes))

    def copy(self):
        c = CompactRange()
        c.size, c.nodes = self.size, list(self.nodes)
        return c

    def push(self, leaf):
        self.nodes.append((1, leaf))
        self.size += 1
        while len(self.nodes) >= 2 and self.nodes[-1][0] == self.nodes[-2][0]:
            (k, left), (_, right) = self.nodes[-2], self.nodes[-1]
            self.nodes[-2:] = [(2 * k, ve.node(left, right))]

    def hashes(self):
        return [h for _, h in self.nodes]

    def root(self):
        if not self.nodes:
            return ve.EMPTY_ROOT
        r = self.nodes[-1][1]
        for _, h in reversed(self.nodes[:-1]):
            r = ve.node(h, r)
        return r


class Scan:
    def __init__(self):
        self.segments = []       # live segment names read, in order
        self.frames = []         # (segment name, offset, seq, payload_len) of every whole live frame read
        self.archived_frames = []  # the same for the archived segments read (with --archive)
        self.start = 0           # the seq of leaves[0]: 0, or the boundary B when the archive is not read
        self.base = CompactRange()  # the tree at `start`: empty, or the manifest's frontier at B
        self.leaves = []         # RFC 6962 leaf hashes of receipts start, start+1, ...
        self.tree = CompactRange()  # the tree of every receipt read (from the base)
        self.manifest = None     # the archive manifest, when DATA_DIR has one
        self.archive_read = False  # whether the archived ranges were read (--archive)
        self.continued = 0       # resources whose first live receipt continued an archived numbering
        self.torn = None         # description of the torn tail, if any
        self.notes = []
        self.failure = None

    @property
    def receipts(self):
        """The ledger's length: archived receipts included."""
        return self.start + len(self.leaves)

    def root_at(self, size):
        """The root at `size` (start <= size <= receipts), from the base and the leaves read."""
        t = self.base.copy()
        for leaf in self.leaves[:size - self.start]:
            t.push(leaf)
        return t.root()


def is_zeros(b):
    return not b.strip(b"\x00")


def frame_header_fields(hdr):
    payload_len, seq, payload_crc, header_crc = struct.unpack(">IQII", hdr)
    return payload_len, seq, payload_crc, header_crc


def scan_dir(data_dir, manifest=None, archive_dir=None):
    """Reads DATA_DIR/segments as "Data directory" specifies: from receipt 0, or with an archive
    manifest (checked by check_manifest) from its boundary, or with archive_dir from receipt 0
    through the manifest's ranges in archive_dir/segments and on into the live segments.
    Returns a Scan; scan.failure is the first failure (reading stops there), scan.torn the
    torn tail (reading stops there)."""
    s = Scan()
    s.manifest = manifest
    try:
        _scan(data_dir, s, manifest, archive_dir)
    except Failure as f:
        s.failure = f
    return s


class Reader:
    """The state that runs through every receipt read: the chain ("Verifying a chain"), the
    resource numbering and the Merkle tree."""

    def __init__(self, scan, start=0, start_hash=vr.ZERO32, base=None, counts_from=None):
        self.scan = scan
        self.chain = vr.ChainVerifier()
        self.chain.expected_seq = start
        self.chain.expected_prev = start_hash
        self.counts = {}
        # None: every resource's numbering starts here at 0. B: the receipts below B were not
        # read, so a resource's first receipt read may continue a numbering begun below B.
        self.counts_from = counts_from
        scan.start = start
        scan.base = base if base is not None else CompactRange()
        scan.tree = scan.base.copy()

    @property
    def next_seq(self):
        return self.chain.expected_seq


def read_segment(rd, name, data, last, frames, label):
    """Reads one segment file's bytes: its header, then every frame and record. `last`: a torn
    tail is allowed (and returned, as its description); `label` names the segment in failures."""
    s = rd.scan
    first = int(name[:20])
    expected_seq = rd.next_seq
    # segment header
    want = segment_header(first)
    if len(data) < SEGMENT_HEADER_LEN:
        if last and data == want[:len(data)]:
            return ("torn tail (b) in segment %s at offset 0: %d bytes, less than a whole segment header"
                    % (label, len(data)))
        if last and is_zeros(data):
            return "torn tail (d) in segment %s at offset 0: %d zero bytes" % (label, len(data))
        raise Failure("segment_header", "%d bytes, less than a segment header%s"
                      % (len(data), "" if last else " (and not the last segment)"), label, 0, expected_seq)
    head = data[:SEGMENT_HEADER_LEN]
    if head != want:
        if last and is_zeros(data):
            return "torn tail (d) in segment %s at offset 0: %d zero bytes" % (label, len(data))
        tag, version, hseq = head[:14], struct.unpack(">H", head[14:16])[0], struct.unpack(">Q", head[16:24])[0]
        if tag != SEGMENT_TAG:
            why = ("tag %s is not 'govern.segment' (no segment header: a segment of format 1, or no "
                   "segment)" % tag.hex())
        elif version != SEGMENT_VERSION:
            why = "segment format version %d, expected %d" % (version, SEGMENT_VERSION)
        else:
            why = "header says the first seq is %d, the name says %d" % (hseq, first)
        raise Failure("segment_header", why, label, 0, expected_seq)

    # frames
    off = SEGMENT_HEADER_LEN
    while off < len(data):
        expected_seq = rd.next_seq
        rest = len(data) - off
        # (d) is looked for only where a frame's header checks fail (a header of zeros fails its
        # CRC), so that a long segment is not rescanned at every frame
        hdr = data[off:off + FRAME_HEADER_LEN]
        header_ok = rest >= FRAME_HEADER_LEN and crc32c(hdr[:16]) == struct.unpack(">I", hdr[16:20])[0]
        if last and not header_ok and is_zeros(data[off:]):
            return "torn tail (d) in segment %s at offset %d: %d zero byte(s)" % (label, off, rest)
        if rest < FRAME_HEADER_LEN:
            if last:
                return ("torn tail (a) in segment %s at offset %d: %d bytes, less than a frame header"
                        % (label, off, rest))
            raise Failure("partial_frame", "%d bytes, less than a frame header, at the end of a segment "
                          "that is not the last" % rest, label, off, expected_seq)
        payload_len, seq, payload_crc, header_crc = frame_header_fields(hdr)
        if not header_ok:
            raise Failure("frame_header_crc", "header_crc %08x, CRC32C of the header is %08x"
                          % (header_crc, crc32c(hdr[:16])), label, off, expected_seq)
        if payload_len > MAX_PAYLOAD:
            raise Failure("payload_len", "payload_len %d is over 1 MiB" % payload_len, label, off, expected_seq)
        if seq != expected_seq:
            raise Failure("frame_seq", "frame header says seq %d" % seq, label, off, expected_seq)
        end = off + FRAME_HEADER_LEN + payload_len
        if end > len(data):
            if last:
                return ("torn tail (c) in segment %s at offset %d: a frame header of seq %d whose %d-byte "
                        "payload runs %d byte(s) past the end" % (label, off, seq, payload_len, end - len(data)))
            raise Failure("partial_frame", "the %d-byte payload runs past the end of a segment that is not "
                          "the last" % payload_len, label, off, expected_seq)
        payload = data[off + FRAME_HEADER_LEN:end]
        if crc32c(payload) != payload_crc:
            raise Failure("payload_crc", "payload_crc %08x, CRC32C of the payload is %08x"
                          % (payload_crc, crc32c(payload)), label, off, expected_seq)
        # "Verifying a chain", checks 1-5 then decoding
        try:
            rd.chain.push_record(payload)
        except vr.ChainError as e:
            raise Failure(e.kind, str(e), label, off, expected_seq)
        r = vr.decode_record(payload)
        # what a decoder checks beyond verify_receipts.decode_record: governor name and ids
        if r["governor"] not in vr.GOVERNORS:
            raise Failure("malformed", "governor %r is not one of the ten" % r["governor"],
                          label, off, expected_seq)
        for f in ("tenant_id", "resource_id"):
            if not vr.ID_RE.fullmatch(r[f]):   # fullmatch: the pattern's `$` would allow a final newline
                raise Failure("malformed", "%s %r is not 1 to 128 of A-Z a-z 0-9 . _ : -" % (f, r[f]),
                              label, off, expected_seq)
        key = (r["tenant_id"], r["governor"], r["resource_id"])
        rs = r["resource_seq"]
        if key in rd.counts or rd.counts_from is None:
            want_rs = rd.counts.get(key, 0)
            if rs != want_rs:
                raise Failure("resource_seq", "resource_seq %d, but %s/%s/%s has %d earlier receipts"
                              % (rs, key[0], key[1], key[2], want_rs), label, off, expected_seq)
        else:
            # The first receipt read of a resource, the archived receipts not read: its numbering
            # may continue one begun below B (ASSUMED: accepted as found), but it cannot count
            # more earlier receipts than there are below B.
            if rs > rd.counts_from:
                raise Failure("resource_seq", "resource_seq %d for the first live receipt of %s/%s/%s, but only "
                              "%d receipts are archived before it" % (rs, key[0], key[1], key[2], rd.counts_from),
                              label, off, expected_seq)
            if rs > 0:
                s.continued += 1
        rd.counts[key] = rs + 1
        frames.append((name, off, seq, payload_len))
        leaf = ve.leaf_hash(r["hash"])
        s.leaves.append(leaf)
        s.tree.push(leaf)
        off = end
    return None


def _list_segments(seg_dir, where):
    """The segment file names of a segments/ directory, in order; refuses anything else in it
    but index files."""
    names = sorted(n for n in os.listdir(seg_dir) if not INDEX_NAME_RE.fullmatch(n))
    for name in names:
        path = os.path.join(seg_dir, name)
        if not SEGMENT_NAME_RE.fullmatch(name):
            raise Failure("stray_file", "%s/%s: nothing but NNNNNNNNNNNNNNNNNNNN.seg files (and their "
                          ".idx indexes) may be in segments/" % (where, name))
        if os.path.islink(path) or not os.path.isfile(path):
            raise Failure("stray_file", "%s/%s is not a regular file" % (where, name))
    return names


def _scan(data_dir, s, manifest, archive_dir):
    seg_dir = os.path.join(data_dir, "segments")
    if not os.path.isdir(seg_dir):
        raise Failure("no_segments", "%s is not a directory" % seg_dir)
    names = _list_segments(seg_dir, "segments")

    if manifest is None:
        rd = Reader(s)
    else:
        b = manifest["boundary"]
        # Segments below B that are still here: an archival that crashed after its manifest
        # (runtime-semantics.md, "Archival": an open ignores them, a writer removes them).
        below = [n for n in names if int(n[:20]) < b]
        by_name = {r["segment"]: r for r in manifest["ranges"]}
        for n in below:
            r = by_name.get(n)
            what = ("archived range [%d, %d)" % (r["first_seq"], r["end_seq"]) if r is not None
                    else "no range of the manifest")
            s.notes.append("note: segments/%s is below the archive boundary %d (%s): left by an archival "
                           "that stopped after its manifest; ignored, not read (a writer removes it)"
                           % (n, b, what))
        names = [n for n in names if int(n[:20]) >= b]
        if archive_dir is None:
            rd = Reader(s, b, manifest["boundary_hash"], CompactRange(b, manifest["frontier"]), counts_from=b)
        else:
            rd = Reader(s)
            read_archive(archive_dir, manifest, rd)
            s.archive_read = True

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
        if first != rd.next_seq:
            prev = ("; segment %s before it holds no frame, and only the last may be empty" % s.segments[-2]
                    if len(s.segments) > 1 and len(s.frames) == frames_before else "")
            bound = (" (the archive boundary)" if manifest is not None and rd.next_seq == manifest["boundary"]
                     else "")
            raise Failure("segment_name", "named for seq %d, but the next receipt is seq %d%s (a segment missing, "
                          "added or renamed%s)" % (first, rd.next_seq, bound, prev),
                          name, 0, rd.next_seq)
        frames_before = len(s.frames)
        torn = read_segment(rd, name, data, last, s.frames, name)
        if torn is not None:
            s.torn = torn
            return


def read_archive(archive_dir, manifest, rd):
    """--archive: reads exactly the manifest's ranges from ARCHIVE_DIR/segments, each checked
    for its length and SHA-256 and then read in full as a sealed segment, from receipt 0 (every
    frame and record, the chain, the numbering, the tree), with its last hash and root
    compared to the manifest's; then the tree at B against the manifest's frontier."""
    s = rd.scan
    seg_dir = os.path.join(archive_dir, "segments")
    named = {r["segment"] for r in manifest["ranges"]}
    if os.path.isdir(seg_dir):
        for other in sorted(set(os.listdir(seg_dir)) - named):
            s.notes.append("note: %s/segments/%s is in the archive but in no range of the manifest: not read"
                           % (archive_dir, other))
    copy = os.path.join(archive_dir, "manifest.json")
    if os.path.isfile(copy):
        try:
            with open(copy, "rb") as fh:
                same = json.loads(fh.read(MANIFEST_MAX + 1)) == manifest["json"]
        except ValueError:
            same = False
        if not same:
            s.notes.append("note: %s differs from DATA_DIR/archive.json (the page: a copy of the manifest); "
                           "the ranges read are DATA_DIR/archive.json's" % copy)
    else:
        s.notes.append("note: %s is missing (the page: the archive holds a copy of the manifest)" % copy)
    for r in manifest["ranges"]:
        name = r["segment"]
        label = "%s in the archive" % name
        path = os.path.join(seg_dir, name)
        if os.path.islink(path) or not os.path.isfile(path):
            raise Failure("archive_missing", "%s is not a regular file" % path, label, None, r["first_seq"])
        size = os.path.getsize(path)
        if size != r["bytes"]:
            raise Failure("archive_length", "%d bytes, the manifest says %d" % (size, r["bytes"]),
                          label, None, r["first_seq"])
        with open(path, "rb") as fh:
            data = fh.read(r["bytes"] + 1)
        digest = hashlib.sha256(data).hexdigest()
        if digest != r["sha256"]:
            raise Failure("archive_digest", "SHA-256 %s, the manifest says %s" % (digest, r["sha256"]),
                          label, None, r["first_seq"])
        # a sealed segment: no torn tail
        read_segment(rd, name, data, False, s.archived_frames, label)
        if rd.next_seq != r["end_seq"]:
            raise Failure("archive_range", "holds receipts %d to %d, the manifest says [%d, %d)"
                          % (r["first_seq"], rd.next_seq - 1, r["first_seq"], r["end_seq"]),
                          label, None, rd.next_seq)
        if rd.chain.expected_prev.hex() != r["last_hash"]:
            raise Failure("archive_last_hash", "its last receipt's hash is %s, the manifest says %s"
                          % (rd.chain.expected_prev.hex(), r["last_hash"]), label, None, r["end_seq"] - 1)
        if s.tree.root().hex() != r["root"]:
            raise Failure("archive_root", "the root of the first %d receipts is %s, the manifest says %s"
                          % (r["end_seq"], s.tree.root().hex(), r["root"]), label, None, r["end_seq"])
    if s.tree.hashes() != manifest["frontier"]:
        raise Failure("archive_frontier", "the frontier of the archived receipts differs from the manifest's",
                      None, None, manifest["boundary"])


def check_checkpoint(scan, checkpoint_path, public_key_path):
    """The size of the checkpoint (either form), verified with the public key and against the
    receipts read; raises Failure."""
    public = ve.load_public_key(public_key_path)
    size, root = ve.verify_checkpoint_text(ve.read_checkpoint_file(checkpoint_path), public)
    n = scan.receipts
    if size > n:
        raise Failure("checkpoint_size", "the checkpoint signs %d receipts, the ledger holds %d: receipts were "
                      "cut off" % (size, n), seq=n)
    if size < scan.start:
        raise Failure("checkpoint_archived", "the checkpoint signs %d receipts, below the archive boundary %d: "
                      "its root needs the archived receipts (give --archive ARCHIVE_DIR)" % (size, scan.start),
                      seq=size)
    found = scan.root_at(size)
    if found != root:
        raise Failure("checkpoint_root", "the root of the first %d receipts is %s, the checkpoint signed %s: "
                      "history was rewritten" % (size, found.hex(), root.hex()), seq=size)
    return size


# --------------------------------------------------------------------------
# The archive manifest ("The archive manifest")
# --------------------------------------------------------------------------

MANIFEST_FILE = "archive.json"
ARCHIVE_BASE_DIR = "archive"
MANIFEST_FORMAT = "govern.archive"
MANIFEST_VERSION = 1
# ASSUMED bound (the page gives none): 64 MiB holds some 90 000 ranges of ~700 bytes each.
MANIFEST_MAX = 64 * 1024 * 1024
MANIFEST_KEYS = {"format", "version", "boundary", "boundary_hash", "frontier", "base_snapshot", "base_states",
                 "ranges"}
RANGE_KEYS = {"segment", "first_seq", "end_seq", "bytes", "sha256", "prev_hash", "last_hash", "root",
              "consistency", "archived_at"}
BASE_KEYS = {"file", "bytes", "sha256"}
HEX64_RE = re.compile(r"[0-9a-f]{64}")


def _manifest_format(cond, what):
    if not cond:
        raise Failure("manifest_format", "archive.json: %s" % what)


def _hex64(v, what):
    _manifest_format(isinstance(v, str) and HEX64_RE.fullmatch(v) is not None,
                     "%s is not 64 lowercase hex digits" % what)
    return v


def _members(obj, keys, what):
    _manifest_format(isinstance(obj, dict), "%s is not an object" % what)
    missing, extra = keys - set(obj), set(obj) - keys
    _manifest_format(not missing and not extra, "%s has members %s, the page gives %s (ASSUMED: those and no "
                     "other)" % (what, sorted(obj), sorted(keys)))


def read_manifest(data_dir):
    """DATA_DIR/archive.json's fields, as the page gives them; raises Failure (manifest_format)."""
    path = os.path.join(data_dir, MANIFEST_FILE)
    with open(path, "rb") as fh:
        raw = fh.read(MANIFEST_MAX + 1)
    _manifest_format(len(raw) <= MANIFEST_MAX, "longer than %d bytes" % MANIFEST_MAX)
    try:
        m = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Failure("manifest_format", "archive.json is not JSON: %s" % e)
    _members(m, MANIFEST_KEYS, "the manifest")
    _manifest_format(m["format"] == MANIFEST_FORMAT and m["version"] == MANIFEST_VERSION
                     and type(m["version"]) is int,
                     "format %r, version %r: expected %r, %d" % (m["format"], m["version"], MANIFEST_FORMAT,
                                                                 MANIFEST_VERSION))
    _manifest_format(ve.is_uint(m["boundary"]), "boundary is not an unsigned integer")
    _hex64(m["boundary_hash"], "boundary_hash")
    _manifest_format(isinstance(m["frontier"], list), "frontier is not an array")
    for i, h in enumerate(m["frontier"]):
        _hex64(h, "frontier[%d]" % i)
    for k in ("base_snapshot", "base_states"):
        _members(m[k], BASE_KEYS, k)
        _manifest_format(isinstance(m[k]["file"], str), "%s.file is not a string" % k)
        _manifest_format(ve.is_uint(m[k]["bytes"]), "%s.bytes is not an unsigned integer" % k)
        _hex64(m[k]["sha256"], "%s.sha256" % k)
    _manifest_format(isinstance(m["ranges"], list), "ranges is not an array")
    for i, r in enumerate(m["ranges"]):
        what = "ranges[%d]" % i
        _members(r, RANGE_KEYS, what)
        _manifest_format(isinstance(r["segment"], str) and SEGMENT_NAME_RE.fullmatch(r["segment"]) is not None,
                         "%s.segment %r is not a segment file name" % (what, r["segment"]))
        for k in ("first_seq", "end_seq", "bytes"):
            _manifest_format(ve.is_uint(r[k]), "%s.%s is not an unsigned integer" % (what, k))
        for k in ("sha256", "prev_hash", "last_hash", "root"):
            _hex64(r[k], "%s.%s" % (what, k))
        _manifest_format(isinstance(r["consistency"], list), "%s.consistency is not an array" % what)
        for j, h in enumerate(r["consistency"]):
            _hex64(h, "%s.consistency[%d]" % (what, j))
        # ASSUMED: the page says only "when it was archived"; govern writes RFC 3339 text
        _manifest_format(isinstance(r["archived_at"], str) and r["archived_at"] != "",
                         "%s.archived_at is not a (non-empty) string" % what)
    m["json"] = json.loads(raw.decode("utf-8"))
    return m


def check_manifest(data_dir):
    """Reads DATA_DIR/archive.json and checks that it holds together as the page states: the
    ranges contiguous from 0 to B and none empty, each prev_hash the last_hash before it (zeros
    for the first), each consistency proof from the previous range's root (the empty tree's for
    the first) to its own, the last range's last_hash = boundary_hash and its root = the
    frontier's, one frontier node per set bit of B; then the base files (named base-B.snap and
    base-B.states under DIR/archive/, their lengths and SHA-256). Returns the manifest; raises
    Failure."""
    m = read_manifest(data_dir)
    b, ranges = m["boundary"], m["ranges"]
    # ASSUMED: at least one range (the manifest exists once segments were moved out)
    if not ranges:
        raise Failure("manifest_ranges", "archive.json names no archived range")
    prev_end, prev_last, prev_root = 0, vr.ZERO32.hex(), ve.EMPTY_ROOT
    for i, r in enumerate(ranges):
        where = "ranges[%d] (%s)" % (i, r["segment"])
        if r["first_seq"] != prev_end:
            raise Failure("manifest_ranges", "%s starts at receipt %d, the range before it ends at %d"
                          % (where, r["first_seq"], prev_end), seq=prev_end)
        if r["end_seq"] <= r["first_seq"]:
            raise Failure("manifest_ranges", "%s is empty or reversed: [%d, %d)" % (where, r["first_seq"],
                                                                                   r["end_seq"]), seq=r["first_seq"])
        if r["segment"] != segment_name(r["first_seq"]):
            raise Failure("manifest_ranges", "%s: a segment holding receipts from %d is named %s"
                          % (where, r["first_seq"], segment_name(r["first_seq"])), seq=r["first_seq"])
        if r["prev_hash"] != prev_last:
            raise Failure("manifest_link", "%s.prev_hash %s, the %s %s" % (
                where, r["prev_hash"], "range before it ends with" if i else "first range's must be zeros:",
                prev_last), seq=r["first_seq"])
        proof = [bytes.fromhex(h) for h in r["consistency"]]
        root = bytes.fromhex(r["root"])
        if not ve.verify_consistency(r["first_seq"], r["end_seq"], prev_root, root, proof):
            raise Failure("manifest_consistency", "%s: its consistency proof (%d hashes) from the root at %d (%s) "
                          "to its root at %d (%s) does not verify" % (where, len(proof), r["first_seq"],
                                                                     prev_root.hex(), r["end_seq"], r["root"]),
                          seq=r["end_seq"])
        prev_end, prev_last, prev_root = r["end_seq"], r["last_hash"], root
    if prev_end != b:
        raise Failure("manifest_ranges", "the ranges end at receipt %d, the boundary is %d" % (prev_end, b),
                      seq=prev_end)
    if prev_last != m["boundary_hash"]:
        raise Failure("manifest_boundary", "the last range's last_hash %s is not boundary_hash %s"
                      % (prev_last, m["boundary_hash"]), seq=b - 1)
    if len(m["frontier"]) != bin(b).count("1"):
        raise Failure("manifest_frontier", "%d frontier nodes, but the boundary %d has %d set bits"
                      % (len(m["frontier"]), b, bin(b).count("1")), seq=b)
    frontier = CompactRange(b, [bytes.fromhex(h) for h in m["frontier"]])
    if frontier.root() != prev_root:
        raise Failure("manifest_frontier", "the frontier's root %s is not the last range's root %s"
                      % (frontier.root().hex(), prev_root.hex()), seq=b)
    m["boundary_hash"] = bytes.fromhex(m["boundary_hash"])
    m["frontier"] = frontier.hashes()
    for k, ext in (("base_snapshot", "snap"), ("base_states", "states")):
        f = m[k]
        want = "%s/base-%d.%s" % (ARCHIVE_BASE_DIR, b, ext)
        if f["file"] != want:
            raise Failure("base_file", "%s.file is %r, the page names it %r" % (k, f["file"], want))
        path = os.path.join(data_dir, want)
        if os.path.islink(path) or not os.path.isfile(path):
            raise Failure("base_file", "%s (%s) is not a regular file" % (want, k))
        size = os.path.getsize(path)
        if size != f["bytes"]:
            raise Failure("base_file", "%s is %d bytes, the manifest says %d" % (want, size, f["bytes"]))
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read(f["bytes"] + 1)).hexdigest()
        if digest != f["sha256"]:
            raise Failure("base_file", "%s has SHA-256 %s, the manifest says %s" % (want, digest, f["sha256"]))
    return m


def directory_notes(data_dir, manifest=None):
    """Things the page states about the other files; noted, not failed (they do not bear on the receipts)."""
    notes = []
    has_manifest = os.path.isfile(os.path.join(data_dir, MANIFEST_FILE))
    listed = DIR_FILES | ({MANIFEST_FILE, ARCHIVE_BASE_DIR} if has_manifest else set())
    for name in sorted(os.listdir(data_dir)):
        if name not in listed:
            notes.append("note: %s is not one of the files the page lists for a data directory%s"
                         % (name, " without an archive manifest" if name == ARCHIVE_BASE_DIR else ""))
    base_dir = os.path.join(data_dir, ARCHIVE_BASE_DIR)
    if manifest is not None and os.path.isdir(base_dir):
        named = {os.path.basename(manifest[k]["file"]) for k in ("base_snapshot", "base_states")}
        for name in sorted(os.listdir(base_dir)):
            if name not in named:
                notes.append("note: %s/%s is not a base file the manifest names" % (ARCHIVE_BASE_DIR, name))
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


def verify_dir(data_dir, checkpoint_path=None, public_key_path=None, archive_dir=None):
    """Verifies DATA_DIR (no printing). checkpoint_path None: no checkpoint check. archive_dir:
    the archive directory whose ranges the manifest names, read in full (--archive)."""
    manifest = None
    if os.path.isfile(os.path.join(data_dir, MANIFEST_FILE)):
        try:
            manifest = check_manifest(data_dir)
        except OSError as e:
            f = Failure("manifest_unreadable", str(e))
        except Failure as e:
            f = e
        else:
            f = None
        if f is not None:
            lines = directory_notes(data_dir) + [f.line()]
            scan = Scan()
            scan.failure = f
            return Outcome(lines, scan, f)
    elif archive_dir is not None:
        scan = Scan()
        scan.failure = Failure("no_manifest", "--archive %s given, but %s has no %s: nothing is archived"
                               % (archive_dir, data_dir, MANIFEST_FILE))
        return Outcome([scan.failure.line()], scan, scan.failure)
    lines = directory_notes(data_dir, manifest) if os.path.isdir(data_dir) else []
    scan = scan_dir(data_dir, manifest, archive_dir)
    lines += scan.notes
    if scan.continued:
        lines.append("note: %d resource(s) whose first live receipt carries a resource_seq above 0, continuing a numbering "
                     "begun in the archived receipts: accepted as found (ASSUMED; --archive counts them)"
                     % scan.continued)
    if scan.torn:
        lines.append(scan.torn + " (the remains of a write that never completed; a writer truncates it)")
    if scan.failure:
        lines.append(scan.failure.line())
        return Outcome(lines, scan, scan.failure)
    n = scan.receipts
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
    root = scan.tree.root().hex()
    if manifest is None:
        lines.append("ok: %d receipts in %d segments; root %s at size %d; %s"
                     % (n, len(scan.segments), root, n, checked))
    else:
        b, k = manifest["boundary"], len(manifest["ranges"])
        if scan.archive_read:
            archived = ("%d archived receipts in %d ranges read in full from %s (length, SHA-256, every frame "
                        "and record from receipt 0, each range's last hash and root, the frontier at %d)"
                        % (b, k, archive_dir, b))
        else:
            archived = ("%d archived receipts in %d ranges checked by the manifest alone (links, consistency "
                        "proofs, boundary hash, frontier, base files; the archived segments not read)" % (b, k))
        lines.append("ok: %d receipts: %s, then %d live in %d segments from the boundary %d; root %s at size %d; %s"
                     % (n, archived, n - b, len(scan.segments), b, root, n, checked))
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

def run_self_test(data_dir, archive_dir=None):
    tmp = tempfile.mkdtemp(prefix="govern-selftest-")
    try:
        if archive_dir is not None:
            return _self_test_archived(data_dir, archive_dir, tmp)
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
# --self-test on an archived data directory
# --------------------------------------------------------------------------

def _ed25519_sign(seed, msg):
    """RFC 8032 section 5.1.6 signing, for the self-test's checkpoint below the boundary only
    (signed with the copy's own checkpoint.key, then checked by rfc8032.verify like any other)."""
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)

    def compress(P):
        zinv = rfc8032.modp_inv(P[2])
        x, y = P[0] * zinv % rfc8032.p, P[1] * zinv % rfc8032.p
        return (y | ((x & 1) << 255)).to_bytes(32, "little")

    public = compress(rfc8032.point_mul(a, rfc8032.G))
    r = rfc8032.sha512_modq(h[32:] + msg)
    R = compress(rfc8032.point_mul(r, rfc8032.G))
    k = rfc8032.sha512_modq(R + public + msg)
    return public, R + ((r + k * a) % rfc8032.q).to_bytes(32, "little")


def _self_test_archived(data_dir, archive_dir, tmp):
    """Cases on copies of an archived data directory and its archive (govern archive's output)."""
    base, base_archive = os.path.join(tmp, "base"), os.path.join(tmp, "base-archive")
    shutil.copytree(data_dir, base)
    shutil.copytree(archive_dir, base_archive)
    cp_path, pub_path = os.path.join(base, "checkpoint.json"), os.path.join(base, "checkpoint.pub")
    if not (os.path.isfile(cp_path) and os.path.isfile(pub_path)):
        print("FAIL self-test needs DATA_DIR/checkpoint.json and DATA_DIR/checkpoint.pub")
        return 1
    full = verify_dir(base, cp_path, pub_path, base_archive)
    print("copy of %s with --archive %s: %s" % (data_dir, archive_dir, full.summary))
    if not full.ok or full.scan.torn:
        print("FAIL self-test needs an archived directory that verifies with its archive without a torn tail")
        return 1
    with open(os.path.join(base, MANIFEST_FILE)) as fh:
        manifest = json.load(fh)
    b, ranges = manifest["boundary"], manifest["ranges"]
    n = full.scan.receipts
    if len(ranges) < 3 or not full.scan.frames:
        print("FAIL self-test needs at least 3 archived ranges and a live receipt (have %d, %d)"
              % (len(ranges), len(full.scan.frames)))
        return 1

    results = []
    counter = [0]

    def fresh():
        counter[0] += 1
        d = os.path.join(tmp, "case%02d" % counter[0])
        shutil.copytree(base, d)
        shutil.copytree(base_archive, d + "-archive")
        return d, d + "-archive"

    def run(d, a, archive):
        return verify_dir(d, os.path.join(d, "checkpoint.json"), os.path.join(d, "checkpoint.pub"),
                          a if archive else None)

    def how(archive):
        return "with --archive" if archive else "without --archive"

    def expect_fail(what, d, a, archive, kind, seq=None, segment=None):
        out = run(d, a, archive)
        good = (not out.ok and out.failure.kind == kind and (seq is None or out.failure.seq == seq)
                and (segment is None or segment in (out.failure.segment or "")))
        results.append(good)
        print("%s fails %s: %s\n       -> %s" % ("ok  " if good else "FAIL", how(archive), what, out.summary))
        if not good:
            print("       (expected a %s failure%s%s)" % (kind, "" if seq is None else " at seq %d" % seq,
                                                          "" if segment is None else " naming %s" % segment))

    def expect_ok(what, d, a, archive, receipts=n, note=None):
        out = run(d, a, archive)
        summary_says = "read in full" if archive else "checked by the manifest alone"
        good = (out.ok and out.scan.torn is None and out.scan.receipts == receipts and summary_says in out.summary
                and (note is None or any(line.startswith("note: ") and note in line for line in out.lines)))
        results.append(good)
        print("%s verifies %s: %s\n       -> %s" % ("ok  " if good else "FAIL", how(archive), what, out.summary))
        for line in out.lines[:-1]:
            print("       -> %s" % line)
        if not good and note is not None:
            print("       (expected a note saying %r)" % note)

    def edit_manifest(d, change):
        path = os.path.join(d, MANIFEST_FILE)
        with open(path) as fh:
            m = json.load(fh)
        change(m)
        with open(path, "w") as fh:
            json.dump(m, fh, indent=2)

    def flip_hex(h, i=0):
        return h[:i] + "%x" % (int(h[i], 16) ^ 1) + h[i + 1:]

    def flip(path, offset):
        with open(path, "r+b") as fh:
            fh.seek(offset)
            c = fh.read(1)[0]
            fh.seek(offset)
            fh.write(bytes([c ^ 0x20]))

    def archived(a, r):
        return os.path.join(a, "segments", r["segment"])

    mid = len(ranges) // 2
    rmid = ranges[mid]

    # 1. as made: the manifest alone, and the archive in full
    d, a = fresh()
    expect_ok("the directory as govern archive left it", d, a, False, receipts=n)
    expect_ok("the directory as govern archive left it", d, a, True, receipts=n)

    # 2. archived segments damaged: only --archive reads them
    for archive, kind in ((True, "archive_digest"), (False, None)):
        d, a = fresh()
        flip(archived(a, rmid), rmid["bytes"] // 2)
        what = "a byte in the middle of archived segment %s changed" % rmid["segment"]
        if kind:
            expect_fail(what, d, a, archive, kind, rmid["first_seq"], rmid["segment"])
        else:
            expect_ok(what + " (the manifest alone does not read the archive: the page's trust statement)",
                      d, a, archive)
    # the same, with the manifest's SHA-256 changed to match: every frame is read
    frames = [f for f in full.scan.archived_frames if f[0] == rmid["segment"]]
    seg, off, seq, plen = frames[len(frames) // 2]
    d, a = fresh()
    flip(archived(a, rmid), off + FRAME_HEADER_LEN + plen // 2)
    with open(archived(a, rmid), "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    edit_manifest(d, lambda m: m["ranges"][mid].update(sha256=digest))
    expect_fail("a payload byte of seq %d in archived segment %s changed, and the manifest's SHA-256 of it "
                "updated" % (seq, seg), d, a, True, "payload_crc", seq, seg)
    # history rewritten in an archived segment: frames and SHA-256 consistent, the chain is not
    records = []
    for s_, o_, q_, l_ in frames:
        with open(archived(base_archive, rmid), "rb") as fh:
            fh.seek(o_ + FRAME_HEADER_LEN)
            records.append(fh.read(l_))
    r = vr.decode_record(records[-1])
    r["reason"] = "rewritten by verify_data_dir.py --self-test"
    pre = vr.build_preimage(r)
    records[-1] = pre + hashlib.sha256(pre).digest()
    rewritten = encode_segment(rmid["first_seq"], records)
    d, a = fresh()
    with open(archived(a, rmid), "wb") as fh:
        fh.write(rewritten)
    edit_manifest(d, lambda m: m["ranges"][mid].update(sha256=hashlib.sha256(rewritten).hexdigest(),
                                                      bytes=len(rewritten)))
    expect_fail("receipt %d's reason rewritten and re-hashed in archived segment %s, its frame, file length and "
                "SHA-256 in the manifest updated" % (rmid["end_seq"] - 1, rmid["segment"]), d, a, True,
                "archive_last_hash", rmid["end_seq"] - 1, rmid["segment"])
    d, a = fresh()
    os.remove(archived(a, rmid))
    expect_fail("archived segment %s deleted from the archive" % rmid["segment"], d, a, True, "archive_missing",
                rmid["first_seq"], rmid["segment"])
    d, a = fresh()
    with open(archived(a, rmid), "r+b") as fh:
        fh.truncate(rmid["bytes"] - 1)
    expect_fail("archived segment %s cut one byte short" % rmid["segment"], d, a, True, "archive_length",
                rmid["first_seq"], rmid["segment"])

    # 3. the manifest: each of the page's conditions, each by its own check
    for what, change, kind, seq in (
            ("ranges[%d].prev_hash changed (a broken link)" % mid,
             lambda m: m["ranges"][mid].update(prev_hash=flip_hex(m["ranges"][mid]["prev_hash"])),
             "manifest_link", rmid["first_seq"]),
            ("a hash of ranges[%d]'s consistency proof changed (a bad proof)" % mid,
             lambda m: m["ranges"][mid]["consistency"].__setitem__(0, flip_hex(m["ranges"][mid]["consistency"][0])),
             "manifest_consistency", rmid["end_seq"]),
            ("ranges[%d]'s consistency proof emptied" % mid,
             lambda m: m["ranges"][mid].update(consistency=[]), "manifest_consistency", rmid["end_seq"]),
            ("ranges[%d].root changed (its proof from the root before it fails)" % mid,
             lambda m: m["ranges"][mid].update(root=flip_hex(m["ranges"][mid]["root"], 63)),
             "manifest_consistency", rmid["end_seq"]),
            ("ranges[%d] removed (a gap)" % mid, lambda m: m["ranges"].pop(mid), "manifest_ranges", rmid["first_seq"]),
            ("the last range removed (the ranges end below the boundary)", lambda m: m["ranges"].pop(),
             "manifest_ranges", ranges[-1]["first_seq"]),
            ("ranges[0].prev_hash not zeros", lambda m: m["ranges"][0].update(prev_hash="11" * 32),
             "manifest_link", 0),
            ("boundary_hash changed", lambda m: m.update(boundary_hash=flip_hex(m["boundary_hash"])),
             "manifest_boundary", b - 1),
            ("a frontier node changed", lambda m: m["frontier"].__setitem__(-1, flip_hex(m["frontier"][-1])),
             "manifest_frontier", b),
            ("a frontier node dropped", lambda m: m["frontier"].pop(), "manifest_frontier", b),
            ("version 2", lambda m: m.update(version=2), "manifest_format", None),
            ("a member added to a range", lambda m: m["ranges"][0].update(note="x"), "manifest_format", None),
            ("base_snapshot's SHA-256 changed", lambda m: m["base_snapshot"].update(
                sha256=flip_hex(m["base_snapshot"]["sha256"])), "base_file", None)):
        for archive in (False, True):
            d, a = fresh()
            edit_manifest(d, change)
            expect_fail("in the manifest, " + what, d, a, archive, kind, seq)
    # the boundary's hash and the last range's last hash changed together: the manifest holds,
    # the first live receipt does not link to it
    d, a = fresh()
    other = "ab" * 32
    edit_manifest(d, lambda m: (m.update(boundary_hash=other), m["ranges"][-1].update(last_hash=other)))
    expect_fail("boundary_hash and the last range's last_hash changed together", d, a, False, "broken_link", b)
    d, a = fresh()
    edit_manifest(d, lambda m: (m.update(boundary_hash=other), m["ranges"][-1].update(last_hash=other)))
    expect_fail("boundary_hash and the last range's last_hash changed together", d, a, True, "archive_last_hash",
                b - 1, ranges[-1]["segment"])
    d, a = fresh()
    os.remove(os.path.join(d, "archive.json"))
    expect_fail("archive.json deleted (the segments start at the boundary, not at 0)", d, a, False,
                "segment_name", 0)

    # 4. the base files
    snap = os.path.join(ARCHIVE_BASE_DIR, "base-%d.snap" % b)
    states = os.path.join(ARCHIVE_BASE_DIR, "base-%d.states" % b)
    d, a = fresh()
    flip(os.path.join(d, snap), 10)
    expect_fail("a byte of %s changed (a damaged base file: its digest)" % snap, d, a, False, "base_file")
    d, a = fresh()
    os.remove(os.path.join(d, states))
    expect_fail("%s deleted" % states, d, a, True, "base_file")

    # 5. left by an archival that stopped after its manifest: archived segments still in segments/
    for archive in (False, True):
        d, a = fresh()
        for r_ in ranges[-2:]:
            shutil.copyfile(archived(a, r_), os.path.join(d, "segments", r_["segment"]))
        expect_ok("the last two archived segments still in DATA_DIR/segments (a crash after the manifest)",
                  d, a, archive, note="segments/%s is below the archive boundary" % ranges[-1]["segment"])
    d, a = fresh()
    with open(os.path.join(d, ARCHIVE_BASE_DIR, "base-1.snap"), "wb") as fh:
        fh.write(b"old")
    with open(os.path.join(a, "segments", segment_name(b) + ".tmp"), "wb") as fh:
        fh.write(b"x")
    expect_ok("an old base file in DATA_DIR/archive and a stray file in the archive", d, a, True,
              note="base-1.snap is not a base file the manifest names")

    # 6. the live segments, from the boundary
    live = full.scan.frames
    d, a = fresh()
    os.remove(os.path.join(d, "segments", live[0][0]))
    expect_fail("the first live segment %s deleted" % live[0][0], d, a, False, "segment_name", b)
    seg, off, seq, plen = live[-1]
    d, a = fresh()
    flip(os.path.join(d, "segments", seg), off + FRAME_HEADER_LEN + plen // 2)
    expect_fail("a payload byte of the last live receipt %d changed" % seq, d, a, False, "payload_crc", seq)

    # 7. resource_seq across the boundary: a receipt appended for a resource whose every receipt is
    # archived. Without the archive its numbering is accepted as found (ASSUMED); with it, counted.
    counts, live_keys = {}, set()
    for frames_, root_dir in ((full.scan.archived_frames, os.path.join(base_archive, "segments")),
                              (live, os.path.join(base, "segments"))):
        for s_, o_, q_, l_ in frames_:
            with open(os.path.join(root_dir, s_), "rb") as fh:
                fh.seek(o_ + FRAME_HEADER_LEN)
                rec = vr.decode_record(fh.read(l_))
            key = (rec["tenant_id"], rec["governor"], rec["resource_id"])
            counts[key] = counts.get(key, 0) + 1
            if frames_ is live:
                live_keys.add(key)
                last_rec = rec
    gone = sorted(k for k in counts if k not in live_keys)
    if not gone:
        print("FAIL self-test needs a resource whose every receipt is archived")
        return 1
    key = gone[0]
    c = counts[key]

    def append_receipt(d, resource_seq):
        rr = {"seq": n, "timestamp_ms": last_rec["timestamp_ms"] + 1, "tenant_id": key[0], "governor": key[1],
              "resource_id": key[2], "resource_seq": resource_seq, "command": "self_test", "state_from": "a",
              "state_to": "b", "reason": "verify_data_dir.py --self-test", "args": [], "metadata": [],
              "prev_hash": last_rec["hash"]}
        rr["receipt_id"] = vr.derive_receipt_id(rr["timestamp_ms"], rr["prev_hash"])
        pre_ = vr.build_preimage(rr)
        rec_ = pre_ + hashlib.sha256(pre_).digest()
        with open(os.path.join(d, "segments", live[-1][0]), "ab") as fh:
            fh.write(frame_header(n, rec_) + rec_)

    name = "%s/%s/%s" % key
    for rs, archive, kind in ((c, False, None), (c, True, None), (c + 1, False, None),
                              (c + 1, True, "resource_seq"), (b + 1, False, "resource_seq")):
        d, a = fresh()
        append_receipt(d, rs)
        what = ("receipt %d appended for %s, whose %d receipts are all archived, with resource_seq %d"
                % (n, name, c, rs))
        if kind:
            expect_fail(what, d, a, archive, kind, n)
        else:
            expect_ok(what + (" (ASSUMED: accepted as found without the archive)" if rs != c else ""),
                      d, a, archive, receipts=n + 1)

    # 8. a checkpoint below the boundary (signed here with the copy's own key): its root needs the
    # archived receipts
    with open(os.path.join(base, "checkpoint.key")) as fh:
        seed = bytes.fromhex(fh.read().strip())
    public, _ = _ed25519_sign(seed, b"")
    if public != ve.load_public_key(pub_path):
        print("FAIL checkpoint.key's public key is not checkpoint.pub's")
        return 1
    size = ranges[mid]["end_seq"]
    msg = "govern.checkpoint.v1\n%d\n%s\n%d\n" % (size, ranges[mid]["root"], 1)
    old = {"size": size, "root": ranges[mid]["root"], "timestamp_ms": 1,
           "key_id": hashlib.sha256(public).digest()[:8].hex(), "signature": _ed25519_sign(seed, msg.encode())[1].hex()}
    for archive in (False, True):
        d, a = fresh()
        with open(os.path.join(d, "checkpoint.json"), "w") as fh:
            json.dump(old, fh)
        what = "a checkpoint of size %d, below the boundary %d (ranges[%d]'s root, signed)" % (size, b, mid)
        if archive:
            expect_ok(what, d, a, archive)
        else:
            expect_fail(what, d, a, archive, "checkpoint_archived", size)

    bad = results.count(False)
    print("self-test (archived): %d cases, %s" % (len(results), "all as expected" if not bad
                                                 else "%d NOT as expected" % bad))
    return 1 if bad else 0


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

USAGE = """usage: verify_data_dir.py DATA_DIR [--archive ARCHIVE_DIR] [--checkpoint FILE] [--public-key FILE]
       verify_data_dir.py --vector docs/receipts.md
       verify_data_dir.py --self-test DATA_DIR [--archive ARCHIVE_DIR]"""


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
        if a in ("--checkpoint", "--public-key", "--vector", "--self-test", "--archive"):
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
        if positional or set(opts) - {"--self-test", "--archive"}:
            return usage_error("--self-test takes only the data directory (and --archive ARCHIVE_DIR)")
        for d in (opts["--self-test"], opts.get("--archive", ".")):
            if not os.path.isdir(d):
                return usage_error("%s is not a directory" % d)
        archived = os.path.isfile(os.path.join(opts["--self-test"], MANIFEST_FILE))
        if archived != ("--archive" in opts):
            return usage_error("--self-test on an archived data directory (one with %s) needs --archive "
                               "ARCHIVE_DIR, and only then" % MANIFEST_FILE)
        return run_self_test(opts["--self-test"], opts.get("--archive"))
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

    archive_dir = opts.get("--archive")
    if archive_dir is not None and not os.path.isdir(archive_dir):
        return usage_error("archive %s is not a directory" % archive_dir)
    out = verify_dir(data_dir, checkpoint, public_key, archive_dir)
    for line in out.lines:
        print(line)
    return 0 if out.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
