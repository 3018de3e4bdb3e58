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

const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a connection could not be set up: bad local settings are not worth retrying quickly.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("smtp.ca_file {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("{0}")]
    Smtp(#[from] Error),
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

/// Connects, says EHLO, negotiates TLS as configured and logs in when credentials are set.
pub async fn connect(config: &Config) -> Result<AsyncSmtpConnection, SetupError> {
    crate::tls::install_provider();
    let s = &config.smtp;
    let hello = ClientId::Domain(s.hello_name.clone());
    let wrapper = if s.security == Security::Tls { Some(tls_parameters(config)?) } else { None };
    let mut conn =
        AsyncSmtpConnection::connect_tokio1((s.host.as_str(), s.port), Some(TIMEOUT), &hello, wrapper, None).await?;
    if s.security == Security::Starttls {
        conn.starttls(tls_parameters(config)?, &hello).await?;
    }
    if let (Some(user), Some(pass)) = (&s.username, &s.password) {
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &Credentials::new(user.clone(), pass.expose().to_string()))
            .await?;
    }
    Ok(conn)
}

/// Sends one message to one recipient. `before_final_dot` runs after the whole body was written
/// and before the "." that commits the transaction on the server.
pub async fn deliver(
    conn: &mut AsyncSmtpConnection,
    from: &Address,
    to: &Address,
    raw: &[u8],
    before_final_dot: impl FnOnce(),
) -> Result<Response, Error> {
    let mut options = Vec::new();
    if !raw.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(Some(from.clone()), options)).await?;
    conn.command(Rcpt::new(to.clone(), Vec::new())).await?;
    conn.command(Data).await?;
    // lettre pulls the iterator until it is exhausted and then writes the final "."; the last
    // pull is therefore the moment just before the commit point.
    let mut hook = Some(before_final_dot);
    let parts = std::iter::once(raw).chain(std::iter::from_fn(move || {
        if let Some(f) = hook.take() {
            f();
        }
        None
    }));
    conn.message_iter(parts).await
}
