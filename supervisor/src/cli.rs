//! The command line of `openclawctl` (clap derive, the "low" layer).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run many isolated OpenClaw gateways on one host, one per profile.
#[derive(Debug, Parser)]
#[command(name = "openclawctl", version, about, propagate_version = true)]
pub struct Cli {
    /// Print one JSON document on stdout (errors too: `error`, `code`, `exitCode`).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list and show profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Start profiles' gateways and wait until they are ready.
    Start(StartArgs),
    /// Stop profiles' gateways (SIGTERM to the process group, then SIGKILL).
    Stop(StopArgs),
    /// Restart profiles' gateways (a fresh gateway; backoff and crash-loop counters reset).
    Restart(StartArgs),
    /// Show every profile's state.
    Status(StatusArgs),
    /// Show a profile's gateway log.
    Logs(LogsArgs),
    /// Find conflicts between profiles (ports, state dirs, tokens, services, locks, permissions).
    Doctor(DoctorArgs),
    /// Install profiles as OS services (systemd user units, launchd agents).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Every profile at a glance in a browser: state, health, CPU and
    /// memory with a minute of history, last log lines, doctor findings,
    /// start/stop/restart. Loopback only; the printed address carries the token.
    Dashboard {
        /// Port on 127.0.0.1 (0: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Write profiles out for another engine (Kubernetes manifests).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Run the keeper of one profile (started by `start`; not for direct use).
    #[command(hide = true)]
    Keep {
        /// The profile to keep running.
        #[arg(long)]
        profile: String,
    },
}

/// `openclawctl doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only findings involving these profiles (repeatable; host-wide findings too).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Repair what is safe (stale locks, permissions, drifted units of stopped services).
    #[arg(long)]
    pub fix: bool,
    /// Do not ask before each repair.
    #[arg(long, requires = "fix")]
    pub yes: bool,
    /// Also scan system-wide service dirs.
    #[arg(long)]
    pub deep: bool,
    /// Lint Kubernetes manifests in DIR instead (what a schema cannot see:
    /// one writer, no secret in a ConfigMap, ports that agree, probes).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["fix", "deep", "profiles"])]
    pub kubernetes: Option<PathBuf>,
}

/// `openclawctl export ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// One namespace per profile: a single-replica StatefulSet, a
    /// ReadWriteOncePod claim, a Secret (tokens), a ConfigMap seed, a
    /// ClusterIP Service, a NetworkPolicy, kustomization.yaml files.
    Kubernetes {
        /// Profiles to export.
        #[command(flatten)]
        targets: Targets,
        /// Directory to write (created; files in it are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The gateway image.
        #[arg(long, default_value = "openclaw-gateway:latest")]
        image: String,
        /// Size of each state claim.
        #[arg(long, default_value = "1Gi")]
        storage: String,
    },
    /// Per profile: the systemd user unit, its config and env file, and an
    /// install.sh for a host without openclawctl (Ansible-style rollouts).
    Systemd {
        /// Profiles to export.
        #[command(flatten)]
        targets: Targets,
        /// Directory to write (created; files in it are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The `openclaw` binary on the target host.
        #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/openclaw")]
        binary: PathBuf,
        /// The user's home on the target host (default: this one); state
        /// dirs under this home move under it.
        #[arg(long, value_name = "DIR")]
        home: Option<PathBuf>,
    },
}

/// `openclawctl service ...`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the profile's unit (or plist), enable and start it; a profile
    /// running under a keeper is handed over (keeper stopped, service started).
    Install {
        /// Profiles to install.
        #[command(flatten)]
        targets: Targets,
        /// Rewrite an installed unit that differs from what would be written now.
        #[arg(long)]
        force: bool,
    },
    /// Stop, disable and remove the profile's service (the state dir stays).
    Uninstall {
        /// Profiles to uninstall.
        #[command(flatten)]
        targets: Targets,
    },
    /// Installed/enabled/active/pid/last exit per profile, and other gateway services found.
    Status {
        /// Only these profiles (repeatable).
        #[arg(long = "profile", value_name = "NAME")]
        profiles: Vec<String>,
        /// Also scan system-wide unit and daemon dirs.
        #[arg(long)]
        deep: bool,
    },
    /// Print exactly what `install` would write.
    Render {
        /// The profile.
        #[arg(long, value_name = "NAME")]
        profile: String,
        /// systemd or launchd.
        #[arg(long, value_parser = ["systemd", "launchd"])]
        target: String,
    },
}

/// `openclawctl logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Profiles (default: all, interleaved by time, each line prefixed).
    #[arg(value_name = "PROFILE")]
    pub names: Vec<String>,
    /// A profile (repeatable; same as naming it).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Lines to show.
    #[arg(short = 'n', long = "lines", default_value_t = 50)]
    pub lines: usize,
    /// Keep printing new lines.
    #[arg(short, long)]
    pub follow: bool,
}

/// `openclawctl profile ...`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Create a profile: state dir (0700), config with a generated token, a free port range.
    Create {
        /// Profile name (letters, digits, `_`, `-`).
        name: String,
        /// Base port (default: the first free range from 18789 in steps of 111).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// State dir (default ~/.openclaw-NAME).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Config file (default STATE_DIR/openclaw.json).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Port plan: `full` (OpenClaw's: base..base+110, browser CDP ports
        /// included) or `compact` (base, +1, +2, +4: no browser; a thousand
        /// profiles fit).
        #[arg(long, default_value = "full", value_name = "PLAN")]
        ports: openclaw_profiles::ports::PortPlan,
        /// Resource limits.
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List known profiles (created here or by `openclaw --profile`).
    List,
    /// Forget a profile (its files stay unless --purge --force).
    Rm {
        /// Profile name.
        name: String,
        /// Also delete the state dir (and a config kept outside it).
        #[arg(long)]
        purge: bool,
        /// Confirm --purge.
        #[arg(long, requires = "purge")]
        force: bool,
    },
    /// Show one profile.
    Show {
        /// Profile name.
        name: String,
    },
    /// Change one setting in the profile's config (comments kept), or its
    /// limits (`--memory-max 256M`, or KEY `memory-max`); `restart` applies it.
    Set {
        /// Profile name.
        name: String,
        /// gateway.port, gateway.bind, gateway.auth.mode, or a limit
        /// (memory-max, cpu-quota, tasks-max, nofile).
        #[arg(requires = "value", required_unless_present_any = ["memory_max", "cpu_quota", "tasks_max", "nofile"])]
        key: Option<String>,
        /// The new value (`none` removes a limit).
        value: Option<String>,
        /// Resource limits.
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// Per-tenant resource limits, enforced by systemd (an installed service)
/// or the keeper (rlimits; a cgroup v2 sub-group when delegated, else a
/// memory watchdog). `none` removes one.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Memory of the gateway's process tree (systemd `MemoryMax=`): bytes
    /// with K, M, G or T, e.g. 256M. Over it, the gateway is killed and
    /// restarted under the normal policy.
    #[arg(long, value_name = "SIZE")]
    pub memory_max: Option<String>,
    /// CPU time as % of one core (systemd `CPUQuota=`), e.g. 50%.
    #[arg(long, value_name = "PERCENT")]
    pub cpu_quota: Option<String>,
    /// Processes and threads of the tree (systemd `TasksMax=`).
    #[arg(long, value_name = "N")]
    pub tasks_max: Option<String>,
    /// Open files per process (systemd `LimitNOFILE=`).
    #[arg(long, value_name = "N")]
    pub nofile: Option<String>,
}

impl LimitArgs {
    /// The limits given, by kind.
    pub fn given(&self) -> Vec<(openclaw_profiles::limits::Kind, String)> {
        use openclaw_profiles::limits::Kind;
        [
            (Kind::Memory, &self.memory_max),
            (Kind::Cpu, &self.cpu_quota),
            (Kind::Tasks, &self.tasks_max),
            (Kind::Nofile, &self.nofile),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }
}

/// Which profiles a command targets: names, `--profile` (repeatable), or `--all`.
#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// Profiles.
    #[arg(value_name = "PROFILE", conflicts_with = "all")]
    pub names: Vec<String>,
    /// A profile (repeat for several).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Every known profile.
    #[arg(long, conflicts_with = "profiles")]
    pub all: bool,
}

/// `openclawctl start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Profiles to start.
    #[command(flatten)]
    pub targets: Targets,
    /// Seconds to wait for /readyz.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub wait: u64,
    /// Return right after spawning.
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,
    /// On failure, show the log lines before the explaining one too.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `openclawctl stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Profiles to stop.
    #[command(flatten)]
    pub targets: Targets,
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub timeout: u64,
}

/// `openclawctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these profiles (default all).
    #[arg(value_name = "PROFILE")]
    pub names: Vec<String>,
    /// Only this profile (repeatable).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
}
