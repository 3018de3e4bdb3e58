//! maildesk under systemd's notify protocol (`Type=notify`, `WatchdogSec=`): a socket of the test's
//! stands in for systemd's and receives what systemd would.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::*;

const T: Duration = Duration::from_secs(30);

/// A stand-in for systemd's notify socket, and the desk told to use it with a 1.5 s watchdog.
fn desk_under_systemd(opts: DeskOptions) -> (Desk, UnixDatagram) {
    let mut desk = Desk::with(opts);
    let path = desk.path("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    desk.env = vec![("NOTIFY_SOCKET".into(), path.display().to_string()), ("WATCHDOG_USEC".into(), "1500000".into())];
    (desk, socket)
}

/// Every notification received within `within`, each with when it came, until `done` holds.
fn receive(
    socket: &UnixDatagram,
    within: Duration,
    done: impl Fn(&[(Instant, String)]) -> bool,
) -> Vec<(Instant, String)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < within && !done(&got) {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into_owned()));
        }
    }
    got
}

fn has(got: &[(Instant, String)], line: &str) -> bool {
    got.iter().any(|(_, m)| m.lines().any(|l| l.starts_with(line)))
}

#[test]
fn ready_comes_after_the_imap_login_and_the_watchdog_is_pinged_with_the_last_intake() {
    let Some(_lab) = crate::common::lab() else { return };
    let (mut desk, socket) = desk_under_systemd(DeskOptions::default());
    desk.start();
    let got = receive(&socket, T, |g| has(g, "READY=1"));
    assert!(has(&got, "READY=1"), "no READY=1: {got:?}\n{}", desk.logs());
    assert!(desk.logs().contains("IMAP connected"), "READY=1 before the IMAP login");
    let alice = address("alice");
    desk.request(&alice, "Printer", &format!("p-{}@alice.example.test", nanos()), "It jams.");
    desk.wait_settled(1, T);
    let got = receive(&socket, T, |g| g.iter().any(|(_, m)| m.contains("1 message(s) recorded since start")));
    assert!(got.iter().any(|(_, m)| m.contains("STATUS=watching the mailbox; 1 message(s) recorded")), "{got:?}");
    // A third of the 1.5 s interval: about six pings in two seconds.
    let pings =
        receive(&socket, Duration::from_secs(2), |_| false).iter().filter(|(_, m)| m.contains("WATCHDOG=1")).count();
    assert!(pings >= 3, "{pings} watchdog pings in 2 s");
    desk.stop();
}

#[test]
fn a_watcher_stuck_in_a_fetch_gets_no_watchdog_ping() {
    let Some(_lab) = crate::common::lab() else { return };
    // The first FETCH never reaches Dovecot: the watcher waits for an answer that does not come.
    let tap = Tap::start(IMAP_PORT, b"UID FETCH", 1, || std::thread::sleep(Duration::from_secs(20)));
    let (mut desk, socket) =
        desk_under_systemd(DeskOptions { imap: plain_loopback(tap.port), ..DeskOptions::default() });
    desk.start();
    assert!(has(&receive(&socket, T, |g| has(g, "READY=1")), "READY=1"));
    let alice = address("alice");
    desk.request(&alice, "Stuck", &format!("s-{}@alice.example.test", nanos()), "Hello?");
    let got = receive(&socket, T, |g| g.iter().any(|(_, m)| m.contains("has made no progress")));
    assert!(
        got.iter().any(|(_, m)| m.contains("STATUS=the IMAP watcher has made no progress")),
        "never reported stuck: {got:?}\n{}",
        desk.logs()
    );
    // From then on systemd hears no ping, so it restarts the service.
    let after = receive(&socket, Duration::from_secs(3), |_| false);
    assert!(!has(&after, "WATCHDOG=1"), "pinged while stuck: {after:?}");
    assert!(desk.logs().contains("not pinging systemd's watchdog"), "{}", desk.logs());
    desk.kill9();
}
