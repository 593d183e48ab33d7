//! Group commit: appends that arrive while one is being written share the next transaction.
//!
//! Every audit record must be durable before its reply, and durability costs one fsync per
//! transaction (and, with a log, one checkpoint signature). Under load that bound the service
//! to one record per fsync. Here each append joins a queue and then waits for the writer
//! lock; whoever holds the lock takes the whole queue, writes it in one transaction (one
//! fsync, one checkpoint) and answers every waiter. A waiter whose append was written by an
//! earlier holder finds the queue empty and returns its answer. Nothing is answered before
//! the transaction commits, so "durable before the reply" holds for each record.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use super::StorageError;

/// One queued append and where its answer goes.
type Waiter<T, R> = (T, oneshot::Sender<Result<R, String>>);

/// A queue of appends of one kind (`T` in, `R` out).
#[derive(Debug)]
pub(crate) struct GroupCommit<T, R> {
    queue: Mutex<Vec<Waiter<T, R>>>,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self { queue: Mutex::new(Vec::new()) }
    }
}

impl<T, R> GroupCommit<T, R> {
    /// Queues `item`, then, holding `writer`, writes whatever is queued with `write` (which
    /// returns one result per item, in order, after its transaction committed) and returns
    /// this item's result.
    ///
    /// # Errors
    /// The batch's [`StorageError`] (as [`StorageError::Database`] for every item of a
    /// failed batch).
    pub(crate) async fn append<W, F>(
        &self,
        writer: &tokio::sync::Mutex<()>,
        item: T,
        write: W,
    ) -> Result<R, StorageError>
    where
        W: FnOnce(Vec<T>) -> F,
        F: Future<Output = Result<Vec<R>, StorageError>>,
    {
        let (answer, answered) = oneshot::channel();
        self.lock().push((item, answer));
        {
            let _writer = writer.lock().await;
            let batch = std::mem::take(&mut *self.lock());
            if !batch.is_empty() {
                let (items, waiters): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                match write(items).await {
                    Ok(results) => {
                        for (waiter, result) in waiters.into_iter().zip(results) {
                            let _gone = waiter.send(Ok(result));
                        }
                    }
                    Err(error) => {
                        for waiter in waiters {
                            let _gone = waiter.send(Err(error.to_string()));
                        }
                    }
                }
            }
        }
        match answered.await {
            Ok(result) => result.map_err(StorageError::Database),
            Err(_) => {
                Err(StorageError::Database("the batch holding this record was abandoned".into()))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiter<T, R>>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::GroupCommit;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_batches_and_each_gets_its_own_result() {
        let group = std::sync::Arc::new(GroupCommit::<u32, u32>::default());
        let writer = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let batches = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let tasks: Vec<_> = (0..64u32)
            .map(|n| {
                let (group, writer, batches) = (group.clone(), writer.clone(), batches.clone());
                tokio::spawn(async move {
                    group
                        .append(&writer, n, |items| async move {
                            batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            Ok(items.iter().map(|i| i * 10).collect())
                        })
                        .await
                })
            })
            .collect();
        for (n, task) in (0u32..).zip(tasks) {
            assert_eq!(task.await.unwrap().unwrap(), n * 10);
        }
        assert!(batches.load(std::sync::atomic::Ordering::SeqCst) < 64);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_append_in_it() {
        let group = GroupCommit::<u32, u32>::default();
        let writer = tokio::sync::Mutex::new(());
        let failed = group
            .append(&writer, 1, |_| async {
                Err(super::StorageError::Database("disk full".into()))
            })
            .await;
        assert!(failed.unwrap_err().to_string().contains("disk full"));
    }
}
