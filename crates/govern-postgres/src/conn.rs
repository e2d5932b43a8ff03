//! A connection on a thread of its own. The `postgres` client blocks on a tokio runtime of
//! its own, which must not be entered from a thread already driving async tasks (the
//! runtime's): each connection's work runs on its thread, and callers wait for the answer on
//! a channel, which any thread may do.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;

use govern_ledger::StoreError;
use postgres::{Client, Config, NoTls, Statement};

/// A failure of the database or of the connection to it, as a store error: the ledger's
/// unavailable path.
pub(crate) fn db_error(e: postgres::Error) -> StoreError {
    match (e.code(), e.as_db_error()) {
        (Some(code), Some(db)) => {
            StoreError::Io(format!("postgresql refused ({}): {}", code.code(), db.message()))
        }
        (Some(code), None) => StoreError::Io(format!("postgresql refused ({}): {e}", code.code())),
        _ => StoreError::Io(format!("postgresql: {e}")),
    }
}

/// A connection and the statements prepared on it; connected on first use and again after
/// the connection was lost.
pub(crate) struct Session {
    config: Config,
    client: Option<Client>,
    statements: BTreeMap<&'static str, Statement>,
}

impl Session {
    /// The client, connecting if there is none or it was closed.
    pub(crate) fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = None;
            let client = self.config.connect(NoTls).map_err(db_error)?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| StoreError::Io("postgresql: no connection".into()))
    }

    /// The client and `sql` prepared on it (once per connection).
    pub(crate) fn prepared(
        &mut self,
        sql: &'static str,
    ) -> Result<(&mut Client, Statement), StoreError> {
        self.client()?;
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Io("postgresql: no connection".into()))?;
        let statement = match self.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(sql).map_err(db_error)?;
                self.statements.insert(sql, s.clone());
                s
            }
        };
        Ok((client, statement))
    }
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A connection's thread: runs the work handed to it, one piece at a time, in order.
#[derive(Debug)]
pub(crate) struct Conn {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("connected", &self.client.is_some()).finish()
    }
}

impl Conn {
    /// A thread named `name` for connections made from `config`; it connects on first use.
    pub(crate) fn spawn(config: Config, name: &str) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut session = Session { config, client: None, statements: BTreeMap::new() };
                // Ends when the store drops its sender.
                while let Ok(job) = rx.recv() {
                    job(&mut session);
                }
            })
            .map_err(|e| StoreError::Io(format!("cannot start a connection thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the connection's thread and waits for its answer.
    pub(crate) fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |session: &mut Session| {
                let _ = tx.send(f(session));
            }))
            .map_err(|_| StoreError::Io("postgresql: the connection thread is gone".into()))?;
        rx.recv().map_err(|_| StoreError::Io("postgresql: the connection thread died".into()))?
    }
}
