//! State files the gateway keeps (the device store, the session index):
//! written whole and atomically by one writer thread per store (the newest
//! snapshot wins), and read so that a damaged file is moved aside, never
//! overwritten in silence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::protocol::now_ms;

/// Files of one snapshot: each written atomically with mode 0600 in a
/// private (0700) directory.
pub type Snapshot = Vec<(PathBuf, Vec<u8>)>;

/// Writes every file of a snapshot at once (the caller's thread).
pub fn write_snapshot(files: &Snapshot) -> std::io::Result<()> {
    for (path, bytes) in files {
        if let Some(dir) = path.parent() {
            openclaw_profiles::atomic::create_private_dir(dir)?;
        }
        openclaw_profiles::atomic::write_atomic(path, bytes, 0o600)?;
    }
    Ok(())
}

/// One thread that writes a store's snapshots (the newest wins) with
/// fsync, off the async runtime; dropping it waits for the last write.
#[derive(Debug)]
pub struct Writer {
    what: &'static str,
    tx: Option<std::sync::mpsc::Sender<Snapshot>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// A writer thread for the store named `what` (in logs).
    pub fn spawn(what: &'static str) -> Option<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Snapshot>();
        let thread = std::thread::Builder::new()
            .name(what.into())
            .spawn(move || {
                while let Ok(mut snap) = rx.recv() {
                    // Coalesce: only the newest of what queued up matters.
                    while let Ok(newer) = rx.try_recv() {
                        snap = newer;
                    }
                    if let Err(e) = write_snapshot(&snap) {
                        let file = snap.first().map(|f| f.0.display().to_string());
                        tracing::error!(store = what, file, error = %e, "cannot save");
                    }
                }
            })
            .ok()?;
        Some(Self {
            what,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands a snapshot to the thread.
    pub fn send(&self, snap: Snapshot) -> std::io::Result<()> {
        match &self.tx {
            Some(tx) => tx
                .send(snap)
                .map_err(|_| std::io::Error::other(format!("the {} writer stopped", self.what))),
            None => write_snapshot(&snap),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Saves through `writer` when there is one, else at once.
pub fn save(writer: Option<&Writer>, snap: Snapshot) -> std::io::Result<()> {
    match writer {
        Some(w) => w.send(snap),
        None => write_snapshot(&snap),
    }
}

/// Reads one JSON map file of the store named `what`. A file that cannot be
/// read or parsed is moved aside to `<file>.corrupt-<ms>` (what `doctor`
/// reports as `state-file-invalid`), loudly logged with `loss` (what the
/// user loses), and the store starts empty.
pub fn read_map<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &str,
    loss: &str,
) -> BTreeMap<String, T> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            move_aside(path, what, &e.to_string(), loss);
            return BTreeMap::new();
        }
    };
    match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => {
            move_aside(path, what, &e.to_string(), loss);
            BTreeMap::new()
        }
    }
}

fn move_aside(path: &Path, what: &str, why: &str, loss: &str) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(
        "{}{}",
        openclaw_profiles::contract::CORRUPT_SUFFIX,
        now_ms()
    ));
    let aside = PathBuf::from(aside);
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::error!(
            file = %path.display(),
            moved_to = %aside.display(),
            "cannot read the {what} ({why}); moved it aside and started with an empty one: {loss} (see `openclaw doctor`)"
        ),
        Err(e) => tracing::error!(
            file = %path.display(),
            "cannot read the {what} ({why}) and cannot move it aside ({e})"
        ),
    }
}
