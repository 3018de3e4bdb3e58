use std::path::Path;
use std::time::Duration;

use super::file::{FileConfig, TABLE_KEYS};
use super::secrets::run_with_timeout;
use super::*;

#[test]
fn a_hanging_password_command_is_stopped() {
    let start = std::time::Instant::now();
    let e = run_with_timeout("sleep 30", std::time::Duration::from_millis(300)).unwrap_err();
    assert!(e.contains("did not finish"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(run_with_timeout("echo s3cret", std::time::Duration::from_secs(5)).unwrap(), b"s3cret\n");
}

const GOOD: &str = r#"
[helpdesk]
name = "ACME IT"
tag = "ACME"
address = "Support@Acme.example"
database = "state/maildesk.db"
timezone = "Europe/Berlin"
technicians = ["Tech1@acme.example"]

[imap]
host = "127.0.0.1"
port = 1143
security = "none"
username = "support@acme.example"
password = "hunter2"

[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(Path::new("/etc/maildesk/maildesk.toml"), text)
}

#[test]
fn good_config_resolves_paths_and_defaults() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.helpdesk.address, "support@acme.example");
    assert_eq!(c.helpdesk.database, PathBuf::from("/etc/maildesk/state/maildesk.db"));
    assert_eq!(c.helpdesk.templates, PathBuf::from("/etc/maildesk/templates"));
    assert_eq!(c.helpdesk.technicians, vec!["tech1@acme.example"]);
    assert_eq!(c.imap.mailbox, "INBOX");
    assert_eq!(c.imap.poll_interval, Duration::from_secs(60));
    assert!(c.imap.idle);
    assert_eq!(c.smtp.hello_name, "acme.example");
    assert!(!format!("{:?}", c).contains("hunter2"), "secrets must not appear in Debug output");
}

#[test]
fn every_listed_key_is_accepted_in_its_table_and_a_misplaced_one_gets_a_hint() {
    for (table, keys) in TABLE_KEYS {
        for key in keys {
            let text = format!("[{table}]\n{key} = 0\n");
            let err = match toml::from_str::<FileConfig>(&text) {
                Ok(_) => continue,
                Err(e) => e.message().to_string(),
            };
            assert!(!err.contains("unknown field"), "[{table}] {key}: {err}");
        }
    }
    let text = GOOD.replace("[imap]\n", "[imap]\ntechnician_proof = [\"token\"]\n");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("`technician_proof` belongs in [security]"), "{err}");
    let err = load(&GOOD.replace("[helpdesk]\n", "[helpdesk]\nhost = \"x\"\n")).unwrap_err().to_string();
    assert!(err.contains("`host` belongs in [imap] or [smtp]"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = GOOD
        .replace("tag = \"ACME\"", "tag = \"A B\"")
        .replace("[imap]\n", "[imap]\nbatch_size = 0\n")
        .replace("[smtp]\n", "[smtp]\nconnections = 99\n");
    let err = load(&text).unwrap_err();
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 3, "{shown}");
    for key in ["helpdesk.tag", "imap.batch_size", "smtp.connections"] {
        assert!(shown.contains(key), "{key} missing from {shown}");
    }
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str, usize, &str)] = &[
        ("port = 1143", "port = 0", 12, "imap.port"),
        ("port = 1143", "port = \"x\"", 12, "imap.port"),
        ("tag = \"ACME\"", "tag = \"AC ME\"", 4, "helpdesk.tag"),
        ("timezone = \"Europe/Berlin\"", "timezone = \"Mars/Olympus\"", 7, "helpdesk.timezone"),
        ("host = \"127.0.0.1\"\nport = 1143", "host = \"imap.acme.example\"\nport = 1143", 13, "imap.security"),
        ("password = \"hunter2\"", "pasword = \"hunter2\"", 15, "imap"),
    ];
    for (from, to, line, key) in cases {
        let text = GOOD.replacen(from, to, 1);
        let err = load(&text).unwrap_err();
        assert_eq!(err.line, Some(*line), "{to}: {err}");
        assert!(err.key.starts_with(key), "{to}: key {:?} in {err}", err.key);
        assert!(err.to_string().starts_with(&format!("/etc/maildesk/maildesk.toml:{line}: ")), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
    assert_eq!(parse_duration("5"), None);
    assert_eq!(parse_duration("5x"), None);
    assert_eq!(parse_duration(""), None);
}

#[test]
fn a_file_missing_every_required_key_names_them_all() {
    let err = load("[helpdesk]\n[imap]\nsecurity = \"none\"\n").unwrap_err().to_string();
    for key in ["helpdesk.name", "helpdesk.tag", "helpdesk.address", "imap.host", "imap.username", "smtp.host"] {
        assert!(err.contains(&format!("{key}: missing; expected")), "{key} not reported in:\n{err}");
    }
    // A missing key is located at its table when the table is written.
    assert!(err.contains("maildesk.toml:1: helpdesk.name: missing"), "{err}");
}

#[test]
fn a_bad_duration_is_reported_at_its_line_by_the_file_format() {
    let text = GOOD.replace("[imap]\n", "[imap]\npoll_interval = \"soon\"\n");
    let err = load(&text).unwrap_err();
    assert_eq!((err.key.as_str(), err.line), ("imap.poll_interval", Some(11)), "{err}");
    assert!(err.message.contains("expected a duration like"), "{err}");
    let ok = load(&GOOD.replace("[imap]\n", "[imap]\npoll_interval = \"1m30s\"\n")).unwrap();
    assert_eq!(ok.imap.poll_interval, Duration::from_secs(90));
}

#[test]
fn retention_is_off_by_default_and_checked_at_its_line() {
    assert_eq!(load(GOOD).unwrap().retention, crate::domain::Retention::default());
    let set = load(&format!("{GOOD}\n[retention]\ndrop_raw_after = \"90d\"\ndelete_after = \"365d\"\n")).unwrap();
    assert_eq!(set.retention.drop_raw_after, Some(Duration::from_secs(90 * 86_400)));
    assert_eq!(set.retention.delete_after, Some(Duration::from_secs(365 * 86_400)));
    let shown = load(&format!("{GOOD}\n[retention]\ndrop_raw_after = \"12h\"\ndelete_after = \"10d\"\n"))
        .unwrap_err()
        .to_string();
    assert!(shown.contains("retention.drop_raw_after") && shown.contains("at least 1d"), "{shown}");
    let text = format!("{GOOD}\n[retention]\ndrop_raw_after = \"90d\"\ndelete_after = \"30d\"\n");
    let shown = load(&text).unwrap_err().to_string();
    assert!(shown.contains("retention.delete_after") && shown.contains("longer than"), "{shown}");
    let line = text.lines().position(|l| l.starts_with("delete_after")).unwrap() + 1;
    assert!(shown.contains(&format!(":{line}: ")), "at its line {line}: {shown}");
}
