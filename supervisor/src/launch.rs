//! Spawning processes: the keeper (`openclawctl keep --profile p`, detached,
//! silent) and, from the keeper, the gateway (its own process group, the
//! profile's exact environment, stdin as the lifeline, output piped back to
//! the keeper for the rotating log).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use openclaw_profiles::contract::{ENV_LIFELINE, ENV_SUPERVISOR_MODE, SUPERVISED_LOG_FILE};
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};
use openclaw_profiles::registry::child_env;

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

/// The log file a supervised gateway's output goes to.
pub fn log_path(paths: &ProfilePaths) -> PathBuf {
    paths.logs_dir().join(SUPERVISED_LOG_FILE)
}

/// `OPENCLAWCTL_KEEPER_PROFILE`: the profile a keeper keeps, resolved by
/// the `openclawctl` that spawned it (JSON), so that a resident keeper
/// never loads the registry: parsing a thousand profiles would leave it
/// holding the memory for as long as it lives.
pub const ENV_KEEPER_PROFILE: &str = "OPENCLAWCTL_KEEPER_PROFILE";

/// What [`ENV_KEEPER_PROFILE`] carries.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeeperProfile {
    name: String,
    state_dir: PathBuf,
    config_path: PathBuf,
    ports: openclaw_profiles::ports::PortPlan,
    limits: openclaw_profiles::limits::Limits,
}

impl KeeperProfile {
    /// The resolved profile.
    pub fn of(paths: &ProfilePaths) -> Self {
        Self {
            name: paths.profile.to_string(),
            state_dir: paths.state_dir.clone(),
            config_path: paths.config_path.clone(),
            ports: paths.ports,
            limits: paths.limits,
        }
    }

    fn to_env(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The profile `name` from the environment a keeper was spawned with,
    /// when it is there and names that profile.
    pub fn from_env(env: &EnvSnapshot, name: &str) -> Option<ProfilePaths> {
        let p: Self = serde_json::from_str(env.get(ENV_KEEPER_PROFILE)?).ok()?;
        (p.name == name).then_some(())?;
        Some(ProfilePaths {
            profile: openclaw_profiles::ProfileName::parse(&p.name).ok()?,
            state_dir: p.state_dir,
            config_path: p.config_path,
            ports: p.ports,
            limits: p.limits,
        })
    }
}

/// Spawns the keeper of `profile`: `openclawctl-keeper --profile <name>`
/// from beside this executable (a small binary: keepers stay resident),
/// else `openclawctl keep --profile <name>`. No terminal; stdout goes
/// nowhere (the keeper writes its own log); stderr goes to `stderr` when
/// given (so `start` can say why a keeper could not even open its log);
/// our environment; no descriptor of ours beyond 0–2 (Rust opens every file
/// close-on-exec, and the keeper closes the rest at start).
pub fn spawn_keeper(
    env: &EnvSnapshot,
    paths: &ProfilePaths,
    stderr: Option<std::fs::File>,
) -> std::io::Result<Child> {
    let profile = paths.profile.as_str();
    let me = std::env::current_exe()?;
    let small = me.with_file_name("openclawctl-keeper");
    let mut cmd = if small.is_file() {
        Command::new(small)
    } else {
        let mut c = Command::new(me);
        c.arg("keep");
        c
    };
    cmd.args(["--profile", profile])
        .env_clear()
        .envs(env.iter())
        .env(ENV_KEEPER_PROFILE, KeeperProfile::of(paths).to_env())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.map_or_else(Stdio::null, Stdio::from))
        .spawn()
}

/// The command that runs a profile's gateway under a keeper. With a
/// `cgroup` (the tenant's cgroup v2 directory) the gateway joins it before
/// it runs: `/bin/sh` moves itself there (`echo 0 > cgroup.procs`), then
/// execs the gateway, so no child of the gateway starts outside it.
pub fn gateway_command(
    env: &EnvSnapshot,
    paths: &ProfilePaths,
    port: u16,
    cgroup: Option<&Path>,
) -> Command {
    let mut vars = child_env(env, paths);
    // We own this gateway's lifecycle (supervisor spec §4.4).
    vars.set(ENV_SUPERVISOR_MODE, "external");
    vars.set("OPENCLAW_SERVICE_REPAIR_POLICY", "external");
    vars.set(ENV_LIFELINE, "stdin");
    if !paths.ports.is_full() {
        vars.set(
            openclaw_profiles::ports::ENV_PORT_PLAN,
            paths.ports.as_str(),
        );
    }
    let mut cmd = match cgroup {
        Some(dir) => {
            let mut sh = Command::new("/bin/sh");
            sh.args(["-c", "echo 0 > \"$0\" && exec \"$@\""])
                .arg(dir.join("cgroup.procs"))
                .arg(gateway_binary(env));
            sh
        }
        None => Command::new(gateway_binary(env)),
    };
    if !paths.profile.is_default() {
        cmd.args(["--profile", paths.profile.as_str()]);
    }
    cmd.args(["gateway", "run", "--port", &port.to_string()])
        .env_clear()
        .envs(vars.iter())
        .current_dir(existing_dir(&paths.state_dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd
}

fn existing_dir(dir: &Path) -> &Path {
    if dir.is_dir() { dir } else { Path::new("/") }
}
