//! `maildesk run`: wires the tasks together and stops them cleanly.
//!
//! Three tasks, one per concern: the IMAP [`Watcher`] turns mail into committed tickets and outbox
//! rows; the SLA `Sweeper` queues escalations as levels come due; the outbox [`Sender`] delivers
//! committed rows. They share nothing but the database file and a `Notify` that lets the first two
//! wake the sender after a commit. On SIGTERM/SIGINT all three finish
//! what they hold and return; if that takes longer than [`STOP_GRACE`], the process exits anyway,
//! which is safe because every change is a whole SQLite transaction.
//!
//! SIGHUP reloads: the config file and templates are loaded and checked again; if anything is wrong
//! the running configuration stays (and the log says why), otherwise the tasks stop as on SIGTERM and
//! start again with the new settings.
//!
//! Under systemd (`Type=notify`), [`tell_systemd`] sends `READY=1` once the database is open and the
//! first IMAP login worked, a `STATUS=` line with the last intake, and, with `WatchdogSec=`, a
//! watchdog ping only while neither the watcher nor the sender is stuck (see [`crate::health`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::Config;
use crate::health::Health;
use crate::inbound::imap::Watcher;
use crate::outbound::sender::Sender;
use crate::shutdown;
use crate::templates::Templates;

pub const STOP_GRACE: Duration = Duration::from_secs(20);

pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::tls::install_provider();
    let mut templates = Templates::load_desk(&config)?;
    let mut config = config;
    {
        // Fail fast on an unusable database, before anything is fetched.
        // Exiting lets systemd say so and try again (Restart=on-failure); the mail waits, unread,
        // on the IMAP server.
        let hint = "the database cannot be opened for writing, or the desk's keys in it read (read-only file system, permissions, full disk?); new mail stays on the IMAP server";
        crate::desk::open(&config.helpdesk.database, &config).context(hint)?;
    }
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let health = Arc::new(Health::default());
    let notifier = tokio::spawn(tell_systemd(health.clone(), config.helpdesk.timezone.clone()));
    loop {
        info!(
            config = %config.source.display(),
            database = %config.helpdesk.database.display(),
            imap = %format!("{}:{}/{}", config.imap.host, config.imap.port, config.imap.mailbox),
            smtp = %format!("{}:{}", config.smtp.host, config.smtp.port),
            "maildesk {} starting", env!("CARGO_PKG_VERSION")
        );
        let tokens = crate::oauth::Sources::of(&config).context("setting up the OAuth token sources")?;
        let (trigger, mut tasks) = spawn(Arc::new(config.clone()), Arc::new(templates), &health, tokens);
        let reload = loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: finishing the work in hand, then stopping"); break None }
                _ = int.recv() => { info!("SIGINT: finishing the work in hand, then stopping"); break None }
                _ = hup.recv() => {
                    // Off the event loop: a password_command may take seconds (it is stopped after
                    // 10), and SIGTERM must still be heard meanwhile.
                    let current = config.clone();
                    let loading = tokio::task::spawn_blocking(move || reload(&current));
                    tokio::select! {
                        loaded = loading => match loaded {
                            Ok(Ok(next)) => { info!("SIGHUP: new config and templates are valid; restarting the tasks with them"); break Some(next) }
                            // The old configuration keeps running: a typo must not take the desk down.
                            Ok(Err(e)) => warn!(error = %format!("{e:#}"), "SIGHUP: the new configuration was rejected; keeping the old one"),
                            Err(e) => warn!(error = %e, "SIGHUP: loading the new configuration failed; keeping the old one"),
                        },
                        _ = term.recv() => { info!("SIGTERM during a reload: finishing the work in hand, then stopping"); break None }
                    }
                }
                Some(res) = tasks.join_next() => {
                    if let Err(e) = res {
                        warn!(error = %e, "a task ended unexpectedly; stopping");
                    }
                    break None;
                }
            }
        };
        if reload.is_none() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        }
        trigger.fire();
        let drained = tokio::time::timeout(STOP_GRACE, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(grace = ?STOP_GRACE, "tasks did not stop in time; going on anyway (every commit is whole)");
        }
        match reload {
            Some((c, t)) => (config, templates) = (c, t),
            None => break,
        }
    }
    notifier.abort();
    info!("stopped");
    Ok(())
}

/// Keeps systemd informed; does nothing outside systemd (no `NOTIFY_SOCKET`). Pings the watchdog
/// at a third of its interval, and skips the ping while a task is stuck, so that systemd restarts
/// the service (every commit is whole, so a restart loses nothing).
async fn tell_systemd(health: Arc<Health>, tz: jiff::tz::TimeZone) {
    use sd_notify::NotifyState;
    // Not under systemd: nobody to tell, so no status line is made every few seconds.
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled();
    let tick = watchdog
        .map(|w| w / 3)
        .unwrap_or(Duration::from_secs(5))
        .clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut ready = false;
    let mut told_stuck = false;
    loop {
        if !ready && health.is_ready() {
            ready = true;
            info!("ready: the database is open and the IMAP login worked");
            let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&health.status(&tz))]);
        }
        if ready {
            let status = health.status(&tz);
            match (watchdog, watchdog.and_then(|w| health.stuck(w))) {
                (Some(_), Some(task)) => {
                    if !told_stuck {
                        warn!(
                            task = task.name(),
                            "no progress for a whole watchdog interval: not pinging systemd's watchdog, which restarts the service"
                        );
                        told_stuck = true;
                    }
                    let line = format!("{} has made no progress for a watchdog interval", task.name());
                    let _ = sd_notify::notify(&[NotifyState::Status(&line)]);
                }
                (Some(_), None) => {
                    told_stuck = false;
                    let _ = sd_notify::notify(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
                }
                (None, _) => {
                    let _ = sd_notify::notify(&[NotifyState::Status(&status)]);
                }
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// Loads and checks the config file and templates again, for SIGHUP: all of it or nothing.
fn reload(current: &Config) -> anyhow::Result<(Config, Templates)> {
    let next = Config::load(&current.source)?;
    if next.helpdesk.database != current.helpdesk.database {
        anyhow::bail!("helpdesk.database changed; that needs a restart, not a reload");
    }
    let templates = Templates::load_desk(&next)?;
    let h = &next.helpdesk;
    templates.check(crate::templates::DeskContext {
        name: h.name.clone(),
        tag: h.tag.clone(),
        address: h.address.clone(),
    })?;
    Ok((next, templates))
}

/// Starts the tasks (and the daily housekeeping); returns the trigger that stops them and the set to wait on.
fn spawn(
    config: Arc<Config>,
    templates: Arc<Templates>,
    health: &Arc<Health>,
    tokens: crate::oauth::Sources,
) -> (shutdown::Trigger, tokio::task::JoinSet<()>) {
    let (trigger, stop) = shutdown::channel();
    let smtp_tokens = tokens.smtp.clone();
    let outbox = Arc::new(Notify::new());
    let database = config.helpdesk.database.clone();
    let mut tasks = tokio::task::JoinSet::new();
    // One watcher per mailbox, each with its own connections: a mailbox whose server fails does
    // not hold up the others. Only the `[imap]` one reports to systemd (READY, the watchdog).
    for (mailbox, tokens) in config.mailboxes().into_iter().zip(tokens.mailboxes) {
        let health = if mailbox.primary { health.clone() } else { Arc::new(Health::default()) };
        tasks.spawn(
            Watcher {
                config: config.clone(),
                templates: templates.clone(),
                database: database.clone(),
                outbox: outbox.clone(),
                shutdown: stop.clone(),
                health,
                tokens,
                misses: Default::default(),
                token_expires_at: None,
                mailbox,
            }
            .run(),
        );
    }
    tasks.spawn(
        crate::escalation::Sweeper {
            config: config.clone(),
            templates: templates.clone(),
            database: database.clone(),
            outbox: outbox.clone(),
            shutdown: stop.clone(),
        }
        .run(),
    );
    if let Some(listen) = config.metrics_listen {
        tasks.spawn(
            crate::metrics::MetricsServer {
                listen,
                database: database.clone(),
                health: health.clone(),
                shutdown: stop.clone(),
            }
            .run(),
        );
    }
    if config.digests.daily.is_some() || config.digests.weekly.is_some() {
        tasks.spawn(
            crate::digest::Scheduler {
                config: config.clone(),
                templates: templates.clone(),
                database: database.clone(),
                outbox: outbox.clone(),
                shutdown: stop.clone(),
            }
            .run(),
        );
    }
    tasks.spawn(
        crate::housekeeping::Housekeeper { config: config.clone(), database: database.clone(), shutdown: stop.clone() }
            .run(),
    );
    tasks.spawn(
        crate::outbound::login_alerts::LoginWatch {
            config: config.clone(),
            database: database.clone(),
            outbox: outbox.clone(),
            shutdown: stop.clone(),
        }
        .run(),
    );
    tasks.spawn(
        Sender { config, database, wake: outbox, shutdown: stop, health: health.clone(), tokens: smtp_tokens }.run(),
    );
    (trigger, tasks)
}
