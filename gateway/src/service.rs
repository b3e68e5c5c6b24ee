//! `openclaw gateway install|uninstall|start|stop|restart|status`: this
//! profile's OS service (systemd user unit or launchd agent), the same
//! files and driver as `openclawctl service ...`.

use openclaw_profiles::config;
use openclaw_profiles::outln;
use openclaw_profiles::paths::{self, EnvSnapshot};
use openclaw_profiles::ports;
use openclaw_service_templates::native::{Native, spec_for};
use openclaw_service_templates::systemd::Outcome;

/// A service command's failure: message and exit code.
pub type Failure = (String, u8);

fn context(
    env: &EnvSnapshot,
) -> Result<(paths::ProfilePaths, std::path::PathBuf, Native), Failure> {
    let paths = paths::resolve_paths(env).map_err(|e| (e.to_string(), 2))?;
    let home = paths::resolve_home(env).map_err(|e| (e.to_string(), 2))?;
    let native = Native::for_user(env, &home);
    Ok((paths, home, native))
}

fn profile_of(p: &paths::ProfilePaths) -> Option<&str> {
    (!p.profile.is_default()).then(|| p.profile.as_str())
}

/// `openclaw gateway install [--port N] [--force]`.
pub fn install(env: &EnvSnapshot, port: Option<u16>, force: bool) -> Result<(), Failure> {
    let (paths, home, native) = context(env)?;
    let cfg = config::load_config(&paths.config_path).map_err(|e| (e.to_string(), 78))?;
    let port = ports::resolve_gateway_port(port, env, cfg.and_then(|c| c.gateway.port))
        .map_err(|e| (e.to_string(), 78))?;
    let binary =
        std::env::current_exe().map_err(|e| (format!("cannot find this executable: {e}"), 2))?;
    let spec = spec_for(&paths, &home, &binary, port);
    let dotenv = std::fs::read_to_string(paths.state_dir.join(".env")).ok();
    let _ = openclaw_profiles::atomic::create_private_dir(&paths.logs_dir());
    let (outcome, warnings) = native
        .install(&spec, dotenv.as_deref(), force)
        .map_err(|e| (e.to_string(), 1))?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let path = native.service_path(profile_of(&paths));
    match outcome {
        Outcome::Installed => outln!(
            "Installed {} ({}), port {port}",
            path.display(),
            native.kind.as_str()
        ),
        Outcome::Rewritten => outln!(
            "Rewrote {} ({}), port {port}",
            path.display(),
            native.kind.as_str()
        ),
        Outcome::AlreadyInstalled => outln!("{} is already installed", path.display()),
    }
    Ok(())
}

/// `openclaw gateway uninstall`.
pub fn uninstall(env: &EnvSnapshot) -> Result<(), Failure> {
    let (paths, _, native) = context(env)?;
    let existed = native
        .uninstall(profile_of(&paths))
        .map_err(|e| (e.to_string(), 1))?;
    if existed {
        outln!(
            "Removed {} (state kept in {})",
            native.service_path(profile_of(&paths)).display(),
            paths.state_dir.display()
        );
    } else {
        outln!("No gateway service installed for this profile");
    }
    Ok(())
}

/// `openclaw gateway start|stop|restart`.
pub fn control(env: &EnvSnapshot, verb: &str) -> Result<(), Failure> {
    let (paths, _, native) = context(env)?;
    let sp = profile_of(&paths);
    if !native.is_installed(sp) {
        if verb == "stop" {
            outln!("No gateway service installed for this profile; nothing to stop");
            return Ok(());
        }
        return Err((
            format!(
                "no gateway service installed for this profile: install it with `openclaw{} gateway install`",
                sp.map_or(String::new(), |p| format!(" --profile {p}"))
            ),
            1,
        ));
    }
    native.control(verb, sp).map_err(|e| (e.to_string(), 1))?;
    outln!(
        "{verb}: {} {}",
        native.kind.as_str(),
        native.service_name(sp)
    );
    Ok(())
}

/// This profile's service as a JSON object (for `status --deep`).
pub fn describe(env: &EnvSnapshot) -> serde_json::Value {
    let Ok((paths, _, native)) = context(env) else {
        return serde_json::json!({"installed": false});
    };
    let sp = profile_of(&paths);
    let installed = native.is_installed(sp);
    let st = if installed {
        native.status(sp).unwrap_or_default()
    } else {
        Default::default()
    };
    serde_json::json!({
        "manager": native.kind.as_str(),
        "service": native.service_name(sp),
        "installed": installed,
        "enabled": st.unit_file_state == "enabled",
        "activeState": st.active_state,
        "subState": st.sub_state,
        "pid": st.main_pid,
    })
}

/// Gateway-like services other than this profile's (`--deep`).
fn other_services(native: &Native, own: &std::path::Path, deep: bool) -> Vec<serde_json::Value> {
    use openclaw_service_templates::scan;
    scan::scan(&scan::scan_dirs(&native.home, &native.unit_dir, deep))
        .into_iter()
        .filter(|s| s.path != own)
        .map(|s| {
            serde_json::json!({
                "name": s.name, "path": s.path, "profile": s.profile,
                "system": s.scope == scan::Scope::System, "legacy": s.legacy,
                "programMissing": s.program.as_ref().is_some_and(|p| p.is_absolute() && !p.exists()),
            })
        })
        .collect()
}

/// `openclaw gateway status [--deep] [--json]`.
pub fn status(env: &EnvSnapshot, deep: bool, json: bool) -> Result<(), Failure> {
    let (paths, _, native) = context(env)?;
    let others = other_services(&native, &native.service_path(profile_of(&paths)), deep);
    let sp = profile_of(&paths);
    let installed = native.is_installed(sp);
    let st = if installed {
        native.status(sp).map_err(|e| (e.to_string(), 1))?
    } else {
        Default::default()
    };
    if json {
        let v = serde_json::json!({
            "manager": native.kind.as_str(),
            "service": native.service_name(sp),
            "path": native.service_path(sp),
            "installed": installed,
            "enabled": st.unit_file_state == "enabled",
            "activeState": st.active_state,
            "subState": st.sub_state,
            "pid": st.main_pid,
            "restarts": st.restarts,
            "lastExitCode": st.last_exit_code,
            "otherServices": others,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let print_others = || {
        if !others.is_empty() {
            outln!("Other gateway-like services detected (best effort):");
            for o in &others {
                outln!(
                    "  {} ({})",
                    o["name"].as_str().unwrap_or(""),
                    o["path"].as_str().unwrap_or("")
                );
            }
        }
    };
    if !installed {
        outln!(
            "Service: not installed ({} {})",
            native.kind.as_str(),
            native.service_name(sp)
        );
        print_others();
        return Ok(());
    }
    outln!(
        "Service: {} {} ({})",
        native.kind.as_str(),
        native.service_name(sp),
        st.unit_file_state
    );
    outln!(
        "Runtime: {}/{}{}",
        st.active_state,
        st.sub_state,
        st.main_pid.map_or(String::new(), |p| format!(" (pid {p})"))
    );
    if let Some(c) = st.last_exit_code {
        outln!("Last exit: code {c}");
    }
    print_others();
    Ok(())
}
