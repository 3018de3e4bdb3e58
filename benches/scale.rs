//! Scale: a desk after years. Builds a database of 1,000,000 tickets and 5,000,000 messages
//! (`MAILDESK_BENCH_TICKETS` for fewer; five messages a ticket: the request, its acknowledgement,
//! the technician's notice, the technician's reply and its copy to the requester, with the outbox
//! rows, events and status log that go with them), then prints:
//! - wall time of the real `maildesk show N`, the first page of `maildesk tickets`, and
//!   `maildesk status` (median of 5 runs, process start included), and of an erasure (dry run);
//! - database bytes per message, and what zstd would save on stored raw messages and cost, over a
//!   sample of the benchmark's realistic mail;
//! - with the mail lab running: a backlog of 1,000 messages ingested into this database against the
//!   same backlog into an empty one, in the same run.
//!
//! `MAILDESK_BENCH_SCALE_KEEP=PATH` keeps a copy of the built database (for profiling).
//!
//! A benchmark: it measures and prints (and writes target/bench/scale.json); it never fails on time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::params;

mod lab;
use lab::{Daemon, generate, seed_maildir};

const DAY: i64 = 86_400;

fn main() {
    let tickets: i64 = std::env::var("MAILDESK_BENCH_TICKETS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/maildesk");
    assert!(bin.exists(), "build the release binary first (scripts/bench does)");
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("big.db");
    let config = dir.path().join("maildesk.toml");
    std::fs::write(
        &config,
        format!(
            "[helpdesk]\nname = \"Scale\"\ntag = \"BIG\"\naddress = \"support@big.test\"\ndatabase = \"{}\"\n\
             templates = \"{}/templates\"\ntechnicians = [{}]\nadmins = [\"boss@big.test\"]\n[imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n",
            database.display(),
            root.display(),
            (0..50).map(|n| format!("\"tech{n}@big.test\"")).collect::<Vec<_>>().join(", ")
        ),
    )
    .unwrap();

    let t = Instant::now();
    let messages = build(&database, tickets);
    let built = t.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&database).map(|m| m.len()).unwrap_or(0);
    println!(
        "scale: {tickets} tickets, {messages} messages built in {built:.1} s; database {:.2} GB, {:.0} bytes per message",
        file_bytes as f64 / 1e9,
        file_bytes as f64 / messages as f64
    );

    let run = |args: &[&str]| -> f64 {
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let out = Command::new(&bin).arg("--config").arg(&config).args(args).output().unwrap();
                assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[2]
    };
    let middle = (tickets / 2).to_string();
    let show = run(&["show", &middle]);
    let page = run(&["tickets", "--limit", "50"]);
    let open_page = run(&["tickets", "--status", "open", "--limit", "50"]);
    let status = run(&["status"]);
    // A dry run does all of an erasure's work in a transaction it rolls back.
    let erase = run(&["erase", "--requester", "user123@corp123.example", "--dry-run"]);
    println!("{:<44} {:>8.1} ms   (target < 50 ms)", format!("maildesk show {middle}"), show * 1e3);
    println!("{:<44} {:>8.1} ms   (target < 50 ms)", "maildesk tickets --limit 50", page * 1e3);
    println!("{:<44} {:>8.1} ms", "maildesk tickets --status open --limit 50", open_page * 1e3);
    println!("{:<44} {:>8.1} ms   (target < 100 ms)", "maildesk status", status * 1e3);
    println!("{:<44} {:>8.1} ms   (holds the write lock)", "maildesk erase --requester ... --dry-run", erase * 1e3);
    // Full-text search over every inbound message (two per ticket): a word in one ticket, a word
    // in one ticket in 977, and words in every message (all ranked, the best 20 shown).
    let search_rare = run(&["search", &middle, "--limit", "20"]);
    let search_some = run(&["search", "E42", "tray", "--limit", "20"]);
    let search_all = run(&["search", "printer", "jams", "--limit", "20"]);
    println!("{:<44} {:>8.1} ms   (target < 100 ms)", format!("maildesk search {middle}"), search_rare * 1e3);
    println!("{:<44} {:>8.1} ms   (target < 100 ms)", "maildesk search E42 tray (1 ticket in 977)", search_some * 1e3);
    println!("{:<44} {:>8.1} ms", "maildesk search printer jams (every message)", search_all * 1e3);
    // Digests: the daily one for all 50 technicians and the weekly one, each queued in one
    // transaction (timed once: a period's digest goes once).
    let once = |args: &[&str]| -> f64 {
        let t = Instant::now();
        let out = Command::new(&bin).arg("--config").arg(&config).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        t.elapsed().as_secs_f64()
    };
    let digest_daily = once(&["digest", "--kind", "daily"]);
    let digest_weekly = once(&["digest", "--kind", "weekly"]);
    println!("{:<44} {:>8.1} ms   (target < 2 s)", "maildesk digest --kind daily (50 technicians)", digest_daily * 1e3);
    println!("{:<44} {:>8.1} ms", "maildesk digest --kind weekly", digest_weekly * 1e3);
    // replay --dry-run of 200 new mails on the big desk: done and rolled back, nothing written.
    let mbox = dir.path().join("past.mbox");
    let mails: String = (0..200)
        .map(|i| {
            format!(
                "From someone@corp.example Sat Dec  5 09:00:00 2026\nFrom: replay{i}@corp.example\nTo: support@big.test\n\
                 Subject: Printer {i} jams again\nMessage-ID: <replay{i}@corp.example>\n\nTray 2, error E42.\n\n"
            )
        })
        .collect();
    std::fs::write(&mbox, mails).unwrap();
    let tickets_before: i64 = rusqlite::Connection::open(&database)
        .and_then(|c| c.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)))
        .unwrap();
    let replay = once(&["replay", "--dry-run", "--json", mbox.to_str().unwrap()]);
    let tickets_after: i64 = rusqlite::Connection::open(&database)
        .and_then(|c| c.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(tickets_before, tickets_after, "replay wrote nothing");
    // Each new ticket notifies all 50 technicians: 51 mails made per replayed mail.
    println!(
        "{:<44} {:>8.1} ms   (51 mails made each; nothing written)",
        "maildesk replay --dry-run (200 mails)",
        replay * 1e3
    );

    // For profiling: MAILDESK_BENCH_SCALE_KEEP=PATH keeps a copy of the built database.
    if let Ok(keep) = std::env::var("MAILDESK_BENCH_SCALE_KEEP") {
        std::fs::copy(&database, &keep).unwrap();
        println!("kept a copy of the database at {keep}");
    }
    let zstd = compression();
    let ingest = ingest_against_empty(&bin, &database);

    let results = serde_json::json!({
        "tickets": tickets, "messages": messages, "build_secs": built,
        "database_bytes": file_bytes, "bytes_per_message": file_bytes as f64 / messages as f64,
        "cli_ms": { "show": show * 1e3, "tickets_first_page": page * 1e3, "tickets_open_first_page": open_page * 1e3,
                    "status": status * 1e3, "erase_dry_run": erase * 1e3,
                    "search_one_ticket": search_rare * 1e3, "search_one_in_977": search_some * 1e3,
                    "search_every_message": search_all * 1e3,
                    "digest_daily_50_technicians": digest_daily * 1e3, "digest_weekly": digest_weekly * 1e3,
                    "replay_dry_run_200_mails": replay * 1e3 },
        "zstd": zstd, "ingest": ingest,
    });
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("scale.json"), serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("written to target/bench/scale.json");
}

/// Fills a new database through maildesk's own schema. Returns the number of messages.
fn build(path: &Path, tickets: i64) -> i64 {
    drop(maildesk::store::open(path).unwrap());
    let mut conn = rusqlite::Connection::open(path).unwrap();
    // Building is not what is measured: no fsync until the end.
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    let now = maildesk::store::now();
    let mut messages = 0i64;
    let chunk = 50_000;
    for start in (0..tickets).step_by(chunk as usize) {
        let tx = conn.transaction().unwrap();
        {
            let mut ticket = tx
                .prepare(
                    "INSERT INTO tickets(id, subject, requester, requester_name, status, priority, assignee, created_at,
                         updated_at, first_response_at, resolved_at, closed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .unwrap();
            let mut message = tx
                .prepare(
                    "INSERT INTO messages(id, ticket_id, direction, message_id, kind, from_addr, from_name, to_addrs, subject,
                         received_at, body_text, internal, content_sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .unwrap();
            let mut raw =
                tx.prepare("INSERT INTO message_raw(message_id, raw, trimmed_at) VALUES (?1, ?2, ?3)").unwrap();
            let mut outbox = tx
                .prepare(
                    "INSERT INTO outbox(message_id, ticket_id, envelope_from, recipient, status, attempts, created_at,
                         next_attempt_at, sent_at)
                     VALUES (?1, ?2, 'support@big.test', ?3, 'sent', 1, ?4, ?4, ?4)",
                )
                .unwrap();
            let mut event = tx
                .prepare("INSERT INTO events(ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)")
                .unwrap();
            let mut log = tx.prepare("INSERT INTO status_log(ticket_id, at, status) VALUES (?1, ?2, ?3)").unwrap();
            for id in start + 1..=(start + chunk).min(tickets) {
                let created = now - 3 * 365 * DAY + id * (3 * 365 * DAY) / tickets.max(1);
                let (status, closed) = match id % 20 {
                    0..=13 => ("closed", Some(created + 3 * DAY)),
                    14..=15 => ("resolved", None),
                    16..=18 => ("open", None),
                    _ => ("pending", None),
                };
                let requester = format!("user{}@corp{}.example", id % 50_000, id % 300);
                let tech = format!("tech{}@big.test", id % 50);
                let subject = format!("Printer on floor {} shows error E{} again", id % 12, id % 977);
                ticket
                    .execute(params![
                        id,
                        subject,
                        requester,
                        format!("User {}", id % 50_000),
                        status,
                        ["P1", "P2", "P3", "P4"][(id % 4) as usize],
                        tech,
                        created,
                        created + DAY,
                        created + 3600,
                        closed.map(|c| c - DAY),
                        closed
                    ])
                    .unwrap();
                let tag = format!("[BIG #{id}]");
                let parts: [(&str, &str, &str, &str, i64, bool); 5] = [
                    ("in", "request", &requester, "support@big.test", 0, false),
                    ("out", "acknowledgement", "support@big.test", &requester, 1, false),
                    ("out", "new-ticket", "support@big.test", &tech, 2, true),
                    ("in", "technician-reply", &tech, "support@big.test", 3600, false),
                    ("out", "reply", "support@big.test", &requester, 3601, false),
                ];
                for (n, (direction, kind, from, to, after, internal)) in parts.iter().enumerate() {
                    let m = id * 5 + n as i64;
                    let mid = format!("{kind}.{id}.{n}.scale@big.test");
                    let at = created + after;
                    let body = format!(
                        "Hello,\n\nthe printer on floor {} shows E{} again since this morning; it was fixed last week \
                         but the tray still jams after a few pages. Ticket {id}, note {n}.\n\nThanks",
                        id % 12,
                        id % 977
                    );
                    message
                        .execute(params![
                            m,
                            id,
                            direction,
                            mid,
                            kind,
                            from,
                            None::<String>,
                            to,
                            format!("{tag} {subject}"),
                            at,
                            body,
                            internal,
                            (*direction == "in").then(|| format!("{m:064x}"))
                        ])
                        .unwrap();
                    let headers = format!(
                        "Return-Path: <{from}>\r\nDelivered-To: {to}\r\nReceived: from mx.corp.example (mx.corp.example [192.0.2.7])\r\n\
                         \tby mail.big.test with ESMTPS id {m:x}; Mon, 2 Nov 2026 10:00:00 +0000\r\nFrom: {from}\r\nTo: {to}\r\n\
                         Subject: {tag} {subject}\r\nMessage-ID: <{mid}>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
                         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                    );
                    // Inbound mail is kept whole; outbound keeps its header block once sent.
                    let bytes = if *direction == "in" { format!("{headers}{body}\r\n") } else { headers };
                    raw.execute(params![m, bytes.as_bytes(), (*direction == "out").then_some(at)]).unwrap();
                    if *direction == "out" {
                        outbox.execute(params![m, id, to, at]).unwrap();
                    }
                    messages += 1;
                }
                event.execute(params![id, created, "maildesk", "opened", format!("opened by {requester}")]).unwrap();
                event.execute(params![id, created + 3600, tech, "status", format!("status open -> {status}")]).unwrap();
                log.execute(params![id, created, "open"]).unwrap();
                if status != "open" {
                    log.execute(params![id, created + 3600, status]).unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;").unwrap();
    drop(conn);
    // On disk before anything is measured: otherwise the daemon's first fsync pays for writing the
    // whole freshly built file (0.3 s at 100,000 tickets), which no running desk would.
    std::fs::File::open(path).unwrap().sync_all().unwrap();
    messages
}

/// zstd over the raw messages of the realistic benchmark mailbox: ratio and speed per level.
fn compression() -> serde_json::Value {
    let (sample, _) = generate(2_000, "zstd", "support@big.test", 7);
    let total: usize = sample.iter().map(Vec::len).sum();
    let text_only: Vec<&Vec<u8>> = sample.iter().filter(|m| m.len() < 20_000).collect();
    let text_total: usize = text_only.iter().map(|m| m.len()).sum();
    let mut levels = Vec::new();
    for level in [1, 3, 9] {
        let t = Instant::now();
        let packed: Vec<Vec<u8>> = sample.iter().map(|m| zstd::bulk::compress(m, level).unwrap()).collect();
        let pack_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (p, m) in packed.iter().zip(&sample) {
            let back = zstd::bulk::decompress(p, m.len()).unwrap();
            assert_eq!(back.len(), m.len());
        }
        let unpack_secs = t.elapsed().as_secs_f64();
        let packed_total: usize = packed.iter().map(Vec::len).sum();
        let text_packed: usize =
            sample.iter().zip(&packed).filter(|(m, _)| m.len() < 20_000).map(|(_, p)| p.len()).sum();
        println!(
            "zstd level {level}: all mail {:.0}% of its size ({:.0} MB/s in, {:.0} MB/s out); mail under 20 KB {:.0}%",
            100.0 * packed_total as f64 / total as f64,
            total as f64 / 1e6 / pack_secs,
            total as f64 / 1e6 / unpack_secs,
            100.0 * text_packed as f64 / text_total as f64
        );
        levels.push(serde_json::json!({
            "level": level, "ratio": packed_total as f64 / total as f64, "compress_mb_s": total as f64 / 1e6 / pack_secs,
            "decompress_mb_s": total as f64 / 1e6 / unpack_secs, "ratio_under_20kb": text_packed as f64 / text_total as f64,
        }));
    }
    serde_json::json!({ "sample_messages": sample.len(), "sample_mb": total as f64 / 1e6, "levels": levels })
}

/// 1,000 messages into `database` against the same 1,000 into an empty database, one after the
/// other in this run; each on a mailbox of its own (the first daemon marks its copies read).
fn ingest_against_empty(bin: &Path, database: &Path) -> serde_json::Value {
    if std::net::TcpStream::connect(("127.0.0.1", 1143)).is_err() {
        println!("ingest: the mail lab is not running (scripts/bench starts it); skipped");
        return serde_json::Value::Null;
    }
    let run = format!("{:x}", maildesk::store::now());
    let n = 1_000;
    let mut rates = Vec::new();
    for (name, db) in [("empty", None), ("big", Some(database))] {
        let support = format!("scale-{name}-{run}@example.test");
        let (mail, _) = generate(n, &format!("{run}{name}"), &support, 42);
        let _mailbox = seed_maildir(&support, &mail);
        let t = Instant::now();
        let d = match db {
            Some(db) => Daemon::start_on(bin, &support, 200, db),
            None => Daemon::start(bin, &support, 200, "", ""),
        };
        // Counted past the rows already there, by rowid: a count over millions of rows every few
        // milliseconds would slow down what it measures.
        let last_row: i64 = match db {
            Some(db) => rusqlite::Connection::open(db)
                .unwrap()
                .query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| r.get(0))
                .unwrap(),
            None => 0,
        };
        let done = || -> i64 {
            rusqlite::Connection::open_with_flags(d.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| {
                    c.query_row(
                        "SELECT (SELECT count(*) FROM messages WHERE id > ?1 AND direction = 'in')
                              + (SELECT count(*) FROM quarantine)",
                        [last_row],
                        |r| r.get(0),
                    )
                })
                .unwrap_or(0)
        };
        // The backlog is timed from the IMAP login on; start-up is printed apart.
        let mut connected = None;
        while done() < n as i64 {
            assert!(t.elapsed() < Duration::from_secs(900), "ingest did not finish: {} of {n}", done());
            if connected.is_none() && d.ready() {
                connected = Some(t.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let total = t.elapsed().as_secs_f64();
        let start_up = connected.unwrap_or(0.0);
        let secs = total - start_up;
        println!(
            "ingest of {n} messages into the {name} database: {secs:.2} s after the IMAP login ({:.0} msg/s); start-up {start_up:.2} s",
            n as f64 / secs
        );
        rates.push(n as f64 / secs);
    }
    println!(
        "ingest into the big database: {:.0}% of the rate into an empty one (target >= 85%)",
        100.0 * rates[1] / rates[0]
    );
    serde_json::json!({ "messages": n, "empty_msgs_per_sec": rates[0], "big_msgs_per_sec": rates[1], "ratio": rates[1] / rates[0] })
}
