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

/// The token of every signed address: the first 10 bytes of an HMAC of `text`, in base32.
fn mac_token(secret: &[u8], text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(text.as_bytes());
    BASE32_NOPAD.encode(&mac.finalize().into_bytes()[..10]).to_ascii_lowercase()
}

/// Whether `given` is `expected`, compared in constant time: the token is a secret.
fn same_token(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn token(secret: &[u8], kind: AddressKind, ticket: i64, technician: &str) -> String {
    let k = match kind {
        AddressKind::Reply => "t",
        AddressKind::Note => "n",
    };
    mac_token(secret, &format!("{k}:{ticket}:{}", technician.to_ascii_lowercase()))
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

/// A technician's query address, `support+q-<token>@domain`: the `Reply-To` of their digests.
/// Mail to it from that technician asks the desk (`#mine`, `#find ...`); the token is an HMAC of
/// the address alone, so it works for any number of queries and proves nothing about tickets.
pub fn query_address(secret: &[u8], support: &str, technician: &str) -> String {
    let (local, domain) = support.rsplit_once('@').unwrap_or((support, ""));
    format!("{local}+q-{}@{domain}", query_token(secret, technician))
}

fn query_token(secret: &[u8], technician: &str) -> String {
    mac_token(secret, &format!("q:{}", technician.to_ascii_lowercase()))
}

/// Whether the message was sent to the query address issued to `sender`.
pub fn verify_query_address(secret: &[u8], support: &str, recipients: &[String], sender: &str) -> bool {
    let wanted = query_address(secret, support, sender);
    recipients.iter().any(|r| same_token(&wanted, &r.to_ascii_lowercase()))
}

/// The address that rates ticket `ticket` with `score` (1-5): a `mailto:` link in the resolution
/// mail. Its token binds both, so a rating cannot be made up or moved to another ticket.
pub fn rating_address(secret: &[u8], support: &str, ticket: i64, score: u8) -> String {
    let (local, domain) = support.rsplit_once('@').unwrap_or((support, ""));
    format!("{local}+r{ticket}-{score}-{}@{domain}", rating_token(secret, ticket, score))
}

/// What follows `local+KIND` in `recipient`, lower-cased, when it is a plus-address of `support`.
fn plus_detail(support: &str, recipient: &str, kind: &str) -> Option<String> {
    let (local, domain) = support.rsplit_once('@')?;
    let (rl, rd) = recipient.rsplit_once('@')?;
    if !rd.eq_ignore_ascii_case(domain) {
        return None;
    }
    let prefix = format!("{}+{kind}", local.to_ascii_lowercase());
    Some(rl.to_ascii_lowercase().strip_prefix(&prefix)?.to_string())
}

fn rating_token(secret: &[u8], ticket: i64, score: u8) -> String {
    mac_token(secret, &format!("r:{ticket}:{score}"))
}

/// The ticket and score of a rating address among `recipients`, if one has a valid token.
pub fn verify_rating_address(secret: &[u8], support: &str, recipients: &[String]) -> Option<(i64, u8)> {
    recipients.iter().find_map(|r| {
        let detail = plus_detail(support, r, "r")?;
        let mut parts = detail.splitn(3, '-');
        let ticket: i64 = parts.next()?.parse().ok()?;
        let score: u8 = parts.next()?.parse().ok().filter(|s| (1..=5).contains(s))?;
        let given = parts.next()?;
        same_token(&rating_token(secret, ticket, score), given).then_some((ticket, score))
    })
}

/// The address approver `approver` decides version `version` of change `ticket` with:
/// `support+a42-3-<token>@domain`, the `Reply-To` of their approval request. The token binds all
/// three, so a decision cannot come from anyone else, move to another change, or count for a
/// version the change no longer has.
pub fn approval_address(secret: &[u8], support: &str, ticket: i64, version: i64, approver: &str) -> String {
    let (local, domain) = support.rsplit_once('@').unwrap_or((support, ""));
    format!("{local}+a{ticket}-{version}-{}@{domain}", approval_token(secret, ticket, version, approver))
}

fn approval_token(secret: &[u8], ticket: i64, version: i64, approver: &str) -> String {
    mac_token(secret, &format!("a:{ticket}:{version}:{}", approver.to_ascii_lowercase()))
}

/// An approval address among `recipients`: its ticket, its version, and whether its token is the
/// one issued to `sender` (`false`: forged, or issued to someone else).
pub fn approval_recipient(
    secret: &[u8],
    support: &str,
    recipients: &[String],
    sender: &str,
) -> Option<(i64, i64, bool)> {
    recipients.iter().find_map(|r| {
        let detail = plus_detail(support, r, "a")?;
        let mut parts = detail.splitn(3, '-');
        let ticket: i64 = parts.next()?.parse().ok()?;
        let version: i64 = parts.next()?.parse().ok()?;
        let given = parts.next()?;
        Some((ticket, version, same_token(&approval_token(secret, ticket, version, sender), given)))
    })
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
        same_token(&token(secret, kind, ticket, sender), given).then_some((ticket, kind))
    })
}

/// Replaces every per-ticket address of this desk (`support+t42-…@`, `support+n42-…@`, an
/// approver's `support+a42-3-…@`) in `text`
/// with a placeholder, and says how many there were. Relayed text must never carry one: whoever
/// receives it could act as the technician it was issued to. Tokens are no longer printed in
/// bodies, but a quoted older notification, a custom template or a technician pasting one can
/// still bring them in.
pub fn redact_ticket_addresses(text: &str, support: &str) -> (String, usize) {
    let Some((local, domain)) = support.rsplit_once('@') else { return (text.to_string(), 0) };
    // Reply and note addresses, query addresses, and approvers' addresses (`+a42-3-…`).
    let pattern =
        format!(r"(?i){}\+(?:[tn][0-9]+|q|a[0-9]+-[0-9]+)-[a-z2-7]+@{}", regex::escape(local), regex::escape(domain));
    let Ok(re) = regex::Regex::new(&pattern) else { return (text.to_string(), 0) };
    let count = re.find_iter(text).count();
    if count == 0 {
        return (text.to_string(), 0);
    }
    (re.replace_all(text, "[technician address removed]").into_owned(), count)
}

/// Whether the receiving server's own `Authentication-Results` shows DMARC (or DKIM) passing for
/// `domain`, and nothing from it says DMARC failed.
///
/// Anyone can write an `Authentication-Results` header with any authserv-id into a mail they send
/// (RFC 8601 §5), so only headers above the receiving server's own hop count: those with at most
/// `internal_hops` `Received:` fields above them (0 when the authenticating server delivers to the
/// mailbox itself; 1 when, say, Dovecot's LMTP adds one more after it). A forged copy sits below the
/// sender's own Received fields and is ignored. Among the trusted headers a `dmarc=fail` wins.
/// What a pass proves is that the *domain* sent the mail, not which mailbox in it did.
pub fn dmarc_pass(
    authentication_results: &[(usize, String)],
    authserv_id: &str,
    internal_hops: usize,
    domain: &str,
) -> bool {
    let domain = domain.to_ascii_lowercase();
    let mut pass = false;
    for (received_above, header) in authentication_results {
        if *received_above > internal_hops {
            break;
        }
        let mut parts = header.split(';');
        let id = parts.next().unwrap_or("").split_whitespace().next().unwrap_or("");
        if !id.eq_ignore_ascii_case(authserv_id) {
            continue;
        }
        for result in parts {
            let words: Vec<String> = result.split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
            let has = |key: &str, value: &str| words.iter().any(|w| w == &format!("{key}={value}"));
            if words.iter().any(|w| w.starts_with("dmarc=") && w != "dmarc=pass" && w != "dmarc=none") {
                return false;
            }
            pass |= (has("dmarc", "pass") && has("header.from", &domain))
                || (has("dkim", "pass") && has("header.d", &domain));
        }
    }
    pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_address_is_bound_to_its_change_version_and_approver() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let a = approval_address(secret, "support@acme.test", 42, 3, "Cab@ACME.test");
        assert!(a.starts_with("support+a42-3-") && a.ends_with("@acme.test"), "{a}");
        let r = |addr: &str| vec![addr.to_string()];
        assert_eq!(approval_recipient(secret, "support@acme.test", &r(&a), "cab@acme.test"), Some((42, 3, true)));
        // Someone else using it, another version, another ticket, another secret: not valid.
        assert_eq!(approval_recipient(secret, "support@acme.test", &r(&a), "eve@evil.test"), Some((42, 3, false)));
        let v4 = a.replacen("+a42-3-", "+a42-4-", 1);
        assert_eq!(approval_recipient(secret, "support@acme.test", &r(&v4), "cab@acme.test"), Some((42, 4, false)));
        let t43 = a.replacen("+a42-", "+a43-", 1);
        assert_eq!(approval_recipient(secret, "support@acme.test", &r(&t43), "cab@acme.test"), Some((43, 3, false)));
        let other = approval_address(b"another secret of some length!!!", "support@acme.test", 42, 3, "cab@acme.test");
        assert_eq!(approval_recipient(secret, "support@acme.test", &r(&other), "cab@acme.test"), Some((42, 3, false)));
        assert_eq!(approval_recipient(secret, "support@acme.test", &r("support@acme.test"), "cab@acme.test"), None);
    }

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
    fn ticket_addresses_are_redacted_from_relayed_text() {
        let addr = ticket_address(SECRET, "support@acme.test", AddressKind::Reply, 42, "tech1@acme.test");
        let note = ticket_address(SECRET, "support@acme.test", AddressKind::Note, 42, "tech1@acme.test");
        let text = format!("Thanks\n> write to {addr} or <{}>\nsupport@acme.test stays", note.to_uppercase());
        let (out, n) = redact_ticket_addresses(&text, "support@acme.test");
        assert_eq!(n, 2);
        assert!(!out.to_lowercase().contains("+t42-") && !out.to_lowercase().contains("+n42-"), "{out}");
        assert!(out.contains("support@acme.test stays"));
        assert_eq!(redact_ticket_addresses("nothing here", "support@acme.test"), ("nothing here".into(), 0));
    }

    #[test]
    fn only_the_trusted_server_counts() {
        let h = |s: &str| vec![(0, s.to_string())];
        let pass = |a: &[(usize, String)]| dmarc_pass(a, "mx.acme.test", 0, "acme.test");
        assert!(pass(&h("mx.acme.test; dkim=pass header.d=acme.test; dmarc=pass header.from=acme.test")));
        assert!(pass(&h("mx.acme.test 1; dkim=pass (2048-bit key) header.d=ACME.test")));
        assert!(!pass(&h("evil.test; dmarc=pass header.from=acme.test")));
        assert!(!pass(&h("mx.acme.test; dmarc=fail header.from=acme.test")));
        assert!(!pass(&h("mx.acme.test; dmarc=pass header.from=other.test")));
    }

    #[test]
    fn forged_headers_below_the_receiving_hop_are_ignored_and_a_fail_wins() {
        let forged = "mx.acme.test; dmarc=pass header.from=acme.test".to_string();
        let real_fail = "mx.acme.test; dmarc=fail (p=reject) header.from=acme.test".to_string();
        // The sender's forged copy sits below the receiving server's Received field.
        assert!(!dmarc_pass(&[(1, forged.clone())], "mx.acme.test", 0, "acme.test"));
        // The receiving server says fail at the top; a forged pass further down changes nothing,
        // even one written above the first Received.
        assert!(!dmarc_pass(&[(0, real_fail.clone()), (1, forged.clone())], "mx.acme.test", 0, "acme.test"));
        assert!(!dmarc_pass(&[(0, real_fail), (0, forged.clone())], "mx.acme.test", 0, "acme.test"));
        // One internal hop (e.g. LMTP delivery after the milter) is allowed when configured.
        assert!(dmarc_pass(&[(1, forged.clone())], "mx.acme.test", 1, "acme.test"));
        assert!(!dmarc_pass(&[(2, forged)], "mx.acme.test", 1, "acme.test"));
    }
}
