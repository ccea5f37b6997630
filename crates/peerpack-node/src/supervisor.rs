//! Every task a node starts, and what happens when one ends.
//!
//! - **Core tasks** (the network event handler, the periodic task, the API server) run for the
//!   node's whole life. If one ends before shutdown, by returning or by panicking, the node is
//!   broken: [`CoreTasks::failed`] resolves with the reason, and the node stops instead of
//!   looking healthy while it no longer reacts.
//! - **Work** (answering a sync or blob request, pulling a peer's catalogue, an install that
//!   outlives its HTTP client) is spawned with [`Supervisor::spawn`]. It is tracked, and
//!   cancelled and awaited on shutdown, so nothing of a stopped node keeps running.

use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for cancelled work to finish.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Owns the node's tasks.
#[derive(Debug, Default)]
pub struct Supervisor {
    cancel: CancellationToken,
    work: TaskTracker,
}

/// The node's core tasks; [`CoreTasks::failed`] waits for the first one to end.
#[derive(Debug, Default)]
pub struct CoreTasks {
    set: JoinSet<&'static str>,
}

impl Supervisor {
    /// Run `fut` as tracked work. It is cancelled (dropped at its next `.await`) on shutdown;
    /// the handle then answers `None`.
    pub fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<Option<T>> {
        use tracing::Instrument;
        let cancel = self.cancel.clone();
        // The work stays in the span of the code that spawned it (an install in its API
        // request's trace).
        self.work.spawn(
            async move {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => None,
                    out = fut => Some(out),
                }
            }
            .in_current_span(),
        )
    }

    /// Cancelled when the node shuts down.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// A token cancelled when the node shuts down, for tasks that outlive a borrow.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Work running now.
    pub fn running(&self) -> usize {
        self.work.len()
    }

    /// Cancel all work and wait (at most [`DRAIN`]) until it has stopped. Answers how many
    /// tasks were still running when the wait gave up.
    pub async fn shutdown(&self) -> usize {
        self.cancel.cancel();
        self.work.close();
        if tokio::time::timeout(DRAIN, self.work.wait()).await.is_err() {
            tracing::warn!(
                running = self.work.len(),
                "work still running after shutdown"
            );
        }
        self.work.len()
    }
}

impl CoreTasks {
    /// Start a core task called `name`.
    pub fn spawn(&mut self, name: &'static str, fut: impl Future<Output = ()> + Send + 'static) {
        // No span: a core task lives as long as the node, and a span that never closes would
        // hold every trace under it open until shutdown.
        self.set.spawn(async move {
            fut.await;
            name
        });
    }

    /// Wait until a core task ends, and say which and how. Pending forever when there are
    /// none.
    pub async fn failed(&mut self) -> String {
        match self.set.join_next().await {
            Some(Ok(name)) => format!("the node's {name} task stopped"),
            Some(Err(e)) if e.is_panic() => {
                let payload = e.into_panic();
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                format!("a core task of the node panicked: {what}")
            }
            Some(Err(e)) => format!("a core task of the node was cancelled: {e}"),
            None => std::future::pending().await,
        }
    }

    /// Stop every core task and wait for them.
    pub async fn stop(&mut self) {
        self.set.abort_all();
        while self.set.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Sets its flag when dropped: shows that a task's future is gone.
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn shutdown_cancels_work_that_would_run_forever_and_waits_for_it() {
        let s = Supervisor::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(dropped.clone());
        let handle = s.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        let finished = s.spawn(async { 7 });
        assert_eq!(finished.await.unwrap(), Some(7));
        assert_eq!(s.running(), 1);
        assert_eq!(s.shutdown().await, 0);
        assert!(
            dropped.load(Ordering::SeqCst),
            "the endless task's future was dropped"
        );
        assert_eq!(handle.await.unwrap(), None);
        // Nothing starts after shutdown.
        assert_eq!(s.spawn(async { 1 }).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_core_task_that_returns_is_a_failure_that_names_it() {
        let mut core = CoreTasks::default();
        core.spawn("forever", std::future::pending());
        core.spawn("events", async {});
        let reason = tokio::time::timeout(Duration::from_secs(10), core.failed())
            .await
            .unwrap();
        assert_eq!(reason, "the node's events task stopped");
        core.stop().await;
    }

    #[tokio::test]
    async fn a_core_task_that_panics_is_a_failure_that_says_why() {
        let mut core = CoreTasks::default();
        core.spawn("forever", std::future::pending());
        core.spawn("periodic", async { panic!("store on fire") });
        let reason = tokio::time::timeout(Duration::from_secs(10), core.failed())
            .await
            .unwrap();
        assert_eq!(reason, "a core task of the node panicked: store on fire");
        core.stop().await;
    }

    #[tokio::test]
    async fn no_core_task_no_failure() {
        let mut core = CoreTasks::default();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), core.failed())
                .await
                .is_err()
        );
    }
}
