//! Size-based rotation of a profile's `gateway.log` (`gateway.log.1` ..
//! `.N`), the one rule both writers of that file follow: the keeper, which
//! pumps its gateway's output into it, and the gateway itself when a service
//! manager points its stdout and stderr at it (systemd's
//! `StandardOutput=append:`, launchd's `StandardOutPath`).

use std::io;
use std::path::{Path, PathBuf};

/// `OPENCLAWCTL_LOG_MAX_BYTES`: rotate when the log would grow past this.
pub const ENV_MAX_BYTES: &str = "OPENCLAWCTL_LOG_MAX_BYTES";
/// `OPENCLAWCTL_LOG_FILES`: rotated files kept besides the live one.
pub const ENV_KEEP: &str = "OPENCLAWCTL_LOG_FILES";
/// Default size limit of one log file.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of rotated files kept.
pub const DEFAULT_KEEP: u32 = 5;

/// The limits from `env` (`OPENCLAWCTL_LOG_MAX_BYTES`, `OPENCLAWCTL_LOG_FILES`), else the defaults.
pub fn limits(env: &crate::paths::EnvSnapshot) -> (u64, u32) {
    let max = env
        .get(ENV_MAX_BYTES)
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_BYTES);
    let keep = env
        .get(ENV_KEEP)
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KEEP);
    (max.max(1), keep)
}

/// `path.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Shifts `path.1..` up by one (dropping `path.keep`) and renames `path` to
/// `path.1`; the caller then opens a new `path`. With `keep == 0` the file
/// is emptied instead.
pub fn shift(path: &Path, keep: u32) -> io::Result<()> {
    if keep == 0 {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(0);
    }
    let _ = std::fs::remove_file(rotated(path, keep));
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))?;
        }
    }
    std::fs::rename(path, rotated(path, 1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shift_keeps_at_most_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gateway.log");
        for i in 0..4 {
            std::fs::write(&log, format!("{i}")).unwrap();
            super::shift(&log, 2).unwrap();
        }
        assert!(!log.exists());
        assert_eq!(
            std::fs::read_to_string(super::rotated(&log, 1)).unwrap(),
            "3"
        );
        assert_eq!(
            std::fs::read_to_string(super::rotated(&log, 2)).unwrap(),
            "2"
        );
        assert!(!super::rotated(&log, 3).exists());
    }
}
