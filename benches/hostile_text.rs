//! Hostile bodies through the pure intake path: 10 MB texts shaped to make a quote stripper or a
//! parser go quadratic (blank lines, `>` lines, attribution-like lines, header-like lines, one
//! 10 MB line). Each is parsed and stripped as the daemon does (`parse_batch`), and the quote
//! stripper is also timed alone. Target: under a second each, so one mail can never stall intake.
//! Prints a table; `cargo bench --bench hostile_text`.

use std::time::Instant;

use maildesk::inbound::record::{Fetched, parse_batch};
use maildesk::reply_text::visible_text;

const SIZE: usize = 10 * 1024 * 1024;

fn repeat_to_size(unit: &str) -> String {
    let mut s = String::with_capacity(SIZE + unit.len());
    s.push_str("Hi,\n");
    while s.len() < SIZE {
        s.push_str(unit);
    }
    s
}

fn main() {
    let shapes: Vec<(&str, String)> = vec![
        ("blank lines", repeat_to_size("\n")),
        ("'>' lines", repeat_to_size("> quoted\n")),
        ("'>' then text", repeat_to_size("> question\nanswer\n")),
        ("attribution-like lines", repeat_to_size("On Mon, 1 Jan 2026 at 10:00, a@b.test wrote:\n")),
        ("attributions over inline quotes", repeat_to_size("On Mon, a@b.test wrote:\n> q\nanswer\n")),
        ("'From:' then blank lines", repeat_to_size("From: a@b.test\n\n\n\n\n\n\n\n")),
        ("underscore rules", repeat_to_size("__________\n\n\n")),
        ("one 10 MB line", repeat_to_size("x")),
        ("device lines", repeat_to_size("Sent from my iPhone\n")),
    ];
    println!("{:<34} {:>10} {:>14} {:>14}  target < 1 s", "10 MB body", "bytes", "strip only", "parse + strip");
    let mut worst = 0f64;
    for (name, body) in &shapes {
        let start = Instant::now();
        let visible = visible_text(body);
        let strip = start.elapsed().as_secs_f64();
        let raw = format!(
            "From: mallory@evil.test\r\nTo: support@acme.test\r\nSubject: hostile\r\nMessage-ID: <h@evil.test>\r\n\r\n{body}"
        );
        let batch = [Fetched { uid: 1, raw: raw.into_bytes() }];
        let start = Instant::now();
        let parsed = parse_batch(&batch);
        let whole = start.elapsed().as_secs_f64();
        assert_eq!(parsed.len(), 1);
        worst = worst.max(whole).max(strip);
        println!(
            "{name:<34} {:>10} {:>12.3} s {:>12.3} s  {}  (kept {} bytes)",
            body.len(),
            strip,
            whole,
            if strip.max(whole) < 1.0 { "met" } else { "NOT MET" },
            visible.len()
        );
    }
    println!("worst: {worst:.3} s");
}
