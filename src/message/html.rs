//! HTML to plain text, keeping the block structure that quote stripping needs.
//!
//! HTML-only replies (Outlook, many webmails) carry their history below a `<div>`/`<hr>`, a
//! `<blockquote>` or an Outlook header block in its own `<p>`s. A converter that joins blocks
//! ("Thank you!From: …") hides every one of those markers. Here block-level tags end a line,
//! `<blockquote>` content is prefixed with `> ` per level (so a trailing quote is recognised as one),
//! `<style>`, `<script>`, `<head>` and comments are dropped, and entities are decoded.
//! One pass over the input: linear, whatever the nesting.

/// Tags that end a line when they open or close.
const BLOCK: &[&str] = &[
    "p", "div", "br", "hr", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section",
    "article", "header", "footer", "address", "dd", "dt", "dl", "center", "form", "fieldset", "title",
];

/// Tags whose content is not text.
const HIDDEN: &[&str] = &["style", "script", "head", "title", "xml", "template"];

/// Converts an HTML body to text.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut quote_depth = 0usize;
    let mut hidden: Option<&'static str> = None;
    let mut at_line_start = true;
    let mut pending_space = false;
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map(|e| &after[e + 3..]).unwrap_or("");
            continue;
        }
        if rest.starts_with('<') {
            let tag = match rest.find('>') {
                Some(e) => {
                    let tag = &rest[1..e];
                    rest = &rest[e + 1..];
                    tag
                }
                None => std::mem::take(&mut rest).get(1..).unwrap_or(""),
            };
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if let Some(h) = hidden {
                if closing && name == h {
                    hidden = None;
                }
                continue;
            }
            if !closing
                && !tag.ends_with('/')
                && let Some(h) = HIDDEN.iter().find(|h| **h == name)
            {
                hidden = Some(h);
                continue;
            }
            if name == "blockquote" {
                if !at_line_start {
                    newline(&mut out, &mut at_line_start);
                }
                quote_depth = if closing { quote_depth.saturating_sub(1) } else { quote_depth + 1 };
            } else if BLOCK.contains(&name.as_str()) {
                // `<br>` ends a line even when the line is empty; other blocks do not stack blank lines.
                if name == "br" || !at_line_start {
                    newline(&mut out, &mut at_line_start);
                } else if name == "p" && !out.ends_with("\n\n") && !out.is_empty() {
                    out.push('\n');
                }
            } else if name == "td" || name == "th" {
                pending_space = true;
            }
            pending_space |= name == "img" && !at_line_start;
            continue;
        }
        if hidden.is_some() {
            let next = rest.find('<').unwrap_or(rest.len());
            rest = &rest[next..];
            continue;
        }
        let next = rest.find(['<', '&']).unwrap_or(rest.len());
        let (text, from_entity) = if next == 0 && rest.starts_with('&') {
            let (decoded, len) = entity(rest);
            rest = &rest[len..];
            (decoded, true)
        } else {
            let t = &rest[..next];
            rest = &rest[next..];
            (t.to_string(), false)
        };
        for c in text.chars() {
            // Source line breaks and runs of spaces are layout, not text (outside <pre>).
            if c.is_whitespace() && !(from_entity && c == '\u{a0}') {
                pending_space = !at_line_start;
                continue;
            }
            if at_line_start {
                for _ in 0..quote_depth {
                    out.push_str("> ");
                }
                at_line_start = false;
                pending_space = false;
            }
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(if c == '\u{a0}' { ' ' } else { c });
        }
    }
    let trimmed: Vec<&str> = out.lines().map(str::trim_end).collect();
    trimmed.join("\n").trim_matches('\n').to_string()
}

fn newline(out: &mut String, at_line_start: &mut bool) {
    out.push('\n');
    *at_line_start = true;
}

/// Decodes the entity at the start of `s`; returns the text and how many bytes it took. An `&`
/// that starts no known entity is itself.
fn entity(s: &str) -> (String, usize) {
    // ';' is ASCII, so its byte position is a character boundary.
    let Some(semi) = s.as_bytes()[..s.len().min(12)].iter().position(|b| *b == b';') else { return ("&".into(), 1) };
    let name = &s[1..semi];
    let c = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        "ndash" => Some('–'),
        "mdash" => Some('—'),
        "hellip" => Some('…'),
        "rsquo" => Some('’'),
        "lsquo" => Some('‘'),
        "rdquo" => Some('”'),
        "ldquo" => Some('“'),
        "euro" => Some('€'),
        "copy" => Some('©'),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32)
            .filter(|c| !c.is_control() || *c == '\n'),
    };
    match c {
        Some(c) => (c.to_string(), semi + 1),
        None => ("&".into(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_end_lines_and_quotes_are_marked() {
        let html = "<html><head><style>p{}</style></head><body><div>Thank you!</div><div><br></div>\
<hr><p><b>From:</b> Alice &lt;a@x.test&gt;<br><b>Sent:</b> Monday</p><p>old&nbsp;text</p></body></html>";
        assert_eq!(html_to_text(html), "Thank you!\n\nFrom: Alice <a@x.test>\nSent: Monday\n\nold text");
        let gmail = "<div dir=\"ltr\">Done.</div><br><div class=\"gmail_quote\"><div>On Mon, Bob &lt;b@x.test&gt; wrote:<br></div>\
<blockquote class=\"gmail_quote\">Is it\nfixed?<blockquote>older</blockquote></blockquote></div>";
        assert_eq!(html_to_text(gmail), "Done.\n\nOn Mon, Bob <b@x.test> wrote:\n> Is it fixed?\n> > older");
    }

    #[test]
    fn entities_and_comments() {
        assert_eq!(html_to_text("a &amp; b &#233; &#x41; &bogus; <!-- x -->c"), "a & b é A &bogus; c");
        assert_eq!(html_to_text("<p>unclosed <b"), "unclosed");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,300}") {
            let _ = html_to_text(&s);
        }
    }
}
