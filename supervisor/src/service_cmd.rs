//! `openclawctl service install|uninstall|status|render`: each profile as a
//! systemd user unit (Linux) or launchd agent (macOS), through
//! `openclaw-service-templates`. While a profile's service is installed,
//! the service manager owns it: `start`, `stop`, `restart` and `status` go
//! through it, and no keeper runs it.

use openclaw_profiles::{out, outln};
use std::time::Duration;

use openclaw_profiles::lock::now_ms;
use openclaw_profiles::paths::ProfilePaths;
use openclaw_service_templates::native::{Native, spec_for};
use openclaw_service_templates::scan::{self, FoundService, Scope};
use openclaw_service_templates::systemd::{Outcome, UnitStatus};
use openclaw_service_templates::{ServiceSpec, label, unit_name};
use serde::Serialize;

use crate::context::Context;
use crate::facts::{self, configured_port};
use crate::launch::gateway_binary;
use crate::lifecycle::wait_until;
use crate::{CmdResult, Failure, probe};

/// The profile name as the service files spell it (`None` = default).
pub fn service_profile(paths: &ProfilePaths) -> Option<&str> {
    (!paths.profile.is_default()).then(|| paths.profile.as_str())
}

/// The user's service manager.
pub fn native(ctx: &Context) -> Native {
    Native::for_user(&ctx.env, ctx.registry.home())
}

/// The spec `install` would use for `paths`.
pub fn spec(ctx: &Context, paths: &ProfilePaths) -> Result<ServiceSpec, Failure> {
    let port = configured_port(paths)
        .map_err(|e| Failure::conflict(format!("profile `{}`: {e}", paths.profile)))?;
    Ok(spec_for(
        paths,
        ctx.registry.home(),
        &gateway_binary(&ctx.env),
        port,
    ))
}

/// `service render --target systemd|launchd`.
pub fn render(ctx: &Context, name: &str, target: &str) -> CmdResult {
    let paths = ctx.known_profile(name)?;
    let spec = spec(ctx, &paths)?;
    let text = match target {
        "systemd" => openclaw_service_templates::render::systemd_unit(&spec),
        "launchd" => openclaw_service_templates::render::launchd_plist(&spec),
        other => {
            return Err(Failure::usage(format!(
                "unknown target `{other}`: use systemd or launchd"
            )));
        }
    };
    if crate::report::json() {
        let path = native(ctx).service_path(service_profile(&paths));
        let doc = serde_json::json!({
            "profile": paths.profile.as_str(),
            "target": target,
            "path": if target == native(ctx).kind.as_str() { Some(path.display().to_string()) } else { None },
            "text": text,
        });
        outln!("{doc:#}");
    } else {
        out!("{text}");
    }
    Ok(())
}

/// `service install a b | --profile a | --all [--force]`: each profile in
/// turn; the worst failure decides the exit code.
pub fn install_all(ctx: &Context, names: &[String], force: bool) -> CmdResult {
    crate::lifecycle::report_failures(
        names
            .iter()
            .filter_map(|n| install(ctx, n, force).err())
            .collect(),
    )
}

/// `service uninstall a b | --profile a | --all`.
pub fn uninstall_all(ctx: &Context, names: &[String]) -> CmdResult {
    crate::lifecycle::report_failures(
        names
            .iter()
            .filter_map(|n| uninstall(ctx, n).err())
            .collect(),
    )
}

/// `service install --profile p [--force]`. A profile running under a
/// keeper is handed over: its keeper stops it, then the service manager
/// starts it (the gateway is down for that moment only).
pub fn install(ctx: &Context, name: &str, force: bool) -> CmdResult {
    let paths = ctx.known_profile(name)?;
    let facts = facts::gather(&paths);
    // Check everything that can refuse before stopping anything.
    let spec = spec(ctx, &paths)?;
    let native = native(ctx);
    let handed_over = if facts.supervised {
        crate::lifecycle::stop_keeper(&paths, crate::lifecycle::DEFAULT_STOP_TIMEOUT)?;
        true
    } else {
        false
    };
    let facts = facts::gather(&paths);
    if let facts::Holder::Known(o) = &facts.holder
        && !native.is_installed(service_profile(&paths))
    {
        return Err(Failure::conflict(format!(
            "profile `{name}`: a gateway not run by a service holds its state dir ({}); stop it first",
            openclaw_profiles::process::describe(o.pid)
        )));
    }
    let dotenv = std::fs::read_to_string(paths.state_dir.join(".env")).ok();
    let _ = openclaw_profiles::atomic::create_private_dir(&paths.logs_dir());
    let (outcome, warnings) = native
        .install(&spec, dotenv.as_deref(), force)
        .map_err(|e| {
            Failure::problem(format!(
                "cannot install the service of profile `{name}`: {e}{}",
                if handed_over {
                    format!(" (its keeper was stopped: `openclawctl start {name}` runs it again)")
                } else {
                    String::new()
                }
            ))
        })?;
    for w in warnings {
        eprintln!("openclawctl: warning: {w}");
    }
    let what = native.service_path(service_profile(&paths));
    let verb = match outcome {
        Outcome::Installed => "installed",
        Outcome::Rewritten => "rewrote",
        Outcome::AlreadyInstalled => "already installed and up to date:",
    };
    if wait_until(Duration::from_secs(30), || {
        probe::is_ready(spec.port, facts::PROBE_TIMEOUT)
    }) {
        crate::report::done(
            format!(
                "{verb} {} ({}){}; profile `{name}` is ready on port {}",
                what.display(),
                native.kind.as_str(),
                if handed_over {
                    ", taken over from openclawctl's keeper"
                } else {
                    ""
                },
                spec.port
            ),
            serde_json::json!({
                "profile": name,
                "result": verb.trim_end_matches(':'),
                "manager": native.kind.as_str(),
                "path": what.display().to_string(),
                "handedOver": handed_over,
                "port": spec.port,
            }),
        );
        Ok(())
    } else {
        Err(Failure::problem(format!(
            "the service of profile `{name}` did not become ready within 30s; see `openclawctl logs {name}` and `openclawctl service status --profile {name}`"
        )))
    }
}

/// Before a (re)start through the service manager: rewrites the unit if
/// the profile changed since install (its port, say), and projects the
/// profile's `.env` into the service's env file again, so that a restart
/// reads everything a fresh start reads.
pub fn refresh(ctx: &Context, paths: &ProfilePaths) -> CmdResult {
    let native = native(ctx);
    let spec = spec(ctx, paths)?;
    let fail = |what: &str, e: std::io::Error| {
        Failure::problem(format!(
            "cannot refresh the service of profile `{}`: {what}: {e}",
            paths.profile
        ))
    };
    if native.kind == openclaw_service_templates::native::Kind::Systemd {
        let dotenv = std::fs::read_to_string(paths.state_dir.join(".env")).unwrap_or_default();
        let env = openclaw_service_templates::render::env_file(
            &openclaw_service_templates::render::parse_dotenv(&dotenv),
        );
        let env_path = spec.systemd_env_file();
        if std::fs::read_to_string(&env_path).ok().as_deref() != Some(env.as_str()) {
            openclaw_profiles::atomic::write_atomic(&env_path, env.as_bytes(), 0o600)
                .map_err(|e| fail("env file", e))?;
        }
    }
    native.rewrite(&spec).map_err(|e| fail("unit", e))?;
    Ok(())
}

/// Stops, disables and removes the service of `paths`, waiting until its
/// gateway let go of the state dir. True if a service was installed.
pub fn remove_service(ctx: &Context, paths: &ProfilePaths) -> Result<bool, Failure> {
    let native = native(ctx);
    let existed = native.uninstall(service_profile(paths)).map_err(|e| {
        Failure::problem(format!(
            "cannot uninstall the service of profile `{}`: {e}",
            paths.profile
        ))
    })?;
    if existed {
        wait_until(Duration::from_secs(30), || {
            facts::gather(paths).holder == facts::Holder::None
        });
    }
    Ok(existed)
}

/// `service uninstall --profile p`.
pub fn uninstall(ctx: &Context, name: &str) -> CmdResult {
    let paths = ctx.known_profile(name)?;
    let what = native(ctx).service_path(service_profile(&paths));
    if remove_service(ctx, &paths)? {
        crate::report::done(
            format!(
                "uninstalled {} (the state dir {} is kept)",
                what.display(),
                paths.state_dir.display()
            ),
            serde_json::json!({"profile": name, "result": "uninstalled", "path": what.display().to_string()}),
        );
    } else {
        crate::report::done(
            format!("profile `{name}` has no installed service"),
            serde_json::json!({"profile": name, "result": "not installed"}),
        );
    }
    Ok(())
}

/// One row of `service status --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceRow {
    profile: String,
    manager: &'static str,
    name: String,
    path: String,
    installed: bool,
    enabled: bool,
    active: bool,
    state: String,
    pid: Option<u32>,
    restarts: u32,
    last_exit: Option<serde_json::Value>,
    drifted: bool,
}

/// One problem found by the scan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanIssue {
    problem: &'static str,
    name: String,
    path: String,
    scope: &'static str,
    profile: Option<String>,
    detail: String,
    hint: String,
}

/// `lastExit` JSON from a unit status (`at` from the monotonic clock).
pub fn last_exit_json(s: &UnitStatus) -> Option<serde_json::Value> {
    let at = s.last_exit_monotonic_us.map(|mono| {
        let uptime_ms = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0, |secs| (secs * 1000.0) as u64);
        now_ms().saturating_sub(uptime_ms) + mono / 1000
    });
    let mut v = match (s.last_exit_code, s.last_exit_signal) {
        (Some(c), _) => serde_json::json!({ "code": c }),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map_or_else(|_| format!("SIG{sig}"), |s| s.as_str().to_string());
            serde_json::json!({ "signal": name })
        }
        _ => return None,
    };
    v["at"] = at.map_or(serde_json::Value::Null, serde_json::Value::from);
    Some(v)
}

fn hint_for(s: &FoundService) -> String {
    let path = s.path.display();
    match (s.scope, s.name.ends_with(".service")) {
        (Scope::User, true) => format!("systemctl --user disable --now {} && rm {path}", s.name),
        (Scope::System, true) => {
            format!("sudo systemctl disable --now {} && sudo rm {path}", s.name)
        }
        (Scope::User, false) => format!("launchctl bootout gui/$UID/{} && rm {path}", s.name),
        (Scope::System, false) => {
            format!("sudo launchctl bootout system/{} && sudo rm {path}", s.name)
        }
    }
}

/// Classifies the services found: stale (unknown profile, missing binary,
/// legacy name) and duplicated (two files for one profile).
fn scan_issues(ctx: &Context, found: &[FoundService]) -> Vec<ScanIssue> {
    let known: Vec<String> = ctx
        .registry
        .list()
        .into_iter()
        .map(|k| k.paths.profile.to_string())
        .collect();
    let is_known = |p: &Option<String>| {
        known
            .iter()
            .any(|k| Some(k.as_str()) == p.as_deref().or(Some("default")))
    };
    let mut issues = Vec::new();
    let issue = |problem, s: &FoundService, detail: String| ScanIssue {
        problem,
        name: s.name.clone(),
        path: s.path.display().to_string(),
        scope: if s.scope == Scope::User {
            "user"
        } else {
            "system"
        },
        profile: s.profile.clone(),
        detail,
        hint: hint_for(s),
    };
    for s in found {
        if s.legacy {
            issues.push(issue("stale", s, "legacy clawdbot/moltbot service".into()));
        } else if !is_known(&s.profile) {
            let p = s.profile.as_deref().unwrap_or("default");
            issues.push(issue("stale", s, format!("profile `{p}` does not exist")));
        } else if let Some(prog) = s
            .program
            .as_ref()
            .filter(|p| p.is_absolute() && !p.exists())
        {
            issues.push(issue(
                "stale",
                s,
                format!("binary {} is missing", prog.display()),
            ));
        }
    }
    for (i, a) in found.iter().enumerate() {
        if let Some(b) = found[i + 1..]
            .iter()
            .find(|b| b.profile == a.profile && !a.legacy && !b.legacy)
        {
            let p = a.profile.as_deref().unwrap_or("default");
            issues.push(issue(
                "duplicated",
                b,
                format!(
                    "profile `{p}` also has {} ({})",
                    a.path.display(),
                    if a.scope == Scope::User {
                        "user"
                    } else {
                        "system"
                    }
                ),
            ));
        }
    }
    issues
}

/// `service status [--profile p] [--deep] [--json]`.
pub fn status(ctx: &Context, names: &[String], deep: bool, json: bool) -> CmdResult {
    let native = native(ctx);
    let profiles: Vec<ProfilePaths> = ctx.profiles_or_all(names)?;
    let mut rows = Vec::new();
    for paths in &profiles {
        let sp = service_profile(paths);
        let installed = native.is_installed(sp);
        let status = if installed {
            native.status(sp).ok()
        } else {
            None
        };
        let st = status.clone().unwrap_or_default();
        let drifted = installed
            && spec(ctx, paths).is_ok_and(|s| {
                std::fs::read_to_string(native.service_path(sp))
                    .ok()
                    .as_deref()
                    != Some(native.render(&s).as_str())
            });
        rows.push(ServiceRow {
            profile: paths.profile.to_string(),
            manager: native.kind.as_str(),
            name: native.service_name(sp),
            path: native.service_path(sp).display().to_string(),
            installed,
            enabled: st.unit_file_state == "enabled",
            active: st.active_state == "active",
            state: if installed {
                format!("{}/{}", st.active_state, st.sub_state)
            } else {
                "not installed".into()
            },
            pid: st.main_pid,
            restarts: st.restarts,
            last_exit: last_exit_json(&st),
            drifted,
        });
    }
    let unit_dir = native.unit_dir.clone();
    let found = scan::scan(&scan::scan_dirs(&native.home, &unit_dir, deep));
    let issues = scan_issues(ctx, &found);
    if json {
        let doc = serde_json::json!({ "services": rows, "issues": issues, "deep": deep });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| Failure::usage(e.to_string()))?
        );
        return Ok(());
    }
    for r in &rows {
        if !r.installed {
            outln!("{:<16} not installed", r.profile);
            continue;
        }
        outln!(
            "{:<16} {} {} {}{}{} restarts {}{}",
            r.profile,
            r.name,
            if r.enabled { "enabled" } else { "disabled" },
            r.state,
            r.pid.map_or(String::new(), |p| format!(" pid {p}")),
            r.last_exit.as_ref().map_or(String::new(), |e| format!(
                " last exit {}",
                e.get("code")
                    .or(e.get("signal"))
                    .unwrap_or(&serde_json::Value::Null)
            )),
            r.restarts,
            if r.drifted {
                " DRIFTED (rewrite with `openclawctl service install --force`)"
            } else {
                ""
            }
        );
    }
    if !issues.is_empty() {
        outln!(
            "Other gateway-like services detected{}:",
            if deep {
                ""
            } else {
                " (user dirs; --deep adds system dirs)"
            }
        );
        for i in &issues {
            outln!(
                "  {} {} ({}): {}\n    fix: {}",
                i.problem,
                i.name,
                i.path,
                i.detail,
                i.hint
            );
        }
    }
    Ok(())
}

/// A profile's unit name or label for messages.
pub fn describe_service(native: &Native, paths: &ProfilePaths) -> String {
    let sp = service_profile(paths);
    format!(
        "{} {}",
        native.kind.as_str(),
        match native.kind {
            openclaw_service_templates::native::Kind::Systemd => unit_name(sp),
            openclaw_service_templates::native::Kind::Launchd => label(sp),
        }
    )
}

/// True if a keeper would step on an installed service.
pub fn keeper_must_refuse(
    env: &openclaw_profiles::paths::EnvSnapshot,
    home: &std::path::Path,
    paths: &ProfilePaths,
) -> Option<String> {
    let native = Native::for_user(env, home);
    native.is_installed(service_profile(paths)).then(|| {
        format!(
            "profile `{}` is installed as {}; the service manager runs it (`openclawctl start|stop|restart` go through it; `openclawctl service uninstall --profile {}` hands it back)",
            paths.profile,
            describe_service(&native, paths),
            paths.profile
        )
    })
}
