//! IT service management at scale, through the real recording path without the mail servers:
//! requests recorded with and without `[[services]]` (keywords), routing rules, change approvals
//! and a request template (the cost of ITSM on intake); approvers' decisions by signed address;
//! a problem with 1,000 linked incidents resolved by one mail; `replay --dry-run` of 1,000 mails
//! on the result (writing nothing); and service keywords over 10 MB hostile texts (linear).
//! Prints a table and writes target/bench/itsm.json. `cargo bench --bench itsm` (the replay step
//! needs the release binary: scripts/bench builds it).

use std::path::Path;
use std::time::Instant;

use maildesk::auth::{self, AddressKind};
use maildesk::config::Config;
use maildesk::desk::Desk;
use maildesk::inbound::record::{Destination, Fetched, record_batch};
use maildesk::templates::Templates;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const SUPPORT: &str = "support@acme.example";

fn base(root: &Path, database: &Path) -> String {
    format!(
        "[helpdesk]\nname = \"ACME IT\"\ntag = \"ACME\"\naddress = \"{SUPPORT}\"\ndatabase = \"{}\"\n\
         templates = \"{}\"\ntechnicians = [\"tech@acme.example\"]\n\
         [imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n\
         [limits]\nauto_replies_per_recipient_per_hour = 1000000\nauto_replies_per_ticket_per_hour = 1000000\n",
        database.display(),
        root.join("templates").display()
    )
}

/// Three services of 20 keywords each, approvals, a routing rule for changes, an onboarding template.
fn itsm() -> String {
    let words = |prefix: &str| (0..20).map(|i| format!("\"{prefix}{i}\"")).collect::<Vec<_>>().join(", ");
    format!(
        r#"
[[queues]]
name = "helpdesk"
[[queues]]
name = "facilities"
addresses = ["facilities@acme.example"]

[[services]]
name = "email"
owner = "olivia@acme.example"
keywords = [{}, "outlook"]
[[services]]
name = "network"
owner = "nick@acme.example"
keywords = [{}, "vpn"]
[services.approvals]
approvers = ["cab1@acme.example", "cab2@acme.example", "cab3@acme.example"]
required = 2
[[services]]
name = "workplace"
queue = "facilities"
keywords = [{}, "badge"]

[[routing]]
subject_matches = "(?i)^change:"
type = "change"

[request_templates.onboarding]
subject_matches = "(?i)^new starter"
tasks = [ {{ queue = "helpdesk", title = "Laptop" }}, {{ queue = "facilities", title = "Badge" }} ]
"#,
        words("mailword"),
        words("netword"),
        words("deskword")
    )
}

fn mail(i: usize, from: &str, to: &str, subject: &str, body: &str) -> Fetched {
    let raw = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <b{i}-{}@bench.example>\r\n\
         Date: Sat, 05 Dec 2026 09:00:00 +0000\r\n\r\n{body}\r\n",
        subject.len()
    );
    Fetched { uid: i as u32 + 1, raw: raw.into_bytes() }
}

/// The i-th request of the mix: one change in 10 (network, by rule and keyword), one onboarding in
/// 20, the rest incidents naming a service's keyword deep in the text (or none).
fn request(i: usize) -> Fetched {
    let from = format!("user{i}@corp.example");
    let filler = "The issue started this morning and colleagues see it too. ".repeat(20);
    match i % 20 {
        0 => mail(i, &from, SUPPORT, &format!("New starter {i}"), "Starts Monday, sales."),
        n if n % 10 == 5 => mail(i, &from, SUPPORT, &format!("Change: VPN gateway firmware {i}"), &filler),
        n => {
            let word = ["outlook", "vpn", "badge", "printer"][n % 4];
            mail(i, &from, SUPPORT, &format!("Problem {i}"), &format!("{filler}\nIt is about the {word}."))
        }
    }
}

struct Run {
    conn: rusqlite::Connection,
    config: Config,
    templates: Templates,
    instance: String,
}

fn open(dir: &Path, name: &str, tail: &str) -> Run {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let database = dir.join(format!("{name}.db"));
    let path = dir.join(format!("{name}.toml"));
    let text = format!("{}{tail}", base(root, &database));
    // On disk too: `replay` reads it.
    std::fs::write(&path, &text).expect("the config written");
    let config = Config::from_str(&path, &text).expect("a valid config");
    let templates = Templates::load_desk(&config).expect("the templates");
    let conn = maildesk::store::open(&database).expect("a database");
    let instance = maildesk::store::instance_token(&conn).expect("an instance token");
    Run { conn, config, templates, instance }
}

impl Run {
    /// Records `mails` in batches of 100; the seconds it took.
    fn record(&mut self, mails: &[Fetched], first_uid: u32) -> f64 {
        let desk = Desk {
            config: &self.config,
            templates: &self.templates,
            instance: &self.instance,
            reply_secret: SECRET,
            home_queue: 0,
        };
        let start = Instant::now();
        let mut uid = first_uid;
        for chunk in mails.chunks(100) {
            let batch: Vec<Fetched> = chunk
                .iter()
                .map(|m| {
                    uid += 1;
                    Fetched { uid, raw: m.raw.clone() }
                })
                .collect();
            let target = Destination { mailbox: "INBOX", uid_validity: 1, advance_to: Some(uid), now: 1_796_000_000 };
            record_batch(&mut self.conn, &desk, &target, &batch, None).expect("recorded");
        }
        start.elapsed().as_secs_f64()
    }

    fn count(&self, sql: &str) -> i64 {
        self.conn.query_row(sql, [], |r| r.get(0)).expect("a count")
    }
}

fn main() {
    let quick = std::env::var("MAILDESK_BENCH_QUICK").is_ok();
    let n = if quick { 500 } else { 2000 };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mails: Vec<Fetched> = (0..n).map(request).collect();

    // 1. Intake with and without ITSM.
    let mut plain = open(dir.path(), "plain", "");
    let plain_secs = plain.record(&mails, 0);
    let mut desk = open(dir.path(), "itsm", &itsm());
    let itsm_secs = desk.record(&mails, 0);
    let changes = desk.count("SELECT count(*) FROM tickets WHERE type = 'change'");
    let tasks = desk.count("SELECT count(*) FROM tickets WHERE parent_id IS NOT NULL");
    let with_service = desk.count("SELECT count(*) FROM tickets WHERE service IS NOT NULL");
    let requests_out = desk.count(
        "SELECT count(*) FROM outbox o JOIN messages m ON m.id = o.message_id WHERE m.kind = 'approval-request'",
    );
    println!("{:<58} {:>10}", "step", "figure");
    println!("{:<58} {:>8.0} msg/s", format!("record {n} requests, plain desk"), n as f64 / plain_secs);
    println!(
        "{:<58} {:>8.0} msg/s   ({:.0}% of plain; {changes} changes, {requests_out} approval requests, {tasks} tasks, {with_service} with a service)",
        format!("record {n} requests, 3 services + approvals + template"),
        n as f64 / itsm_secs,
        plain_secs / itsm_secs * 100.0
    );

    // 2. Two of three approvers decide each change by their signed address.
    let ids: Vec<i64> = desk
        .conn
        .prepare("SELECT id FROM tickets WHERE type = 'change' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let decisions: Vec<Fetched> = ids
        .iter()
        .flat_map(|&t| {
            ["cab1@acme.example", "cab2@acme.example"].map(move |cab| {
                let to = auth::approval_address(SECRET, SUPPORT, t, 1, cab);
                mail(1_000_000 + t as usize * 10 + cab.len(), cab, &to, "Re: approval", "#approve")
            })
        })
        .collect();
    let decide_secs = desk.record(&decisions, 100_000);
    let approved = desk.count("SELECT count(*) FROM tickets WHERE approval = 'approved'");
    assert_eq!(approved, changes, "every change approved");
    println!(
        "{:<58} {:>8.2} ms   ({approved} of {changes} changes approved)",
        format!("{} approvers' decisions, each", decisions.len()),
        decide_secs * 1e3 / decisions.len().max(1) as f64
    );

    // 3. A problem with 1,000 linked incidents, resolved by one technician mail.
    let incidents: Vec<i64> = desk
        .conn
        .prepare("SELECT id FROM tickets WHERE type IS NULL AND parent_id IS NULL ORDER BY id LIMIT 1000")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let tx = desk.conn.transaction().unwrap();
    let problem = maildesk::store::write::open_problem(&tx, incidents[0], "bench", 1_796_000_000).unwrap();
    for &i in &incidents {
        maildesk::store::write::link_problem(&tx, i, problem, "bench", 1_796_000_000).unwrap();
    }
    tx.commit().unwrap();
    let to = auth::ticket_address(SECRET, SUPPORT, AddressKind::Reply, problem, "tech@acme.example");
    let resolve = [mail(9_000_000, "tech@acme.example", &to, "Re: problem", "#resolve\nThe cause is fixed.")];
    let before = desk.count("SELECT count(*) FROM outbox");
    let problem_secs = desk.record(&resolve, 200_000);
    let told = desk.count("SELECT count(*) FROM outbox") - before;
    let resolved =
        desk.count(&format!("SELECT count(*) FROM tickets WHERE problem_id = {problem} AND status = 'resolved'"));
    println!(
        "{:<58} {:>8.1} ms   ({resolved} incidents resolved, {told} requesters told)",
        format!("resolve a problem with {} linked incidents", incidents.len()),
        problem_secs * 1e3
    );

    // 4. replay --dry-run of 1,000 new mails against this database, through the release binary.
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/maildesk");
    let replay = if bin.exists() {
        let mut mbox = Vec::new();
        for i in 0..1000 {
            mbox.extend_from_slice(b"From someone@corp.example Sat Dec  5 09:00:00 2026\n");
            mbox.extend_from_slice(&request(n + 10 + i).raw);
            mbox.extend_from_slice(b"\n");
        }
        let file = dir.path().join("past.mbox");
        std::fs::write(&file, &mbox).unwrap();
        let tickets_before = desk.count("SELECT count(*) FROM tickets");
        let outbox_before = desk.count("SELECT count(*) FROM outbox");
        let start = Instant::now();
        let out = std::process::Command::new(&bin)
            .args(["--config", dir.path().join("itsm.toml").to_str().unwrap(), "replay", "--dry-run", "--json"])
            .arg(&file)
            .output()
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown.as_array().map(Vec::len), Some(1000));
        let unchanged = desk.count("SELECT count(*) FROM tickets") == tickets_before
            && desk.count("SELECT count(*) FROM outbox") == outbox_before;
        assert!(unchanged, "replay wrote nothing");
        println!(
            "{:<58} {:>8.0} msg/s   (nothing written: tickets and outbox unchanged)",
            "replay --dry-run of 1,000 mails (whole command)",
            1000.0 / secs
        );
        Some(1000.0 / secs)
    } else {
        println!("replay: no release binary (scripts/bench builds it); skipped");
        None
    };

    // 5. Service keywords over 10 MB hostile texts: near-misses and one 10 MB word.
    let re = desk.config.services[0].keywords.clone().unwrap();
    let mut worst = 0f64;
    for (name, text) in [
        ("near-miss words", "mailwor mailword outlooks ".repeat(400_000)),
        ("one 10 MB word", "o".repeat(10 * 1024 * 1024)),
    ] {
        let start = Instant::now();
        let found = re.find(&text).is_some();
        let secs = start.elapsed().as_secs_f64();
        worst = worst.max(secs);
        println!("{:<58} {:>8.1} ms   (match: {found})", format!("keywords over 10 MB of {name}"), secs * 1e3);
    }

    let results = serde_json::json!({
        "requests": n,
        "record_plain_msgs_per_sec": n as f64 / plain_secs,
        "record_itsm_msgs_per_sec": n as f64 / itsm_secs,
        "itsm_share_of_plain": plain_secs / itsm_secs,
        "decision_ms": decide_secs * 1e3 / decisions.len().max(1) as f64,
        "problem_1000_incidents_ms": problem_secs * 1e3,
        "replay_msgs_per_sec": replay,
        "keywords_10mb_worst_ms": worst * 1e3,
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("itsm.json"), serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("written to target/bench/itsm.json");
}
