//! What the benchmarks share: the mail lab's directory, a deterministic generator of realistic
//! mail, seeding a mailbox straight into Dovecot's Maildir, and the daemon run as a child process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The lab's directory, from `MAILDESK_LAB_DIR` as the scripts read it.
pub fn lab_dir() -> String {
    std::env::var("MAILDESK_LAB_DIR").unwrap_or_else(|_| "/tmp/maildesk-lab".to_string())
}

/// A small deterministic generator (xorshift64*): the same seed gives the same mailbox.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub const WORDS: &[&str] = &[
    "printer",
    "jammed",
    "VPN",
    "password",
    "reset",
    "laptop",
    "screen",
    "flickers",
    "mailbox",
    "full",
    "access",
    "share",
    "drive",
    "slow",
    "network",
    "Wi-Fi",
    "floor",
    "meeting",
    "room",
    "projector",
    "license",
    "Visio",
    "update",
    "error",
];
pub const UTF8: &[&str] =
    &["Drucker im 3. Stock gestört", "Écran noir après mise à jour", "Contraseña caducada", "Проблема с почтой"];

pub fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The mailbox: ~60% new requests, ~20% replies (In-Reply-To/References), notes and forwards,
/// auto-replies, bounces, newsletters; ~10% with attachments of 5-600 KB (4% large, 6% small, about
/// 240 MB in all); UTF-8 encoded headers.
pub fn generate(n: usize, run: &str, support: &str, seed: u64) -> (Vec<Vec<u8>>, usize) {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n);
    let mut requests: Vec<(String, String)> = Vec::new();
    let mut expected_acks = 0;
    for i in 0..n {
        let sender = format!("req-{run}-{}@example.test", rng.below(200));
        let words: Vec<&str> = (0..4).map(|_| WORDS[rng.below(WORDS.len() as u64) as usize]).collect();
        let id = format!("gen-{i}.{run}@client.example.test");
        let kind = rng.below(100);
        let (subject, extra, body, new_ack) = match kind {
            0..=59 => {
                let s = if rng.below(10) == 0 {
                    let u = UTF8[rng.below(UTF8.len() as u64) as usize];
                    format!("=?UTF-8?B?{}?=", b64(u.as_bytes()))
                } else {
                    format!("The {} {} is {} again ({i})", words[0], words[1], words[2])
                };
                requests.push((id.clone(), s.clone()));
                (
                    s,
                    String::new(),
                    format!("Hello,\r\n\r\nthe {} {} since this morning.\r\n\r\nThanks\r\n", words[3], words[1]),
                    true,
                )
            }
            60..=79 if !requests.is_empty() => {
                let (rid, rs) = requests[rng.below(requests.len() as u64) as usize].clone();
                let body = "Still not working.\r\n\r\nOn Mon, support wrote:\r\n> Please try again.\r\n".to_string();
                (format!("Re: {rs}"), format!("In-Reply-To: <{rid}>\r\nReferences: <{rid}>\r\n"), body, false)
            }
            80..=85 => (
                format!("Fwd: {} {}", words[0], words[1]),
                String::new(),
                "---------- Forwarded message ---------\r\nsee below\r\n".into(),
                true,
            ),
            86..=88 => (
                "Out of office".into(),
                "Auto-Submitted: auto-replied\r\n".into(),
                "I am away until Monday.\r\n".into(),
                false,
            ),
            89 => (
                "Undelivered Mail Returned to Sender".into(),
                "Auto-Submitted: auto-replied\r\n".into(),
                "Your message could not be delivered.\r\nMessage-ID: <unknown.1@elsewhere.test>\r\n".into(),
                false,
            ),
            _ => (
                "Weekly IT newsletter".into(),
                "List-Id: <news.example.test>\r\nPrecedence: bulk\r\n".into(),
                "News.\r\n".into(),
                false,
            ),
        };
        let from = if kind == 89 { format!("MAILER-DAEMON@mx-{run}.example.test") } else { sender };
        expected_acks += new_ack as usize;
        let head = format!(
            "From: {from}\r\nTo: {support}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{extra}"
        );
        // ~4% carry 150-600 KB, ~6% 5-60 KB: about 240 MB for 10,000 messages.
        let attachment = match rng.below(100) {
            0..=3 => Some(150_000 + rng.below(450_000)),
            4..=9 => Some(5_000 + rng.below(55_000)),
            _ => None,
        };
        let raw = if let Some(size) = attachment {
            let size = size as usize;
            let data: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
            format!(
                "{head}Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b{i}\r\n\
Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"log-{i}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b{i}--\r\n",
                b64(&data)
            )
        } else {
            format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}")
        };
        out.push(raw.into_bytes());
    }
    (out, expected_acks)
}

/// A seeded mailbox; removed when dropped (a quarter of a GB each run), unless
/// `MAILDESK_BENCH_KEEP=1` keeps it for `examples/profile_record`.
pub struct SeededMailbox(pub PathBuf);

impl Drop for SeededMailbox {
    fn drop(&mut self) {
        if std::env::var("MAILDESK_BENCH_KEEP").is_ok_and(|v| v == "1") {
            println!("kept the seeded mailbox: {}", self.0.join("Maildir/cur").display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Writes messages straight into a user's Maildir: seeding is not what is measured.
pub fn seed_maildir(user: &str, messages: &[Vec<u8>]) -> SeededMailbox {
    let (local, domain) = user.split_once('@').unwrap();
    let home = Path::new(&lab_dir()).join("mail").join(domain).join(local);
    let dir = home.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Names as Dovecot's own delivery writes them (`<secs>.M<usecs>P<pid>.<host>,S=<size>,W=<size with
    // CRLF>`). Names that differ in only a few characters collide in Dovecot's filename hash: the
    // first FETCH of every session then spent 0.6-0.9 s comparing names, on both sides. One second
    // apiece keeps the UIDs in the generator's order (replies after what they answer).
    let mut rng = Rng(7);
    for (i, m) in messages.iter().enumerate() {
        let lines = m.iter().filter(|&&b| b == b'\n').count();
        let crlf = m.windows(2).filter(|w| w == b"\r\n").count();
        let name = format!(
            "{}.M{}P{}.bench,S={},W={}",
            1_795_000_000 + i as u64,
            rng.below(1_000_000),
            1000 + rng.below(30_000),
            m.len(),
            m.len() + lines - crlf
        );
        std::fs::write(dir.join("new").join(name), m).unwrap();
    }
    let status = Command::new("chown").args(["-R", "vmail:vmail"]).arg(&home).status().unwrap();
    assert!(status.success());
    SeededMailbox(home)
}

pub fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    /// "bench" or "push": names the log kept in target/bench.
    role: String,
    database: PathBuf,
}

impl Daemon {
    /// `helpdesk` and `limits` are extra lines for those tables.
    pub fn start(bin: &Path, support: &str, batch: u32, helpdesk: &str, limits: &str) -> Daemon {
        Daemon::launch(bin, support, batch, helpdesk, limits, None)
    }

    /// A daemon on an existing database (the scale benchmark's).
    pub fn start_on(bin: &Path, support: &str, batch: u32, database: &Path) -> Daemon {
        Daemon::launch(bin, support, batch, "", "", Some(database))
    }

    fn launch(bin: &Path, support: &str, batch: u32, helpdesk: &str, limits: &str, database: Option<&Path>) -> Daemon {
        // For profiling ingest alone: a port nobody listens on, so the sender only fails and waits.
        let smtp_port = match ingest_only() {
            true => std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(),
            false => 2525,
        };
        let dir = tempfile::tempdir().unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        let database = database.map(Path::to_path_buf).unwrap_or_else(|| dir.path().join("maildesk.db"));
        std::fs::write(
            dir.path().join("maildesk.toml"),
            format!(
                "[helpdesk]\nname = \"Bench IT\"\ntag = \"BENCH\"\naddress = \"{support}\"\ndatabase = \"{}\"\n\
                 templates = \"{root}/templates\"\n{helpdesk}\n[imap]\nhost = \"127.0.0.1\"\nport = 1143\nsecurity = \"none\"\n\
                 username = \"{support}\"\npassword = \"secret\"\nbatch_size = {batch}\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\n\
                 security = \"none\"\nconnections = 2\n[limits]\nauto_replies_per_recipient_per_hour = 100000\n\
                 auto_replies_per_ticket_per_hour = 100000\n{limits}\n",
                database.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("maildesk.log")).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(dir.path().join("maildesk.toml"))
            .arg("run")
            .env("MAILDESK_LOG", "warn,maildesk::inbound::imap=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let role = support.split('-').next().unwrap_or("daemon").to_string();
        Daemon { child, dir, role, database }
    }

    pub fn db(&self) -> PathBuf {
        self.database.clone()
    }

    /// (messages recorded or quarantined, outbox rows, outbox rows sent)
    pub fn progress(&self) -> (i64, i64, i64) {
        let Ok(c) = rusqlite::Connection::open_with_flags(self.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
            return (0, 0, 0);
        };
        let q = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0);
        (
            q("SELECT (SELECT count(*) FROM messages WHERE direction = 'in') + (SELECT count(*) FROM quarantine)"),
            q("SELECT count(*) FROM outbox"),
            q("SELECT count(*) FROM outbox WHERE status = 'sent'"),
        )
    }

    pub fn ready(&self) -> bool {
        std::fs::read_to_string(self.dir.path().join("maildesk.log")).unwrap_or_default().contains("IMAP connected")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the daemon's log (per-batch fetch/record/flag times at debug level) for profiling.
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
        let _ = std::fs::create_dir_all(&out);
        let _ = std::fs::copy(self.dir.path().join("maildesk.log"), out.join(format!("daemon-{}.log", self.role)));
    }
}

/// MAILDESK_BENCH_INGEST_ONLY=1: scenario 1 without a working SMTP server, then stop (profiling).
pub fn ingest_only() -> bool {
    std::env::var("MAILDESK_BENCH_INGEST_ONLY").is_ok_and(|v| v == "1")
}
