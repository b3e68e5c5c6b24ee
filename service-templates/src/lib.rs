//! OS service files for OpenClaw gateway profiles: the systemd user unit
//! and the launchd agent as template files (`templates/`), pure renderers
//! that turn a [`ServiceSpec`] into their exact bytes ([`render`]), and the
//! install driver that writes them and talks to `systemctl --user` or
//! `launchctl` through the [`host::Host`] trait ([`systemd`], [`launchd`]).
//!
//! Names are OpenClaw's, so OpenClaw's own `status`, `doctor` and `--deep`
//! scans treat our services as first-class: `openclaw-gateway.service` /
//! `openclaw-gateway-<p>.service`, labels `ai.openclaw.gateway` /
//! `ai.openclaw.<p>`, with `OPENCLAW_SERVICE_MARKER=openclaw` and
//! `OPENCLAW_SERVICE_KIND=gateway`.

pub mod doctor;
pub mod host;
pub mod kubernetes;
pub mod launchd;
pub mod native;
pub mod probe;
pub mod render;
pub mod scan;
pub mod systemd;

use std::path::PathBuf;

/// Everything a service for one profile is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The profile name; `None` for the default profile.
    pub profile: Option<String>,
    /// Absolute path of the `openclaw` binary the service runs.
    pub binary: PathBuf,
    /// The user's home directory.
    pub home: PathBuf,
    /// The profile's state dir.
    pub state_dir: PathBuf,
    /// The profile's config file.
    pub config_path: PathBuf,
    /// True when state dir and config are OpenClaw's canonical ones for the
    /// profile (then the service derives them from `OPENCLAW_PROFILE`).
    pub canonical_paths: bool,
    /// The gateway port baked into the service.
    pub port: u16,
    /// The profile's port plan (a compact one is passed to the gateway).
    pub ports: openclaw_profiles::ports::PortPlan,
    /// The profile's resource limits (unit lines; Kubernetes resources).
    pub limits: openclaw_profiles::limits::Limits,
}

impl ServiceSpec {
    /// `openclaw-gateway.service` / `openclaw-gateway-<p>.service`.
    pub fn unit_name(&self) -> String {
        unit_name(self.profile.as_deref())
    }

    /// `ai.openclaw.gateway` / `ai.openclaw.<p>`.
    pub fn label(&self) -> String {
        label(self.profile.as_deref())
    }

    /// `OpenClaw Gateway` / `OpenClaw Gateway (profile: p)`.
    pub fn description(&self) -> String {
        match &self.profile {
            None => "OpenClaw Gateway".to_string(),
            Some(p) => format!("OpenClaw Gateway (profile: {p})"),
        }
    }

    /// `<stateDir>/gateway.systemd.env`: the systemd unit's secrets (0600).
    pub fn systemd_env_file(&self) -> PathBuf {
        self.state_dir.join("gateway.systemd.env")
    }

    /// `<stateDir>/logs/gateway.log`: where the unit's output goes.
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("logs").join("gateway.log")
    }

    /// `<stateDir>/service-env/<label>.env`: the launchd agent's secrets.
    pub fn launchd_env_file(&self) -> PathBuf {
        self.state_dir
            .join("service-env")
            .join(format!("{}.env", self.label()))
    }

    /// `<stateDir>/service-env/<label>-env-wrapper.sh`.
    pub fn launchd_wrapper(&self) -> PathBuf {
        self.state_dir
            .join("service-env")
            .join(format!("{}-env-wrapper.sh", self.label()))
    }
}

/// The systemd unit name of a profile (`None` = default).
pub fn unit_name(profile: Option<&str>) -> String {
    match profile {
        None => "openclaw-gateway.service".to_string(),
        Some(p) => format!("openclaw-gateway-{p}.service"),
    }
}

/// The launchd label of a profile (`None` = default).
pub fn label(profile: Option<&str>) -> String {
    match profile {
        None => "ai.openclaw.gateway".to_string(),
        Some(p) => format!("ai.openclaw.{p}"),
    }
}

/// Errors of the install driver.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No user service manager answers.
    #[error(
        "no systemd user manager is running for this user ({detail}); log in with a systemd session, or run `sudo loginctl enable-linger {user}` and `export XDG_RUNTIME_DIR=/run/user/$(id -u)`, then retry"
    )]
    NoUserManager {
        /// What systemctl said.
        detail: String,
        /// The user name for the fix.
        user: String,
    },
    /// A path that a unit or plist cannot hold.
    #[error(
        "{what} {path:?} holds a control character (a newline?): a service file cannot hold it; use a plain path"
    )]
    BadPath {
        /// Which path.
        what: &'static str,
        /// The path, lossily.
        path: String,
    },
    /// An installed file differs from what would be written now.
    #[error("{} is installed but differs from what openclawctl would write now (drifted); rewrite it with --force", .0.display())]
    Drift(PathBuf),
    /// A service manager command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its stderr (or exit status).
        detail: String,
    },
    /// A file could not be written or removed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The profile cannot be installed as a native service on this OS.
    #[error("{0}")]
    Unsupported(String),
}
