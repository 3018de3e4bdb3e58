//! Access tokens for XOAUTH2 logins: fetched from the identity provider when a session starts,
//! kept while they are good, and renewed a margin before they expire.
//!
//! One [`TokenSource`] per `[oauth]` table is shared by the IMAP watcher and the SMTP sender, so a
//! refresh token (which rotates: each use returns a new one and kills the old) is never used twice
//! at once. A rotated refresh token is written to the database before the access token it came
//! with is used, so a crash cannot leave the desk holding a dead one.

pub mod advice;
pub mod assertion;
mod grant;
pub mod sasl;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::config::{OAuth, OAuthGrant, Secret};
use crate::store;

pub use grant::DeviceLogin;

/// How long a token from a `token_command` is assumed good: such programs rarely say, and Entra
/// ID's and Google's tokens live at least an hour.
const COMMAND_TOKEN_LIFETIME: i64 = 45 * 60;

/// A bearer token and when it stops working.
#[derive(Clone)]
pub struct AccessToken {
    pub secret: Secret,
    pub issued_at: i64,
    /// Unix seconds; the provider's `expires_in` after `issued_at`.
    pub expires_at: i64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessToken(expires_at {})", self.expires_at)
    }
}

impl AccessToken {
    /// When a session logged in with it should end, so that a new one starts with a fresh token
    /// before the server ends it (Exchange: `BYE ... AccessTokenExpired`): a quarter of its life
    /// before expiry, at most five minutes.
    pub fn renew_at(&self) -> i64 {
        let life = (self.expires_at - self.issued_at).max(0);
        self.expires_at - (life / 4).min(300)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The identity provider answered with an error. `advice` is the sentence for a person.
    #[error("{advice} ({table}: the identity provider said {code}: {description})")]
    Refused { table: String, code: String, description: String, advice: String },
    #[error("{table}: cannot get a token from {url}: {detail}")]
    Unreachable { table: String, url: String, detail: String },
    #[error("no sign-in is stored for [{table}]: run `maildesk oauth login` first")]
    NotLoggedIn { table: String },
    #[error("{table}.token_command: {detail}")]
    Command { table: String, detail: String },
    #[error("{table}: {detail}")]
    Invalid { table: String, detail: String },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl OAuthError {
    /// Whether a person must act (a wrong secret, a revoked grant), as opposed to an outage that
    /// passes by itself.
    pub fn needs_a_person(&self) -> bool {
        !matches!(self, OAuthError::Unreachable { .. } | OAuthError::Sql(_) | OAuthError::Store(_))
    }
}

/// Where one `[oauth]` table's tokens come from, and the one it holds.
pub struct TokenSource {
    oauth: OAuth,
    /// The mailbox the tokens are for: the XOAUTH2 user, and a service account's `sub`.
    pub user: String,
    database: PathBuf,
    http: reqwest::Client,
    held: Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSource([{}] for {})", self.oauth.table, self.user)
    }
}

impl TokenSource {
    pub fn new(oauth: OAuth, user: String, database: PathBuf) -> Result<TokenSource, OAuthError> {
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            // Following a redirect would hand the request to whoever the endpoint names.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| OAuthError::Invalid { table: oauth.table.clone(), detail: e.to_string() })?;
        Ok(TokenSource { oauth, user, database, http, held: Mutex::new(None) })
    }

    pub fn oauth(&self) -> &OAuth {
        &self.oauth
    }

    /// A token good for a new session: the one held, unless it is due for renewal.
    pub async fn token(&self) -> Result<AccessToken, OAuthError> {
        let mut held = self.held.lock().await;
        let now = store::now();
        if let Some(t) = held.as_ref()
            && now < t.renew_at()
        {
            return Ok(t.clone());
        }
        let fresh = self.fetch(now).await?;
        *held = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops the token held after a server refused it, so the next session asks for a new one.
    pub async fn forget(&self, refused: &AccessToken) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|t| t.secret == refused.secret) {
            *held = None;
        }
    }

    async fn fetch(&self, now: i64) -> Result<AccessToken, OAuthError> {
        let o = &self.oauth;
        match &o.grant {
            OAuthGrant::Command(cmd) => {
                let cmd = cmd.clone();
                let out = tokio::task::spawn_blocking(move || {
                    crate::config::run_command(&cmd, crate::config::SECRET_COMMAND_TIMEOUT)
                })
                .await
                .map_err(|e| OAuthError::Command { table: o.table.clone(), detail: e.to_string() })?
                .map_err(|detail| OAuthError::Command { table: o.table.clone(), detail })?;
                let token = String::from_utf8_lossy(&out).lines().next().unwrap_or("").trim().to_string();
                if token.is_empty() {
                    return Err(OAuthError::Command { table: o.table.clone(), detail: "it printed no token".into() });
                }
                Ok(AccessToken { secret: Secret::new(token), issued_at: now, expires_at: now + COMMAND_TOKEN_LIFETIME })
            }
            OAuthGrant::ClientSecret(_) | OAuthGrant::ClientCertificate { .. } => {
                grant::client_credentials(&self.http, o, now).await
            }
            OAuthGrant::ServiceAccount { .. } => grant::service_account(&self.http, o, &self.user, now).await,
            OAuthGrant::DeviceCode { .. } => {
                let key = refresh_key(&o.table);
                let db = self.database.clone();
                let stored = tokio::task::spawn_blocking(move || -> Result<Option<String>, OAuthError> {
                    let conn = store::open(&db)?;
                    Ok(store::get_meta(&conn, &key)?)
                })
                .await
                .map_err(|e| OAuthError::Invalid { table: o.table.clone(), detail: e.to_string() })??;
                let refresh = stored.ok_or_else(|| OAuthError::NotLoggedIn { table: o.table.clone() })?;
                let (token, rotated) = grant::refresh(&self.http, o, &refresh, now).await?;
                self.save_refresh_token(rotated.as_deref().unwrap_or(&refresh), &token).await?;
                Ok(token)
            }
        }
    }

    /// Stores the refresh token (with the access token's expiry, for `status`) in one write.
    async fn save_refresh_token(&self, refresh: &str, token: &AccessToken) -> Result<(), OAuthError> {
        let (db, table) = (self.database.clone(), self.oauth.table.clone());
        let (refresh, expires) = (refresh.to_string(), token.expires_at);
        tokio::task::spawn_blocking(move || -> Result<(), OAuthError> {
            let mut conn = store::open(&db)?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            store::set_meta(&tx, &refresh_key(&table), &refresh)?;
            store::set_meta(&tx, &format!("oauth:{table}:refreshed_at"), &store::now().to_string())?;
            store::set_meta(&tx, &format!("oauth:{table}:expires_at"), &expires.to_string())?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| OAuthError::Invalid { table: self.oauth.table.clone(), detail: e.to_string() })?
    }

    /// `maildesk oauth login`: the device flow. `show` gets the provider's instructions (a URL and
    /// a code) at once; this returns when the person has signed in, with the refresh token stored.
    pub async fn device_login(&self, show: impl FnOnce(&DeviceLogin)) -> Result<AccessToken, OAuthError> {
        if !matches!(self.oauth.grant, OAuthGrant::DeviceCode { .. }) {
            return Err(OAuthError::Invalid {
                table: self.oauth.table.clone(),
                detail: "`maildesk oauth login` is for flow = \"device_code\"; this flow needs no login".into(),
            });
        }
        let (token, refresh) = grant::device_code(&self.http, &self.oauth, show).await?;
        let refresh = refresh.ok_or_else(|| OAuthError::Invalid {
            table: self.oauth.table.clone(),
            detail: "the identity provider returned no refresh token: add the offline_access scope".into(),
        })?;
        self.save_refresh_token(&refresh, &token).await?;
        *self.held.lock().await = Some(token.clone());
        Ok(token)
    }
}

/// The token sources a desk's logins use: IMAP's from `[oauth]`, SMTP's from `[smtp.oauth]` or
/// the same `[oauth]`. One source serves both when the table and the mailbox are the same, so a
/// rotating refresh token is never used twice.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub imap: Option<std::sync::Arc<TokenSource>>,
    pub smtp: Option<std::sync::Arc<TokenSource>>,
    /// One per mailbox of `Config::mailboxes()`, in its order: the `[imap]` account's folders
    /// share `imap`; a queue's own account has its own (or shares one with the same table and user).
    pub mailboxes: Vec<Option<std::sync::Arc<TokenSource>>>,
}

impl Sources {
    pub fn of(config: &crate::config::Config) -> Result<Sources, OAuthError> {
        use crate::config::AuthMethod;
        use std::sync::Arc;
        let database = config.helpdesk.database.clone();
        let imap = match (config.imap.auth, &config.oauth) {
            (AuthMethod::Xoauth2, Some(o)) => {
                Some(Arc::new(TokenSource::new(o.clone(), config.imap.username.clone(), database.clone())?))
            }
            _ => None,
        };
        let smtp_user = config.smtp.username.clone().unwrap_or_else(|| config.imap.username.clone());
        let smtp = match (config.smtp.auth, config.smtp_oauth()) {
            (AuthMethod::Xoauth2, Some(o)) => match &imap {
                Some(i) if i.oauth.table == o.table && i.user == smtp_user => Some(i.clone()),
                _ => Some(Arc::new(TokenSource::new(o.clone(), smtp_user, database.clone())?)),
            },
            _ => None,
        };
        let mut mailboxes = Vec::new();
        for m in config.mailboxes() {
            let source = match (&m.own_account, m.imap.auth, &m.oauth) {
                (None, _, _) => imap.clone(),
                (Some(_), AuthMethod::Xoauth2, Some(o)) => {
                    let same = |s: &&Arc<TokenSource>| s.oauth.table == o.table && s.user == m.imap.username;
                    match imap.iter().chain(smtp.iter()).chain(mailboxes.iter().flatten()).find(same) {
                        Some(s) => Some(s.clone()),
                        None => Some(Arc::new(TokenSource::new(o.clone(), m.imap.username.clone(), database.clone())?)),
                    }
                }
                _ => None,
            };
            mailboxes.push(source);
        }
        Ok(Sources { imap, smtp, mailboxes })
    }
}

/// The meta key of a table's refresh token.
fn refresh_key(table: &str) -> String {
    format!("oauth:{table}:refresh_token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_a_quarter_of_the_token_life_before_expiry_at_most_five_minutes() {
        let t = |issued_at, expires_at| AccessToken { secret: Secret::new("x"), issued_at, expires_at };
        assert_eq!(t(0, 3600).renew_at(), 3300);
        assert_eq!(t(0, 20).renew_at(), 15);
        assert_eq!(t(100, 100).renew_at(), 100);
    }
}
