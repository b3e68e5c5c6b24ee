//! Spawning a profile's gateway detached from the terminal: its own process
//! group (so terminal signals and `stop` reach it and its children as a
//! group), stdin from `/dev/null`, stdout and stderr appended to
//! `<stateDir>/logs/gateway.log`, and exactly the profile's environment.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use openclaw_profiles::atomic::{create_private_dir, open_private_append, write_atomic};
use openclaw_profiles::contract::{ENV_SUPERVISOR_MODE, SUPERVISED_LOG_FILE};
use openclaw_profiles::lock::now_ms;
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};
use openclaw_profiles::registry::child_env;

use crate::Failure;
use crate::facts::{LaunchRecord, launch_record_path};

/// `OPENCLAWCTL_GATEWAY_BIN`: the gateway binary to run.
pub const ENV_GATEWAY_BIN: &str = "OPENCLAWCTL_GATEWAY_BIN";

/// The `openclaw` binary to run: `OPENCLAWCTL_GATEWAY_BIN`, else the
/// `openclaw` next to this executable, else `openclaw` on `PATH`.
pub fn gateway_binary(env: &EnvSnapshot) -> PathBuf {
    if let Some(p) = env.get(ENV_GATEWAY_BIN) {
        return PathBuf::from(p);
    }
    if let Ok(me) = std::env::current_exe()
        && let Some(dir) = me.parent()
    {
        let sibling = dir.join("openclaw");
        if sibling.is_file() {
            return sibling;
        }
    }
    PathBuf::from("openclaw")
}

/// The log file a supervised gateway writes to.
pub fn log_path(paths: &ProfilePaths) -> PathBuf {
    paths.logs_dir().join(SUPERVISED_LOG_FILE)
}

/// Spawns the gateway for `paths` on `port` and records the launch.
pub fn spawn_gateway(env: &EnvSnapshot, paths: &ProfilePaths, port: u16) -> Result<Child, Failure> {
    let bin = gateway_binary(env);
    create_private_dir(&paths.logs_dir()).map_err(|e| {
        Failure::problem(format!("cannot create {}: {e}", paths.logs_dir().display()))
    })?;
    let log = log_path(paths);
    let out = open_private_append(&log)
        .map_err(|e| Failure::problem(format!("cannot open {}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| Failure::problem(format!("cannot open {}: {e}", log.display())))?;

    let mut child_vars = child_env(env, paths);
    // We own this gateway's lifecycle (supervisor spec §4.4).
    child_vars.set(ENV_SUPERVISOR_MODE, "external");
    child_vars.set("OPENCLAW_SERVICE_REPAIR_POLICY", "external");

    let mut cmd = Command::new(&bin);
    if !paths.profile.is_default() {
        cmd.args(["--profile", paths.profile.as_str()]);
    }
    cmd.args(["gateway", "run", "--port", &port.to_string()])
        .env_clear()
        .envs(child_vars.iter())
        .current_dir(existing_dir(&paths.state_dir))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let child = cmd.spawn().map_err(|e| {
        Failure::usage(format!(
            "cannot run gateway binary {}: {e}; build it with `cargo build --release` or set {ENV_GATEWAY_BIN}",
            bin.display()
        ))
    })?;
    let record = LaunchRecord {
        pid: child.id(),
        start_time: openclaw_profiles::process::start_time(child.id()),
        started_at: now_ms(),
    };
    let rec_path = launch_record_path(paths);
    if let Some(dir) = rec_path.parent() {
        let _ = create_private_dir(dir);
    }
    let json = serde_json::to_vec_pretty(&record).expect("launch record serializes");
    write_atomic(&rec_path, &json, 0o600)
        .map_err(|e| Failure::problem(format!("cannot write {}: {e}", rec_path.display())))?;
    Ok(child)
}

fn existing_dir(dir: &Path) -> &Path {
    if dir.is_dir() { dir } else { Path::new("/") }
}

/// The last `n` lines of a file (empty if unreadable).
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
