//! Every fixture in `tests/corpus` (real bounces, auto-replies, hostile MIME) goes through the same
//! record path the daemon uses, into a real SQLite file: no panic, and every message accounted for
//! as a ticket or a quarantine record. Bounces and auto-replies must never be acknowledged.

use std::path::{Path, PathBuf};

use maildesk::config::Config;
use maildesk::desk::Desk;
use maildesk::inbound::record::{Destination, Fetched, Outcome, parse_batch, record_batch};
use maildesk::store;
use maildesk::templates::Templates;

fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fixtures(&path, out);
        } else if path.extension().is_some_and(|e| e == "eml") {
            out.push(path);
        }
    }
}

/// A desk on a fresh database in `dir`, with the shipped templates.
fn desk_config(dir: &Path) -> (Config, Templates) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::from_str(
        &dir.join("maildesk.toml"),
        &format!(
            "[helpdesk]\nname = \"ACME IT\"\ntag = \"ACME\"\naddress = \"support@acme.example\"\ndatabase = \"m.db\"\n\
             templates = \"{}\"\n[imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n",
            root.join("templates").display()
        ),
    )
    .unwrap();
    let templates = Templates::load(&config.helpdesk.templates).unwrap();
    (config, templates)
}

#[test]
fn whole_corpus_is_recorded_without_loss() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    fixtures(&root.join("tests/corpus"), &mut files);
    files.sort();
    assert!(files.len() > 200, "corpus missing: {} files", files.len());

    let dir = tempfile::tempdir().unwrap();
    let (config, templates) = desk_config(dir.path());
    let mut conn = store::open(&config.helpdesk.database).unwrap();
    let instance = store::instance_token(&conn).unwrap();
    let desk = Desk {
        config: &config,
        templates: &templates,
        instance: &instance,
        reply_secret: b"0123456789abcdef",
        home_queue: 0,
    };

    let batch: Vec<Fetched> =
        files.iter().enumerate().map(|(i, f)| Fetched { uid: i as u32 + 1, raw: std::fs::read(f).unwrap() }).collect();
    let mut outcomes = Vec::new();
    for (n, chunk) in batch.chunks(25).enumerate() {
        let through = chunk.last().unwrap().uid;
        // Both ways the watcher records a batch: parsed beside the writer, or parsed ahead.
        let ahead = (n % 2 == 1).then(|| parse_batch(chunk));
        outcomes.extend(
            record_batch(
                &mut conn,
                &desk,
                &Destination { mailbox: "INBOX", uid_validity: 1, advance_to: Some(through), now: 1_795_341_600 },
                chunk,
                ahead,
            )
            .unwrap(),
        );
    }
    assert_eq!(outcomes.len(), files.len());

    let tickets: i64 = conn
        .query_row("SELECT count(DISTINCT ticket_id) FROM messages WHERE direction = 'in'", [], |r| r.get(0))
        .unwrap();
    let inbound: i64 =
        conn.query_row("SELECT count(*) FROM messages WHERE direction = 'in'", [], |r| r.get(0)).unwrap();
    let quarantined: i64 = conn.query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0)).unwrap();
    let duplicates = outcomes.iter().filter(|(_, o)| *o == Outcome::Duplicate).count() as i64;
    assert_eq!(inbound + quarantined + duplicates, files.len() as i64, "every message accounted for");
    assert!(tickets > 0);

    // Bounces and vacation replies are machine mail: count how many still got an acknowledgement.
    let index = std::fs::read_to_string(root.join("tests/corpus/index.tsv")).unwrap();
    let mut machine = 0;
    let mut acknowledged = Vec::new();
    let mut requests = Vec::new();
    let (mut bounces, mut recognised, mut unrecognised) = (0, 0, Vec::new());
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if !matches!(
            cols.get(2),
            Some(&"bounce")
                | Some(&"bounce-transient")
                | Some(&"bounce-delay")
                | Some(&"vacation")
                | Some(&"mdn")
                | Some(&"arf-feedback")
        ) {
            continue;
        }
        machine += 1;
        let pos = files.iter().position(|f| f.ends_with(cols[0])).unwrap_or_else(|| panic!("{} missing", cols[0]));
        if cols[2].starts_with("bounce") {
            bounces += 1;
            match &outcomes[pos].1 {
                Outcome::Ticket { kind: "bounce", .. } => recognised += 1,
                Outcome::Quarantined { reason } if reason.contains("delivery report") => recognised += 1,
                _ => unrecognised.push(cols[0].to_string()),
            }
        }
        if let (_, Outcome::Ticket { id, created: true, .. }) = &outcomes[pos] {
            // Machine mail that threads nowhere may be recorded, but never as a request.
            let automatic: bool =
                conn.query_row("SELECT automatic FROM tickets WHERE id = ?1", [id], |r| r.get(0)).unwrap();
            if !automatic {
                requests.push(cols[0].to_string());
            }
            let acks: i64 = conn
                .query_row(
                    "SELECT count(*) FROM messages WHERE ticket_id = ?1 AND kind = 'acknowledgement'",
                    [id],
                    |r| r.get(0),
                )
                .unwrap();
            if acks > 0 {
                acknowledged.push(cols[0].to_string());
            }
        }
    }
    eprintln!(
        "{} of {machine} bounces, receipts, complaints and vacation replies were acknowledged: {acknowledged:?}",
        acknowledged.len()
    );
    eprintln!("{} of {machine} opened a request ticket: {requests:?}", requests.len());
    eprintln!("{recognised} of {bounces} bounces recognised as delivery reports; not: {unrecognised:?}");
    assert!(acknowledged.is_empty(), "machine mail acknowledged: {acknowledged:?}");
    assert!(requests.is_empty(), "machine mail opened request tickets: {requests:?}");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

/// Generated hostile MIME: the shapes that break parsers and databases, each written out so a
/// failure names the case. Every one must be recorded as a ticket or quarantined with a reason.
fn hostile_messages() -> Vec<(&'static str, Vec<u8>)> {
    let head = |subject: &str, id: &str| {
        format!(
            "From: Mallory <mallory@example.test>\r\nTo: support@acme.example\r\nSubject: {subject}\r\nMessage-ID: <{id}@example.test>\r\n"
        )
    };
    let mut cases: Vec<(&'static str, Vec<u8>)> = Vec::new();
    cases.push(("zero bytes", Vec::new()));
    cases.push(("only blank lines", b"\r\n\r\n\r\n".to_vec()));
    cases.push(("headers without a body or blank line", head("no body", "nobody").into_bytes()));
    cases.push(("NUL bytes in headers and body", {
        let mut m = head("nul\0in\0subject", "nul").into_bytes();
        m.extend_from_slice(b"X-Nul: a\0b\r\n\r\nbody with \0\0 NUL bytes\r\n");
        m
    }));
    cases.push(("10,000 headers", {
        let mut m = head("ten thousand headers", "many-headers");
        for i in 0..10_000 {
            m.push_str(&format!("X-Filler-{i}: value {i}\r\n"));
        }
        m.push_str("\r\nthe printer is jammed\r\n");
        m.into_bytes()
    }));
    cases.push(("a subject line of 1 MB", {
        let mut m = head(&"A".repeat(1 << 20), "long-subject");
        m.push_str("\r\nbody\r\n");
        m.into_bytes()
    }));
    cases.push(("a folded header of 2 MB", {
        let mut m = head("long header", "long-header");
        m.push_str("X-Long: ");
        for _ in 0..(2 << 20) / 64 {
            m.push_str(&"x".repeat(62));
            m.push_str("\r\n ");
        }
        m.push_str("end\r\n\r\nbody\r\n");
        m.into_bytes()
    }));
    let nested = |depth: usize, id: &str| {
        let mut m = head(&format!("nested {depth} deep"), id);
        m.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n");
        for i in 0..depth {
            m.push_str(&format!("--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n", i + 1));
        }
        m.push_str(&format!("--b{depth}\r\nContent-Type: text/plain\r\n\r\nthe deepest text\r\n--b{depth}--\r\n"));
        for i in (0..depth).rev() {
            m.push_str(&format!("--b{i}--\r\n"));
        }
        m.into_bytes()
    };
    cases.push(("multiparts nested 100 deep", nested(100, "nested-100")));
    cases.push(("multiparts nested 2,000 deep", nested(2_000, "nested-2000")));
    cases.push(("boundary declared, never used", {
        let mut m = head("unused boundary", "unused-boundary");
        m.push_str("Content-Type: multipart/mixed; boundary=\"nowhere\"\r\n\r\njust text, no parts\r\n");
        m.into_bytes()
    }));
    cases.push(("parts without a closing boundary", {
        let mut m = head("unterminated", "unterminated");
        m.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nopen part\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK");
        m.into_bytes()
    }));
    cases.push(("multipart without a boundary parameter", {
        let mut m = head("no boundary", "no-boundary");
        m.push_str("Content-Type: multipart/alternative\r\n\r\n--x\r\n\r\ntext\r\n--x--\r\n");
        m.into_bytes()
    }));
    cases.push(("unknown and lying charsets", {
        let mut m = head("=?x-bogus-charset?B?SGVsbG8=?= =?utf-8?Q?caf=C3?=", "charsets");
        m.push_str("Content-Type: text/plain; charset=\"x-no-such-charset\"\r\n\r\ncaf\u{e9} \r\n");
        let mut m = m.into_bytes();
        m.extend_from_slice(b"invalid utf-8: \xff\xfe\xc3\x28 end\r\n");
        m
    }));
    cases.push(("truncated and garbage base64", {
        let mut m = head("bad base64", "bad-base64");
        m.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gV29y\r\n--b\r\nContent-Type: image/png; name=\"../../etc/passwd\"\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!@@@***===\r\n--b--\r\n");
        m.into_bytes()
    }));
    cases.push(("bare CR and LF line ends mixed", {
        let mut m = head("line ends", "line-ends").replace("\r\n", "\r");
        m.push_str("\n\nbody\rwith\nmixed\r\nline ends");
        m.into_bytes()
    }));
    cases.push(("a header line without a colon", {
        let mut m = head("no colon", "no-colon");
        m.push_str("this is not a header\r\n\r\nbody\r\n");
        m.into_bytes()
    }));
    cases.push(("500 attachments", {
        let mut m = head("many attachments", "many-attachments");
        m.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n");
        for i in 0..500 {
            m.push_str(&format!("--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f{i}.bin\"\r\n\r\ndata {i}\r\n"));
        }
        m.push_str("--b--\r\n");
        m.into_bytes()
    }));
    cases.push(("64 KiB of pseudo-random bytes", {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..65_536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    cases.push((
        "fuzz finding: message/rfc822 inside a report that crashed mail-parser 0.11.9",
        std::fs::read(root.join("tests/hostile/parser-panic-rfc822-in-report.eml")).unwrap(),
    ));
    cases
}

#[test]
fn hostile_mime_is_recorded_or_quarantined_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (config, templates) = desk_config(dir.path());
    let mut conn = store::open(&config.helpdesk.database).unwrap();
    let instance = store::instance_token(&conn).unwrap();
    let desk = Desk {
        config: &config,
        templates: &templates,
        instance: &instance,
        reply_secret: b"0123456789abcdef",
        home_queue: 0,
    };

    let cases = hostile_messages();
    let mut outcomes = Vec::new();
    for (i, (name, raw)) in cases.iter().enumerate() {
        // One batch per case, so a failure names the case.
        let uid = i as u32 + 1;
        let batch = [Fetched { uid, raw: raw.clone() }];
        let result = record_batch(
            &mut conn,
            &desk,
            &Destination { mailbox: "INBOX", uid_validity: 1, advance_to: Some(uid), now: 1_795_341_600 },
            &batch,
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: the batch failed: {e}"));
        let outcome = result.into_iter().next().unwrap_or_else(|| panic!("{name}: no outcome")).1;
        eprintln!("{name}: {outcome:?}");
        assert_ne!(outcome, Outcome::Duplicate, "{name}");
        outcomes.push((*name, outcome));
    }
    let ticket_of = |name: &str| match outcomes.iter().find(|(n, _)| *n == name).map(|(_, o)| o) {
        Some(Outcome::Ticket { id, .. }) => *id,
        other => panic!("{name}: expected a ticket, got {other:?}"),
    };
    for empty in ["zero bytes", "only blank lines"] {
        assert!(
            matches!(outcomes.iter().find(|(n, _)| *n == empty), Some((_, Outcome::Quarantined { reason })) if reason.contains("empty")),
            "{empty}: {outcomes:?}"
        );
    }
    // Requests, however broken, are still requests.
    for name in [
        "10,000 headers",
        "a subject line of 1 MB",
        "multiparts nested 100 deep",
        "NUL bytes in headers and body",
        "truncated and garbage base64",
        "500 attachments",
        "fuzz finding: message/rfc822 inside a report that crashed mail-parser 0.11.9",
    ] {
        ticket_of(name);
    }
    let text_of = |ticket: i64| -> String {
        conn.query_row(
            "SELECT group_concat(body_text, '|') FROM messages WHERE ticket_id = ?1 AND direction = 'in'",
            [ticket],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(text_of(ticket_of("10,000 headers")).contains("printer is jammed"));
    assert!(text_of(ticket_of("multiparts nested 100 deep")).contains("the deepest text"));
    let long_subject: String = conn
        .query_row("SELECT subject FROM tickets WHERE id = ?1", [ticket_of("a subject line of 1 MB")], |r| r.get(0))
        .unwrap();
    assert!(long_subject.chars().count() <= 501, "subject of {} chars kept", long_subject.len());
    let crashed = ticket_of("fuzz finding: message/rfc822 inside a report that crashed mail-parser 0.11.9");
    assert!(text_of(crashed).contains("Nyaan"), "the body survives the parser crash");
    let defects: String = conn
        .query_row(
            "SELECT group_concat(detail, '|') FROM events WHERE ticket_id = ?1 AND kind = 'defect'",
            [crashed],
            |r| r.get(0),
        )
        .unwrap();
    assert!(defects.contains("parser crashed"), "{defects}");
    // Attachment names are data: the stored name is what the sender wrote, and nothing touched the disk.
    let stored_names: i64 =
        conn.query_row("SELECT count(*) FROM attachments WHERE name LIKE '%passwd%'", [], |r| r.get(0)).unwrap();
    assert!(stored_names <= 1);
    assert!(!dir.path().join("etc").exists());
    // The attachment limit held: 500 parts, at most `max_attachments` stored.
    let many = ticket_of("500 attachments");
    let stored: i64 = conn
        .query_row(
            "SELECT count(*) FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = ?1",
            [many],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stored as usize <= config.limits.max_attachments, "{stored} attachments stored");

    let inbound: i64 =
        conn.query_row("SELECT count(*) FROM messages WHERE direction = 'in'", [], |r| r.get(0)).unwrap();
    let quarantined: i64 = conn.query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0)).unwrap();
    assert_eq!(inbound + quarantined, cases.len() as i64, "every message accounted for");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

/// A message the database refuses because of its content (here a trigger stands in for any
/// constraint a message could break) costs that message alone: it is quarantined with the reason,
/// the others in its batch are recorded once each, and the mark moves past all of them.
#[test]
fn a_message_the_database_refuses_is_quarantined_and_its_batch_still_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (config, templates) = desk_config(dir.path());
    let mut conn = store::open(&config.helpdesk.database).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages WHEN NEW.subject LIKE '%poison%'
         BEGIN SELECT RAISE(ABORT, 'poisoned subject'); END;",
    )
    .unwrap();
    let instance = store::instance_token(&conn).unwrap();
    let desk = Desk {
        config: &config,
        templates: &templates,
        instance: &instance,
        reply_secret: b"0123456789abcdef",
        home_queue: 0,
    };
    let mail = |i: u32, subject: &str| {
        Fetched {
        uid: i,
        raw: format!(
            "From: user{i}@example.org\r\nTo: support@acme.example\r\nSubject: {subject}\r\nMessage-ID: <m{i}@example.org>\r\n\r\nHello {i}\r\n"
        )
        .into_bytes(),
    }
    };
    let batch =
        vec![mail(1, "printer"), mail(2, "poison one"), mail(3, "vpn"), mail(4, "poison two"), mail(5, "laptop")];
    let outcomes = record_batch(
        &mut conn,
        &desk,
        &Destination { mailbox: "INBOX", uid_validity: 7, advance_to: Some(9), now: 1_795_341_600 },
        &batch,
        None,
    )
    .unwrap();

    let uids: Vec<u32> = outcomes.iter().map(|(u, _)| *u).collect();
    assert_eq!(uids, [1, 2, 3, 4, 5]);
    for (uid, outcome) in &outcomes {
        match (uid, outcome) {
            (2 | 4, Outcome::Quarantined { reason }) => assert!(reason.contains("poisoned subject"), "{reason}"),
            (1 | 3 | 5, Outcome::Ticket { created: true, queued: 1, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM tickets"), 3, "each good message once, despite the rolled-back passes");
    assert_eq!(count("SELECT count(*) FROM messages WHERE direction = 'in'"), 3);
    assert_eq!(count("SELECT count(*) FROM outbox"), 3);
    assert_eq!(count("SELECT count(*) FROM quarantine WHERE length(raw) > 0"), 2, "the refused bytes are kept");
    assert_eq!(count("SELECT last_uid FROM mailbox_state WHERE mailbox = 'INBOX'"), 9);
}

/// Outbound mail is made beside the writer (see `outbound::composer`): a mail whose template fails
/// for one message is withdrawn with its outbox row and noted on the ticket; the rest of the batch,
/// before and after it, is queued complete, each row with its text and bytes.
#[test]
fn a_mail_that_cannot_be_rendered_is_withdrawn_and_noted_and_the_batch_still_queued() {
    let dir = tempfile::tempdir().unwrap();
    let templates_dir = dir.path().join("templates");
    std::fs::create_dir(&templates_dir).unwrap();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, templates_dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    // Fails at render time, for one subject only.
    std::fs::write(
        templates_dir.join("acknowledgement.subject.tera"),
        "{% if ticket.subject is containing(\"boom\") %}{{ no_such_value }}{% endif %}{{ ticket.tag }} {{ ticket.subject }}",
    )
    .unwrap();
    let (mut config, _) = desk_config(dir.path());
    config.helpdesk.templates = templates_dir;
    let templates = Templates::load(&config.helpdesk.templates).unwrap();
    let mut conn = store::open(&config.helpdesk.database).unwrap();
    let instance = store::instance_token(&conn).unwrap();
    let desk = Desk {
        config: &config,
        templates: &templates,
        instance: &instance,
        reply_secret: b"0123456789abcdef",
        home_queue: 0,
    };
    let batch: Vec<Fetched> = ["printer", "vpn", "boom", "laptop", "phone"]
        .iter()
        .enumerate()
        .map(|(i, subject)| Fetched {
            uid: i as u32 + 1,
            raw: format!(
                "From: user{i}@example.org\r\nTo: support@acme.example\r\nSubject: {subject}\r\nMessage-ID: <c{i}@example.org>\r\n\r\nHello\r\n"
            )
            .into_bytes(),
        })
        .collect();
    record_batch(
        &mut conn,
        &desk,
        &Destination { mailbox: "INBOX", uid_validity: 1, advance_to: Some(5), now: 1_795_341_600 },
        &batch,
        None,
    )
    .unwrap();

    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM tickets"), 5);
    assert_eq!(count("SELECT count(*) FROM outbox"), 4, "every acknowledgement but the failed one");
    assert_eq!(count("SELECT count(*) FROM messages WHERE direction = 'out'"), 4, "the failed one is withdrawn");
    assert_eq!(
        count(
            "SELECT count(*) FROM messages m JOIN message_raw r ON r.message_id = m.id
             WHERE m.direction = 'out' AND m.subject LIKE '[ACME #%' AND length(r.raw) > 0"
        ),
        4,
        "each queued mail has its subject and bytes"
    );
    let failed: String = conn
        .query_row("SELECT t.subject || ': ' || e.detail FROM events e JOIN tickets t ON t.id = e.ticket_id WHERE e.kind = 'mail-failed'", [], |r| r.get(0))
        .unwrap();
    assert!(failed.starts_with("boom: acknowledgement not sent"), "{failed}");
    assert_eq!(
        count(
            "SELECT count(*) FROM outbox o LEFT JOIN message_raw r ON r.message_id = o.message_id WHERE r.raw IS NULL"
        ),
        0
    );
}
