//! Should this message be answered automatically?
//!
//! An acknowledgement sent to a machine is at best noise and at worst one half of a mail loop: an
//! out-of-office answers the acknowledgement, which opens a ticket, which is acknowledged, ... So
//! before maildesk sends anything automatic it asks the questions of RFC 3834 and common practice.
//! The answer is a reason, recorded on the ticket, never a silent drop.

use super::parse::Inbound;

/// Why no automatic reply goes to the sender of this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression(pub String);

/// Returns `Some(reason)` when the message must not get an automatic reply.
///
/// `desk_addresses` are the desk's own addresses (lower case): mail from them, or carrying their
/// `X-Loop` stamp, came from a maildesk and answering it would loop.
pub fn suppress_auto_reply(msg: &Inbound, desk_addresses: &[String]) -> Option<Suppression> {
    let why = |s: String| Some(Suppression(s));
    let a = &msg.automation;

    if let Some(v) = &a.auto_submitted
        && !v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("no")
    {
        return why(format!("Auto-Submitted: {v}"));
    }
    if let Some(p) = &a.precedence {
        let p = p.to_ascii_lowercase();
        if ["bulk", "junk", "list"].contains(&p.as_str()) {
            return why(format!("Precedence: {p}"));
        }
    }
    if a.list_id {
        return why("mailing-list mail (List-Id)".into());
    }
    if a.list_unsubscribe {
        return why("bulk mail (List-Unsubscribe, List-Subscribe or List-Post)".into());
    }
    if auto_reply_subject(&msg.subject) {
        return why(format!("auto-reply subject {:?}", msg.subject));
    }
    if let Some(s) = &a.x_auto_response_suppress {
        let s = s.to_ascii_lowercase();
        if s.split(',').map(str::trim).any(|t| ["all", "autoreply", "oof"].contains(&t)) {
            return why(format!("X-Auto-Response-Suppress: {s}"));
        }
    }
    if a.return_path.as_deref() == Some("") {
        return why("null Return-Path (<>): a delivery report".into());
    }
    if let Some(stamp) = a.x_loop.iter().find(|l| desk_addresses.iter().any(|d| l.contains(d.as_str()))) {
        return why(format!("X-Loop: {stamp}: this desk sent it"));
    }
    let Some(from) = &msg.from else {
        return why("no sender address to answer".into());
    };
    if desk_addresses.contains(&from.address) {
        return why(format!("sent from the desk's own address {}", from.address));
    }
    if is_machine_sender(&from.address) {
        return why(format!("sender {} is a system address", from.address));
    }
    None
}

/// MAILER-DAEMON, postmaster and no-reply style local parts: nobody reads what is sent there.
pub fn is_machine_sender(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or("").to_string();
    // "no-reply", "no_reply", "noreply-alerts", "do.not.reply" all squash to a no-reply prefix.
    let squashed: String = local.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    matches!(
        squashed.as_str(),
        "mailerdaemon"
            | "postmaster"
            | "maildaemon"
            | "bounce"
            | "bounces"
            | "maildeliverysystem"
            | "maildeliverysubsystem"
    ) || squashed.starts_with("noreply")
        || squashed.starts_with("donotreply")
}

/// Auto-reply subjects of clients that send no `Auto-Submitted` header (Outlook, many webmailers).
pub fn auto_reply_subject(subject: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit(snotiz)?|r[ée]ponse automatique|respuesta autom[áa]tica|fuera de la oficina|absence)\b",
        )
        .expect("valid regex")
    })
    .is_match(subject)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn verdict(headers: &str) -> Option<String> {
        let subject = if headers.contains("Subject:") { "" } else { "\r\nSubject: s" };
        let raw = format!("{headers}{subject}\r\nMessage-ID: <m@x>\r\n\r\nbody");
        let msg = parse(raw.as_bytes()).unwrap();
        suppress_auto_reply(&msg, &["support@acme.test".to_string()]).map(|s| s.0)
    }

    #[test]
    fn table() {
        let answered = [
            "From: alice@example.test",
            "From: alice@example.test\r\nAuto-Submitted: no",
            "From: alice@example.test\r\nPrecedence: first-class",
            "From: alice@example.test\r\nReturn-Path: <alice@example.test>",
            "From: alice@example.test\r\nX-Auto-Response-Suppress: DR, RN",
            "From: noreen@example.test",
            "From: bouncer@example.test",
            "From: reply@example.test",
        ];
        for h in answered {
            assert_eq!(verdict(h), None, "{h}");
        }
        let suppressed = [
            ("From: alice@example.test\r\nAuto-Submitted: auto-replied", "Auto-Submitted"),
            ("From: alice@example.test\r\nAuto-Submitted: auto-generated; x=y", "Auto-Submitted"),
            ("From: alice@example.test\r\nPrecedence: bulk", "Precedence"),
            ("From: alice@example.test\r\nPrecedence: Junk", "Precedence"),
            ("From: alice@example.test\r\nPrecedence: list", "Precedence"),
            ("From: alice@example.test\r\nList-Id: <x.list>", "List-Id"),
            ("From: alice@example.test\r\nList-Unsubscribe: <mailto:u@x>", "List-Unsubscribe"),
            ("From: alice@example.test\r\nX-Auto-Response-Suppress: All", "X-Auto-Response-Suppress"),
            ("From: alice@example.test\r\nX-Auto-Response-Suppress: DR, OOF", "X-Auto-Response-Suppress"),
            ("From: alice@example.test\r\nReturn-Path: <>", "null Return-Path"),
            ("From: alice@example.test\r\nX-Loop: support@acme.test", "X-Loop"),
            ("From: Support <SUPPORT@acme.test>", "own address"),
            ("From: MAILER-DAEMON@mx.example.test", "system address"),
            ("From: postmaster@example.test", "system address"),
            ("From: no-reply@example.test", "system address"),
            ("From: noreply@example.test", "system address"),
            ("From: do_not_reply@example.test", "system address"),
            ("From: post_master@vtext.example.test", "system address"),
            ("From: Mail Delivery System <Mail.Delivery.System@mx.example.test>", "system address"),
            ("From: alice@example.test\r\nList-Subscribe: <mailto:x-ctl@example.test>", "List-"),
            ("From: alice@example.test\r\nSubject: Auto reply: Nyaan", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Automatic reply: Printer", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Out of Office", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Abwesenheitsnotiz: Drucker", "auto-reply subject"),
            ("From: donotreply@example.test", "system address"),
            ("To: x@example.test", "no sender"),
        ];
        for (h, expect) in suppressed {
            let v = verdict(h);
            assert!(v.as_deref().is_some_and(|v| v.contains(expect)), "{h}: got {v:?}");
        }
    }
}
