//! The shutdown protocol, written down once.
//!
//! `main` owns the [`Trigger`]; every task holds a [`Shutdown`]. On SIGTERM or SIGINT the trigger
//! fires, and each task finishes the unit of work in hand (a batch being committed, an SMTP
//! transaction in progress) before it returns. Nothing is cut in half: the database is only ever
//! changed by whole transactions, so even a task that is abandoned leaves a consistent state.

use tokio::sync::watch;

/// Fires the shutdown. Dropping it fires it too, so a panicking `main` still stops its tasks.
pub struct Trigger(watch::Sender<bool>);

/// A task's view of the shutdown: cheap to clone, and awaitable.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when shutdown has been requested (or the trigger is gone).
    pub async fn requested(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }

    /// Sleeps for `d`, or less if shutdown is requested meanwhile. Returns true when it was.
    pub async fn sleep(&mut self, d: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.is_requested(),
            _ = self.requested() => true,
        }
    }
}
