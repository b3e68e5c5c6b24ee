//! The command line of the `openclaw` binary (clap derive, the "low"
//! layer). `main` turns these into resolved settings before anything runs.

use clap::{Args, Parser, Subcommand, ValueEnum};
use openclaw_profiles::config::Secret;
use openclaw_profiles::config::{AuthMode, BindMode};

use crate::settings::GatewayFlags;

/// OpenClaw gateway and operator commands (Rust implementation).
#[derive(Debug, Parser)]
#[command(name = "openclaw", version = crate::VERSION, about, propagate_version = true)]
pub struct Cli {
    /// Run as this profile (state dir ~/.openclaw-NAME); also OPENCLAW_PROFILE.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Shortcut for --profile dev (port 19001 unless OPENCLAW_GATEWAY_PORT is set).
    #[arg(long, global = true)]
    pub dev: bool,
    /// More log output (-v debug, -vv trace); `health --verbose` also prints
    /// the whole snapshot. `--debug` is the same.
    #[arg(short, long, visible_alias = "debug", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace (else OPENCLAW_LOG_LEVEL, info).
    #[arg(long, global = true, value_name = "LEVEL",
          value_parser = ["error", "warn", "info", "debug", "trace", "silent"])]
    pub log_level: Option<String>,
    /// No ANSI colours in log output (also NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway in the foreground (`openclaw gateway` = `openclaw gateway run`).
    Gateway(GatewayArgs),
    /// Gateway health (channels, agents, sessions); with --verbose also the
    /// whole health snapshot.
    Health(ConnArgs),
    /// Gateway status summary.
    Status {
        /// Also this profile's OS service and the channels' states (not probed:
        /// this gateway has no channel adapters yet).
        #[arg(long)]
        deep: bool,
        /// Everything there is: the same as --deep here.
        #[arg(long)]
        all: bool,
        /// Connection.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// The gateway's log (over logs.tail).
    Logs {
        /// Lines to show.
        #[arg(short = 'n', long = "limit", default_value_t = 200)]
        lines: usize,
        /// Read at most this many bytes from the end of the log per call.
        #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_bytes: Option<u64>,
        /// Keep printing new lines (reconnects up to 8 times).
        #[arg(short, long)]
        follow: bool,
        /// With --follow: milliseconds between polls (default 500).
        #[arg(long, value_name = "MS", default_value_t = 500)]
        interval: u64,
        /// Lines exactly as the gateway wrote them (the default; no decoration).
        #[arg(long)]
        plain: bool,
        /// Timestamps in UTC, as the gateway writes them (the default).
        #[arg(long)]
        utc: bool,
        /// Connection.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Run an agent turn through the gateway and print the reply.
    Agent(AgentArgs),
    /// Open the gateway's web chat with this profile's token (prints the link).
    Dashboard {
        /// Print the link; do not launch a browser.
        #[arg(long)]
        no_open: bool,
        /// Print the link's parts as JSON (without the token).
        #[arg(long)]
        json: bool,
    },
    /// Conversation sessions of the gateway's agents (`list` by default).
    Sessions(SessionsArgs),
    /// Chat channels.
    Channels {
        /// What to do.
        #[command(subcommand)]
        command: ChannelsCommand,
    },
    /// Paired and pending devices.
    Devices {
        /// list, approve or reject.
        #[arg(value_parser = ["list", "approve", "reject"])]
        action: String,
        /// The request id (approve, reject).
        request_id: Option<String>,
        /// Connection.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Run this host as a node of a gateway.
    Node {
        /// What to do.
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Nodes: devices that run commands for this gateway.
    Nodes {
        /// What to do.
        #[command(subcommand)]
        command: NodesCommand,
        /// Connection.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Pairing requests by code.
    Pairing {
        /// list, approve or reject.
        #[arg(value_parser = ["list", "approve", "reject"])]
        action: String,
        /// `[<channel>] <code>`.
        args: Vec<String>,
        /// Connection.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Find conflicts between this profile and the others on this host.
    Doctor {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Repair what is safe (stale locks, permissions, drifted units of stopped services).
        #[arg(long, visible_alias = "repair")]
        fix: bool,
        /// Repair without asking (implies --fix).
        #[arg(long)]
        yes: bool,
        /// Never ask: repairs happen only with --yes.
        #[arg(long)]
        non_interactive: bool,
        /// Also scan system-wide service dirs.
        #[arg(long)]
        deep: bool,
    },
}

/// How operator commands reach the gateway.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Gateway WebSocket URL (then --token is required); else OPENCLAW_GATEWAY_URL, else this profile's gateway.
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Gateway token.
    #[arg(long, global = true)]
    pub token: Option<Secret>,
    /// Gateway password (instead of a token).
    #[arg(long, global = true)]
    pub password: Option<Secret>,
    /// This profile's gateway on another local port.
    #[arg(long, global = true, conflicts_with = "url")]
    pub port: Option<u16>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Milliseconds connecting, and each call, may take (default 30000).
    #[arg(long, global = true, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

impl ConnArgs {
    /// The ops layer's connection flags.
    pub fn to_conn(&self) -> crate::ops::Conn {
        crate::ops::Conn {
            url: self.url.clone(),
            port: self.port,
            token: self.token.clone(),
            password: self.password.clone(),
            json: self.json,
            timeout: self.timeout.map(std::time::Duration::from_millis),
        }
    }
}

/// `openclaw agent`: the real CLI's flags for a gateway turn.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Message body for the agent.
    #[arg(short, long, required_unless_present = "message_file")]
    pub message: Option<String>,
    /// Read the message body from a UTF-8 file (max 4 MiB).
    #[arg(long, value_name = "PATH", conflicts_with = "message")]
    pub message_file: Option<std::path::PathBuf>,
    /// Agent id (default: the gateway's default agent).
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Session key (`agent:<id>:<key>`, or scoped to --agent); default: the agent's main session.
    #[arg(long, visible_alias = "session", value_name = "KEY")]
    pub session_key: Option<String>,
    /// An existing session by its session id.
    #[arg(long, value_name = "ID", conflicts_with = "session_key")]
    pub session_id: Option<String>,
    /// Model override for this run (`provider/model`).
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,
    /// Thinking level for this run.
    #[arg(long, value_name = "LEVEL")]
    pub thinking: Option<String>,
    /// Seconds the run may take (default 600 or agents.defaults.timeoutSeconds).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Print the final answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Gateway WebSocket URL (then --token is required); else OPENCLAW_GATEWAY_URL, else this profile's gateway.
    #[arg(long)]
    pub url: Option<String>,
    /// Gateway token.
    #[arg(long)]
    pub token: Option<Secret>,
    /// Gateway password (instead of a token).
    #[arg(long)]
    pub password: Option<Secret>,
    /// This profile's gateway on another local port.
    #[arg(long, conflicts_with = "url")]
    pub port: Option<u16>,
}

/// `openclaw node <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum NodeCommand {
    /// Connect to a gateway as a headless node and answer its commands
    /// (`system.which`; `system.run` for allowed programs) until stopped.
    /// The gateway secret comes from OPENCLAW_GATEWAY_TOKEN (or
    /// OPENCLAW_GATEWAY_PASSWORD), else this profile's config.
    Run {
        /// Gateway host.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Gateway port (default: this profile's gateway port).
        #[arg(long)]
        port: Option<u16>,
        /// The name operators see (default: this host's name).
        #[arg(long)]
        display_name: Option<String>,
        /// A program `system.run` may start (repeatable; `*` allows any).
        /// Without it, `system.run` is refused.
        #[arg(long = "allow-run", value_name = "PROGRAM")]
        allow_run: Vec<String>,
    },
}

/// `openclaw nodes <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum NodesCommand {
    /// Every known node: connected or offline, approval, commands.
    Status,
    /// Pending and approved node surfaces.
    List,
    /// Node surfaces waiting for approval.
    Pending,
    /// One node in full.
    Describe {
        /// Node id, IP, name or id prefix (6+ characters).
        #[arg(long)]
        node: String,
    },
    /// Approve a node's declared commands.
    Approve {
        /// The request id (`openclaw nodes pending`).
        request_id: String,
    },
    /// Reject a node's declared commands.
    Reject {
        /// The request id.
        request_id: String,
    },
    /// Give a node a display name.
    Rename {
        /// Node id, IP, name or id prefix.
        #[arg(long)]
        node: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Unpair a node (its socket is closed).
    Remove {
        /// Node id, IP, name or id prefix.
        #[arg(long)]
        node: String,
    },
    /// Run a command on a node and print its answer.
    Invoke {
        /// Node id, IP, name or id prefix.
        #[arg(long)]
        node: String,
        /// The command (`system.which`, ...).
        #[arg(long)]
        command: String,
        /// Its params, as JSON.
        #[arg(long)]
        params: Option<String>,
        /// Milliseconds the node may take (default 15000).
        #[arg(long, value_name = "MS")]
        invoke_timeout: Option<u64>,
    },
}

/// `openclaw sessions ...`.
#[derive(Debug, Clone, Args)]
pub struct SessionsArgs {
    /// What to do (default: list).
    #[command(subcommand)]
    pub command: Option<SessionsCommand>,
    /// Agent whose sessions to list (default: the default agent).
    #[arg(long, value_name = "ID", global = true)]
    pub agent: Option<String>,
    /// Every agent's sessions.
    #[arg(long, global = true)]
    pub all_agents: bool,
    /// Only sessions updated within the past N minutes.
    #[arg(long, value_name = "MINUTES", global = true)]
    pub active: Option<u64>,
    /// Most sessions (or messages, for `show`) to print: a number or `all` (default 100).
    #[arg(long, value_name = "COUNT", global = true)]
    pub limit: Option<String>,
    /// Connection.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `openclaw sessions <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum SessionsCommand {
    /// List stored conversation sessions (the default).
    List,
    /// A session's history.
    Show {
        /// Session key (`main`, `agent:<id>:<key>`).
        key: String,
    },
    /// Start a fresh transcript behind a session key (the old one stays on disk).
    Reset {
        /// Session key.
        key: String,
    },
    /// Delete a session from the index (`--transcript`: its transcript file too).
    Delete {
        /// Session key.
        key: String,
        /// Also delete the transcript.
        #[arg(long)]
        transcript: bool,
    },
}

/// `openclaw channels ...`.
#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Configured channels and whether they run.
    Status {
        /// Ask for a fresh probe (this gateway has no channel adapters yet:
        /// it says so instead of probing).
        #[arg(long)]
        probe: bool,
        /// Only this channel.
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
        /// Connection.
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `openclaw gateway`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    /// Gateway subcommand; none means `run`.
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
    /// Flags for the implicit `run`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `openclaw gateway <sub>`.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Run the gateway in the foreground.
    Run(RunArgs),
    /// Call a gateway method and print its answer.
    Call {
        /// Method name (`health`, `status`, ...).
        method: String,
        /// Params as JSON.
        #[arg(long)]
        params: Option<String>,
        /// Wait for the final answer of a method that acknowledges first
        /// (`agent`: its `accepted` ack is skipped).
        #[arg(long)]
        expect_final: bool,
        /// Connection.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Check that the gateway answers, and what it allows.
    Probe(ConnArgs),
    /// Exit 0 if this host's gateway answers `/healthz` (or `/readyz`) with
    /// a healthy JSON body, else 1 with the reason: a container's exec
    /// probe or HEALTHCHECK (no shell or curl needed).
    Healthcheck {
        /// Ask `/readyz` (started, not draining) instead of `/healthz`.
        #[arg(long)]
        ready: bool,
        /// Port (else OPENCLAW_GATEWAY_PORT, gateway.port, 18789).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// Milliseconds to wait for the answer.
        #[arg(long, default_value_t = 3000, value_name = "MS")]
        timeout: u64,
    },
    /// Install this profile's gateway as an OS service (systemd user unit / launchd agent) and start it.
    Install {
        /// Port baked into the service (else OPENCLAW_GATEWAY_PORT, gateway.port, 18789).
        #[arg(long)]
        port: Option<u16>,
        /// Rewrite an installed service that differs.
        #[arg(long)]
        force: bool,
    },
    /// Stop and remove this profile's service (state stays).
    Uninstall,
    /// Start this profile's service.
    Start,
    /// Stop this profile's service.
    Stop,
    /// Restart this profile's service.
    Restart,
    /// Show this profile's service.
    Status {
        /// Also list other gateway-like services on this host (system dirs too).
        #[arg(long)]
        deep: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// Bind modes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BindArg {
    /// 127.0.0.1 only.
    Loopback,
    /// All interfaces (needs auth).
    Lan,
    /// The Tailscale address (loopback when there is none).
    Tailnet,
    /// Loopback, or all interfaces inside a container.
    Auto,
    /// gateway.customBindHost.
    Custom,
}

/// Auth modes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthArg {
    /// No shared secret (loopback only).
    None,
    /// Shared token.
    Token,
    /// Shared password.
    Password,
}

/// Flags of `openclaw gateway run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Port for WebSocket, HTTP probes and canvas (else OPENCLAW_GATEWAY_PORT, gateway.port, 18789).
    #[arg(long)]
    pub port: Option<u16>,
    /// Where to listen (else gateway.bind, loopback).
    #[arg(long, value_enum)]
    pub bind: Option<BindArg>,
    /// How clients authenticate (else gateway.auth.mode, inferred from the secret set).
    #[arg(long, value_enum)]
    pub auth: Option<AuthArg>,
    /// Shared token (else OPENCLAW_GATEWAY_TOKEN, gateway.auth.token).
    #[arg(long)]
    pub token: Option<Secret>,
    /// Shared password (else OPENCLAW_GATEWAY_PASSWORD, gateway.auth.password).
    #[arg(long)]
    pub password: Option<Secret>,
    /// Start even when the config does not set gateway.mode=local.
    #[arg(long)]
    pub allow_unconfigured: bool,
}

impl RunArgs {
    /// Converts to the settings layer's flags.
    pub fn to_flags(&self) -> GatewayFlags {
        GatewayFlags {
            port: self.port,
            bind: self.bind.map(|b| match b {
                BindArg::Loopback => BindMode::Loopback,
                BindArg::Lan => BindMode::Lan,
                BindArg::Tailnet => BindMode::Tailnet,
                BindArg::Auto => BindMode::Auto,
                BindArg::Custom => BindMode::Custom,
            }),
            auth: self.auth.map(|a| match a {
                AuthArg::None => AuthMode::None,
                AuthArg::Token => AuthMode::Token,
                AuthArg::Password => AuthMode::Password,
            }),
            token: self.token.clone(),
            password: self.password.clone(),
            allow_unconfigured: self.allow_unconfigured,
        }
    }
}
