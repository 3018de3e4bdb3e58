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
        // "priority.rules[2]" is located at "priority.rules".
        let plain = key.split('[').next().unwrap_or(key);
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.line_of(plain),
            key: key.into(),
            message,
            more: Vec::new(),
        }
    }

    pub(super) fn line_of(&self, key: &str) -> Option<usize> {
        let table = toml::de::DeTable::parse(self.text).ok()?;
        let mut current = table.get_ref();
        let parts: Vec<&str> = key.split('.').collect();
        for (n, part) in parts.iter().enumerate() {
            let (k, v) = current.iter().find(|(k, _)| k.get_ref().as_ref() == *part)?;
            if n + 1 == parts.len() {
                return Some(self.line_at(k.span().start));
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
