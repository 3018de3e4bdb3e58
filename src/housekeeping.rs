//! The daemon's daily housekeeping: `[retention]` (see `store::retention`), once shortly after start
//! and then every day, so a desk that restarts often still runs it and one that never restarts
//! runs it daily. Does nothing when `[retention]` sets nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::store;

/// Long enough after start that intake of a backlog goes first.
const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(86_400);

pub struct Housekeeper {
    pub config: Arc<Config>,
    pub database: PathBuf,
    pub shutdown: Shutdown,
}

impl Housekeeper {
    pub async fn run(mut self) {
        let config = self.config.clone();
        let policy = &config.retention;
        if policy.drop_raw_after.is_none() && policy.delete_after.is_none() {
            // Nothing to do, but a task that ends stops the daemon: wait for the stop.
            self.shutdown.requested().await;
            return;
        }
        let mut wait = FIRST_RUN_AFTER;
        loop {
            if self.shutdown.sleep(wait).await {
                return;
            }
            wait = EVERY;
            let done = tokio::task::block_in_place(|| {
                let conn = store::open(&self.database)?;
                store::retention::run(&conn, policy, store::now(), false)
            });
            match done {
                Ok(r) => info!(
                    raw_dropped_tickets = r.raw_dropped_tickets.len(),
                    raw_dropped_messages = r.raw_dropped_messages,
                    raw_dropped_bytes = r.raw_dropped_bytes,
                    deleted_tickets = r.deleted_tickets.len(),
                    deleted_messages = r.deleted_messages,
                    "retention ran"
                ),
                Err(e) => {
                    warn!(error = %e, "retention failed; trying again in an hour");
                    wait = Duration::from_secs(3600);
                }
            }
        }
    }
}
