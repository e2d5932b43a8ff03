//! `govern verify --export FILE`: one tenant's export (made by `govern export --with-proofs`)
//! checked without the data directory, against the export's own signed checkpoint or an older
//! saved one (through the consistency proof the export carries). The rules and the line
//! shapes are in docs/receipts.md ("Exports with proofs"); the same checks are written
//! independently in tests/independent/verify_export.py.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use govern_ledger::checkpoint::{VerifiedCheckpoint, VerifyingKey, verify_checkpoint_text};
use govern_ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use govern_receipt::{Digest, Receipt, ReceiptJson, derive_receipt_id};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::export::{EXPORT_FORMAT, EndLine, Header, InclusionProof};

/// The longest line an export may have: a receipt record is at most 1 MiB, its JSON (with
/// escapes) and its proof stay far below this.
const EXPORT_LINE_MAX: usize = 16 * 1024 * 1024;

/// What tells the end line from a receipt line: it has `end`.
#[derive(Deserialize)]
struct Kind {
    end: Option<IgnoredAny>,
}

/// A receipt line: `{"receipt": ..., "inclusion_proof": ... | null}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptLine {
    receipt: ReceiptJson,
    inclusion_proof: Option<InclusionProof>,
}

/// A receipt line's `args` and `metadata` keys, in the order they appear ([`ReceiptJson`]
/// keeps them in maps, which forget it): the JSON view lists them in bytewise order.
#[derive(Deserialize)]
#[allow(dead_code, reason = "read for the order check its keys make while deserializing")]
struct KeyOrder {
    receipt: ReceiptKeyOrder,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "read for the order check its keys make while deserializing")]
struct ReceiptKeyOrder {
    args: SortedKeys,
    metadata: SortedKeys,
}

/// A JSON object whose keys are in strictly increasing bytewise order (values ignored).
struct SortedKeys;

impl<'de> Deserialize<'de> for SortedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SortedKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for SortedKeys {
    type Value = Self;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with keys in bytewise order")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut previous: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            if let Some(previous) = previous.as_ref().filter(|p| p.as_bytes() >= key.as_bytes()) {
                return Err(serde::de::Error::custom(format!(
                    "key {key:?} after {previous:?}: args and metadata keys are in strictly increasing bytewise order"
                )));
            }
            previous = Some(key);
        }
        Ok(self)
    }
}

/// What a verified export holds.
#[derive(Debug)]
pub(crate) struct ExportReport {
    tenant: String,
    receipts: u64,
    resources: usize,
    /// The checkpoint verified against: where it came from, its size.
    anchor: (String, u64),
    /// The export's tree size, whether it is signed, whether a consistency proof was used.
    tree_size: u64,
    tree_signed: bool,
    linked_by_proof: bool,
    note_checked: bool,
    covered: u64,
    newer: u64,
    not_covered: u64,
    /// Resources whose first receipt here continues a numbering begun in archived receipts.
    continued: u64,
    /// The archive boundary the export names, if it left archived receipts out.
    archived_below: Option<u64>,
}

impl ExportReport {
    /// The lines `govern verify --export` prints.
    pub(crate) fn lines(&self) -> Vec<String> {
        let (anchor, m) = &self.anchor;
        let n = self.tree_size;
        let link = if self.linked_by_proof {
            format!("the export's tree (size {n}) extends it: consistency proof verified")
        } else {
            "the export's proofs are made against it".to_owned()
        };
        let tree = if self.tree_signed {
            format!("the export's tree of size {n}, signed by the same key")
        } else {
            format!("the export's tree of size {n}, not signed")
        };
        vec![
            format!(
                "ok: {} receipts of tenant {} in {} resources: hashes, ids, chain links where consecutive and resource_seq verified",
                self.receipts, self.tenant, self.resources
            ),
            format!(
                "checkpoint: {anchor} (size {m}) signature verified; {link}{}",
                if self.note_checked { "; the export's signed note verified" } else { "" }
            ),
            format!(
                "inclusion proofs: {} covered by the checkpoint; {} newer than the checkpoint (not covered by it; proved in {tree}); {} not covered (newer than the export's tree)",
                self.covered, self.newer, self.not_covered
            ),
        ]
        .into_iter()
        .chain(self.archived_below.map(|b| {
            format!(
                "archived: receipts below {b} are archived and not in this export; {} resources continue from them (their numbering there is not checked)",
                self.continued
            )
        }))
        .collect()
    }
}

/// A JSON error in one line of the export: its message and column (serde_json would say
/// "line 1", the line of the string it was given).
fn in_line(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&position) {
        Some(message) => format!("{message} (column {})", e.column()),
        None => message,
    }
}

fn digest(field: &str, s: &str) -> Result<Digest, String> {
    s.parse().map_err(|e| format!("{field}: {e}"))
}

fn digests(field: &str, list: &[String]) -> Result<Vec<Digest>, String> {
    list.iter().map(|s| digest(field, s)).collect()
}

/// Reads an export file and verifies it with `key`, against `trusted` (a saved checkpoint
/// already verified with `key`, and where it came from) or else the export's own checkpoint.
pub(crate) fn verify_file(
    path: &Path,
    key: &VerifyingKey,
    trusted: Option<&(PathBuf, VerifiedCheckpoint)>,
) -> Result<ExportReport, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut lines = std::iter::from_fn(move || {
        let mut line = Vec::new();
        let read = std::io::Read::take(&mut reader, EXPORT_LINE_MAX as u64 + 1)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) => None,
            Ok(_) if line.len() > EXPORT_LINE_MAX => {
                Some(Err(format!("a line longer than {EXPORT_LINE_MAX} bytes")))
            }
            Ok(_) => {
                Some(String::from_utf8(line).map_err(|_| "a line that is not UTF-8".to_owned()))
            }
            Err(e) => Some(Err(e.to_string())),
        }
    });
    let trusted = trusted.map(|(p, c)| (p.display().to_string(), c));
    verify_lines(&mut lines, key, trusted).map_err(|e| format!("export {}: {e}", path.display()))
}

/// Verifies an export's lines (see [`verify_file`]).
fn verify_lines(
    lines: &mut dyn Iterator<Item = Result<String, String>>,
    key: &VerifyingKey,
    trusted: Option<(String, &VerifiedCheckpoint)>,
) -> Result<ExportReport, String> {
    let first = lines.next().ok_or("empty: no header line")??;
    let header: Header = serde_json::from_str(&first).map_err(|e| {
        format!(
            "line 1 is not an export header ({e}); was it made with `govern export --with-proofs`?"
        )
    })?;
    if header.export != EXPORT_FORMAT {
        return Err(format!("unknown export format {:?}, expected {EXPORT_FORMAT}", header.export));
    }
    let (n, tree_root) = (header.tree_size, digest("root", &header.root)?);
    let same_head = |what: &str, c: &VerifiedCheckpoint| {
        if c.size() != n {
            Err(format!(
                "the header's {what} is of size {}, the export's tree of size {n}",
                c.size()
            ))
        } else if c.root() != tree_root {
            Err(format!(
                "the header's {what} has another root than the export's tree (both of size {n})"
            ))
        } else {
            Ok(())
        }
    };
    let own = match &header.checkpoint {
        None => None,
        Some(json) => {
            let c = verify_checkpoint_text(&json.to_string(), key)
                .map_err(|e| format!("the header's checkpoint: {e}"))?;
            same_head("checkpoint", &c)?;
            Some(c)
        }
    };
    let note = match &header.checkpoint_note {
        None => None,
        Some(text) => {
            let c = verify_checkpoint_text(text, key)
                .map_err(|e| format!("the header's checkpoint_note: {e}"))?;
            same_head("checkpoint_note", &c)?;
            Some(c)
        }
    };
    let tree_signed = own.is_some() || note.is_some();
    let (anchor_name, anchor) = match (trusted, own.as_ref().or(note.as_ref())) {
        (Some((name, c)), _) => (name, c.clone()),
        (None, Some(c)) => ("the export's own".to_owned(), c.clone()),
        (None, None) => {
            return Err("the export carries no signed checkpoint (the data directory had none when it was made): give --checkpoint with one saved since, and make the export with --consistency-from it".into());
        }
    };
    // Every consistency proof the export carries verifies, to its own tree (the one used
    // below is then checked against the trusted root too).
    for p in &header.consistency_proofs {
        let (first, second) =
            (digest("first_root", &p.first_root)?, digest("second_root", &p.second_root)?);
        if p.second_size != n || second != tree_root {
            return Err(format!(
                "the consistency proof from size {} does not end at the export's tree",
                p.first_size
            ));
        }
        verify_consistency(p.first_size, n, &first, &tree_root, &digests("hashes", &p.hashes)?)
            .map_err(|e| {
                format!("the consistency proof from size {} does not verify: {e}", p.first_size)
            })?;
    }
    let (m, anchor_root) = (anchor.size(), anchor.root());
    let mut linked_by_proof = false;
    if m > n {
        return Err(format!(
            "the checkpoint {anchor_name} (size {m}) is newer than the export's tree (size {n}): make a new export with `govern export DATA_DIR --tenant T --with-proofs`, or verify against an older checkpoint"
        ));
    } else if m == n {
        if anchor_root != tree_root {
            return Err(format!(
                "the checkpoint {anchor_name} and the export have the same size {n} but other roots: they are of different histories"
            ));
        }
    } else {
        let proof = header
            .consistency_proofs
            .iter()
            .find(|p| p.first_size == m && p.second_size == n)
            .ok_or_else(|| format!(
                "the export carries no consistency proof from size {m} (the checkpoint {anchor_name}) to its tree (size {n}): make the export with `govern export DATA_DIR --tenant T --with-proofs --consistency-from CHECKPOINT`"
            ))?;
        if digest("first_root", &proof.first_root)? != anchor_root {
            return Err(format!(
                "the consistency proof from size {m} starts at another root than the checkpoint {anchor_name}'s: they are of different histories"
            ));
        }
        linked_by_proof = true;
    }
    let mut report = ExportReport {
        tenant: header.tenant_id.clone(),
        receipts: 0,
        resources: 0,
        anchor: (anchor_name, m),
        tree_size: n,
        tree_signed,
        linked_by_proof,
        note_checked: note.is_some(),
        covered: 0,
        newer: 0,
        not_covered: 0,
        continued: 0,
        archived_below: header.archived_below,
    };
    let mut next_resource_seq: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut previous: Option<(u64, Digest)> = None;
    let mut buf = Vec::new();
    let mut line_no = 1u64;
    loop {
        line_no += 1;
        let Some(line) = lines.next() else {
            return Err("it ends without its end line: it was cut short".into());
        };
        let line = line.map_err(|e| format!("line {line_no}: {e}"))?;
        let kind: Kind = serde_json::from_str(&line).map_err(|e| {
            format!("line {line_no} is neither a receipt line nor the end line: {}", in_line(&e))
        })?;
        if kind.end.is_some() {
            let end: EndLine = serde_json::from_str(&line)
                .map_err(|e| format!("line {line_no} is not an end line: {}", in_line(&e)))?;
            if end.end != EXPORT_FORMAT {
                return Err(format!(
                    "the end line names format {:?}, not the header's {EXPORT_FORMAT}",
                    end.end
                ));
            }
            if end.receipts != report.receipts {
                return Err(format!(
                    "the end line counts {} receipts, the export holds {}: receipt lines were added or removed",
                    end.receipts, report.receipts
                ));
            }
            if let Some(extra) = lines.next() {
                extra.map_err(|e| format!("after the end line: {e}"))?;
                return Err("lines after the end line".into());
            }
            report.resources = next_resource_seq.len();
            return Ok(report);
        }
        let entry: ReceiptLine = serde_json::from_str(&line)
            .map_err(|e| format!("line {line_no} is not a receipt line: {}", in_line(&e)))?;
        let view = entry.receipt;
        let seq = view.seq;
        let at = |what: String| format!("receipt {seq} (line {line_no}): {what}");
        let receipt = Receipt::try_from(view.clone()).map_err(|e| at(e.to_string()))?;
        if ReceiptJson::from(&receipt) != view {
            return Err(at("not in the canonical JSON view (lowercase hex, hyphenated id)".into()));
        }
        serde_json::from_str::<KeyOrder>(&line)
            .map_err(|e| at(format!("not in the canonical JSON view: {}", in_line(&e))))?;
        if receipt.compute_hash(&mut buf) != receipt.hash {
            return Err(at("its fields do not hash to its hash: the receipt was changed".into()));
        }
        if derive_receipt_id(receipt.body.timestamp, &receipt.prev_hash) != receipt.id {
            return Err(
                at("its receipt_id is not the one its timestamp and prev_hash give".into()),
            );
        }
        if view.tenant_id != header.tenant_id {
            return Err(at(format!("of tenant {}, not {}", view.tenant_id, header.tenant_id)));
        }
        match previous {
            Some((p, _)) if seq <= p => {
                return Err(at(format!("out of order: it follows receipt {p}")));
            }
            Some((p, hash)) if seq == p + 1 && receipt.prev_hash != hash => {
                return Err(at(format!("broken link: its prev_hash is not receipt {p}'s hash")));
            }
            None if seq == 0 && receipt.prev_hash != Digest::ZERO => {
                return Err(at("receipt 0's prev_hash is not 32 zero bytes".into()));
            }
            _ => {}
        }
        previous = Some((seq, receipt.hash));
        // The view's own strings, moved: no copy per receipt.
        let resource = (view.governor, view.resource_id);
        // A resource whose first receipts are archived (an export made without the archive)
        // continues their numbering: its first receipt here starts where they ended.
        let first = match header.archived_below {
            Some(boundary)
                if seq >= boundary
                    && receipt.body.resource_seq > 0
                    && !next_resource_seq.contains_key(&resource) =>
            {
                report.continued += 1;
                receipt.body.resource_seq
            }
            _ => 0,
        };
        let expected = next_resource_seq.get(&resource).copied().unwrap_or(first);
        if receipt.body.resource_seq != expected {
            return Err(at(format!(
                "resource_seq {} of {} {}, expected {expected}: a receipt of that resource is missing or repeated",
                receipt.body.resource_seq, resource.0, resource.1
            )));
        }
        next_resource_seq.insert(resource, expected + 1);
        match entry.inclusion_proof {
            None if seq < n => {
                return Err(at(format!(
                    "no inclusion proof, though the export's tree has {n} receipts"
                )));
            }
            None => report.not_covered += 1,
            Some(p) => {
                let leaf = leaf_hash(&receipt.hash);
                if p.leaf_index != seq
                    || p.tree_size != n
                    || digest("root", &p.root)? != tree_root
                    || digest("leaf_hash", &p.leaf_hash)? != leaf
                {
                    return Err(at(format!(
                        "its inclusion proof is not for leaf {seq} of the export's tree (size {n})"
                    )));
                }
                verify_inclusion(&leaf, seq, n, &digests("hashes", &p.hashes)?, &tree_root)
                    .map_err(|e| at(format!("inclusion proof does not verify: {e}")))?;
                if seq < m {
                    report.covered += 1;
                } else {
                    report.newer += 1;
                }
            }
        }
        report.receipts += 1;
    }
}
