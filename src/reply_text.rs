//! The new part of a reply: what maildesk shows and relays, without quoted history or signature.
//!
//! Tickets keep the full raw message; this only decides what people read. The rules, in order:
//! 1. cut at the first marker of quoted history that follows some new text: an attribution line
//!    ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", "El … escribió:", "Op … schreef:",
//!    "Den … skrev:", "W dniu … napisał:", "Il … ha scritto:", or any line ending in ":" that names
//!    an address and a date, as Japanese and many mobile clients write it, possibly wrapped over three
//!    lines), an "-----Original Message-----" style separator in those languages, or an Outlook header
//!    block ("From:/Von:/De:/Van:/Od: …" followed by "Sent:/Gesendet:/Envoyé:/Enviado:/Date:/…");
//! 2. drop `>`-quoted lines anywhere (inline answers between quotes are kept);
//! 3. cut at a `-- ` signature separator, and drop a closing mobile signature ("Sent from my iPhone",
//!    "Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Enviado desde mi iPhone", "Get Outlook
//!    for iOS"). maildesk's rule: such device lines are signatures and are removed; a sentence that
//!    merely starts with "Sent from my" ("Sent from my desk, …") is text and stays.
//!
//! A marker on the very first line is not history (nothing new precedes it), and if stripping would
//! leave nothing, the whole text is kept: showing too much beats showing nothing.

use std::sync::OnceLock;

use regex::Regex;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

fn attribution(line: &str) -> bool {
    static LANG: OnceLock<Regex> = OnceLock::new();
    static GENERIC: OnceLock<Regex> = OnceLock::new();
    let lang = re(
        &LANG,
        r"(?ix)^(
            on\s.+\swrote\s?:? |
            am\s.+\sschrieb.*: |
            le\s.+\sa\s+écrit\s?: |
            el\s.+\sescribió\s?: |
            op\s.+\sschreef.*: |
            den\s.+\sskrev.*: |
            .+\sskrev\s.+: |
            (w\sdniu|dnia)\s.+\snapisał(a|\(a\))?\s?:? |
            il\s.+\sha\sscritto\s?: |
            .+のメッセージ\s?[:：]
        )$",
    );
    // "2022年1月1日(金) 9:00 田中太郎 <taro@example.com>:" and friends: an address, a digit, a colon.
    let generic = re(&GENERIC, r"^.*\d.*@.*[:：]$");
    lang.is_match(line) || generic.is_match(line)
}

fn separator(line: &str) -> bool {
    static SEP: OnceLock<Regex> = OnceLock::new();
    re(
        &SEP,
        r"(?i)^[-_ ]*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|oprindelig meddelelse|originalmeddelande|oorspronkelijk bericht|wiadomość oryginalna|messaggio originale|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado)\s*-{2,}[-_ ]*$",
    )
    .is_match(line)
}

fn header_from(line: &str) -> bool {
    static FROM: OnceLock<Regex> = OnceLock::new();
    re(&FROM, r"(?i)^\*?(from|von|de|van|od|fra|från|da)\s?:\*?\s*\S").is_match(line)
}

fn header_other(line: &str) -> bool {
    static OTHER: OnceLock<Regex> = OnceLock::new();
    re(
        &OTHER,
        r"(?i)^\*?(sent|date|gesendet|datum|envoyé|enviado|enviado el|fecha|wysłano|sendt|skickat|verzonden|inviato|data|to|an|à|para|aan|subject|betreff|objet|asunto|temat|onderwerp|emne|ämne)\s?:\*?",
    )
    .is_match(line)
}

fn mobile_signature(line: &str) -> bool {
    static MOBILE: OnceLock<Regex> = OnceLock::new();
    re(
        &MOBILE,
        r"(?ix)^(
            sent\sfrom\smy\s(iphone|ipad|ipod|android(\s(device|phone))?|mobile(\s(device|phone))?|smartphone|blackberry.*|samsung.*|galaxy.*|huawei.*|pixel.*|windows\sphone) |
            sent\sfrom\s(outlook|mail|yahoo\smail)\s(for|on)\s.+ |
            get\soutlook\sfor\s(ios|android).* |
            von\smeinem\s.+\sgesendet |
            gesendet\svon\smeinem\s.+ |
            envoyé\sde\smon\s.+ |
            enviado\sdesde\smi\s.+
        )\.?$",
    )
    .is_match(line)
}

/// Longer than any attribution line seen in the fixtures, even wrapped over three lines with a
/// long name and address.
const MAX_ATTRIBUTION_BYTES: usize = 400;

/// Where the quoted history starts, if anywhere after some new text.
fn history_start(lines: &[&str]) -> Option<usize> {
    let mut seen_text = false;
    for i in 0..lines.len() {
        let line = lines[i].trim();
        if seen_text {
            if separator(line) {
                return Some(i);
            }
            // Outlook's underscore rule, or a header block right here.
            let block_at = if line.chars().all(|c| c == '_') && line.len() >= 10 { i + 1 } else { i };
            let block: Vec<&str> =
                lines.iter().skip(block_at).map(|l| l.trim()).filter(|l| !l.is_empty()).take(5).collect();
            if block.first().is_some_and(|l| header_from(l)) && block[1..].iter().any(|l| header_other(l)) {
                return Some(i);
            }
            // Attributions may be wrapped over up to three lines by the sending client.
            let mut joined = String::new();
            for next in lines.iter().skip(i).take(3) {
                let next = next.trim();
                if next.is_empty() {
                    break;
                }
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(next);
                // Attributions are short; a long paragraph need not go through the patterns
                // (they were half of the recording time for bodies with long lines).
                if joined.len() > MAX_ATTRIBUTION_BYTES {
                    break;
                }
                if attribution(&joined) {
                    return Some(i);
                }
            }
        }
        if !line.is_empty() && !line.starts_with('>') {
            seen_text = true;
        }
    }
    None
}

/// The new part of a plain-text reply body.
pub fn visible_text(body: &str) -> String {
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    let all: Vec<&str> = normalized.lines().map(|l| l.trim_end()).collect();
    let mut lines: Vec<&str> = match history_start(&all) {
        Some(cut) => all[..cut].to_vec(),
        None => all.clone(),
    };
    lines.retain(|l| !l.trim_start().starts_with('>'));
    if let Some(sig) = lines.iter().position(|l| *l == "--" || *l == "-- ") {
        lines.truncate(sig);
    }
    while lines.last().is_some_and(|l| l.trim().is_empty() || mobile_signature(l.trim())) {
        lines.pop();
    }
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    if lines.is_empty() {
        return all.join("\n").trim().to_string();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("Thanks!\n\nOn Mon, 1 Jan 2026 at 10:00, Alice <a@x.test> wrote:\n> old\n> older", "Thanks!"),
            ("Thanks!\n\nOn Mon, 1 Jan 2026 at 10:00, Alice\n<a@x.test> wrote:\n> old", "Thanks!"),
            ("Danke.\n\nAm 01.01.2026 um 10:00 schrieb Alice <a@x.test>:\n> alt", "Danke."),
            ("Merci.\n\nLe lun. 1 janv. 2026 à 10:00, Alice <a@x.test> a écrit :\n> vieux", "Merci."),
            ("Gracias.\n\nEl lun, 1 ene 2026 a las 10:00, Alice (<a@x.test>) escribió:\n> viejo", "Gracias."),
            ("Done.\n\n-----Original Message-----\nFrom: Alice\nSent: Monday\n\nold", "Done."),
            ("Erledigt.\n\n-----Ursprüngliche Nachricht-----\nVon: Alice\nold", "Erledigt."),
            ("Fait.\n\n-----Message d'origine-----\nDe : Alice\nold", "Fait."),
            ("Hecho.\n\n-----Mensaje original-----\nDe: Alice\nold", "Hecho."),
            (
                "Done.\n\nFrom: Alice <a@x.test>\nSent: Monday, 1 January 2026 10:00\nTo: support\nSubject: x\n\nold",
                "Done.",
            ),
            (
                "Erledigt.\n\nVon: Alice <a@x.test>\nGesendet: Montag, 1. Januar 2026 10:00\nAn: support\n\nalt",
                "Erledigt.",
            ),
            ("Fait.\n\nDe : Alice <a@x.test>\nEnvoyé : lundi 1 janvier 2026 10:00\nÀ : support\n\nvieux", "Fait."),
            (
                "Hecho.\n\nDe: Alice <a@x.test>\nEnviado el: lunes, 1 de enero de 2026 10:00\nPara: support\n\nviejo",
                "Hecho.",
            ),
            ("Done.\n\n________________________________\nFrom: Alice <a@x.test>\nSent: Monday\n\nold", "Done."),
            (
                "Yes, see below.\n> question one?\nanswer one\n> question two?\nanswer two",
                "Yes, see below.\nanswer one\nanswer two",
            ),
            ("Restarted the server.\n\n-- \nBob\nACME IT", "Restarted the server."),
            ("On it.\n\nSent from my iPhone", "On it."),
            ("On it.\n\nVon meinem iPhone gesendet", "On it."),
            ("On it.\n\nEnvoyé de mon iPhone", "On it."),
            ("On it.\n\nEnviado desde mi iPhone", "On it."),
            ("On it.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "On it."),
            ("Sent from my desk, it is easier.", "Sent from my desk, it is easier."),
            (
                "From: the CFO's office we got approval.\nPlease proceed.",
                "From: the CFO's office we got approval.\nPlease proceed.",
            ),
            ("> only quoted\n> nothing new", "> only quoted\n> nothing new"),
            ("\r\nWindows line ends\r\n\r\nOn Mon, Alice <a@x.test> wrote:\r\n> x\r\n", "Windows line ends"),
        ];
        for (input, want) in cases {
            assert_eq!(visible_text(input), *want, "input: {input:?}");
        }
    }

    proptest::proptest! {
        /// Never panics, and never invents text: every output line is an input line.
        #[test]
        fn output_lines_come_from_input(body in "(?s).{0,400}") {
            let out = visible_text(&body);
            let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
            let input: Vec<&str> = normalized.lines().map(|l| l.trim_end()).collect();
            for line in out.lines() {
                proptest::prop_assert!(input.contains(&line.trim_end()), "{:?} not in input", line);
            }
        }
    }
}
