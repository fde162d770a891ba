//! The committer: one task per store that turns queued changes into transactions.
//!
//! It takes the first waiting change and every other change already queued, up to
//! `max_batch`, and applies them in one transaction, each in its own savepoint so
//! one refusal does not undo its neighbours. After the commit returns, and only
//! then, every caller hears its own answer. One fsync thus serves the whole group
//! (group commit), which is what lets a durable ledger keep up with many clients.

use std::time::{Duration, Instant};

use purser_types::{AuditEvent, UnixMs};
use sqlx::{AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

use crate::write::{self, Applied};
use crate::{Backend, Committed, Job, StoreError};

/// How often a whole batch is retried after a lock conflict before giving up.
const RETRY_LIMIT: u32 = 8;

pub(crate) async fn run(
    pool: AnyPool,
    backend: Backend,
    max_batch: usize,
    mut jobs: mpsc::Receiver<Job>,
    mut stop: oneshot::Receiver<()>,
) {
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
        let mut batch = Vec::with_capacity(max_batch.min(64));
        batch.push(first);
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_with_retries(&pool, backend, batch).await;
    }
    tracing::debug!("committer drained and stopped");
}

async fn commit_with_retries(pool: &AnyPool, backend: Backend, batch: Vec<Job>) {
    let started = Instant::now();
    let size = batch.len();
    let mut attempt = 0;
    let outcome = loop {
        match commit_batch(pool, backend, &batch).await {
            Err(error) if backend.is_retryable(&error) && attempt < RETRY_LIMIT => {
                attempt += 1;
                tracing::debug!(%error, attempt, "batch hit a lock conflict; retrying");
                tokio::time::sleep(Duration::from_millis(2u64 << attempt.min(6))).await;
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
    batch: &[Job],
) -> Result<BatchResults, sqlx::Error> {
    let mut tx = pool.begin_with(backend.begin_write()).await?;
    let mut results = Vec::with_capacity(batch.len());
    let mut events: Vec<(UnixMs, AuditEvent)> = Vec::new();
    for job in batch {
        tx.execute("SAVEPOINT change").await?;
        match write::apply(&mut tx, &job.request).await {
            Ok(Applied { committed, changed }) => {
                tx.execute("RELEASE SAVEPOINT change").await?;
                if changed {
                    events.push((
                        job.request.at,
                        job.request.change.audit_event(job.request.actor),
                    ));
                }
                results.push(Ok(committed));
            }
            Err(StoreError::Database(error)) if backend.is_retryable(&error) => return Err(error),
            Err(refusal) => {
                tx.execute("ROLLBACK TO SAVEPOINT change").await?;
                tx.execute("RELEASE SAVEPOINT change").await?;
                if !refusal.is_refusal() {
                    tracing::error!(error = %refusal, "change failed inside its savepoint");
                }
                results.push(Err(refusal));
            }
        }
    }
    if !events.is_empty() {
        write::append_audit(&mut tx, backend, events)
            .await
            .map_err(|e| match e {
                StoreError::Database(error) => error,
                other => sqlx::Error::Protocol(other.to_string()),
            })?;
    }
    tx.commit().await?;
    Ok(results)
}
