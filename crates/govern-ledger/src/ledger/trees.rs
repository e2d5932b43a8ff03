//! [`Ledger::write_segment_trees`]: each sealed segment's subtree roots in
//! `DATA_DIR/trees/` (the format: `crate::merkle::stored`), for proofs that read only what
//! they need.

use std::path::Path;
use std::sync::atomic::Ordering;

use govern_receipt::Digest;

use super::snapshot::stored_hash;
use super::{Ledger, LedgerError};
use crate::merkle::{TREE_DIR, decode_tree_file, encode_tree_file, tree_file_name};

impl Ledger {
    /// Writes the tree file of every sealed segment of data directory `dir` that has no
    /// valid one (each written atomically; a segment's receipts read once, off the lock in
    /// batches), and removes those of segments below the archive boundary. Returns how many
    /// were written. Segments checked by an earlier call of this process are not looked at
    /// again (the files are derived data: one damaged since is rewritten at the next start,
    /// and a proof never rests on one).
    ///
    /// # Errors
    /// A record that cannot be read, or a file that cannot be written.
    pub fn write_segment_trees(&self, dir: &Path) -> Result<usize, String> {
        let (sealed, base) = {
            let inner = self.lock();
            (inner.store.sealed_segments(), inner.store.base())
        };
        let trees = dir.join(TREE_DIR);
        if sealed.is_empty() && !trees.is_dir() {
            return Ok(0);
        }
        std::fs::create_dir_all(&trees)
            .map_err(|e| format!("creating {}: {e}", trees.display()))?;
        let mut written = 0;
        let known = self.trees_upto.load(Ordering::Acquire);
        let upto = sealed.last().map_or(known, |s| s.end_seq.max(known));
        for seg in sealed.into_iter().filter(|s| s.end_seq > known) {
            let name = tree_file_name(seg.first_seq);
            let path = trees.join(&name);
            if std::fs::read(&path)
                .ok()
                .is_some_and(|b| decode_tree_file(&b, seg.first_seq, seg.end_seq).is_some())
            {
                continue;
            }
            let mut hashes: Vec<Digest> =
                Vec::with_capacity((seg.end_seq - seg.first_seq) as usize);
            self.for_each_durable(seg.first_seq..seg.end_seq, |seq, record| {
                hashes.push(
                    stored_hash(record)
                        .ok_or(LedgerError::Corrupt { seq, reason: "too short".into() })?,
                );
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            let bytes = encode_tree_file(seg.first_seq, &hashes);
            crate::text_file::write_atomically(&trees, &name, &bytes, false)
                .map_err(|(what, path, e)| format!("{what} {}: {e}", path.display()))?;
            written += 1;
        }
        self.trees_upto.store(upto, Ordering::Release);
        // Those of archived segments: their subtrees are below the boundary's frontier.
        if base > 0
            && let Ok(entries) = std::fs::read_dir(&trees)
        {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let first = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".tree"))
                    .and_then(|n| n.parse::<u64>().ok());
                if first.is_some_and(|f| f < base) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(written)
    }
}
