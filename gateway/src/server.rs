//! The HTTP side of the gateway: one axum router on one port serving the
//! WebSocket control plane at `/` and the probes (`/health`, `/healthz`,
//! `/ready`, `/readyz`), and [`run`], which serves until cancelled and then
//! drains open sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openclaw_profiles::contract::HEALTHZ_BODY;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::MAX_PAYLOAD_BYTES;
use crate::settings::GatewaySettings;

/// How long open sockets get to close after a stop is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The state every connection shares.
#[derive(Debug)]
pub struct Gateway {
    /// The settings the gateway started with.
    pub settings: GatewaySettings,
    /// When the gateway started.
    pub started: Instant,
    /// The host name reported in presence.
    pub host: String,
    /// Cancelled when the gateway stops.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket connection tasks for the drain.
    pub connections: TaskTracker,
    /// Interval of `tick` events (`policy.tickIntervalMs`).
    pub tick_interval: Duration,
}

impl Gateway {
    /// New shared state with the protocol's 30 s tick.
    pub fn new(settings: GatewaySettings, shutdown: CancellationToken) -> Arc<Self> {
        Self::with_tick_interval(settings, shutdown, crate::protocol::TICK_INTERVAL)
    }

    /// New shared state with another tick interval (tests).
    pub fn with_tick_interval(
        settings: GatewaySettings,
        shutdown: CancellationToken,
        tick: Duration,
    ) -> Arc<Self> {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "gateway".to_string());
        Arc::new(Self {
            settings,
            started: Instant::now(),
            host,
            shutdown,
            connections: TaskTracker::new(),
            tick_interval: tick,
        })
    }

    /// Milliseconds since start.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The router: WS and probes on one port.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(healthz))
        .route("/healthz", get(healthz))
        .route("/ready", get(readyz))
        .route("/readyz", get(readyz))
        .with_state(gw)
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, HEALTHZ_BODY.to_string())
}

async fn readyz(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let draining = gw.shutdown.is_cancelled();
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    // Details only for direct-local callers (spec §11).
    let body = if peer.ip().is_loopback() {
        let failing: Vec<&str> = if draining { vec!["draining"] } else { vec![] };
        serde_json::json!({"ready": !draining, "failing": failing, "uptimeMs": gw.uptime_ms()})
    } else {
        serde_json::json!({"ready": !draining})
    };
    json_response(status, body.to_string())
}

async fn root(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(ws) => ws
            .max_message_size(MAX_PAYLOAD_BYTES)
            .max_frame_size(MAX_PAYLOAD_BYTES)
            .on_upgrade(move |socket| crate::ws::serve_connection(socket, gw, peer)),
        Err(_) => (
            StatusCode::NOT_FOUND,
            "OpenClaw gateway: connect with a WebSocket client\n",
        )
            .into_response(),
    }
}

/// Serves on `listener` until `gw.shutdown` is cancelled, then gives open
/// WebSocket connections up to [`DRAIN_TIMEOUT`] to say goodbye.
pub async fn run(gw: Arc<Gateway>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = router(gw.clone());
    let shutdown = gw.shutdown.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    gw.connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, gw.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = gw.connections.len(),
            "connections still open after drain timeout"
        );
    }
    Ok(())
}
