//! `openclawctl status`: every profile at a glance, as a table or as the
//! `--json` document `cli.md` defines.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use openclaw_profiles::lock::now_ms;
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
    name: String,
    state: &'static str,
    managed_by: &'static str,
    pid: Option<u32>,
    port: Option<u16>,
    healthy: bool,
    uptime_ms: Option<u64>,
    restarts: u32,
    last_exit: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    state_dir: String,
    config_path: String,
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
            v
        }),
        last_error: rec
            .filter(|r| matches!(r.state, State::Failed | State::Conflict))
            .and_then(|r| r.last_error.clone()),
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
        last_error: None,
        state_dir: facts.paths.state_dir.display().to_string(),
        config_path: facts.paths.config_path.display().to_string(),
    }
}

/// `openclawctl status [--profile ...] [--json]`.
pub fn status(ctx: &Context, names: &[String], json: bool) -> CmdResult {
    let profiles: Vec<ProfilePaths> = ctx.profiles_or_all(names)?;
    let native = service_cmd::native(ctx);
    let rows: Vec<StatusRow> = profiles
        .iter()
        .map(|p| {
            let facts = facts::gather(p);
            let sp = service_cmd::service_profile(p);
            if native.is_installed(sp) {
                service_row(
                    &facts,
                    native.kind.as_str(),
                    &native.status(sp).unwrap_or_default(),
                )
            } else {
                row(&facts)
            }
        })
        .collect();
    if json {
        let doc = StatusDoc { profiles: rows };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| Failure::usage(e.to_string()))?
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("no profiles yet: create one with `openclawctl profile create <name>`");
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
            r.last_exit.as_ref().map_or("-".into(), describe_exit),
        ]);
    }
    println!("{table}");
    for r in rows.iter().filter(|r| r.last_error.is_some()) {
        println!(
            "{}: {}",
            r.name,
            r.last_error.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

fn describe_exit(e: &serde_json::Value) -> String {
    let ago = e["at"]
        .as_u64()
        .map(|at| format_uptime(now_ms().saturating_sub(at)));
    let what = match (e.get("code"), e.get("signal")) {
        (Some(c), _) => format!("code {c}"),
        (None, Some(s)) => s.as_str().unwrap_or("?").to_string(),
        _ => "?".into(),
    };
    match ago {
        Some(a) => format!("{what} ({a} ago)"),
        None => what,
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
    }
}
