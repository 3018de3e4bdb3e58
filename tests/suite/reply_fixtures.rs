//! The quote stripper on real replies from public mail-reply parser test suites (data in
//! tests/corpus/replies, licences in its README): each fixture's `.checks.txt` or `.expected.txt`.

use std::path::Path;

use maildesk::reply_text::visible_text;

#[test]
fn real_client_replies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/replies");
    let mut checked = 0;
    let mut failures = Vec::new();
    for set in ["mail-parser-reply", "github-erp"] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(set)).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for path in names {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".txt").filter(|s| !s.contains('.')) else { continue };
            let body = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let start = std::time::Instant::now();
            let out = visible_text(&body);
            let elapsed = start.elapsed();
            let expected = path.with_file_name(format!("{stem}.expected.txt"));
            if expected.exists() {
                let want = std::fs::read_to_string(&expected).unwrap();
                if out.trim() != want.trim() {
                    failures.push(format!("{set}/{stem}: expected {:?}, got {out:?}", want.trim()));
                }
                checked += 1;
            }
            let checks = path.with_file_name(format!("{stem}.checks.txt"));
            if checks.exists() {
                for line in std::fs::read_to_string(&checks).unwrap().lines() {
                    let ok = if let Some(s) = line.strip_prefix("contains: ") {
                        out.contains(s.trim())
                    } else if let Some(s) = line.strip_prefix("not_contains: ") {
                        !out.contains(s.trim())
                    } else if let Some(s) = line.strip_prefix("starts_with: ") {
                        out.trim_start().starts_with(s.trim())
                    } else if let Some(s) = line.strip_prefix("max_seconds: ") {
                        // A generous bound: this guards against pathological backtracking, not speed.
                        elapsed.as_secs_f64() <= s.trim().parse::<f64>().unwrap() * 5.0
                    } else {
                        continue;
                    };
                    if !ok {
                        failures.push(format!("{set}/{stem}: {line}\n--- got:\n{out}\n---"));
                    }
                    checked += 1;
                }
            }
        }
    }
    // maildesk's own expectations for fixtures that ship none.
    let ours: &[(&str, &str)] = &[
        ("mail-parser-reply/outlook.txt", "My number is: +00 0000 000 000"),
        ("mail-parser-reply/multi_header.txt", "No problem. I’ll just start a new order."),
        ("mail-parser-reply/email_gmail.txt", "This is a test for inbox replying to a github message."),
        (
            "mail-parser-reply/email_danish_1.txt",
            "Hej Peter,\n\nTak for din mail. Det lyder godt.\n\nMed venlig hilsen\nAnders Andersen",
        ),
    ];
    for (file, tail) in ours {
        let body = String::from_utf8_lossy(&std::fs::read(root.join(file)).unwrap()).into_owned();
        let out = visible_text(&body);
        if !out.ends_with(tail) {
            failures.push(format!("{file}: should end with {tail:?}, got {out:?}"));
        }
        checked += 1;
    }
    assert!(checked >= 28, "only {checked} checks ran");
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
}
