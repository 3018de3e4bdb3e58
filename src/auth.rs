//! Is this mail really from a technician? A `From:` header proves nothing, so a message counts as a
//! technician's only when the sender is on the technicians list **and** one of the accepted proofs
//! holds:
//!
//! * `token`: it was sent to a per-ticket reply address that maildesk issued to that technician,
//!   `support+t42-<token>@domain` (reply) or `support+n42-<token>@domain` (internal note). The token is
//!   an HMAC of the ticket number and the technician's address under a secret only maildesk knows,
//!   so it is checked without any table lookup and cannot be guessed or moved to another ticket or
//!   person. These addresses are what technicians get as `Reply-To`, so replying is enough.
//! * `dmarc`: an `Authentication-Results` header written by the receiving server named in
//!   `security.authserv_id` reports `dmarc=pass` (or `dkim=pass` for the sender's domain). Only that
//!   server's headers are trusted: anyone can write such a header into a mail they send.
//!
//! Everything here is pure; the secret is passed in.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a verified per-ticket address says about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Reply,
    Note,
}

fn token(secret: &[u8], kind: AddressKind, ticket: i64, technician: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    let k = match kind {
        AddressKind::Reply => "t",
        AddressKind::Note => "n",
    };
    mac.update(format!("{k}:{ticket}:{}", technician.to_ascii_lowercase()).as_bytes());
    let bytes = mac.finalize().into_bytes();
    BASE32_NOPAD.encode(&bytes[..10]).to_ascii_lowercase()
}

/// The address a technician replies to (or writes notes to) for `ticket`.
pub fn ticket_address(secret: &[u8], support: &str, kind: AddressKind, ticket: i64, technician: &str) -> String {
    let (local, domain) = support.rsplit_once('@').unwrap_or((support, ""));
    let k = match kind {
        AddressKind::Reply => "t",
        AddressKind::Note => "n",
    };
    format!("{local}+{k}{ticket}-{}@{domain}", token(secret, kind, ticket, technician))
}

/// Finds, among the addresses a message was sent to, a per-ticket address issued to `sender`.
pub fn verify_ticket_address(
    secret: &[u8],
    support: &str,
    recipients: &[String],
    sender: &str,
) -> Option<(i64, AddressKind)> {
    let (local, domain) = support.rsplit_once('@')?;
    let prefix = format!("{local}+");
    recipients.iter().find_map(|r| {
        let (rl, rd) = r.rsplit_once('@')?;
        if !rd.eq_ignore_ascii_case(domain) {
            return None;
        }
        let detail = rl.to_ascii_lowercase().strip_prefix(&prefix.to_ascii_lowercase())?.to_string();
        let kind = match detail.chars().next()? {
            't' => AddressKind::Reply,
            'n' => AddressKind::Note,
            _ => return None,
        };
        let (number, given) = detail[1..].split_once('-')?;
        let ticket: i64 = number.parse().ok()?;
        let expected = token(secret, kind, ticket, sender);
        // Constant-time comparison: the token is a secret.
        let same = expected.len() == given.len()
            && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        same.then_some((ticket, kind))
    })
}

/// Whether a trusted `Authentication-Results` header shows DMARC (or DKIM) passing for `domain`.
pub fn dmarc_pass(authentication_results: &[String], authserv_id: &str, domain: &str) -> bool {
    let domain = domain.to_ascii_lowercase();
    authentication_results.iter().any(|header| {
        let mut parts = header.split(';');
        let id = parts.next().unwrap_or("").split_whitespace().next().unwrap_or("");
        if !id.eq_ignore_ascii_case(authserv_id) {
            return false;
        }
        parts.any(|result| {
            let words: Vec<String> = result.split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
            let has = |key: &str, value: &str| words.iter().any(|w| w == &format!("{key}={value}"));
            (has("dmarc", "pass") && has("header.from", &domain)) || (has("dkim", "pass") && has("header.d", &domain))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_addresses_verify_only_for_their_technician() {
        let addr = ticket_address(SECRET, "support@acme.test", AddressKind::Reply, 42, "Tech1@acme.test");
        assert!(addr.starts_with("support+t42-") && addr.ends_with("@acme.test"), "{addr}");
        let to = vec!["someone@else.test".to_string(), addr.to_uppercase()];
        assert_eq!(
            verify_ticket_address(SECRET, "support@acme.test", &to, "tech1@acme.test"),
            Some((42, AddressKind::Reply))
        );
        assert_eq!(verify_ticket_address(SECRET, "support@acme.test", &to, "tech2@acme.test"), None);
        assert_eq!(verify_ticket_address(b"another secret", "support@acme.test", &to, "tech1@acme.test"), None);
        let moved = addr.replace("+t42-", "+t43-");
        assert_eq!(verify_ticket_address(SECRET, "support@acme.test", &[moved], "tech1@acme.test"), None);
        let note = ticket_address(SECRET, "support@acme.test", AddressKind::Note, 42, "tech1@acme.test");
        assert_eq!(
            verify_ticket_address(SECRET, "support@acme.test", &[note], "tech1@acme.test"),
            Some((42, AddressKind::Note))
        );
        assert_eq!(
            verify_ticket_address(SECRET, "support@acme.test", &["support@acme.test".into()], "tech1@acme.test"),
            None
        );
    }

    #[test]
    fn only_the_trusted_server_counts() {
        let h = |s: &str| vec![s.to_string()];
        assert!(dmarc_pass(
            &h("mx.acme.test; dkim=pass header.d=acme.test; dmarc=pass header.from=acme.test"),
            "mx.acme.test",
            "acme.test"
        ));
        assert!(dmarc_pass(
            &h("mx.acme.test 1; dkim=pass (2048-bit key) header.d=ACME.test"),
            "mx.acme.test",
            "acme.test"
        ));
        assert!(!dmarc_pass(&h("evil.test; dmarc=pass header.from=acme.test"), "mx.acme.test", "acme.test"));
        assert!(!dmarc_pass(&h("mx.acme.test; dmarc=fail header.from=acme.test"), "mx.acme.test", "acme.test"));
        assert!(!dmarc_pass(&h("mx.acme.test; dmarc=pass header.from=other.test"), "mx.acme.test", "acme.test"));
    }
}
