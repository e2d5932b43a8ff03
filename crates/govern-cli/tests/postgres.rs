//! The CLI on a PostgreSQL ledger (issue 14): `govern migrate` copies a data directory's
//! ledger into an empty database and verifies the copy; `verify`, `receipts`, `export` and
//! `prove` read it as they read the data directory, with the same results; a second
//! migration is refused and writes nothing; a row changed behind govern's back fails
//! `verify`, naming the receipt. On a database of 4 shards: `verify` checks each shard's
//! chain and names a failing one, the tenant commands read the tenant's shard, `sagas` every
//! shard, `prove` the shard asked for; `verify` checks each shard's latest signed checkpoint
//! with the key stored beside it or the one `--public-key` pins; `export --with-proofs` and
//! `prove` use a shard's latest signed checkpoint, and `govern checkpoint URL` signs shards
//! into `govern_checkpoints`. A throwaway PostgreSQL per test
//! (`govern_postgres::testing::Cluster`); without PostgreSQL's binaries the tests pass with
//! a notice, unless GOVERN_REQUIRE_POSTGRES=1.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::PathBuf;

use govern_postgres::testing::Cluster;

#[path = "support/govern.rs"]
mod support;
use support::{fails_with, govern, ok, s, text, tour_ledger as tour};

/// The line of `out` that starts with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}: {out}"))
}

/// A URL form of the cluster's database `name` (the libpq `key=value` form is
/// `Cluster::url`'s).
fn postgres_url(cluster: &Cluster, name: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{}/{name}", cluster.port())
}

/// The tour migrated into database `copy` of a fresh cluster: the cluster, the temp dir holding
/// the data directory, the data directory, the database's URL and what `migrate` printed; `None`
/// when PostgreSQL is not on this machine (the test passes with a notice).
fn migrated_tour(test: &str) -> Option<(Cluster, tempfile::TempDir, PathBuf, String, String)> {
    let cluster = Cluster::start_or_skip(test)?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tour(tmp.path());
    let url = cluster.create_database("copy").unwrap();
    let migrated = ok(&govern(&["migrate", "--from", s(&dir), "--to", &url]));
    Some((cluster, tmp, dir, url, migrated))
}

#[test]
fn a_migrated_ledger_reads_as_its_data_directory() {
    let Some((cluster, _tmp, dir, url, migrated)) =
        migrated_tour("a_migrated_ledger_reads_as_its_data_directory")
    else {
        return;
    };
    let source = line(&migrated, "source: ").trim_start_matches("source: ").to_owned();
    let copy = line(&migrated, "copy:   ").trim_start_matches("copy:   ").to_owned();
    assert_eq!(source, copy, "{migrated}");
    assert!(source.starts_with("next_seq 12 "), "{migrated}");
    assert_eq!(cluster.psql("copy", "SELECT count(*) FROM govern_receipts").unwrap(), "12");

    // verify: the same head and tree, by both forms of connection string.
    let on_dir = ok(&govern(&["verify", s(&dir)]));
    for target in [url.clone(), postgres_url(&cluster, "copy")] {
        let on_pg = ok(&govern(&["verify", &target]));
        assert_eq!(line(&on_pg, "head: "), line(&on_dir, "head: "), "{on_pg}");
        assert_eq!(line(&on_pg, "tree: "), line(&on_dir, "tree: "), "{on_pg}");
        assert!(line(&on_pg, "ok: ").starts_with("ok: 12 receipts in postgresql database copy"));
        assert!(line(&on_pg, "checkpoint: ").contains("govern_checkpoints holds none"), "{on_pg}");
    }

    // receipts: the same listing.
    let listing = ok(&govern(&["receipts", &url, "--tenant", "acme"]));
    assert_eq!(listing, ok(&govern(&["receipts", s(&dir), "--tenant", "acme"])));
    assert!(listing.contains("8 receipts of tenant acme"), "{listing}");

    // export: the same lines; with proofs, the same receipt lines and proofs (the tour's
    // checkpoint covers the whole ledger), only the header differs: the directory's carries
    // its signed checkpoint, the database has none to carry.
    let export = ok(&govern(&["export", &url, "--tenant", "acme"]));
    assert_eq!(export, ok(&govern(&["export", s(&dir), "--tenant", "acme"])));
    assert_eq!(export.lines().count(), 8);
    assert_eq!(
        ok(&govern(&["export", &url, "--tenant", "acme", "--format", "csv"])),
        ok(&govern(&["export", s(&dir), "--tenant", "acme", "--format", "csv"]))
    );
    let pg_proofs = ok(&govern(&["export", &url, "--tenant", "acme", "--with-proofs"]));
    let dir_proofs = ok(&govern(&["export", s(&dir), "--tenant", "acme", "--with-proofs"]));
    let (pg_head, pg_rest) = pg_proofs.split_once('\n').unwrap();
    let (dir_head, dir_rest) = dir_proofs.split_once('\n').unwrap();
    assert_eq!(pg_rest, dir_rest);
    let pg_head: serde_json::Value = serde_json::from_str(pg_head).unwrap();
    let dir_head: serde_json::Value = serde_json::from_str(dir_head).unwrap();
    assert_eq!(pg_head["root"], dir_head["root"]);
    assert_eq!(pg_head["tree_size"], 12);
    assert!(pg_head["checkpoint"].is_null() && dir_head["checkpoint"].is_object());

    // prove: receipt 4 and its inclusion proof in the tree of 12.
    let proof: serde_json::Value =
        serde_json::from_str(&ok(&govern(&["prove", &url, "--seq", "4"]))).unwrap();
    let on_dir: serde_json::Value =
        serde_json::from_str(&ok(&govern(&["prove", s(&dir), "--seq", "4"]))).unwrap();
    assert_eq!(proof["receipt"], on_dir["receipt"]);
    assert_eq!(proof["receipt"]["seq"], 4);
    assert_eq!(proof["inclusion_proof"], on_dir["inclusion_proof"]);
    assert_eq!(proof["inclusion_proof"]["tree_size"], 12);
    assert!(proof["checkpoint"].is_null());
    fails_with(&govern(&["prove", &url, "--seq", "12"]), "no receipt 12: the ledger holds 12");
}

#[test]
fn a_second_migration_is_refused_and_writes_nothing() {
    let Some((cluster, tmp, dir, url, _)) =
        migrated_tour("a_second_migration_is_refused_and_writes_nothing")
    else {
        return;
    };
    let before = cluster.psql("copy", "SELECT seq, md5(record) FROM govern_receipts").unwrap();

    let again = govern(&["migrate", "--from", s(&dir), "--to", &url]);
    fails_with(&again, "its ledger holds 12 rows");
    assert!(!text(&again.stdout).contains("copied"), "{}", text(&again.stdout));
    assert_eq!(
        cluster.psql("copy", "SELECT seq, md5(record) FROM govern_receipts").unwrap(),
        before
    );
    ok(&govern(&["verify", &url]));

    // Not a PostgreSQL target: refused before anything is read.
    fails_with(
        &govern(&["migrate", "--from", s(&dir), "--to", s(tmp.path())]),
        "not a PostgreSQL connection string",
    );
}

#[test]
fn readers_create_nothing_in_a_database_without_a_ledger() {
    let Some(cluster) =
        Cluster::start_or_skip("readers_create_nothing_in_a_database_without_a_ledger")
    else {
        return;
    };
    let url = cluster.create_database("empty").unwrap();
    fails_with(&govern(&["verify", &url]), "no govern ledger in this database");
    fails_with(&govern(&["receipts", &url, "--tenant", "acme"]), "no govern ledger");
    let tables = cluster
        .psql("empty", "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'govern%'")
        .unwrap();
    assert_eq!(tables, "0", "a reader created tables");
}

#[test]
fn a_row_changed_behind_governs_back_fails_verify_naming_the_receipt() {
    let Some((cluster, _tmp, _dir, url, _)) =
        migrated_tour("a_row_changed_behind_governs_back_fails_verify_naming_the_receipt")
    else {
        return;
    };
    let flip = "UPDATE govern_receipts SET record = set_byte(record, 40, get_byte(record, 40) # 1) \
                WHERE seq = 5";
    // The table refuses the change...
    let refused = cluster.psql("copy", flip).unwrap_err().to_string();
    assert!(refused.contains("append-only"), "{refused}");
    ok(&govern(&["verify", &url]));
    // ...until a superuser drops the trigger.
    cluster
        .psql("copy", "DROP TRIGGER govern_receipts_no_update_or_delete ON govern_receipts")
        .unwrap();
    cluster.psql("copy", flip).unwrap();
    let verify = govern(&["verify", &url]);
    fails_with(&verify, "verification failed at receipt 5");
    assert!(verify.stdout.is_empty(), "{}", text(&verify.stdout));
    fails_with(&govern(&["export", &url, "--tenant", "acme"]), "receipt 5");
    fails_with(&govern(&["prove", &url, "--seq", "4"]), "receipt 5");

    // Flipped back, the ledger verifies again; a row deleted, the gap is named.
    cluster.psql("copy", flip).unwrap();
    ok(&govern(&["verify", &url]));
    cluster.psql("copy", "DELETE FROM govern_receipts WHERE seq = 8").unwrap();
    fails_with(&govern(&["verify", &url]), "verification failed at receipt 8");
    fails_with(&govern(&["receipts", &url, "--tenant", "acme"]), "receipt 8 is missing");
}

#[test]
fn a_large_ledger_is_copied_in_group_sized_transactions() {
    let Some(cluster) =
        Cluster::start_or_skip("a_large_ledger_is_copied_in_group_sized_transactions")
    else {
        return;
    };
    // 10 000 receipts: transactions of 4 096, 4 096 and 1 808 (migrate's GROUP_RECORDS).
    let dir = support::ledger(10_000);
    let url = cluster.create_database("large").unwrap();
    let migrated = ok(&govern(&["migrate", "--from", s(dir.path()), "--to", &url]));
    assert!(migrated.contains("copied 10000 receipts"), "{migrated}");
    let sizes = cluster
        .psql(
            "large",
            "SELECT string_agg(n::text, ',' ORDER BY first) FROM \
             (SELECT min(seq) AS first, count(*) AS n FROM govern_receipts GROUP BY xmin::text) t",
        )
        .unwrap();
    assert_eq!(sizes, "4096,4096,1808");
    let on_pg = ok(&govern(&["verify", &url]));
    let on_dir = ok(&govern(&["verify", s(dir.path())]));
    assert_eq!(line(&on_pg, "head: "), line(&on_dir, "head: "));
    assert_eq!(line(&on_pg, "tree: "), line(&on_dir, "tree: "));
    // A checkpoint saved from the data directory verifies the PostgreSQL ledger.
    let checkpoint = dir.path().join("checkpoint.json");
    let public_key = dir.path().join("checkpoint.pub");
    let with = ok(&govern(&[
        "verify",
        &url,
        "--checkpoint",
        s(&checkpoint),
        "--public-key",
        s(&public_key),
    ]));
    assert!(line(&with, "checkpoint: ").contains("size 10000) signature and history verified"));
}

/// Shards of the database the sharded tests write.
const SHARDS: u32 = 4;

/// 2026-01-01T00:00:00Z: the runtimes' clock at start.
const T0: govern_governors::Timestamp = govern_governors::Timestamp(1_767_225_600_000);

/// The first tenant `t-N` whose receipts live on `shard` of [`SHARDS`].
fn tenant_on(shard: u32) -> String {
    (0..)
        .map(|i| format!("t-{i}"))
        .find(|t| govern_postgres::cluster::shard_of(t, SHARDS) == shard)
        .unwrap()
}

/// Database `name` divided into [`SHARDS`] shards and written as nodes write it: each
/// shard's lease taken, a runtime on that shard's chain under the lease's epoch, and
/// `tenant_on(shard)` provisioned and activated there (2 receipts), `extra` more tenants of
/// the same shard on shard 2 (2 receipts each). Its connection string.
fn sharded_database(cluster: &Cluster, name: &str, extra: u32) -> String {
    sharded_database_signed(cluster, name, extra, None)
}

/// [`sharded_database`], each shard's runtime signing its checkpoints with `signer` when
/// given one (as a node's do: `node::shard_signer`).
fn sharded_database_signed(
    cluster: &Cluster,
    name: &str,
    extra: u32,
    signer: Option<&govern_ledger::CheckpointSigner>,
) -> String {
    use govern_governors::TenantId;
    use govern_governors::tenant::ResourceQuota;
    use govern_postgres::{PostgresStore, cluster as shards, schema};

    let url = cluster.create_database(name).unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    schema::migrate(&mut client).unwrap();
    assert_eq!(shards::init(&mut client, SHARDS).unwrap(), SHARDS);
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let quota = ResourceQuota { storage_gb: 10, compute_units: 2, bandwidth_mbps: 100 };
    for shard in 0..SHARDS {
        let epoch = shards::acquire(&mut client, shard, "n", 60_000).unwrap().unwrap();
        let store = PostgresStore::open_shard(&url, shard, epoch).unwrap();
        let mut tenants = vec![tenant_on(shard)];
        if shard == 2 {
            tenants.extend(
                (0..)
                    .map(|i| format!("x-{i}"))
                    .filter(|t| shards::shard_of(t, SHARDS) == 2)
                    .take(extra as usize),
            );
        }
        let mut builder = govern_runtime::Runtime::builder().epoch(T0);
        if let Some(signer) = signer {
            let signer = govern_postgres::node::shard_signer(signer, shard).unwrap();
            builder = builder.checkpoints(store.checkpointer(signer).unwrap());
        }
        tokio.block_on(async {
            let runtime = builder.store(Box::new(store)).start().await.unwrap();
            let h = runtime.handle();
            for t in &tenants {
                h.provision_tenant(&TenantId::new(t).unwrap(), quota, "test").await.unwrap();
            }
            runtime.shutdown().await.unwrap();
        });
    }
    url
}

#[test]
fn a_database_of_four_shards_reads_shard_by_shard() {
    let Some(cluster) = Cluster::start_or_skip("a_database_of_four_shards_reads_shard_by_shard")
    else {
        return;
    };
    let url = sharded_database(&cluster, "shards", 0);
    let per_shard = cluster
        .psql("shards", "SELECT string_agg(n::text, ',' ORDER BY shard) FROM (SELECT shard, count(*) AS n FROM govern_receipts GROUP BY shard) t")
        .unwrap();
    assert_eq!(per_shard, "2,2,2,2", "each shard has its tenant's two receipts");

    // verify: one line per shard, each its own chain numbered from 0, then the total.
    let verified = ok(&govern(&["verify", &url]));
    for shard in 0..SHARDS {
        let l = line(&verified, &format!("shard {shard}: ok: "));
        assert!(l.contains("2 receipts; head: next_seq 2 "), "{verified}");
    }
    assert!(
        line(&verified, "ok: ")
            .starts_with("ok: 8 receipts in 4 shards of postgresql database shards")
    );
    assert!(line(&verified, "checkpoint: ").contains("none"), "{verified}");
    let with_checkpoint =
        govern(&["verify", &url, "--checkpoint", "x.json", "--public-key", "x.pub"]);
    fails_with(&with_checkpoint, "divided into 4 shards");

    // receipts and export of a tenant on shard 3: its shard's receipts, numbered 0 and 1.
    let t3 = tenant_on(3);
    let listing = ok(&govern(&["receipts", &url, "--tenant", &t3]));
    assert!(listing.contains(&format!("2 receipts of tenant {t3} (shard 3 of 4)")), "{listing}");
    let seqs: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter(|l| l.contains("provision_tenant") || l.contains("activate_tenant"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(seqs, ["0", "1"], "{listing}");
    let on_0 = ok(&govern(&["receipts", &url, "--tenant", &tenant_on(0)]));
    assert!(!on_0.contains(&t3), "{on_0}");
    let export = govern(&["export", &url, "--tenant", &t3, "--with-proofs"]);
    let exported = ok(&export);
    assert!(text(&export.stderr).contains("from shard 3 of 4"), "{}", text(&export.stderr));
    let header: serde_json::Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    assert_eq!(header["tenant_id"], t3.as_str());
    assert_eq!(header["tree_size"], 2, "the proofs are in shard 3's tree");
    assert_eq!(exported.lines().count(), 4, "header, two receipts, end: {exported}");

    // sagas: every shard in order, each block headed by its shard; JSON carries `shard`.
    let sagas = ok(&govern(&["sagas", &url]));
    let heads: Vec<&str> = sagas.lines().filter(|l| l.starts_with("shard ")).collect();
    assert_eq!(heads, ["shard 0 of 4:", "shard 1 of 4:", "shard 2 of 4:", "shard 3 of 4:"]);
    assert!(sagas.ends_with("0 saga run(s) in 4 shards\n"), "{sagas}");
    let one = ok(&govern(&["sagas", &url, "--tenant", &t3]));
    assert!(one.ends_with("0 saga run(s) in shard 3 of 4\n"), "{one}");

    // prove: --shard picks the chain; --tenant picks its shard; neither is refused.
    let proof: serde_json::Value =
        serde_json::from_str(&ok(&govern(&["prove", &url, "--seq", "1", "--shard", "2"]))).unwrap();
    assert_eq!(proof["shard"], 2);
    assert_eq!(proof["receipt"]["tenant_id"], tenant_on(2).as_str());
    assert_eq!(proof["receipt"]["seq"], 1);
    assert_eq!(proof["inclusion_proof"]["tree_size"], 2);
    let by_tenant: serde_json::Value =
        serde_json::from_str(&ok(&govern(&["prove", &url, "--seq", "0", "--tenant", &t3])))
            .unwrap();
    assert_eq!(by_tenant["shard"], 3);
    assert_eq!(by_tenant["receipt"]["tenant_id"], t3.as_str());
    let unsaid = govern(&["prove", &url, "--seq", "0"]);
    fails_with(&unsaid, "is divided into 4 shards");
    fails_with(&unsaid, "--shard K (0 to 3), or --tenant T");
    fails_with(&govern(&["prove", &url, "--seq", "0", "--shard", "4"]), "4 shard(s), 0 to 3");
    fails_with(&govern(&["prove", &url, "--seq", "2", "--shard", "1"]), "shard 1: no receipt 2");

    // A data directory is one chain: --shard 0 is it, any other is refused.
    let dir = support::ledger(3);
    ok(&govern(&["prove", s(dir.path()), "--seq", "1", "--shard", "0"]));
    fails_with(
        &govern(&["prove", s(dir.path()), "--seq", "1", "--shard", "1"]),
        "a data directory holds one chain",
    );
}

#[test]
fn a_row_changed_on_shard_2_fails_verify_naming_shard_2() {
    let Some(cluster) =
        Cluster::start_or_skip("a_row_changed_on_shard_2_fails_verify_naming_shard_2")
    else {
        return;
    };
    let url = sharded_database(&cluster, "tampered", 2);
    cluster
        .psql("tampered", "DROP TRIGGER govern_receipts_no_update_or_delete ON govern_receipts")
        .unwrap();
    let flip = "UPDATE govern_receipts SET record = set_byte(record, 40, get_byte(record, 40) # 1) \
                WHERE shard = 2 AND seq = 3";
    cluster.psql("tampered", flip).unwrap();

    let verify = govern(&["verify", &url]);
    fails_with(&verify, "shard 2: verification failed at receipt 3");
    let out = text(&verify.stdout);
    for shard in [0, 1, 3] {
        assert!(line(&out, &format!("shard {shard}: ok: ")).contains("2 receipts"), "{out}");
    }
    assert!(line(&out, "shard 2: ").contains("verification failed at receipt 3"), "{out}");
    let total = line(&out, "failed: ");
    assert!(
        total.starts_with(
            "failed: shard 2 does not verify (1 of 4 shards of postgresql database tampered"
        ) && total.ends_with("); the other 3 verified (6 receipts)"),
        "{out}"
    );
    assert!(!out.contains("\nok: "), "{out}");
    // Readers of shard 2 name it; the other shards read on.
    fails_with(
        &govern(&["export", &url, "--tenant", &tenant_on(2)]),
        "shard 2: verification failed",
    );
    fails_with(
        &govern(&["prove", &url, "--seq", "0", "--shard", "2"]),
        "shard 2: verification failed at receipt 3",
    );
    ok(&govern(&["export", &url, "--tenant", &tenant_on(1)]));
    ok(&govern(&["prove", &url, "--seq", "0", "--shard", "1"]));

    // A second shard damaged: both are named, on stdout and stderr.
    let flip_0 = flip.replace("shard = 2 AND seq = 3", "shard = 0 AND seq = 1");
    cluster.psql("tampered", &flip_0).unwrap();
    let both = govern(&["verify", &url]);
    fails_with(&both, "shard 0: verification failed at receipt 1");
    fails_with(&both, "; shard 2: verification failed at receipt 3");
    let out = text(&both.stdout);
    assert!(
        line(&out, "failed: ").starts_with("failed: shards 0, 2 do not verify (2 of 4"),
        "{out}"
    );
    assert!(line(&out, "failed: ").ends_with("the other 2 verified (4 receipts)"), "{out}");

    // Flipped back, every shard verifies again.
    cluster.psql("tampered", &flip_0).unwrap();
    cluster.psql("tampered", flip).unwrap();
    assert!(ok(&govern(&["verify", &url])).contains("ok: 12 receipts in 4 shards"));

    // A row deleted on shard 2: every reader of shard 2 names the gap and the shard; the
    // readers of a tenant on another shard never open shard 2.
    cluster.psql("tampered", "DELETE FROM govern_receipts WHERE shard = 2 AND seq = 4").unwrap();
    let t2 = tenant_on(2);
    let missing = "shard 2: corrupt store: receipt 4 is missing (the ledger holds 6)";
    fails_with(&govern(&["receipts", &url, "--tenant", &t2]), missing);
    fails_with(&govern(&["invoices", &url, "--tenant", &t2, "--period", "2026-01"]), missing);
    fails_with(&govern(&["sagas", &url]), missing);
    fails_with(&govern(&["sagas", &url, "--tenant", &t2]), missing);
    ok(&govern(&["receipts", &url, "--tenant", &tenant_on(1)]));
    ok(&govern(&["sagas", &url, "--tenant", &tenant_on(3)]));
    fails_with(
        &govern(&["invoices", &url, "--tenant", &tenant_on(1), "--period", "2026-01"]),
        "a preview needs the catalog",
    );

    // Receipts beyond the shard count are no chain any reader would walk: refused.
    cluster.psql("tampered", "INSERT INTO govern_leases VALUES (7, '', 0, '-infinity')").unwrap();
    cluster
        .psql(
            "tampered",
            "INSERT INTO govern_receipts (shard, epoch, seq, record) SELECT 7, 0, 0, record FROM govern_receipts WHERE shard = 0 AND seq = 0",
        )
        .unwrap();
    fails_with(
        &govern(&["verify", &url]),
        "receipts of shard 7 in a database divided into 4 shards",
    );
}

/// A public key file as `checkpoint.pub` is written, in `dir`.
fn key_file(dir: &std::path::Path, name: &str, seed: u8) -> PathBuf {
    let key = govern_ledger::CheckpointSigner::from_seed(&[seed; 32]).verifying_key();
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(name);
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    path
}

#[test]
fn verify_checks_each_shards_checkpoints_with_the_key_beside_them_or_a_pinned_one() {
    let Some(cluster) = Cluster::start_or_skip("verify_checks_each_shards_checkpoints") else {
        return;
    };
    let signer = govern_ledger::CheckpointSigner::from_seed(&[5; 32]);
    let url = sharded_database_signed(&cluster, "signed", 1, Some(&signer));
    let tmp = tempfile::tempdir().unwrap();
    let pinned = key_file(tmp.path(), "signer.pub", 5);
    let other = key_file(tmp.path(), "other.pub", 6);

    // The key stored beside them: each shard's latest checkpoint verified, said to show
    // consistency only.
    let beside = ok(&govern(&["verify", &url]));
    for shard in [0, 1, 3] {
        let l = line(&beside, &format!("shard {shard}: ok: "));
        assert!(l.ends_with("; checkpoint: size 2 verified"), "{beside}");
    }
    assert!(line(&beside, "shard 2: ok: ").ends_with("; checkpoint: size 4 verified"));
    let said = line(&beside, "checkpoint: ");
    assert!(said.starts_with("checkpoint: the latest of 4 of 4 shards verified"), "{beside}");
    assert!(said.contains("not who signed them"), "{beside}");
    // Pinned: the signer's key verifies them; another key is refused, naming each shard.
    let with_pin = ok(&govern(&["verify", &url, "--public-key", s(&pinned)]));
    assert!(line(&with_pin, "checkpoint: ").ends_with("with the key given by --public-key"));
    let refused = govern(&["verify", &url, "--public-key", s(&other)]);
    fails_with(&refused, "shard 0: checkpoint of size 2 in govern_checkpoints: key id mismatch");
    assert!(text(&refused.stdout).contains("failed: shards 0, 1, 2, 3 do not verify"));

    // Shard 2 truncated behind govern's back (its chain still links): its checkpoint says
    // more receipts than it holds.
    cluster
        .psql("signed", "DROP TRIGGER govern_receipts_no_update_or_delete ON govern_receipts")
        .unwrap();
    cluster.psql("signed", "DELETE FROM govern_receipts WHERE shard = 2 AND seq = 3").unwrap();
    let truncated = govern(&["verify", &url, "--public-key", s(&pinned)]);
    fails_with(
        &truncated,
        "shard 2: verification failed against its checkpoint of size 4 in govern_checkpoints: history truncated",
    );
    assert!(line(&text(&truncated.stdout), "shard 1: ok: ").ends_with("size 2 verified"));

    // A one-shard database: its checkpoint in place of a --checkpoint file.
    let one = cluster.create_database("one").unwrap();
    let store = govern_postgres::PostgresStore::open(&one).unwrap();
    let checkpointer = store.checkpointer(signer).unwrap();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let runtime = govern_runtime::Runtime::builder()
            .epoch(T0)
            .checkpoints(checkpointer)
            .store(Box::new(store))
            .start()
            .await
            .unwrap();
        let acme = govern_governors::TenantId::new("acme").unwrap();
        let quota = govern_governors::tenant::ResourceQuota {
            storage_gb: 1,
            compute_units: 1,
            bandwidth_mbps: 1,
        };
        runtime.handle().provision_tenant(&acme, quota, "test").await.unwrap();
        runtime.shutdown().await.unwrap();
    });
    let verified = ok(&govern(&["verify", &one, "--public-key", s(&pinned)]));
    assert_eq!(
        line(&verified, "checkpoint: "),
        "checkpoint: govern_checkpoints (size 2) signature and history verified, both forms, with the key given by --public-key",
        "{verified}"
    );
    fails_with(&govern(&["verify", &one, "--public-key", s(&other)]), "key id mismatch");

    // A checkpoint the chain contradicts, signed with the right key (as after a rewrite
    // signed again): every stored checkpoint's root is checked, not only the latest's.
    let forged = govern_ledger::checkpoint::Checkpoint {
        size: 1,
        root: govern_receipt::Digest([7; 32]),
        timestamp: T0,
    };
    let shard_signer = signer_for_shard(1);
    let note = shard_signer.sign_note(&forged);
    let added = govern_postgres::checkpoints::add(
        &url,
        1,
        &shard_signer.verifying_key(),
        &shard_signer.sign(forged),
        &note,
    )
    .unwrap();
    assert!(added, "size 1 had no row");
    let contradicted = govern(&["verify", &url, "--public-key", s(&pinned)]);
    fails_with(&contradicted, "shard 1: the chain's root at size 1 is ");
    fails_with(&contradicted, "the chain was rewritten or forked after that checkpoint was signed");
    // And a second checkpoint of a size already signed, with another root, is refused.
    let latest = govern_postgres::PostgresStore::open_read_only_shard(&url, 0)
        .unwrap()
        .latest_checkpoint()
        .unwrap()
        .unwrap();
    let other_root = govern_ledger::checkpoint::Checkpoint {
        size: latest.size,
        root: govern_receipt::Digest([9; 32]),
        timestamp: T0,
    };
    let shard0 = signer_for_shard(0);
    let fork = govern_postgres::checkpoints::add(
        &url,
        0,
        &shard0.verifying_key(),
        &shard0.sign(other_root),
        &shard0.sign_note(&other_root),
    )
    .expect_err("another root for a size already signed");
    assert!(fork.to_string().contains("forked or was rewritten"), "{fork}");

    // With a pinned key, a shard holding receipts but no checkpoint fails: nothing was
    // checked against the signer there.
    let unsigned = sharded_database_signed(&cluster, "unsigned", 1, None);
    fails_with(
        &govern(&["verify", &unsigned, "--public-key", s(&pinned)]),
        "no checkpoint in govern_checkpoints to check them against with --public-key",
    );
}

/// The checkpoint signer a node gives shard `shard` (seed 5, origin per shard).
fn signer_for_shard(shard: u32) -> govern_ledger::CheckpointSigner {
    govern_postgres::node::shard_signer(
        &govern_ledger::CheckpointSigner::from_seed(&[5; 32]),
        shard,
    )
    .unwrap()
}

/// A key directory as a node's DATA_DIR holds it: checkpoint.key (the secret seed in hex)
/// and checkpoint.pub, for `govern checkpoint URL --key-dir`.
fn key_dir(parent: &std::path::Path, name: &str, seed: u8) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap();
    let signer = govern_ledger::CheckpointSigner::from_seed(&[seed; 32]);
    std::fs::write(dir.join("checkpoint.key"), format!("{}\n", signer.to_seed_hex())).unwrap();
    key_file(&dir, "checkpoint.pub", seed);
    dir
}

#[test]
fn export_and_prove_on_a_shard_use_its_signed_checkpoint() {
    let Some(cluster) = Cluster::start_or_skip("export_and_prove_on_a_shard_use_its_signed") else {
        return;
    };
    let signer = govern_ledger::CheckpointSigner::from_seed(&[5; 32]);
    // Shard 2: two tenants, 4 receipts, its checkpoint of size 4 (signed at shutdown).
    let url = sharded_database_signed(&cluster, "proofs", 1, Some(&signer));
    let tmp = tempfile::tempdir().unwrap();
    let pinned = key_file(tmp.path(), "signer.pub", 5);
    let other = key_file(tmp.path(), "other.pub", 6);
    let keys = key_dir(tmp.path(), "keys", 5);
    let t2 = tenant_on(2);

    // export --with-proofs: the header carries shard 2's checkpoint, both forms; the proofs
    // are against its tree size; `verify --export` checks it with the signer's key alone.
    let export = ok(&govern(&[
        "export",
        &url,
        "--tenant",
        &t2,
        "--with-proofs",
        "--public-key",
        s(&pinned),
    ]));
    let header: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(header["tree_size"], 4, "{export}");
    assert_eq!(header["checkpoint"]["size"], 4, "{export}");
    assert_eq!(header["checkpoint"]["root"], header["root"], "{export}");
    let note = header["checkpoint_note"].as_str().unwrap();
    assert!(note.contains("/shard-2\n4\n"), "the note names shard 2's log: {note}");
    let file = tmp.path().join("t2.jsonl");
    std::fs::write(&file, &export).unwrap();
    let verified = ok(&govern(&["verify", "--export", s(&file), "--public-key", s(&pinned)]));
    assert!(verified.contains("ok: 2 receipts of tenant"), "{verified}");
    assert!(
        verified.contains(
            "checkpoint: the export's own (size 4) signature verified; the export's proofs are made against it; the export's signed note verified"
        ),
        "{verified}"
    );
    assert!(verified.contains("inclusion proofs: 2 covered by the checkpoint"), "{verified}");
    // Another key: refused; a receipt line changed: refused.
    fails_with(
        &govern(&["verify", "--export", s(&file), "--public-key", s(&other)]),
        "the header's checkpoint: key id mismatch",
    );
    let tampered = export.replacen("\"reason\":\"", "\"reason\":\"x", 1);
    assert_ne!(tampered, export);
    std::fs::write(&file, &tampered).unwrap();
    fails_with(
        &govern(&["verify", "--export", s(&file), "--public-key", s(&pinned)]),
        "its fields do not hash to its hash: the receipt was changed",
    );
    // Without --public-key: the key beside the checkpoint, and stderr says what that shows.
    let beside = govern(&["export", &url, "--tenant", &t2, "--with-proofs"]);
    assert_eq!(ok(&beside), export);
    assert!(text(&beside.stderr).contains("not who signed them"), "{}", text(&beside.stderr));
    // A key that did not sign it: refused, as a directory's checkpoint would be.
    fails_with(
        &govern(&["export", &url, "--tenant", &t2, "--with-proofs", "--public-key", s(&other)]),
        "key id mismatch",
    );

    // prove --seq: against shard 2's checkpoint.
    let proof: serde_json::Value = serde_json::from_str(&ok(&govern(&[
        "prove",
        &url,
        "--seq",
        "3",
        "--shard",
        "2",
        "--public-key",
        s(&pinned),
    ])))
    .unwrap();
    assert_eq!(proof["shard"], 2);
    assert_eq!(proof["checkpoint"]["size"], 4);
    assert_eq!(proof["inclusion_proof"]["tree_size"], 4);
    assert_eq!(proof["inclusion_proof"]["root"], proof["checkpoint"]["root"]);

    // prove --consistency: from an older checkpoint of shard 2 (signed now of its first 2
    // receipts with `govern checkpoint`, which also stores it) to its latest.
    let older =
        ok(&govern(&["checkpoint", &url, "--key-dir", s(&keys), "--shard", "2", "--size", "2"]));
    let older_file = tmp.path().join("older.json");
    std::fs::write(&older_file, &older).unwrap();
    let consistency: serde_json::Value = serde_json::from_str(&ok(&govern(&[
        "prove",
        &url,
        "--tenant",
        &t2,
        "--consistency",
        s(&older_file),
        "--public-key",
        s(&pinned),
    ])))
    .unwrap();
    assert_eq!(consistency["old_checkpoint"]["size"], 2);
    assert_eq!(consistency["checkpoint"]["size"], 4, "the latest is still the largest");
    let p = &consistency["consistency_proof"];
    assert_eq!((p["first_size"].clone(), p["second_size"].clone()), (2.into(), 4.into()));
    assert_eq!(p["first_root"], consistency["old_checkpoint"]["root"]);
    // The export linked to the older checkpoint by its consistency proof.
    let linked = ok(&govern(&[
        "export",
        &url,
        "--tenant",
        &t2,
        "--with-proofs",
        "--consistency-from",
        s(&older_file),
        "--public-key",
        s(&pinned),
    ]));
    std::fs::write(&file, &linked).unwrap();
    let against_older = ok(&govern(&[
        "verify",
        "--export",
        s(&file),
        "--checkpoint",
        s(&older_file),
        "--public-key",
        s(&pinned),
    ]));
    assert!(against_older.contains("consistency proof verified"), "{against_older}");
    // A shard with no checkpoint has none to prove consistency to.
    let unsigned = sharded_database(&cluster, "unsigned", 0);
    fails_with(
        &govern(&["prove", &unsigned, "--shard", "1", "--consistency", s(&older_file)]),
        "shard 1: postgresql database unsigned",
    );
    fails_with(
        &govern(&["prove", &unsigned, "--shard", "1", "--consistency", s(&older_file)]),
        "has no checkpoint in govern_checkpoints",
    );
}

#[test]
fn govern_checkpoint_signs_each_shard_into_govern_checkpoints_and_verify_accepts_them() {
    let Some(cluster) = Cluster::start_or_skip("govern_checkpoint_signs_each_shard") else {
        return;
    };
    let url = sharded_database(&cluster, "sign", 1);
    let tmp = tempfile::tempdir().unwrap();
    let keys = key_dir(tmp.path(), "keys", 5);
    let pinned = key_file(tmp.path(), "signer.pub", 5);
    let other_keys = key_dir(tmp.path(), "other", 6);
    let rows = || cluster.psql("sign", "SELECT count(*) FROM govern_checkpoints").unwrap();
    assert!(line(&ok(&govern(&["verify", &url])), "checkpoint: ").contains("none"));
    fails_with(&govern(&["checkpoint", &url]), "--key-dir DIR is needed on a database");
    fails_with(
        &govern(&["checkpoint", &url, "--key-dir", s(&keys), "--size", "1"]),
        "say which with --shard K",
    );
    assert_eq!(rows(), "0");

    // Every shard: a line each, a row each, each verified by `govern verify` with the key.
    let signed = ok(&govern(&["checkpoint", &url, "--key-dir", s(&keys)]));
    for shard in 0..SHARDS {
        let size = if shard == 2 { 4 } else { 2 };
        assert!(
            signed.contains(&format!(
                "shard {shard}: checkpoint of size {size} inserted into govern_checkpoints\n"
            )),
            "{signed}"
        );
    }
    assert_eq!(rows(), "4");
    let verified = ok(&govern(&["verify", &url, "--public-key", s(&pinned)]));
    assert!(line(&verified, "shard 2: ok: ").ends_with("; checkpoint: size 4 verified"));
    assert!(
        line(&verified, "checkpoint: ")
            .starts_with("checkpoint: the latest of 4 of 4 shards verified"),
        "{verified}"
    );
    let note = cluster.psql("sign", "SELECT note FROM govern_checkpoints WHERE shard = 3").unwrap();
    assert!(note.contains("/shard-3"), "a shard's note names its own log, as a node's: {note}");

    // One shard: printed (here as a note, its origin kept); a size already signed is kept.
    let again = govern(&["checkpoint", &url, "--key-dir", s(&keys), "--shard", "1", "--note"]);
    let printed = ok(&again);
    assert!(printed.contains("/shard-1\n2\n"), "{printed}");
    assert!(
        text(&again.stderr).contains(
            "shard 1: govern_checkpoints already holds a checkpoint of size 2: kept, nothing inserted"
        ),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(rows(), "4");
    // Another key is refused: it would sign over a history it cannot check.
    fails_with(
        &govern(&["checkpoint", &url, "--key-dir", s(&other_keys), "--shard", "1"]),
        "shard 1: checkpoint govern_checkpoints (shard 1, size 2): key id mismatch",
    );
    assert_eq!(rows(), "4");

    // A shard whose chain no longer verifies (a record copied in behind govern's back) is
    // not signed.
    cluster
        .psql(
            "sign",
            "INSERT INTO govern_receipts (shard, epoch, seq, record) SELECT 0, epoch, 2, record FROM govern_receipts WHERE shard = 0 AND seq = 1",
        )
        .unwrap();
    fails_with(
        &govern(&["checkpoint", &url, "--key-dir", s(&keys), "--shard", "0"]),
        "shard 0: the ledger does not verify",
    );
    assert_eq!(rows(), "4", "nothing signed over a chain that does not verify");
    // A data directory is as before: its own key, nothing written; --key-dir is refused.
    let dir = support::ledger(3);
    fails_with(
        &govern(&["checkpoint", s(dir.path()), "--key-dir", s(&keys)]),
        "--key-dir is for a database",
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&govern(&["checkpoint", s(dir.path())]))).unwrap();
    assert_eq!(json["size"], 3);
}

#[test]
fn a_receipt_in_another_tenants_shard_fails_verify() {
    let Some(cluster) = Cluster::start_or_skip("a_receipt_in_another_tenants_shard") else {
        return;
    };
    let url = sharded_database(&cluster, "misplaced", 0);
    ok(&govern(&["verify", &url]));
    // A writer of shard 1 (its lease taken again) that provisions a tenant of shard 2: its
    // receipt verifies in shard 1's chain, but no reader of that tenant would ever look there.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let epoch = govern_postgres::cluster::acquire(&mut client, 1, "n", 60_000).unwrap().unwrap();
    let store = govern_postgres::PostgresStore::open_shard(&url, 1, epoch).unwrap();
    let stray = tenant_on(2);
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let runtime = govern_runtime::Runtime::builder()
            .epoch(T0)
            .store(Box::new(store))
            .start()
            .await
            .unwrap();
        let quota = govern_governors::tenant::ResourceQuota {
            storage_gb: 1,
            compute_units: 1,
            bandwidth_mbps: 1,
        };
        let id = govern_governors::TenantId::new(&stray).unwrap();
        runtime.handle().provision_tenant(&id, quota, "misplaced").await.unwrap();
        runtime.shutdown().await.unwrap();
    });
    let misplaced = govern(&["verify", &url]);
    fails_with(
        &misplaced,
        &format!(
            "shard 1: verification failed at receipt 2: tenant {stray}'s receipt is in shard 1, not its shard 2"
        ),
    );
    assert!(line(&text(&misplaced.stdout), "shard 2: ok: ").contains("receipts"));
}
