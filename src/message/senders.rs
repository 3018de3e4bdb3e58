//! Who sent it, judged by the address alone: system and gateway senders, whose mail is a machine's
//! report, and no-reply senders, who read nothing sent back. Used by `classify` (may this be
//! answered?) and `bounce` (is this a delivery report?).

/// MAILER-DAEMON, postmaster, and the senders mail gateways and content filters use for their
/// reports (`*smtp*`, `*antivirus*`, `ndr`, `imss`, `mailer`, `postoffice`, ...): nobody reads what
/// is sent there, and what comes from there is a machine's report.
pub fn is_machine_sender(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or("").to_string();
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
            | "ndr"
            | "nondelivery"
            | "imss"
            | "mailer"
            | "postoffice"
            | "postman"
            | "mailadmin"
            | "mailgate"
            | "mailgateway"
            | "mailguard"
            | "mailscanner"
            | "mailsweeper"
            | "interscan"
            | "scanmail"
            | "quarantine"
            | "deliverystatus"
            | "returnedmail"
    ) || squashed.contains("mailerdaemon")
        || squashed.contains("postmaster")
        || squashed.contains("smtp")
        || squashed.contains("antivirus")
        || squashed.contains("antispam")
        || squashed.contains("virusalert")
        || squashed.contains("viruswall")
}

/// no-reply senders: nobody reads what is sent there, but a person may stand behind the mail (a
/// contact form, a portal relaying a user's message), so it is not machine mail by itself.
pub fn is_no_reply_sender(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    let squashed: String = local.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    squashed.starts_with("noreply") || squashed.starts_with("donotreply") || squashed.starts_with("dontreply")
}
