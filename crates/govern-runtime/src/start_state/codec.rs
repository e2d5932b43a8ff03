//! `runtime.snap`'s bytes: a header, then a body checksummed with CRC32C.
//!
//! ```text
//! header  "govern.runsnap\0\0" (16) | u16 version | u64 body length | u32 CRC32C(body)   (LE)
//! body    fingerprint [32] | S | hash of receipt S-1 [32]
//!         tenant table: n, n × str            (every other part names tenants by index)
//!         states:       n, n × (tenant, state name)
//!         keys:         n, n × (tenant, kind u8, resource, flags u8,
//!                              [timeout: at, command, args], [view: 0 plan | 1 grant])
//!         idempotency:  n, n × (tenant, m, m × (key, kind, resource, command, args, seq,
//!                              hash [32], resource_seq, from, to, at))
//!         usage:        n, n × (tenant, m, m × resource)
//! ```
//! Integers are LEB128 unless sized; a str is its length then its UTF-8 bytes; args are a
//! count then (name, value) pairs. With 12-character resource ids a timeout entry takes 33
//! bytes (tenant index, kind, resource, flags, deadline, command name), a plan view 25, an
//! idempotency key about 100 plus its arguments (its hash is 32). Every byte is checked: a file whose header,
//! length, checksum or body does not decode exactly is rejected.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::path::Path;

use govern_governors::entitlement::GrantKind;
use govern_governors::{Args, GovernorKind, ResourceId, StateSpec, TenantId, Timestamp, tenant};
use govern_receipt::Digest;

use super::{KeyFacts, StartState, Timeout};
use crate::commercial::{GrantView, View};
use crate::idempotency::Kept;
use crate::limits::START_STATE_BYTES_MAX as FILE_BYTES_MAX;

/// The file's first bytes.
pub(crate) const MAGIC: &[u8; 16] = b"govern.runsnap\0\0";
/// The format's version.
pub(crate) const VERSION: u16 = 2;
const HEADER: usize = 16 + 2 + 8 + 4;

/// Why a start-state file is not used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    /// There is none.
    #[error("there is none")]
    Missing,
    /// It cannot be read, or its bytes are not a whole start state.
    #[error("damaged: {0}")]
    Damaged(String),
    /// Whole, but of another configuration or another history, or ahead of the ledger.
    #[error("{0}")]
    Mismatch(String),
}

const TIMEOUT: u8 = 1;
const VIEW: u8 = 2;
const SAGA: u8 = 4;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }
    fn var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn len(&mut self, n: usize) {
        self.var(u64::try_from(n).unwrap_or(u64::MAX));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn digest(&mut self, d: &Digest) {
        self.0.extend_from_slice(d.as_bytes());
    }
    fn args(&mut self, args: &Args) {
        self.len(args.len());
        for (k, v) in args {
            self.str(k);
            self.str(v);
        }
    }
    fn kind(&mut self, kind: GovernorKind) {
        let i = GovernorKind::ALL.iter().position(|k| *k == kind).unwrap_or(usize::MAX);
        self.u8(u8::try_from(i).unwrap_or(u8::MAX));
    }
}

/// The file's bytes for `state`.
pub(crate) fn encode(state: &StartState) -> Vec<u8> {
    let mut names: BTreeSet<&TenantId> = state.tenants.keys().collect();
    names.extend(state.keys.keys().map(|(t, _, _)| t));
    names.extend(state.idempotency.keys());
    names.extend(state.usage.keys());
    let index: BTreeMap<&TenantId, u64> = names.iter().copied().zip(0u64..).collect();
    let at = |t: &TenantId| index.get(t).copied().unwrap_or(u64::MAX);
    let mut w = Writer(Vec::new());
    w.digest(&state.fingerprint);
    w.var(state.seq);
    w.digest(&state.last_hash);
    w.len(names.len());
    for t in &names {
        w.str(t.as_str());
    }
    w.len(state.tenants.len());
    for (t, s) in &state.tenants {
        w.var(at(t));
        w.str(s.name());
    }
    w.len(state.keys.len());
    for ((t, kind, resource), facts) in &state.keys {
        w.var(at(t));
        w.kind(*kind);
        w.str(resource.as_str());
        let flags = if facts.timeout.is_some() { TIMEOUT } else { 0 }
            | if facts.view.is_some() { VIEW } else { 0 }
            | if facts.unfinished_saga { SAGA } else { 0 };
        w.u8(flags);
        if let Some(timeout) = &facts.timeout {
            w.var(timeout.at.0);
            w.str(&timeout.command);
            w.args(&timeout.args);
        }
        match &facts.view {
            Some(View::Subscription { plan, .. }) => {
                w.u8(0);
                w.str(plan.as_deref().unwrap_or_default());
            }
            Some(View::Grant { grant, .. }) => {
                w.u8(1);
                let g = grant.clone().unwrap_or(GrantView {
                    feature: String::new(),
                    expires_at: None,
                    kind: GrantKind::default(),
                    priority: 0,
                });
                w.str(&g.feature);
                match g.expires_at {
                    None => w.u8(0),
                    Some(at) => {
                        w.u8(1);
                        w.var(at.0);
                    }
                }
                let k = GrantKind::ALL.iter().position(|k| *k == g.kind).unwrap_or(usize::MAX);
                w.u8(u8::try_from(k).unwrap_or(u8::MAX));
                w.var(u64::from(g.priority));
            }
            Some(View::TenantQuota(q)) => {
                w.u8(2);
                w.var(q.storage_gb);
                w.var(q.compute_units);
                w.var(q.bandwidth_mbps);
            }
            None => {}
        }
    }
    w.len(state.idempotency.len());
    for (t, kept) in &state.idempotency {
        w.var(at(t));
        w.len(kept.len());
        for k in kept {
            w.str(&k.key);
            w.kind(k.kind);
            w.str(k.resource.as_str());
            w.str(&k.command);
            w.args(&k.args);
            w.var(k.seq);
            w.digest(&k.hash);
            w.var(k.resource_seq);
            w.str(&k.from);
            w.str(&k.to);
            w.var(k.at.0);
        }
    }
    w.len(state.usage.len());
    for (t, resources) in &state.usage {
        w.var(at(t));
        w.len(resources.len());
        for r in resources {
            w.str(r.as_str());
        }
    }
    let body = w.0;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&u64::try_from(body.len()).unwrap_or(u64::MAX).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Res<T> = Result<T, Rejected>;

fn damaged(what: impl std::fmt::Display) -> Rejected {
    Rejected::Damaged(what.to_string())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or_else(|| damaged("length overflows"))?;
        let out = self.bytes.get(self.at..end).ok_or_else(|| damaged("ends early"))?;
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }
    fn var(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(damaged("an integer overflows"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                // The shortest form only: each value has one encoding.
                if b == 0 && shift > 0 {
                    return Err(damaged("an integer is not in its shortest form"));
                }
                return Ok(v);
            }
        }
        Err(damaged("an integer overflows"))
    }
    /// A count of items each at least one byte long: never more than the bytes left.
    fn count(&mut self) -> Res<usize> {
        let n = usize::try_from(self.var()?).map_err(|_| damaged("a count overflows"))?;
        if n > self.bytes.len() - self.at {
            return Err(damaged("a count exceeds the bytes left"));
        }
        Ok(n)
    }
    fn str(&mut self) -> Res<&'a str> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| damaged("a string is not UTF-8"))
    }
    fn string(&mut self) -> Res<String> {
        self.str().map(str::to_owned)
    }
    fn digest(&mut self) -> Res<Digest> {
        let b = self.take(32)?;
        let mut d = [0; 32];
        d.copy_from_slice(b);
        Ok(Digest(d))
    }
    fn args(&mut self) -> Res<Args> {
        let n = self.count()?;
        let mut args = Args::new();
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string()?;
            if args.insert(k, v).is_some() {
                return Err(damaged("an argument appears twice"));
            }
        }
        Ok(args)
    }
    fn kind(&mut self) -> Res<GovernorKind> {
        let i = self.u8()?;
        GovernorKind::ALL.get(usize::from(i)).copied().ok_or_else(|| damaged("an unknown kind"))
    }
    fn resource(&mut self) -> Res<ResourceId> {
        ResourceId::new(self.str()?).map_err(damaged)
    }
    fn tenant(&mut self, names: &[TenantId]) -> Res<TenantId> {
        let i = usize::try_from(self.var()?).unwrap_or(usize::MAX);
        names.get(i).cloned().ok_or_else(|| damaged("a tenant index out of range"))
    }
    fn timestamp(&mut self) -> Res<Timestamp> {
        self.var().map(Timestamp)
    }
}

/// The state in a file's bytes.
///
/// # Errors
/// [`Rejected::Damaged`] for anything but a whole start state of this format.
pub(crate) fn decode(bytes: &[u8]) -> Result<StartState, Rejected> {
    let header = bytes.get(..HEADER).ok_or_else(|| damaged("shorter than its header"))?;
    let (magic, rest) = header.split_at(16);
    if magic != MAGIC {
        return Err(damaged("not a start-state file"));
    }
    let (version, rest) = rest.split_at(2);
    let (len, crc) = rest.split_at(8);
    let version = u16::from_le_bytes([version[0], version[1]]);
    if version != VERSION {
        return Err(damaged(format!("format version {version}, not {VERSION}")));
    }
    let mut len8 = [0; 8];
    len8.copy_from_slice(len);
    let mut crc4 = [0; 4];
    crc4.copy_from_slice(crc);
    let body = &bytes[HEADER..];
    if u64::try_from(body.len()).ok() != Some(u64::from_le_bytes(len8)) {
        return Err(damaged("its length is not the one its header records"));
    }
    if crc32c::crc32c(body) != u32::from_le_bytes(crc4) {
        return Err(damaged("its checksum does not match"));
    }
    let mut r = Reader { bytes: body, at: 0 };
    let mut state = StartState {
        fingerprint: r.digest()?,
        seq: r.var()?,
        last_hash: r.digest()?,
        ..StartState::default()
    };
    let n = r.count()?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(TenantId::new(r.str()?).map_err(damaged)?);
    }
    for _ in 0..r.count()? {
        let t = r.tenant(&names)?;
        let s = tenant::State::from_name(r.str()?).ok_or_else(|| damaged("an unknown state"))?;
        if state.tenants.insert(t, s).is_some() {
            return Err(damaged("a tenant's state appears twice"));
        }
    }
    // Written in key order: read into a list, checked in strictly increasing order (so no key
    // twice), then built in one pass (a million keys: no search per insertion).
    let n = r.count()?;
    let mut keys: Vec<(super::KeyId, KeyFacts)> = Vec::with_capacity(n);
    for _ in 0..n {
        let tenant = r.tenant(&names)?;
        let kind = r.kind()?;
        let resource = r.resource()?;
        let flags = r.u8()?;
        if flags & !(TIMEOUT | VIEW | SAGA) != 0 || flags == 0 {
            return Err(damaged("a key's flags are not valid"));
        }
        let mut facts = KeyFacts { unfinished_saga: flags & SAGA != 0, ..KeyFacts::default() };
        if flags & TIMEOUT != 0 {
            facts.timeout =
                Some(Timeout { at: r.timestamp()?, command: r.string()?, args: r.args()? });
        }
        if flags & VIEW != 0 {
            facts.view = Some(match r.u8()? {
                0 => View::Subscription { resource: resource.clone(), plan: Some(r.string()?) },
                1 => {
                    let feature = r.string()?;
                    let expires_at = match r.u8()? {
                        0 => None,
                        1 => Some(r.timestamp()?),
                        _ => return Err(damaged("a grant's expiry is not valid")),
                    };
                    let kind = GrantKind::ALL
                        .get(usize::from(r.u8()?))
                        .copied()
                        .ok_or_else(|| damaged("an unknown grant kind"))?;
                    let priority =
                        u32::try_from(r.var()?).map_err(|_| damaged("a priority overflows"))?;
                    let grant = GrantView { feature, expires_at, kind, priority };
                    View::Grant { resource: resource.clone(), grant: Some(grant) }
                }
                2 => View::TenantQuota(tenant::ResourceQuota {
                    storage_gb: r.var()?,
                    compute_units: r.var()?,
                    bandwidth_mbps: r.var()?,
                }),
                _ => return Err(damaged("an unknown view")),
            });
        }
        let key = (tenant, kind, resource);
        if keys.last().is_some_and(|(last, _)| *last >= key) {
            return Err(damaged("the keys are not in increasing order"));
        }
        keys.push((key, facts));
    }
    state.keys = keys.into_iter().collect();
    for _ in 0..r.count()? {
        let t = r.tenant(&names)?;
        let n = r.count()?;
        let mut kept = Vec::with_capacity(n);
        for _ in 0..n {
            kept.push(Kept {
                key: r.string()?,
                kind: r.kind()?,
                resource: r.resource()?,
                command: r.string()?,
                args: r.args()?,
                seq: r.var()?,
                hash: r.digest()?,
                resource_seq: r.var()?,
                from: r.string()?,
                to: r.string()?,
                at: r.timestamp()?,
            });
        }
        if state.idempotency.insert(t, kept).is_some() {
            return Err(damaged("a tenant's keys appear twice"));
        }
    }
    for _ in 0..r.count()? {
        let t = r.tenant(&names)?;
        let n = r.count()?;
        let mut resources = BTreeSet::new();
        for _ in 0..n {
            resources.insert(r.resource()?);
        }
        if state.usage.insert(t, resources).is_some() {
            return Err(damaged("a tenant's usage appears twice"));
        }
    }
    if r.at != body.len() {
        return Err(damaged("bytes follow the state"));
    }
    Ok(state)
}

/// The bytes of the file at `path`, at most [`FILE_BYTES_MAX`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, Rejected> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Rejected::Missing),
        Err(e) => return Err(damaged(format!("{}: {e}", path.display()))),
    };
    let meta = file.metadata().map_err(|e| damaged(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(damaged(format!("{}: not a regular file", path.display())));
    }
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| damaged(format!("{}: {e}", path.display())))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > FILE_BYTES_MAX {
        return Err(damaged(format!("larger than {FILE_BYTES_MAX} bytes")));
    }
    Ok(bytes)
}

/// Writes `bytes` as `dir/name` atomically: `name.tmp` written and synced, renamed into
/// place, the directory synced.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing", &tmp, e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io("creating", &tmp, e))?;
    file.write_all(bytes).map_err(|e| io("writing", &tmp, e))?;
    file.sync_all().map_err(|e| io("syncing", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| io("renaming into place", &path, e))?;
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("syncing", dir, e))?;
    Ok(())
}
