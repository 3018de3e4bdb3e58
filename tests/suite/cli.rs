//! The CLI without mail servers: `check` on good and broken configs and templates, and the
//! shipped example config.

use std::process::Command;

fn maildesk(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_maildesk")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repo(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// The example config with its secret files pointed at a temporary folder.
fn example_in(dir: &std::path::Path) -> String {
    for f in ["imap.secret", "smtp.secret"] {
        std::fs::write(dir.join(f), "s3cret-value\n").unwrap();
    }
    std::fs::read_to_string(repo("config/maildesk.example.toml"))
        .unwrap()
        .replace("/etc/maildesk/imap.secret", &dir.join("imap.secret").display().to_string())
        .replace("/etc/maildesk/smtp.secret", &dir.join("smtp.secret").display().to_string())
        .replace("/etc/maildesk/templates", &repo("templates"))
}

#[test]
fn check_accepts_the_example_config_and_renders_templates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maildesk.toml");
    std::fs::write(&path, example_in(dir.path())).unwrap();
    let (ok, out, err) = maildesk(&["--config", path.to_str().unwrap(), "check"]);
    assert!(ok, "{err}");
    assert!(out.contains(": ok"), "{out}");
    assert!(out.contains("[ACME #123] Printer on floor 3 is jammed"), "{out}");
    assert!(!out.contains("s3cret-value") && !err.contains("s3cret-value"), "secrets never printed");
}

#[test]
fn check_rejects_bad_configs_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maildesk.toml");
    let good = example_in(dir.path());
    let cases = [
        ("port = 993", "port = 0", "[imap]", "imap.port", "expected 1..65535"),
        ("security = \"tls\"", "security = \"ssl\"", "[imap]", "imap.security", "unknown variant"),
        ("mailbox = \"INBOX\"", "mailbox = \"INBOX\"\nmailboxx = 1", "[imap]", "imap.mailboxx", "unknown field"),
        ("poll_interval = \"60s\"", "poll_interval = \"soon\"", "[imap]", "imap.poll_interval", "expected a duration"),
        ("timezone = \"UTC\"", "timezone = \"Nowhere/Special\"", "[helpdesk]", "helpdesk.timezone", "IANA"),
        ("retry_for = \"2d\"", "retry_for = 5", "[smtp]", "smtp.retry_for", "expected a string"),
    ];
    for (from, to, _, key, expect) in cases {
        let text = good.replacen(from, to, 1);
        assert_ne!(text, good, "{from} not in the example");
        std::fs::write(&path, &text).unwrap();
        let (ok, _, err) = maildesk(&["--config", path.to_str().unwrap(), "check"]);
        assert!(!ok, "{to}: accepted");
        let line =
            text.lines().position(|l| l.starts_with(to.lines().last().unwrap().split(' ').next().unwrap())).unwrap()
                + 1;
        let prefix = format!("maildesk: {}:", path.display());
        assert!(err.starts_with(&prefix), "{to}: {err}");
        assert!(err.contains(&format!(":{line}: {key}: ")), "{to}: wanted line {line} and key {key}: {err}");
        assert!(err.contains(expect), "{to}: {err}");
    }
}

#[test]
fn check_reports_template_errors_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("templates");
    std::fs::create_dir(&tdir).unwrap();
    for entry in std::fs::read_dir(repo("templates")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tdir.join(path.file_name().unwrap())).unwrap();
        }
    }
    // Without the canned reply its macro names, check says which macro lacks which file.
    let path = dir.path().join("maildesk.toml");
    std::fs::write(&path, example_in(dir.path()).replace(&repo("templates"), "templates")).unwrap();
    let (ok, _, err) = maildesk(&["--config", path.to_str().unwrap(), "check"]);
    assert!(!ok);
    assert!(
        err.contains("macro wait-for-info: its canned reply") && err.contains("canned/need-more-info.txt.tera"),
        "{err}"
    );
    std::fs::create_dir(tdir.join("canned")).unwrap();
    std::fs::write(tdir.join("canned/need-more-info.txt.tera"), "Tell us more about {{ ticket.subject }}.").unwrap();
    std::fs::write(tdir.join("acknowledgement.txt.tera"), "Hello {{ ticket.requestor }}").unwrap();
    let (ok, _, err) = maildesk(&["--config", path.to_str().unwrap(), "check"]);
    assert!(!ok);
    assert!(err.contains("acknowledgement.txt.tera") && err.contains("requestor"), "{err}");
}

#[test]
fn views_on_a_missing_database_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maildesk.toml");
    std::fs::write(&path, example_in(dir.path()).replace("/var/lib/maildesk/maildesk.db", "nothing-here.db")).unwrap();
    let (ok, _, err) = maildesk(&["--config", path.to_str().unwrap(), "tickets"]);
    assert!(!ok);
    assert!(
        err.contains("no database at") && err.contains("nothing-here.db") && err.contains("`maildesk run` creates it"),
        "{err}"
    );
    assert!(!dir.path().join("nothing-here.db").exists(), "a view creates no database");
    let (ok, _, err) = maildesk(&["--config", "/nonexistent/maildesk.toml", "status"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/maildesk.toml") && err.contains("cannot read"), "{err}");
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    // verify insists that ExecStart exists, so point the unit at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo("systemd/maildesk.service"))
        .unwrap()
        .replace("/usr/local/bin/maildesk", env!("CARGO_BIN_EXE_maildesk"));
    let path = dir.path().join("maildesk.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze is needed (Debian package systemd; scripts/test installs it)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("maildesk.service:"), "systemd-analyze verify: {err}");
}
