//! The state-dir ownership lock: one gateway per state directory.
//!
//! The lock is an advisory `flock` (std `File::try_lock`) on
//! `<stateDir>/tmp/openclaw-<uid>/gateway.state.lock`, held for the life of
//! the gateway process. The kernel drops it when the owner dies, however it
//! dies, so a dead owner's lock is reclaimed by simply taking it, and a live
//! owner's lock can never be taken. The owner's identity (pid, start time,
//! port, version) is written next to it, atomically, to `gateway.state.json`
//! so that others can say who holds it; that file is information only.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::atomic::{create_private_dir, write_atomic};

/// Who holds a state lock, as recorded by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRecord {
    /// The holder's pid.
    pub pid: u32,
    /// The holder's start time (clock ticks since boot), if known.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// The port the holder serves on, once bound.
    #[serde(default)]
    pub port: Option<u16>,
    /// The holder's version string.
    pub version: String,
    /// When the lock was taken, ms since the epoch.
    pub created_at: u64,
    /// The profile the holder runs as.
    #[serde(default)]
    pub profile: Option<String>,
    /// The config file the holder uses.
    #[serde(default)]
    pub config_path: Option<PathBuf>,
}

impl OwnerRecord {
    /// A record for the current process.
    pub fn for_current_process(version: &str, profile: &str, config_path: &Path) -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start_time: crate::process::start_time(pid),
            port: None,
            version: version.to_string(),
            created_at: now_ms(),
            profile: Some(profile.to_string()),
            config_path: Some(config_path.to_path_buf()),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Errors taking or reading a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live process holds the lock.
    #[error("{}", held_message(.owner.as_ref(), *.waited))]
    Held {
        /// The holder, if its record could be read.
        owner: Option<OwnerRecord>,
        /// How long we waited before giving up.
        waited: Duration,
    },
    /// The lock file could not be created or locked.
    #[error("cannot use lock file {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn held_message(owner: Option<&OwnerRecord>, waited: Duration) -> String {
    let pid = owner.map_or_else(|| "unknown".to_string(), |o| o.pid.to_string());
    format!(
        "gateway already running (pid {pid}); lock timeout after {}ms",
        waited.as_millis()
    )
}

/// What a lock file says right now, without taking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// No live process holds it.
    Free,
    /// A live process holds it; its record if readable.
    Held(Option<OwnerRecord>),
}

/// A held state lock. Dropping it releases the lock and removes its files.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    lock_path: PathBuf,
    record_path: PathBuf,
    record: OwnerRecord,
}

fn record_path_for(lock_path: &Path) -> PathBuf {
    lock_path.with_extension("json")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn open_lock_file(path: &Path) -> Result<File, LockError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(io_err(path))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))
}

/// Opens (creating, 0600, with its directory 0700) the lock file at `path`
/// and tries once to take it: `Ok(None)` when a live process holds it. For
/// locks held for a process's life (the keeper's) or a short edit (the
/// registry's); the caller keeps the file to keep the lock.
pub fn try_lock_file(path: &Path) -> Result<Option<File>, LockError> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(io_err(path)(e)),
    }
}

/// True if `file` is still the inode at `path` (a previous owner may have
/// removed the file between our open and our lock).
fn still_linked(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Reads the owner record next to a lock file.
pub fn read_owner(lock_path: &Path) -> Option<OwnerRecord> {
    let text = fs::read_to_string(record_path_for(lock_path)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Reports whether a live process holds the lock at `lock_path`, by a
/// probe `try_lock` (released at once): O(1), where reading the kernel's
/// whole lock table would cost O(every lock on the host) and leave a
/// resident keeper holding the memory it took. Whoever takes the lock for
/// good retries briefly, so the probe never turns them away. For many
/// locks at once, [`LockTable::read`] once.
pub fn inspect(lock_path: &Path) -> Result<LockState, LockError> {
    LockTable::default().inspect(lock_path)
}

/// The kernel's lock table read once (`/proc/locks`), for inspecting many
/// locks: reading it per lock costs O(locks) each, O(n²) over n profiles.
/// The default (no table) probes each lock.
#[derive(Debug, Clone, Default)]
pub struct LockTable(Option<std::collections::HashSet<(u64, u64, u64)>>);

impl LockTable {
    /// Reads the table now. A lock it lists is held; one it does not list
    /// is confirmed free by a probe `try_lock` ([`LockTable::inspect`]).
    pub fn read() -> Self {
        Self(
            fs::read_to_string("/proc/locks")
                .ok()
                .map(|t| parse_lock_table(&t)),
        )
    }

    /// [`inspect`] against this table.
    pub fn inspect(&self, lock_path: &Path) -> Result<LockState, LockError> {
        let file = match File::open(lock_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
            Err(e) => return Err(io_err(lock_path)(e)),
        };
        let meta = file.metadata().map_err(io_err(lock_path))?;
        if let Some(held) = &self.0 {
            let (dev, ino) = (meta.dev(), meta.ino());
            let key = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev), ino);
            if held.contains(&key) {
                return Ok(LockState::Held(read_owner(lock_path)));
            }
            // Not in the table is not proof: `/proc/locks` is read a page
            // at a time, and locks released meanwhile shift the rest, so a
            // read while others stop can skip a held lock. The probe below
            // decides (only for locks that look free: the cheap case).
        }
        match file.try_lock() {
            // Free; dropping `file` releases the probe at once.
            Ok(()) => Ok(LockState::Free),
            Err(TryLockError::WouldBlock) => Ok(LockState::Held(read_owner(lock_path))),
            Err(TryLockError::Error(e)) => Err(io_err(lock_path)(e)),
        }
    }
}

/// The granted `flock`s of a `/proc/locks` text, as (major, minor, inode).
/// Lines look like `1: FLOCK  ADVISORY  WRITE 1806 fe:00:5308773 0 EOF`
/// (device numbers in hex); waiters (`->`) do not hold the lock.
fn parse_lock_table(table: &str) -> std::collections::HashSet<(u64, u64, u64)> {
    table
        .lines()
        .filter(|l| !l.contains("->"))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1) != Some(&"FLOCK") {
                return None;
            }
            let mut parts = fields.get(5)?.split(':');
            let (ma, mi, i) = (parts.next()?, parts.next()?, parts.next()?);
            Some((
                u64::from_str_radix(ma, 16).ok()?,
                u64::from_str_radix(mi, 16).ok()?,
                i.parse::<u64>().ok()?,
            ))
        })
        .collect()
}

/// True if the table text lists a granted `flock` on `dev:ino`.
#[cfg(test)]
fn lock_table_holds(table: &str, dev: u64, ino: u64) -> bool {
    let key = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev), ino);
    parse_lock_table(table).contains(&key)
}

impl InstanceLock {
    /// Takes the lock at `lock_path`, retrying every 100 ms for up to
    /// `timeout` while a live process holds it, and records `record` as the
    /// owner. A lock left by a dead process is free and is simply taken.
    pub fn acquire(
        lock_path: &Path,
        record: OwnerRecord,
        timeout: Duration,
    ) -> Result<Self, LockError> {
        let started = Instant::now();
        loop {
            match Self::try_acquire_once(lock_path, &record)? {
                Some(lock) => return Ok(lock),
                None if started.elapsed() >= timeout => {
                    return Err(LockError::Held {
                        owner: read_owner(lock_path),
                        waited: timeout,
                    });
                }
                None => std::thread::sleep(Duration::from_millis(100).min(timeout)),
            }
        }
    }

    /// One attempt: `Ok(None)` when a live process holds the lock.
    fn try_acquire_once(lock_path: &Path, record: &OwnerRecord) -> Result<Option<Self>, LockError> {
        let file = open_lock_file(lock_path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io_err(lock_path)(e)),
        }
        if !still_linked(&file, lock_path) {
            // The previous owner removed the file while we waited; the
            // lock we hold is on an orphaned inode. Start over.
            return Self::try_acquire_once(lock_path, record);
        }
        let lock = Self {
            file,
            lock_path: lock_path.to_path_buf(),
            record_path: record_path_for(lock_path),
            record: record.clone(),
        };
        lock.write_record()?;
        Ok(Some(lock))
    }

    fn write_record(&self) -> Result<(), LockError> {
        let json = serde_json::to_vec_pretty(&self.record).expect("owner record serializes");
        write_atomic(&self.record_path, &json, 0o600).map_err(io_err(&self.record_path))
    }

    /// Records the port once the gateway has bound it.
    pub fn set_port(&mut self, port: u16) -> Result<(), LockError> {
        self.record.port = Some(port);
        self.write_record()
    }

    /// The record this lock was taken with.
    pub fn record(&self) -> &OwnerRecord {
        &self.record
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.lock_path
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Remove while still holding the lock, so that no one can take the
        // old inode after we let go (see `still_linked`).
        let _ = fs::remove_file(&self.record_path);
        let _ = fs::remove_file(&self.lock_path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> OwnerRecord {
        OwnerRecord::for_current_process("test", "a", Path::new("/c.json"))
    }

    #[test]
    fn second_acquire_fails_with_owner_and_release_frees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tmp/openclaw-0/gateway.state.lock");
        let mut lock = InstanceLock::acquire(&path, record(), Duration::ZERO).unwrap();
        lock.set_port(4242).unwrap();
        let err = InstanceLock::acquire(&path, record(), Duration::from_millis(150)).unwrap_err();
        match &err {
            LockError::Held { owner: Some(o), .. } => {
                assert_eq!(o.pid, std::process::id());
                assert_eq!(o.port, Some(4242));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "gateway already running (pid {}); lock timeout after 150ms",
                std::process::id()
            )
        );
        assert!(matches!(inspect(&path).unwrap(), LockState::Held(Some(_))));
        drop(lock);
        assert_eq!(inspect(&path).unwrap(), LockState::Free);
        assert!(!path.exists());
        InstanceLock::acquire(&path, record(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_dead_owners_lock_is_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.state.lock");
        // A holder that dies without cleaning up: a child process takes the
        // lock with flock(1) and is killed.
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("flock")
            .arg(&path)
            .args(["sleep", "30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let deadline = Instant::now() + Duration::from_secs(10);
        while inspect(&path).unwrap() == LockState::Free {
            assert!(Instant::now() < deadline, "flock child never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        // stale record from the "dead" owner
        std::fs::write(
            path.with_extension("json"),
            r#"{"pid":1,"version":"x","createdAt":0}"#,
        )
        .unwrap();
        nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        let lock = InstanceLock::acquire(&path, record(), Duration::from_secs(5)).unwrap();
        assert_eq!(read_owner(&path).unwrap().pid, std::process::id());
        drop(lock);
    }

    /// A held lock that a `/proc/locks` read skipped (the kernel lists
    /// locks a page at a time while others come and go) is still held.
    #[test]
    fn a_lock_missing_from_the_table_is_probed_not_assumed_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclawctl.lock");
        let held = try_lock_file(&path).unwrap().expect("free at first");
        let skipped = LockTable(Some(std::collections::HashSet::new()));
        assert!(matches!(
            skipped.inspect(&path).unwrap(),
            LockState::Held(_)
        ));
        drop(held);
        assert_eq!(skipped.inspect(&path).unwrap(), LockState::Free);
    }

    #[test]
    fn the_kernel_lock_table_is_parsed() {
        let dev = nix::sys::stat::makedev(0xfe, 0);
        let table = "1: FLOCK  ADVISORY  WRITE 1806 fe:00:5308773 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 7 fe:00:42 0 EOF\n\
                     3: -> FLOCK  ADVISORY  WRITE 9 fe:00:43 0 EOF\n";
        assert!(lock_table_holds(table, dev, 5308773));
        assert!(
            !lock_table_holds(table, dev, 42),
            "POSIX locks are not ours"
        );
        assert!(!lock_table_holds(table, dev, 43), "waiters hold nothing");
        assert!(!lock_table_holds(
            table,
            nix::sys::stat::makedev(8, 1),
            5308773
        ));
    }

    #[test]
    fn inspect_never_keeps_a_taker_that_retries_briefly_away() {
        // `inspect` probes with a try_lock released at once: while a reader
        // inspects in a loop, a taker that retries for up to 200 ms (as
        // keepers and gateways do) always gets the lock (bounded: neither
        // side can hang).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        std::fs::write(&path, "").unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let misses = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 1_000_000 {
                    let _ = inspect(&path);
                    n += 1;
                }
            });
            let mut misses = 0;
            for _ in 0..500 {
                let deadline = Instant::now() + Duration::from_millis(200);
                let f = File::open(&path).unwrap();
                while f.try_lock().is_err() {
                    if Instant::now() > deadline {
                        misses += 1;
                        break;
                    }
                    std::thread::yield_now();
                }
                drop(f);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            reader.join().unwrap();
            misses
        });
        assert_eq!(
            misses, 0,
            "a reader kept the lock from a taker {misses} times"
        );
    }

    #[test]
    fn inspect_missing_is_free() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            inspect(&dir.path().join("nope.lock")).unwrap(),
            LockState::Free
        );
    }
}
