//! What is true about one profile right now, read from disk and probes:
//! its configured port, who holds its state lock, whether that holder was
//! started by us, and whether it answers `/healthz`.

use std::path::PathBuf;
use std::time::Duration;

use openclaw_profiles::config;
use openclaw_profiles::lock::{self, LockState, OwnerRecord};
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};
use openclaw_profiles::ports;
use serde::{Deserialize, Serialize};

/// How long a single health probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What `openclawctl start` records about the gateway it spawned, so that
/// `status` can tell our gateways from ones started by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRecord {
    /// The gateway's pid.
    pub pid: u32,
    /// Its start time (clock ticks since boot), if known.
    pub start_time: Option<u64>,
    /// When it was spawned, ms since the epoch.
    pub started_at: u64,
}

/// Where the launch record of a profile lives.
pub fn launch_record_path(paths: &ProfilePaths) -> PathBuf {
    paths.lock_dir().join("openclawctl.launch.json")
}

/// Reads a profile's launch record.
pub fn read_launch_record(paths: &ProfilePaths) -> Option<LaunchRecord> {
    let text = std::fs::read_to_string(launch_record_path(paths)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The port a profile's gateway serves on when started by us: its config's
/// `gateway.port`, else 18789 (children get no inherited env).
pub fn configured_port(paths: &ProfilePaths) -> Result<u16, String> {
    let cfg = config::load_config(&paths.config_path).map_err(|e| e.to_string())?;
    ports::resolve_gateway_port(
        None,
        &EnvSnapshot::default(),
        cfg.and_then(|c| c.gateway.port),
    )
    .map_err(|e| e.to_string())
}

/// The facts about one profile.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The profile's paths.
    pub paths: ProfilePaths,
    /// The configured port, or why it could not be read.
    pub port: Result<u16, String>,
    /// The live holder of the state lock, if any.
    pub holder: Holder,
    /// True if the holder is the gateway `openclawctl start` spawned.
    pub launched_by_us: bool,
    /// True if the holder answers `/healthz` on its port.
    pub live: bool,
}

/// Who holds a profile's state lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: the profile is stopped.
    None,
    /// A live process whose record we could read.
    Known(OwnerRecord),
    /// A live process that left no readable record.
    Unknown,
}

impl Facts {
    /// The port the holder serves on (its record), else the configured one.
    pub fn serving_port(&self) -> Option<u16> {
        match &self.holder {
            Holder::Known(o) => o.port.or(self.port.as_ref().ok().copied()),
            _ => self.port.as_ref().ok().copied(),
        }
    }
}

/// Gathers the facts about `paths` (probes `/healthz` if a holder exists).
pub fn gather(paths: &ProfilePaths) -> Facts {
    let port = configured_port(paths);
    let holder = match lock::inspect(&paths.state_lock_path()) {
        Ok(LockState::Free) | Err(_) => Holder::None,
        Ok(LockState::Held(Some(o))) => Holder::Known(o),
        Ok(LockState::Held(None)) => Holder::Unknown,
    };
    let launched_by_us = match (&holder, read_launch_record(paths)) {
        (Holder::Known(o), Some(l)) => {
            o.pid == l.pid && (l.start_time.is_none() || l.start_time == o.start_time)
        }
        _ => false,
    };
    let mut facts = Facts {
        paths: paths.clone(),
        port,
        holder,
        launched_by_us,
        live: false,
    };
    if facts.holder != Holder::None
        && let Some(p) = facts.serving_port()
    {
        facts.live = crate::probe::is_live(p, PROBE_TIMEOUT);
    }
    facts
}
