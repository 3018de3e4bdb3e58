//! Profiling harness for the recording path (no mail servers): records N messages in batches of
//! 200 (the daemon's default), exactly as the daemon does, and prints the time:
//!
//!   cargo build --release --example profile_record
//!   valgrind --tool=callgrind target/release/examples/profile_record 400
//!   BIG=1 target/release/examples/profile_record 1000     # 40 KB bodies: the write cost
//!   DIR=<a Maildir's cur/> target/release/examples/profile_record 1000   # real messages, e.g.
//!                     # the benchmark's mailbox, kept by MAILDESK_BENCH_KEEP=1 scripts/bench
use maildesk::config::Config;
use maildesk::desk::Desk;
use maildesk::inbound::record::{Destination, Fetched, parse_batch, record_batch};
fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[helpdesk]\nname = \"A\"\ntag = \"A\"\naddress = \"s@a.test\"\ndatabase = \"m.db\"\ntemplates = \"{root}/templates\"\n[imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n[smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n[limits]\nauto_replies_per_recipient_per_hour = 100000\nauto_replies_per_ticket_per_hour = 100000\n"
    );
    let config = Config::from_str(&dir.path().join("m.toml"), &text).unwrap();
    let templates = maildesk::templates::Templates::load(&config.helpdesk.templates).unwrap();
    let mut conn = maildesk::store::open(&config.helpdesk.database).unwrap();
    let desk = Desk {
        config: &config,
        templates: &templates,
        instance: "x",
        reply_secret: b"0123456789abcdef",
        home_queue: 0,
    };
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    let from_dir: Option<Vec<Fetched>> = std::env::var("DIR").ok().map(|d| {
        let mut paths: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        paths
            .iter()
            .take(n as usize)
            .enumerate()
            .map(|(i, p)| Fetched { uid: i as u32 + 1, raw: std::fs::read(p).unwrap() })
            .collect()
    });
    let msgs: Vec<Fetched> = if let Some(m) = from_dir {
        m
    } else {
        (0..n).map(|i| Fetched { uid: i + 1, raw: format!("From: user{}@x.test\r\nTo: s@a.test\r\nSubject: The printer is jammed {i}\r\nMessage-ID: <m{i}@x.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nHello,\r\nthe printer is jammed.\r\n{}", i % 50, "x".repeat(if std::env::var("BIG").is_ok() { 40_000 } else { 0 })).into_bytes() }).collect()
    };
    let n = msgs.len();
    let t = std::time::Instant::now();
    // As the watcher does: the first batch is parsed beside its writer, every later one while the
    // batch before it is written.
    let chunks: Vec<&[Fetched]> = msgs.chunks(200).collect();
    let mut ahead = None;
    for (i, c) in chunks.iter().enumerate() {
        let next = chunks.get(i + 1);
        ahead = std::thread::scope(|s| {
            let conn = &mut conn;
            let desk = &desk;
            let parsed = ahead.take();
            let writer = s.spawn(move || {
                let through = Some(c.last().unwrap().uid);
                record_batch(
                    conn,
                    desk,
                    &Destination {
                        mailbox: "INBOX",
                        uid_validity: 1,
                        advance_to: through,
                        now: maildesk::store::now(),
                    },
                    c,
                    parsed,
                )
                .unwrap();
            });
            let next = next.map(|n| parse_batch(n));
            writer.join().unwrap();
            next
        });
    }
    eprintln!("{n} in {:?}", t.elapsed());
}
