//! [`RunningWorker`]: a worker running in the background of a test.

use lightbus::worker::{Worker, WorkerHandle};
use lightbus::Bus;

use crate::wait::within_patience;

/// A worker running in a task of its own until [`stop`](Self::stop) or drop (dropping it
/// signals the stop without waiting). A thin layer over [`WorkerHandle`] whose waits give up
/// after [`PATIENCE`](crate::PATIENCE), so a worker that never stops fails the test.
#[derive(Debug)]
pub struct RunningWorker {
    handle: WorkerHandle,
}

impl RunningWorker {
    /// Starts `worker` as configured, e.g. `Worker::new(bus).max_concurrency(4)`.
    pub fn start(worker: Worker) -> RunningWorker {
        RunningWorker {
            handle: worker.spawn(),
        }
    }

    /// Starts a worker with default settings (every feature) for `bus`.
    pub fn serve(bus: Bus) -> RunningWorker {
        RunningWorker::start(Worker::new(bus))
    }

    /// Tells the worker to stop, as a shutdown signal would, without waiting.
    pub fn signal_stop(&self) {
        self.handle.signal_stop();
    }

    /// True once the worker has returned.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops the worker and returns what it returned once drained.
    pub async fn stop(self) -> lightbus::Result<()> {
        within_patience("the worker stops", self.handle.stop()).await
    }

    /// Waits for the worker to stop by itself (a failed listener or task stops it) and
    /// returns what it returned.
    pub async fn finished(self) -> lightbus::Result<()> {
        within_patience("the worker stops by itself", self.handle.join()).await
    }
}
