//! SLA at scale: 1,000,000 tickets in the database, 100 of them with an escalation due.
//! Prints the time of one sweep and of the report (library call and the real `maildesk report`),
//! and writes them to target/bench/sla.json. A benchmark: it measures, it never fails on time.
//!
//!   cargo bench --bench sla            (MAILDESK_BENCH_TICKETS=100000 for a quicker run)

use std::time::Instant;

use maildesk::config::Config;
use maildesk::desk::Desk;
use maildesk::{escalation as sweep, report};
use maildesk::{store, templates::Templates};
use rusqlite::params;

fn main() {
    let n: i64 = std::env::var("MAILDESK_BENCH_TICKETS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let due = 100;
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("maildesk.toml");
    let text = format!(
        "[helpdesk]\nname = \"Bench\"\ntag = \"B\"\naddress = \"support@bench.test\"\ndatabase = \"bench.db\"\n\
         templates = \"{root}/templates\"\ntechnicians = [\"tech@bench.test\"]\n\
         [imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n"
    );
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::from_str(&config_path, &text).unwrap();
    let templates = Templates::load(&config.helpdesk.templates).unwrap();
    let mut conn = store::open(&config.helpdesk.database).unwrap();
    let now = store::now();

    let t = Instant::now();
    {
        let tx = conn.transaction().unwrap();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO tickets(subject, requester, status, priority, created_at, updated_at, first_response_at,
                         first_responder, first_response_secs, resolution_secs, first_response_breached,
                         resolution_breached, sla_next_at, resolved_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .unwrap();
            let mut log = tx.prepare("INSERT INTO status_log(ticket_id, at, status) VALUES (?1, ?2, 'open')").unwrap();
            for i in 0..n {
                let created = now - 90 * 86_400 + (i * 7_776_000 / n.max(1));
                // The last `due` tickets: open P1 tickets (24x7) from two days ago, long overdue.
                let is_due = i >= n - due;
                let resolved = i % 10 < 7 && !is_due;
                let priority = if is_due { "P1" } else { ["P1", "P2", "P3", "P4"][(i % 4) as usize] };
                let fr = (i % 3 != 0 && !is_due).then_some(600 + (i * 37) % 40_000);
                // Open tickets have their next level in the future, except the last `due` ones.
                let next = if resolved {
                    None
                } else if is_due {
                    Some(now - 1)
                } else {
                    Some(now + 3600 + i % 86_400)
                };
                ins.execute(params![
                    format!("Ticket {i}"),
                    format!("user{}@customer.test", i % 5000),
                    if resolved { "resolved" } else { "open" },
                    priority,
                    if is_due { now - 2 * 86_400 } else { created },
                    fr.map(|s| created + s),
                    fr.map(|_| format!("tech{}@bench.test", i % 7)),
                    fr,
                    resolved.then_some(3600 + (i * 91) % 200_000),
                    fr.is_some_and(|s| s > 20_000),
                    i % 13 == 0,
                    next,
                    resolved.then_some(created + 86_400),
                ])
                .unwrap();
                if is_due {
                    log.execute(params![tx.last_insert_rowid(), now - 2 * 86_400]).unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    let seed = t.elapsed();
    let size = std::fs::metadata(&config.helpdesk.database).map(|m| m.len()).unwrap_or(0);

    let instance = store::instance_token(&conn).unwrap();
    let secret = store::reply_secret(&conn, None).unwrap();
    let desk =
        Desk { config: &config, templates: &templates, instance: &instance, reply_secret: &secret, home_queue: 0 };
    let t = Instant::now();
    let queued = sweep::sweep(&mut conn, &desk, now).unwrap();
    let sweep_time = t.elapsed();
    let t = Instant::now();
    let idle = sweep::sweep(&mut conn, &desk, now).unwrap();
    let idle_sweep = t.elapsed();

    let t = Instant::now();
    let r = report::report(&conn, None, None, (&["default".to_string()], &[]), now).unwrap();
    let report_lib = t.elapsed();
    let opened: u64 = r.priorities.iter().map(|p| p.opened).sum();
    drop(conn);
    let bin = std::path::Path::new(root).join("target/release/maildesk");
    let report_cli = bin.exists().then(|| {
        let t = Instant::now();
        let out = std::process::Command::new(&bin)
            .args(["--config", config_path.to_str().unwrap(), "report", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        t.elapsed()
    });

    println!("SLA at scale: {n} tickets ({:.0} MB database, seeded in {:.1} s)", size as f64 / 1e6, seed.as_secs_f64());
    println!("{:<44} {:>10}", "measurement", "time");
    println!(
        "{:<44} {:>8.1}ms",
        format!("sweep with {due} due ({queued} mails queued)"),
        sweep_time.as_secs_f64() * 1e3
    );
    println!("{:<44} {:>8.1}ms", format!("sweep with nothing due ({idle} queued)"), idle_sweep.as_secs_f64() * 1e3);
    println!("{:<44} {:>8.1}ms", format!("report over {opened} tickets (library)"), report_lib.as_secs_f64() * 1e3);
    match report_cli {
        Some(d) => println!("{:<44} {:>8.1}ms", "maildesk report --json (process, cold)", d.as_secs_f64() * 1e3),
        None => println!("(build target/release/maildesk to time the CLI as well)"),
    }
    let json = serde_json::json!({
        "tickets": n, "due": due, "database_bytes": size, "seed_secs": seed.as_secs_f64(),
        "sweep_ms": sweep_time.as_secs_f64() * 1e3, "sweep_queued": queued,
        "idle_sweep_ms": idle_sweep.as_secs_f64() * 1e3,
        "report_ms": report_lib.as_secs_f64() * 1e3,
        "report_cli_ms": report_cli.map(|d| d.as_secs_f64() * 1e3),
    });
    let out = std::path::Path::new(root).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("sla.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
}
