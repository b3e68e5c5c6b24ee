//! What is true about one profile right now, read from disk and probes:
//! its configured port, whether a keeper supervises it and what the keeper
//! recorded, who holds its state lock, and whether it answers `/healthz`.

use std::time::Duration;

use openclaw_profiles::config;
use openclaw_profiles::lock::{self, LockState, OwnerRecord};
use openclaw_profiles::paths::ProfilePaths;
use openclaw_profiles::ports;

use crate::supervision::{self, Record};

/// How long a single health probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The port a profile's gateway serves on when started by us: the port
/// OpenClaw's CLI implies for the profile (`dev`: 19001), else its config's
/// `gateway.port`, else 18789 (children get no inherited env). Read afresh
/// on every call: a restart serves on the port configured now.
pub fn configured_port(paths: &ProfilePaths) -> Result<u16, String> {
    let cfg = config::load_config(&paths.config_path).map_err(|e| e.to_string())?;
    Ok(ports::profile_port(
        &paths.profile,
        cfg.and_then(|c| c.gateway.port),
    ))
}

/// Who holds a profile's state lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: no gateway runs on this state dir.
    None,
    /// A live process whose record we could read.
    Known(OwnerRecord),
    /// A live process that left no readable record.
    Unknown,
}

/// The facts about one profile.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The profile's paths.
    pub paths: ProfilePaths,
    /// The configured port, or why it could not be read.
    pub port: Result<u16, String>,
    /// True if a keeper holds the profile's keeper lock.
    pub supervised: bool,
    /// The keeper's record (current if supervised, else history).
    pub record: Option<Record>,
    /// The live holder of the state lock.
    pub holder: Holder,
    /// True if a gateway answers `/healthz` on the serving port.
    pub live: bool,
}

impl Facts {
    /// The port a running gateway serves on, else the configured one.
    pub fn serving_port(&self) -> Option<u16> {
        if let Holder::Known(o) = &self.holder
            && let Some(p) = o.port
        {
            return Some(p);
        }
        if self.supervised
            && let Some(r) = &self.record
            && r.port != 0
        {
            return Some(r.port);
        }
        self.port.as_ref().ok().copied()
    }

    /// The gateway's pid, if one runs.
    pub fn gateway_pid(&self) -> Option<u32> {
        match &self.holder {
            Holder::Known(o) => Some(o.pid),
            _ => self
                .record
                .as_ref()
                .filter(|_| self.supervised)
                .and_then(|r| r.gateway_pid),
        }
    }
}

/// Gathers the facts about `paths` (probes `/healthz` when something runs).
pub fn gather(paths: &ProfilePaths) -> Facts {
    gather_with(paths, &lock::LockTable::default())
}

/// Most health probes in flight at once for [`gather_all`].
const PROBES_AT_ONCE: usize = 32;

/// [`gather`] for many profiles: the kernel's lock table read once, the
/// health probes 32 at a time; facts in the order given.
pub fn gather_all(paths: &[ProfilePaths]) -> Vec<Facts> {
    let table = lock::LockTable::read();
    crate::fanout::map(paths, PROBES_AT_ONCE, |p| gather_with(p, &table))
}

/// [`gather`] against a lock table already read.
pub fn gather_with(paths: &ProfilePaths, table: &lock::LockTable) -> Facts {
    let supervised = supervision::keeper_alive_in(paths, table);
    let record = supervision::read_record(paths).map(|r| {
        if supervised {
            r
        } else {
            supervision::note_lost_keeper(paths, r)
        }
    });
    let holder = match table.inspect(&paths.state_lock_path()) {
        Ok(LockState::Free) | Err(_) => Holder::None,
        Ok(LockState::Held(Some(o))) => Holder::Known(o),
        Ok(LockState::Held(None)) => Holder::Unknown,
    };
    let mut facts = Facts {
        paths: paths.clone(),
        port: configured_port(paths),
        supervised,
        record,
        holder,
        live: false,
    };
    if (facts.supervised || facts.holder != Holder::None)
        && let Some(p) = facts.serving_port()
    {
        // Only this profile's own gateway counts as live on its port.
        let instance = openclaw_profiles::contract::instance_id(&paths.state_dir);
        facts.live = crate::probe::is_live_as(p, PROBE_TIMEOUT, &instance);
    }
    facts
}
