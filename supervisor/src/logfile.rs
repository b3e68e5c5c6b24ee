//! The gateway's captured output: a log file with size-based rotation
//! (`gateway.log`, `gateway.log.1` .. `.N`), so a chatty gateway cannot
//! fill the disk, and reading its tail for `logs` and error reports.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use openclaw_profiles::atomic::open_private_append;

pub use openclaw_profiles::logrotate::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, ENV_KEEP, ENV_MAX_BYTES};

/// A size-rotated log file.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingLog {
    /// Opens (appends to) `path`.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = open_private_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes: max_bytes.max(1),
            keep,
        })
    }

    /// `path.N`.
    pub fn rotated(path: &Path, n: u32) -> PathBuf {
        openclaw_profiles::logrotate::rotated(path, n)
    }

    fn rotate(&mut self) -> io::Result<()> {
        openclaw_profiles::logrotate::shift(&self.path, self.keep)?;
        if self.keep > 0 {
            self.file = open_private_append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }

    /// Appends one record (usually a line), rotating first if it would not
    /// fit. A record larger than the limit is cut to it.
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let record = &record[..record.len().min(self.max_bytes as usize)];
        if self.size > 0 && self.size + record.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(record)?;
        self.size += record.len() as u64;
        Ok(())
    }
}

/// The last `n` lines of a file (empty if unreadable). Reads only the end
/// of large files.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        if f.seek(SeekFrom::Start(start)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // probably cut in the middle
        }
        if lines.len() >= n || start == 0 {
            return lines[lines.len().saturating_sub(n)..]
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        window *= 4;
    }
}

/// The last line of the log at `path` that reads as an error from the
/// gateway (not one of openclawctl's own lines), for one-line verdicts.
pub fn last_error_line(path: &Path) -> Option<String> {
    let lines: Vec<String> = tail_lines(path, 40)
        .into_iter()
        .filter(|l| !l.contains(" openclawctl: ") && !l.trim().is_empty())
        .collect();
    // The gateway's own refusal (`openclaw gateway: ...`, exit 78) first,
    // then anything that reads as an error, then its last word.
    let found = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("openclaw gateway: "))
        .or_else(|| {
            lines.iter().rev().find(|l| {
                let l = l.to_ascii_lowercase();
                ["error", "fail", "refus", "cannot", "already", "invalid"]
                    .iter()
                    .any(|w| l.contains(w))
            })
        })
        .or(lines.last());
    found.cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_a_bounded_number_of_bounded_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.log");
        let mut log = RotatingLog::open(&path, 1000, 3).unwrap();
        for i in 0..500 {
            log.write_record(format!("line {i:04} of chatty output\n").as_bytes())
                .unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "gateway.log",
                "gateway.log.1",
                "gateway.log.2",
                "gateway.log.3"
            ]
        );
        for n in &names {
            assert!(std::fs::metadata(dir.path().join(n)).unwrap().len() <= 1000);
        }
        // newest lines are in the live file, in order
        let tail = tail_lines(&path, 2);
        assert_eq!(
            tail,
            vec!["line 0498 of chatty output", "line 0499 of chatty output"]
        );
        assert!(
            std::fs::read_to_string(RotatingLog::rotated(&path, 1))
                .unwrap()
                .ends_with("\n")
        );
    }

    #[test]
    fn an_oversized_record_is_cut_and_reopening_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.log");
        let mut log = RotatingLog::open(&path, 10, 1).unwrap();
        log.write_record(b"0123456789abcdef\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
        drop(log);
        let mut log = RotatingLog::open(&path, 100, 1).unwrap();
        log.write_record(b"x").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789x");
    }

    #[test]
    fn tail_of_a_large_file_reads_only_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let text: String = (0..50_000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail_lines(&path, 3), vec!["49997", "49998", "49999"]);
        assert!(tail_lines(&dir.path().join("none"), 3).is_empty());
    }
}
