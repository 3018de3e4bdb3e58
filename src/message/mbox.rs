//! Messages out of an mbox file (mboxo or mboxrd, as mail clients and `formail` write them), for
//! `maildesk replay`. Pure and linear: one pass over the lines.

/// The messages of `data`, each without its `From ` separator line, with mboxrd's quoting undone
/// (`>From ` at a line's start loses one `>`). A file that does not start with a separator is one
/// message (an `.eml`).
pub fn split(data: &[u8]) -> Vec<Vec<u8>> {
    if !data.split(|b| *b == b'\n').next().is_some_and(|l| is_separator(l.strip_suffix(b"\r").unwrap_or(l))) {
        return if data.iter().all(u8::is_ascii_whitespace) { Vec::new() } else { vec![data.to_vec()] };
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if previous_blank && is_separator(content) {
            if let Some(m) = current.take() {
                out.push(trim_separator_blank(m));
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = content.is_empty();
        let Some(m) = current.as_mut() else { continue };
        let quoted =
            content.iter().position(|b| *b != b'>').is_some_and(|i| i > 0 && content[i..].starts_with(b"From "));
        m.extend_from_slice(if quoted { &line[1..] } else { line });
    }
    if let Some(m) = current {
        out.push(trim_separator_blank(m));
    }
    out.retain(|m| !m.iter().all(u8::is_ascii_whitespace));
    out
}

/// `From sender date`: a sender without spaces, then a date (with digits). A body line "From here
/// on..." that an mboxo writer failed to quote is not one.
fn is_separator(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else { return false };
    let Some(space) = rest.iter().position(|b| *b == b' ') else { return false };
    space > 0 && rest[space..].iter().any(u8::is_ascii_digit)
}

/// The blank line before the next separator belongs to the mbox, not to the message.
fn trim_separator_blank(mut m: Vec<u8>) -> Vec<u8> {
    if m.ends_with(b"\r\n\r\n") {
        m.truncate(m.len() - 2);
    } else if m.ends_with(b"\n\n") {
        m.truncate(m.len() - 1);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_split_at_separators_after_a_blank_line_and_unquoted() {
        let mbox = b"From alice@a.test Sat Dec  5 09:00:00 2026\nSubject: one\n\nHello\n>From the start\n>>From deeper\n\nFrom bob@b.test Sat Dec  5 09:01:00 2026\r\nSubject: two\r\n\r\nFrom inside a paragraph is not a separator\r\nnor is this:\r\nFrom here\r\n\r\n";
        let m = split(mbox);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(String::from_utf8_lossy(&m[0]), "Subject: one\n\nHello\nFrom the start\n>From deeper\n");
        assert_eq!(
            String::from_utf8_lossy(&m[1]),
            "Subject: two\r\n\r\nFrom inside a paragraph is not a separator\r\nnor is this:\r\nFrom here\r\n"
        );
        // An .eml is one message; an empty file none.
        assert_eq!(split(b"Subject: x\n\nbody\n").len(), 1);
        assert!(split(b"\n\n").is_empty());
        assert!(split(b"From x Sat Dec  5 09:00:00 2026\n\n").is_empty());
    }

    #[test]
    fn splitting_is_linear_in_the_input() {
        // Many short messages and one long line: both one pass.
        let many = "From a@b Sat Dec  5 09:00:00 2026\nSubject: s\n\nb\n\n".repeat(20_000);
        assert_eq!(split(many.as_bytes()).len(), 20_000);
        let long = format!("From a@b 2026\nSubject: s\n\n{}\n", ">".repeat(1_000_000));
        assert_eq!(split(long.as_bytes()).len(), 1);
    }
}
