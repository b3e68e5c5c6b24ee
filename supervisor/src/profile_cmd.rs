//! `openclawctl profile create|list|show`.

use openclaw_profiles::outln;
use std::path::{Path, PathBuf};

use openclaw_profiles::ProfileName;
use openclaw_profiles::atomic::create_private_dir;
use openclaw_profiles::config::{self, AuthMode, BindMode, OwnedKeys, Secret};
use openclaw_profiles::contract::DEFAULT_GATEWAY_PORT;
use openclaw_profiles::limits::{Kind, Limits};
use openclaw_profiles::lock::{self, LockState};
use openclaw_profiles::paths::ProfilePaths;
use openclaw_profiles::ports::{self, Claim};
use openclaw_profiles::registry::{Entry, Origin};
use openclaw_profiles::token::generate_gateway_token;
use serde::Serialize;

use crate::context::Context;
use crate::facts::configured_port;
use crate::{CmdResult, Failure};

/// `OPENCLAWCTL_PORT_BASE`: where the port allocator starts looking.
pub const ENV_PORT_BASE: &str = "OPENCLAWCTL_PORT_BASE";

/// Options of `profile create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--port`.
    pub port: Option<u16>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--ports`.
    pub ports: ports::PortPlan,
    /// `--memory-max`, `--cpu-quota`, `--tasks-max`, `--nofile`.
    pub limits: Limits,
}

fn absolute(p: &Path) -> Result<PathBuf, Failure> {
    // Unit files and plists hold these paths line by line: a control
    // character (a newline) would break them.
    if p.to_string_lossy().chars().any(char::is_control) {
        return Err(Failure::usage(format!(
            "path {:?} holds a control character (a newline?): choose a plain path",
            p.display().to_string()
        )));
    }
    std::path::absolute(p)
        .map_err(|e| Failure::usage(format!("cannot resolve {}: {e}", p.display())))
}

/// Compares paths after resolving symlinks of the longest existing prefix.
fn same_path(a: &Path, b: &Path) -> bool {
    fn canon(p: &Path) -> PathBuf {
        if let Ok(c) = std::fs::canonicalize(p) {
            return c;
        }
        match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) => canon(parent).join(name),
            _ => p.to_path_buf(),
        }
    }
    canon(a) == canon(b)
}

/// A profile's reserved ports as shown: `18789..=18899` (full plan) or
/// `20000..=20004 (compact: 20000, 20001, 20002, 20004)`.
fn reserved_text(base: u16, plan: ports::PortPlan) -> String {
    let end = u32::from(base) + u32::from(plan.span());
    match plan {
        ports::PortPlan::Full => format!("{base}..={end}"),
        ports::PortPlan::Compact => format!(
            "{base}..={end} (compact: {base}, {}, {}, {})",
            base + 1,
            base + 2,
            base + 4
        ),
    }
}

/// The bases claimed by every known profile but `except`.
fn claims(ctx: &Context, except: &ProfileName) -> Vec<Claim> {
    ctx.registry
        .list()
        .into_iter()
        .filter(|k| &k.paths.profile != except)
        .filter_map(|k| {
            configured_port(&k.paths).ok().map(|base| Claim {
                profile: k.paths.profile.to_string(),
                base,
                plan: k.paths.ports,
            })
        })
        .collect()
}

/// `openclawctl profile create <name>`. Runs under the registry's lock from
/// the uniqueness checks to the registry write, so that concurrent creates
/// never lose a profile nor share a port range.
pub fn create(ctx: &mut Context, raw: &str, opts: &CreateOptions) -> Result<CreatedDoc, Failure> {
    let name = Context::parse_name(raw)?;
    if name.is_default() {
        return Err(Failure::usage(
            "`default` is the unnamed profile (~/.openclaw) and is not created by openclawctl; choose another name",
        ));
    }
    let implied = ports::implied_port(&name);
    if let (Some(want), Some(p)) = (opts.port, implied)
        && want != p
    {
        return Err(Failure::usage(format!(
            "profile `{name}` always serves on port {p}: OpenClaw's `--profile {name}` sets OPENCLAW_GATEWAY_PORT={p}, so its clients would never reach port {want}; drop --port or choose another name"
        )));
    }
    ctx.lock_registry()?;
    if ctx.registry.is_known(&name) {
        let existing = ctx.registry.paths_for(&name);
        return Err(Failure::problem(format!(
            "profile `{name}` already exists (state dir {}); see `openclawctl profile show {name}`",
            existing.state_dir.display()
        )));
    }
    if let Some(other) = ctx
        .registry
        .list()
        .into_iter()
        .find(|k| k.paths.profile.as_str().eq_ignore_ascii_case(name.as_str()))
    {
        return Err(Failure::problem(format!(
            "profile `{name}` differs from profile `{}` only in case: their state dirs and service names would collide on case-insensitive filesystems (macOS); choose another name",
            other.paths.profile
        )));
    }
    let canonical = ctx.registry.paths_for(&name);
    let state_dir = match &opts.state_dir {
        Some(d) => absolute(d)?,
        None => canonical.state_dir.clone(),
    };
    let config_path = match &opts.config {
        Some(c) => absolute(c)?,
        None => state_dir.join(openclaw_profiles::contract::CONFIG_FILE_NAME),
    };
    for other in ctx.registry.list() {
        if same_path(&other.paths.state_dir, &state_dir) {
            return Err(Failure::problem(format!(
                "state dir {} already belongs to profile `{}`: one gateway per state dir; choose another --state-dir",
                state_dir.display(),
                other.paths.profile
            )));
        }
        if same_path(&other.paths.config_path, &config_path) {
            return Err(Failure::problem(format!(
                "config {} already belongs to profile `{}`; choose another --config",
                config_path.display(),
                other.paths.profile
            )));
        }
    }
    let existing_cfg =
        config::load_config(&config_path).map_err(|e| Failure::problem(e.to_string()))?;
    let mut others = claims(ctx, &name);
    let free = |p: u16| ports::is_port_free(p);
    let port = match implied
        .or(opts.port)
        .or(existing_cfg.as_ref().and_then(|c| c.gateway.port))
    {
        Some(p) => {
            ports::check_base_available(p, opts.ports, &others, &free)
                .map_err(|e| Failure::problem(e.to_string()))?;
            p
        }
        None => {
            let start = match ctx.env.get(ENV_PORT_BASE) {
                Some(raw) => raw.parse().map_err(|_| {
                    Failure::usage(format!(
                        "invalid {ENV_PORT_BASE} {raw:?}: expected a port number"
                    ))
                })?,
                None => DEFAULT_GATEWAY_PORT,
            };
            // Keep the range `dev` must have free while no `dev` exists.
            if !others.iter().any(|c| c.profile == "dev") {
                others.push(Claim {
                    profile: "dev".into(),
                    base: ports::DEV_PROFILE_PORT,
                    plan: ports::PortPlan::Full,
                });
            }
            ports::allocate_base(start, opts.ports, &others, ports::ephemeral_range(), &free)
                .map_err(|e| Failure::problem(e.to_string()))?
        }
    };
    create_private_dir(&state_dir).map_err(|e| {
        Failure::problem(format!(
            "cannot create state dir {}: {e}",
            state_dir.display()
        ))
    })?;
    if let Some(dir) = config_path.parent() {
        create_private_dir(dir)
            .map_err(|e| Failure::problem(format!("cannot create {}: {e}", dir.display())))?;
    }
    let has_secret = existing_cfg
        .as_ref()
        .is_some_and(|c| c.gateway.auth.token.is_some() || c.gateway.auth.password.is_some());
    let keys = OwnedKeys {
        port: Some(port),
        gateway_mode: Some("local"),
        auth_mode: (!has_secret).then_some(AuthMode::Token),
        token: (!has_secret).then(|| Secret::new(generate_gateway_token())),
        ..Default::default()
    };
    config::write_owned_keys(&config_path, &keys).map_err(|e| Failure::problem(e.to_string()))?;
    ctx.registry
        .upsert(Entry {
            name: name.to_string(),
            state_dir: (state_dir != canonical.state_dir).then(|| state_dir.clone()),
            config_path: (config_path
                != state_dir.join(openclaw_profiles::contract::CONFIG_FILE_NAME))
            .then(|| config_path.clone()),
            ports: opts.ports,
            limits: opts.limits,
        })
        .map_err(|e| Failure::problem(e.to_string()))?;
    Ok(CreatedDoc {
        name: name.to_string(),
        port,
        reserved_ports: reserved_text(port, opts.ports),
        port_plan: opts.ports.as_str(),
        state_dir: state_dir.display().to_string(),
        config_path: config_path.display().to_string(),
        limits: opts.limits,
    })
}

/// What `profile create` made (its `--json` document).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDoc {
    /// The profile.
    pub name: String,
    /// Its base port.
    pub port: u16,
    /// `base..=base+110` (compact: which ports).
    pub reserved_ports: String,
    /// `full` or `compact`.
    pub port_plan: &'static str,
    /// Its state dir.
    pub state_dir: String,
    /// Its config file.
    pub config_path: String,
    /// Its resource limits.
    #[serde(serialize_with = "Limits::serialize_json")]
    pub limits: Limits,
}

impl std::fmt::Display for CreatedDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created profile `{}`: port {} (reserves {}), state dir {}, config {}",
            self.name, self.port, self.reserved_ports, self.state_dir, self.config_path
        )?;
        if !self.limits.is_empty() {
            write!(f, "; limits: {}", self.limits.summary())?;
        }
        Ok(())
    }
}

/// One profile in `profile list --json` / `profile show --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileDoc {
    name: String,
    origin: &'static str,
    state_dir: String,
    config_path: String,
    port: Option<u16>,
    reserved_ports: Option<String>,
    port_plan: &'static str,
    #[serde(serialize_with = "Limits::serialize_json")]
    limits: Limits,
    auth_mode: Option<String>,
    has_token: bool,
    locked_by_pid: Option<u32>,
    config_error: Option<String>,
}

fn describe(paths: &ProfilePaths, origin: Origin) -> ProfileDoc {
    let cfg = config::load_config(&paths.config_path);
    let (auth_mode, has_token, config_error) = match &cfg {
        Ok(Some(c)) => (
            c.gateway.auth.mode.map(|m| m.as_str().to_string()),
            c.gateway.auth.token.is_some(),
            None,
        ),
        Ok(None) => (None, false, None),
        Err(e) => (None, false, Some(e.to_string())),
    };
    let port = configured_port(paths).ok();
    let locked_by_pid = match lock::inspect(&paths.state_lock_path()) {
        Ok(LockState::Held(Some(o))) => Some(o.pid),
        _ => None,
    };
    ProfileDoc {
        name: paths.profile.to_string(),
        origin: match origin {
            Origin::Registered => "openclawctl",
            Origin::Discovered => "discovered",
        },
        state_dir: paths.state_dir.display().to_string(),
        config_path: paths.config_path.display().to_string(),
        port,
        reserved_ports: port.map(|p| reserved_text(p, paths.ports)),
        port_plan: paths.ports.as_str(),
        limits: paths.limits,
        auth_mode,
        has_token,
        locked_by_pid,
        config_error,
    }
}

/// `openclawctl profile list [--json]`.
pub fn list(ctx: &Context, json: bool) -> CmdResult {
    let docs: Vec<ProfileDoc> = ctx
        .registry
        .list()
        .iter()
        .map(|k| describe(&k.paths, k.origin))
        .collect();
    if json {
        outln!("{}", serde_json::json!({ "profiles": docs }));
        return Ok(());
    }
    if docs.is_empty() {
        outln!("no profiles yet: create one with `openclawctl profile create <name>`");
    }
    for d in docs {
        outln!(
            "{:<16} port {:<6} {:<12} {}",
            d.name,
            d.port.map_or("?".into(), |p| p.to_string()),
            d.origin,
            d.state_dir
        );
    }
    Ok(())
}

/// `openclawctl profile show <name> [--json]`.
pub fn show(ctx: &Context, raw: &str, json: bool) -> CmdResult {
    let paths = ctx.known_profile(raw)?;
    let origin = ctx
        .registry
        .entry(&paths.profile)
        .map_or(Origin::Discovered, |_| Origin::Registered);
    let d = describe(&paths, origin);
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&d).map_err(|e| Failure::usage(e.to_string()))?
        );
        return Ok(());
    }
    outln!("profile:        {}", d.name);
    outln!("origin:         {}", d.origin);
    outln!("state dir:      {}", d.state_dir);
    outln!("config:         {}", d.config_path);
    outln!(
        "port:           {}",
        d.port.map_or("?".into(), |p| p.to_string())
    );
    outln!(
        "reserved ports: {}",
        d.reserved_ports.as_deref().unwrap_or("?")
    );
    outln!(
        "auth:           {}",
        d.auth_mode.as_deref().unwrap_or("(inferred)")
    );
    outln!("limits:         {}", d.limits.summary());
    outln!("token set:      {}", if d.has_token { "yes" } else { "no" });
    outln!(
        "lock:           {}",
        d.locked_by_pid
            .map_or("free".into(), |p| format!("held by pid {p}"))
    );
    if let Some(e) = d.config_error {
        outln!("config error:   {e}");
    }
    Ok(())
}

/// Options of `profile rm`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RmOptions {
    /// Delete the state dir (and a config outside it) too.
    pub purge: bool,
    /// Confirms `--purge`.
    pub force: bool,
}

/// `openclawctl profile rm <name> [--purge --force]`: forgets the profile;
/// with `--purge --force` also deletes its files after the containment
/// check. A running profile is refused.
pub fn rm(ctx: &mut Context, raw: &str, opts: RmOptions) -> CmdResult {
    ctx.lock_registry()?;
    let paths = ctx.known_profile(raw)?;
    let name = paths.profile.clone();
    if opts.purge && !opts.force {
        return Err(Failure::usage(format!(
            "--purge deletes {} for good; add --force to confirm",
            paths.state_dir.display()
        )));
    }
    // An installed service would outlive the profile (and restart-loop on
    // a deleted state dir): it goes first.
    let native = crate::service_cmd::native(ctx);
    let service_path = native.service_path(crate::service_cmd::service_profile(&paths));
    let had_service = crate::service_cmd::remove_service(ctx, &paths)?;
    let facts = crate::facts::gather(&paths);
    if facts.supervised || facts.holder != crate::facts::Holder::None {
        return Err(Failure::problem(format!(
            "profile `{name}` is running; stop it first with `openclawctl stop --profile {name}`"
        )));
    }
    if opts.purge {
        let others: Vec<(String, Vec<PathBuf>)> = ctx
            .registry
            .list()
            .into_iter()
            .filter(|k| k.paths.profile != name)
            .map(|k| {
                (
                    k.paths.profile.to_string(),
                    vec![k.paths.state_dir, k.paths.config_path],
                )
            })
            .collect();
        openclaw_profiles::purge::check_purgeable(&paths.state_dir, ctx.registry.home(), &others)
            .map_err(|e| Failure::problem(e.to_string()))?;
        let outside_config =
            !paths.config_path.starts_with(&paths.state_dir) && paths.config_path.is_file();
        std::fs::remove_dir_all(&paths.state_dir).map_err(|e| {
            Failure::problem(format!("cannot delete {}: {e}", paths.state_dir.display()))
        })?;
        if outside_config {
            std::fs::remove_file(&paths.config_path).map_err(|e| {
                Failure::problem(format!(
                    "cannot delete {}: {e}",
                    paths.config_path.display()
                ))
            })?;
        }
    }
    let forgotten = ctx
        .registry
        .remove(&name)
        .map_err(|e| Failure::problem(e.to_string()))?;
    let service_note = if had_service {
        format!("; uninstalled its service {}", service_path.display())
    } else {
        String::new()
    };
    let human = match (opts.purge, forgotten) {
        (true, _) => format!(
            "removed profile `{name}` and deleted {}{service_note}",
            paths.state_dir.display()
        ),
        (false, true) => format!(
            "removed profile `{name}`{service_note}; its files stay in {} (delete them with `openclawctl profile rm {name} --purge --force`)",
            paths.state_dir.display()
        ),
        (false, false) if had_service => format!(
            "uninstalled the service of profile `{name}` ({}); its files stay in {}",
            service_path.display(),
            paths.state_dir.display()
        ),
        (false, false) => {
            return Err(Failure::problem(format!(
                "profile `{name}` was not created by openclawctl and exists only as {}; nothing to forget (delete it with --purge --force)",
                paths.state_dir.display()
            )));
        }
    };
    crate::report::done(
        human,
        serde_json::json!({
            "profile": name.as_str(),
            "result": "removed",
            "purged": opts.purge,
            "serviceUninstalled": had_service,
            "stateDir": paths.state_dir.display().to_string(),
        }),
    );
    Ok(())
}

/// The keys `profile set` changes.
pub const SETTABLE_KEYS: &[&str] = &["gateway.port", "gateway.bind", "gateway.auth.mode"];

/// `openclawctl profile set <name> <key> <value>`: validated, written with
/// the comment-keeping editor; `restart` applies it.
pub fn set(ctx: &mut Context, raw: &str, key: &str, value: &str) -> CmdResult {
    ctx.lock_registry()?;
    let paths = ctx.known_profile(raw)?;
    let name = paths.profile.clone();
    let cfg = config::load_config(&paths.config_path)
        .map_err(|e| Failure::problem(e.to_string()))?
        .unwrap_or_default();
    let mut keys = OwnedKeys::default();
    let (mut bind, mut auth) = (
        cfg.gateway.bind.unwrap_or(BindMode::Loopback),
        cfg.gateway.auth.mode,
    );
    let before = match key {
        "gateway.port" => {
            let port: u16 = value.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                Failure::usage(format!(
                    "gateway.port must be a port number from 1 to 65535, not {value:?}"
                ))
            })?;
            if let Some(p) = ports::implied_port(&name).filter(|p| *p != port) {
                return Err(Failure::usage(format!(
                    "profile `{name}` always serves on port {p}: OpenClaw's `--profile {name}` sets OPENCLAW_GATEWAY_PORT={p}"
                )));
            }
            // Overlaps with other profiles count; a busy port is only a
            // warning (this profile's own gateway may hold it).
            ports::check_base_available(port, paths.ports, &claims(ctx, &name), &|_| true)
                .map_err(|e| Failure::problem(e.to_string()))?;
            if let Some(busy) = ports::reserved_ports_of(port, paths.ports)
                .unwrap_or_default()
                .into_iter()
                .find(|p| !ports::is_port_free(*p))
                && Some(port) != configured_port(&paths).ok()
            {
                eprintln!(
                    "openclawctl: warning: port {busy} (reserved by base {port}) is in use right now"
                );
            }
            keys.port = Some(port);
            configured_port(&paths).map_or("?".into(), |p| p.to_string())
        }
        "gateway.bind" => {
            bind = BindMode::parse(value).ok_or_else(|| {
                Failure::usage(format!(
                    "gateway.bind must be loopback, lan, tailnet, auto or custom, not {value:?}"
                ))
            })?;
            keys.bind = Some(bind);
            cfg.gateway
                .bind
                .map_or("(unset)", BindMode::as_str)
                .to_string()
        }
        "gateway.auth.mode" => {
            let mode = AuthMode::parse(value).ok_or_else(|| {
                Failure::usage(format!(
                    "gateway.auth.mode must be token, password, none or trusted-proxy, not {value:?}"
                ))
            })?;
            if mode == AuthMode::Token && cfg.gateway.auth.token.is_none() {
                keys.token = Some(Secret::new(generate_gateway_token()));
            }
            auth = Some(mode);
            keys.auth_mode = Some(mode);
            cfg.gateway
                .auth
                .mode
                .map_or("(unset)", AuthMode::as_str)
                .to_string()
        }
        other => {
            return Err(Failure::usage(format!(
                "`{other}` cannot be set here; settable keys: {} (edit {} for the rest)",
                SETTABLE_KEYS.join(", "),
                paths.config_path.display()
            )));
        }
    };
    if bind != BindMode::Loopback && auth == Some(AuthMode::None) {
        return Err(Failure::problem(format!(
            "profile `{name}` would bind beyond loopback ({}) without auth; the gateway refuses that: set gateway.auth.mode to token or password first",
            bind.as_str()
        )));
    }
    config::write_owned_keys(&paths.config_path, &keys)
        .map_err(|e| Failure::problem(e.to_string()))?;
    crate::report::done(
        format!(
            "set {key} = {value} for profile `{name}` (was {before}); apply it with `openclawctl restart {name}`"
        ),
        serde_json::json!({"profile": name.as_str(), "key": key, "value": value, "previous": before}),
    );
    Ok(())
}

/// Parses `given` limits into `limits` (the first bad one is a usage error).
pub fn apply_limits(limits: &mut Limits, given: &[(Kind, String)]) -> Result<(), Failure> {
    for (kind, text) in given {
        limits.set(*kind, text).map_err(Failure::usage)?;
    }
    Ok(())
}

/// `openclawctl profile set <name> --memory-max 256M ...` (or `set <name>
/// memory-max 256M`): records the limits with the profile in the registry
/// (a profile found on disk is recorded from then on); `restart` applies
/// them to a keeper, `service install --force` to a service.
pub fn set_limits(ctx: &mut Context, raw: &str, given: &[(Kind, String)]) -> CmdResult {
    ctx.lock_registry()?;
    let paths = ctx.known_profile(raw)?;
    let name = paths.profile.clone();
    let mut limits = paths.limits;
    apply_limits(&mut limits, given)?;
    let entry = ctx.registry.entry(&name).cloned().unwrap_or(Entry {
        name: name.to_string(),
        state_dir: None,
        config_path: None,
        ports: paths.ports,
        limits: Limits::default(),
    });
    ctx.registry
        .upsert(Entry { limits, ..entry })
        .map_err(|e| Failure::problem(e.to_string()))?;
    let installed =
        crate::service_cmd::native(ctx).is_installed(crate::service_cmd::service_profile(&paths));
    let apply = if installed {
        format!("`openclawctl service install {name} --force`")
    } else {
        format!("`openclawctl restart {name}`")
    };
    crate::report::done(
        format!(
            "limits of profile `{name}`: {} (were {}); apply them with {apply}",
            limits.summary(),
            paths.limits.summary()
        ),
        serde_json::json!({"profile": name.as_str(), "limits": limits.json(), "previous": paths.limits.json()}),
    );
    Ok(())
}
