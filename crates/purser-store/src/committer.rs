//! The committer: one task per store that turns queued changes into transactions.
//!
//! It takes the first waiting change and every other change already queued, up to
//! `max_batch`, and commits them together (group commit: one fsync for many
//! changes). For each batch it loads the rows the changes read — locking them on
//! PostgreSQL — applies every change in memory with [`purser_core::batch::Batch`]
//! (a refusal affects only its own change), persists the effects with a fixed number
//! of set-based statements, and commits. Only after the commit does each caller hear
//! its answer.

use std::time::{Duration, Instant};

use purser_core::batch::{Batch, needs};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::persist::{self, PersistError};
use crate::sql::Statements;
use crate::{Backend, Committed, Job, StoreError, load};

/// How often a whole batch is retried after a conflict before giving up.
const RETRY_LIMIT: u32 = 8;

pub(crate) async fn run(
    pool: AnyPool,
    backend: Backend,
    max_batch: usize,
    mut jobs: mpsc::Receiver<Job>,
    mut stop: oneshot::Receiver<()>,
) {
    let statements = Statements::new(backend);
    let mut stopping = false;
    loop {
        let first = tokio::select! {
            job = jobs.recv() => job,
            _ = &mut stop, if !stopping => {
                // Refuse new writes, but keep draining what is already queued.
                jobs.close();
                stopping = true;
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut batch = Vec::with_capacity(max_batch.min(256));
        batch.push(first);
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_with_retries(&pool, backend, &statements, batch).await;
    }
    tracing::debug!("committer drained and stopped");
}

/// Interference from another writer: a guard that came up short, a lock conflict,
/// or a key another process inserted first (the retry then sees its row, e.g. a
/// duplicate request replays instead of applying twice).
fn retryable(backend: Backend, error: &PersistError) -> bool {
    match error {
        PersistError::Contended(_) => true,
        PersistError::Database(error) => {
            backend.is_retryable(error)
                || error
                    .as_database_error()
                    .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
        }
        PersistError::Corrupt(_) => false,
    }
}

async fn commit_with_retries(
    pool: &AnyPool,
    backend: Backend,
    statements: &Statements,
    batch: Vec<Job>,
) {
    let started = Instant::now();
    let size = batch.len();
    let mut attempt = 0;
    let outcome = loop {
        match commit_batch(pool, backend, statements, &batch).await {
            Err(error) if retryable(backend, &error) && attempt < RETRY_LIMIT => {
                attempt += 1;
                tracing::debug!(%error, attempt, "batch met a concurrent writer; retrying");
                tokio::time::sleep(Duration::from_millis(1u64 << attempt.min(6))).await;
            }
            other => break other,
        }
    };
    metrics::histogram!("purser_store_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("purser_store_batch_size").record(size as f64);
    match outcome {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(error) => {
            tracing::error!(%error, size, "commit failed; every change in the batch was rolled back");
            for job in batch {
                let _ = job.reply.send(Err(StoreError::CommitFailed));
            }
        }
    }
}

type BatchResults = Vec<Result<Committed, StoreError>>;

async fn commit_batch(
    pool: &AnyPool,
    backend: Backend,
    statements: &Statements,
    jobs: &[Job],
) -> Result<BatchResults, PersistError> {
    let mut tx = pool.begin_with(backend.begin_write()).await?;
    let snapshot =
        load::snapshot(&mut tx, statements, &needs(jobs.iter().map(|j| &j.request))).await?;
    let mut batch = Batch::new(snapshot);
    let results = jobs
        .iter()
        .map(|job| batch.apply(&job.request).map_err(StoreError::from))
        .collect();
    let effects = batch.finish();
    if effects.is_empty() {
        // Only replays and refusals: nothing to write, nothing to fsync.
        tx.rollback().await?;
        return Ok(results);
    }
    persist::effects(&mut tx, backend, statements, effects).await?;
    tx.commit().await?;
    Ok(results)
}
