//! `openclawctl logs --profile p [-n N] [--follow]`: the gateway's captured
//! output (and the keeper's own lines), following rotations.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::context::Context;
use crate::launch::log_path;
use crate::logfile::tail_lines;
use crate::{CmdResult, Failure};

/// `openclawctl logs`.
pub fn logs(ctx: &Context, name: &str, lines: usize, follow: bool) -> CmdResult {
    let paths = ctx.known_profile(name)?;
    let path = log_path(&paths);
    if !path.exists() && !follow {
        return Err(Failure::problem(format!(
            "no log yet for profile `{name}` ({}): start it with `openclawctl start --profile {name}`",
            path.display()
        )));
    }
    let mut out = std::io::stdout().lock();
    for l in tail_lines(&path, lines) {
        if writeln!(out, "{l}").is_err() {
            return Ok(()); // closed pipe (e.g. `| head`)
        }
    }
    let _ = out.flush();
    if !follow {
        return Ok(());
    }
    // Follow: read what is appended; start over when the file is rotated
    // (new inode) or truncated.
    let mut file = std::fs::File::open(&path).ok();
    let mut pos = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    let mut ino = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| m.ino());
    let mut buf = Vec::new();
    loop {
        let current = std::fs::metadata(&path).ok();
        if current.as_ref().map(|m| m.ino()) != ino
            || current.as_ref().is_some_and(|m| m.len() < pos)
        {
            // Finish the old file, then switch.
            if let Some(f) = &mut file {
                buf.clear();
                let _ = f.read_to_end(&mut buf);
                if out.write_all(&buf).is_err() {
                    return Ok(());
                }
            }
            file = std::fs::File::open(&path).ok();
            ino = current.map(|m| m.ino());
            pos = 0;
        }
        if let Some(f) = &mut file {
            buf.clear();
            if f.seek(SeekFrom::Start(pos)).is_ok()
                && f.read_to_end(&mut buf).is_ok()
                && !buf.is_empty()
            {
                pos += buf.len() as u64;
                if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
