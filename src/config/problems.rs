//! The problems validation finds, collected so that every one is reported in one run.

use super::ConfigError;
use super::locate::Located;

/// The problems found so far. A check that fails is noted and the check goes on with a stand-in
/// value, which is never used: a config with any problem is not returned.
#[derive(Default)]
pub(super) struct Problems(Vec<ConfigError>);

impl Problems {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }

    /// The value, or a stand-in after noting the problem.
    pub(super) fn or<T>(&mut self, r: Result<T, ConfigError>, stand_in: T) -> T {
        r.unwrap_or_else(|e| {
            self.0.push(e);
            stand_in
        })
    }

    pub(super) fn take<T: Default>(&mut self, r: Result<T, ConfigError>) -> T {
        self.or(r, T::default())
    }

    /// A required key's value, or a stand-in after noting that it is missing (located at its
    /// table when the table is written).
    pub(super) fn required(
        &mut self,
        doc: &Located<'_>,
        key: &str,
        value: Option<String>,
        expected: &str,
    ) -> Option<String> {
        if value.is_none() {
            let mut e = doc.key_error(key, format!("missing; expected {expected}"));
            if e.line.is_none() {
                e.line = key.rsplit_once('.').and_then(|(table, _)| doc.line_of(table));
            }
            self.push(e);
        }
        value
    }

    /// All problems as one error (the first, with the rest in `more`), if there were any.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        let mut all = self.0.into_iter();
        match all.next() {
            None => Ok(()),
            Some(mut first) => {
                first.more = all.collect();
                Err(first)
            }
        }
    }
}
