//! `openclawctl status`: every profile at a glance, as a table or as the
//! `--json` document `cli.md` defines.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use openclaw_profiles::limits::{Limits, format_size};
use openclaw_profiles::lock::now_ms;
use openclaw_profiles::outln;
use openclaw_profiles::paths::ProfilePaths;
use openclaw_profiles::ports::is_port_free;
use serde::Serialize;

use crate::context::Context;
use crate::facts::{self, Facts, Holder};
use crate::service_cmd;
use crate::supervision::State;
use crate::{CmdResult, Failure};
use openclaw_service_templates::systemd::UnitStatus;

/// One row of `status --json` (a frozen output shape: `cli.md`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    pub(crate) name: String,
    pub(crate) state: &'static str,
    pub(crate) managed_by: &'static str,
    pub(crate) pid: Option<u32>,
    pub(crate) port: Option<u16>,
    pub(crate) healthy: bool,
    pub(crate) uptime_ms: Option<u64>,
    pub(crate) restarts: u32,
    pub(crate) last_exit: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
    /// CPU use of the gateway and its descendants, % of one core.
    pub(crate) cpu_percent: Option<f32>,
    /// Resident memory of the gateway and its descendants.
    pub(crate) memory_bytes: Option<u64>,
    /// Threads of the gateway and its descendants (when `tasks-max` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tasks: Option<u32>,
    /// Descriptors the gateway holds open (when `nofile` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) open_files: Option<u64>,
    /// The profile's limits (`null` where none).
    #[serde(serialize_with = "Limits::serialize_json")]
    pub(crate) limits: Limits,
    pub(crate) state_dir: String,
    pub(crate) config_path: String,
}

#[derive(Debug, Serialize)]
struct StatusDoc {
    profiles: Vec<StatusRow>,
}

/// Builds the row for one profile from its facts.
pub fn row(facts: &Facts) -> StatusRow {
    let rec = facts.record.as_ref();
    let live_state = if facts.live { "running" } else { "starting" };
    let (state, managed_by, pid, uptime) = if facts.supervised {
        let state = rec.map_or("starting", |r| match r.state {
            // Healthy before the keeper's next probe noticed.
            State::Starting if facts.live => "running",
            other => other.as_str(),
        });
        let pid = rec.and_then(|r| r.gateway_pid);
        let uptime = rec
            .filter(|r| r.gateway_pid.is_some())
            .and_then(|r| r.gateway_started_at)
            .map(|t| now_ms().saturating_sub(t));
        (state, "openclawctl", pid, uptime)
    } else {
        match &facts.holder {
            Holder::Known(o) => (
                live_state,
                "external",
                Some(o.pid),
                Some(now_ms().saturating_sub(o.created_at)),
            ),
            Holder::Unknown => (live_state, "external", None, None),
            Holder::None => {
                let state = match rec.map(|r| r.state) {
                    Some(State::Failed) => "failed",
                    Some(State::Conflict) => "conflict",
                    // Stopped, but something else holds its port: it cannot start.
                    _ if facts.port.as_ref().is_ok_and(|p| !is_port_free(*p)) => "conflict",
                    _ => "stopped",
                };
                (state, "none", None, None)
            }
        }
    };
    StatusRow {
        name: facts.paths.profile.to_string(),
        state,
        managed_by,
        pid,
        port: facts.serving_port(),
        healthy: facts.live,
        uptime_ms: uptime,
        restarts: rec.map_or(0, |r| r.restarts),
        last_exit: rec.and_then(|r| r.last_exit.as_ref()).map(|e| {
            let mut v = serde_json::json!({ "at": e.at });
            match (&e.code, &e.signal) {
                (Some(c), _) => v["code"] = (*c).into(),
                (None, Some(sig)) => v["signal"] = sig.clone().into(),
                _ => {}
            }
            // Why, when the keeper knows more than the signal (memory-max).
            if let Some(r) = &e.reason {
                v["reason"] = r.clone().into();
            }
            v
        }),
        last_error: rec
            .filter(|r| {
                matches!(r.state, State::Failed | State::Conflict)
                    || (r.state == State::Stopped
                        && r.last_exit.as_ref().is_some_and(|e| e.reason.is_some()))
            })
            .filter(|_| !facts.supervised)
            .and_then(|r| r.last_error.clone()),
        cpu_percent: None,
        memory_bytes: None,
        tasks: None,
        open_files: None,
        limits: facts.paths.limits,
        state_dir: facts.paths.state_dir.display().to_string(),
        config_path: facts.paths.config_path.display().to_string(),
    }
}

/// The row of a profile whose OS service is installed: the manager's view
/// (state, main pid, automatic restarts, last exit) plus our probe.
pub fn service_row(facts: &Facts, manager: &'static str, st: &UnitStatus) -> StatusRow {
    let state = match (st.active_state.as_str(), st.sub_state.as_str()) {
        ("active", "running") if facts.live => "running",
        ("active", "running") | ("activating", _) | ("reloading", _) => "starting",
        (_, "auto-restart") => "backoff",
        ("failed", _) if st.last_exit_code == Some(78) => "conflict",
        ("failed", _) => "failed",
        ("active", _) => "running",
        _ => "stopped",
    };
    let uptime = match &facts.holder {
        Holder::Known(o) if Some(o.pid) == st.main_pid => {
            Some(now_ms().saturating_sub(o.created_at))
        }
        _ => None,
    };
    StatusRow {
        name: facts.paths.profile.to_string(),
        state,
        managed_by: manager,
        pid: st.main_pid,
        port: facts.serving_port(),
        healthy: facts.live,
        uptime_ms: uptime,
        restarts: st.restarts,
        last_exit: service_cmd::last_exit_json(st),
        // As for keeper rows: the gateway's own last error line explains a
        // conflict or a failure.
        last_error: matches!(state, "conflict" | "failed")
            .then(|| crate::logfile::last_error_line(&crate::launch::log_path(&facts.paths)))
            .flatten(),
        cpu_percent: None,
        memory_bytes: None,
        tasks: None,
        open_files: None,
        limits: facts.paths.limits,
        state_dir: facts.paths.state_dir.display().to_string(),
        config_path: facts.paths.config_path.display().to_string(),
    }
}

/// The rows of `profiles` without CPU and memory (see [`Sampler`]).
pub fn collect(ctx: &Context, profiles: &[ProfilePaths]) -> Vec<StatusRow> {
    let native = service_cmd::native(ctx);
    facts::gather_all(profiles)
        .iter()
        .zip(profiles)
        .map(|(facts, p)| {
            let sp = service_cmd::service_profile(p);
            if native.is_installed(sp) {
                service_row(
                    facts,
                    native.kind.as_str(),
                    &native.status(sp).unwrap_or_default(),
                )
            } else {
                row(facts)
            }
        })
        .collect()
}

/// `openclawctl status [--profile ...] [--json]`.
pub fn status(ctx: &Context, names: &[String], json: bool) -> CmdResult {
    let profiles: Vec<ProfilePaths> = ctx.profiles_or_all(names)?;
    // The CPU figure needs two samples apart: the first is taken before
    // the probes, so that their time counts toward the interval.
    let first = std::time::Instant::now();
    let mut sampler = Sampler::new();
    let mut rows = collect(ctx, &profiles);
    if rows.iter().any(|r| r.pid.is_some()) {
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.saturating_sub(first.elapsed()));
        sampler.fill(&mut rows);
    }
    if json {
        let doc = StatusDoc { profiles: rows };
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| Failure::usage(e.to_string()))?
        );
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no profiles yet: create one with `openclawctl profile create <name>`");
        return Ok(());
    }
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([
        "PROFILE",
        "STATE",
        "MANAGED BY",
        "PID",
        "PORT",
        "HEALTHY",
        "UPTIME",
        "RESTARTS",
        "CPU",
        "MEMORY",
        "LAST EXIT",
    ]);
    for r in &rows {
        table.add_row([
            r.name.clone(),
            r.state.to_string(),
            r.managed_by.to_string(),
            r.pid.map_or("-".into(), |p| p.to_string()),
            r.port.map_or("-".into(), |p| p.to_string()),
            if r.healthy { "yes" } else { "no" }.to_string(),
            r.uptime_ms.map_or("-".into(), format_uptime),
            r.restarts.to_string(),
            with_limit(
                r.cpu_percent.map(|c| format!("{c:.1}%")),
                r.limits.cpu_quota.map(|q| format!("{q}%")),
            ),
            with_limit(
                r.memory_bytes.map(format_bytes),
                r.limits.memory_max.map(format_size),
            ),
            r.last_exit.as_ref().map_or("-".into(), describe_exit),
        ]);
    }
    outln!("{table}");
    for r in &rows {
        let mut parts = Vec::new();
        if let Some(max) = r.limits.tasks_max {
            parts.push(format!(
                "tasks {}",
                with_limit(r.tasks.map(|t| t.to_string()), Some(max.to_string()))
            ));
        }
        if let Some(max) = r.limits.nofile {
            parts.push(format!(
                "open files {}",
                with_limit(r.open_files.map(|t| t.to_string()), Some(max.to_string()))
            ));
        }
        if !parts.is_empty() {
            outln!("{}: {}", r.name, parts.join(", "));
        }
    }
    for r in rows.iter().filter(|r| r.last_error.is_some()) {
        outln!(
            "{}: {}",
            r.name,
            r.last_error.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

/// `5.9 MiB / 64M`: use against limit (`-` for an unknown use).
fn with_limit(used: Option<String>, limit: Option<String>) -> String {
    let used = used.unwrap_or_else(|| "-".into());
    match limit {
        Some(l) => format!("{used} / {l}"),
        None => used,
    }
}

fn describe_exit(e: &serde_json::Value) -> String {
    let ago = e["at"]
        .as_u64()
        .map(|at| format_uptime(now_ms().saturating_sub(at)));
    let what = match (e.get("code"), e.get("signal"), e.get("reason")) {
        (Some(c), ..) => format!("code {c}"),
        (None, Some(s), _) | (None, None, Some(s)) => s.as_str().unwrap_or("?").to_string(),
        _ => "?".into(),
    };
    match ago {
        Some(a) => format!("{what} ({a} ago)"),
        None => what,
    }
}

/// CPU and memory of gateways' process trees. Each [`Sampler::fill`]
/// refreshes every process once: CPU % is over the time since the previous
/// refresh (the CLI waits `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` after
/// [`Sampler::new`]; the dashboard samples once a second).
pub struct Sampler {
    sys: Option<sysinfo::System>,
}

impl Sampler {
    /// Takes the first sample.
    pub fn new() -> Self {
        let mut s = Self {
            sys: sysinfo::System::new().ok(),
        };
        s.refresh();
        s
    }

    fn refresh(&mut self) {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate};
        // Threads are listed as processes of their own unless told
        // otherwise: they would count their process's memory once per thread.
        let kind = ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .without_tasks();
        if let Some(sys) = &mut self.sys {
            sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        }
    }

    /// Refreshes, then fills CPU % and memory of every row with a gateway
    /// pid: the gateway and its descendants (tasks and open files too where
    /// those are limited).
    pub fn fill(&mut self, rows: &mut [StatusRow]) {
        use sysinfo::Pid;
        self.refresh();
        let Some(sys) = &self.sys else { return };
        let procs = sys.processes();
        // Each process counts for the row of its nearest gateway ancestor:
        // one walk up per process, whatever the number of rows.
        let roots: std::collections::HashMap<Pid, usize> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((Pid::from_u32(r.pid?), i)))
            .filter(|(pid, _)| procs.contains_key(pid))
            .collect();
        let mut sums = vec![(0.0f32, 0u64); rows.len()];
        for (pid, p) in procs {
            let mut at = *pid;
            for _ in 0..64 {
                if let Some(&i) = roots.get(&at) {
                    sums[i].0 += p.cpu_usage();
                    sums[i].1 += p.memory();
                    break;
                }
                match procs.get(&at).and_then(|q| q.parent()) {
                    Some(parent) => at = parent,
                    None => break,
                }
            }
        }
        for &i in roots.values() {
            rows[i].cpu_percent = Some((sums[i].0 * 10.0).round() / 10.0);
            rows[i].memory_bytes = Some(sums[i].1);
            if let Some(pid) = rows[i].pid {
                if rows[i].limits.tasks_max.is_some() {
                    rows[i].tasks = Some(crate::enforce::tree_tasks(pid));
                }
                if rows[i].limits.nofile.is_some() {
                    rows[i].open_files = crate::enforce::open_files(pid);
                }
            }
        }
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

/// `512 KiB`, `5.9 MiB`, `1.2 GiB`.
pub fn format_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if f < K * K {
        format!("{:.0} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / (K * K))
    } else {
        format!("{:.1} GiB", f / (K * K * K))
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub fn format_uptime(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_formats() {
        use super::format_uptime as f;
        assert_eq!(f(999), "0s");
        assert_eq!(f(12_000), "12s");
        assert_eq!(f(250_000), "4m 10s");
        assert_eq!(f(7_500_000), "2h 5m");
        assert_eq!(f(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(super::format_bytes(512 * 1024), "512 KiB");
        assert_eq!(super::format_bytes(6_186_598), "5.9 MiB");
    }
}
