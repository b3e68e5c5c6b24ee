//! The contract between `openclawctl` and `openclaw gateway`: env var names,
//! exit codes, file names and the health probe bodies. The supervisor knows
//! the gateway only through these and the gateway's argv.

/// Exit code for configuration errors and lock or port conflicts
/// (`EX_CONFIG`). systemd units carry `RestartPreventExitStatus=78`.
pub const EX_CONFIG: i32 = 78;

/// `OPENCLAW_HOME`: overrides the home directory for every OpenClaw path.
pub const ENV_HOME: &str = "OPENCLAW_HOME";
/// `OPENCLAW_PROFILE`: the active profile when `--profile` is not given.
pub const ENV_PROFILE: &str = "OPENCLAW_PROFILE";
/// `OPENCLAW_STATE_DIR`: the profile's state directory.
pub const ENV_STATE_DIR: &str = "OPENCLAW_STATE_DIR";
/// `OPENCLAW_CONFIG_PATH`: the profile's `openclaw.json`.
pub const ENV_CONFIG_PATH: &str = "OPENCLAW_CONFIG_PATH";
/// `OPENCLAW_GATEWAY_PORT`: the gateway's base port.
pub const ENV_GATEWAY_PORT: &str = "OPENCLAW_GATEWAY_PORT";
/// `OPENCLAW_GATEWAY_TOKEN`: shared-secret token auth.
pub const ENV_GATEWAY_TOKEN: &str = "OPENCLAW_GATEWAY_TOKEN";
/// `OPENCLAW_GATEWAY_PASSWORD`: shared-secret password auth.
pub const ENV_GATEWAY_PASSWORD: &str = "OPENCLAW_GATEWAY_PASSWORD";
/// `OPENCLAW_SUPERVISOR_MODE`: `external` when another supervisor owns the
/// gateway's lifecycle.
pub const ENV_SUPERVISOR_MODE: &str = "OPENCLAW_SUPERVISOR_MODE";

/// Name of the config file inside a state dir.
pub const CONFIG_FILE_NAME: &str = "openclaw.json";
/// The default gateway port.
pub const DEFAULT_GATEWAY_PORT: u16 = 18789;

/// Response header of every probe answer (`/health[z]`, `/ready[z]`): the
/// answering gateway's pid.
pub const HEADER_PID: &str = "x-openclaw-pid";
/// Response header of every probe answer: the answering gateway's
/// [`instance_id`], so a supervisor accepts only its own gateway's answer.
pub const HEADER_INSTANCE: &str = "x-openclaw-instance";
/// Response header of every probe answer: the answering gateway's profile.
pub const HEADER_PROFILE: &str = "x-openclaw-profile";

/// The identity of the gateway that owns `state_dir`: the first 16 hex
/// digits of the SHA-256 of its canonical path (the path itself is not
/// shown to whoever can reach the port).
pub fn instance_id(state_dir: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let real = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    Sha256::digest(real.as_os_str().as_encoded_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Body of a live `/health` and `/healthz` answer.
pub const HEALTHZ_BODY: &str = r#"{"ok":true,"status":"live"}"#;

/// Name of the gateway's stdout/stderr capture inside `<stateDir>/logs/`
/// when `openclawctl` runs it.
pub const SUPERVISED_LOG_FILE: &str = "gateway.log";

/// `OPENCLAWCTL_LIFELINE=stdin`: set by `openclawctl`'s keeper on the
/// gateway it runs. The gateway then treats end-of-file on stdin (the
/// keeper's end of a pipe) as a stop request, so a keeper that dies,
/// even by SIGKILL, never leaves its gateway running unsupervised.
pub const ENV_LIFELINE: &str = "OPENCLAWCTL_LIFELINE";

/// The gateway's device store under the state dir: `devices/pending.json`
/// and `devices/paired.json`.
pub const DEVICE_STORE_FILES: [&str; 2] = ["devices/pending.json", "devices/paired.json"];

/// Suffix of a state file the gateway could not read and moved aside
/// (`paired.json.corrupt-<ms>`), instead of overwriting it.
pub const CORRUPT_SUFFIX: &str = ".corrupt-";
