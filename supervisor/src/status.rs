//! `openclawctl status`: every profile at a glance, as a table or as the
//! `--json` document `cli.md` defines.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use openclaw_profiles::lock::now_ms;
use openclaw_profiles::paths::ProfilePaths;
use openclaw_profiles::ports::is_port_free;
use serde::Serialize;

use crate::context::Context;
use crate::facts::{self, Facts, Holder};
use crate::{CmdResult, Failure};

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
    state_dir: String,
    config_path: String,
}

#[derive(Debug, Serialize)]
struct StatusDoc {
    profiles: Vec<StatusRow>,
}

/// Builds the row for one profile from its facts.
pub fn row(facts: &Facts) -> StatusRow {
    let (state, managed_by, pid, uptime) = match &facts.holder {
        Holder::Known(o) => (
            if facts.live { "running" } else { "starting" },
            if facts.launched_by_us {
                "openclawctl"
            } else {
                "external"
            },
            Some(o.pid),
            Some(now_ms().saturating_sub(o.created_at)),
        ),
        Holder::Unknown => (
            if facts.live { "running" } else { "starting" },
            "external",
            None,
            None,
        ),
        Holder::None => {
            // Stopped, but something else holds its port: it cannot start.
            let blocked = facts.port.as_ref().is_ok_and(|p| !is_port_free(*p));
            (
                if blocked { "conflict" } else { "stopped" },
                "none",
                None,
                None,
            )
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
        // Nothing restarts gateways yet (no keeper process), and exits of a
        // detached gateway are not observed: both are reported as unknown
        // history, i.e. zero restarts and no last exit.
        restarts: 0,
        last_exit: None,
        state_dir: facts.paths.state_dir.display().to_string(),
        config_path: facts.paths.config_path.display().to_string(),
    }
}

/// `openclawctl status [--profile ...] [--json]`.
pub fn status(ctx: &Context, names: &[String], json: bool) -> CmdResult {
    let profiles: Vec<ProfilePaths> = if names.is_empty() {
        ctx.registry.list().into_iter().map(|k| k.paths).collect()
    } else {
        names
            .iter()
            .map(|n| ctx.known_profile(n))
            .collect::<Result<_, _>>()?
    };
    let rows: Vec<StatusRow> = profiles.iter().map(|p| row(&facts::gather(p))).collect();
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
            "-".to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
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
