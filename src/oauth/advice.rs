//! What to do about an identity provider's refusal, in one sentence.
//!
//! The providers' answers are for developers ("AADSTS700082: The refresh token has expired due to
//! inactivity..."); the person reading maildesk's log or its alert mail needs the next step. Entra
//! ID's answers carry an AADSTS code in the description; Google's and other providers' only the
//! OAuth error code and a description, so those are read too.

use crate::config::OAuthProvider;

/// The next step for a refused token request, or `None` when nothing specific is known (the
/// provider's own words are then shown alone).
pub fn advice(provider: OAuthProvider, error: &str, description: &str) -> Option<&'static str> {
    if let Some(code) = aadsts_code(description) {
        let known = match code {
            "7000222" => {
                "The client secret has expired: create a new one (or better, a certificate) in the app registration's Certificates & secrets, and put it in oauth.client_secret_file."
            }
            "7000215" => {
                "The client secret is wrong: oauth.client_secret_file must hold the secret's Value, not its Secret ID."
            }
            "700082" => "The stored sign-in expired after 90 days without use: run `maildesk oauth login` again.",
            "50173" | "50133" | "50089" | "70008" | "70043" => {
                "The stored sign-in was revoked (a password change or reset, or an admin revoked sessions): run `maildesk oauth login` again."
            }
            "50076" | "50079" | "50158" => {
                "Multi-factor authentication is now required or was changed for this account: run `maildesk oauth login` again and complete it."
            }
            "65001" | "65004" => {
                "Admin consent is missing: in Entra ID, open the app's API permissions and grant admin consent."
            }
            "700016" => "The application is not known in this tenant: check oauth.client_id and oauth.tenant.",
            "90002" | "900023" => "The tenant is not known: check oauth.tenant (its id or its onmicrosoft.com domain).",
            "7000112" | "7000114" => {
                "The application is disabled: enable it in Entra ID (Enterprise applications, Properties)."
            }
            "700027" | "700023" | "700024" | "7000274" => {
                "The certificate was refused: upload the certificate in oauth.certificate_file to the app registration's Certificates & secrets, and check the server's clock."
            }
            "50034" | "50057" | "50053" | "50055" | "50126" => {
                "The account cannot sign in (missing, disabled, locked or its password expired): fix the account, then run `maildesk oauth login` again."
            }
            "70011" | "70000" => {
                "A scope was refused: check oauth.scopes (app-only access uses https://outlook.office365.com/.default)."
            }
            "7000218" => {
                "The app registration does not allow public client flows: set \"Allow public client flows\" to Yes for the device login, or configure oauth.client_secret_file."
            }
            _ => "",
        };
        if !known.is_empty() {
            return Some(known);
        }
    }
    let description = description.to_ascii_lowercase();
    match (provider, error) {
        (OAuthProvider::Google, "unauthorized_client") => Some(
            "Domain-wide delegation is missing: in the Google Admin console (Security, API controls, Domain-wide delegation) add the service account's client id with the scope https://mail.google.com/.",
        ),
        (OAuthProvider::Google, "invalid_grant") if description.contains("email") || description.contains("user") => {
            Some("The mailbox is not a user of the Workspace domain: check imap.username (or smtp.username).")
        }
        (OAuthProvider::Google, "invalid_grant") => Some(
            "The service account's key was refused (deleted or disabled key, or a wrong clock): create a new JSON key and put it in oauth.key_file.",
        ),
        (_, "invalid_client") => Some(
            "The identity provider refused maildesk's client credentials: check oauth.client_id and the client secret or certificate.",
        ),
        (_, "invalid_grant") => Some("The stored sign-in is no longer accepted: run `maildesk oauth login` again."),
        (_, "unauthorized_client") => {
            Some("The application is not allowed this grant: check the app registration's settings and consent.")
        }
        (_, "invalid_scope") => Some("A scope was refused: check oauth.scopes."),
        (_, "expired_token") => {
            Some("The device login timed out: run `maildesk oauth login` again and finish it within the time shown.")
        }
        (_, "access_denied") => Some("The sign-in was declined: run `maildesk oauth login` again and accept."),
        _ => None,
    }
}

/// The number in "AADSTS700082: ...", wherever it appears.
fn aadsts_code(description: &str) -> Option<&str> {
    let at = description.find("AADSTS")? + "AADSTS".len();
    let rest = &description[at..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// What to do when the mail server refuses a token the identity provider issued.
pub fn server_refused(provider: OAuthProvider, server: &str) -> String {
    let how = match (provider, server) {
        (OAuthProvider::Microsoft, "IMAP") => {
            "the app has no access to this mailbox (Add-MailboxPermission -AccessRights FullAccess for its service principal), or imap.username is not the mailbox's address"
        }
        (OAuthProvider::Microsoft, _) => {
            "SMTP AUTH is disabled for the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false), the app lacks SendAs on it, or smtp.username is not the mailbox's address"
        }
        (OAuthProvider::Google, _) => {
            "IMAP is off for the mailbox or its organisational unit, or the username is not the mailbox's address"
        }
        _ => "the token is not valid for this mailbox on this server: check the username and the token's scopes",
    };
    format!("The {server} server refused a token the identity provider issued: {how}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use OAuthProvider::*;

    #[test]
    fn entra_codes_get_their_own_sentence() {
        let expired = "AADSTS700082: The refresh token has expired due to inactivity. Trace ID: 1";
        assert!(advice(Microsoft, "invalid_grant", expired).unwrap().contains("maildesk oauth login"));
        let secret = "AADSTS7000222: The provided client secret keys for app '1' are expired.";
        assert!(advice(Microsoft, "invalid_client", secret).unwrap().contains("has expired"));
        let wrong = "AADSTS7000215: Invalid client secret provided.";
        assert!(advice(Microsoft, "invalid_client", wrong).unwrap().contains("Value, not its Secret ID"));
        assert!(advice(Microsoft, "invalid_grant", "AADSTS50173: revoked").unwrap().contains("revoked"));
        assert!(advice(Microsoft, "invalid_grant", "AADSTS65001: consent").unwrap().contains("admin consent"));
        assert!(advice(Microsoft, "invalid_grant", "AADSTS50076: mfa").unwrap().contains("Multi-factor"));
    }

    #[test]
    fn other_providers_are_read_by_their_error_codes() {
        assert!(advice(Google, "unauthorized_client", "Client is unauthorized").unwrap().contains("Domain-wide"));
        assert!(advice(Google, "invalid_grant", "Invalid email or User ID").unwrap().contains("imap.username"));
        assert!(advice(Generic, "invalid_grant", "").unwrap().contains("oauth login"));
        // An unknown AADSTS code falls back to the OAuth error code.
        assert!(advice(Microsoft, "invalid_client", "AADSTS1: new").unwrap().contains("client credentials"));
        assert_eq!(advice(Generic, "server_error", "busy"), None);
    }

    #[test]
    fn the_code_is_found_wherever_it_is() {
        assert_eq!(aadsts_code("x AADSTS50173: y"), Some("50173"));
        assert_eq!(aadsts_code("AADSTS: y"), None);
        assert_eq!(aadsts_code("none"), None);
    }
}
