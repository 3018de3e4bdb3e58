//! Liveness, for systemd. The watcher and the sender note here when they make progress and when
//! they wait; the daemon tells systemd `READY=1` once the database is open and the first IMAP login
//! worked, pings its watchdog only while neither task is stuck, and keeps a `STATUS=` line with the
//! last intake (see `daemon`).
//!
//! A task that waits (IDLE, a poll interval, a back-off after an error) is healthy however long it
//! waits: that is its loop working. A task is stuck when it has been busy for longer than the
//! watchdog's interval without any progress: a read the server never answers, a write that never
//! returns. systemd then restarts the service, and the database's commits make that safe.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The tasks whose progress is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Watcher,
    Sender,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Watcher => "the IMAP watcher",
            Task::Sender => "the outbox sender",
        }
    }
}

/// One task's last sign of life.
#[derive(Default)]
struct Beat {
    /// Milliseconds since the daemon started, when the task last made progress or began to wait.
    at_ms: AtomicU64,
    waiting: AtomicBool,
}

/// Shared by the tasks and the daemon's notifier.
pub struct Health {
    epoch: Instant,
    watcher: Beat,
    sender: Beat,
    imap_ready: AtomicBool,
    /// Unix seconds of the last batch recorded; 0 before the first.
    last_intake: AtomicI64,
    recorded: AtomicU64,
    quarantined: AtomicU64,
    imap_auth_failures: AtomicU64,
    smtp_auth_failures: AtomicU64,
}

/// What the tasks counted since the daemon started, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub recorded: u64,
    pub quarantined: u64,
    pub imap_auth_failures: u64,
    pub smtp_auth_failures: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            epoch: Instant::now(),
            watcher: Beat::default(),
            sender: Beat::default(),
            imap_ready: AtomicBool::new(false),
            last_intake: AtomicI64::new(0),
            recorded: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            imap_auth_failures: AtomicU64::new(0),
            smtp_auth_failures: AtomicU64::new(0),
        }
    }
}

impl Health {
    fn beat(&self, task: Task) -> &Beat {
        match task {
            Task::Watcher => &self.watcher,
            Task::Sender => &self.sender,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// `task` made progress, or starts a piece of work.
    pub fn busy(&self, task: Task) {
        let b = self.beat(task);
        b.at_ms.store(self.now_ms(), Ordering::Relaxed);
        b.waiting.store(false, Ordering::Relaxed);
    }

    /// `task` waits for mail, time or a retry: healthy however long it waits.
    pub fn waiting(&self, task: Task) {
        let b = self.beat(task);
        b.at_ms.store(self.now_ms(), Ordering::Relaxed);
        b.waiting.store(true, Ordering::Relaxed);
    }

    /// The first IMAP login worked (and the watcher has its database open).
    pub fn imap_ready(&self) {
        self.imap_ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.imap_ready.load(Ordering::Relaxed)
    }

    /// A batch of `n` messages was recorded at `now` (Unix seconds), `quarantined` of them into
    /// the quarantine.
    pub fn recorded(&self, n: usize, quarantined: usize, now: i64) {
        self.recorded.fetch_add(n as u64, Ordering::Relaxed);
        self.quarantined.fetch_add(quarantined as u64, Ordering::Relaxed);
        self.last_intake.store(now, Ordering::Relaxed);
    }

    /// The IMAP server refused the login.
    pub fn imap_auth_failed(&self) {
        self.imap_auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The SMTP server refused the authentication.
    pub fn smtp_auth_failed(&self) {
        self.smtp_auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> Counts {
        Counts {
            recorded: self.recorded.load(Ordering::Relaxed),
            quarantined: self.quarantined.load(Ordering::Relaxed),
            imap_auth_failures: self.imap_auth_failures.load(Ordering::Relaxed),
            smtp_auth_failures: self.smtp_auth_failures.load(Ordering::Relaxed),
        }
    }

    /// The task that has been busy without progress for longer than `limit`, if one has.
    pub fn stuck(&self, limit: Duration) -> Option<Task> {
        let now = self.now_ms();
        [Task::Watcher, Task::Sender].into_iter().find(|t| {
            let b = self.beat(*t);
            stuck(now, b.at_ms.load(Ordering::Relaxed), b.waiting.load(Ordering::Relaxed), limit)
        })
    }

    /// The `STATUS=` line: what the desk has taken in since it started, and when it last did.
    pub fn status(&self, tz: &jiff::tz::TimeZone) -> String {
        let n = self.recorded.load(Ordering::Relaxed);
        match self.last_intake.load(Ordering::Relaxed) {
            0 if self.is_ready() => "watching the mailbox; no new mail since start".into(),
            0 => "connecting to the IMAP server".into(),
            at => format!(
                "watching the mailbox; {n} message(s) recorded since start, the last at {}",
                crate::templates::local_time(tz, Some(at))
            ),
        }
    }
}

/// Pure: busy since `at_ms` (not waiting) for longer than `limit` at `now_ms`.
fn stuck(now_ms: u64, at_ms: u64, waiting: bool, limit: Duration) -> bool {
    !waiting && now_ms.saturating_sub(at_ms) > limit.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_task_without_progress_is_stuck() {
        let limit = Duration::from_secs(60);
        assert!(!stuck(10_000, 0, false, limit), "busy for 10 s");
        assert!(stuck(61_000, 0, false, limit), "busy for 61 s without progress");
        assert!(!stuck(3_600_000, 0, true, limit), "waiting an hour is a loop at rest");
        let h = Health::default();
        h.busy(Task::Watcher);
        h.waiting(Task::Sender);
        assert_eq!(h.stuck(Duration::from_secs(60)), None, "progress just now");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(h.stuck(Duration::from_millis(1)), Some(Task::Watcher));
        h.waiting(Task::Watcher);
        assert_eq!(h.stuck(Duration::from_millis(1)), None);
    }

    #[test]
    fn the_status_says_what_came_in_and_when() {
        let h = Health::default();
        assert_eq!(h.status(&jiff::tz::TimeZone::UTC), "connecting to the IMAP server");
        h.imap_ready();
        assert!(h.status(&jiff::tz::TimeZone::UTC).contains("no new mail since start"));
        h.recorded(3, 0, 1_795_341_600);
        let s = h.status(&jiff::tz::TimeZone::UTC);
        assert!(s.contains("3 message(s) recorded since start") && s.contains("2026"), "{s}");
    }
}
