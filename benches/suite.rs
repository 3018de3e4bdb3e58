//! The speed suite: maildesk against its physical-limit baselines, in the same run, on the local
//! Dovecot + Postfix (`scripts/bench` starts them and builds the release binary first).
//!
//! 1. Backlog ingest: a deterministic 10,000-message mailbox; maildesk vs a bare async-imap client
//!    that only fetches every body (same library, same batch size). A second reference also stores
//!    each fetched batch's raw bytes in SQLite: the floor under any desk that keeps the mail.
//! 2. Acknowledgement delivery: until Postfix accepted every acknowledgement; vs the same messages
//!    sent by a bare lettre client over the same number of connections.
//! 3. Push latency: maildesk idle on IDLE, mails sent one at a time; SMTP 250 → acknowledgement in the
//!    requester's INBOX; vs a bare client that IDLEs and answers with a fixed message.
//! 4. Footprint: idle RSS (the push daemon of scenario 3, connected to an empty mailbox and idle),
//!    RSS when the backlog daemon of scenario 1 is ready, peak RSS, binary size, start-up time.
//!
//! Prints a table and writes target/bench/results.json. Only 127.0.0.1 is contacted.
//! Figures, not verdicts: nothing here fails on time. `MAILDESK_BENCH_QUICK=1` runs a small version;
//! for profiling, `MAILDESK_BENCH_BATCH=n` sets the batch size, `MAILDESK_BENCH_PROBES=n` the latency
//! probes, `MAILDESK_BENCH_INGEST_ONLY=1` stops after scenario 1 run with no SMTP server (and prints
//! CPU seconds per thread), and `MAILDESK_BENCH_KEEP=1` keeps the seeded mailbox.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;

mod lab;
use lab::{Daemon, Rng, generate, ingest_only, rss_kb, seed_maildir};

async fn imap(user: &str) -> async_imap::Session<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", 1143)).await.unwrap();
    let mut c = async_imap::Client::new(tcp);
    c.read_response().await.unwrap();
    c.login(user, "secret").await.map_err(|(e, _)| e).unwrap()
}

/// Fetches every full message of `user`'s INBOX in batches of `batch` UIDs (ascending), handing
/// each batch's answers to `each`.
async fn fetch_all(user: &str, batch: usize, mut each: impl FnMut(&[async_imap::types::Fetch])) {
    let mut s = imap(user).await;
    // SELECT, as maildesk does; BODY.PEEK leaves the messages unseen for it.
    s.select("INBOX").await.unwrap();
    let mut uids: Vec<u32> = s.uid_search("ALL").await.unwrap().into_iter().collect();
    uids.sort_unstable();
    for chunk in uids.chunks(batch) {
        let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let fetched: Vec<_> = s.uid_fetch(&set, "(UID BODY.PEEK[])").await.unwrap().try_collect().await.unwrap();
        each(&fetched);
    }
    s.logout().await.unwrap();
}

/// Baseline 1: fetch every full message in batches of `batch`, discard. Returns (seconds, bytes).
async fn bare_fetch(user: &str, batch: usize) -> (f64, usize) {
    let start = Instant::now();
    let mut bytes = 0;
    fetch_all(user, batch, |fetched| bytes += fetched.iter().filter_map(|f| f.body()).map(<[u8]>::len).sum::<usize>())
        .await;
    (start.elapsed().as_secs_f64(), bytes)
}

/// The floor under any desk that keeps every message: fetch as [`bare_fetch`] does, and store each
/// batch's raw bytes in SQLite in one transaction, with maildesk's settings (16 KiB pages, WAL,
/// `synchronous = FULL`). No parsing, no tickets, no overlap of fetching and writing. Returns seconds.
async fn fetch_and_store(user: &str, batch: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut db = rusqlite::Connection::open(dir.path().join("floor.db")).unwrap();
    db.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE raw (id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, raw BLOB NOT NULL);",
    )
    .unwrap();
    fetch_all(user, batch, |fetched| {
        let tx = db.transaction().unwrap();
        for f in fetched {
            tx.execute("INSERT INTO raw (uid, raw) VALUES (?1, ?2)", rusqlite::params![f.uid, f.body()]).unwrap();
        }
        tx.commit().unwrap();
    })
    .await;
    start.elapsed().as_secs_f64()
}

async fn inbox_count(user: &str) -> u32 {
    let mut s = imap(user).await;
    let st = s.status("INBOX", "(MESSAGES)").await.unwrap();
    let _ = s.logout().await;
    st.exists
}

/// CPU seconds (user + system) per thread name of a process, from /proc: where ingest spends its time.
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // After the name: state is field 3 of stat(5), utime 14 and stime 15, in clock ticks of 1/100 s.
        let ticks: f64 = fields.get(11..13).into_iter().flatten().filter_map(|f| f.parse::<f64>().ok()).sum();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 += ticks / 100.0,
            None => by_name.push((name, ticks / 100.0)),
        }
    }
    by_name
}

/// CPU seconds (user + system) of a process, its finished threads included.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    after_name.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<f64>().ok()).sum::<f64>() / 100.0
}

/// Busy and total CPU seconds of the whole machine so far, from /proc/stat (all processes, Dovecot too).
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    ((total - idle) / 100.0, total / 100.0)
}

fn smtp_send(from: &str, to: &str, raw: &[u8]) {
    let stream = TcpStream::connect(("127.0.0.1", 2525)).unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<TcpStream>| loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect(&mut r);
    for cmd in
        ["EHLO bench.example.test".to_string(), format!("MAIL FROM:<{from}>"), format!("RCPT TO:<{to}>"), "DATA".into()]
    {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        expect(&mut r);
    }
    w.write_all(raw).unwrap();
    w.write_all(b"\r\n.\r\n").unwrap();
    expect(&mut r);
    w.write_all(b"QUIT\r\n").unwrap();
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Sends `n` requests one at a time; returns each SMTP-250-to-reply-in-INBOX latency in seconds.
async fn latencies(n: usize, to: &str, requester: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..n {
        let before = inbox_count(requester).await;
        let raw = format!(
            "From: {requester}\r\nTo: {to}\r\nSubject: Latency probe {i}\r\nMessage-ID: <lat-{i}-{requester}>\r\n\r\nping\r\n"
        );
        let t = Instant::now();
        smtp_send(requester, to, raw.as_bytes());
        loop {
            if inbox_count(requester).await > before {
                break;
            }
            if t.elapsed() > Duration::from_secs(20) {
                panic!("no reply to probe {i} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        out.push(t.elapsed().as_secs_f64());
    }
    out
}

/// Baseline 3: IDLE on `user`, answer every new mail with a fixed message to its sender.
async fn bare_responder(user: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let mut s = imap(&user).await;
    let mb = s.select("INBOX").await.unwrap();
    let mut seen = mb.uid_next.unwrap_or(1);
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let uids: Vec<u32> =
            s.uid_search(format!("UID {seen}:*")).await.unwrap().into_iter().filter(|u| *u >= seen).collect();
        for uid in uids {
            let f: Vec<_> = s
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER.FIELDS (FROM)])")
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let from =
                f.first().and_then(|f| f.header()).map(|h| String::from_utf8_lossy(h).to_string()).unwrap_or_default();
            let from = from.trim().trim_start_matches("From:").trim().to_string();
            let raw = format!("From: {user}\r\nTo: {from}\r\nSubject: Got it\r\n\r\nfixed reply\r\n");
            let me = user.clone();
            tokio::task::spawn_blocking(move || smtp_send(&me, &from, raw.as_bytes())).await.unwrap();
            seen = seen.max(uid + 1);
        }
        let mut idle = s.idle();
        idle.init().await.unwrap();
        let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(2));
        let _ = wait.await;
        s = idle.done().await.unwrap();
    }
}

/// Scenario 6: a few large mails (attachments of 20-48 MB) to a desk with five technicians. Prints
/// the daemon's peak RSS against the largest message, and where the bytes went in the database.
/// `MAILDESK_BENCH_LARGE_ONLY=1` runs it alone. `limits` are the [limits] lines (kept apart so that
/// the same scenario runs against an older maildesk that knows fewer keys).
async fn large_mail(bin: &Path, run: &str, limits: &str) -> serde_json::Value {
    let support = format!("large-{run}@example.test");
    let techs: Vec<String> = (0..5).map(|i| format!("large-tech{i}-{run}@example.test")).collect();
    let requester = format!("large-req-{run}@example.test");
    let mut rng = Rng(11);
    let sizes_mb = [20usize, 24, 28, 36, 48];
    let messages: Vec<Vec<u8>> = sizes_mb
        .iter()
        .enumerate()
        .map(|(i, mb)| {
            let data: Vec<u8> = (0..mb * 1_000_000 / 8).flat_map(|_| rng.next().to_le_bytes()).collect();
            let encoded = data_encoding::BASE64.encode(&data);
            let mut body = String::with_capacity(encoded.len() * 78 / 76 + 1000);
            for line in encoded.as_bytes().chunks(76) {
                body.push_str(std::str::from_utf8(line).unwrap());
                body.push_str("\r\n");
            }
            format!(
                "From: {requester}\r\nTo: {support}\r\nSubject: Disk image {i}\r\nMessage-ID: <large{i}-{run}@example.test>\r\n\
Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nThe image is attached.\r\n--XX\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"disk{i}.img\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}--XX--\r\n"
            )
            .into_bytes()
        })
        .collect();
    let largest = messages.iter().map(Vec::len).max().unwrap_or(0);
    let total: usize = messages.iter().map(Vec::len).sum();
    let _mailbox = seed_maildir(&support, &messages);
    drop(messages);
    let list = techs.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
    let start = Instant::now();
    let d = Daemon::start(bin, &support, 200, &format!("technicians = [{list}]"), limits);
    let pid = d.child.id();
    loop {
        let (ingested, queued, _) = d.progress();
        let settled = rusqlite::Connection::open_with_flags(d.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .is_ok_and(|n| n == 0);
        if ingested >= sizes_mb.len() as i64 && queued > 0 && settled {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(900), "maildesk did not finish: {:?}", d.progress());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let peak_kb = rss_kb(pid, "VmHWM:");
    let c = rusqlite::Connection::open_with_flags(d.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let q = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0);
    let inbound = q(
        "SELECT coalesce(sum(length(r.raw)), 0) FROM message_raw r JOIN messages m ON m.id = r.message_id WHERE m.direction = 'in'",
    );
    let outbound = q(
        "SELECT coalesce(sum(length(r.raw)), 0) FROM message_raw r JOIN messages m ON m.id = r.message_id WHERE m.direction = 'out'",
    );
    let (sent, failed) = (
        q("SELECT count(*) FROM outbox WHERE status = 'sent'"),
        q("SELECT count(*) FROM outbox WHERE status = 'failed'"),
    );
    let forwarded = q("SELECT count(*) FROM messages WHERE direction = 'out' AND kind = 'new-ticket'");
    drop(c);
    let file_mb = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let db_mb = file_mb(d.db()) + file_mb(d.db().with_extension("db-wal"));
    drop(d);
    println!(
        "6 large mail: {} messages, {:.0} MB, largest {:.1} MB, {} technicians: {secs:.1} s",
        sizes_mb.len(),
        total as f64 / 1e6,
        largest as f64 / 1e6,
        techs.len()
    );
    println!(
        "{:<34} {:>9.1} MB ({:.1}x the largest message)",
        "  peak RSS",
        peak_kb as f64 / 1024.0,
        peak_kb as f64 * 1024.0 / largest as f64
    );
    println!(
        "{:<34} {:>9.1} MB inbound, {:.3} MB outbound",
        "  stored raw bytes",
        inbound as f64 / 1e6,
        outbound as f64 / 1e6
    );
    println!("{:<34} {:>9.1} MB", "  database file (with its WAL)", db_mb);
    println!("{:<34} {sent} sent, {failed} failed; {forwarded} notifications", "  outbox");
    serde_json::json!({
        "messages": sizes_mb.len(), "megabytes": total as f64 / 1e6, "largest_mb": largest as f64 / 1e6,
        "technicians": techs.len(), "secs": secs, "peak_rss_mb": peak_kb as f64 / 1024.0,
        "inbound_raw_mb": inbound as f64 / 1e6, "outbound_raw_mb": outbound as f64 / 1e6,
        "database_mb": db_mb, "sent": sent, "failed": failed,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    maildesk::tls::install_provider();
    let quick = std::env::var("MAILDESK_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (n, probes) = if quick { (1_000, 20) } else { (10_000, 200) };
    // For profiling runs: MAILDESK_BENCH_PROBES=0 skips the latency scenario.
    let probes: usize =
        std::env::var("MAILDESK_BENCH_PROBES").ok().and_then(|v| v.parse().ok()).unwrap_or(probes).max(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/maildesk");
    assert!(bin.exists(), "build the release binary first (scripts/bench does)");
    assert!(TcpStream::connect(("127.0.0.1", 1143)).is_ok(), "the mail lab is not running (scripts/bench starts it)");
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
    let large_limits = std::env::var("MAILDESK_BENCH_LARGE_LIMITS")
        .unwrap_or_else(|_| "max_message_mb = 64\nmax_attachment_mb = 64\nforward_attachments_mb = 30".into());
    if std::env::var("MAILDESK_BENCH_LARGE_ONLY").is_ok_and(|v| v == "1") {
        large_mail(&bin, &run, &large_limits).await;
        return;
    }
    let support = format!("bench-{run}@example.test");
    let (messages, acks) = generate(n, &run, &support, 42);
    let total_bytes: usize = messages.iter().map(Vec::len).sum();
    println!(
        "maildesk speed suite: {n} messages, {:.1} MB, {acks} acknowledgements expected",
        total_bytes as f64 / 1e6
    );
    let _mailbox = seed_maildir(&support, &messages);
    drop(messages);

    // The daemon's default batch size, for both sides.
    let batch: u32 = std::env::var("MAILDESK_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    // Warm Dovecot once so neither side pays for building its index, or for the first read-write
    // SELECT moving the fresh deliveries from new/ to cur/ (0.8 s for 10,000).
    let _ = bare_fetch(&support, batch as usize).await;
    // Scenario 1 baseline.
    let (base_secs, base_bytes) = bare_fetch(&support, batch as usize).await;
    let floor_secs = fetch_and_store(&support, batch as usize).await;

    // Scenario 1 + 2 + 4: maildesk on the same mailbox.
    let start = Instant::now();
    let cpu_at_start = machine_cpu();
    let d = Daemon::start(&bin, &support, batch, "", "");
    let pid = d.child.id();
    let mut ready_at = None;
    let mut ingest_secs = None;
    let sent_secs;
    let mut peak = 0;
    let mut ready_rss = 0;
    loop {
        if ready_at.is_none() && d.ready() {
            ready_at = Some(start.elapsed().as_secs_f64());
            // Races the first FETCH of the backlog: a figure of start-up, not of idling.
            ready_rss = rss_kb(pid, "VmRSS:");
        }
        let (recorded, queued, sent) = d.progress();
        peak = peak.max(rss_kb(pid, "VmHWM:"));
        if ingest_secs.is_none() && recorded >= n as i64 {
            ingest_secs = Some(start.elapsed().as_secs_f64());
            if ingest_only() {
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "ingest only: {secs:.3} s, {:.0} msg/s; bare fetch {base_secs:.3} s; fetch and store {floor_secs:.3} s; peak RSS {:.1} MB",
                    n as f64 / secs,
                    peak as f64 / 1024.0
                );
                let (busy, total) = machine_cpu();
                println!(
                    "machine CPU busy {:.2} of {:.2} s; maildesk {:.2} s, of it in live threads: {}",
                    busy - cpu_at_start.0,
                    total - cpu_at_start.1,
                    process_cpu(pid),
                    thread_cpu(pid).iter().map(|(n, s)| format!("{n} {s:.2}")).collect::<Vec<_>>().join(", ")
                );
                return;
            }
        }
        if ingest_secs.is_some() && sent >= queued && queued > 0 {
            sent_secs = Some(start.elapsed().as_secs_f64());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(900), "maildesk did not finish: {:?}", d.progress());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ingest = ingest_secs.unwrap();
    let delivered = sent_secs.unwrap();
    let (_, queued, _) = d.progress();
    peak = peak.max(rss_kb(pid, "VmHWM:"));
    // The acknowledgements maildesk sent, for the delivery baseline. A sent mail keeps only its
    // header block (and its text in `messages`), so the baseline sends those with the text as body.
    let ack_msgs: Vec<(String, Vec<u8>)> = {
        let c = rusqlite::Connection::open_with_flags(d.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut st = c
            .prepare(
                "SELECT o.recipient, r.raw, m.body_text FROM outbox o JOIN message_raw r ON r.message_id = o.message_id
                 JOIN messages m ON m.id = o.message_id ORDER BY o.id",
            )
            .unwrap();
        st.query_map([], |r| {
            let mut raw: Vec<u8> = r.get(1)?;
            let text: String = r.get(2)?;
            raw.extend_from_slice(text.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes());
            Ok((r.get(0)?, raw))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    drop(d);

    // Scenario 2 baseline: the same messages through lettre's pool, two connections.
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(2525)
            .tls(Tls::None)
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(2))
            .build();
    let t = Instant::now();
    let sends = ack_msgs.iter().map(|(rcpt, raw)| {
        let env = lettre::address::Envelope::new(Some(support.parse().unwrap()), vec![rcpt.parse().unwrap()]).unwrap();
        let transport = &transport;
        async move { transport.send_raw(&env, raw).await.unwrap() }
    });
    let mut in_flight = futures_util::stream::iter(sends).buffer_unordered(2);
    while in_flight.next().await.is_some() {}
    let base_send = t.elapsed().as_secs_f64();

    // Scenario 3: push latency, maildesk on IDLE with an empty mailbox.
    let push_support = format!("push-{run}@example.test");
    let requester = format!("probe-{run}@example.test");
    let d = Daemon::start(&bin, &push_support, 50, "", "");
    while !d.ready() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Idle: connected, nothing to fetch, waiting in IDLE.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kb(d.child.id(), "VmRSS:");
    let mut ours = latencies(probes, &push_support, &requester).await;
    drop(d);
    let responder = format!("responder-{run}@example.test");
    let requester2 = format!("probe2-{run}@example.test");
    let _ = inbox_count(&responder).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bare = tokio::spawn(bare_responder(responder.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut theirs = latencies(probes, &responder, &requester2).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(5), bare).await;
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);

    let binary = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    let mb = total_bytes as f64 / 1e6;
    println!();
    println!("{:<34} {:>12} {:>12} {:>8}", "scenario", "maildesk", "baseline", "ratio");
    println!(
        "{:<34} {:>8.0} m/s {:>8.0} m/s {:>7.0}%",
        "1 backlog ingest",
        n as f64 / ingest,
        n as f64 / base_secs,
        100.0 * base_secs / ingest
    );
    println!("{:<34} {:>8.1} MB/s {:>7.1} MB/s", "  throughput", mb / ingest, base_bytes as f64 / 1e6 / base_secs);
    println!(
        "{:<34} {:>8.0} m/s {:>8.0} m/s {:>7.0}%",
        "  vs fetch + store raw in SQLite",
        n as f64 / ingest,
        n as f64 / floor_secs,
        100.0 * floor_secs / ingest
    );
    println!(
        "{:<34} {:>9.1} s {:>10.1} s {:>7.0}%",
        format!("2 {queued} acks accepted by Postfix"),
        delivered,
        base_send,
        100.0 * base_send / delivered
    );
    for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        println!(
            "{:<34} {:>10.3} s {:>10.3} s",
            format!("3 push latency {name} ({probes} mails)"),
            pct(&ours, p),
            pct(&theirs, p)
        );
    }
    println!("{:<34} {:>9.1} MB", "4 idle RSS", idle_rss as f64 / 1024.0);
    println!("{:<34} {:>9.1} MB", "  RSS when ready (scenario 1)", ready_rss as f64 / 1024.0);
    println!("{:<34} {:>9.1} MB", "  peak RSS (scenario 1)", peak as f64 / 1024.0);
    println!("{:<34} {:>9.1} MB", "  binary size", binary as f64 / 1e6);
    println!("{:<34} {:>10.3} s", "  start-up to IMAP ready", ready_at.unwrap_or(0.0));

    let large = large_mail(&bin, &run, &large_limits).await;
    let results = json!({
        "quick": quick,
        "messages": n, "megabytes": mb, "acknowledgements": queued,
        "ingest": { "maildesk_secs": ingest, "baseline_secs": base_secs, "maildesk_msgs_per_sec": n as f64 / ingest,
                    "baseline_msgs_per_sec": n as f64 / base_secs, "ratio": base_secs / ingest,
                    "fetch_and_store_secs": floor_secs, "ratio_to_fetch_and_store": floor_secs / ingest },
        "delivery": { "maildesk_secs": delivered, "baseline_secs": base_send, "ratio": base_send / delivered },
        "push_latency": { "probes": probes,
            "maildesk": { "p50": pct(&ours, 0.5), "p90": pct(&ours, 0.9), "p99": pct(&ours, 0.99), "max": pct(&ours, 1.0) },
            "baseline": { "p50": pct(&theirs, 0.5), "p90": pct(&theirs, 0.9), "p99": pct(&theirs, 0.99), "max": pct(&theirs, 1.0) } },
        "footprint": { "idle_rss_mb": idle_rss as f64 / 1024.0, "ready_rss_mb": ready_rss as f64 / 1024.0, "peak_rss_mb": peak as f64 / 1024.0,
                       "binary_mb": binary as f64 / 1e6, "startup_secs": ready_at },
        "large_mail": large,
    });
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("\nwritten to target/bench/results.json");
}

use futures_util::StreamExt as _;
