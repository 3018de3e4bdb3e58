//! Secrets: read from the file itself, a file (or a systemd credential), or a command's output
//! (a vault), at most one of them, with the command stopped after a timeout.

use std::path::{Path, PathBuf};

use super::locate::Located;
use super::{ConfigError, Secret};

/// Where a secret comes from: at most one of the three may be set.
pub(super) struct PasswordSource<'a> {
    pub(super) password: &'a Option<String>,
    pub(super) password_file: &'a Option<PathBuf>,
    pub(super) password_command: &'a Option<String>,
}

/// `$CREDENTIALS_DIRECTORY/NAME` (or `${CREDENTIALS_DIRECTORY}/NAME`): a secret systemd passes with
/// `LoadCredential=`, readable by the service's dynamic user only.
pub(super) fn expand_credentials(p: &Path) -> Result<PathBuf, String> {
    let text = p.to_string_lossy();
    let rest = text.strip_prefix("$CREDENTIALS_DIRECTORY/").or_else(|| text.strip_prefix("${CREDENTIALS_DIRECTORY}/"));
    match rest {
        None => Ok(p.to_path_buf()),
        Some(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => Ok(PathBuf::from(dir).join(name)),
            None => Err(format!(
                "{text}: CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with LoadCredential=; \
                 outside systemd use a plain path)"
            )),
        },
    }
}

impl Located<'_> {
    pub(super) fn secret(
        &self,
        section: &str,
        src: PasswordSource<'_>,
        base: &Path,
    ) -> Result<Option<Secret>, ConfigError> {
        let set = [src.password.is_some(), src.password_file.is_some(), src.password_command.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(self.key_error(
                &format!("{section}.password"),
                "set only one of password, password_file and password_command".into(),
            ));
        }
        if let Some(p) = &src.password {
            return Ok(Some(Secret::new(p.clone())));
        }
        if !self.secrets {
            return Ok(set.iter().any(|s| *s).then(|| Secret::new("")));
        }
        if let Some(file) = &src.password_file {
            let key = format!("{section}.password_file");
            let file = expand_credentials(file).map_err(|e| self.key_error(&key, e))?;
            let path = if file.is_absolute() { file.clone() } else { base.join(&file) };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| self.key_error(&key, format!("cannot read {}: {e}", path.display())))?;
            let secret = text.lines().next().unwrap_or("").to_string();
            if secret.is_empty() {
                return Err(self.key_error(&key, format!("{} is empty", path.display())));
            }
            return Ok(Some(Secret::new(secret)));
        }
        if let Some(cmd) = &src.password_command {
            let key = format!("{section}.password_command");
            let out = run_with_timeout(cmd, SECRET_COMMAND_TIMEOUT).map_err(|e| self.key_error(&key, e))?;
            let text = String::from_utf8_lossy(&out);
            let secret = text.lines().next().unwrap_or("").to_string();
            if secret.is_empty() {
                return Err(self.key_error(&key, "the command printed nothing".into()));
            }
            return Ok(Some(Secret::new(secret)));
        }
        Ok(None)
    }
}

/// A `password_command` that hangs (a vault that does not answer) must not hang `maildesk check`,
/// every CLI view, or a reload.
pub const SECRET_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `cmd` with `/bin/sh -c`, and returns what it printed; kills it after `timeout`.
pub(super) fn run_with_timeout(cmd: &str, timeout: std::time::Duration) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    let stdout = child.stdout.take().ok_or("no output pipe")?;
    // Read beside the wait, so a command that prints a lot cannot block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.take(1 << 20).read_to_end(&mut out).map(|_| out)
    });
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(std::time::Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the command did not finish within {} s and was stopped", timeout.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("the command failed ({status})"));
    }
    reader
        .join()
        .map_err(|_| "the output reader failed".to_string())?
        .map_err(|e| format!("cannot read its output: {e}"))
}
