//! SASL XOAUTH2, the mechanism Exchange Online and Gmail accept on IMAP and SMTP.
//!
//! The client sends `user=<mailbox>^Aauth=Bearer <token>^A^A`. A server that refuses the token
//! sends one more challenge, a base64 JSON error, which must be answered with an empty line before
//! the final refusal; answering it with the token again confuses servers.

/// The client's (only) response, before base64.
pub fn initial_response(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// The server's reason in a refusal challenge, e.g. `{"status":"401","schemes":"bearer"}` read as
/// "status 401". `challenge` is already base64-decoded; anything unreadable is shown as it came,
/// cut to one short line.
pub fn refusal_reason(challenge: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Refusal {
        status: Option<String>,
        #[serde(default)]
        scope: Option<String>,
    }
    match serde_json::from_slice::<Refusal>(challenge) {
        Ok(Refusal { status: Some(status), scope }) => {
            // The server's words go into logs and mail: no control characters, nothing long.
            let clean = |s: &str| s.chars().filter(|c| !c.is_control()).take(100).collect::<String>();
            let scope = scope.map(|s| format!(", needs scope {}", clean(&s))).unwrap_or_default();
            format!("the server refused the token (status {}{scope})", clean(&status))
        }
        _ => {
            let text: String =
                String::from_utf8_lossy(challenge).chars().filter(|c| !c.is_control()).take(200).collect();
            format!("the server refused the token ({text})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_has_the_mailbox_the_token_and_the_separators() {
        assert_eq!(initial_response("s@x.test", "t0k"), "user=s@x.test\u{1}auth=Bearer t0k\u{1}\u{1}");
    }

    #[test]
    fn a_refusal_challenge_reads_as_one_line() {
        assert_eq!(
            refusal_reason(br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#),
            "the server refused the token (status 401, needs scope https://mail.google.com/)"
        );
        assert_eq!(refusal_reason(b"\x00bad\r\nthing"), "the server refused the token (badthing)");
    }
}
