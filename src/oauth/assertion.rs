//! The signed JWTs OAuth uses instead of a shared secret: a client assertion (RFC 7523, Entra ID's
//! certificate credentials) and a Google service account's JWT-bearer grant. Pure: the time and the
//! unique id come in.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// How long an assertion is good for: it is used once, at once.
const ASSERTION_LIFETIME: i64 = 10 * 60;

#[derive(Serialize)]
struct ClientAssertion<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    nbf: i64,
    iat: i64,
    exp: i64,
}

#[derive(Serialize)]
struct ServiceAccountClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// A client assertion for `client_id` at `token_url`, signed with the certificate's key;
/// `thumbprint` (the certificate's `x5t`) tells the identity provider which certificate it is.
pub fn client_assertion(
    client_id: &str,
    token_url: &str,
    thumbprint: &str,
    key_pem: &str,
    now: i64,
    jti: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::RS256);
    header.x5t = Some(thumbprint.to_string());
    let claims = ClientAssertion {
        aud: token_url,
        iss: client_id,
        sub: client_id,
        jti,
        nbf: now,
        iat: now,
        exp: now + ASSERTION_LIFETIME,
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(key_pem.as_bytes())?)
}

/// A service account's grant to act as `mailbox` (domain-wide delegation) with `scopes`.
pub fn service_account_assertion(
    client_email: &str,
    mailbox: &str,
    scopes: &[String],
    token_url: &str,
    key_pem: &str,
    now: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let scope = scopes.join(" ");
    let claims = ServiceAccountClaims {
        iss: client_email,
        sub: mailbox,
        scope: &scope,
        aud: token_url,
        iat: now,
        exp: now + ASSERTION_LIFETIME,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(key_pem.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const KEY: &str = include_str!("testdata/test-key.pem");
    const PUBLIC: &str = include_str!("testdata/test-key.pub.pem");

    fn verify(token: &str, aud: &str) -> serde_json::Value {
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[aud]);
        v.validate_exp = false;
        v.validate_nbf = false;
        jsonwebtoken::decode::<serde_json::Value>(token, &DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap(), &v)
            .unwrap()
            .claims
    }

    #[test]
    fn a_client_assertion_names_the_app_the_endpoint_and_the_certificate() {
        let jwt = client_assertion("app-1", "https://idp.test/token", "THUMB", KEY, 1_000, "j1").unwrap();
        assert_eq!(jsonwebtoken::decode_header(&jwt).unwrap().x5t.as_deref(), Some("THUMB"));
        let c = verify(&jwt, "https://idp.test/token");
        assert_eq!(
            (c["iss"].as_str(), c["sub"].as_str(), c["jti"].as_str()),
            (Some("app-1"), Some("app-1"), Some("j1"))
        );
        assert_eq!((c["nbf"].as_i64(), c["exp"].as_i64()), (Some(1_000), Some(1_600)));
    }

    #[test]
    fn a_service_account_grant_acts_as_the_mailbox_with_the_mail_scope() {
        let scopes = vec!["https://mail.google.com/".to_string()];
        let jwt =
            service_account_assertion("sa@p.iam.test", "support@x.test", &scopes, "https://g.test/token", KEY, 50)
                .unwrap();
        let c = verify(&jwt, "https://g.test/token");
        assert_eq!(c["iss"], "sa@p.iam.test");
        assert_eq!(c["sub"], "support@x.test");
        assert_eq!(c["scope"], "https://mail.google.com/");
        assert_eq!(c["exp"].as_i64(), Some(650));
    }

    #[test]
    fn a_key_that_is_not_rsa_pem_is_an_error_not_a_panic() {
        assert!(client_assertion("a", "u", "t", "not a key", 0, "j").is_err());
    }
}
