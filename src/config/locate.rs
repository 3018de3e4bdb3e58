//! Where in the file a problem is: byte offsets and dotted keys turned into line numbers.

use std::ops::Range;
use std::path::Path;

use super::ConfigError;
use super::file::misplaced;

/// The source text, for turning byte offsets and key paths into line numbers.
pub(super) struct Located<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    /// Read the secrets the config points at (the daemon and `check`); the read-only CLI views
    /// need none, so a vault command is not run and a systemd credential need not exist for them.
    pub(super) secrets: bool,
}

pub(super) fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: format!("cannot read the config file: {e}"),
        more: Vec::new(),
    })
}

impl Located<'_> {
    pub(super) fn line_at(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    pub(super) fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span();
        let key = span.clone().map(|s| self.key_at(&s)).unwrap_or_default();
        let mut message = e.message().trim().to_string();
        if let Some(hint) = misplaced(&key) {
            message.push_str(&format!("; {hint}"));
        }
        ConfigError {
            file: self.file.to_path_buf(),
            line: span.map(|s| self.line_at(s.start)),
            key: if key.is_empty() { "(file)".into() } else { key },
            message,
            more: Vec::new(),
        }
    }

    pub(super) fn key_error(&self, key: &str, message: String) -> ConfigError {
        // "queues[1].imap.host" is located at that key of the second [[queues]]; a key the file
        // does not write, at the nearest table it does ("priority.rules[2]" at "priority.rules").
        let mut line = None;
        let mut prefix = key;
        while line.is_none() && !prefix.is_empty() {
            line = self.line_of(prefix);
            prefix = match prefix.rfind(['.', '[']) {
                Some(i) => &prefix[..i],
                None => "",
            };
        }
        ConfigError { file: self.file.to_path_buf(), line, key: key.into(), message, more: Vec::new() }
    }

    /// The line of a dotted key; a part may index an array of tables: `queues[1].name`.
    pub(super) fn line_of(&self, key: &str) -> Option<usize> {
        let table = toml::de::DeTable::parse(self.text).ok()?;
        let mut current = table.get_ref();
        let parts: Vec<&str> = key.split('.').collect();
        for (n, part) in parts.iter().enumerate() {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (*part, None),
            };
            let (k, v) = current.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
            let v = match (v.get_ref(), index) {
                (toml::de::DeValue::Array(items), Some(i)) => items.get(i)?,
                _ => v,
            };
            if n + 1 == parts.len() {
                return Some(self.line_at(if index.is_some() { v.span().start } else { k.span().start }));
            }
            match v.get_ref() {
                toml::de::DeValue::Table(t) => current = t,
                _ => return Some(self.line_at(k.span().start)),
            }
        }
        None
    }

    pub(super) fn key_at(&self, span: &Range<usize>) -> String {
        fn search(table: &toml::de::DeTable<'_>, span: &Range<usize>) -> Option<Vec<String>> {
            for (k, v) in table.iter() {
                let name = k.get_ref().to_string();
                if let toml::de::DeValue::Table(t) = v.get_ref()
                    && let Some(mut rest) = search(t, span)
                {
                    rest.insert(0, name);
                    return Some(rest);
                }
                let within = |r: Range<usize>| r.start <= span.start && span.end <= r.end;
                if within(k.span()) || within(v.span()) {
                    return Some(vec![name]);
                }
            }
            None
        }
        toml::de::DeTable::parse(self.text)
            .ok()
            .and_then(|t| search(t.get_ref(), span))
            .map(|p| p.join("."))
            .unwrap_or_default()
    }
}
