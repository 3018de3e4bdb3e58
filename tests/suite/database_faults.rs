//! The database refuses to write: locked by another writer, disk full, file system read-only.
//! maildesk must stop taking new mail (it stays unread on the IMAP server), say why, commit nothing
//! half-written, and carry on by itself once the database can be written again.
//!
//! The full and read-only cases mount a small tmpfs, so this file needs root (as the lab does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use rusqlite::Connection;

const T: Duration = Duration::from_secs(30);
/// The daemon waits up to 10 s for a lock, then backs off (at most 30 s) before it tries again.
const RECOVERY: Duration = Duration::from_secs(90);

const REFUSED: &str = "cannot record new mail";

fn acknowledgements(user: &str, expected: usize) {
    let msgs = wait_inbox(user, expected, RECOVERY);
    // A little longer, so a repeated acknowledgement would have time to show up.
    std::thread::sleep(Duration::from_secs(2));
    let msgs = if inbox(user).len() > msgs.len() { inbox(user) } else { msgs };
    assert_eq!(
        msgs.len(),
        expected,
        "{user}: acknowledgements {:?}",
        msgs.iter().map(|m| subject(m)).collect::<Vec<_>>()
    );
}

fn integrity(db: &Path) {
    let conn = Connection::open(db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let orphans: i64 = conn
        .query_row("SELECT count(*) FROM messages WHERE direction = 'in' AND ticket_id IS NULL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0, "nothing half-written");
}

#[test]
fn a_locked_database_keeps_new_mail_on_the_server_until_the_lock_is_gone() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    desk.start();
    desk.wait_status("the database", T, |_| true);
    let db = desk.path("maildesk.db");
    let ann = address("ann");

    // A second process reading (a report, a backup) holds a read transaction throughout: in WAL
    // mode it never blocks intake.
    let reader = Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN; SELECT count(*) FROM tickets;").unwrap();
    send_smtp(&ann, &desk.support, &message(&ann, &desk.support, "Scanner offline", "s1@ann.example.test", "", "x"));
    acknowledgements(&ann, 1);

    // A second writer holds the write lock for longer than maildesk waits for it.
    let locker = Connection::open(&db).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE;").unwrap();
    send_smtp(
        &ann,
        &desk.support,
        &message(&ann, &desk.support, "Scanner still offline", "s2@ann.example.test", "", "y"),
    );
    desk.wait_log(REFUSED, T);
    let logs = desk.logs();
    assert!(logs.contains("locked"), "the log says why:\n{logs}");
    assert_eq!(unseen(&desk.support), 1, "the message waits on the server, unflagged");
    assert!(desk.alive());

    locker.execute_batch("ROLLBACK;").unwrap();
    acknowledgements(&ann, 2);
    assert_eq!(unseen(&desk.support), 0);
    drop(reader);
    desk.wait_settled(2, T);
    integrity(&db);
}

/// A tmpfs of `mb` megabytes at `dir`, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: PathBuf, mb: u32) -> SmallDisk {
        std::fs::create_dir_all(&dir).unwrap();
        let size = format!("size={mb}m");
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(&dir).status().unwrap();
        assert!(ok.success(), "mounting a tmpfs needs root");
        SmallDisk(dir)
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(&self.0).status().unwrap();
        assert!(ok.success(), "remount {mode}");
    }

    /// Fills the disk to the last byte; returns the filler file.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A request with an attachment of `kb` KiB of incompressible bytes.
fn with_attachment(from: &str, to: &str, subject: &str, id: &str, kb: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..kb * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let b64 = data_encoding::BASE64.encode(&data);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let body = format!(
        "--b\r\nContent-Type: text/plain\r\n\r\nlog attached\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"dump.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--",
        lines.join("\r\n")
    );
    String::from_utf8(message(from, to, subject, id, "", &body))
        .unwrap()
        .replace("Content-Type: text/plain; charset=utf-8", "Content-Type: multipart/mixed; boundary=\"b\"")
        .into_bytes()
}

#[test]
fn a_full_or_read_only_disk_stops_intake_and_loses_nothing() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::with(DeskOptions { database: "disk/maildesk.db", ..DeskOptions::default() });
    let disk = SmallDisk::mount(desk.path("disk"), 16);
    let db = desk.path("disk/maildesk.db");
    let bo = address("bo");
    let cy = address("cy");
    let di = address("di");
    desk.start();
    send_smtp(&bo, &desk.support, &message(&bo, &desk.support, "Laptop slow", "l1@bo.example.test", "", "x"));
    acknowledgements(&bo, 1);

    // Disk full: a request with a 2 MB attachment cannot be recorded.
    let filler = disk.fill();
    send_smtp(&cy, &desk.support, &with_attachment(&cy, &desk.support, "Crash dump", "d1@cy.example.test", 2048));
    desk.wait_log(REFUSED, T);
    let logs = desk.logs();
    assert!(logs.contains("full"), "the log says why:\n{logs}");
    assert_eq!(unseen(&desk.support), 1, "the message waits on the server, unflagged");
    assert!(desk.alive());
    std::fs::remove_file(filler).unwrap();
    acknowledgements(&cy, 1);
    let stored: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM attachments WHERE name = 'dump.bin'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 1, "the attachment was recorded once, whole");

    // The file system goes read-only while the desk is down (as after an I/O error): the desk
    // refuses to start and says why (systemd retries it), and the mail waits on the server.
    desk.stop();
    disk.remount("ro");
    send_smtp(&di, &desk.support, &message(&di, &desk.support, "VPN down", "v1@di.example.test", "", "z"));
    desk.start();
    let started = std::time::Instant::now();
    while desk.alive() {
        assert!(started.elapsed() < T, "a desk without a writable database must not start:\n{}", desk.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = desk.logs();
    assert!(logs.contains("cannot be opened for writing"), "the error says why:\n{logs}");
    assert_eq!(logs.matches("unable to open database file").count(), 1, "each cause once:\n{logs}");
    desk.kill9(); // reaps the exited process
    assert_eq!(unseen(&desk.support), 1, "the message waits on the server, unflagged");
    disk.remount("rw");
    desk.start();
    acknowledgements(&di, 1);
    desk.wait_settled(3, T);
    assert_eq!(unseen(&desk.support), 0);
    desk.stop();
    integrity(&db);
}

#[test]
fn a_locked_database_never_makes_the_sender_repeat_a_mail() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut switch = Switch::off(SMTP_PORT);
    let mut desk = Desk::with(DeskOptions { smtp: plain_loopback(switch.port), ..DeskOptions::default() });
    let fe = address("fe");
    desk.start();
    send_smtp(&fe, &desk.support, &message(&fe, &desk.support, "Headset broken", "h1@fe.example.test", "", "x"));
    desk.wait_status("a queued acknowledgement", T, |s| s["messages_ingested"] == 1 && s["outbox"]["pending"] == 1);

    // SMTP comes back while another process holds the write lock: a sender that sent first and
    // tried to note it afterwards would send the same mail again on every retry.
    let locker = Connection::open(desk.path("maildesk.db")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE;").unwrap();
    switch.on();
    std::thread::sleep(Duration::from_secs(25));
    assert_eq!(inbox(&fe).len(), 0, "nothing is sent while the send cannot be noted");
    assert!(desk.logs().contains("nothing is sent until it can"), "the log says why:\n{}", desk.logs());
    locker.execute_batch("ROLLBACK;").unwrap();
    acknowledgements(&fe, 1);
    desk.wait_settled(1, T);
}
