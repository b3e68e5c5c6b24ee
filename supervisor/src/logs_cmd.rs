//! `openclawctl logs [PROFILE...] [-n N] [--follow]`: the gateways' captured
//! output (and the keepers' own lines), following rotations. One profile:
//! its lines as they are. Several (or none named: every profile): their
//! lines interleaved in time order, each prefixed with its profile
//! (coloured on a terminal), as `pm2 logs` does.

use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use openclaw_profiles::stdout;

use crate::context::Context;
use crate::launch::log_path;
use crate::logfile::tail_lines;
use crate::{CmdResult, Failure};

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// One followed log file.
struct Source {
    prefix: String,
    path: PathBuf,
    file: Option<File>,
    pos: u64,
    ino: Option<u64>,
    partial: Vec<u8>,
}

impl Source {
    fn new(prefix: String, path: PathBuf) -> Self {
        let file = File::open(&path).ok();
        let meta = file.as_ref().and_then(|f| f.metadata().ok());
        Self {
            prefix,
            path,
            pos: meta.as_ref().map_or(0, |m| m.len()),
            ino: meta.map(|m| m.ino()),
            file,
            partial: Vec::new(),
        }
    }

    /// Complete lines appended since the last call; starts over on
    /// rotation (new inode) or truncation, after finishing the old file.
    fn new_lines(&mut self) -> Vec<String> {
        let mut buf = Vec::new();
        let current = std::fs::metadata(&self.path).ok();
        let rotated = current.as_ref().map(|m| m.ino()) != self.ino
            || current.as_ref().is_some_and(|m| m.len() < self.pos);
        if let Some(f) = &mut self.file
            && f.seek(SeekFrom::Start(self.pos)).is_ok()
            && f.read_to_end(&mut buf).is_ok()
        {
            self.pos += buf.len() as u64;
        }
        if rotated {
            self.file = File::open(&self.path).ok();
            self.ino = current.map(|m| m.ino());
            self.pos = 0;
            if let Some(f) = &mut self.file
                && f.read_to_end(&mut buf).is_ok()
            {
                self.pos = f.stream_position().unwrap_or(0);
            }
        }
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The leading RFC 3339 UTC timestamp of a log line, if any (every keeper
/// line and the gateway's tracing lines start with one).
fn timestamp(line: &str) -> Option<&str> {
    let head = line.split_whitespace().next()?;
    (head.len() >= 20 && head.as_bytes()[4] == b'-' && head.as_bytes()[10] == b'T').then_some(head)
}

/// A sort key that orders timestamps of any fractional precision
/// (`.123Z`, `.123456Z`) by time.
fn sort_key(ts: &str) -> String {
    let (secs, frac) = ts.split_at(19.min(ts.len()));
    let digits: String = frac.chars().filter(char::is_ascii_digit).collect();
    format!("{secs}.{digits:0<9}")
}

/// Keys for `lines` of one source: a line without a timestamp (a
/// continuation, a panic message) sorts with the line before it.
fn keyed(lines: Vec<String>, last: &mut String) -> Vec<(String, String)> {
    lines
        .into_iter()
        .map(|l| {
            if let Some(ts) = timestamp(&l) {
                *last = sort_key(ts);
            }
            (last.clone(), l)
        })
        .collect()
}

/// `openclawctl logs`.
pub fn logs(ctx: &Context, names: &[String], lines: usize, follow: bool) -> CmdResult {
    let profiles = ctx.profiles_or_all(names)?;
    if profiles.is_empty() {
        return Err(Failure::problem(
            "no profiles yet: create one with `openclawctl profile create <name>`",
        ));
    }
    if profiles.len() == 1 && !log_path(&profiles[0]).exists() && !follow {
        let name = &profiles[0].profile;
        return Err(Failure::problem(format!(
            "no log yet for profile `{name}` ({}): start it with `openclawctl start {name}`",
            log_path(&profiles[0]).display()
        )));
    }
    let single = profiles.len() == 1;
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let width = profiles
        .iter()
        .map(|p| p.profile.as_str().len())
        .max()
        .unwrap_or(0);
    let prefixes: Vec<String> = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if single {
                String::new()
            } else if colour {
                // Six distinguishable ANSI colours, in turn.
                let code = 31 + (i % 6);
                format!("\x1b[{code}m{:<width$} |\x1b[0m ", p.profile.as_str())
            } else {
                format!("{:<width$} | ", p.profile.as_str())
            }
        })
        .collect();
    // The last `lines` lines of each, merged in time order (stable: a
    // profile's own lines keep their order).
    // Positions to follow from are taken before the tail is read: a line
    // written in between may show twice, but none is lost.
    let mut sources: Vec<Source> = profiles
        .iter()
        .zip(&prefixes)
        .map(|(p, prefix)| Source::new(prefix.clone(), log_path(p)))
        .collect();
    let mut merged: Vec<(String, usize, String)> = Vec::new();
    let mut lasts = vec![String::new(); profiles.len()];
    for (i, p) in profiles.iter().enumerate() {
        for (k, l) in keyed(tail_lines(&log_path(p), lines), &mut lasts[i]) {
            merged.push((k, i, l));
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, i, l) in merged {
        openclaw_profiles::outln!("{}{l}", prefixes[i]);
    }
    stdout::flush();
    if !follow {
        return Ok(());
    }
    loop {
        let mut batch: Vec<(String, String)> = Vec::new();
        for (s, last) in sources.iter_mut().zip(&mut lasts) {
            let fresh = s.new_lines();
            for (k, l) in keyed(fresh, last) {
                batch.push((k, format!("{}{l}", s.prefix)));
            }
        }
        batch.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, l) in batch {
            openclaw_profiles::outln!("{l}");
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_recognised() {
        assert_eq!(
            super::timestamp("2026-11-24T19:07:35.123Z openclawctl: x"),
            Some("2026-11-24T19:07:35.123Z")
        );
        assert_eq!(super::timestamp("plain line"), None);
        assert!(
            super::sort_key("2026-11-24T19:07:35.123Z")
                > super::sort_key("2026-11-24T19:07:35.122999Z")
        );
        let mut last = String::new();
        let k = super::keyed(
            vec!["2026-11-24T19:07:35.1Z a".into(), "b".into()],
            &mut last,
        );
        assert_eq!(k[0].0, k[1].0);
    }
}
