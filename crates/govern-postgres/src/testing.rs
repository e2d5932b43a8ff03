//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, a server on
//! a free loopback port with its socket in that directory, trust authentication, stopped
//! (`pg_ctl stop -m immediate`) when dropped, also when a test panics. Never a server that
//! was already running.
//!
//! The binaries are Debian's (`/usr/lib/postgresql/15/bin`, or `GOVERN_POSTGRES_BIN`). Run as
//! root, they run as the `postgres` user (`runuser`), the directory given to it. Without
//! them, [`Cluster::start_or_skip`] prints a notice and the test passes, unless
//! `GOVERN_REQUIRE_POSTGRES=1`, when it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where Debian puts PostgreSQL 15's binaries.
pub const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Seconds `pg_ctl` waits for the server to be ready or stopped (`-w -t`): the bounded wait
/// for readiness, polled by `pg_ctl` itself.
pub const READY_TIMEOUT_SECS: u32 = 60;

/// Ports tried before starting the server is given up.
pub const PORT_ATTEMPTS: u32 = 3;

/// A failure to run the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The binaries are not installed.
    #[error("PostgreSQL binaries are missing: {0} has no initdb")]
    Missing(PathBuf),
    /// A command failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command.
        command: String,
        /// What it printed.
        output: String,
    },
    /// The file system or a process could not be reached.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A running throwaway cluster; stopped when dropped.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Whether commands run as the `postgres` user (we are root).
    as_postgres: bool,
    running: bool,
}

fn run(mut command: Command) -> Result<Output, ClusterError> {
    let text = format!("{command:?}");
    let output = command.output()?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ClusterError::Command {
            command: text,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

fn id(args: &[&str]) -> Result<u32, ClusterError> {
    let mut command = Command::new("id");
    command.args(args);
    let output = run(command)?;
    String::from_utf8_lossy(&output.stdout).trim().parse().map_err(|e| ClusterError::Command {
        command: format!("id {args:?}"),
        output: format!("{e}"),
    })
}

impl Cluster {
    /// Initialises and starts a cluster; `Ok(None)` when the binaries are missing.
    ///
    /// # Errors
    /// [`ClusterError`] when a step fails.
    pub fn start() -> Result<Option<Self>, ClusterError> {
        let bin = std::env::var_os("GOVERN_POSTGRES_BIN")
            .map_or_else(|| PathBuf::from(DEFAULT_BIN), PathBuf::from);
        if !bin.join("initdb").is_file() {
            return Ok(None);
        }
        let dir = tempfile::Builder::new().prefix("govern-pg-").tempdir()?;
        let as_postgres = id(&["-u"])? == 0;
        if as_postgres {
            let uid = id(&["-u", "postgres"])?;
            let gid = id(&["-g", "postgres"])?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut cluster = Self { dir, bin, port: 0, as_postgres, running: false };
        let mut initdb = cluster.tool("initdb");
        initdb.arg("-D").arg(cluster.data()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(initdb)?;
        // The free port may be taken between our probe and the server's bind: try another.
        let mut attempt = 1;
        loop {
            cluster.port = free_port()?;
            match cluster.start_again() {
                Ok(()) => return Ok(Some(cluster)),
                Err(e) if attempt >= PORT_ATTEMPTS => return Err(e),
                Err(_) => attempt += 1,
            }
        }
    }

    /// [`Self::start`] for a test: `None` (after a notice) when the binaries are missing and
    /// `GOVERN_REQUIRE_POSTGRES` is not `1`.
    ///
    /// # Panics
    /// When the cluster cannot start, or the binaries are missing and required.
    #[must_use]
    #[allow(clippy::print_stderr, reason = "the notice of a skipped test is for people")]
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match Self::start() {
            Ok(Some(cluster)) => Some(cluster),
            Ok(None) => {
                let required = std::env::var("GOVERN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
                let bin =
                    std::env::var("GOVERN_POSTGRES_BIN").unwrap_or_else(|_| DEFAULT_BIN.into());
                assert!(!required, "{test}: GOVERN_REQUIRE_POSTGRES=1 but {bin} has no initdb");
                eprintln!("{test}: skipped, PostgreSQL is not installed ({bin}/initdb missing)");
                None
            }
            Err(e) => panic!("{test}: cannot start a throwaway PostgreSQL: {e}"),
        }
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.current_dir(self.dir.path());
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The temporary directory (data in `data/`, the server's log in `log`, its socket).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The loopback port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for database `dbname` as the superuser `postgres`.
    #[must_use]
    pub fn url(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={dbname}", self.port)
    }

    /// Creates database `name` (a plain identifier) and returns its connection string.
    ///
    /// # Errors
    /// [`ClusterError`] when `psql` fails.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(name))
    }

    /// Runs `sql` with `psql` in database `dbname`, stopping at the first error; what it
    /// printed (unaligned, tuples only).
    ///
    /// # Errors
    /// [`ClusterError::Command`] (with PostgreSQL's message) when a statement fails.
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, ClusterError> {
        let mut psql = self.tool("psql");
        psql.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &self.port.to_string(), "-d", dbname, "-c", sql]);
        let output = run(psql)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Starts the server (again, after [`Self::stop`]) on the same port and data, and waits
    /// until it accepts connections.
    ///
    /// # Errors
    /// [`ClusterError`] when `pg_ctl start` fails or times out.
    pub fn start_again(&mut self) -> Result<(), ClusterError> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl.arg("-D").arg(self.data()).arg("-l").arg(self.dir.path().join("log")).args([
            "-w",
            "-t",
            &READY_TIMEOUT_SECS.to_string(),
            "-o",
            &options,
            "start",
        ]);
        run(pg_ctl)?;
        self.running = true;
        Ok(())
    }

    /// Stops the server at once (`-m immediate`, as a crash: no shutdown checkpoint, open
    /// transactions lost, connections cut).
    ///
    /// # Errors
    /// [`ClusterError`] when `pg_ctl stop` fails.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        if !self.running {
            return Ok(());
        }
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl.arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            &READY_TIMEOUT_SECS.to_string(),
            "stop",
        ]);
        run(pg_ctl)?;
        self.running = false;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> Result<u16, ClusterError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
