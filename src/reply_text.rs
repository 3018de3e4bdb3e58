//! The new part of a reply: what maildesk shows and relays, without quoted history or signature.
//!
//! Tickets keep the full raw message; this only decides what people read. The rules, in order:
//! 1. cut at the first marker of quoted history that follows some new text: an "-----Original
//!    Message-----" style separator (in many languages), an Outlook/webmail header block
//!    ("From:/Von:/De:/От:/差出人: …" followed within four lines by "Sent:/Date:/To:/Sujet:/…"), or an
//!    attribution line ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", Zoho's "---- On … wrote
//!    ----", the same verb in a dozen languages, or any line ending in ":" that names an address
//!    and a date, possibly wrapped over three lines). An attribution whose quote is *answered
//!    inline* (new text follows some of the quoted lines) is not history: the conversation goes on
//!    below it, so nothing is cut there;
//! 2. only a **trailing** `>`-quoted block is history: quoted lines that new text follows stay, so
//!    interleaved answers keep the questions they answer;
//! 3. cut at a `-- ` signature separator, at a mailing-list footer, and drop a closing device
//!    line ("Sent from my iPhone", "Von meinem iPhone gesendet", "Get Outlook for iOS", …).
//!    maildesk's rule: such device lines are signatures and are removed; a sentence that merely
//!    starts with "Sent from my" ("Sent from my desk, it is easier.") is text and stays.
//!
//! A marker on the very first line is not history (nothing new precedes it), and if stripping would
//! leave nothing, the whole text is kept: showing too much beats showing nothing.
//!
//! Every step is linear in the text: each line is looked at a bounded number of times, and no
//! pattern ever sees more than [`MAX_MARKER_BYTES`] of a line, so a hostile 10 MB body costs
//! milliseconds (see `benches/reply_text.rs`).

use std::sync::OnceLock;

use regex::Regex;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

/// No marker (attribution, header line, separator, device line) is longer than this; longer lines
/// are text, and patterns see at most this much of any line.
const MAX_MARKER_BYTES: usize = 400;

/// The first `MAX_MARKER_BYTES` of a line, cut at a character boundary.
fn head(line: &str) -> &str {
    if line.len() <= MAX_MARKER_BYTES {
        return line;
    }
    let mut end = MAX_MARKER_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

fn attribution(line: &str) -> bool {
    static LANG: OnceLock<Regex> = OnceLock::new();
    static VERB: OnceLock<Regex> = OnceLock::new();
    static GENERIC: OnceLock<Regex> = OnceLock::new();
    // Zoho and some webmails frame it: "---- On Mon, … wrote ----".
    let line = line.trim_matches(|c: char| c == '-' || c == '=' || c.is_whitespace());
    let lang = re(
        &LANG,
        r"(?ix)^(
            on\s.+\swrote\s?:? |
            am\s.+\sschrieb.*: |
            le\s.+\sa\s+écrit\s?:? |
            el\s.+\sescribió\s?:? |
            em\s.+\sescreveu\s?:? |
            op\s.+\sschreef.*: |
            den\s.+\sskrev.*: |
            .+\sskrev\s.+: |
            (w\sdniu|dnia)\s.+\snapisał(a|\(a\))?\s?:? |
            il\s.+\sha\sscritto\s?:? |
            .+のメッセージ\s?[:：]
        )$",
    );
    // "…, Alice <a@x> пишет:", "… kirjoitti:", "… 写道：": the verb, then the colon, ends the line.
    let verb = re(
        &VERB,
        r"(?i)\s(wrote|writes|schrieb|écrit|escribió|escreveu|scrisse|ha scritto|schreef|skrev|skrifaði|kirjoitti|napisał|napisala|napisal|napsal|napísal|írta|yazdı|пишет|написал|написала|писал|έγραψε|כתב|كتب|写道|寫道|書きました|님이 작성)\s?[:：]$",
    );
    // "2022年1月1日(金) 9:00 田中太郎 <taro@example.com>:" and friends: an address, a digit, a colon.
    let generic = re(&GENERIC, r"^.*\d.*@.*[:：]$");
    lang.is_match(line) || verb.is_match(line) || generic.is_match(line)
}

fn separator(line: &str) -> bool {
    static SEP: OnceLock<Regex> = OnceLock::new();
    re(
        &SEP,
        r"(?i)^[-_=* ]*[-=]{2,}\s*(original message|ursprüngliche nachricht|originalnachricht|message d'origine|message original|mensaje original|mensagem original|oprindelig meddelelse|originalmeddelande|opprinnelig melding|oorspronkelijk bericht|wiadomość oryginalna|messaggio originale|původní zpráva|alkuperäinen viesti|исходное сообщение|原始邮件|原始郵件|元のメッセージ|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|mensagem encaminhada|messaggio inoltrato|doorgestuurd bericht|пересылаемое сообщение|reply message|reply above this line)\s*[-=]{2,}[-_=* ]*$",
    )
    .is_match(line)
}

fn header_from(line: &str) -> bool {
    static FROM: OnceLock<Regex> = OnceLock::new();
    re(&FROM, r"(?i)^\*?(from|von|de|van|od|fra|från|da|lähettäjä|feladó|от|от кого|від|kimden|από|מאת|من|差出人|发件人|發件人|보낸 사람)\s?[:：]\*?\s*\S")
        .is_match(line)
}

fn header_other(line: &str) -> bool {
    static OTHER: OnceLock<Regex> = OnceLock::new();
    re(
        &OTHER,
        r"(?i)^\*?(sent|date|gesendet|datum|envoyé|enviado|enviado el|enviada em|fecha|wysłano|sendt|skickat|verzonden|inviato|data|lähetetty|elküldve|odesláno|odoslané|отправлено|надіслано|дата|gönderildi|tarih|στάλθηκε|נשלח|تاريخ الإرسال|送信日時|发送时间|發送時間|日時|보낸 날짜|to|an|à|a|para|aan|do|til|till|vastaanottaja|címzett|komu|кому|kime|προς|אל|إلى|宛先|收件人|받는 사람|cc|subject|betreff|objet|sujet|asunto|assunto|oggetto|temat|onderwerp|emne|ämne|aihe|tárgy|předmět|predmet|тема|konu|θέμα|נושא|الموضوع|件名|主题|主題|제목)\s?[:：]\*?",
    )
    .is_match(line)
}

fn mobile_signature(line: &str) -> bool {
    static MOBILE: OnceLock<Regex> = OnceLock::new();
    // "Sent from my <device>": a short closing line naming a device or app, in several languages.
    // Any device name goes, but at most five words and no sentence punctuation, so "Sent from my
    // desk, it is easier." stays.
    re(
        &MOBILE,
        r"(?ix)^(
            sent\sfrom\smy\s(blackberry|verizon|samsung|huawei|iphone|ipad|android|galaxy|windows\sphone|mobile)\b[^,;]{0,120} |
            (sent|sent\swith|sent\sfrom|envoyé|enviado|enviada|gesendet|inviato|verzonden|verstuurd|skickat|sendt|wysłane|odesláno|lähetetty|отправлено|gönderildi)
              \s(from|with|via|on|de|depuis|desde|do|von|mit|da|vanaf|van|från|fra|z|ze|с|со)\s
              ([\p{L}\p{N}&+'._-]+\s?){1,6} |
            get\soutlook\sfor\s(ios|android).* |
            (von|gesendet\svon)\s(meinem|meiner)\s([\p{L}\p{N}&+'._-]+\s?){1,5}(gesendet)? |
            .{1,20}から送信 |
            发自我的.{1,20} |
            寄件者：?.{0,10}iphone
        )\.?$",
    )
    .is_match(line)
}

/// A mailing list's footer, cut from the end of a message: a rule line, then list boilerplate.
fn list_footer_rule(line: &str) -> bool {
    line.len() >= 10
        && (line.chars().all(|c| c == '_') || line.chars().all(|c| c == '-') || line.chars().all(|c| c == '='))
}

fn list_boilerplate(line: &str) -> bool {
    static LIST: OnceLock<Regex> = OnceLock::new();
    re(
        &LIST,
        r"(?i)(mailing list|unsubscribe|listinfo|list-info|/mailman/|you received this message because|to post to this group|googlegroups\.com|abmelden|désinscri|darse de baja)",
    )
    .is_match(line)
}

fn quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// For each line, the index of the next non-empty line at or after it (`len` if none).
fn next_nonempty(lines: &[&str]) -> Vec<usize> {
    let mut next = vec![lines.len(); lines.len() + 1];
    for i in (0..lines.len()).rev() {
        next[i] = if lines[i].trim().is_empty() { next[i + 1] } else { i };
    }
    next
}

/// For each line, whether new (unquoted, non-empty) text appears at or after it before a signature
/// separator: what tells an inline answer from a trailing quote.
fn text_follows(lines: &[&str]) -> Vec<bool> {
    let mut follows = vec![false; lines.len() + 1];
    for i in (0..lines.len()).rev() {
        let l = lines[i].trim();
        follows[i] = if l == "--" || l == "-- " {
            false
        } else {
            (!l.is_empty() && !quoted(l) && !mobile_signature(head(l))) || follows[i + 1]
        };
    }
    follows
}

/// How many lines an attribution starting at `i` takes (wrapped over up to three lines), if any.
fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let mut joined = String::new();
    for (n, next) in lines.iter().skip(i).take(3).enumerate() {
        let next = next.trim();
        if next.is_empty() || next.len() > MAX_MARKER_BYTES {
            break;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(next);
        if joined.len() > MAX_MARKER_BYTES {
            break;
        }
        if attribution(&joined) {
            return Some(n + 1);
        }
    }
    None
}

/// Where the quoted history starts, if anywhere after some new text.
fn history_start(lines: &[&str]) -> Option<usize> {
    let next = next_nonempty(lines);
    let follows = text_follows(lines);
    let mut seen_text = false;
    for i in 0..lines.len() {
        let line = lines[i].trim();
        if seen_text && !line.is_empty() {
            let h = head(line);
            if separator(h) {
                return Some(i);
            }
            // Outlook's underscore rule, or a header block right here: "From:" and, within the
            // next four non-empty lines, another header field.
            let block_at = if h.len() >= 10 && h.chars().all(|c| c == '_') { next[i + 1] } else { i };
            if block_at < lines.len() && header_from(head(lines[block_at].trim())) {
                let mut j = block_at;
                for _ in 0..4 {
                    j = next[(j + 1).min(lines.len())];
                    if j >= lines.len() {
                        break;
                    }
                    if header_other(head(lines[j].trim())) {
                        return Some(i);
                    }
                }
            }
            if let Some(taken) = attribution_at(lines, i) {
                // An attribution above a quote that is answered inline is not where history starts.
                let after = i + taken;
                let first_quote = next[after.min(lines.len())];
                let inline = first_quote < lines.len() && quoted(lines[first_quote]) && follows[first_quote];
                if !inline {
                    return Some(i);
                }
            }
        }
        if !line.is_empty() && !quoted(line) {
            seen_text = true;
        }
    }
    None
}

/// The new part of a plain-text reply body.
pub fn visible_text(body: &str) -> String {
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    let all: Vec<&str> = normalized.lines().map(|l| l.trim_end()).collect();
    let mut end = history_start(&all).unwrap_or(all.len());
    // A `-- ` signature separator ends the new text.
    if let Some(sig) = all[..end].iter().position(|l| *l == "--" || *l == "-- ") {
        end = sig;
    }
    let mut start = 0;
    // From the end: blank lines, the trailing quoted block, device lines, a list footer; repeated,
    // since they come in any order ("> old", blank, "Sent from my iPhone").
    loop {
        let before = end;
        while end > start && (all[end - 1].trim().is_empty() || quoted(all[end - 1])) {
            end -= 1;
        }
        while end > start && mobile_signature(head(all[end - 1].trim())) {
            end -= 1;
        }
        // A list footer: a rule line within the last eight lines, with list boilerplate below it.
        let window = end.saturating_sub(8).max(start);
        if let Some(rule) = (window..end).rev().find(|&k| list_footer_rule(all[k].trim()))
            && all[rule + 1..end].iter().any(|l| list_boilerplate(head(l)))
        {
            end = rule;
        }
        // The attribution of a trailing quote that was answered only by a footer.
        if let Some(k) = (end.saturating_sub(3).max(start)..end).find(|&k| attribution_at(&all, k) == Some(end - k))
            && k > start
        {
            end = k;
        }
        if end == before {
            break;
        }
    }
    while start < end && all[start].trim().is_empty() {
        start += 1;
    }
    if start == end {
        return all.join("\n").trim().to_string();
    }
    all[start..end].join("\n")
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
            // Interleaved answers keep the questions they answer; only the trailing quote goes.
            (
                "Yes, see below.\n> question one?\nanswer one\n> question two?\nanswer two\n> rest",
                "Yes, see below.\n> question one?\nanswer one\n> question two?\nanswer two",
            ),
            (
                "Hi,\n\nOn Mon, 1 Jan 2026, Bob <b@x.test> wrote:\n> Is the printer on?\nYes.\n> Which floor?\nThird.\n\nAlice",
                "Hi,\n\nOn Mon, 1 Jan 2026, Bob <b@x.test> wrote:\n> Is the printer on?\nYes.\n> Which floor?\nThird.\n\nAlice",
            ),
            ("Thanks.\n\n---- On Mon, 01 Jan 2026 10:00:00 +0100 Alice <a@x.test> wrote ----\n\nold", "Thanks."),
            ("Merci.\n\nDe : Alice\nA : support\nSujet : imprimante\n\nvieux", "Merci."),
            (
                "Спасибо.\n\nОт: Алиса <a@x.test>\nОтправлено: 1 января 2026 г. 10:00\nКому: support\n\nстарое",
                "Спасибо.",
            ),
            ("Спасибо.\n\n1 янв. 2026 г., в 10:00, Алиса <a@x.test> пишет:\n> старое", "Спасибо."),
            ("Obrigado.\n\nEm seg., 1 de jan. de 2026 às 10:00, Alice <a@x.test> escreveu:\n> antigo", "Obrigado."),
            ("Done.\n\nSent from my Fairphone 4", "Done."),
            ("Done.\n\nSent from my BlackBerry 10 smartphone on the Verizon Wireless 4G LTE network.", "Done."),
            ("Done.\n\nVerstuurd vanaf mijn iPhone", "Done."),
            (
                "Díky.\n\nOd: Alice <a@x.test>\nOdesláno: pondělí 1. ledna 2026 10:00\nKomu: support\nPředmět: tiskárna\n\nstaré",
                "Díky.",
            ),
            ("Ευχαριστώ.\n\nΑπό: Alice <a@x.test>\nΣτάλθηκε: Δευτέρα\nΠρος: support\n\nπαλιό", "Ευχαριστώ."),
            ("Done.\n\nSent with Proton Mail secure email.", "Done."),
            ("Done.\n\nInviato da iPhone", "Done."),
            ("Done.\n\niPhoneから送信", "Done."),
            (
                "Works now.\n\n_______________________________________________\nriak-users mailing list\nriak-users@lists.example\nhttp://lists.example/mailman/listinfo/riak-users",
                "Works now.",
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
