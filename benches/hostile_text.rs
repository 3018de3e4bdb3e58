//! Hostile bodies through the pure intake path: 10 MB texts shaped to make a quote stripper or a
//! parser go quadratic (blank lines, `>` lines, attribution-like lines, header-like lines, one
//! 10 MB line). Each is parsed and stripped as the daemon does (`parse_batch`), and the quote
//! stripper is also timed alone. Target: under a second each, so one mail can never stall intake.
//! A request with 20,000 Cc addresses is then recorded through the real recording path (parse,
//! plan, store, compose every outbound mail), which took 109 s before watchers were capped and the
//! Cc header built once. Prints a table; `cargo bench --bench hostile_text`.

use std::time::Instant;

use maildesk::config::Config;
use maildesk::desk::Desk;
use maildesk::inbound::record::{Destination, Fetched, parse_batch, record_batch};
use maildesk::reply_text::visible_text;
use maildesk::templates::Templates;

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
    cc_flood();
}

/// 20,000 Cc addresses on one new request, recorded as the daemon records it.
fn cc_flood() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::from_str(
        &dir.path().join("maildesk.toml"),
        &format!(
            "[helpdesk]\nname = \"ACME IT\"\ntag = \"ACME\"\naddress = \"support@acme.example\"\ndatabase = \"m.db\"\n\
             templates = \"{}\"\ntechnicians = [\"tech1@acme.example\", \"tech2@acme.example\"]\n\
             [imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n",
            root.join("templates").display()
        ),
    )
    .expect("a valid config");
    let templates = Templates::load(&config.helpdesk.templates).expect("the templates");
    let mut conn = maildesk::store::open(&config.helpdesk.database).expect("a database");
    let instance = maildesk::store::instance_token(&conn).expect("an instance token");
    let desk = Desk {
        config: &config,
        templates: &templates,
        instance: &instance,
        reply_secret: b"0123456789abcdef",
        home_queue: 0,
    };
    let cc: Vec<String> = (0..20_000).map(|i| format!("person{i}@flood.example")).collect();
    let raw = format!(
        "From: mallory@evil.example\r\nTo: support@acme.example\r\nCc: {}\r\nSubject: flood\r\n\
         Message-ID: <flood@evil.example>\r\n\r\nHello everyone.\r\n",
        cc.join(", ")
    );
    let batch = [Fetched { uid: 1, raw: raw.into_bytes() }];
    let start = Instant::now();
    let outcomes = record_batch(
        &mut conn,
        &desk,
        &Destination { mailbox: "INBOX", uid_validity: 1, advance_to: Some(1), now: 1_795_341_600 },
        &batch,
        None,
    )
    .expect("recorded");
    let took = start.elapsed().as_secs_f64();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("a count") };
    println!(
        "20,000 Cc addresses: recorded in {took:.3} s ({}), {} watchers, {} outbox rows  {}",
        match &outcomes[0].1 {
            maildesk::inbound::record::Outcome::Ticket { .. } => "a ticket",
            _ => "not a ticket",
        },
        count("SELECT count(*) FROM watchers"),
        count("SELECT count(*) FROM outbox"),
        if took < 1.0 { "met" } else { "NOT MET" }
    );
}
