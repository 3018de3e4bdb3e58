//! Helpers for integration tests against the real mail lab (`scripts/mail-lab start`):
//! Dovecot IMAP on 127.0.0.1:1143/1993, Postfix SMTP on 127.0.0.1:2525/2465, every
//! `*@example.test` address a mailbox with password "secret".
//!
//! Each test makes its own addresses, so tests never see each other's mail and can run in parallel.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde_json::Value;

pub const IMAP_PORT: u16 = 1143;
pub const IMAPS_PORT: u16 = 1993;
pub const SMTP_PORT: u16 = 2525;
pub const SMTPS_PORT: u16 = 2465;
/// The lab's second IMAP server, Cyrus; mail for `@cyrus.test` is delivered there.
pub const CYRUS_PORT: u16 = 3143;
pub const CYRUS_DOMAIN: &str = "cyrus.test";
/// The lab's directory, from `MAILDESK_LAB_DIR` as the scripts read it (CI uses a new one each run).
pub fn lab_dir() -> String {
    std::env::var("MAILDESK_LAB_DIR").unwrap_or_else(|_| "/tmp/maildesk-lab".to_string())
}

/// How to start the lab, for every message that finds it down.
const START_THE_LAB: &str = "start it with `sudo scripts/mail-lab start`, or run the whole suite with `scripts/test`";

/// The first lab port that does not answer, if any.
fn lab_down() -> Option<u16> {
    // 19480: the lab's OAuth authorization server (tests/suite/oauth.rs).
    [IMAP_PORT, SMTP_PORT, CYRUS_PORT, 19480].into_iter().find(|port| TcpStream::connect(("127.0.0.1", *port)).is_err())
}

/// Fails the test with instructions when the lab is not running. Every lab test has already passed
/// [`lab`] or [`lab_exclusive`]; this catches one that did not.
pub fn require_lab() {
    if let Some(port) = lab_down() {
        panic!("the mail lab is not running (nothing on 127.0.0.1:{port}); {START_THE_LAB}");
    }
}

/// Whether the lab is up. Down, a test is skipped with a message saying how to start it, unless
/// `MAILDESK_REQUIRE_LAB=1` (set by `scripts/test`, and so by CI): then it fails, because a suite
/// that skips its integration tests there proves nothing.
fn lab_is_up() -> bool {
    let Some(port) = lab_down() else { return true };
    if std::env::var_os("MAILDESK_REQUIRE_LAB").is_some_and(|v| v == "1") {
        panic!("the mail lab is not running (nothing on 127.0.0.1:{port}) and MAILDESK_REQUIRE_LAB=1; {START_THE_LAB}");
    }
    static TOLD: std::sync::Once = std::sync::Once::new();
    TOLD.call_once(|| {
        eprintln!(
            "\nthe mail lab is not running (nothing on 127.0.0.1:{port}): its tests are skipped; {START_THE_LAB}\n"
        )
    });
    false
}

/// Tests that share the lab hold it shared; a test that restarts one of its servers holds it alone.
static LAB: RwLock<()> = RwLock::new(());

/// The lab, shared with the other tests, or `None` (the test returns) when it is not running.
pub fn lab() -> Option<RwLockReadGuard<'static, ()>> {
    lab_is_up().then(|| LAB.read().unwrap_or_else(|e| e.into_inner()))
}

/// The lab for this test alone: every other lab test waits (for a test that restarts a server).
pub fn lab_exclusive() -> Option<RwLockWriteGuard<'static, ()>> {
    lab_is_up().then(|| LAB.write().unwrap_or_else(|e| e.into_inner()))
}

/// Waits until `user` has `n` mails, then long enough for a repeated delivery to show up, and
/// checks that none did. For exactly-once across crashes and cut connections: a mail sent twice
/// has one outbox row, so only the mailbox can tell, and nothing signals that a second copy is not
/// coming. Where the question is whether maildesk queued a mail at all, use
/// [`Desk::assert_mailed`], which needs no waiting.
pub fn exactly(user: &str, n: usize, timeout: Duration, why: &str) -> Vec<Vec<u8>> {
    wait_inbox(user, n, timeout);
    std::thread::sleep(Duration::from_secs(2));
    let got = inbox(user);
    assert_eq!(got.len(), n, "{why}");
    got
}

/// A fresh address no other test uses: `name-<pid>-<n>@example.test`.
pub fn address(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{name}-{}-{n}-{nanos:x}@example.test", std::process::id())
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_maildesk")
}

/// One help desk under test: its own support address, config, database and log.
pub struct Desk {
    pub dir: tempfile::TempDir,
    pub support: String,
    pub config: PathBuf,
    /// The database path, relative to `dir`.
    pub database: &'static str,
    /// More environment for `maildesk run` (say, systemd's NOTIFY_SOCKET).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    runs: u32,
}

/// The `[imap]` or `[smtp]` lines for an unencrypted server on this machine.
pub fn plain_loopback(port: u16) -> String {
    format!("host = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"")
}

/// A `[limits]` table that lifts the automatic-reply rate limits, for tests where one requester
/// sends a whole backlog and the limits are not under test.
pub const NO_RATE_LIMITS: &str =
    "[limits]\nauto_replies_per_recipient_per_hour = 100000\nauto_replies_per_ticket_per_hour = 100000\n";

#[derive(Clone)]
pub struct DeskOptions {
    pub tag: &'static str,
    /// The support address's domain: `example.test` (Dovecot) or [`CYRUS_DOMAIN`].
    pub support_domain: &'static str,
    /// Extra lines for the [helpdesk] table (technicians, ...).
    pub helpdesk: String,
    /// Extra tables at the end of the file ([sla.P1], [priority], ...).
    pub tail: String,
    pub imap: String,
    pub smtp: String,
    /// The database path, relative to the desk's folder.
    pub database: &'static str,
}

impl Default for DeskOptions {
    fn default() -> Self {
        DeskOptions {
            tag: "ACME",
            support_domain: "example.test",
            helpdesk: String::new(),
            tail: String::new(),
            imap: plain_loopback(IMAP_PORT),
            smtp: plain_loopback(SMTP_PORT),
            database: "maildesk.db",
        }
    }
}

/// A started desk with one technician, and `tail` at the end of its config.
pub fn desk_with_tech(tail: &str) -> (Desk, String) {
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: tail.into(),
        ..DeskOptions::default()
    });
    desk.start();
    (desk, tech)
}

impl Desk {
    pub fn new() -> Desk {
        Desk::with(DeskOptions::default())
    }

    pub fn with(opts: DeskOptions) -> Desk {
        require_lab();
        let dir = tempfile::tempdir().unwrap();
        let support = address("support").replace("@example.test", &format!("@{}", opts.support_domain));
        let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let config = dir.path().join("maildesk.toml");
        std::fs::write(dir.path().join("imap.secret"), "secret\n").unwrap();
        std::fs::write(
            &config,
            format!(
                r#"[helpdesk]
name = "ACME IT"
tag = "{tag}"
address = "{support}"
database = "{database}"
templates = "{templates}"
timezone = "Europe/Berlin"
{helpdesk}

[imap]
{imap}
username = "{support}"
password_file = "imap.secret"
{poll}

[smtp]
{smtp}
retry_for = "1h"

{tail}
"#,
                tag = opts.tag,
                helpdesk = opts.helpdesk,
                tail = opts.tail,
                imap = opts.imap,
                smtp = opts.smtp,
                database = opts.database,
                poll = if opts.imap.contains("poll_interval") { "" } else { "poll_interval = \"1s\"" },
            ),
        )
        .unwrap();
        Desk { dir, support, config, database: opts.database, env: Vec::new(), child: None, runs: 0 }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `maildesk run`; its log goes to `run-N.log` in the desk's folder.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.runs += 1;
        let log = std::fs::File::create(self.path(&format!("run-{}.log", self.runs))).unwrap();
        let child = Command::new(bin())
            .args(["--config", self.config.to_str().unwrap(), "run"])
            .env("MAILDESK_LOG", "maildesk=debug,info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then wait for the exit; returns how long it took and whether it exited 0.
    pub fn stop(&mut self) -> (Duration, bool) {
        let mut c = self.child.take().expect("not running");
        let t = Instant::now();
        Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
        let status = c.wait().unwrap();
        (t.elapsed(), status.success())
    }

    /// Sends a signal by name (HUP, TERM, ...) to the running daemon.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("not running").id();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap().success());
    }

    /// Whether the daemon process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Waits until `cond(log)` holds.
    pub fn wait_log_until(&self, cond: impl Fn(&str) -> bool, timeout: Duration) {
        let start = Instant::now();
        while !cond(&self.logs()) {
            assert!(start.elapsed() < timeout, "the log never showed what was expected:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the current run's log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.logs().contains(needle) {
            assert!(start.elapsed() < timeout, "no {needle:?} in the log after {timeout:?}:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|n| std::fs::read_to_string(self.path(&format!("run-{n}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----- restart -----\n")
    }

    /// Runs a CLI command and returns its stdout; panics with the stderr on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        String::from_utf8(self.cli_bytes(args)).unwrap()
    }

    pub fn cli_bytes(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new(bin()).arg("--config").arg(&self.config).args(args).output().unwrap();
        assert!(out.status.success(), "maildesk {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.cli(&a)).unwrap()
    }

    /// `status --json`, or None while the database does not exist yet.
    pub fn status(&self) -> Option<Value> {
        if !self.path(self.database).exists() {
            return None;
        }
        let out = Command::new(bin()).arg("--config").arg(&self.config).args(["status", "--json"]).output().unwrap();
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Waits until `cond(status)` holds; panics with the daemon's log after `timeout`.
    pub fn wait_status(&self, what: &str, timeout: Duration, cond: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(s) = self.status() {
                if cond(&s) {
                    return s;
                }
                if start.elapsed() > timeout {
                    panic!("timed out waiting for {what}; status {s:#}\nlog:\n{}", self.logs());
                }
            } else if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; no database\nlog:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many mails the desk has queued to `address`: maildesk's own record of what it sends, so
    /// "nobody else was mailed" is read here instead of waiting to see that nothing arrives.
    pub fn mails_to(&self, address: &str) -> usize {
        let db = rusqlite::Connection::open_with_flags(
            self.path(self.database),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap();
        let n: i64 = db.query_row("SELECT count(*) FROM outbox WHERE recipient = ?1", [address], |r| r.get(0)).unwrap();
        n as usize
    }

    /// After the desk settled: `address` was mailed exactly `n` times, by the outbox, and its
    /// mailbox holds those `n` mails.
    pub fn assert_mailed(&self, address: &str, n: usize, why: &str) {
        assert_eq!(self.mails_to(address), n, "{why} (outbox rows to {address})");
        let got = if n == 0 { inbox(address) } else { wait_inbox(address, n, Duration::from_secs(30)) };
        assert_eq!(got.len(), n, "{why} (mails in {address}'s inbox)");
    }

    /// Waits until `n` messages were ingested and the outbox has nothing pending.
    pub fn wait_settled(&self, n: i64, timeout: Duration) -> Value {
        self.wait_status(&format!("{n} messages ingested and outbox drained"), timeout, |s| {
            s["messages_ingested"] == n && s["outbox"]["pending"] == 0
        })
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A plain message with the given headers (CRLF line ends) and body.
pub fn message(from: &str, to: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Sends over real SMTP to the lab's Postfix (a small client: EHLO, MAIL, RCPT, DATA, QUIT).
pub fn send_smtp(from: &str, to: &str, raw: &[u8]) {
    let stream = TcpStream::connect(("127.0.0.1", SMTP_PORT)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut expect = |code: &str| {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "SMTP: expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect("220");
    for (cmd, code) in [
        ("EHLO test.example.test".to_string(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        writer.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        expect(code);
    }
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    for line in text.split('\n') {
        let stuffed = if line.starts_with('.') { format!(".{line}") } else { line.to_string() };
        writer.write_all(format!("{stuffed}\r\n").as_bytes()).unwrap();
    }
    writer.write_all(b".\r\n").unwrap();
    expect("250");
    writer.write_all(b"QUIT\r\n").unwrap();
}

/// The lab IMAP server holding `user`'s mailbox: Cyrus for `@cyrus.test`, else Dovecot.
fn imap_port_of(user: &str) -> u16 {
    if user.ends_with(&format!("@{CYRUS_DOMAIN}")) { CYRUS_PORT } else { IMAP_PORT }
}

async fn imap_login(user: &str) -> async_imap::Session<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", imap_port_of(user))).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    client.login(user, "secret").await.map_err(|(e, _)| e).unwrap()
}

/// Puts raw messages straight into `user`'s INBOX with IMAP APPEND, in order (ascending UIDs).
pub fn append(user: &str, messages: &[Vec<u8>]) {
    rt().block_on(async {
        let mut s = imap_login(user).await;
        for m in messages {
            s.append("INBOX", None, None, m).await.unwrap();
        }
        s.logout().await.unwrap();
    })
}

/// Puts raw messages into `folder` of `user`'s mailbox (created if need be), as a server-side
/// filter rule would file them.
pub fn append_to(user: &str, folder: &str, messages: &[Vec<u8>]) {
    rt().block_on(async {
        let mut s = imap_login(user).await;
        let _ = s.create(folder).await;
        for m in messages {
            s.append(folder, None, None, m).await.unwrap();
        }
        s.logout().await.unwrap();
    })
}

/// Every message in `user`'s INBOX, raw, in UID order.
pub fn inbox(user: &str) -> Vec<Vec<u8>> {
    rt().block_on(async {
        let mut s = imap_login(user).await;
        let mbox = s.select("INBOX").await.unwrap();
        let mut out = Vec::new();
        if mbox.exists > 0 {
            let fetches: Vec<_> = s.fetch("1:*", "BODY.PEEK[]").await.unwrap().try_collect().await.unwrap();
            out = fetches.iter().filter_map(|f| f.body().map(|b| b.to_vec())).collect();
        }
        s.logout().await.unwrap();
        out
    })
}

/// How many messages in `user`'s INBOX are not flagged \\Seen (maildesk flags what it recorded).
pub fn unseen(user: &str) -> usize {
    rt().block_on(async {
        let mut s = imap_login(user).await;
        s.select("INBOX").await.unwrap();
        let n = s.search("UNSEEN").await.unwrap().len();
        s.logout().await.unwrap();
        n
    })
}

/// Waits until `user` has at least `n` messages, then returns them all.
pub fn wait_inbox(user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let start = Instant::now();
    loop {
        let msgs = inbox(user);
        if msgs.len() >= n {
            return msgs;
        }
        assert!(start.elapsed() < timeout, "{user}: {} of {n} messages after {timeout:?}", msgs.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The value of a header in a raw message (first occurrence, unfolded).
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    msg.header_raw(name).map(|v| v.trim().replace("\r\n", "").replace('\n', ""))
}

pub fn subject(raw: &[u8]) -> String {
    mail_parser::MessageParser::default().parse(raw).and_then(|m| m.subject().map(str::to_string)).unwrap_or_default()
}

/// A TCP forwarder to a real server that can be switched off and on, standing in for "the SMTP
/// server is down": while off, connections to its port are refused, exactly as for a stopped server.
pub struct Switch {
    pub port: u16,
    target: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Open connections, so `cut` can drop them mid-stream.
    live: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Switch {
    /// A free port, with nothing listening on it yet.
    pub fn off(target: u16) -> Switch {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Switch { port, target, stop: Default::default(), thread: None, live: Default::default() }
    }

    pub fn on(&mut self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = self.stop.clone();
        let target = self.target;
        let live = self.live.clone();
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
                        live.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let (mut c1, mut s1) = (client, server);
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut c1, &mut s1);
                            let _ = s1.shutdown(std::net::Shutdown::Write);
                        });
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut s2, &mut c2);
                            let _ = c2.shutdown(std::net::Shutdown::Write);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }));
    }
}

impl Switch {
    /// Drops every open connection at once, as a network failure or a server restart would;
    /// new connections are still forwarded.
    pub fn cut(&self) {
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Sends a message over SMTP to an envelope recipient that may differ from its To: header.
pub fn send_to(envelope_to: &str, raw: &[u8]) {
    let from = header(raw, "From").unwrap_or_default();
    let from = from.rsplit('<').next().unwrap_or(&from).trim_end_matches('>').to_string();
    send_smtp(&from, envelope_to, raw)
}

/// The plain-text body of a raw message.
pub fn text(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// The bare address in a header like `"ACME IT" <support+t1-x@example.test>`.
pub fn header_address(raw: &[u8], name: &str) -> String {
    let v = header(raw, name).unwrap_or_else(|| panic!("no {name} header"));
    v.rsplit('<').next().unwrap_or(&v).trim_end_matches('>').trim().to_string()
}

/// What [`FaultyRelay`] does to the next SMTP connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpFault {
    /// Forward everything to the real server.
    Pass,
    /// Accept the connection and never say a word (a hung server).
    Silent,
    /// Forward the message, then drop the connection just before the final "." of DATA.
    DropBeforeDot,
    /// Forward the final "." (the real server takes the mail), then drop the connection before
    /// its reply reaches the client.
    DropAfterDot,
    /// Refuse the session in the greeting with a 5xx, as a server does that rejects the client
    /// (blocked after failed logins, say) before any mail is named.
    RefuseSession,
}

/// A relay in front of the real SMTP server that injects one kind of fault per connection.
pub struct FaultyRelay {
    pub port: u16,
    mode: std::sync::Arc<std::sync::Mutex<SmtpFault>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FaultyRelay {
    pub fn start(target: u16, mode: SmtpFault) -> FaultyRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let relay = FaultyRelay {
            port: listener.local_addr().unwrap().port(),
            mode: std::sync::Arc::new(std::sync::Mutex::new(mode)),
            stop: Default::default(),
        };
        let (mode, stop) = (relay.mode.clone(), relay.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let fault = *mode.lock().unwrap();
                        std::thread::spawn(move || relay_one(client, target, fault));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        relay
    }

    pub fn set(&self, mode: SmtpFault) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for FaultyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn relay_one(mut client: TcpStream, target: u16, fault: SmtpFault) {
    use std::io::{Read, Write};
    if fault == SmtpFault::Silent {
        let _ = std::io::copy(&mut client, &mut std::io::sink());
        return;
    }
    if fault == SmtpFault::RefuseSession {
        let _ = client.write_all(b"554 5.7.1 Too many failed authentications from your address\r\n");
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    }
    let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
    let mute = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (mut from, mut to, mute) = (server.try_clone().unwrap(), client.try_clone().unwrap(), mute.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                if !mute.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    }
    let mut to_server = server.try_clone().unwrap();
    let mut buf = [0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    while let Ok(n @ 1..) = client.read(&mut buf) {
        tail.extend_from_slice(&buf[..n]);
        let end_of_data = tail.windows(5).any(|w| w == b"\r\n.\r\n");
        tail.drain(..tail.len().saturating_sub(4));
        match (fault, end_of_data) {
            (SmtpFault::DropBeforeDot, true) => break,
            (SmtpFault::DropAfterDot, true) => {
                mute.store(true, Ordering::SeqCst);
                let _ = to_server.write_all(&buf[..n]);
                // Give the server time to take the mail; its reply goes nowhere.
                std::thread::sleep(Duration::from_secs(1));
                break;
            }
            _ => {
                if to_server.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = server.shutdown(std::net::Shutdown::Both);
}

/// A forwarder to a real server that runs `hook` once, the `nth` time (from 1) the client sends
/// bytes containing `needle`, before those bytes go on: a way to change the server's state at an
/// exact moment of the protocol (say, between a client's SEARCH and its FETCH).
pub struct Tap {
    pub port: u16,
}

impl Tap {
    pub fn start(target: u16, needle: &'static [u8], nth: usize, hook: impl FnOnce() + Send + 'static) -> Tap {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hook = std::sync::Arc::new(std::sync::Mutex::new(Some(hook)));
        let seen = std::sync::Arc::new(AtomicU32::new(0));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                // The server may be down (that can be the point of the test): so is the tap.
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let (mut from, mut to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
                let (hook, seen) = (hook.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut to_server = server;
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = client.read(&mut buf) {
                        if buf[..n].windows(needle.len()).any(|w| w == needle)
                            && seen.fetch_add(1, Ordering::SeqCst) + 1 == nth as u32
                            && let Some(h) = hook.lock().unwrap().take()
                        {
                            h();
                        }
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Tap { port }
    }
}

/// Expunges the message with this Message-ID (without brackets) from `user`'s INBOX, as another
/// mail client would.
pub fn expunge(user: &str, message_id: &str) {
    rt().block_on(async {
        let mut s = imap_login(user).await;
        s.select("INBOX").await.unwrap();
        let uids = s.uid_search(format!("HEADER Message-ID \"{message_id}\"")).await.unwrap();
        assert_eq!(uids.len(), 1, "{message_id} not found");
        let uid = uids.into_iter().next().unwrap();
        let _: Vec<_> =
            s.uid_store(uid.to_string(), "+FLAGS.SILENT (\\Deleted)").await.unwrap().try_collect().await.unwrap();
        let _: Vec<_> = s.uid_expunge(uid.to_string()).await.unwrap().try_collect().await.unwrap();
        s.logout().await.unwrap();
    })
}

/// Nanoseconds of the clock: a suffix that keeps Message-IDs of one test apart.
pub fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// The details of the events of `kind` in a `show --json` answer.
pub fn events(show: &Value, kind: &str) -> Vec<String> {
    show["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .collect()
}

/// `from` answers a notification (to its Reply-To, threaded under it) with `body`, as a mail
/// client would; `extra` is more header lines.
pub fn answer(from: &str, notice: &[u8], body: &str, extra: &str) {
    let to = header_address(notice, "Reply-To");
    let id = header(notice, "Message-ID").unwrap();
    let raw = message(
        from,
        &to,
        &format!("Re: {}", subject(notice)),
        &format!("r{}@tech.example.test", nanos()),
        &format!("{extra}In-Reply-To: {id}\r\nReferences: {id}\r\n"),
        body,
    );
    send_to(&to, &raw);
}

impl Desk {
    /// `from` mails the support address over SMTP: a plain message with this subject and body.
    pub fn request(&self, from: &str, subject: &str, message_id: &str, body: &str) {
        send_smtp(from, &self.support, &message(from, &self.support, subject, message_id, "", body));
    }
}
