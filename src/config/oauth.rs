//! `[oauth]` (and `[smtp.oauth]`): how maildesk gets the access tokens it logs in with when
//! `imap.auth` or `smtp.auth` is "xoauth2". Every provider's defaults live here, so a Microsoft 365
//! admin writes a tenant and a client id, not URLs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::file::FileOAuth;
use super::locate::Located;
use super::problems::Problems;
use super::secrets::{SECRET_COMMAND_TIMEOUT, expand_credentials, run_with_timeout};
use super::types::{OAuth, OAuthGrant, OAuthProvider, Secret};

const MICROSOFT_APP_SCOPE: &str = "https://outlook.office365.com/.default";
const MICROSOFT_DELEGATED_SCOPES: [&str; 3] =
    ["https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access"];
const GOOGLE_SCOPE: &str = "https://mail.google.com/";
const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// The validated `[oauth]` table named `table` ("oauth" or "smtp.oauth"); `None` after noting
/// its problems. `subject` is the mailbox the tokens are for (the XOAUTH2 user).
pub(super) fn validate(
    doc: &Located<'_>,
    problems: &mut Problems,
    table: &str,
    f: &FileOAuth,
    base: &Path,
) -> Option<OAuth> {
    let key = |k: &str| format!("{table}.{k}");
    let before = problems.len();
    let provider = match f.provider.as_deref() {
        Some("microsoft") => OAuthProvider::Microsoft,
        Some("google") => OAuthProvider::Google,
        Some("generic") | None => OAuthProvider::Generic,
        Some(other) => {
            problems.push(doc.key_error(
                &key("provider"),
                format!("expected \"microsoft\", \"google\" or \"generic\", got {other:?}"),
            ));
            OAuthProvider::Generic
        }
    };
    let flow = match (f.flow.as_deref(), &f.token_command) {
        (None | Some("token_command"), Some(_)) => "token_command",
        (Some(flow @ ("client_credentials" | "device_code" | "service_account")), None) => flow,
        (None, None) => match provider {
            OAuthProvider::Google => "service_account",
            _ => {
                problems.push(
                    doc.key_error(
                        &key("flow"),
                        "missing; expected \"client_credentials\", \"device_code\" or \"service_account\", \
                     or a token_command"
                            .into(),
                    ),
                );
                return None;
            }
        },
        (Some(flow), Some(_)) => {
            problems.push(doc.key_error(
                &key("token_command"),
                format!("a token_command is the whole flow; remove it, or remove flow = {flow:?}"),
            ));
            return None;
        }
        (Some(other), None) => {
            problems.push(doc.key_error(
                &key("flow"),
                format!("expected \"client_credentials\", \"device_code\" or \"service_account\", got {other:?}"),
            ));
            return None;
        }
    };
    if flow == "device_code" && provider == OAuthProvider::Google {
        problems.push(
            doc.key_error(
                &key("flow"),
                "Google does not allow the mail scope on the device flow; use flow = \"service_account\" \
             (domain-wide delegation) or a token_command"
                    .into(),
            ),
        );
    }
    let tenant = f.tenant.clone().filter(|t| !t.trim().is_empty());
    let microsoft_url = |end: &str| {
        let tenant = tenant.clone().unwrap_or_else(|| "organizations".into());
        format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{end}")
    };
    if provider == OAuthProvider::Microsoft && tenant.is_none() && flow == "client_credentials" {
        problems.push(doc.key_error(
            &key("tenant"),
            "missing; app-only access needs the tenant: its id or its domain (contoso.onmicrosoft.com)".into(),
        ));
    }
    let client_id = f.client_id.clone().filter(|c| !c.trim().is_empty());
    if client_id.is_none() && matches!(flow, "client_credentials" | "device_code") {
        problems.push(doc.key_error(&key("client_id"), "missing; expected the application (client) id".into()));
    }
    let token_url = match (&f.token_url, provider) {
        (Some(u), _) => Some(u.clone()),
        (None, OAuthProvider::Microsoft) => Some(microsoft_url("token")),
        (None, OAuthProvider::Google) => Some(GOOGLE_TOKEN_URL.into()),
        (None, OAuthProvider::Generic) => None,
    };
    if token_url.is_none() && flow != "token_command" {
        problems.push(
            doc.key_error(&key("token_url"), "missing; a generic provider needs the token endpoint's URL".into()),
        );
    }
    for (k, url) in [("token_url", &f.token_url), ("device_url", &f.device_url)] {
        if let Some(u) = url
            && !is_acceptable_url(u)
        {
            problems.push(doc.key_error(
                &key(k),
                format!("expected an https:// URL (http:// only for a loopback address), got {u:?}"),
            ));
        }
    }
    let scopes = f.scopes.clone().unwrap_or_else(|| match (provider, flow) {
        (OAuthProvider::Microsoft, "device_code") => MICROSOFT_DELEGATED_SCOPES.map(String::from).to_vec(),
        (OAuthProvider::Microsoft, _) => vec![MICROSOFT_APP_SCOPE.into()],
        (OAuthProvider::Google, _) => vec![GOOGLE_SCOPE.into()],
        (OAuthProvider::Generic, _) => Vec::new(),
    });
    let path_of = |k: &str, p: &Path| -> Result<PathBuf, super::ConfigError> {
        let p = expand_credentials(p).map_err(|e| doc.key_error(&key(k), e))?;
        Ok(if p.is_absolute() { p } else { base.join(p) })
    };
    let read = |k: &str, p: &Path| -> Result<String, super::ConfigError> {
        let path = path_of(k, p)?;
        if !doc.secrets {
            return Ok(String::new());
        }
        std::fs::read_to_string(&path)
            .map_err(|e| doc.key_error(&key(k), format!("cannot read {}: {e}", path.display())))
    };
    let grant = match flow {
        "token_command" => Some(OAuthGrant::Command(f.token_command.clone().unwrap_or_default())),
        "device_code" => {
            let device_url = match (&f.device_url, provider) {
                (Some(u), _) => Some(u.clone()),
                (None, OAuthProvider::Microsoft) => Some(microsoft_url("devicecode")),
                _ => None,
            };
            if device_url.is_none() {
                problems.push(doc.key_error(
                    &key("device_url"),
                    "missing; the device flow needs the device authorization endpoint's URL".into(),
                ));
            }
            let secret = client_secret(doc, problems, table, f, base).flatten();
            device_url.map(|device_url| OAuthGrant::DeviceCode { device_url, client_secret: secret })
        }
        "service_account" => match &f.key_file {
            None => {
                problems.push(
                    doc.key_error(&key("key_file"), "missing; expected the service account's JSON key file".into()),
                );
                None
            }
            Some(p) => match read("key_file", p).map(|text| service_account_key(&text, doc.secrets)) {
                Ok(Ok((client_email, private_key))) => Some(OAuthGrant::ServiceAccount { client_email, private_key }),
                Ok(Err(e)) => {
                    problems.push(doc.key_error(&key("key_file"), e));
                    None
                }
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        },
        _ => match (&f.certificate_file, &f.private_key_file) {
            (Some(cert), Some(pkey)) => {
                if f.client_secret_file.is_some() || f.client_secret_command.is_some() {
                    problems.push(
                        doc.key_error(
                            &key("certificate_file"),
                            "set a certificate or a client secret, not both".into(),
                        ),
                    );
                }
                let thumbprint = read("certificate_file", cert).and_then(|pem| {
                    if !doc.secrets {
                        return Ok(String::new());
                    }
                    certificate_thumbprint(&pem).map_err(|e| doc.key_error(&key("certificate_file"), e))
                });
                let private_key = read("private_key_file", pkey).and_then(|pem| {
                    if doc.secrets && jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
                        return Err(doc.key_error(
                            &key("private_key_file"),
                            "expected an RSA private key in PEM (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)".into(),
                        ));
                    }
                    Ok(Secret::new(pem))
                });
                match (thumbprint, private_key) {
                    (Ok(thumbprint), Ok(private_key)) => {
                        Some(OAuthGrant::ClientCertificate { thumbprint, private_key })
                    }
                    (t, k) => {
                        t.err().into_iter().chain(k.err()).for_each(|e| problems.push(e));
                        None
                    }
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                problems.push(doc.key_error(
                    &key("certificate_file"),
                    "a certificate needs both certificate_file and private_key_file".into(),
                ));
                None
            }
            (None, None) => match client_secret(doc, problems, table, f, base) {
                Some(Some(secret)) => Some(OAuthGrant::ClientSecret(secret)),
                Some(None) => {
                    problems.push(
                        doc.key_error(
                            &key("client_secret_file"),
                            "missing; client_credentials needs a certificate (certificate_file and \
                         private_key_file) or a client secret (client_secret_file or client_secret_command)"
                                .into(),
                        ),
                    );
                    None
                }
                None => None,
            },
        },
    };
    if problems.len() > before {
        return None;
    }
    Some(OAuth {
        table: table.to_string(),
        provider,
        client_id: client_id.unwrap_or_default(),
        scopes,
        token_url: token_url.unwrap_or_default(),
        grant: grant?,
    })
}

/// `client_secret_file` or `client_secret_command`: `Some(None)` when neither is set, `None` after
/// noting a problem.
fn client_secret(
    doc: &Located<'_>,
    problems: &mut Problems,
    table: &str,
    f: &FileOAuth,
    base: &Path,
) -> Option<Option<Secret>> {
    let key = |k: &str| format!("{table}.{k}");
    let got = match (&f.client_secret_file, &f.client_secret_command) {
        (Some(_), Some(_)) => Err(doc.key_error(
            &key("client_secret_file"),
            "set only one of client_secret_file and client_secret_command".into(),
        )),
        (None, None) => return Some(None),
        _ if !doc.secrets => return Some(Some(Secret::default())),
        (Some(file), None) => expand_credentials(file)
            .map(|p| if p.is_absolute() { p } else { base.join(p) })
            .map_err(|e| doc.key_error(&key("client_secret_file"), e))
            .and_then(|p| {
                std::fs::read_to_string(&p)
                    .map_err(|e| doc.key_error(&key("client_secret_file"), format!("cannot read {}: {e}", p.display())))
            })
            .map(|t| t.lines().next().unwrap_or("").trim().to_string()),
        (None, Some(cmd)) => run_with_timeout(cmd, SECRET_COMMAND_TIMEOUT)
            .map(|out| String::from_utf8_lossy(&out).lines().next().unwrap_or("").trim().to_string())
            .map_err(|e| doc.key_error(&key("client_secret_command"), e)),
    };
    match got {
        Ok(s) if s.is_empty() => {
            problems.push(doc.key_error(&key("client_secret_file"), "the client secret is empty".into()));
            None
        }
        Ok(s) => Some(Some(Secret::new(s))),
        Err(e) => {
            problems.push(e);
            None
        }
    }
}

/// http:// is accepted only for loopback (the lab's authorization server); tokens and secrets
/// never cross a network in the clear.
fn is_acceptable_url(u: &str) -> bool {
    if u.starts_with("https://") {
        return true;
    }
    let Some(rest) = u.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    matches!(host, "localhost" | "[::1]") || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `x5t` of a certificate in PEM: base64url of the SHA-1 of its DER, as Entra ID expects in a
/// client assertion's header.
pub fn certificate_thumbprint(pem: &str) -> Result<String, String> {
    use sha1::Digest;
    let mut reader = pem.as_bytes();
    let der = rustls_pemfile::certs(&mut reader)
        .next()
        .ok_or("expected a certificate in PEM (BEGIN CERTIFICATE)")?
        .map_err(|e| format!("cannot read the certificate: {e}"))?;
    Ok(data_encoding::BASE64URL_NOPAD.encode(&sha1::Sha1::digest(der.as_ref())))
}

/// A Google service account's JSON key file: its `client_email` and `private_key`.
fn service_account_key(text: &str, secrets: bool) -> Result<(String, Secret), String> {
    if !secrets {
        return Ok((String::new(), Secret::default()));
    }
    #[derive(Deserialize)]
    struct Key {
        client_email: String,
        private_key: String,
    }
    let k: Key = serde_json::from_str(text)
        .map_err(|e| format!("expected a service account's JSON key (client_email, private_key): {e}"))?;
    jsonwebtoken::EncodingKey::from_rsa_pem(k.private_key.as_bytes())
        .map_err(|e| format!("its private_key is not an RSA key in PEM: {e}"))?;
    Ok((k.client_email, Secret::new(k.private_key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        assert!(is_acceptable_url("https://login.microsoftonline.com/x/oauth2/v2.0/token"));
        assert!(is_acceptable_url("http://127.0.0.1:19480/token"));
        assert!(is_acceptable_url("http://localhost/token"));
        assert!(is_acceptable_url("http://[::1]:80/token"));
        assert!(!is_acceptable_url("http://idp.example/token"));
        assert!(!is_acceptable_url("http://127.0.0.1.evil.example/token"));
        assert!(!is_acceptable_url("ftp://127.0.0.1/token"));
    }
}
