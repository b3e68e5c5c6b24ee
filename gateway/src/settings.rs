//! The resolved, checked settings a gateway runs with (the "high" layer):
//! flags > env > `openclaw.json` > defaults, resolved in one place. Nothing
//! is bound or locked until these resolve without error.

use std::net::{IpAddr, Ipv4Addr};

use openclaw_profiles::config::{self, AuthMode, BindMode, OpenClawConfig, Secret};
use openclaw_profiles::contract::{ENV_GATEWAY_PASSWORD, ENV_GATEWAY_TOKEN};
use openclaw_profiles::paths::{self, EnvSnapshot, ProfilePaths};
use openclaw_profiles::ports;

use crate::StartError;

/// The flags of `openclaw gateway [run]` (the "low" layer, from clap).
#[derive(Debug, Clone, Default)]
pub struct GatewayFlags {
    /// `--port`.
    pub port: Option<u16>,
    /// `--bind`.
    pub bind: Option<BindMode>,
    /// `--auth`.
    pub auth: Option<AuthMode>,
    /// `--token`.
    pub token: Option<Secret>,
    /// `--password`.
    pub password: Option<Secret>,
    /// `--allow-unconfigured`.
    pub allow_unconfigured: bool,
}

/// How clients must authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No shared secret.
    None,
    /// `auth.token` must match.
    Token(Secret),
    /// `auth.password` must match.
    Password(Secret),
}

impl Auth {
    /// The `authMode` spelling.
    pub fn mode_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Token(_) => "token",
            Self::Password(_) => "password",
        }
    }
}

/// Everything a gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The profile's paths.
    pub paths: ProfilePaths,
    /// The port to serve on.
    pub port: u16,
    /// The address to bind.
    pub bind_addr: IpAddr,
    /// Client authentication.
    pub auth: Auth,
    /// The parsed config (empty when the file is absent).
    pub config: OpenClawConfig,
    /// `gateway.trustedProxies`: peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<crate::proxy::Cidr>,
}

impl GatewaySettings {
    /// True if the bind address is loopback only.
    pub fn is_loopback(&self) -> bool {
        self.bind_addr.is_loopback()
    }
}

/// A config to start from when the gateway's config file does not exist
/// yet (a container's first start from a mounted seed). An existing config
/// is never touched: the seed is for the first start only.
pub const ENV_CONFIG_SEED: &str = "OPENCLAW_CONFIG_SEED";

/// Copies `seed` to `config` (atomically, 0600) unless `config` exists.
fn seed_config(seed: &std::path::Path, config: &std::path::Path) -> Result<(), StartError> {
    if config.exists() {
        return Ok(());
    }
    let body = std::fs::read(seed).map_err(|e| {
        StartError::Config(format!(
            "cannot read the config seed {} ({ENV_CONFIG_SEED}): {e}; mount it there or unset {ENV_CONFIG_SEED}",
            seed.display()
        ))
    })?;
    if let Some(dir) = config.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    openclaw_profiles::atomic::write_atomic(config, &body, 0o600).map_err(|e| {
        StartError::Config(format!(
            "cannot write {} from the seed: {e}",
            config.display()
        ))
    })?;
    tracing::info!(seed = %seed.display(), config = %config.display(), "config seeded (first start)");
    Ok(())
}

/// Resolves settings for `openclaw gateway` from flags and an environment
/// that already has `--profile` applied.
pub fn resolve(flags: &GatewayFlags, env: &EnvSnapshot) -> Result<GatewaySettings, StartError> {
    let paths = paths::resolve_paths(env).map_err(|e| StartError::Config(e.to_string()))?;
    if let Some(seed) = env.get(ENV_CONFIG_SEED).filter(|s| !s.trim().is_empty()) {
        seed_config(std::path::Path::new(seed), &paths.config_path)?;
    }
    let loaded =
        config::load_config(&paths.config_path).map_err(|e| StartError::Config(e.to_string()))?;
    let gateway_mode = loaded
        .as_ref()
        .and_then(|c| c.raw.pointer("/gateway/mode"))
        .and_then(|m| m.as_str())
        .map(str::to_string);
    if !flags.allow_unconfigured && gateway_mode.as_deref() != Some("local") {
        let current = gateway_mode.as_deref().unwrap_or("unset");
        let hint = if loaded.is_none() {
            format!(" (no config at {})", paths.config_path.display())
        } else {
            String::new()
        };
        return Err(StartError::Config(format!(
            "Gateway start blocked: set gateway.mode=local (current: {current}){hint} or pass --allow-unconfigured"
        )));
    }
    let config = loaded.unwrap_or_default();
    let port = ports::resolve_gateway_port(flags.port, env, config.gateway.port)
        .map_err(|e| StartError::Config(e.to_string()))?;
    if paths.ports == ports::PortPlan::Compact
        && config.raw.pointer("/browser/enabled") == Some(&serde_json::Value::Bool(true))
    {
        return Err(StartError::Config(format!(
            "browser.enabled needs the browser's CDP ports {}..={}, outside this profile's compact port plan ({port}, {}, {}, {}): set browser.enabled to false, or recreate the profile with `openclawctl profile create {} --ports full`",
            u32::from(port) + 11,
            u32::from(port) + u32::from(ports::RESERVED_SPAN),
            u32::from(port) + 1,
            u32::from(port) + 2,
            u32::from(port) + 4,
            paths.profile,
        )));
    }
    let bind = flags
        .bind
        .or(config.gateway.bind)
        .unwrap_or(BindMode::Loopback);
    let bind_addr = bind_address(bind, config.gateway.custom_bind_host.as_deref())?;

    let token = flags
        .token
        .clone()
        .or_else(|| env.get(ENV_GATEWAY_TOKEN).map(Secret::new))
        .or_else(|| config.gateway.auth.token.clone());
    let password = flags
        .password
        .clone()
        .or_else(|| env.get(ENV_GATEWAY_PASSWORD).map(Secret::new))
        .or_else(|| config.gateway.auth.password.clone());
    let mode = match flags.auth.or(config.gateway.auth.mode) {
        Some(m) => m,
        None => match (&token, &password) {
            (Some(_), Some(_)) => {
                return Err(StartError::Config(
                    "both a gateway token and a password are set: choose one with gateway.auth.mode (or --auth token|password)"
                        .into(),
                ));
            }
            (Some(_), None) => AuthMode::Token,
            (None, Some(_)) => AuthMode::Password,
            (None, None) => AuthMode::None,
        },
    };
    // A blank secret is no secret: every client would "know" it.
    for (what, secret) in [("token", &token), ("password", &password)] {
        if secret
            .as_ref()
            .is_some_and(|s| s.expose().trim().is_empty())
        {
            return Err(StartError::Config(format!(
                "the gateway {what} is empty or blank: set a real one (gateway.auth.{what}, OPENCLAW_GATEWAY_{}) or remove it",
                what.to_ascii_uppercase()
            )));
        }
    }
    let auth = match mode {
        AuthMode::None => Auth::None,
        AuthMode::Token => Auth::Token(token.ok_or_else(|| {
            StartError::Config(
                "gateway auth mode is token but no token is set: set gateway.auth.token, OPENCLAW_GATEWAY_TOKEN or --token"
                    .into(),
            )
        })?),
        AuthMode::Password => Auth::Password(password.ok_or_else(|| {
            StartError::Config(
                "gateway auth mode is password but no password is set: set gateway.auth.password, OPENCLAW_GATEWAY_PASSWORD or --password"
                    .into(),
            )
        })?),
        AuthMode::TrustedProxy => {
            return Err(StartError::Config(
                "gateway.auth.mode trusted-proxy is not supported by this gateway yet: use token or password".into(),
            ));
        }
    };
    if !bind_addr.is_loopback() && auth == Auth::None {
        return Err(StartError::Config(format!(
            "refusing to bind gateway to {bind_addr}:{port} without auth: set gateway.auth.token (or OPENCLAW_GATEWAY_TOKEN), or use --bind loopback"
        )));
    }
    let trusted_proxies = config
        .gateway
        .trusted_proxies
        .iter()
        .map(|s| crate::proxy::Cidr::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StartError::Config)?;
    Ok(GatewaySettings {
        paths,
        port,
        bind_addr,
        auth,
        config,
        trusted_proxies,
    })
}

fn bind_address(bind: BindMode, custom: Option<&str>) -> Result<IpAddr, StartError> {
    Ok(match bind {
        // No Tailscale integration: tailnet falls back to loopback, as
        // OpenClaw does when no tailnet address exists.
        BindMode::Loopback | BindMode::Tailnet => IpAddr::V4(Ipv4Addr::LOCALHOST),
        BindMode::Lan => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        BindMode::Auto => {
            if std::path::Path::new("/.dockerenv").exists() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
        }
        BindMode::Custom => {
            let host = custom.ok_or_else(|| {
                StartError::Config(
                    "gateway.bind is custom but gateway.customBindHost is not set".into(),
                )
            })?;
            host.parse().map_err(|_| {
                StartError::Config(format!(
                    "gateway.customBindHost {host:?} is not an IP address"
                ))
            })?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(config: &str) -> (tempfile::TempDir, EnvSnapshot) {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("openclaw.json"), config).unwrap();
        let env = EnvSnapshot::from_pairs([
            ("HOME", dir.path().to_str().unwrap()),
            ("OPENCLAW_STATE_DIR", state.to_str().unwrap()),
        ]);
        (dir, env)
    }

    #[test]
    fn precedence_and_auth_inference() {
        let (_d, mut env) = setup(r#"{gateway:{mode:"local",port:20000,auth:{token:"cfg"}}}"#);
        let s = resolve(&GatewayFlags::default(), &env).unwrap();
        assert_eq!(s.port, 20000);
        assert_eq!(s.auth, Auth::Token(Secret::new("cfg")));
        env.set("OPENCLAW_GATEWAY_TOKEN", "env");
        env.set("OPENCLAW_GATEWAY_PORT", "21000");
        let s = resolve(&GatewayFlags::default(), &env).unwrap();
        assert_eq!((s.port, s.auth), (21000, Auth::Token(Secret::new("env"))));
        let flags = GatewayFlags {
            port: Some(22000),
            token: Some(Secret::new("flag")),
            ..Default::default()
        };
        let s = resolve(&flags, &env).unwrap();
        assert_eq!((s.port, s.auth), (22000, Auth::Token(Secret::new("flag"))));
    }

    #[test]
    fn refusals() {
        let cases = [
            (
                r#"{}"#,
                GatewayFlags::default(),
                "Gateway start blocked: set gateway.mode=local (current: unset)",
            ),
            (
                r#"{gateway:{mode:"local"}}"#,
                GatewayFlags {
                    bind: Some(BindMode::Lan),
                    ..Default::default()
                },
                "refusing to bind gateway to 0.0.0.0:18789 without auth",
            ),
            (
                r#"{gateway:{mode:"local",auth:{mode:"token"}}}"#,
                GatewayFlags::default(),
                "gateway auth mode is token but no token is set",
            ),
            (
                r#"{gateway:{mode:"local",auth:{token:"a",password:"b"}}}"#,
                GatewayFlags::default(),
                "both a gateway token and a password are set",
            ),
            (
                r#"{gateway:{mode:"local",port:"x"}}"#,
                GatewayFlags::default(),
                "`gateway.port` must be",
            ),
            (
                r#"{gateway:{mode:"local",auth:{mode:"token",token:"   "}}}"#,
                GatewayFlags::default(),
                "the gateway token is empty or blank",
            ),
        ];
        for (config, flags, want) in cases {
            let (_d, env) = setup(config);
            let err = resolve(&flags, &env).unwrap_err();
            assert!(err.to_string().contains(want), "{config}: {err}");
            assert_eq!(err.exit_code(), 78);
        }
    }

    #[test]
    fn allow_unconfigured_and_lan_with_auth() {
        let (_d, env) = setup("");
        let flags = GatewayFlags {
            allow_unconfigured: true,
            bind: Some(BindMode::Lan),
            token: Some(Secret::new("t")),
            ..Default::default()
        };
        let s = resolve(&flags, &env).unwrap();
        assert!(!s.is_loopback());
        assert_eq!(s.port, 18789);
    }
}
