//! Logins to the mail servers: their state, kept in the database for `maildesk status`, and the
//! admins' mail when authentication keeps failing and when it works again.
//!
//! Intake that stops because a secret expired or a grant was revoked must not be found out from a
//! user days later. Each server's state (failing since when, the last error, the token's expiry,
//! whether the admins were told) is one row of `meta`; the alert mail is queued in the same
//! transaction that notes it was sent, so it goes once, across restarts too, never as a burst.
//! When SMTP itself is what fails, the alert waits in the outbox like any mail, and `status` shows
//! that it waits.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::store::{self, StoreError};
use crate::templates::Rendered;

/// The periodic check: a login waiting in back-off reports nothing new, yet its failures may have
/// lasted `alert_after` meanwhile.
pub struct LoginWatch {
    pub config: std::sync::Arc<Config>,
    pub database: std::path::PathBuf,
    pub outbox: std::sync::Arc<tokio::sync::Notify>,
    pub shutdown: crate::shutdown::Shutdown,
}

impl LoginWatch {
    pub async fn run(mut self) {
        let every = (self.config.helpdesk.alert_after / 10).clamp(Duration::from_secs(5), Duration::from_secs(30));
        loop {
            if self.shutdown.sleep(every).await {
                return;
            }
            for server in Server::all(&self.config) {
                let noted = tokio::task::block_in_place(|| -> Result<_, StoreError> {
                    let mut conn = store::open(&self.database)?;
                    record(&mut conn, &self.config, &server, &Outcome::Tick, store::now())
                });
                match noted {
                    Ok(Some(_)) => self.outbox.notify_one(),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot check the logins' state"),
                }
            }
        }
    }
}

/// Which login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// The `[imap]` account (its folders that queues read too).
    Imap,
    Smtp,
    /// A queue's own mailbox (`[queues.imap]`), by its queue's name.
    QueueImap {
        queue: String,
    },
}

impl Server {
    /// Every login the desk makes: `[imap]`, SMTP, then each queue's own mailbox.
    pub fn all(config: &Config) -> Vec<Server> {
        let mut all = vec![Server::Imap, Server::Smtp];
        for q in &config.queues {
            if let crate::config::QueueMailbox::Own { .. } = q.mailbox {
                all.push(Server::QueueImap { queue: q.name.clone() });
            }
        }
        all
    }

    pub fn name(&self) -> String {
        match self {
            Server::Imap => "IMAP".into(),
            Server::Smtp => "SMTP".into(),
            Server::QueueImap { queue } => format!("IMAP (queue {queue})"),
        }
    }

    fn meta_key(&self) -> String {
        match self {
            Server::Imap => "login:imap".into(),
            Server::Smtp => "login:smtp".into(),
            Server::QueueImap { queue } => format!("login:imap:{queue}"),
        }
    }
}

/// One server's login state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// When the current run of failures began; `None` while logins work.
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
    pub last_ok: Option<i64>,
    /// The access token's expiry, for OAuth logins.
    pub token_expires_at: Option<i64>,
    /// The admins were told of the current run of failures (reset by the recovery mail).
    pub alerted: bool,
}

/// What happened, as a login reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok {
        token_expires_at: Option<i64>,
    },
    Failed(String),
    /// Nothing new: only time passed (the periodic check).
    Tick,
}

/// What the admins are to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Failing,
    Recovered,
}

/// The next state, and the notice it calls for. Pure.
pub fn observe(
    state: &LoginState,
    outcome: &Outcome,
    now: i64,
    alert_after: i64,
    has_admins: bool,
) -> (LoginState, Option<Notice>) {
    let mut next = state.clone();
    match outcome {
        Outcome::Ok { token_expires_at } => {
            let notice = state.alerted.then_some(Notice::Recovered);
            next.failing_since = None;
            next.alerted = false;
            next.last_ok = Some(now);
            next.token_expires_at = *token_expires_at;
            return (next, notice);
        }
        Outcome::Failed(e) => {
            next.failing_since = Some(state.failing_since.unwrap_or(now));
            next.last_error = Some(e.clone());
        }
        Outcome::Tick => {}
    }
    match next.failing_since {
        Some(since) if !next.alerted && has_admins && now - since >= alert_after => {
            next.alerted = true;
            (next, Some(Notice::Failing))
        }
        _ => (next, None),
    }
}

pub fn load(conn: &Connection, server: &Server) -> rusqlite::Result<LoginState> {
    Ok(store::get_meta(conn, &server.meta_key())?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
}

/// Notes `outcome` for `server`, and queues the admins' mail it calls for, in one transaction.
/// Writes nothing when nothing changed (a login that works, again). Returns the notice queued.
pub fn record(
    conn: &mut Connection,
    config: &Config,
    server: &Server,
    outcome: &Outcome,
    now: i64,
) -> Result<Option<Notice>, StoreError> {
    let alert_after = config.helpdesk.alert_after.as_secs() as i64;
    let has_admins = !config.helpdesk.admins.is_empty();
    // Most calls change nothing: look before taking the write lock.
    let current = load(conn, server)?;
    let (next, _) = observe(&current, outcome, now, alert_after, has_admins);
    if next == current || (matches!(outcome, Outcome::Ok { .. }) && unchanged_but_time(&current, &next)) {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = load(&tx, server)?;
    let (next, notice) = observe(&current, outcome, now, alert_after, has_admins);
    store::set_meta(&tx, &server.meta_key(), &serde_json::to_string(&next).unwrap_or_default())?;
    if let Some(n) = notice {
        queue_notice(&tx, config, server, n, &next, now)?;
    }
    tx.commit()?;
    Ok(notice)
}

/// A working login that only moved `last_ok` is not written each time (an SMTP connection per
/// mail would write per mail); a minute's staleness is enough for `status`.
fn unchanged_but_time(current: &LoginState, next: &LoginState) -> bool {
    let same = LoginState { last_ok: current.last_ok, ..next.clone() };
    same == *current && next.last_ok.zip(current.last_ok).is_some_and(|(n, c)| n - c < 60)
}

/// The alert text. Pure.
pub fn notice_text(desk: &str, server: &Server, notice: Notice, state: &LoginState, now: i64) -> Rendered {
    let name = server.name();
    let error = state.last_error.as_deref().unwrap_or("(no error recorded)");
    match notice {
        Notice::Failing => {
            let since = state.failing_since.unwrap_or(now);
            let minutes = (now - since).max(0) / 60;
            let effect = match server {
                Server::Imap | Server::QueueImap { .. } => {
                    "New mail to the desk is not being read: no tickets are opened and no requester is acknowledged until this is fixed. Nothing is lost: the mail waits in the mailbox."
                }
                Server::Smtp => {
                    "Mail from the desk is not being sent: acknowledgements, replies and escalations wait in the outbox and go out once this is fixed (this alert may reach you only then)."
                }
            };
            Rendered {
                subject: format!("{desk}: {name} login failing for {minutes} min"),
                text: format!(
                    "maildesk cannot log in to the {name} server, and has not been able to for {minutes} minutes.\n\n\
                     {effect}\n\nThe last error:\n\n  {error}\n\n\
                     `maildesk status` shows the current state, and `maildesk check --connect` tries both logins\n\
                     step by step. You get one more mail when the login works again.\n"
                ),
                html: None,
            }
        }
        Notice::Recovered => Rendered {
            subject: format!("{desk}: {name} login works again"),
            text: format!(
                "maildesk logged in to the {name} server again. Mail that waited meanwhile is being processed.\n\n\
                 The error before was:\n\n  {error}\n"
            ),
            html: None,
        },
    }
}

/// Queues one mail to the admins (no ticket): composed now, sent by the sender like any mail.
fn queue_notice(
    conn: &Connection,
    config: &Config,
    server: &Server,
    notice: Notice,
    state: &LoginState,
    now: i64,
) -> Result<(), StoreError> {
    let h = &config.helpdesk;
    if h.admins.is_empty() {
        return Ok(());
    }
    let rendered = notice_text(&h.name, server, notice, state, now);
    let kind = match notice {
        Notice::Failing => "login-failing",
        Notice::Recovered => "login-recovered",
    };
    let key = server.name().to_ascii_lowercase().replace([' ', '(', ')'], "");
    let mail = super::deskmail::DeskMail {
        kind,
        to: &h.admins,
        reply_to: None,
        key: &key,
        in_reply_to: None,
        rendered: &rendered,
        auto_submitted: "auto-generated",
    };
    if !super::deskmail::queue(conn, config, &mail, now)? {
        return Ok(());
    }
    tracing::warn!(server = %server.name(), notice = kind, admins = h.admins.len(), "admins told about the login");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: i64 = 600;

    fn run(outcomes: &[(i64, Outcome)]) -> (LoginState, Vec<(i64, Notice)>) {
        let mut state = LoginState::default();
        let mut notices = Vec::new();
        for (at, o) in outcomes {
            let (next, n) = observe(&state, o, *at, AFTER, true);
            state = next;
            notices.extend(n.map(|n| (*at, n)));
        }
        (state, notices)
    }

    fn failed() -> Outcome {
        Outcome::Failed("535 refused".into())
    }

    #[test]
    fn one_alert_after_the_delay_and_one_recovery_never_a_burst() {
        let mut outcomes: Vec<(i64, Outcome)> = (0..40).map(|i| (i * 30, failed())).collect();
        outcomes.push((1300, Outcome::Tick));
        outcomes.push((1400, Outcome::Ok { token_expires_at: Some(5000) }));
        outcomes.push((1500, Outcome::Ok { token_expires_at: Some(5000) }));
        let (state, notices) = run(&outcomes);
        assert_eq!(notices, vec![(600, Notice::Failing), (1400, Notice::Recovered)]);
        assert_eq!(state.failing_since, None);
        assert_eq!(state.token_expires_at, Some(5000));
        assert_eq!(state.last_error.as_deref(), Some("535 refused"), "the last error stays for status");
    }

    #[test]
    fn a_short_outage_tells_nobody() {
        let (_, notices) = run(&[(0, failed()), (300, failed()), (400, Outcome::Ok { token_expires_at: None })]);
        assert!(notices.is_empty());
    }

    #[test]
    fn the_periodic_check_alerts_while_the_login_waits_in_back_off() {
        let (_, notices) = run(&[(0, failed()), (610, Outcome::Tick), (620, Outcome::Tick)]);
        assert_eq!(notices, vec![(610, Notice::Failing)]);
    }

    #[test]
    fn without_admins_nothing_is_queued_and_no_recovery_follows() {
        let (state, n) = observe(&LoginState::default(), &failed(), 0, AFTER, false);
        let (state, n2) = observe(&state, &failed(), 10_000, AFTER, false);
        let (_, n3) = observe(&state, &Outcome::Ok { token_expires_at: None }, 10_001, AFTER, false);
        assert_eq!((n, n2, n3), (None, None, None));
    }

    #[test]
    fn the_alert_says_what_stopped_and_the_error() {
        let state =
            LoginState { failing_since: Some(0), last_error: Some("wrong secret".into()), ..Default::default() };
        let r = notice_text("ACME IT", &Server::Imap, Notice::Failing, &state, 900);
        assert_eq!(r.subject, "ACME IT: IMAP login failing for 15 min");
        assert!(r.text.contains("wrong secret") && r.text.contains("not being read"));
    }
}
