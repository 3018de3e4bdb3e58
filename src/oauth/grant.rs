//! The requests to the token endpoint, one per grant. The standard grants go through the `oauth2`
//! crate; Google's JWT-bearer grant (RFC 7523 §2.1), which it lacks, is one form POST here.

use std::sync::atomic::{AtomicU64, Ordering};

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, DeviceAuthorizationUrl, ErrorResponse, RefreshToken, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};

use super::{AccessToken, OAuthError, assertion};
use crate::config::{OAuth, OAuthGrant, Secret};

/// What a person needs for the device login: where to go and what to type.
#[derive(Debug, Clone)]
pub struct DeviceLogin {
    pub verification_uri: String,
    pub user_code: String,
    pub expires_in_secs: u64,
}

/// A token response's expiry when the provider names none: one hour, the usual.
const DEFAULT_LIFETIME: i64 = 3600;

fn token_of<R: TokenResponse>(r: &R, now: i64) -> AccessToken {
    let life = r.expires_in().map(|d| d.as_secs() as i64).unwrap_or(DEFAULT_LIFETIME);
    AccessToken { secret: Secret::new(r.access_token().secret().clone()), issued_at: now, expires_at: now + life }
}

/// The provider's error, with the sentence a person can act on.
fn refused(o: &OAuth, code: &str, description: &str) -> OAuthError {
    let advice = super::advice::advice(o.provider, code, description)
        .unwrap_or("The identity provider refused to issue a token; its words follow.");
    let description = description.lines().next().unwrap_or("").trim();
    OAuthError::Refused {
        table: o.table.clone(),
        code: code.to_string(),
        description: if description.is_empty() { "(no description)".into() } else { description.into() },
        advice: advice.into(),
    }
}

fn request_error<RE: std::error::Error + 'static, T: ErrorResponse + 'static>(
    o: &OAuth,
    url: &str,
    e: RequestTokenError<RE, T>,
) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let v = serde_json::to_value(&r).unwrap_or_default();
            refused(o, v["error"].as_str().unwrap_or("error"), v["error_description"].as_str().unwrap_or(""))
        }
        RequestTokenError::Request(e) => {
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                detail = format!("{detail}: {s}");
                source = s.source();
            }
            OAuthError::Unreachable { table: o.table.clone(), url: url.into(), detail }
        }
        RequestTokenError::Parse(e, body) => OAuthError::Unreachable {
            table: o.table.clone(),
            url: url.into(),
            detail: format!(
                "not a token response ({e}): {}",
                String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
            ),
        },
        RequestTokenError::Other(detail) => OAuthError::Unreachable { table: o.table.clone(), url: url.into(), detail },
    }
}

fn invalid(o: &OAuth, detail: impl std::fmt::Display) -> OAuthError {
    OAuthError::Invalid { table: o.table.clone(), detail: detail.to_string() }
}

fn client(
    o: &OAuth,
) -> Result<
    BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    OAuthError,
> {
    let token_url = TokenUrl::new(o.token_url.clone()).map_err(|e| invalid(o, format!("token_url: {e}")))?;
    let mut c = BasicClient::new(ClientId::new(o.client_id.clone()))
        .set_token_uri(token_url)
        // Entra ID and Google read the client's credentials from the form, and a public client
        // (the device flow) has nothing else to send.
        .set_auth_type(AuthType::RequestBody);
    if let OAuthGrant::ClientSecret(s) | OAuthGrant::DeviceCode { client_secret: Some(s), .. } = &o.grant {
        c = c.set_client_secret(ClientSecret::new(s.expose().to_string()));
    }
    Ok(c)
}

fn scopes(o: &OAuth) -> impl Iterator<Item = Scope> + '_ {
    o.scopes.iter().map(|s| Scope::new(s.clone()))
}

/// An id no two assertions share.
fn unique_id(now: i64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{now}.{nanos}.{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// App-only access: client_credentials with a secret or a certificate's assertion.
pub(super) async fn client_credentials(http: &reqwest::Client, o: &OAuth, now: i64) -> Result<AccessToken, OAuthError> {
    let c = client(o)?;
    let mut request = c.exchange_client_credentials().add_scopes(scopes(o));
    let signed;
    if let OAuthGrant::ClientCertificate { thumbprint, private_key } = &o.grant {
        signed = assertion::client_assertion(
            &o.client_id,
            &o.token_url,
            thumbprint,
            private_key.expose(),
            now,
            &unique_id(now),
        )
        .map_err(|e| invalid(o, format!("cannot sign the client assertion with private_key_file: {e}")))?;
        request = request
            .add_extra_param("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            .add_extra_param("client_assertion", signed.as_str());
    }
    let r = request.request_async(http).await.map_err(|e| request_error(o, &o.token_url, e))?;
    Ok(token_of(&r, now))
}

/// Delegated access: a new access token for the stored refresh token, and the refresh token that
/// replaces it when the provider rotates them.
pub(super) async fn refresh(
    http: &reqwest::Client,
    o: &OAuth,
    refresh_token: &str,
    now: i64,
) -> Result<(AccessToken, Option<String>), OAuthError> {
    let c = client(o)?;
    let rt = RefreshToken::new(refresh_token.to_string());
    let r = c
        .exchange_refresh_token(&rt)
        .add_scopes(scopes(o))
        .request_async(http)
        .await
        .map_err(|e| request_error(o, &o.token_url, e))?;
    Ok((token_of(&r, now), r.refresh_token().map(|t| t.secret().clone())))
}

/// The device flow (RFC 8628): asks for a code, shows it, and polls until the person signed in.
pub(super) async fn device_code(
    http: &reqwest::Client,
    o: &OAuth,
    show: impl FnOnce(&DeviceLogin),
) -> Result<(AccessToken, Option<String>), OAuthError> {
    let OAuthGrant::DeviceCode { device_url, .. } = &o.grant else {
        return Err(invalid(o, "not a device_code flow"));
    };
    let url = DeviceAuthorizationUrl::new(device_url.clone()).map_err(|e| invalid(o, format!("device_url: {e}")))?;
    let c = client(o)?.set_device_authorization_url(url);
    let details: StandardDeviceAuthorizationResponse = c
        .exchange_device_code()
        .add_scopes(scopes(o))
        .request_async(http)
        .await
        .map_err(|e| request_error(o, device_url, e))?;
    show(&DeviceLogin {
        verification_uri: details.verification_uri().to_string(),
        user_code: details.user_code().secret().clone(),
        expires_in_secs: details.expires_in().as_secs(),
    });
    let r = c
        .exchange_device_access_token(&details)
        .request_async(http, tokio::time::sleep, None)
        .await
        .map_err(|e| request_error(o, &o.token_url, e))?;
    let now = crate::store::now();
    Ok((token_of(&r, now), r.refresh_token().map(|t| t.secret().clone())))
}

/// Google Workspace: a service account acting as `mailbox` (domain-wide delegation).
pub(super) async fn service_account(
    http: &reqwest::Client,
    o: &OAuth,
    mailbox: &str,
    now: i64,
) -> Result<AccessToken, OAuthError> {
    let OAuthGrant::ServiceAccount { client_email, private_key } = &o.grant else {
        return Err(invalid(o, "not a service_account flow"));
    };
    let jwt =
        assertion::service_account_assertion(client_email, mailbox, &o.scopes, &o.token_url, private_key.expose(), now)
            .map_err(|e| invalid(o, format!("cannot sign the grant with key_file's private_key: {e}")))?;
    let unreachable =
        |detail: String| OAuthError::Unreachable { table: o.table.clone(), url: o.token_url.clone(), detail };
    let response = http
        .post(&o.token_url)
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", jwt.as_str())])
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| unreachable(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        unreachable(format!(
            "HTTP {status}, not JSON: {}",
            String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
        ))
    })?;
    match (status.is_success(), v["access_token"].as_str()) {
        (true, Some(token)) => {
            let life = v["expires_in"].as_i64().unwrap_or(DEFAULT_LIFETIME);
            Ok(AccessToken { secret: Secret::new(token), issued_at: now, expires_at: now + life })
        }
        _ => Err(refused(o, v["error"].as_str().unwrap_or("error"), v["error_description"].as_str().unwrap_or(""))),
    }
}
