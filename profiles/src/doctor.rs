//! `doctor`: conflicts between profiles, found before they bite.
//!
//! Three parts. [`scan_profiles`] reads the host into an [`Inventory`]
//! (profiles, configs, locks and their owners, listeners on their ports,
//! permissions, hashes of bot tokens); the binaries add the service facts
//! from `openclaw-service-templates`. [`check`] is pure: an inventory in,
//! findings out, each with a stable `checkId`, a severity and a fix.
//! [`apply_fix`] performs the safe fixes (stale lock files, permissions);
//! rewriting a drifted unit is left to the binaries.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::{self, AuthMode, BindMode, OpenClawConfig};
use crate::lock::{self, LockState};
use crate::paths::ProfilePaths;
use crate::ports::{self, RESERVED_SPAN};
use crate::process;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Will bite later.
    Warning,
    /// Bites now.
    Error,
}

impl Severity {
    /// `info` / `warning` / `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// A repair doctor may perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Remove these stale lock files (re-checked as free first).
    RemoveStaleLock {
        /// The lock file whose owner is dead.
        lock: PathBuf,
        /// The files to remove.
        files: Vec<PathBuf>,
    },
    /// Set the mode of a file or dir.
    Chmod(PathBuf, u32),
    /// Rewrite the profile's drifted service file (done by the binaries).
    RewriteService(String),
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id (`port-overlap`, ...).
    pub check_id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Profiles involved (empty for host-wide findings).
    pub profiles: Vec<String>,
    /// What is wrong. Never holds a secret.
    pub message: String,
    /// What to do about it.
    pub fix_hint: String,
    /// The automatic repair, when one is safe.
    pub fix: Option<Fix>,
}

/// A bot token seen in a profile, by hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSeen {
    /// `telegram` or `discord`.
    pub channel: &'static str,
    /// Where: `config` or `.env`.
    pub source: &'static str,
    /// Hex SHA-256 of the token.
    pub hash: String,
}

/// Facts about one profile.
#[derive(Debug, Clone)]
pub struct ProfileFacts {
    /// The profile's paths.
    pub paths: ProfilePaths,
    /// Realpath of the state dir (lexical if it does not exist).
    pub real_state_dir: PathBuf,
    /// Realpath of the config file.
    pub real_config: PathBuf,
    /// The parsed config (`None` if absent), or its error.
    pub config: Result<Option<OpenClawConfig>, String>,
    /// The base port (config or default), if the config parses.
    pub port: Option<u16>,
    /// Pid holding the state lock.
    pub lock_holder: Option<u32>,
    /// Lock files left by a dead owner.
    pub stale_lock: Option<(PathBuf, Vec<PathBuf>)>,
    /// A keeper of `openclawctl` supervises it.
    pub keeper_alive: bool,
    /// Who listens on the base port: pid and command line.
    pub listener: Option<(u32, String)>,
    /// The seed-mode canvas host's port, when `canvasHost.enabled`.
    pub canvas_port: Option<u16>,
    /// Who listens on the canvas port.
    pub canvas_listener: Option<(u32, String)>,
    /// Mode of the state dir.
    pub state_dir_mode: Option<u32>,
    /// Secret files and their modes.
    pub secret_files: Vec<(PathBuf, u32)>,
    /// Bot tokens, hashed.
    pub tokens: Vec<TokenSeen>,
    /// `logging.file`, when set.
    pub log_file: Option<PathBuf>,
    /// The agent workspace (`agents.defaults.workspace`, else `<stateDir>/workspace`).
    pub workspace: PathBuf,
    /// State files that cannot be read (path, why), and files the gateway
    /// moved aside as unreadable (`*.corrupt-*`, why empty).
    pub bad_state_files: Vec<(PathBuf, String)>,
}

/// The device store files of `state_dir` that do not parse, and those
/// the gateway moved aside.
fn bad_state_files(state_dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for rel in crate::contract::DEVICE_STORE_FILES {
        let path = state_dir.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if let Err(e) =
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
                {
                    out.push((path.clone(), e.to_string()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out.push((path.clone(), e.to_string())),
        }
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let prefix = format!(
                "{}{}",
                name.to_string_lossy(),
                crate::contract::CORRUPT_SUFFIX
            );
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    out.push((e.path(), String::new()));
                }
            }
        }
    }
    out.sort();
    out
}

/// A gateway service found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFact {
    /// Unit name or label.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// System-wide (else per user).
    pub system: bool,
    /// The profile it runs (`None` = default).
    pub profile: Option<String>,
    /// The profile exists.
    pub profile_known: bool,
    /// The binary it starts does not exist.
    pub program_missing: bool,
    /// A legacy `clawdbot`/`moltbot` service.
    pub legacy: bool,
    /// The file differs from what would be rendered now (for our own
    /// service of a known profile).
    pub drifted: bool,
    /// Whether the service's gateway is running.
    pub running: bool,
}

/// Everything the checks look at.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Known profiles.
    pub profiles: Vec<ProfileFacts>,
    /// Gateway services on the host.
    pub services: Vec<ServiceFact>,
    /// `Some(false)` when user units are installed and the user does not linger.
    pub linger: Option<bool>,
    /// The user (for linger hints).
    pub user: String,
    /// Why `openclawctl`'s registry (`profiles.toml`) could not be read,
    /// when it could not (file:line:column included).
    pub registry_error: Option<String>,
}

fn real(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => real(parent).join(name),
        _ => p.to_path_buf(),
    }
}

fn mode_of(p: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the facts about each profile in `profiles`.
pub fn scan_profiles(profiles: &[ProfilePaths]) -> Vec<ProfileFacts> {
    // The host's lock table and listeners, read once for all profiles.
    let host = (lock::LockTable::read(), process::Listeners::read());
    profiles.iter().map(|p| scan_profile(p, &host)).collect()
}

fn scan_profile(
    paths: &ProfilePaths,
    (locks, listeners): &(lock::LockTable, process::Listeners),
) -> ProfileFacts {
    let config = config::load_config(&paths.config_path).map_err(|e| e.to_string());
    let cfg = config.as_ref().ok().and_then(|c| c.as_ref());
    let port = config
        .as_ref()
        .ok()
        .map(|c| ports::profile_port(&paths.profile, c.as_ref().and_then(|c| c.gateway.port)));
    let lock_path = paths.state_lock_path();
    let (lock_holder, stale_lock) = match locks.inspect(&lock_path) {
        Ok(LockState::Held(o)) => (o.map(|o| o.pid), None),
        _ => {
            let record = lock_path.with_extension("json");
            let leftovers: Vec<PathBuf> = [lock_path.clone(), record]
                .into_iter()
                .filter(|p| p.exists())
                .collect();
            // OpenClaw's own JSON lock files whose recorded pid is dead.
            let mut legacy: Vec<PathBuf> = std::fs::read_dir(paths.lock_dir())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with("gateway.")
                        && name.ends_with(".lock")
                        && name != "gateway.state.lock"
                })
                .filter(|p| {
                    std::fs::read_to_string(p)
                        .ok()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .and_then(|v| v["pid"].as_u64())
                        .is_some_and(|pid| !process::pid_alive(pid as u32))
                })
                .collect();
            let mut files = leftovers;
            files.append(&mut legacy);
            (
                None,
                (!files.is_empty()).then(|| (lock_path.clone(), files)),
            )
        }
    };
    let keeper_lock = paths.state_dir.join("tmp").join("openclawctl.lock");
    let keeper_alive = matches!(locks.inspect(&keeper_lock), Ok(LockState::Held(_)));
    let listener = port.and_then(|p| {
        listeners
            .owner(p)
            .map(|pid| (pid, process::cmdline(pid).unwrap_or_default()))
    });
    let canvas_port = cfg.and_then(|c| {
        let host = c.raw.get("canvasHost")?;
        if host["enabled"].as_bool() != Some(true) {
            return None;
        }
        host["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .or_else(|| port.map(|p| p.saturating_add(4)))
    });
    let canvas_listener = canvas_port.and_then(|p| {
        listeners
            .owner(p)
            .map(|pid| (pid, process::cmdline(pid).unwrap_or_default()))
    });
    let dotenv = paths.state_dir.join(".env");
    let mut secret_files = Vec::new();
    for f in [
        paths.config_path.clone(),
        dotenv.clone(),
        paths.state_dir.join("gateway.systemd.env"),
    ] {
        if let Some(m) = mode_of(&f) {
            secret_files.push((f, m));
        }
    }
    let mut tokens = Vec::new();
    if let Some(c) = cfg {
        if let Some(t) = c.telegram.as_ref().and_then(|t| t.token.as_ref()) {
            tokens.push(TokenSeen {
                channel: "telegram",
                source: "config",
                hash: hash(t.expose()),
            });
        }
        if let Some(t) = c.discord.as_ref().and_then(|t| t.token.as_ref()) {
            tokens.push(TokenSeen {
                channel: "discord",
                source: "config",
                hash: hash(t.expose()),
            });
        }
    }
    if let Ok(text) = std::fs::read_to_string(&dotenv) {
        for (k, v) in crate::dotenv::parse_dotenv(&text) {
            let channel = match k.as_str() {
                "TELEGRAM_BOT_TOKEN" => "telegram",
                "DISCORD_BOT_TOKEN" => "discord",
                _ => continue,
            };
            if !v.is_empty() {
                tokens.push(TokenSeen {
                    channel,
                    source: ".env",
                    hash: hash(&v),
                });
            }
        }
    }
    let log_file = cfg
        .and_then(|c| c.raw.pointer("/logging/file"))
        .and_then(|v| v.as_str())
        .map(|s| real(Path::new(s)));
    let workspace = real(
        &cfg.and_then(|c| c.agent_defaults.workspace.clone())
            .unwrap_or_else(|| paths.state_dir.join("workspace")),
    );
    ProfileFacts {
        real_state_dir: real(&paths.state_dir),
        real_config: real(&paths.config_path),
        paths: paths.clone(),
        config,
        port,
        lock_holder,
        stale_lock,
        keeper_alive,
        listener,
        canvas_port,
        canvas_listener,
        state_dir_mode: mode_of(&paths.state_dir),
        secret_files,
        tokens,
        log_file,
        workspace,
        bad_state_files: bad_state_files(&paths.state_dir),
    }
}

fn name(p: &ProfileFacts) -> String {
    p.paths.profile.to_string()
}

fn finding(
    check_id: &'static str,
    severity: Severity,
    profiles: Vec<String>,
    message: String,
    fix_hint: String,
) -> Finding {
    Finding {
        check_id,
        severity,
        profiles,
        message,
        fix_hint,
        fix: None,
    }
}

/// Runs every check over `inv`.
pub fn check(inv: &Inventory) -> Vec<Finding> {
    let mut out = Vec::new();
    let ps = &inv.profiles;
    for (i, a) in ps.iter().enumerate() {
        for b in &ps[i + 1..] {
            pair_checks(a, b, &mut out);
        }
    }
    for p in ps {
        profile_checks(p, ps, inv, &mut out);
    }
    service_checks(inv, &mut out);
    if let Some(why) = &inv.registry_error {
        out.push(finding(
            "registry-invalid",
            Severity::Error,
            Vec::new(),
            why.clone(),
            "fix the file by hand (or move it away and `openclawctl profile create` the profiles again); until then only profiles found on disk are known".into(),
        ));
    }
    out
}

fn pair_checks(a: &ProfileFacts, b: &ProfileFacts, out: &mut Vec<Finding>) {
    let names = vec![name(a), name(b)];
    if a.real_state_dir == b.real_state_dir {
        out.push(finding(
            "state-dir-shared",
            Severity::Error,
            names.clone(),
            format!(
                "profiles `{}` and `{}` use the same state dir {}: their gateways would fight over one lock, one session store and one bot",
                name(a),
                name(b),
                a.real_state_dir.display()
            ),
            format!(
                "give `{}` its own state dir (remove it with `openclawctl profile rm {}` and create it again, or drop the OPENCLAW_STATE_DIR that points it here)",
                name(b),
                name(b)
            ),
        ));
    } else if a.real_config == b.real_config {
        out.push(finding(
            "config-path-shared",
            Severity::Error,
            names.clone(),
            format!(
                "profiles `{}` and `{}` read the same config {}",
                name(a),
                name(b),
                a.real_config.display()
            ),
            format!(
                "give `{}` its own config file (OPENCLAW_CONFIG_PATH or `--config`)",
                name(b)
            ),
        ));
    }
    if let (Some(pa), Some(pb)) = (a.port, b.port)
        && a.real_state_dir != b.real_state_dir
        && ports::overlaps_of((pa, a.paths.ports), (pb, b.paths.ports))
    {
        out.push(finding(
            "port-overlap",
            Severity::Error,
            names.clone(),
            format!(
                "the port ranges of `{}` ({pa}..={}) and `{}` ({pb}..={}) overlap (gateway, browser control and CDP ports are derived from the base)",
                name(a),
                u32::from(pa) + u32::from(a.paths.ports.span()),
                name(b),
                u32::from(pb) + u32::from(b.paths.ports.span())
            ),
            format!(
                "move `{}` to a base at least {} ports away: set gateway.port in {}",
                name(b),
                RESERVED_SPAN + 1,
                b.paths.config_path.display()
            ),
        ));
    }
    for ta in &a.tokens {
        if let Some(tb) = b
            .tokens
            .iter()
            .find(|tb| tb.channel == ta.channel && tb.hash == ta.hash)
        {
            out.push(finding(
                "bot-token-shared",
                Severity::Error,
                names.clone(),
                format!(
                    "profiles `{}` ({}) and `{}` ({}) use the same {} bot token: only one gateway can poll it (Telegram answers 409 to the other)",
                    name(a),
                    ta.source,
                    name(b),
                    tb.source,
                    ta.channel
                ),
                format!("create a second bot for `{}` and set its token there", name(b)),
            ));
        }
    }
    if let (Some(la), Some(lb)) = (&a.log_file, &b.log_file)
        && la == lb
    {
        out.push(finding(
            "log-file-shared",
            Severity::Warning,
            names.clone(),
            format!(
                "profiles `{}` and `{}` write the same log file {}",
                name(a),
                name(b),
                la.display()
            ),
            format!("set a different logging.file for `{}`", name(b)),
        ));
    }
    if a.workspace == b.workspace && a.real_state_dir != b.real_state_dir {
        out.push(finding(
            "workspace-shared",
            Severity::Warning,
            names,
            format!(
                "profiles `{}` and `{}` share the agent workspace {}",
                name(a),
                name(b),
                a.workspace.display()
            ),
            format!(
                "set a different agents.defaults.workspace for `{}`",
                name(b)
            ),
        ));
    }
}

fn profile_checks(p: &ProfileFacts, all: &[ProfileFacts], inv: &Inventory, out: &mut Vec<Finding>) {
    let me = vec![name(p)];
    if let Ok(Some(c)) = &p.config {
        for (what, secret) in [
            ("token", &c.gateway.auth.token),
            ("password", &c.gateway.auth.password),
        ] {
            if secret
                .as_ref()
                .is_some_and(|s| s.expose().trim().is_empty())
            {
                out.push(finding(
                    "auth-blank",
                    Severity::Error,
                    me.clone(),
                    format!(
                        "gateway.auth.{what} of `{}` is empty or blank: the gateway refuses to start with it",
                        name(p)
                    ),
                    format!(
                        "set a real {what} in {} (or remove the key and set OPENCLAW_GATEWAY_{} in the state dir's .env)",
                        p.paths.config_path.display(),
                        what.to_ascii_uppercase()
                    ),
                ));
            }
        }
    }
    for (path, why) in &p.bad_state_files {
        let (message, hint) = if why.is_empty() {
            (
                format!(
                    "{} is a state file the gateway of `{}` could not read and moved aside; what it held is not in use",
                    path.display(),
                    name(p)
                ),
                "compare it with the live file, restore what is missing (stop the gateway first), then delete it".to_string(),
            )
        } else {
            (
                format!("{} cannot be read: {why}", path.display()),
                "restore it from a backup or fix the JSON by hand before the gateway starts (it would move the file aside)".to_string(),
            )
        };
        out.push(finding(
            "state-file-invalid",
            Severity::Error,
            me.clone(),
            message,
            hint,
        ));
    }
    if let Err(e) = &p.config {
        out.push(finding(
            "config-invalid",
            Severity::Error,
            me.clone(),
            format!("profile `{}`: {e}", name(p)),
            format!(
                "fix {} (the gateway refuses to start with exit 78)",
                p.paths.config_path.display()
            ),
        ));
    }
    if let Ok(Some(cfg)) = &p.config {
        let bind = cfg.gateway.bind.unwrap_or(BindMode::Loopback);
        if !matches!(
            bind,
            BindMode::Loopback | BindMode::Tailnet | BindMode::Auto
        ) && cfg.gateway.auth.mode == Some(AuthMode::None)
        {
            out.push(finding(
                "bind-without-auth",
                Severity::Error,
                me.clone(),
                format!(
                    "profile `{}` binds beyond loopback (gateway.bind {}) with auth mode none",
                    name(p),
                    bind.as_str()
                ),
                "set gateway.auth.mode token with a gateway.auth.token, or gateway.bind loopback"
                    .to_string(),
            ));
        }
    }
    if let (Some(port), Some((pid, cmd))) = (p.port, &p.listener)
        && Some(*pid) != p.lock_holder
    {
        let who = if let Some(other) = all.iter().find(|o| o.lock_holder == Some(*pid)) {
            format!("the gateway of profile `{}` (pid {pid})", name(other))
        } else if cmd
            .split_whitespace()
            .next()
            .is_some_and(|c| c.ends_with("ssh"))
        {
            format!("an SSH tunnel (pid {pid}: {cmd})")
        } else {
            format!("another program (pid {pid}: {cmd})")
        };
        out.push(finding(
            "port-in-use",
            Severity::Error,
            me.clone(),
            format!("port {port} of profile `{}` is held by {who}", name(p)),
            format!(
                "stop pid {pid}, or move `{}` to another base port (gateway.port)",
                name(p)
            ),
        ));
    }
    canvas_checks(p, &me, out);
    if let Some((lock, files)) = &p.stale_lock {
        let mut f = finding(
            "lock-stale",
            Severity::Warning,
            me.clone(),
            format!(
                "profile `{}` has lock files left by a gateway that is gone ({})",
                name(p),
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "remove them (`doctor --fix`); they are re-checked as unowned first".to_string(),
        );
        f.fix = Some(Fix::RemoveStaleLock {
            lock: lock.clone(),
            files: files.clone(),
        });
        out.push(f);
    }
    if let Some(mode) = p.state_dir_mode.filter(|m| m & 0o077 != 0) {
        let mut f = finding(
            "permissions",
            Severity::Warning,
            me.clone(),
            format!(
                "state dir {} of `{}` is {mode:o}, readable by others",
                p.paths.state_dir.display(),
                name(p)
            ),
            format!("chmod 700 {}", p.paths.state_dir.display()),
        );
        f.fix = Some(Fix::Chmod(p.paths.state_dir.clone(), 0o700));
        out.push(f);
    }
    for (file, mode) in p.secret_files.iter().filter(|(_, m)| m & 0o077 != 0) {
        let mut f = finding(
            "permissions",
            Severity::Warning,
            me.clone(),
            format!(
                "{} of `{}` may hold secrets and is {mode:o}",
                file.display(),
                name(p)
            ),
            format!("chmod 600 {}", file.display()),
        );
        f.fix = Some(Fix::Chmod(file.clone(), 0o600));
        out.push(f);
    }
    let sp = (!p.paths.profile.is_default()).then(|| name(p));
    let own: Vec<&ServiceFact> = inv
        .services
        .iter()
        .filter(|s| s.profile == sp && !s.legacy)
        .collect();
    if !own.is_empty() && p.keeper_alive {
        out.push(finding(
            "supervisor-duplicate",
            Severity::Error,
            me.clone(),
            format!(
                "profile `{}` is run by openclawctl's keeper and also installed as {}",
                name(p),
                own[0].path.display()
            ),
            format!(
                "keep one owner: `openclawctl stop --profile {0}` (the service then runs it) or `openclawctl service uninstall --profile {0}`",
                name(p)
            ),
        ));
    }
    if own.iter().any(|s| s.system) && own.iter().any(|s| !s.system) {
        out.push(finding(
            "supervisor-duplicate",
            Severity::Error,
            me,
            format!(
                "profile `{}` has a user and a system service: {}",
                name(p),
                own.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            "remove one of them (a system unit: `sudo systemctl disable --now <unit>` and delete the file)".to_string(),
        ));
    }
}

fn service_checks(inv: &Inventory, out: &mut Vec<Finding>) {
    for s in &inv.services {
        let profiles: Vec<String> = s.profile.clone().into_iter().collect();
        let remove = if s.name.ends_with(".service") {
            if s.system {
                format!(
                    "sudo systemctl disable --now {} && sudo rm {}",
                    s.name,
                    s.path.display()
                )
            } else {
                format!(
                    "systemctl --user disable --now {} && rm {}",
                    s.name,
                    s.path.display()
                )
            }
        } else {
            format!(
                "launchctl bootout gui/$UID/{} && rm {}",
                s.name,
                s.path.display()
            )
        };
        if s.legacy || !s.profile_known || s.program_missing {
            let why = if s.legacy {
                "a legacy clawdbot/moltbot gateway service".to_string()
            } else if !s.profile_known {
                format!(
                    "a gateway service for profile `{}`, which does not exist",
                    s.profile.as_deref().unwrap_or("default")
                )
            } else {
                "a gateway service whose binary is missing".to_string()
            };
            out.push(finding(
                "service-stale",
                Severity::Warning,
                profiles,
                format!("{}: {why}", s.path.display()),
                remove,
            ));
        } else if s.drifted {
            let p = s.profile.clone().unwrap_or_else(|| "default".into());
            let mut f = finding(
                "service-drift",
                Severity::Warning,
                vec![p.clone()],
                format!(
                    "{} differs from what would be installed now (port, paths or binary changed)",
                    s.path.display()
                ),
                format!("`openclawctl service install --profile {p} --force`"),
            );
            if !s.running {
                f.fix = Some(Fix::RewriteService(p));
            }
            out.push(f);
        }
    }
    if inv.linger == Some(false) {
        out.push(finding(
            "linger-missing",
            Severity::Warning,
            Vec::new(),
            format!("user services are installed but user {} does not linger: they stop at logout and do not start at boot", inv.user),
            format!("sudo loginctl enable-linger {}", inv.user),
        ));
    }
}

/// Performs a safe fix. Stale locks are re-checked as unowned first and
/// never removed while held.
pub fn apply_fix(fix: &Fix) -> Result<String, String> {
    match fix {
        Fix::RemoveStaleLock { lock, files } => {
            if matches!(lock::inspect(lock), Ok(LockState::Held(_))) {
                return Err(format!("{} is held again; left alone", lock.display()));
            }
            for f in files {
                match std::fs::remove_file(f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("cannot remove {}: {e}", f.display())),
                }
            }
            Ok(format!("removed {} stale lock file(s)", files.len()))
        }
        Fix::Chmod(path, mode) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
            Ok(format!("chmod {mode:o} {}", path.display()))
        }
        Fix::RewriteService(p) => Err(format!(
            "rewriting the service of `{p}` is done by the binary"
        )),
    }
}

/// The seed-mode canvas host: its port belongs in the profile's reserved
/// set (else the allocator may give it to another profile), and only this
/// profile's gateway may hold it.
fn canvas_checks(p: &ProfileFacts, me: &[String], out: &mut Vec<Finding>) {
    let Some(cport) = p.canvas_port else {
        return;
    };
    let in_range = p
        .port
        .and_then(|b| ports::reserved_ports_of(b, p.paths.ports).ok())
        .is_some_and(|r| r.contains(&cport));
    if !in_range {
        out.push(finding(
            "canvas-port-outside-range",
            Severity::Warning,
            me.to_vec(),
            format!(
                "the canvas host of profile `{}` listens on {cport}, outside the profile's reserved ports (another profile may be given it)",
                name(p)
            ),
            "remove canvasHost.port (it defaults to the gateway port + 4) or pick a port in the profile's range".to_string(),
        ));
    }
    if let Some((pid, cmd)) = &p.canvas_listener
        && Some(*pid) != p.lock_holder
    {
        out.push(finding(
            "canvas-port-in-use",
            Severity::Error,
            me.to_vec(),
            format!(
                "canvas port {cport} of profile `{}` is held by another program (pid {pid}: {cmd})",
                name(p)
            ),
            format!("stop pid {pid}, or set canvasHost.port of `{}`", name(p)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProfileName;

    fn facts(name: &str, state: &str, port: u16) -> ProfileFacts {
        let paths = ProfilePaths {
            profile: ProfileName::parse(name).unwrap(),
            state_dir: state.into(),
            config_path: PathBuf::from(state).join("openclaw.json"),
            ports: Default::default(),
            limits: Default::default(),
        };
        ProfileFacts {
            real_state_dir: paths.state_dir.clone(),
            real_config: paths.config_path.clone(),
            workspace: paths.state_dir.join("workspace"),
            paths,
            config: Ok(None),
            port: Some(port),
            lock_holder: None,
            stale_lock: None,
            keeper_alive: false,
            listener: None,
            canvas_port: None,
            canvas_listener: None,
            state_dir_mode: Some(0o700),
            secret_files: Vec::new(),
            tokens: Vec::new(),
            log_file: None,
            bad_state_files: Vec::new(),
        }
    }

    fn ids(inv: &Inventory) -> Vec<&'static str> {
        check(inv).iter().map(|f| f.check_id).collect()
    }

    #[test]
    fn a_clean_inventory_has_no_findings() {
        let inv = Inventory {
            profiles: vec![
                facts("a", "/h/.openclaw-a", 18789),
                facts("b", "/h/.openclaw-b", 18900),
            ],
            ..Default::default()
        };
        assert!(check(&inv).is_empty(), "{:?}", check(&inv));
    }

    #[test]
    fn unreadable_state_files_are_findings() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices");
        std::fs::create_dir(&devices).unwrap();
        std::fs::write(devices.join("paired.json"), "{\"a\": {").unwrap();
        std::fs::write(devices.join("pending.json.corrupt-1"), "x").unwrap();
        let bad = bad_state_files(dir.path());
        assert_eq!(bad.len(), 2, "{bad:?}");
        let mut p = facts("a", dir.path().to_str().unwrap(), 18789);
        p.bad_state_files = bad;
        let inv = Inventory {
            profiles: vec![p],
            ..Default::default()
        };
        assert_eq!(ids(&inv), vec!["state-file-invalid", "state-file-invalid"]);
    }

    #[test]
    fn a_blank_token_is_a_finding() {
        let mut p = facts("a", "/h/.openclaw-a", 18789);
        p.config = Ok(Some(
            crate::config::parse_config(
                "{gateway:{auth:{token:'  '}}}",
                Path::new("/h/.openclaw-a/openclaw.json"),
            )
            .unwrap(),
        ));
        let inv = Inventory {
            profiles: vec![p],
            ..Default::default()
        };
        assert_eq!(ids(&inv), vec!["auth-blank"]);
    }

    #[test]
    fn a_damaged_registry_is_a_finding() {
        let inv = Inventory {
            registry_error: Some("invalid profile registry /r/profiles.toml:2:1: x".into()),
            ..Default::default()
        };
        let f = check(&inv);
        assert_eq!(ids(&inv), vec!["registry-invalid"]);
        assert!(f[0].message.contains("profiles.toml:2:1"));
    }

    #[test]
    fn pairwise_conflicts() {
        let mut b = facts("b", "/h/.openclaw-a", 18789);
        b.tokens.push(TokenSeen {
            channel: "telegram",
            source: ".env",
            hash: "x".into(),
        });
        let mut a = facts("a", "/h/.openclaw-a", 18789);
        a.tokens.push(TokenSeen {
            channel: "telegram",
            source: "config",
            hash: "x".into(),
        });
        let inv = Inventory {
            profiles: vec![a, b],
            ..Default::default()
        };
        assert_eq!(ids(&inv), vec!["state-dir-shared", "bot-token-shared"]);
        let inv = Inventory {
            profiles: vec![facts("a", "/h/a", 18789), facts("b", "/h/b", 18800)],
            ..Default::default()
        };
        assert_eq!(ids(&inv), vec!["port-overlap"]);
    }

    #[test]
    fn the_canvas_port_must_be_the_profiles_own_and_free() {
        let mut a = facts("a", "/h/a", 20000);
        a.canvas_port = Some(20004);
        let inv = Inventory {
            profiles: vec![a.clone()],
            ..Default::default()
        };
        assert!(ids(&inv).is_empty(), "{:?}", ids(&inv));
        a.canvas_port = Some(25000);
        a.canvas_listener = Some((77, "python3 -m http.server 25000".into()));
        let inv = Inventory {
            profiles: vec![a],
            ..Default::default()
        };
        assert_eq!(
            ids(&inv),
            vec!["canvas-port-outside-range", "canvas-port-in-use"]
        );
    }

    #[test]
    fn port_in_use_names_the_owner() {
        let mut a = facts("a", "/h/a", 20000);
        a.listener = Some((42, "ssh -L 20000:localhost:18789 host".into()));
        let inv = Inventory {
            profiles: vec![a.clone()],
            ..Default::default()
        };
        assert!(check(&inv)[0].message.contains("an SSH tunnel (pid 42"));
        let mut b = facts("b", "/h/b", 30000);
        b.lock_holder = Some(42);
        let inv = Inventory {
            profiles: vec![a, b],
            ..Default::default()
        };
        assert!(
            check(&inv)[0]
                .message
                .contains("the gateway of profile `b` (pid 42)")
        );
    }
}
