//! What a keeper records about its profile, in
//! `<stateDir>/tmp/openclawctl.json` (atomically, 0600), and the keeper's
//! lock `<stateDir>/tmp/openclawctl.lock`. `status`, `stop` and `restart`
//! read these; only the keeper writes the record while it runs.

use std::path::PathBuf;

use openclaw_profiles::atomic::{create_private_dir, write_atomic};
use openclaw_profiles::lock::{self, LockState};
use openclaw_profiles::paths::ProfilePaths;
use serde::{Deserialize, Serialize};

/// Deaths remembered on disk.
pub const TALLY_LEN: usize = 50;

/// How a gateway process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exit {
    /// Exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Signal name, when a signal killed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// What ended it when neither applies (`keeper killed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, ms since the epoch.
    pub at: u64,
}

impl Exit {
    /// From a std exit status.
    pub fn from_status(status: std::process::ExitStatus, at: u64) -> Self {
        use std::os::unix::process::ExitStatusExt;
        let signal = status.signal().map(|s| {
            nix::sys::signal::Signal::try_from(s)
                .map_or_else(|_| format!("SIG{s}"), |sig| sig.as_str().to_string())
        });
        Self {
            code: status.code(),
            signal,
            reason: None,
            at,
        }
    }

    /// `code 1` / `signal SIGKILL`.
    pub fn describe(&self) -> String {
        match (&self.code, &self.signal, &self.reason) {
            (Some(c), ..) => format!("code {c}"),
            (None, Some(s), Some(r)) => format!("signal {s}: {r}"),
            (None, Some(s), None) => format!("signal {s}"),
            (None, None, Some(r)) => r.clone(),
            _ => "unknown".into(),
        }
    }
}

/// The keeper's lifecycle states (the `state` of `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Gateway spawned, not yet answering `/healthz`.
    Starting,
    /// Gateway answering `/healthz`.
    Running,
    /// Waiting before a restart.
    Backoff,
    /// Crash loop: no more restarts until `start` or `restart`.
    Failed,
    /// Exit 78 or owned elsewhere: never restarted.
    Conflict,
    /// Stopped on request.
    Stopped,
}

impl State {
    /// The `status` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Backoff => "backoff",
            Self::Failed => "failed",
            Self::Conflict => "conflict",
            Self::Stopped => "stopped",
        }
    }
}

/// The record a keeper keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The keeper's pid.
    pub keeper_pid: u32,
    /// Current state.
    pub state: State,
    /// The gateway's pid while one runs.
    pub gateway_pid: Option<u32>,
    /// When the current gateway was spawned, ms since the epoch.
    pub gateway_started_at: Option<u64>,
    /// The port the gateway serves on.
    pub port: u16,
    /// Restarts since `start`.
    pub restarts: u32,
    /// How the last gateway ended.
    pub last_exit: Option<Exit>,
    /// The gateway's last error line, or why the keeper gave up.
    pub last_error: Option<String>,
    /// Unexpected deaths, oldest first, at most [`TALLY_LEN`].
    pub deaths: Vec<Exit>,
    /// Last update, ms since the epoch.
    pub updated_at: u64,
    /// The limits the keeper applies (from its start; `restart` starts a
    /// new keeper when the profile's differ).
    #[serde(
        default,
        skip_serializing_if = "openclaw_profiles::limits::Limits::is_empty"
    )]
    pub limits: openclaw_profiles::limits::Limits,
}

/// `<stateDir>/tmp/openclawctl.lock`.
pub fn keeper_lock_path(paths: &ProfilePaths) -> PathBuf {
    paths.state_dir.join("tmp").join("openclawctl.lock")
}

/// `<stateDir>/tmp/openclawctl.json`.
pub fn record_path(paths: &ProfilePaths) -> PathBuf {
    paths.state_dir.join("tmp").join("openclawctl.json")
}

/// Reads the record (None if absent or unreadable).
pub fn read_record(paths: &ProfilePaths) -> Option<Record> {
    let text = std::fs::read_to_string(record_path(paths)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the record atomically.
pub fn write_record(paths: &ProfilePaths, record: &Record) -> std::io::Result<()> {
    let path = record_path(paths);
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let json = serde_json::to_vec_pretty(record).expect("keeper record serializes");
    write_atomic(&path, &json, 0o600)
}

/// `<stateDir>/tmp/openclawctl.stop`: the grace `stop --timeout` asked for.
pub fn stop_grace_path(paths: &ProfilePaths) -> PathBuf {
    paths.state_dir.join("tmp").join("openclawctl.stop")
}

/// Tells the keeper how long its gateway may take to stop (read once when
/// the keeper gets SIGTERM; absent means the keeper's default).
pub fn request_stop_grace(paths: &ProfilePaths, grace: std::time::Duration) -> std::io::Result<()> {
    write_atomic(
        &stop_grace_path(paths),
        grace.as_millis().to_string().as_bytes(),
        0o600,
    )
}

/// Takes (reads and removes) the requested stop grace, if any.
pub fn take_stop_grace(paths: &ProfilePaths) -> Option<std::time::Duration> {
    let path = stop_grace_path(paths);
    let ms = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
    let _ = std::fs::remove_file(&path);
    Some(std::time::Duration::from_millis(ms))
}

/// Given the record of a profile no keeper supervises, notices a keeper
/// that died without recording it (kill -9, a crash): the record still says
/// starting/running/backoff. It then says `stopped`, with last exit `keeper
/// killed`, on disk and in the returned record, and the profile's log says
/// what happened.
pub fn note_lost_keeper(paths: &ProfilePaths, mut rec: Record) -> Record {
    if !matches!(rec.state, State::Starting | State::Running | State::Backoff)
        || openclaw_profiles::process::pid_alive(rec.keeper_pid)
    {
        return rec;
    }
    let now = openclaw_profiles::lock::now_ms();
    let why = format!(
        "the keeper (pid {}) died without stopping (killed, SIGKILL?); its gateway{} stopped with it; `openclawctl start {}` runs it again",
        rec.keeper_pid,
        rec.gateway_pid
            .map_or(String::new(), |p| format!(" (pid {p})")),
        paths.profile
    );
    rec.state = State::Stopped;
    rec.gateway_pid = None;
    rec.last_exit = Some(Exit {
        code: None,
        signal: None,
        reason: Some("keeper killed".into()),
        at: now,
    });
    rec.last_error = Some(why.clone());
    rec.updated_at = now;
    let _ = write_record(paths, &rec);
    let log = crate::launch::log_path(paths);
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
        use std::io::Write;
        let _ = f.write_all(crate::keeper::log_line(now, &why).as_bytes());
    }
    rec
}

/// True if a keeper holds the profile's keeper lock.
pub fn keeper_alive(paths: &ProfilePaths) -> bool {
    keeper_alive_in(paths, &lock::LockTable::default())
}

/// [`keeper_alive`] against a lock table already read.
pub fn keeper_alive_in(paths: &ProfilePaths, table: &lock::LockTable) -> bool {
    matches!(
        table.inspect(&keeper_lock_path(paths)),
        Ok(LockState::Held(_))
    )
}
