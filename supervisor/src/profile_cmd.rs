//! `openclawctl profile create|list|show`.

use std::path::{Path, PathBuf};

use openclaw_profiles::ProfileName;
use openclaw_profiles::atomic::create_private_dir;
use openclaw_profiles::config::{self, AuthMode, OwnedKeys, Secret};
use openclaw_profiles::contract::DEFAULT_GATEWAY_PORT;
use openclaw_profiles::lock::{self, LockState};
use openclaw_profiles::paths::ProfilePaths;
use openclaw_profiles::ports::{self, Claim, RESERVED_SPAN};
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
}

fn absolute(p: &Path) -> Result<PathBuf, Failure> {
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
            })
        })
        .collect()
}

/// `openclawctl profile create <name>`.
pub fn create(ctx: &mut Context, raw: &str, opts: &CreateOptions) -> CmdResult {
    let name = Context::parse_name(raw)?;
    if name.is_default() {
        return Err(Failure::usage(
            "`default` is the unnamed profile (~/.openclaw) and is not created by openclawctl; choose another name",
        ));
    }
    if ctx.registry.is_known(&name) {
        let existing = ctx.registry.paths_for(&name);
        return Err(Failure::problem(format!(
            "profile `{name}` already exists (state dir {}); see `openclawctl profile show {name}`",
            existing.state_dir.display()
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
    let others = claims(ctx, &name);
    let free = |p: u16| ports::is_port_free(p);
    let port = match opts
        .port
        .or(existing_cfg.as_ref().and_then(|c| c.gateway.port))
    {
        Some(p) => {
            ports::check_base_available(p, &others, &free)
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
            ports::allocate_base(start, &others, &free)
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
    };
    config::write_owned_keys(&config_path, &keys).map_err(|e| Failure::problem(e.to_string()))?;
    ctx.registry
        .upsert(Entry {
            name: name.to_string(),
            state_dir: (state_dir != canonical.state_dir).then(|| state_dir.clone()),
            config_path: (config_path
                != state_dir.join(openclaw_profiles::contract::CONFIG_FILE_NAME))
            .then(|| config_path.clone()),
        })
        .map_err(|e| Failure::problem(e.to_string()))?;
    println!(
        "created profile `{name}`: port {port} (reserves {port}..={}), state dir {}, config {}",
        u32::from(port) + u32::from(RESERVED_SPAN),
        state_dir.display(),
        config_path.display()
    );
    Ok(())
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
        reserved_ports: port.map(|p| format!("{p}..={}", u32::from(p) + u32::from(RESERVED_SPAN))),
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
        println!("{}", serde_json::json!({ "profiles": docs }));
        return Ok(());
    }
    if docs.is_empty() {
        println!("no profiles yet: create one with `openclawctl profile create <name>`");
    }
    for d in docs {
        println!(
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
        println!(
            "{}",
            serde_json::to_string_pretty(&d).map_err(|e| Failure::usage(e.to_string()))?
        );
        return Ok(());
    }
    println!("profile:        {}", d.name);
    println!("origin:         {}", d.origin);
    println!("state dir:      {}", d.state_dir);
    println!("config:         {}", d.config_path);
    println!(
        "port:           {}",
        d.port.map_or("?".into(), |p| p.to_string())
    );
    println!(
        "reserved ports: {}",
        d.reserved_ports.as_deref().unwrap_or("?")
    );
    println!(
        "auth:           {}",
        d.auth_mode.as_deref().unwrap_or("(inferred)")
    );
    println!("token set:      {}", if d.has_token { "yes" } else { "no" });
    println!(
        "lock:           {}",
        d.locked_by_pid
            .map_or("free".into(), |p| format!("held by pid {p}"))
    );
    if let Some(e) = d.config_error {
        println!("config error:   {e}");
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
    let paths = ctx.known_profile(raw)?;
    let name = paths.profile.clone();
    if opts.purge && !opts.force {
        return Err(Failure::usage(format!(
            "--purge deletes {} for good; add --force to confirm",
            paths.state_dir.display()
        )));
    }
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
    match (opts.purge, forgotten) {
        (true, _) => println!(
            "removed profile `{name}` and deleted {}",
            paths.state_dir.display()
        ),
        (false, true) => println!(
            "removed profile `{name}`; its files stay in {} (delete them with `openclawctl profile rm {name} --purge --force`)",
            paths.state_dir.display()
        ),
        (false, false) => {
            return Err(Failure::problem(format!(
                "profile `{name}` was not created by openclawctl and exists only as {}; nothing to forget (delete it with --purge --force)",
                paths.state_dir.display()
            )));
        }
    }
    Ok(())
}
