//! The IMAP side of ingest: connect, find what is new, fetch it, hand it to [`record_batch`], flag it.
//!
//! "New" is decided by the database, not by the `\Seen` flag: every UID above the last one recorded
//! for this mailbox and UIDVALIDITY. On a first start (or after UIDVALIDITY changed, i.e. the mailbox
//! was recreated) there is no such mark, so maildesk takes the unseen messages and relies on the
//! Message-ID check to skip anything it already has. `\Seen` is set only after the commit, as a
//! courtesy to people looking at the mailbox.
//!
//! Waiting uses IDLE when configured and offered, else polling. Any error drops the connection and
//! reconnects with back-off: 1 s, 2 s, 4 s, ... up to 5 minutes (30 s when the database refused a
//! write), reset after a complete sync.

use crate::health::Task;
use std::collections::HashMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_imap::types::UnsolicitedResponse;
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use rusqlite::Connection;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

use super::record::{Destination, Fetched, Outcome, ParsedMessage, parse_batch, record_batch};
use crate::config::{Config, Security};
use crate::oauth::{AccessToken, TokenSource};
use crate::outbound::login_alerts::{Outcome as LoginOutcome, Server};
use crate::shutdown::Shutdown;
use crate::store::{self, MailboxState, write};
use crate::templates::Templates;

/// Anything IMAP can run over: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Stream for T {}

type ImapSession = Session<Box<dyn Stream>>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    #[error("TLS with {0}: {1}")]
    Tls(String, String),
    #[error("login as {user} failed: {cause}")]
    Login { user: String, cause: async_imap::error::Error },
    /// An XOAUTH2 login the server refused: its reason, and what to do.
    #[error("XOAUTH2 login as {user} failed: {reason}. {advice}")]
    TokenRefused { user: String, reason: String, advice: String },
    #[error("cannot get an access token: {0}")]
    Token(#[from] crate::oauth::OAuthError),
    #[error("server closed the connection before greeting")]
    NoGreeting,
    #[error(transparent)]
    Protocol(#[from] async_imap::error::Error),
    #[error("IDLE did not end in time")]
    IdleStuck,
    #[error("the IMAP server did not answer {phase} within {after:?} (imap.timeout)")]
    Timeout { phase: &'static str, after: Duration },
    #[error("the server answered a FETCH of {asked} messages with {got}, and the others still exist")]
    Incomplete { asked: usize, got: usize },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Sql(rusqlite::Error),
}

// Not `#[from]`: the message shows SQLite's words, so they are not a source as well.
impl From<rusqlite::Error> for ImapError {
    fn from(e: rusqlite::Error) -> Self {
        ImapError::Sql(e)
    }
}

/// A database that refused a write (full disk, read-only, locked) is retried at most this far apart,
/// so intake resumes soon after an admin frees space.
const MAX_DATABASE_BACKOFF: Duration = Duration::from_secs(30);

impl ImapError {
    fn is_database(&self) -> bool {
        matches!(self, ImapError::Store(_) | ImapError::Sql(_))
    }

    /// A failed login (or no token to log in with), as opposed to the network or the server
    /// failing: what the admins are told about when it lasts.
    fn is_login(&self) -> bool {
        matches!(self, ImapError::Login { .. } | ImapError::TokenRefused { .. } | ImapError::Token(_))
    }
}

/// async-imap ends the answer to SEARCH, FETCH (and its own `noop`) quietly when the connection
/// closes, so a short answer looks like a complete one. A NOOP that must end in its tagged OK fails
/// on a closed connection.
async fn confirm_complete(session: &mut ImapSession, limit: Duration) -> Result<(), ImapError> {
    bounded("NOOP", limit, session.run_command_and_check_ok("NOOP")).await?;
    Ok(())
}

/// `command`'s answer within `limit` (`imap.timeout`): a server that stops answering must not
/// stall intake. The session is then dropped and a new one made, like after any error.
async fn bounded<T, E: Into<ImapError>>(
    phase: &'static str,
    limit: Duration,
    command: impl Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, command).await {
        Ok(answer) => answer.map_err(Into::into),
        Err(_) => Err(ImapError::Timeout { phase, after: limit }),
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No line from the server for this long during IDLE means the connection is dead (Dovecot sends
/// "* OK Still here" every 2 minutes).
const IDLE_SILENCE: Duration = Duration::from_secs(5 * 60);
/// IDLE is re-issued at least this often (RFC 2177 asks for less than 29 minutes).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The ingest task: owns its IMAP connection and its own database connection.
pub struct Watcher {
    pub config: Arc<Config>,
    pub templates: Arc<Templates>,
    pub database: PathBuf,
    /// Woken after each commit that queued mail, so acknowledgements leave at once.
    pub outbox: Arc<Notify>,
    pub shutdown: Shutdown,
    /// Where this task notes its progress, for systemd's watchdog.
    pub health: Arc<crate::health::Health>,
    /// Where XOAUTH2 tokens come from, when `imap.auth` is "xoauth2".
    pub tokens: Option<Arc<crate::oauth::TokenSource>>,
    /// UIDs in a FETCH that failed, with how many times a FETCH of that message alone failed
    /// (see [`note_misses`]). Only this task touches it.
    pub(crate) misses: HashMap<u32, u32>,
    /// When the current session's access token expires (XOAUTH2 only).
    pub(crate) token_expires_at: Option<i64>,
    /// The mailbox this watcher reads, and the queue its mail lands in by default.
    pub mailbox: crate::config::WatchedMailbox,
}

/// After this many FETCHes of a message alone that fail or leave it out while the server still
/// lists it, the message is quarantined (reason, UID, no bytes), so that one message the server
/// cannot read does not stop all intake.
const MAX_MISSES: u32 = 3;

/// Records messages the server keeps failing to return as quarantined (reason and UID, no
/// bytes; the message stays on the server), moving the mark past them when `advance` is set.
fn quarantine_unreadable(
    conn: &mut Connection,
    misses: &mut HashMap<u32, u32>,
    (mailbox, uid_validity): (&str, u32),
    uids: &[u32],
    advance: bool,
) -> Result<(), ImapError> {
    let reason = format!(
        "the IMAP server failed to return this message {MAX_MISSES} times in a row, though it still lists \
         it; it stays in the mailbox and was not recorded (look at the server's log)"
    );
    let now = store::now();
    tokio::task::block_in_place(|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        for uid in uids {
            if !write::uid_known(&tx, mailbox, uid_validity, *uid)? {
                write::insert_quarantine(&tx, (mailbox, uid_validity, *uid), &reason, &[], now)?;
            }
        }
        if let (true, Some(last)) = (advance, uids.iter().max()) {
            store::set_mailbox_state(&tx, mailbox, MailboxState { uid_validity, last_uid: *last })?;
        }
        tx.commit()
    })?;
    uids.iter().for_each(|u| _ = misses.remove(u));
    error!(uids = ?uids, "{reason}; quarantined so that intake goes on");
    Ok(())
}

/// An IMAP sequence set for ascending UIDs, runs written as ranges: "4:5,9". Short enough for a
/// backlog of thousands in one command (Dovecot refuses lines over 64 KiB).
fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for uid in uids {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(uid) => *end = uid,
            _ => runs.push((uid, uid)),
        }
    }
    let run = |(a, b): (u32, u32)| if a == b { a.to_string() } else { format!("{a}:{b}") };
    runs.into_iter().map(run).collect::<Vec<_>>().join(",")
}

/// A batch also stops at this many bytes of mail (a single larger message is a batch of its
/// own), so memory stays bounded however large the messages in a backlog are.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// Cuts ascending UIDs into batches of at most `max_count` messages and [`BATCH_BYTES`]. A UID
/// without a known size counts as empty.
fn batches(uids: &[u32], sizes: &HashMap<u32, u64>, max_count: usize) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut bytes = 0;
    for uid in uids {
        let size = sizes.get(uid).copied().unwrap_or(0);
        match out.last_mut() {
            Some(b) if b.len() < max_count && bytes + size <= BATCH_BYTES => {
                b.push(*uid);
                bytes += size;
            }
            _ => {
                out.push(vec![*uid]);
                bytes = size;
            }
        }
    }
    out
}

/// Sets `\Seen` on messages already recorded: a courtesy to people looking at the mailbox.
async fn mark_seen(session: &mut ImapSession, uids: &[u32], limit: Duration) -> Result<(), ImapError> {
    if uids.is_empty() {
        return Ok(());
    }
    bounded("STORE", limit, async {
        let answers = session.uid_store(uid_set(uids.iter().copied()), "+FLAGS.SILENT (\\Seen)").await?;
        let _: Vec<_> = answers.try_collect().await?;
        Ok::<_, async_imap::error::Error>(())
    })
    .await
}

/// The full messages of `chunk` (ascending UIDs); answers about messages not asked for are dropped.
/// Each answer is copied out and dropped as it arrives, so a batch is held once, not twice.
async fn fetch_bodies(session: &mut ImapSession, chunk: &[u32], limit: Duration) -> Result<Vec<Fetched>, ImapError> {
    bounded("a FETCH", limit, async {
        let mut answers = session.uid_fetch(uid_set(chunk.iter().copied()), "(UID BODY.PEEK[])").await?;
        let mut fetched = Vec::with_capacity(chunk.len());
        while let Some(f) = answers.try_next().await? {
            if let (Some(uid), Some(body)) = (f.uid, f.body())
                && chunk.binary_search(&uid).is_ok()
            {
                fetched.push(Fetched { uid, raw: body.to_vec() });
            }
        }
        Ok::<_, async_imap::error::Error>(fetched)
    })
    .await
}

/// The size of each message, so that batches can be cut by bytes before anything is fetched.
async fn message_sizes(session: &mut ImapSession, uids: &[u32]) -> Result<HashMap<u32, u64>, ImapError> {
    if uids.len() < 2 {
        return Ok(HashMap::new());
    }
    // Each answer is folded in and dropped at once: async-imap's answers each keep the whole read
    // buffer they were cut from, so collecting 10,000 of them first held 40 MB (heaptrack).
    let answers = session.uid_fetch(uid_set(uids.iter().copied()), "(UID RFC822.SIZE)").await?;
    answers
        .try_fold(HashMap::with_capacity(uids.len()), |mut sizes, f| async move {
            if let (Some(uid), Some(size)) = (f.uid, f.size) {
                sizes.insert(uid, u64::from(size));
            }
            Ok(sizes)
        })
        .await
        .map_err(ImapError::from)
}

/// Notes a failed FETCH of `uids`. Only a FETCH of one message alone counts towards
/// [`MAX_MISSES`]: a batch that fails is merely split, so a flapping network does not get good
/// messages quarantined.
fn note_misses(misses: &mut HashMap<u32, u32>, uids: &[u32]) {
    for uid in uids {
        *misses.entry(*uid).or_insert(0) += u32::from(uids.len() == 1);
    }
}

/// The meta key of when a mailbox last synced: `last_imap_ok` for the `[imap]` one (as before
/// queues), `last_imap_ok:KEY` for the others.
pub fn last_ok_key(mailbox: &crate::config::WatchedMailbox) -> String {
    if mailbox.primary { "last_imap_ok".into() } else { format!("last_imap_ok:{}", mailbox.key) }
}

/// The meta key of the last error that ended a session of this mailbox.
pub fn error_key(mailbox: &crate::config::WatchedMailbox) -> String {
    format!("imap_error:{}", mailbox.key)
}

impl Watcher {
    pub async fn run(mut self) {
        let mut backoff = Duration::from_secs(1);
        let endpoint = format!("{}:{}/{}", self.mailbox.imap.host, self.mailbox.imap.port, self.mailbox.label);
        loop {
            if self.shutdown.is_requested() {
                return;
            }
            self.health.busy(Task::Watcher);
            match self.connected(&mut backoff).await {
                Ok(Ended::Shutdown) => return,
                Ok(Ended::TokenRenewal) => {
                    info!(imap = %endpoint, "the access token is due for renewal: starting a new session with a fresh one");
                }
                Err(e) if e.is_database() => {
                    // Locked by another writer, full, read-only: nothing of the batch committed, so
                    // nothing was flagged, and the messages wait on the server.
                    error!(error = %e, retry_in = ?backoff,
                           "cannot record new mail: the database refused the write; new mail stays unread on the IMAP server until it can be recorded");
                    self.health.waiting(Task::Watcher);
                    if self.shutdown.sleep(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_DATABASE_BACKOFF);
                }
                // A server that ends the session when its token expires (Exchange: "BYE Session
                // invalidated - AccessTokenExpired"; Gmail: "BYE Session expired") before maildesk
                // renewed it: an ordinary reconnect, with a fresh token, at once.
                Err(e) if !e.is_login() && self.token_expires_at.is_some_and(|at| store::now() + 60 >= at) => {
                    info!(imap = %endpoint, error = %e, "the session ended as its access token expired; reconnecting with a fresh one");
                    self.token_expires_at = None;
                }
                Err(e) => {
                    if e.is_login() {
                        self.health.imap_auth_failed();
                        self.note_login(&LoginOutcome::Failed(e.to_string()));
                    }
                    self.note_error(&e);
                    warn!(imap = %endpoint, error = %e, retry_in = ?backoff, "IMAP session ended; reconnecting");
                    self.health.waiting(Task::Watcher);
                    if self.shutdown.sleep(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Notes why this mailbox's session ended, for `status` (each mailbox shows its own).
    fn note_error(&self, e: &ImapError) {
        let noted = tokio::task::block_in_place(|| -> Result<_, store::StoreError> {
            let conn = store::open(&self.database)?;
            let value = serde_json::json!({ "at": store::now(), "error": e.to_string() });
            Ok(store::set_meta(&conn, &error_key(&self.mailbox), &value.to_string())?)
        });
        if let Err(e) = noted {
            warn!(error = %e, "cannot note the IMAP error for status");
        }
    }

    /// Notes a login's outcome for `status` and the admins' alerts. A database that cannot take
    /// the note does not stop intake: the log has the failure anyway.
    fn note_login(&self, outcome: &LoginOutcome) {
        let noted = tokio::task::block_in_place(|| -> Result<_, store::StoreError> {
            let mut conn = store::open(&self.database)?;
            let server = match &self.mailbox.own_account {
                Some(queue) => Server::QueueImap { queue: queue.clone() },
                None => Server::Imap,
            };
            crate::outbound::login_alerts::record(&mut conn, &self.config, &server, outcome, store::now())
        });
        match noted {
            Ok(Some(_)) => self.outbox.notify_one(),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot note the IMAP login's state"),
        }
    }

    /// One connection's life. Returns Ok on shutdown, and when the session's token is due for
    /// renewal.
    async fn connected(&mut self, backoff: &mut Duration) -> Result<Ended, ImapError> {
        let (mut conn, keys) = crate::desk::open(&self.database, &self.config)?;
        let mailbox = self.mailbox.clone();
        let imap = &mailbox.imap;
        let token = match &self.tokens {
            Some(source) => Some(source.token().await?),
            None => None,
        };
        let login = match (&self.tokens, &token) {
            (Some(source), Some(t)) => Login::Token { user: &source.user, token: t, source },
            _ => Login::Password,
        };
        let mut session = bounded("the greeting, TLS and login", imap.timeout, connect(imap, login)).await?;
        // When this session must end so that the next one logs in with a fresh token.
        let renew_at = token.as_ref().map(|t| t.renew_at());
        self.token_expires_at = token.as_ref().map(|t| t.expires_at);
        self.note_login(&LoginOutcome::Ok { token_expires_at: token.as_ref().map(|t| t.expires_at) });
        let use_idle = imap.idle && bounded("CAPABILITY", imap.timeout, session.capabilities()).await?.has_str("IDLE");
        let mailbox = bounded("SELECT", imap.timeout, session.select(&imap.mailbox)).await?;
        let uid_validity = mailbox.uid_validity.unwrap_or(0);
        let uid_next = mailbox.uid_next.unwrap_or(1);
        info!(mailbox = %imap.mailbox, uid_validity, exists = mailbox.exists, idle = use_idle, "IMAP connected");
        self.health.imap_ready();

        loop {
            self.health.busy(Task::Watcher);
            let whole = self.sync(&mut session, &mut conn, &keys, (uid_validity, uid_next), renew_at).await?;
            // Only a whole sync proves the trouble is over: a database that refuses every batch
            // must not be retried at the pace of a fresh connection.
            *backoff = Duration::from_secs(1);
            store::set_meta(&conn, &last_ok_key(&self.mailbox), &store::now().to_string())?;
            if !whole {
                // A backlog outlasted the token: the rest is fetched by the next session.
                let _ = bounded("LOGOUT", imap.timeout, session.logout()).await;
                return Ok(Ended::TokenRenewal);
            }
            if self.shutdown.is_requested() {
                let _ = bounded("LOGOUT", imap.timeout, session.logout()).await;
                return Ok(Ended::Shutdown);
            }
            if renew_at.is_some_and(|at| store::now() >= at) {
                let _ = bounded("LOGOUT", imap.timeout, session.logout()).await;
                return Ok(Ended::TokenRenewal);
            }
            if has_new_mail(&session) {
                continue;
            }
            self.health.waiting(Task::Watcher);
            // Leave IDLE (or the poll's sleep) in time to renew the token.
            let wait = renew_at.map_or(imap.poll_interval, |at| {
                imap.poll_interval.min(Duration::from_secs((at - store::now()).max(1) as u64))
            });
            if use_idle {
                session = self.idle(session, wait).await?;
            } else if self.shutdown.sleep(wait).await {
                let _ = bounded("LOGOUT", imap.timeout, session.logout()).await;
                return Ok(Ended::Shutdown);
            }
        }
    }

    /// Fetches and records everything new, in batches. Returns false when it stopped between two
    /// batches because the session's token is due for renewal (`renew_at`): what is committed is
    /// flagged, and the next session, with a fresh token, goes on from the mark.
    async fn sync(
        &mut self,
        session: &mut ImapSession,
        conn: &mut Connection,
        keys: &crate::desk::Keys,
        (uid_validity, uid_next): (u32, u32),
        renew_at: Option<i64>,
    ) -> Result<bool, ImapError> {
        let name = &self.mailbox.key;
        let limit = self.mailbox.imap.timeout;
        let state = store::mailbox_state(conn, name)?;
        let (query, after) = match state {
            Some(s) if s.uid_validity == uid_validity => {
                (format!("UID {}:*", s.last_uid.saturating_add(1)), s.last_uid)
            }
            Some(s) => {
                warn!(mailbox = %name, old = s.uid_validity, new = uid_validity,
                      "UIDVALIDITY changed (mailbox recreated?): taking unseen messages, skipping known Message-IDs");
                ("UNSEEN".to_string(), 0)
            }
            None => ("UNSEEN".to_string(), 0),
        };
        // `n:*` always matches the highest UID, even below n: filter.
        let found = bounded("SEARCH", limit, session.uid_search(&query)).await?;
        if found.is_empty() {
            // An empty answer may be a lost connection: on the first sync that would move the
            // mark past every message in the mailbox.
            confirm_complete(session, limit).await?;
        }
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > after).collect();
        uids.sort_unstable();
        let current = state.is_some_and(|s| s.uid_validity == uid_validity);
        let sizes = bounded("a FETCH of sizes", limit, message_sizes(session, &uids)).await?;
        // A batch that failed before is fetched one message at a time, so one message the server
        // cannot read (Dovecot drops the connection on it) holds back nobody else.
        let pieces: Vec<Vec<u32>> = batches(&uids, &sizes, self.mailbox.imap.batch_size as usize)
            .into_iter()
            .flat_map(|c| match c.iter().any(|u| self.misses.contains_key(u)) {
                true => c.iter().map(|u| vec![*u]).collect(),
                false => vec![c],
            })
            .collect();
        // The next batch, fetched (and parsed) while the one before it was being written.
        let mut ahead: Option<Result<Vec<Fetched>, ImapError>> = None;
        let mut parsed_ahead: Option<Vec<ParsedMessage>> = None;
        // Committed, but not yet marked `\Seen` on the server.
        let mut unflagged: Vec<u32> = Vec::new();
        for (i, chunk) in pieces.iter().map(Vec::as_slice).enumerate() {
            if renew_at.is_some_and(|at| store::now() >= at) {
                mark_seen(session, &unflagged, limit).await?;
                info!(
                    done = i,
                    batches = pieces.len(),
                    "the access token is due for renewal in the middle of a backlog: the next session goes on with a fresh one"
                );
                return Ok(false);
            }
            let started = std::time::Instant::now();
            if self.given_up(chunk) {
                quarantine_unreadable(conn, &mut self.misses, (name, uid_validity), chunk, current)?;
                continue;
            }
            let (fetched, parsed) = match ahead.take() {
                Some(prefetched) => (prefetched, parsed_ahead.take()),
                None => (fetch_bodies(session, chunk, limit).await, None),
            };
            let fetched = match fetched {
                Ok(fetched) => fetched,
                Err(e) => {
                    note_misses(&mut self.misses, chunk);
                    return Err(e);
                }
            };
            if fetched.len() == chunk.len() {
                chunk.iter().for_each(|u| _ = self.misses.remove(u));
            } else {
                // Fewer messages than asked for: expunged by someone else since the SEARCH, or a
                // connection that ended mid-answer (async-imap ends the stream quietly). Only the
                // server can tell; the mark below must never pass a message that still exists.
                // The misses are counted first: Dovecot drops the connection on a message it
                // cannot read, and then nothing below gets an answer.
                let missing: Vec<u32> =
                    chunk.iter().filter(|u| !fetched.iter().any(|f| f.uid == **u)).copied().collect();
                note_misses(&mut self.misses, &missing);
                confirm_complete(session, limit).await?;
                let remaining =
                    bounded("SEARCH", limit, session.uid_search(format!("UID {}", uid_set(missing.iter().copied()))))
                        .await?;
                confirm_complete(session, limit).await?;
                let mut present: Vec<u32> = remaining.into_iter().collect();
                present.sort_unstable();
                missing.iter().filter(|u| !present.contains(u)).for_each(|u| _ = self.misses.remove(u));
                if present.is_empty() {
                    debug!(gone = ?missing, "messages expunged between SEARCH and FETCH; skipped");
                } else if present.iter().any(|u| self.misses[u] < MAX_MISSES) {
                    return Err(ImapError::Incomplete { asked: chunk.len(), got: fetched.len() });
                } else {
                    quarantine_unreadable(conn, &mut self.misses, (name, uid_validity), &present, false)?;
                }
            }
            let fetch_time = started.elapsed();
            let advance_to = current.then(|| chunk.last().copied().unwrap_or(after));
            let mut desk = keys.desk(&self.config, &self.templates);
            desk.home_queue = self.mailbox.home;
            let now = store::now();
            // While this batch is written, the server does its share on the IMAP connection:
            // `\Seen` for the batch before (committed already), then the next batch is fetched,
            // and parsed here, so that the writer finds it ready. Nothing is flagged before its
            // commit.
            // Not beside a batch over the byte limit (one large message): two of those in memory at
            // once is what a large attachment must not cost.
            let large = fetched.iter().map(|f| f.raw.len() as u64).sum::<u64>() > BATCH_BYTES;
            let next = pieces.get(i + 1).map(Vec::as_slice).filter(|n| !large && !self.given_up(n));
            let (written, ((flagged, prefetched), parsed_next)) = tokio::task::block_in_place(|| {
                std::thread::scope(|s| {
                    let writer = s.spawn(|| {
                        record_batch(
                            conn,
                            &desk,
                            &Destination { mailbox: name, uid_validity, advance_to, now },
                            &fetched,
                            parsed,
                        )
                    });
                    let online = tokio::runtime::Handle::current().block_on(async {
                        let flagged = mark_seen(session, &unflagged, limit).await;
                        let prefetched = match (&flagged, next) {
                            (Ok(()), Some(n)) => Some(fetch_bodies(session, n, limit).await),
                            _ => None,
                        };
                        (flagged, prefetched)
                    });
                    let parsed = match &online.1 {
                        Some(Ok(next)) => Some(parse_batch(next)),
                        _ => None,
                    };
                    (writer.join(), (online, parsed))
                })
            });
            let outcomes = written.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            if large {
                crate::memory::release_after_large_mail();
            }
            flagged?;
            unflagged = fetched.iter().map(|f| f.uid).collect();
            ahead = prefetched;
            parsed_ahead = parsed_next;
            let quarantined = outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Quarantined { .. })).count();
            self.health.recorded(outcomes.len(), quarantined, now);
            self.health.busy(Task::Watcher);
            if outcomes.iter().any(|(_, o)| o.queued_mail()) {
                self.outbox.notify_one();
            }
            debug!(
                messages = fetched.len(),
                fetch_ms = fetch_time.as_millis() as u64,
                write_ms = (started.elapsed() - fetch_time).as_millis() as u64,
                prefetched = matches!(ahead, Some(Ok(_))),
                "batch"
            );
        }
        mark_seen(session, &unflagged, limit).await?;
        if !current {
            // The first sync is complete: from now on, everything above this mark is new.
            let last_uid = uids.last().copied().unwrap_or(0).max(uid_next.saturating_sub(1));
            store::set_mailbox_state(conn, name, MailboxState { uid_validity, last_uid })?;
        }
        Ok(true)
    }

    /// Whether `chunk` is one message that failed alone [`MAX_MISSES`] times: it is quarantined
    /// instead of fetched again.
    fn given_up(&self, chunk: &[u32]) -> bool {
        matches!(chunk, [uid] if self.misses.get(uid).is_some_and(|n| *n >= MAX_MISSES))
    }

    /// Waits in IDLE until the server reports a change, `poll_interval` passes, or shutdown.
    ///
    /// IDLE is never the only way new mail is found: some servers announce it late or not at all
    /// (Cyrus without its idled helper polls its own mailbox once a minute; Gmail's IDLE is known
    /// to lag; proxies swallow the notices). Leaving IDLE every `poll_interval` makes the watcher
    /// look for itself, so a silent IDLE costs at most one poll interval.
    async fn idle(&self, session: ImapSession, wait: Duration) -> Result<ImapSession, ImapError> {
        let mut handle = session.idle();
        bounded("IDLE", self.mailbox.imap.timeout, handle.init()).await?;
        let mut shutdown = self.shutdown.clone();
        let renew = wait.min(IDLE_RENEW);
        {
            let (wait, _stop) = handle.wait_with_timeout(IDLE_SILENCE);
            tokio::select! {
                r = tokio::time::timeout(renew, wait) => {
                    if let Ok(r) = r {
                        debug!(response = ?r.as_ref().map(|_| ()), "IDLE woke");
                        r?;
                    }
                }
                _ = shutdown.requested() => {}
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), handle.done()).await {
            Ok(session) => Ok(session?),
            Err(_) => Err(ImapError::IdleStuck),
        }
    }
}

/// Whether the server announced new messages while other commands ran.
fn has_new_mail(session: &ImapSession) -> bool {
    let mut new = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        new |= matches!(r, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
    }
    new
}

/// Why a session ended without an error.
enum Ended {
    Shutdown,
    /// Its access token is near expiry: a new session starts at once with a fresh one.
    TokenRenewal,
}

/// How a session logs in.
pub enum Login<'a> {
    /// LOGIN with `imap.username` and `imap.password`.
    Password,
    /// AUTHENTICATE XOAUTH2 with this token.
    Token { user: &'a str, token: &'a AccessToken, source: &'a TokenSource },
}

/// The XOAUTH2 exchange: the token on the first challenge; a second challenge is the server's
/// refusal (a JSON error), noted and answered with an empty line, as the mechanism requires.
struct Xoauth2<'a> {
    response: String,
    answered: bool,
    refusal: &'a std::sync::Mutex<Option<String>>,
}

impl async_imap::Authenticator for Xoauth2<'_> {
    type Response = String;
    fn process(&mut self, challenge: &[u8]) -> String {
        if !self.answered {
            self.answered = true;
            return self.response.clone();
        }
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(crate::oauth::sasl::refusal_reason(challenge));
        }
        String::new()
    }
}

/// Connects, negotiates TLS as configured, reads the greeting and logs in.
pub async fn connect(imap: &crate::config::Imap, login: Login<'_>) -> Result<ImapSession, ImapError> {
    let endpoint = format!("{}:{}", imap.host, imap.port);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((imap.host.as_str(), imap.port)))
        .await
        .map_err(|_| ImapError::ConnectTimeout(endpoint.clone()))?
        .map_err(|e| ImapError::Connect(endpoint.clone(), e))?;
    let _ = tcp.set_nodelay(true);
    let tls = |tcp: TcpStream| async {
        let cfg = crate::tls::client_config(imap.ca_file.as_deref())
            .map_err(|e| ImapError::Tls(endpoint.clone(), e.to_string()))?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(imap.host.clone())
            .map_err(|e| ImapError::Tls(endpoint.clone(), e.to_string()))?;
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| ImapError::Tls(endpoint.clone(), e.to_string()))
    };
    let client: Client<Box<dyn Stream>> = match imap.security {
        Security::None => greet(Client::new(Box::new(tcp) as Box<dyn Stream>)).await?,
        Security::Tls => greet(Client::new(Box::new(tls(tcp).await?) as Box<dyn Stream>)).await?,
        Security::Starttls => {
            let mut plain = greet(Client::new(tcp)).await?;
            plain.run_command_and_check_ok("STARTTLS", None).await?;
            Client::new(Box::new(tls(plain.into_inner()).await?) as Box<dyn Stream>)
        }
    };
    match login {
        Login::Password => client
            .login(&imap.username, imap.password.expose())
            .await
            .map_err(|(cause, _)| ImapError::Login { user: imap.username.clone(), cause }),
        Login::Token { user, token, source } => {
            let refusal = std::sync::Mutex::new(None);
            let xoauth2 = Xoauth2 {
                response: crate::oauth::sasl::initial_response(user, token.secret.expose()),
                answered: false,
                refusal: &refusal,
            };
            match client.authenticate("XOAUTH2", xoauth2).await {
                Ok(session) => Ok(session),
                Err((cause, _)) => {
                    // The token may have been revoked since it was issued: the next session asks
                    // for a new one.
                    source.forget(token).await;
                    let said = refusal.lock().ok().and_then(|mut r| r.take());
                    let reason = match (said, &cause) {
                        (Some(r), _) => r,
                        (None, async_imap::error::Error::No(text)) => format!("the server said NO: {text}"),
                        (None, other) => other.to_string(),
                    };
                    Err(ImapError::TokenRefused {
                        user: user.to_string(),
                        reason,
                        advice: crate::oauth::advice::server_refused(source.oauth().provider, "IMAP"),
                    })
                }
            }
        }
    }
}

async fn greet<T: AsyncRead + AsyncWrite + Unpin + Send + Debug>(
    mut client: Client<T>,
) -> Result<Client<T>, ImapError> {
    match client.read_response().await {
        Ok(Some(_)) => Ok(client),
        Ok(None) => Err(ImapError::NoGreeting),
        Err(e) => Err(ImapError::Protocol(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_written_as_ranges() {
        assert_eq!(uid_set([4].into_iter()), "4");
        assert_eq!(uid_set([4, 5, 6, 9, 11, 12, u32::MAX].into_iter()), "4:6,9,11:12,4294967295");
        assert_eq!(uid_set(1..=10_000), "1:10000");
        assert_eq!(uid_set(std::iter::empty()), "");
    }

    #[test]
    fn batches_stop_at_the_count_or_the_byte_budget() {
        let uids: Vec<u32> = (1..=7).collect();
        let mb = 1024 * 1024;
        let sizes = HashMap::from([(1, mb), (2, 14 * mb), (3, 5 * mb), (4, 30 * mb), (5, mb), (6, mb)]);
        // 1+14 fit, 3 would pass 16 MB; 4 alone exceeds the budget and gets a batch of its own.
        assert_eq!(batches(&uids, &sizes, 100), vec![vec![1, 2], vec![3], vec![4], vec![5, 6, 7]]);
        assert_eq!(batches(&uids, &HashMap::new(), 3), vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
        assert!(batches(&[], &sizes, 3).is_empty());
    }

    #[test]
    fn only_failures_of_a_message_alone_count_towards_giving_up() {
        let mut misses = HashMap::new();
        note_misses(&mut misses, &[4, 5, 6]);
        assert_eq!(misses, HashMap::from([(4, 0), (5, 0), (6, 0)]), "a failed batch is only split");
        note_misses(&mut misses, &[5]);
        note_misses(&mut misses, &[5]);
        assert_eq!(misses[&5], 2);
        note_misses(&mut misses, &[5]);
        assert!(misses[&5] >= MAX_MISSES && misses[&4] < MAX_MISSES);
    }
}
