//! When a service manager points the gateway's stdout and stderr at the
//! profile's `<stateDir>/logs/gateway.log` (systemd `StandardOutput=append:`,
//! launchd `StandardOutPath`), nobody else rotates that file: the gateway
//! does it itself, with the keeper's rule (`openclaw_profiles::logrotate`),
//! so the log rotates and `openclawctl logs` reads it the same way whichever
//! manager runs the gateway. Under the keeper (stdout is a pipe) or in a
//! terminal this does nothing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};

/// How often the log's size is checked.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The profile's log file, if our stdout is that very file.
fn stdout_is_the_log(paths: &ProfilePaths) -> Option<PathBuf> {
    let log = paths
        .logs_dir()
        .join(openclaw_profiles::contract::SUPERVISED_LOG_FILE);
    let ours = std::fs::metadata("/proc/self/fd/1")
        .or_else(|_| std::fs::metadata("/dev/fd/1"))
        .ok()?;
    let file = std::fs::metadata(&log).ok()?;
    (ours.is_file() && ours.dev() == file.dev() && ours.ino() == file.ino()).then_some(log)
}

/// Starts the rotation thread when stdout is the profile's log.
pub fn rotate_own_log(env: &EnvSnapshot, paths: &ProfilePaths) {
    let Some(log) = stdout_is_the_log(paths) else {
        return;
    };
    let (max_bytes, keep) = openclaw_profiles::logrotate::limits(env);
    std::thread::Builder::new()
        .name("log-rotate".into())
        .spawn(move || {
            loop {
                rotate_if_full(&log, max_bytes, keep);
                std::thread::sleep(CHECK_EVERY);
            }
        })
        .ok();
}

fn rotate_if_full(log: &Path, max_bytes: u64, keep: u32) {
    let size = std::fs::metadata("/proc/self/fd/1").map_or(0, |m| m.len());
    if size <= max_bytes {
        return;
    }
    if openclaw_profiles::logrotate::shift(log, keep).is_err() || keep == 0 {
        return;
    }
    if let Ok(fresh) = openclaw_profiles::atomic::open_private_append(log) {
        let _ = nix::unistd::dup2_stdout(&fresh);
        let _ = nix::unistd::dup2_stderr(&fresh);
    }
}
