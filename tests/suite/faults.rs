//! Faults an unattended desk must ride out: a wrong IMAP password (clear log, back-off, no spinning,
//! recovery), and SIGHUP reloads, including a broken new config that must not take the desk down.

use std::time::Duration;

use crate::common::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn wrong_imap_password_backs_off_then_recovers_on_reload() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    std::fs::write(desk.path("imap.secret"), "not-the-password\n").unwrap();
    desk.start();
    // It keeps retrying (Dovecot itself also slows repeated failures down from one address) ...
    desk.wait_log_until(|logs| logs.matches("IMAP session ended").count() >= 2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(3));
    assert!(desk.alive(), "a wrong password must not stop the daemon");
    let logs = desk.logs();
    let failures = logs.matches("IMAP session ended").count();
    assert!(logs.contains("login as") && logs.contains("failed"), "the log says what failed:\n{logs}");
    // ... but never spins: back-off 1 s, 2 s, 4 s, ... allows only a handful in this time.
    assert!(failures <= 6, "{failures} attempts: the back-off does not hold:\n{logs}");
    assert!(!logs.contains("not-the-password"), "secrets never appear in logs");

    std::fs::write(desk.path("imap.secret"), "secret\n").unwrap();
    desk.signal("HUP");
    desk.wait_log("restarting the tasks", T);
    let eve = address("eve");
    send_smtp(&eve, &desk.support, &message(&eve, &desk.support, "Back online?", "b1@eve.example.test", "", "x"));
    assert_eq!(subject(&wait_inbox(&eve, 1, T)[0]), "[ACME #1] Back online?");
}

#[test]
fn sighup_reloads_templates_and_keeps_the_old_config_when_the_new_one_is_broken() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    let fay = address("fay");
    desk.start();
    send_smtp(&fay, &desk.support, &message(&fay, &desk.support, "First", "f1@fay.example.test", "", "x"));
    assert_eq!(subject(&wait_inbox(&fay, 1, T)[0]), "[ACME #1] First");

    // New templates: copy the shipped ones and change the acknowledgement's subject.
    let tdir = desk.path("templates");
    std::fs::create_dir(&tdir).unwrap();
    for entry in std::fs::read_dir(repo_path("templates")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tdir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(tdir.join("acknowledgement.subject.tera"), "Received: {{ ticket.tag }} {{ ticket.subject }}")
        .unwrap();
    let config = std::fs::read_to_string(&desk.config).unwrap();
    let good = config.replace(repo_path("templates").to_str().unwrap(), "templates");
    std::fs::write(&desk.config, &good).unwrap();
    desk.signal("HUP");
    desk.wait_log("restarting the tasks", T);
    send_smtp(&fay, &desk.support, &message(&fay, &desk.support, "Second", "f2@fay.example.test", "", "x"));
    let mail = wait_inbox(&fay, 2, T);
    assert_eq!(subject(&mail[1]), "Received: [ACME #2] Second");

    // A broken config is rejected and the desk keeps working with what it had.
    std::fs::write(&desk.config, good.replacen("poll_interval = \"1s\"", "poll_interval = \"often\"", 1)).unwrap();
    desk.signal("HUP");
    desk.wait_log("the new configuration was rejected", T);
    assert!(desk.logs().contains("imap.poll_interval"), "the log names the bad key:\n{}", desk.logs());
    send_smtp(&fay, &desk.support, &message(&fay, &desk.support, "Third", "f3@fay.example.test", "", "x"));
    let mail = wait_inbox(&fay, 3, T);
    assert_eq!(subject(&mail[2]), "Received: [ACME #3] Third");
    assert!(desk.alive());
}

#[test]
fn a_recreated_mailbox_with_new_uidvalidity_resyncs_by_message_id() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    let hal = address("hal");
    let first = message(&hal, &desk.support, "Before the move", "mv1@hal.example.test", "", "x");
    append(&desk.support, std::slice::from_ref(&first));
    desk.start();
    let before = desk.wait_settled(1, T);
    let old_validity = before["mailboxes"][0]["uid_validity"].clone();
    desk.stop();

    // Someone deletes and recreates the mailbox: UIDVALIDITY changes, UIDs restart, and the old
    // message comes back (restored from a backup, unread) next to a new one.
    let local = desk.support.split('@').next().unwrap();
    std::fs::remove_dir_all(std::path::Path::new(&lab_dir()).join("mail/example.test").join(local)).unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // Dovecot derives UIDVALIDITY from the clock
    append(&desk.support, &[first, message(&hal, &desk.support, "After the move", "mv2@hal.example.test", "", "y")]);
    desk.start();
    let after = desk.wait_settled(2, T);
    assert_ne!(after["mailboxes"][0]["uid_validity"], old_validity, "{after:#}");
    let tickets = desk.json(&["tickets"]);
    let subjects: Vec<&str> = tickets.as_array().unwrap().iter().map(|t| t["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, vec!["Before the move", "After the move"], "no duplicate ticket");
    exactly(&hal, 2, T, "one acknowledgement per ticket across the UIDVALIDITY change");
}

#[test]
fn imap_connection_dropped_mid_fetch_loses_and_repeats_nothing() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut switch = Switch::off(IMAP_PORT);
    switch.on();
    let mut desk = Desk::with(DeskOptions {
        imap: format!("{}\nbatch_size = 5", plain_loopback(switch.port)),
        tail: NO_RATE_LIMITS.into(),
        ..DeskOptions::default()
    });
    const N: usize = 150;
    let ivy = address("ivy");
    let raws: Vec<Vec<u8>> = (0..N)
        .map(|i| message(&ivy, &desk.support, &format!("Drop test {i}"), &format!("d{i}@ivy.example.test"), "", "x"))
        .collect();
    append(&desk.support, &raws);
    desk.start();
    // Cut the IMAP connection again and again while the backlog is being fetched.
    let mut cuts = 0;
    while desk.status().map(|s| s["messages_ingested"].as_i64().unwrap()).unwrap_or(0) < N as i64 && cuts < 20 {
        std::thread::sleep(Duration::from_millis(150));
        switch.cut();
        cuts += 1;
    }
    let status = desk.wait_settled(N as i64, Duration::from_secs(90));
    assert_eq!(status["tickets"]["open"], N as i64, "{status:#}");
    let dropped = desk.logs().matches("IMAP session ended").count();
    eprintln!("{cuts} cuts, {dropped} sessions dropped");
    assert!(dropped >= 1 && cuts >= 1, "the test did cut connections mid-backlog:\n{}", desk.logs());
    exactly(&ivy, N, Duration::from_secs(60), &format!("one acknowledgement per message after {cuts} cuts"));
}

#[test]
fn a_message_expunged_between_search_and_fetch_is_skipped_and_nothing_stalls() {
    let Some(_lab) = crate::common::lab() else { return };
    const N: usize = 10;
    // Someone else's mail client expunges message 4 after maildesk searched and before it fetched.
    let mailbox = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let victim = mailbox.clone();
    let tap = Tap::start(IMAP_PORT, b"UID FETCH", 1, move || expunge(victim.get().unwrap(), "g4@jo.example.test"));
    let mut desk = Desk::with(DeskOptions {
        imap: plain_loopback(tap.port),
        tail: NO_RATE_LIMITS.into(),
        ..DeskOptions::default()
    });
    mailbox.set(desk.support.clone()).unwrap();
    let jo = address("jo");
    let raws: Vec<Vec<u8>> = (0..N)
        .map(|i| message(&jo, &desk.support, &format!("Gone test {i}"), &format!("g{i}@jo.example.test"), "", "x"))
        .collect();
    append(&desk.support, &raws);
    desk.start();
    let status = desk.wait_settled(N as i64 - 1, T);
    let logs = desk.logs();
    assert_eq!(status["tickets"]["open"], N as i64 - 1, "{status:#}\n{logs}");
    // Then it carries on: later mail is taken as usual.
    send_smtp(&jo, &desk.support, &message(&jo, &desk.support, "After the gap", "after@jo.example.test", "", "x"));
    let status = desk.wait_settled(N as i64, T);
    assert_eq!(status["tickets"]["open"], N as i64, "{status:#}");
    let acks = exactly(&jo, N, T, "one acknowledgement per recorded message");
    let subjects: Vec<String> = acks.iter().map(|a| subject(a)).collect();
    assert!(!subjects.iter().any(|s| s.contains("Gone test 4")), "{subjects:?}");
}

#[test]
fn a_message_the_server_cannot_read_is_quarantined_after_three_tries_and_intake_goes_on() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::with(DeskOptions { tail: NO_RATE_LIMITS.into(), ..DeskOptions::default() });
    let lu = address("lu");
    let raws: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            message(&lu, &desk.support, &format!("Unreadable test {i}"), &format!("u{i}@lu.example.test"), "", "x")
        })
        .collect();
    append(&desk.support, &raws);
    // Make the middle message's file unreadable for Dovecot (which reads mail as vmail): the
    // server still lists it but cannot return it.
    let (local, domain) = desk.support.split_once('@').unwrap();
    let maildir = std::path::PathBuf::from(format!("{}/mail/{domain}/{local}/Maildir", lab_dir()));
    let file = ["cur", "new"]
        .iter()
        .flat_map(|d| std::fs::read_dir(maildir.join(d)).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap_or_default().contains("u1@lu.example.test"))
        .expect("the message file");
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    desk.start();
    let status = desk.wait_settled(2, Duration::from_secs(60));
    assert_eq!(status["tickets"]["open"], 2, "{status:#}");
    desk.wait_status("the unreadable message quarantined", T, |s| s["quarantined"] == 1);
    let logs = desk.logs();
    assert!(logs.contains("failed to return this message"), "{logs}");
    // Intake goes on after it.
    send_smtp(&lu, &desk.support, &message(&lu, &desk.support, "Later", "u9@lu.example.test", "", "x"));
    let status = desk.wait_settled(3, T);
    assert_eq!(status["tickets"]["open"], 3, "{status:#}");
}

#[test]
fn a_fetch_the_server_never_answers_times_out_and_intake_goes_on() {
    let Some(_lab) = crate::common::lab() else { return };
    // The first FETCH never reaches Dovecot: without imap.timeout the watcher would wait forever.
    let tap = Tap::start(IMAP_PORT, b"UID FETCH", 1, || std::thread::sleep(Duration::from_secs(30)));
    let mut desk = Desk::with(DeskOptions {
        imap: format!("{}\ntimeout = \"2s\"", plain_loopback(tap.port)),
        ..DeskOptions::default()
    });
    desk.start();
    desk.wait_log("IMAP connected", T);
    let kit = address("kit");
    desk.request(&kit, "Anyone there?", &format!("k-{}@kit.example.test", nanos()), "Hello");
    desk.wait_log("did not answer a FETCH within 2s (imap.timeout)", T);
    // A new session fetches it: the request is recorded and acknowledged.
    desk.wait_settled(1, T);
    assert_eq!(wait_inbox(&kit, 1, T).len(), 1);
}
