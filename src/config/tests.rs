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

/// GOOD with IMAP and SMTP logging in with XOAUTH2 and `oauth` as the [oauth] table.
fn with_oauth(oauth: &str) -> String {
    GOOD.replace("password = \"hunter2\"", "auth = \"xoauth2\"")
        .replace("security = \"none\"\n\"#", "security = \"none\"\n")
        + &format!("auth = \"xoauth2\"\n\n[oauth]\n{oauth}\n")
}

#[test]
fn microsoft_app_only_needs_a_tenant_and_gets_the_endpoints_and_scope() {
    let c = load(&with_oauth(
        "provider = \"microsoft\"\nflow = \"client_credentials\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\nclient_secret_command = \"echo s3cret\"",
    ))
    .unwrap();
    let o = c.oauth.as_ref().unwrap();
    assert_eq!(o.token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    assert_eq!(o.scopes, vec!["https://outlook.office365.com/.default"]);
    assert!(matches!(&o.grant, OAuthGrant::ClientSecret(s) if s.expose() == "s3cret"));
    assert_eq!(c.imap.auth, AuthMethod::Xoauth2);
    assert!(c.smtp_oauth().is_some());
    assert!(!format!("{c:?}").contains("s3cret"), "the client secret stays out of Debug");

    let err = load(&with_oauth(
        "provider = \"microsoft\"\nflow = \"client_credentials\"\nclient_id = \"app\"\nclient_secret_command = \"echo s\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("oauth.tenant: missing"), "{err}");
}

#[test]
fn a_delegated_microsoft_login_asks_for_offline_access() {
    let c = load(&with_oauth("provider = \"microsoft\"\nflow = \"device_code\"\nclient_id = \"app\"")).unwrap();
    let o = c.oauth.unwrap();
    assert!(o.scopes.iter().any(|s| s == "offline_access"));
    assert!(
        matches!(&o.grant, OAuthGrant::DeviceCode { device_url, client_secret: None } if device_url.ends_with("/organizations/oauth2/v2.0/devicecode"))
    );
}

#[test]
fn a_certificate_gives_its_thumbprint() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/oauth/testdata");
    let c = load(&with_oauth(&format!(
        "provider = \"microsoft\"\nflow = \"client_credentials\"\ntenant = \"t\"\nclient_id = \"app\"\ncertificate_file = \"{dir}/test-cert.pem\"\nprivate_key_file = \"{dir}/test-key.pem\""
    )))
    .unwrap();
    let OAuthGrant::ClientCertificate { thumbprint, .. } = c.oauth.unwrap().grant else { panic!("a certificate") };
    assert_eq!(thumbprint.len(), 27, "base64url of 20 bytes: {thumbprint}");
}

#[test]
fn oauth_mistakes_are_reported_at_their_lines() {
    let cases = [
        (
            "flow = \"client_credentials\"\nclient_id = \"a\"\ntoken_url = \"http://idp.example/token\"\nclient_secret_command = \"echo s\"",
            "oauth.token_url",
        ),
        (
            "flow = \"client_credentials\"\nclient_id = \"a\"\ntoken_url = \"https://idp.example/token\"",
            "client_credentials needs a certificate",
        ),
        ("provider = \"google\"\nflow = \"device_code\"\nclient_id = \"a\"", "Google does not allow the mail scope"),
        ("flow = \"password\"", "expected \"client_credentials\""),
        ("flow = \"client_credentials\"\ntoken_command = \"x\"", "a token_command is the whole flow"),
        (
            "provider = \"microsoft\"\nflow = \"client_credentials\"\ntenant = \"t\"\nclient_id = \"a\"\ncertificate_file = \"x.pem\"",
            "needs both certificate_file and private_key_file",
        ),
        ("provider = \"google\"", "oauth.key_file: missing"),
    ];
    for (table, expected) in cases {
        let err = load(&with_oauth(table)).unwrap_err().to_string();
        assert!(err.contains(expected), "{table}: {err}");
        assert!(err.contains("maildesk.toml:"), "located: {err}");
    }
    let err = load(&GOOD.replace("password = \"hunter2\"", "auth = \"xoauth2\"")).unwrap_err().to_string();
    assert!(err.contains("imap.auth: \"xoauth2\" needs an [oauth] table"), "{err}");
    let err = load(&GOOD.replace("technicians =", "admins = [\"nope\"]\ntechnicians =")).unwrap_err().to_string();
    assert!(err.contains("helpdesk.admins"), "{err}");
}

#[test]
fn a_token_command_needs_nothing_else() {
    let c = load(&with_oauth("token_command = \"pizauth show maildesk\"")).unwrap();
    assert!(matches!(c.oauth.unwrap().grant, OAuthGrant::Command(ref c) if c == "pizauth show maildesk"));
}

const QUEUES: &str = r#"
[[queues]]
name = "helpdesk"
team = ["Ann@acme.example", "bob@acme.example"]
lead = "ann@acme.example"
assign = "round-robin"

[[queues]]
name = "security"
addresses = ["security@acme.example", "support+sec@acme.example"]
team = ["sec@acme.example"]
default_priority = "P2"
assign = "least-open"
[queues.imap]
host = "127.0.0.1"
security = "none"
username = "security@acme.example"
password = "x"
[queues.sla]
calendar = "24x7"
P2 = { first_response = "1h" }

[[queues]]
name = "facilities"
folder = "Facilities"

[[routing]]
subject_matches = "(?i)badge"
queue = "facilities"

[[routing]]
from_domain = ["board.acme.example"]
priority = "P1"
assign = "bob@acme.example"
"#;

#[test]
fn a_desk_without_queues_has_one_with_every_technician() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.queues.len(), 1);
    assert_eq!(
        (c.queues[0].name.as_str(), c.queues[0].team.clone()),
        (DEFAULT_QUEUE, vec!["tech1@acme.example".into()])
    );
    assert_eq!(c.mailboxes().len(), 1);
    assert_eq!(c.mailboxes()[0].key, "INBOX", "the [imap] mailbox keeps its key, so nothing is fetched twice");
}

#[test]
fn queues_add_their_teams_to_the_technicians_and_their_mailboxes_to_the_watched() {
    let c = load(&format!("{GOOD}{QUEUES}")).unwrap();
    let names: Vec<&str> = c.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["helpdesk", "security", "facilities"]);
    for t in ["ann@acme.example", "bob@acme.example", "sec@acme.example", "tech1@acme.example"] {
        assert!(c.helpdesk.technicians.iter().any(|x| x == t), "{t} is a technician");
    }
    assert_eq!(c.queues[2].team, c.helpdesk.technicians, "a queue without a team is worked by everyone");
    let p2 = c.policy(Some("security"), crate::domain::Priority::P2);
    assert_eq!((p2.first_response, p2.calendar.as_str()), (3600, "24x7"));
    assert_eq!(c.policy(Some("security"), crate::domain::Priority::P3).calendar, "24x7");
    assert_eq!(c.policy(Some("helpdesk"), crate::domain::Priority::P2).calendar, "business");
    assert_eq!(
        c.policy(Some("gone"), crate::domain::Priority::P2).calendar,
        "business",
        "an unknown queue is the first"
    );
    let keys: Vec<String> = c.mailboxes().iter().map(|m| m.key.clone()).collect();
    assert_eq!(keys, ["INBOX", "security:INBOX", "Facilities"]);
    assert_eq!(c.mailboxes()[1].own_account.as_deref(), Some("security"));
    assert_eq!(c.routing.len(), 2);
    assert_eq!(c.routing[0].queue, Some(2));
}

#[test]
fn queue_and_routing_mistakes_are_reported_at_their_lines() {
    let bad = format!(
        "{GOOD}{}",
        r#"
[[queues]]
name = "Help Desk"
assign = "random"

[[queues]]
name = "ops"
folder = "INBOX"
addresses = ["not an address"]

[[routing]]
from_domain = ["acme.example"]
priority = "P2"

[[routing]]
from_domain = ["acme.example"]
subject_matches = "(unclosed"
queue = "nowhere"

[[routing]]
from = ["a@one.example"]
from_domain = ["two.example"]
priority = "P1"

[[routing]]
from_domain = ["acme.example"]
header = "X-Ticket: ^yes$"
priority = "P4"

[[routing]]
header = "no colon here"
"#
    );
    let e = load(&bad).unwrap_err().to_string();
    for (line, key, what) in [
        (23, "queues[0].name", "expected a short name"),
        (24, "queues[0].assign", "round-robin"),
        (28, "queues[1].folder", "already watched"),
        (29, "queues[1].addresses", "expected mail addresses"),
        (37, "routing[1].subject_matches", "bad regular expression"),
        (38, "routing[1].queue", "no queue \"nowhere\""),
        (40, "routing[2]", "can never match"),
        (45, "routing[3]", "routing rule 1 comes first"),
        (51, "routing[4].header", "Header-Name: pattern"),
        (50, "routing[4]", "sets nothing"),
    ] {
        let want = format!(":{line}: {key}: ");
        assert!(e.lines().any(|l| l.contains(&want) && l.contains(what)), "no {want}…{what} in:\n{e}");
    }
}

#[test]
fn macros_are_parsed_like_technician_commands() {
    let c = load(&format!(
        "{GOOD}\n[macros.wait_vendor]\ncommands = [\"#status pending\", \"#priority P4\"]\nreply = \"vendor\"\n"
    ))
    .unwrap();
    assert_eq!(c.macros.len(), 1);
    assert_eq!(c.macros[0].commands.len(), 2);
    assert_eq!(c.macros[0].reply.as_deref(), Some("vendor"));
    let bad = format!(
        "{GOOD}\n[macros.a]\ncommands = [\"#status later\", \"#macro b\", \"#close #close\"]\n[macros.Nope]\nreply = \"x\"\n"
    );
    let e = load(&bad).unwrap_err().to_string();
    for want in [
        "macros.a.commands: \"#status later\": unknown status",
        "a macro cannot apply another",
        "#close #close",
        "macros.Nope: expected a name",
    ] {
        assert!(e.contains(want), "no {want:?} in:\n{e}");
    }
}

const ITSM: &str = r#"
[[services]]
name = "email"
owner = "Olivia@acme.example"
queue = "security"
addresses = ["email-help@acme.example"]
keywords = ["outlook", "shared mailbox"]
[services.sla]
P3 = { first_response = "15m" }
[services.approvals]
approvers = ["cab1@acme.example", "cab2@acme.example", "cab3@acme.example"]
required = 2
remind_after = "1d"

[[services]]
name = "printing"

[changes]
approvers = ["cio@acme.example"]

[types.change]
addresses = ["Changes@acme.example"]
[types.change.sla]
P3 = { first_response = "2h", resolution = "5d" }

[request_templates.onboarding]
subject_matches = "(?i)new starter"
tasks = [ { queue = "helpdesk", title = "Laptop" }, { queue = "facilities", title = "Badge" }, { title = "Phone" } ]

[[routing]]
from_domain = ["hr.acme.example"]
service = "printing"
template = "onboarding"
"#;

#[test]
fn services_types_approvals_and_request_templates_are_read() {
    use crate::domain::{Priority, Required, TicketType};
    let c = load(&format!("{GOOD}{QUEUES}{ITSM}")).unwrap();
    let email = c.service(Some("email")).unwrap();
    assert_eq!((email.owner.as_deref(), email.queue), (Some("olivia@acme.example"), Some(1)));
    let kw = email.keywords.as_ref().unwrap();
    assert!(kw.is_match("My OUTLOOK crashed") && kw.is_match("the shared  mailbox") && !kw.is_match("outlooks"));
    let a = c.approvals_for(Some("email")).unwrap();
    assert_eq!(
        (a.required, a.approvers.len(), a.remind_after.map(|d| d.as_secs())),
        (Required::AtLeast(2), 3, Some(86_400))
    );
    // A service without approvals of its own uses [changes]; so does a change of no service.
    assert_eq!(c.approvals_for(Some("printing")).unwrap().approvers, ["cio@acme.example"]);
    assert_eq!(c.approvals_for(None).unwrap().required, Required::Any);
    // The SLA: the service's over its queue's, else the type's, else the queue's.
    let p3 = |s: Option<&str>, t: Option<TicketType>| c.policy_of(Some("helpdesk"), s, t, Priority::P3).first_response;
    assert_eq!(p3(Some("email"), Some(TicketType::Change)), 15 * 60);
    assert_eq!(
        c.policy_of(Some("helpdesk"), Some("email"), None, Priority::P3).calendar,
        "24x7",
        "over the security queue's"
    );
    assert_eq!(p3(Some("printing"), Some(TicketType::Change)), 2 * 3600);
    assert_eq!(p3(None, None), c.policy(Some("helpdesk"), Priority::P3).first_response);
    let t = c.request_template("onboarding").unwrap();
    let tasks: Vec<(&str, &str)> = t.tasks.iter().map(|k| (k.queue.as_str(), k.title.as_str())).collect();
    assert_eq!(tasks, [("helpdesk", "Laptop"), ("facilities", "Badge"), ("helpdesk", "Phone")], "no queue: the first");
    assert_eq!((c.routing[2].service, c.routing[2].template), (Some(1), Some(0)));
    assert_eq!(c.type_settings(Some(TicketType::Change)).unwrap().addresses, ["changes@acme.example"]);
}

#[test]
fn itsm_mistakes_are_reported_at_their_lines() {
    let tail = r#"
[[services]]
name = "Email Service"
owner = "olivia"
queue = "nowhere"
[services.approvals]
approvers = ["cab1@acme.example"]
required = 3

[[services]]
name = "vpn"
[services.approvals]
required = "most"

[types.chore]
templates = "nowhere"

[request_templates.onboarding]
tasks = [ { queue = "nowhere", title = "Laptop" }, { queue = "helpdesk" } ]

[[routing]]
from_domain = ["hr.acme.example"]
service = "web"
template = "offboarding"
"#;
    let text = format!("{GOOD}{QUEUES}{tail}");
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let e = load(&text).unwrap_err().to_string();
    for (at, key, what) in [
        (line("name = \"Email Service\""), "services[0].name", "expected a short name"),
        (line("owner = \"olivia\""), "services[0].owner", "expected a mail address"),
        (line("queue = \"nowhere\""), "services[0].queue", "no queue \"nowhere\""),
        (line("required = 3"), "services[0].approvals.required", "expected 1 to 1"),
        (line("required = \"most\""), "services[1].approvals.required", "\"any\", \"all\""),
        (line("[types.chore]"), "types.chore", "expected incident, request, change or problem"),
        (line("tasks = [ { queue = \"nowhere\""), "request_templates.onboarding.tasks[0].queue", "no queue"),
        (line("tasks = [ { queue = \"nowhere\""), "request_templates.onboarding.tasks[1].title", "needs a title"),
        (line("service = \"web\""), "routing[2].service", "no service \"web\""),
        (line("template = \"offboarding\""), "routing[2].template", "no request template"),
    ] {
        let want = format!(":{at}: {key}: ");
        assert!(e.lines().any(|l| l.contains(&want) && l.contains(what)), "no {want}…{what} in:\n{e}");
    }
    // An approvals table without approvers.
    assert!(e.contains("services[1].approvals.approvers: a change needs at least one approver"), "{e}");
}
