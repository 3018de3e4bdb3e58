//! Should this message be answered automatically?
//!
//! An acknowledgement sent to a machine is at best noise and at worst one half of a mail loop: an
//! out-of-office answers the acknowledgement, which opens a ticket, which is acknowledged, ... So
//! before maildesk sends anything automatic it asks the questions of RFC 3834 and common practice.
//! The answer is a reason, recorded on the ticket, never a silent drop.

use super::parse::Inbound;
use super::senders::{is_machine_sender, is_no_reply_sender};

/// Why no automatic reply goes to the sender of this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub reason: String,
    /// A machine wrote it (an auto-reply, a report, a list or spam): recorded, but it is not a
    /// request, so it opens no SLA clock and notifies nobody. `false` for mail that only must not
    /// be answered (a no-reply sender, a contact form, no sender at all): a person may stand
    /// behind it, so technicians still see it.
    pub automatic: bool,
}

impl Suppression {
    fn machine(reason: String) -> Option<Suppression> {
        Some(Suppression { reason, automatic: true })
    }
    fn unanswerable(reason: String) -> Option<Suppression> {
        Some(Suppression { reason, automatic: false })
    }
}

/// Returns `Some(reason)` when the message must not get an automatic reply.
///
/// `desk_addresses` are the desk's own addresses (lower case): mail from them, or carrying their
/// `X-Loop` stamp, came from a maildesk and answering it would loop.
pub fn suppress_auto_reply(msg: &Inbound, desk_addresses: &[String]) -> Option<Suppression> {
    let why = Suppression::machine;
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
    // X-Loop is only ever written by software that answers or redistributes mail.
    if let Some(stamp) = a.x_loop.first() {
        return why(format!("X-Loop: {stamp}: sent by an autoresponder or list"));
    }
    if let Some(report) = &msg.machine_report {
        return why(report.clone());
    }
    if let Some(spam) = &a.spam_verdict {
        return why(format!("the receiving server marked it as spam ({spam})"));
    }
    if let Some(h) = &a.challenge {
        return why(format!("challenge-response system ({h})"));
    }
    if challenge_subject(&msg.subject) {
        return why(format!("challenge-response subject {:?}", msg.subject));
    }
    let Some(from) = &msg.from else {
        return Suppression::unanswerable("no sender address to answer".into());
    };
    if desk_addresses.contains(&from.address) {
        return why(format!("sent from the desk's own address {}", from.address));
    }
    if is_machine_sender(&from.address) {
        let reason = format!("sender {} is a system address", from.address);
        // postmaster@ is also a role people read and write from: without a machine's mark (a
        // report part, Auto-Submitted, the null sender, which all came first) it is not answered,
        // but the technicians still see it.
        let local = from.address.split('@').next().unwrap_or("").to_ascii_lowercase();
        let role_read_by_people =
            local.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>() == "postmaster";
        return if role_read_by_people { Suppression::unanswerable(reason) } else { why(reason) };
    }
    if is_no_reply_sender(&from.address) {
        return Suppression::unanswerable(format!("sender {} accepts no replies", from.address));
    }
    None
}

/// "Please confirm you are human" mails of challenge-response spam filters.
pub fn challenge_subject(subject: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(confirm (that )?you are (a )?(human|real person)|verify (that )?you are (a )?(human|real person)|(sender|e-?mail|address) verification (required|request|needed)|your (e-?mail|message) (is )?(awaiting|requires|needs) (verification|confirmation|approval)|(confirm|verify) (your )?(e-?mail|message) to (deliver|be delivered|reach)|anti-?spam (verification|confirmation)|spam (protection|filter).{0,30}confirm|bestätigen sie,? dass sie (ein )?mensch|absenderbestätigung|confirmez que vous (êtes|etes) (un )?humain|vérification de l'expéditeur)",
        )
        .expect("valid regex")
    })
    .is_match(subject)
}

/// Auto-reply subjects of clients that send no `Auto-Submitted` header (Outlook, Lotus Notes, many
/// webmailers). Machine mail is kept out of the technicians' way, so a person's subject must never
/// match: the unambiguous forms ("Automatic reply:", "Out of Office", "AUTO:") count wherever they
/// open the subject, the words a person also uses ("Absence", "On leave", "Ausente") only as a
/// label followed by a colon or dash ("Absence: back on Monday", never "Absence request for Friday").
pub fn auto_reply_subject(subject: &str) -> bool {
    static STRONG: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static LABEL: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let strong = STRONG.get_or_init(|| {
        regex::Regex::new(
            r"(?i)^\s*(auto:|(auto(matic|matische|matisch)?[ -]?(reply|response|antwort|answer)|out of (the )?office|abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|resposta autom[áa]tica|risposta automatica|automatisch antwoord|autosvar|automaattinen vastaus|automatyczna odpowied[źz]|automatick[áa] odpov[ěe]ď|автоответ|автоматический ответ|自動応答|自動返信|自动回复|自動回覆)\b)",
        )
        .expect("valid regex")
    });
    let label = LABEL.get_or_init(|| {
        regex::Regex::new(
            r"(?i)^\s*(ooo|abwesend|abwesenheit|fuera de la oficina|fuori sede|fuori ufficio|niet aanwezig|afwezig|fr[åa]nvaro|poza biurem|absence|absent|ausente|je suis absent|i am (out|away)( of the office)?|on (annual )?leave)\s*[:：\-–]",
        )
        .expect("valid regex")
    });
    strong.is_match(subject) || label.is_match(subject)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn verdict(headers: &str) -> Option<String> {
        let subject = if headers.contains("Subject:") { "" } else { "\r\nSubject: s" };
        let raw = format!("{headers}{subject}\r\nMessage-ID: <m@x>\r\n\r\nbody");
        let msg = parse(raw.as_bytes()).unwrap();
        suppress_auto_reply(&msg, &["support@acme.test".to_string()]).map(|s| s.reason)
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
            "From: alice@example.test\r\nSubject: Vacation request for March",
            "From: alice@example.test\r\nSubject: Absence request for Friday",
            "From: alice@example.test\r\nSubject: On leave next week, please disable my account",
            "From: alice@example.test\r\nSubject: Please confirm your email address change",
            "From: alice@example.test\r\nSubject: Bitte bestätigen Sie meine neue E-Mail-Adresse",
            "From: alice@example.test\r\nSubject: Out-of-band management card broken",
            "From: alice@example.test\r\nSubject: Read: the manual before calling",
            "From: alice@example.test\r\nX-Spam-Flag: NO\r\nX-Spam-Status: No, score=0.1",
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
            ("From: no-reply@example.test", "accepts no replies"),
            ("From: noreply@example.test", "accepts no replies"),
            ("From: do_not_reply@example.test", "accepts no replies"),
            ("From: post_master@vtext.example.test", "system address"),
            ("From: Mail Delivery System <Mail.Delivery.System@mx.example.test>", "system address"),
            ("From: alice@example.test\r\nList-Subscribe: <mailto:x-ctl@example.test>", "List-"),
            ("From: alice@example.test\r\nSubject: Auto reply: Nyaan", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Automatic reply: Printer", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Out of Office", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Abwesenheitsnotiz: Drucker", "auto-reply subject"),
            ("From: donotreply@example.test", "accepts no replies"),
            ("To: x@example.test", "no sender"),
            ("From: alice@example.test\r\nX-Loop: list@other.test", "X-Loop"),
            ("From: alice@example.test\r\nX-Spam-Flag: YES", "spam"),
            ("From: alice@example.test\r\nX-Spam-Status: Yes, score=12.0", "spam"),
            ("From: alice@example.test\r\nSubject: AUTO: Alice is out of the office", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Automatische Antwort: Drucker", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Risposta automatica: stampante", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Автоответ: принтер", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Please confirm you are human", "challenge-response"),
            ("From: alice@example.test\r\nSubject: Absence: back on Monday", "auto-reply subject"),
            ("From: alice@example.test\r\nSubject: Verify your message to deliver it", "challenge-response"),
            ("From: alice@example.test\r\nSubject: Sender verification required", "challenge-response"),
            ("From: alice@example.test\r\nX-Boxtrapper: yes", "challenge-response"),
            ("From: SMTP Gateway <smtp-gw@mx.example.test>", "system address"),
            ("From: antivirus@example.test", "system address"),
            ("From: NDR@example.test", "system address"),
            ("From: IMSS@example.test", "system address"),
        ];
        for (h, expect) in suppressed {
            let v = verdict(h);
            assert!(v.as_deref().is_some_and(|v| v.contains(expect)), "{h}: got {v:?}");
        }
    }

    #[test]
    fn reports_of_any_type_are_machine_mail_and_no_reply_senders_are_not() {
        let receipt = "From: alice@example.test\r\nSubject: Read: Printer\r\nMessage-ID: <r@x>\r\n\
Content-Type: multipart/report; report-type=disposition-notification; boundary=B\r\n\r\n--B\r\n\
Content-Type: text/plain\r\n\r\nYour message was read.\r\n--B\r\n\
Content-Type: message/disposition-notification\r\n\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--B--\r\n";
        let s = suppress_auto_reply(&parse(receipt.as_bytes()).unwrap(), &[]).unwrap();
        assert!(s.automatic && s.reason.contains("report"), "{s:?}");
        let outlook_plain = "From: alice@example.test\r\nSubject: Read: Printer\r\nMessage-ID: <r2@x>\r\n\r\n\
Your message\r\n\r\n  To: support\r\n  Subject: Printer\r\n\r\nwas read on Monday, 1 January 2026 10:00.\r\n";
        let s = suppress_auto_reply(&parse(outlook_plain.as_bytes()).unwrap(), &[]).unwrap();
        assert!(s.automatic, "{s:?}");
        let postmaster = "From: postmaster@example.test\r\nSubject: New firewall rules\r\nMessage-ID: <p@x>\r\n\r\nFYI";
        let s = suppress_auto_reply(&parse(postmaster.as_bytes()).unwrap(), &[]).unwrap();
        assert!(!s.automatic, "postmaster writing about something else is a person: {s:?}");
        let form = "From: no-reply@forms.example.test\r\nSubject: Contact form\r\nMessage-ID: <f@x>\r\n\r\nMy laptop is broken";
        let s = suppress_auto_reply(&parse(form.as_bytes()).unwrap(), &[]).unwrap();
        assert!(!s.automatic, "a person may stand behind a no-reply sender: {s:?}");
    }
}
