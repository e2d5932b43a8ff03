//! Shards, leases and nodes in the database (docs/scaling.md): the SQL a node runs to own
//! shards. Plain SQL without advisory locks: a lease is a row (`govern_leases`) with an owner,
//! a fencing epoch and an expiry in the database's clock (`now()`), so the nodes' clocks never
//! matter. Taking a lease over bumps its epoch; the receipts table's fencing trigger refuses a
//! row whose epoch is not the lease's current one, which is what makes a paused or
//! partitioned node harmless once its lease moved on.

use postgres::Client;
use sha2::{Digest as _, Sha256};

use govern_ledger::StoreError;

use crate::conn::db_error;

/// Bounds of a cluster.
pub mod limits {
    /// The most shards a database may be divided into (the schema's `CHECK`).
    pub const SHARDS_MAX: u32 = 4_096;
    /// The default number of shards of a cluster.
    pub const SHARDS_DEFAULT: u32 = 16;
    /// Bytes of a node's name.
    pub const NODE_NAME_MAX: usize = 128;
}

/// The owner a one-process ledger ([`PostgresStore::open`](crate::PostgresStore::open)) writes
/// shard 0 under.
pub const STANDALONE: &str = "standalone";

/// The shard of `tenant` among `shards`: the first eight bytes of the SHA-256 of its id, as
/// a big-endian integer, modulo `shards`. Stable across builds, machines and languages.
#[must_use]
pub fn shard_of(tenant: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(tenant.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // The remainder is below `shards`, a u32.
    u32::try_from(u64::from_be_bytes(first) % u64::from(shards.max(1))).unwrap_or(0)
}

/// One lease row as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The shard.
    pub shard: u32,
    /// The node owning it (empty: never owned).
    pub owner: String,
    /// Its fencing epoch: bumped at every takeover.
    pub epoch: i64,
    /// Milliseconds until it expires, by the database's clock (negative: expired).
    pub expires_in_ms: i64,
}

impl Lease {
    /// Whether someone holds it now.
    #[must_use]
    pub fn is_held(&self) -> bool {
        !self.owner.is_empty() && self.expires_in_ms > 0
    }
}

/// A live node: its name and the address it serves on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    /// Its name.
    pub node: String,
    /// Its advertised address (`host:port`), empty when it serves none.
    pub address: String,
}

fn int(n: u32) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::Corrupt(format!("shard {n} overflows")))
}

fn uint(n: i32) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative shard {n}")))
}

/// Divides the database into `shards` shards if it is not yet (one lease row each, never
/// owned), and returns how many it has. Idempotent; concurrent callers agree on the first
/// one's number.
///
/// # Errors
/// [`StoreError::Corrupt`] when the database already has another number of shards, or
/// `shards` is 0 or above [`limits::SHARDS_MAX`]; [`StoreError::Io`] when a statement fails.
pub fn init(client: &mut Client, shards: u32) -> Result<u32, StoreError> {
    if shards == 0 || shards > limits::SHARDS_MAX {
        return Err(StoreError::Corrupt(format!(
            "{shards} shards: between 1 and {}",
            limits::SHARDS_MAX
        )));
    }
    // Already divided: read only, so that a node's role needs no INSERT right here.
    if let Some(found) = self::shards(client)? {
        if found != shards {
            return Err(StoreError::Corrupt(format!(
                "the database is divided into {found} shards, not {shards}"
            )));
        }
        return Ok(found);
    }
    let mut tx = client.transaction().map_err(db_error)?;
    tx.execute(
        "INSERT INTO govern_cluster (id, shards) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        &[&int(shards)?],
    )
    .map_err(db_error)?;
    let found: i32 = tx
        .query_one("SELECT shards FROM govern_cluster WHERE id = 1", &[])
        .map_err(db_error)?
        .get(0);
    let found = uint(found)?;
    if found != shards {
        return Err(StoreError::Corrupt(format!(
            "the database is divided into {found} shards, not {shards}"
        )));
    }
    tx.execute(
        "INSERT INTO govern_leases (shard, owner, epoch, expires_at) \
         SELECT s, '', 0, '-infinity' FROM generate_series(0, $1 - 1) AS s \
         ON CONFLICT (shard) DO NOTHING",
        &[&int(shards)?],
    )
    .map_err(db_error)?;
    tx.commit().map_err(db_error)?;
    Ok(found)
}

/// How many shards the database is divided into (`None`: not yet).
///
/// # Errors
/// [`StoreError::Io`] when the query fails.
pub fn shards(client: &mut Client) -> Result<Option<u32>, StoreError> {
    let row = client
        .query_opt("SELECT shards FROM govern_cluster WHERE id = 1", &[])
        .map_err(db_error)?;
    row.map(|r| uint(r.get(0))).transpose()
}

/// Takes the lease of `shard` for `node` for `ttl_ms` if it is free, expired, or `node`'s
/// own (a node restarted under its name fences its earlier self): the new epoch, or `None`
/// when another node holds it.
///
/// # Errors
/// [`StoreError::Io`] when the statement fails.
pub fn acquire(
    client: &mut Client,
    shard: u32,
    node: &str,
    ttl_ms: u64,
) -> Result<Option<i64>, StoreError> {
    let ttl = i64::try_from(ttl_ms).unwrap_or(i64::MAX);
    let row = client
        .query_opt(
            "UPDATE govern_leases SET owner = $2, epoch = epoch + 1, \
                 expires_at = now() + $3::bigint * interval '1 millisecond' \
             WHERE shard = $1 AND (expires_at <= now() OR owner = $2) RETURNING epoch",
            &[&int(shard)?, &node, &ttl],
        )
        .map_err(db_error)?;
    Ok(row.map(|r| r.get(0)))
}

/// Takes the lease of `shard` for `node` whoever holds it, with no expiry: what a
/// one-process ledger does at open (an earlier writer is fenced). The new epoch.
///
/// # Errors
/// [`StoreError::Io`] when the statement fails; [`StoreError::Corrupt`] when the shard has no
/// lease row.
pub fn seize(client: &mut Client, shard: u32, node: &str) -> Result<i64, StoreError> {
    let row = client
        .query_opt(
            "UPDATE govern_leases SET owner = $2, epoch = epoch + 1, expires_at = 'infinity' \
             WHERE shard = $1 RETURNING epoch",
            &[&int(shard)?, &node],
        )
        .map_err(db_error)?;
    row.map(|r| r.get(0)).ok_or_else(|| StoreError::Corrupt(format!("shard {shard} has no lease")))
}

/// Extends `node`'s leases `held` (shard, epoch) by `ttl_ms`: the shards renewed. A lease
/// missing from the answer has moved on (or its epoch did): its node must step down.
///
/// # Errors
/// [`StoreError::Io`] when the statement fails.
pub fn renew(
    client: &mut Client,
    node: &str,
    held: &[(u32, i64)],
    ttl_ms: u64,
) -> Result<Vec<u32>, StoreError> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let shards = held.iter().map(|&(s, _)| int(s)).collect::<Result<Vec<i32>, _>>()?;
    let epochs: Vec<i64> = held.iter().map(|&(_, e)| e).collect();
    let ttl = i64::try_from(ttl_ms).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "UPDATE govern_leases l SET expires_at = now() + $4::bigint * interval '1 millisecond' \
             FROM unnest($2::integer[], $3::bigint[]) AS h(shard, epoch) \
             WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = $1 \
             RETURNING l.shard",
            &[&node, &shards, &epochs, &ttl],
        )
        .map_err(db_error)?;
    rows.into_iter().map(|r| uint(r.get(0))).collect()
}

/// Gives the lease of `shard` up (expired now, epoch kept: the next owner bumps it), if
/// `node` still holds it at `epoch`. Called after the shard's last commit.
///
/// # Errors
/// [`StoreError::Io`] when the statement fails.
pub fn release(
    client: &mut Client,
    shard: u32,
    node: &str,
    epoch: i64,
) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "UPDATE govern_leases SET expires_at = '-infinity' \
             WHERE shard = $1 AND owner = $2 AND epoch = $3",
            &[&int(shard)?, &node, &epoch],
        )
        .map_err(db_error)?;
    Ok(n == 1)
}

/// Every lease, by shard.
///
/// # Errors
/// [`StoreError::Io`] when the query fails.
pub fn leases(client: &mut Client) -> Result<Vec<Lease>, StoreError> {
    let rows = client
        .query(
            "SELECT shard, owner, epoch, CASE \
                 WHEN expires_at = 'infinity' THEN 9223372036854775807 \
                 WHEN expires_at = '-infinity' THEN -9223372036854775807 \
                 ELSE (extract(epoch FROM expires_at - now()) * 1000)::bigint END \
             FROM govern_leases ORDER BY shard",
            &[],
        )
        .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok(Lease {
                shard: uint(r.get(0))?,
                owner: r.get(1),
                epoch: r.get(2),
                expires_in_ms: r.get(3),
            })
        })
        .collect()
}

/// Says that `node`, serving on `address`, is alive now.
///
/// # Errors
/// [`StoreError::Io`] when the statement fails.
pub fn heartbeat(client: &mut Client, node: &str, address: &str) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO govern_nodes (node, address, seen_at) VALUES ($1, $2, now()) \
             ON CONFLICT (node) DO UPDATE SET address = EXCLUDED.address, seen_at = now()",
            &[&node, &address],
        )
        .map_err(db_error)?;
    Ok(())
}

/// Says that `node` left (a clean shutdown, after handing its shards over): the others
/// count one node fewer at once rather than after its heartbeat goes stale.
///
/// # Errors
/// [`StoreError::Io`] when the statement fails.
pub fn leave(client: &mut Client, node: &str) -> Result<(), StoreError> {
    client.execute("DELETE FROM govern_nodes WHERE node = $1", &[&node]).map_err(db_error)?;
    Ok(())
}

/// The nodes seen within the last `within_ms`, by name.
///
/// # Errors
/// [`StoreError::Io`] when the query fails.
pub fn live_nodes(client: &mut Client, within_ms: u64) -> Result<Vec<NodeRow>, StoreError> {
    let within = i64::try_from(within_ms).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT node, address FROM govern_nodes \
             WHERE seen_at > now() - $1::bigint * interval '1 millisecond' ORDER BY node",
            &[&within],
        )
        .map_err(db_error)?;
    Ok(rows.into_iter().map(|r| NodeRow { node: r.get(0), address: r.get(1) }).collect())
}

/// Every node ever seen, live or not, with its address.
///
/// # Errors
/// [`StoreError::Io`] when the query fails.
pub fn nodes(client: &mut Client) -> Result<Vec<NodeRow>, StoreError> {
    let rows = client
        .query("SELECT node, address FROM govern_nodes ORDER BY node", &[])
        .map_err(db_error)?;
    Ok(rows.into_iter().map(|r| NodeRow { node: r.get(0), address: r.get(1) }).collect())
}

#[cfg(test)]
mod tests {
    use super::shard_of;

    #[test]
    fn the_shard_of_a_tenant_is_stable_and_spreads() {
        // Fixed values: a change of the hash would move every tenant's chain.
        assert_eq!(shard_of("acme", 16), shard_of("acme", 16));
        let fixed: Vec<u32> =
            ["acme", "globex", "initech", "t-0"].iter().map(|t| shard_of(t, 16)).collect();
        assert_eq!(fixed, FIXED);
        assert_eq!(shard_of("acme", 1), 0);
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[shard_of(&format!("tenant-{i}"), 16) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }

    const FIXED: [u32; 4] = [0, 7, 3, 7];
}
