//! One SMTP connection, driven command by command so maildesk can act at the exact moment that
//! decides whether a mail was sent: just before the final "." of DATA.
//!
//! Why not a plain `send`: a crash between the server's 250 and the database noting it makes the
//! mail go out twice on restart, and that gap contains the server's own fsync (milliseconds). Noting
//! the mail as `sending` just before the "." moves the uncertainty to the microseconds between that
//! note and one `write` call; once written, the kernel delivers the "." even if maildesk is killed.

use std::time::Duration;

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::{Error, response::Response};

use crate::config::{Config, Security};

/// Why a connection could not be set up: bad local settings are not worth retrying quickly.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("smtp.ca_file {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error(transparent)]
    Smtp(#[from] Error),
    #[error("the SMTP server did not answer within {0:?} (connect, greeting, EHLO, STARTTLS or AUTH)")]
    Timeout(Duration),
    /// The server refused the XOAUTH2 token: its reason and what to do.
    #[error("XOAUTH2 login as {user} failed: {reason}. {advice}")]
    TokenRefused { user: String, reason: String, advice: String },
    #[error("cannot get an access token: {0}")]
    Token(#[from] crate::oauth::OAuthError),
}

impl SetupError {
    /// The server refused who we are (530, 534, 535, 538), or there was no token to prove it.
    pub fn is_login(&self) -> bool {
        match self {
            SetupError::TokenRefused { .. } | SetupError::Token(_) => true,
            SetupError::Smtp(e) => {
                e.is_permanent()
                    && e.status().is_some_and(|c| matches!(c.to_string().as_str(), "530" | "534" | "535" | "538"))
            }
            _ => false,
        }
    }
}

/// How a connection logs in.
pub enum SmtpLogin<'a> {
    /// PLAIN or LOGIN with `smtp.username` and `smtp.password`, when both are set.
    Password,
    /// AUTH XOAUTH2 with this token.
    Token { user: &'a str, token: &'a crate::oauth::AccessToken, source: &'a crate::oauth::TokenSource },
}

/// One line sent as is (lettre's commands are `Display`s that end in CRLF).
struct Line(String);

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// AUTH XOAUTH2 with the initial response. A 334 is the server's refusal (a base64 JSON error),
/// answered with an empty line as the mechanism requires: `Ok(Some(reason))`.
async fn xoauth2(conn: &mut AsyncSmtpConnection, user: &str, token: &str) -> Result<Option<String>, Error> {
    let initial = data_encoding::BASE64.encode(crate::oauth::sasl::initial_response(user, token).as_bytes());
    let answer = conn.command(Line(format!("AUTH XOAUTH2 {initial}"))).await?;
    if answer.code().to_string() != "334" {
        return Ok(None);
    }
    let challenge = answer.first_line().unwrap_or("").trim().to_string();
    let reason = data_encoding::BASE64
        .decode(challenge.as_bytes())
        .map(|c| crate::oauth::sasl::refusal_reason(&c))
        .unwrap_or_else(|_| format!("the server refused the token ({challenge})"));
    // The final answer is the refusal (535); the reason above says more than it.
    let _ = conn.command(Line(String::new())).await;
    Ok(Some(reason))
}

/// Why one delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// A reply (4xx, 5xx) or a connection error, as lettre reports it.
    #[error(transparent)]
    Smtp(#[from] Error),
    #[error("no reply from the SMTP server within {1:?} ({0})")]
    Timeout(&'static str, Duration),
}

fn tls_parameters(config: &Config) -> Result<TlsParameters, SetupError> {
    let s = &config.smtp;
    let mut b = TlsParameters::builder(s.host.clone());
    if let Some(ca) = &s.ca_file {
        let err = |detail: String| SetupError::CaFile { path: ca.display().to_string(), detail };
        let pem = std::fs::read(ca).map_err(|e| err(e.to_string()))?;
        b = b.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| err(e.to_string()))?);
    }
    Ok(b.build_rustls()?)
}

/// Connects, says EHLO, negotiates TLS as configured and logs in when credentials are set, all
/// within `smtp.timeout`: lettre's own timeout covers only the TCP connect, and a server that
/// accepts and never greets must not hang the sender.
pub async fn connect(config: &Config, login: SmtpLogin<'_>) -> Result<AsyncSmtpConnection, SetupError> {
    let limit = config.smtp.timeout;
    tokio::time::timeout(limit, connect_unbounded(config, login)).await.map_err(|_| SetupError::Timeout(limit))?
}

async fn connect_unbounded(config: &Config, login: SmtpLogin<'_>) -> Result<AsyncSmtpConnection, SetupError> {
    crate::tls::install_provider();
    let s = &config.smtp;
    let hello = ClientId::Domain(s.hello_name.clone());
    let wrapper = if s.security == Security::Tls { Some(tls_parameters(config)?) } else { None };
    let mut conn =
        AsyncSmtpConnection::connect_tokio1((s.host.as_str(), s.port), Some(s.timeout), &hello, wrapper, None).await?;
    if s.security == Security::Starttls {
        conn.starttls(tls_parameters(config)?, &hello).await?;
    }
    match login {
        SmtpLogin::Token { user, token, source } => {
            let refused = match xoauth2(&mut conn, user, token.secret.expose()).await {
                Ok(None) => None,
                Ok(Some(reason)) => Some(reason),
                Err(e) if e.is_permanent() => Some(e.to_string()),
                Err(e) => return Err(SetupError::Smtp(e)),
            };
            if let Some(reason) = refused {
                conn.abort().await;
                // Revoked since it was issued, perhaps: the next connection asks for a new one.
                source.forget(token).await;
                return Err(SetupError::TokenRefused {
                    user: user.to_string(),
                    reason,
                    advice: crate::oauth::advice::server_refused(source.oauth().provider, "SMTP"),
                });
            }
        }
        SmtpLogin::Password => {
            if let (Some(user), Some(pass)) = (&s.username, &s.password) {
                conn.auth(
                    &[Mechanism::Plain, Mechanism::Login],
                    &Credentials::new(user.clone(), pass.expose().to_string()),
                )
                .await?;
            }
        }
    }
    Ok(conn)
}

/// Sends one message to one recipient. `before_final_dot` runs after the whole body was written
/// and before the "." that commits the transaction on the server. Each command waits at most
/// `limit` for its reply; the body gets `limit` plus a second per 256 KiB to be written.
pub async fn deliver(
    conn: &mut AsyncSmtpConnection,
    from: &Address,
    to: &Address,
    raw: &[u8],
    limit: Duration,
    before_final_dot: impl FnOnce(),
) -> Result<Response, DeliverError> {
    let mut options = Vec::new();
    if !raw.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    within("MAIL FROM", limit, conn.command(Mail::new(Some(from.clone()), options))).await?;
    within("RCPT TO", limit, conn.command(Rcpt::new(to.clone(), Vec::new()))).await?;
    within("DATA", limit, conn.command(Data)).await?;
    // lettre pulls the iterator until it is exhausted and then writes the final "."; the last
    // pull is therefore the moment just before the commit point.
    let mut hook = Some(before_final_dot);
    let parts = std::iter::once(raw).chain(std::iter::from_fn(move || {
        if let Some(f) = hook.take() {
            f();
        }
        None
    }));
    let body_limit = limit + Duration::from_secs(raw.len() as u64 / (256 * 1024));
    within("end of DATA", body_limit, conn.message_iter(parts)).await
}

async fn within(
    phase: &'static str,
    limit: Duration,
    reply: impl Future<Output = Result<Response, Error>>,
) -> Result<Response, DeliverError> {
    match tokio::time::timeout(limit, reply).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(DeliverError::Timeout(phase, limit)),
    }
}
