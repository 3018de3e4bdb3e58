//! `maildesk run`: wires the tasks together and stops them cleanly.
//!
//! Three tasks, one per concern: the IMAP [`Watcher`] turns mail into committed tickets and outbox
//! rows; the SLA `Sweeper` queues escalations as levels come due; the outbox [`Sender`] delivers
//! committed rows. They share nothing but the database file and a `Notify` that lets the first two
//! wake the sender after a commit. On SIGTERM/SIGINT both finish
//! what they hold and return; if that takes longer than [`STOP_GRACE`], the process exits anyway,
//! which is safe because every change is a whole SQLite transaction.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::Config;
use crate::inbound::imap::Watcher;
use crate::outbound::sender::Sender;
use crate::templates::Templates;
use crate::{shutdown, store};

pub const STOP_GRACE: Duration = Duration::from_secs(20);

pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::tls::install_provider();
    let templates = Templates::load(&config.helpdesk.templates)?;
    let database = config.helpdesk.database.clone();
    {
        // Fail fast on an unusable database, before anything is fetched.
        let conn = store::open(&database)?;
        store::instance_token(&conn).context("database is not writable")?;
    }
    info!(
        config = %config.source.display(),
        database = %database.display(),
        imap = %format!("{}:{}/{}", config.imap.host, config.imap.port, config.imap.mailbox),
        smtp = %format!("{}:{}", config.smtp.host, config.smtp.port),
        "maildesk {} starting", env!("CARGO_PKG_VERSION")
    );
    let config = Arc::new(config);
    let (trigger, stop) = shutdown::channel();
    let outbox = Arc::new(Notify::new());

    let templates = Arc::new(templates);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(
        Watcher {
            config: config.clone(),
            templates: templates.clone(),
            database: database.clone(),
            outbox: outbox.clone(),
            shutdown: stop.clone(),
        }
        .run(),
    );
    tasks.spawn(
        crate::sla::sweep::Sweeper {
            config: config.clone(),
            templates,
            database: database.clone(),
            outbox: outbox.clone(),
            shutdown: stop.clone(),
        }
        .run(),
    );
    tasks.spawn(Sender { config: config.clone(), database, wake: outbox, shutdown: stop }.run());

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: finishing the work in hand, then stopping"),
        _ = int.recv() => info!("SIGINT: finishing the work in hand, then stopping"),
        Some(res) = tasks.join_next() => {
            if let Err(e) = res {
                warn!(error = %e, "a task ended unexpectedly; stopping");
            }
        }
    }
    trigger.fire();
    let drained = tokio::time::timeout(STOP_GRACE, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(grace = ?STOP_GRACE, "tasks did not stop in time; exiting anyway (every commit is whole)");
    }
    info!("stopped");
    Ok(())
}
