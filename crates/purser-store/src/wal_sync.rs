//! Durable answers on SQLite without holding the write lock through the disk flush.
//!
//! The committer's own connection commits with `synchronous = NORMAL`: SQLite
//! appends the batch's frames to the WAL and returns without fsync. The batch's
//! answers then go to the syncer thread, which flushes the WAL file
//! (`fdatasync`; one call covers every batch committed before it) and only then
//! hands them out. Meanwhile the committer already runs the next batch, so the
//! disk's flush time no longer adds to every batch's time under SQLite's write lock.
//! A commit becomes visible to SQLite's other connections before it is durable
//! (as in InnoDB), so reads wait too: [`Durability::settled`] returns once
//! everything committed so far has been flushed, and the HTTP layer awaits it before
//! it sends any response. Nobody is told of a change before it is durable.
//!
//! Why this is as durable as `synchronous = FULL` for what was acknowledged: a
//! WAL frame carries a checksum chained over every frame before it, so after a crash
//! SQLite replays the longest valid prefix of whole transactions. Answers leave in
//! commit order, each after a flush that began after its commit, so every
//! acknowledged transaction — and everything it read — is inside that prefix.
//! Checkpoints are unchanged: with `NORMAL`, SQLite still syncs the WAL before
//! copying it into the database file and the database file afterwards.
//!
//! If a flush fails, the outcome of the batches it covered is unknown (after an
//! `fsync` error Linux may already have dropped the dirty pages, so trying again
//! proves nothing). Their callers get [`StoreError::NotDurable`] and the store takes
//! no more writes until it is reopened, as PostgreSQL does on an fsync failure.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::{Committed, StoreError};

type Reply = oneshot::Sender<Result<Committed, StoreError>>;

/// How far the flushes have come.
#[derive(Debug, Clone, Copy, Default)]
struct Watermark {
    /// Every batch up to this sequence number is durable.
    durable_seq: u64,
    /// A flush failed: nothing later can be vouched for.
    failed: bool,
}

/// Which batches are durable, shared by the committer, the syncer and readers.
#[derive(Debug)]
pub(crate) struct Durability {
    /// The sequence number of the latest batch the committer started.
    issued_seq: AtomicU64,
    /// The latest batch that may be visible to readers: raised just before its
    /// `COMMIT`, so any commit a reader can see is at or below it.
    visible_seq: AtomicU64,
    watermark: watch::Sender<Watermark>,
}

impl Durability {
    pub(crate) fn new() -> Durability {
        Durability {
            issued_seq: AtomicU64::new(0),
            visible_seq: AtomicU64::new(0),
            watermark: watch::Sender::new(Watermark::default()),
        }
    }

    /// Numbers a batch.
    pub(crate) fn issue(&self) -> u64 {
        self.issued_seq.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Called just before batch `seq` commits: from now on readers may see it.
    pub(crate) fn may_become_visible(&self, seq: u64) {
        self.visible_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// Waits until every commit a reader could have seen so far is durable (at once
    /// when none is waiting for its flush). Fails if a flush failed. Batches that
    /// have not reached `COMMIT` are not waited for: nothing of them is visible.
    pub(crate) async fn settled(&self) -> Result<(), StoreError> {
        let target = self.visible_seq.load(Ordering::Acquire);
        let reached = |w: &Watermark| w.failed || w.durable_seq >= target;
        let mut watermark = self.watermark.subscribe();
        let now = *watermark
            .wait_for(reached)
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        if now.failed {
            Err(StoreError::NotDurable)
        } else {
            Ok(())
        }
    }

    fn failed(&self) -> bool {
        self.watermark.borrow().failed
    }

    fn mark_durable(&self, seq: u64) {
        self.watermark
            .send_modify(|w| w.durable_seq = w.durable_seq.max(seq));
    }

    /// Returns true the first time.
    fn mark_failed(&self) -> bool {
        let mut first = false;
        self.watermark.send_modify(|w| {
            first = !w.failed;
            w.failed = true;
        });
        first
    }
}

/// One batch's answers, waiting for the flush that makes them true.
pub(crate) struct Answers {
    pub(crate) replies: Vec<(Reply, Result<Committed, StoreError>)>,
    /// The batch committed something (a batch of replays and refusals did not,
    /// but its answers may rest on an earlier batch's rows, so they still queue).
    pub(crate) wrote: bool,
    /// The batch's number from [`Durability::issue`].
    pub(crate) seq: u64,
}

impl Answers {
    /// Sends every answer as it is.
    pub(crate) fn send(self) {
        for (reply, result) in self.replies {
            let _ = reply.send(result);
        }
    }

    /// What to say when the flush failed: a change may or may not have survived.
    fn send_not_durable(self) {
        for (reply, result) in self.replies {
            let _ = reply.send(result.and(Err(StoreError::NotDurable)));
        }
    }
}

/// The committer's handle on the syncer thread.
pub(crate) struct WalSyncer {
    queue: mpsc::Sender<Answers>,
    durability: Arc<Durability>,
    thread: std::thread::JoinHandle<()>,
}

impl WalSyncer {
    /// Starts the thread that flushes `database`'s WAL (`<database>-wal`).
    pub(crate) fn start(database: &Path, durability: Arc<Durability>) -> io::Result<WalSyncer> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let flusher = Flusher {
            wal: PathBuf::from(wal),
            directory: database
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            directory_synced_for: None,
        };
        let (queue, pending) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("purser-wal-sync".into())
            .spawn({
                let durability = Arc::clone(&durability);
                move || flush_loop(flusher, &pending, &durability)
            })?;
        Ok(WalSyncer {
            queue,
            durability,
            thread,
        })
    }

    /// The watermark this syncer advances.
    pub(crate) fn durability(&self) -> &Arc<Durability> {
        &self.durability
    }

    /// True once a flush failed: the store must take no more writes.
    pub(crate) fn failed(&self) -> bool {
        self.durability.failed()
    }

    /// Queues a batch's answers behind the next flush.
    pub(crate) fn deliver(&self, answers: Answers) {
        if let Err(mpsc::SendError(answers)) = self.queue.send(answers) {
            // The thread is gone (it cannot panic on its own; only if the process
            // is going down): no flush will vouch for these.
            answers.send_not_durable();
        }
    }

    /// Waits until every queued answer has been flushed and sent.
    pub(crate) fn finish(self) {
        let WalSyncer { queue, thread, .. } = self;
        // The thread's loop ends once the queue is empty and closed.
        drop(queue);
        let _ = thread.join();
    }
}

struct Flusher {
    wal: PathBuf,
    directory: PathBuf,
    /// The WAL file (by inode) whose directory entry has been made durable.
    directory_synced_for: Option<u64>,
}

impl Flusher {
    fn flush(&mut self) -> io::Result<()> {
        let file = File::open(&self.wal)?;
        file.sync_data()?;
        self.sync_directory_once(&file)
    }

    /// A new WAL file's name lives in the directory: flush that once per file, as
    /// SQLite does when it creates one.
    #[cfg(unix)]
    fn sync_directory_once(&mut self, file: &File) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let inode = file.metadata()?.ino();
        if self.directory_synced_for != Some(inode) {
            File::open(&self.directory)?.sync_all()?;
            self.directory_synced_for = Some(inode);
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn sync_directory_once(&mut self, _file: &File) -> io::Result<()> {
        Ok(())
    }
}

fn flush_loop(mut flusher: Flusher, pending: &mpsc::Receiver<Answers>, durability: &Durability) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        group.extend(pending.try_iter());
        let wrote = group.iter().any(|answers| answers.wrote);
        let last_seq = group.iter().map(|answers| answers.seq).max().unwrap_or(0);
        let outcome = if durability.failed() {
            Err(io::Error::other("an earlier flush failed"))
        } else if wrote {
            let started = Instant::now();
            let outcome = flusher.flush();
            metrics::histogram!("purser_store_wal_flush_seconds")
                .record(started.elapsed().as_secs_f64());
            outcome
        } else {
            Ok(())
        };
        match outcome {
            Ok(()) => {
                durability.mark_durable(last_seq);
                group.into_iter().for_each(Answers::send);
            }
            Err(error) => {
                if durability.mark_failed() {
                    tracing::error!(%error, wal = %flusher.wal.display(),
                        "flushing the WAL failed; the store takes no more writes");
                }
                group.into_iter().for_each(Answers::send_not_durable);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn readers_wait_only_for_visible_commits_until_they_are_flushed() {
        let durability = Arc::new(Durability::new());
        assert!(matches!(durability.settled().now_or_never(), Some(Ok(()))));
        // Started but not yet at COMMIT: nothing of it can have been read.
        let first = durability.issue();
        assert!(matches!(durability.settled().now_or_never(), Some(Ok(()))));
        durability.may_become_visible(first);
        let waiter = tokio::spawn({
            let durability = Arc::clone(&durability);
            async move { durability.settled().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "answered before the flush");
        durability.mark_durable(first);
        assert!(matches!(waiter.await.unwrap(), Ok(())));
    }

    #[tokio::test]
    async fn a_failed_flush_fails_every_reader() {
        let durability = Arc::new(Durability::new());
        let seq = durability.issue();
        durability.may_become_visible(seq);
        assert!(durability.mark_failed());
        assert!(!durability.mark_failed(), "reported once");
        assert!(matches!(
            durability.settled().await,
            Err(StoreError::NotDurable)
        ));
    }

    #[tokio::test]
    async fn answers_leave_after_the_flush_and_raise_the_watermark() {
        let dir = std::env::temp_dir().join(format!("purser-wal-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("answers.db");
        std::fs::write(dir.join("answers.db-wal"), b"frames").unwrap();
        let durability = Arc::new(Durability::new());
        let syncer = WalSyncer::start(&database, Arc::clone(&durability)).unwrap();
        let mut receivers = Vec::new();
        for _ in 0..3 {
            let seq = durability.issue();
            durability.may_become_visible(seq);
            let (reply, answer) = oneshot::channel();
            syncer.deliver(Answers {
                replies: vec![(reply, Err(StoreError::CommitFailed))],
                wrote: true,
                seq,
            });
            receivers.push(answer);
        }
        syncer.finish();
        for answer in receivers {
            assert!(matches!(
                answer.await.unwrap(),
                Err(StoreError::CommitFailed)
            ));
        }
        assert_eq!(durability.watermark.borrow().durable_seq, 3);
        assert!(matches!(durability.settled().now_or_never(), Some(Ok(()))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
