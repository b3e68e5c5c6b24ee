//! The singleton guard, in OpenClaw's order (supervisor spec §3): the
//! state-dir ownership lock, then an exclusive bind of the port. Each
//! failure is a [`StartError`] with OpenClaw's message and exit 78.

use std::net::SocketAddr;
use std::time::Duration;

use openclaw_profiles::atomic::create_private_dir;
use openclaw_profiles::lock::{InstanceLock, LockError, OwnerRecord};

use crate::StartError;
use crate::settings::GatewaySettings;

/// How long a held state lock is waited for.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Bind attempts on `EADDRINUSE` (a listener in `TIME_WAIT` may be
/// finishing) and the pause between them.
pub const BIND_ATTEMPTS: u32 = 20;
/// Pause between bind attempts.
pub const BIND_RETRY_DELAY: Duration = Duration::from_millis(500);

/// `OPENCLAW_ALLOW_MULTI_GATEWAY=1`: skip the per-config lock.
pub const ENV_ALLOW_MULTI: &str = "OPENCLAW_ALLOW_MULTI_GATEWAY";

/// True when a service manager runs us (systemd sets `INVOCATION_ID`,
/// launchd `XPC_SERVICE_NAME`; `openclawctl`'s keeper sets
/// `OPENCLAW_SUPERVISOR_MODE=external`).
pub fn under_service_manager(env: &openclaw_profiles::paths::EnvSnapshot) -> bool {
    env.get("INVOCATION_ID").is_some()
        || env.get("XPC_SERVICE_NAME").is_some_and(|v| v != "0")
        || env.get(openclaw_profiles::contract::ENV_SUPERVISOR_MODE) == Some("external")
}

/// Under a service manager, a newcomer that finds a healthy gateway
/// already owning this state dir or port yields at once (exit 78) instead
/// of waiting out the lock and bind retries.
pub fn yield_to_healthy_incumbent(settings: &GatewaySettings) -> Result<(), StartError> {
    let held = matches!(
        openclaw_profiles::lock::inspect(&settings.paths.state_lock_path()),
        Ok(openclaw_profiles::lock::LockState::Held(_))
    );
    let busy = !openclaw_profiles::ports::is_port_free(settings.port);
    if (held || busy)
        && let Some(who) =
            openclaw_service_templates::probe::identify(settings.port, Duration::from_secs(2))
    {
        return Err(StartError::Lock(format!(
            "{} already serves ws://127.0.0.1:{}; yielding to it",
            who.describe(),
            settings.port
        )));
    }
    Ok(())
}

/// The per-config lock (OpenClaw's historical singleton): two gateways
/// with different state dirs must not share one config file. Lives in the
/// temp dir, keyed by the config path.
pub fn take_config_lock(
    settings: &GatewaySettings,
    version: &str,
) -> Result<InstanceLock, StartError> {
    use sha2::{Digest, Sha256};
    let config = std::fs::canonicalize(&settings.paths.config_path)
        .unwrap_or_else(|_| settings.paths.config_path.clone());
    let hash: String = Sha256::digest(config.to_string_lossy().as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = std::env::temp_dir().join(format!("openclaw-{}", nix::unistd::getuid()));
    let path = dir.join(format!("gateway.config-{hash}.lock"));
    let paths = &settings.paths;
    let record =
        OwnerRecord::for_current_process(version, paths.profile.as_str(), &paths.config_path);
    InstanceLock::acquire(&path, record, LOCK_TIMEOUT).map_err(|e| match e {
        LockError::Held { .. } => StartError::Lock(e.to_string()),
        LockError::Io { .. } => StartError::Config(e.to_string()),
    })
}

/// Creates the state dir (0700) and takes its ownership lock.
pub fn take_state_lock(
    settings: &GatewaySettings,
    version: &str,
) -> Result<InstanceLock, StartError> {
    let paths = &settings.paths;
    create_private_dir(&paths.state_dir).map_err(|e| {
        StartError::Config(format!(
            "cannot create state dir {}: {e}",
            paths.state_dir.display()
        ))
    })?;
    let record =
        OwnerRecord::for_current_process(version, paths.profile.as_str(), &paths.config_path);
    InstanceLock::acquire(&paths.state_lock_path(), record, LOCK_TIMEOUT).map_err(|e| match e {
        LockError::Held { .. } => StartError::Lock(e.to_string()),
        LockError::Io { .. } => StartError::Config(e.to_string()),
    })
}

/// Binds the gateway's port exclusively, retrying while it is in use.
pub async fn bind_exclusive(
    settings: &GatewaySettings,
) -> Result<tokio::net::TcpListener, StartError> {
    let addr = SocketAddr::new(settings.bind_addr, settings.port);
    let url = format!("ws://{}:{}", display_host(settings), settings.port);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                l.set_nonblocking(true).map_err(|e| {
                    StartError::Bind(format!("failed to bind gateway socket on {url}: {e}"))
                })?;
                return tokio::net::TcpListener::from_std(l).map_err(|e| {
                    StartError::Bind(format!("failed to bind gateway socket on {url}: {e}"))
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                // Another gateway answering there will not go away by
                // itself: say whose it is now instead of retrying.
                let port = settings.port;
                let owner = tokio::task::spawn_blocking(move || {
                    openclaw_service_templates::probe::identify(port, Duration::from_secs(1))
                })
                .await
                .ok()
                .flatten();
                if let Some(who) = owner {
                    return Err(StartError::Bind(format!(
                        "another gateway instance is already listening on {url}: {}; give this profile another gateway.port",
                        who.describe()
                    )));
                }
                if attempt >= BIND_ATTEMPTS {
                    return Err(StartError::Bind(format!(
                        "another gateway instance is already listening on {url}"
                    )));
                }
                tokio::time::sleep(BIND_RETRY_DELAY).await;
            }
            Err(e) => {
                return Err(StartError::Bind(format!(
                    "failed to bind gateway socket on {url}: {e}"
                )));
            }
        }
    }
}

fn display_host(settings: &GatewaySettings) -> String {
    if settings.bind_addr.is_unspecified() || settings.bind_addr.is_loopback() {
        "127.0.0.1".to_string()
    } else {
        settings.bind_addr.to_string()
    }
}
