//! Purser's storage: one [`Store`] over two real backends, SQLite (the embedded
//! default: one file, WAL, `synchronous=FULL`) and PostgreSQL.
//!
//! The SQL is shared: both engines speak it through sqlx's `Any` driver, and the
//! few places they differ (how a write transaction begins, row locks, DDL) live in
//! [`dialect`] and in one migration set per backend.
//!
//! Every change goes through [`Store::write`]. Writes are queued to one committer
//! task per store, which commits them in groups (group commit: one fsync for many
//! changes). For each group it loads the rows the changes read — locked on
//! PostgreSQL, and SQLite has a single writer — applies the changes in memory with
//! `purser_core::batch`, and persists the result with a fixed number of set-based
//! statements whose guards (`WHERE balance = <loaded>`) turn any interference into a
//! retry. A caller hears back only after that transaction is durable — on SQLite
//! after the WAL flush a syncer thread runs behind the committer ([`wal_sync`]) —
//! and [`Store::settled`] lets a reader wait for the same: nothing is acknowledged
//! before it is durable. Several stores (several server processes on
//! one PostgreSQL database) can therefore never overspend.

mod committer;
mod dashboard;
pub mod dialect;
mod error;
mod links;
mod load;
mod migrate;
mod persist;
mod read;
mod rows;
mod rowset;
mod sql;
mod wal_sync;
mod x402;

use std::sync::Arc;
use std::time::Duration;

pub use purser_core::batch::{Committed, Idempotency, WriteRequest};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

pub use dashboard::{PaymentCursor, PaymentFilter, SpendByHost};
pub use dialect::Backend;
pub use error::StoreError;
pub use links::UseClaim;
pub use read::{AuditVerification, MandateFilter, Page};
pub use x402::{Settlement, SettlementStatus, X402Payment, X402PaymentStatus};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path`, a bare file path (SQLite), or `postgres://…`.
    pub url: String,
    /// The most changes committed in one transaction. 1 disables group commit.
    pub max_batch: usize,
    /// How many changes may wait for the committer before writers wait too.
    pub queue_depth: usize,
    /// Connections in the pool (readers plus the committer).
    pub max_connections: u32,
}

impl StoreConfig {
    /// Defaults for a URL: batches of up to 256 changes, a queue of 4096.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_batch: 256,
            queue_depth: 4096,
            max_connections: 16,
        }
    }
}

struct Job {
    request: WriteRequest,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// Which commits are durable yet (a SQLite file; PostgreSQL's are at commit).
    durability: Option<Arc<wal_sync::Durability>>,
    queue: mpsc::Sender<Job>,
    committer: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

/// The store. Cheap to clone; every clone shares one pool and one committer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations, and starts the
    /// committer.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        install_default_drivers();
        let (backend, url) = dialect::normalize_url(&config.url)?;
        let pool = connect(backend, &url, config.max_connections).await?;
        migrate::run(&pool, backend).await?;
        let sqlite_file = match backend {
            Backend::Sqlite => sqlite_file(&pool).await?,
            Backend::Postgres => None,
        };
        let durability = sqlite_file
            .as_ref()
            .map(|_| Arc::new(wal_sync::Durability::new()));
        let (queue, jobs) = mpsc::channel(config.queue_depth.max(1));
        let (stop, stopped) = oneshot::channel();
        let task = committer::spawn(
            pool.clone(),
            backend,
            sqlite_file.zip(durability.clone()),
            config.max_batch.max(1),
            jobs,
            stopped,
        )?;
        let inner = Inner {
            pool,
            backend,
            durability,
            queue,
            committer: Mutex::new(Some((stop, task))),
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Applies one change durably, with its audit record. Returns only after the
    /// transaction that holds it has committed.
    pub async fn write(&self, request: WriteRequest) -> Result<Committed, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .queue
            .send(Job { request, reply })
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Waits until every change committed so far is durable. A commit is visible
    /// to readers a moment before that (on SQLite the WAL is flushed behind the
    /// committer), so whatever tells a caller what it read awaits this first.
    /// Immediate when no commit is in flight; fails once the disk refused a flush.
    pub async fn settled(&self) -> Result<(), StoreError> {
        match &self.inner.durability {
            Some(durability) => durability.settled().await,
            None => Ok(()),
        }
    }

    /// Stops taking writes, commits every write already queued, and closes the pool.
    pub async fn close(&self) {
        let committer = self.inner.committer.lock().await.take();
        if let Some((stop, task)) = committer {
            let _ = stop.send(());
            if let Err(error) = task.await {
                tracing::error!(%error, "committer task failed");
            }
        }
        self.inner.pool.close().await;
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.inner.pool.execute("SELECT 1").await?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }
}

/// The SQLite database's file, or none for an in-memory database.
async fn sqlite_file(pool: &AnyPool) -> Result<Option<std::path::PathBuf>, StoreError> {
    let databases: Vec<(i64, String, String)> = sqlx::query_as("PRAGMA database_list")
        .fetch_all(pool)
        .await?;
    Ok(databases
        .into_iter()
        .find(|(_, name, file)| name == "main" && !file.is_empty())
        .map(|(_, _, file)| file.into()))
}

async fn connect(backend: Backend, url: &str, max_connections: u32) -> Result<AnyPool, StoreError> {
    let options = AnyPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(10));
    let options = match backend {
        // A connection to a local file cannot go stale: skip the ping before each
        // checkout, which costs a round trip to the connection's worker thread.
        Backend::Sqlite => options
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(dialect::SQLITE_CONNECTION_PRAGMAS).await?;
                    Ok(())
                })
            }),
        Backend::Postgres => options,
    };
    let pool = options.connect(url).await?;
    if backend == Backend::Sqlite {
        // WAL is a property of the file: set it once, before anything else writes.
        pool.execute("PRAGMA journal_mode = WAL").await?;
    }
    Ok(pool)
}
