//! The HTTP side of the gateway: one axum router on one port serving the
//! WebSocket control plane at `/` (a plain `GET /` gets the web chat
//! page), the probes (`/health`, `/healthz`, `/ready`, `/readyz`), and
//! [`run`], which serves until cancelled and then drains open sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use openclaw_profiles::contract::HEALTHZ_BODY;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::MAX_PAYLOAD_BYTES;
use crate::settings::GatewaySettings;

/// Read buffer of one WebSocket (it grows for a large message and shrinks
/// back as tungstenite consumes it).
pub const WS_BUFFER_BYTES: usize = 2048;

/// Most presence entries a `hello-ok` snapshot carries. The largest frame
/// a socket ever sends sizes its write buffer for good (tungstenite keeps
/// the capacity), so a big snapshot would cost every idle client its size.
pub const SNAPSHOT_PRESENCE_MAX: usize = 16;

/// Presence changes within this window go out as one `presence` event: a
/// burst of N connects costs one list and one event per reader, not N.
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(50);

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
    /// `<os> <kernel release>` reported in presence (read once at start).
    pub platform: String,
    /// Cancelled when the gateway stops.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket connection tasks for the drain.
    pub connections: TaskTracker,
    /// Interval of `tick` events (`policy.tickIntervalMs`).
    pub tick_interval: Duration,
    /// Interval of WS pings; no pong by the next ping closes the socket.
    pub ping_interval: Duration,
    /// Time from open to a successful `connect`.
    pub handshake_timeout: Duration,
    /// Time to send the request headers.
    pub header_timeout: Duration,
    /// Period of the health refresh (a `health` event each time).
    pub health_refresh: Duration,
    /// Bytes queued for one socket before it is closed as a slow consumer.
    pub max_buffered: usize,
    /// Server events for every socket (each filters by its scopes).
    pub events: tokio::sync::broadcast::Sender<Broadcast>,
    /// Connected clients' presence entries, by connection id.
    pub presence: std::sync::Mutex<std::collections::BTreeMap<String, Presence>>,
    /// `stateVersion.presence`.
    pub presence_version: std::sync::atomic::AtomicU64,
    /// `stateVersion.health`.
    pub health_version: std::sync::atomic::AtomicU64,
    /// This gateway's instance id (presence `self`).
    pub instance_id: String,
    /// The identity of this gateway's state dir
    /// (`openclaw_profiles::contract::instance_id`), sent with every probe
    /// answer so that supervisors accept only their own gateway's answer.
    pub state_instance: String,
    /// Paired devices and pending requests.
    pub pairing: std::sync::Mutex<crate::pairing::Store>,
    /// Failed-auth limiter.
    pub limiter: std::sync::Mutex<crate::auth::FailureLimiter>,
    /// Set when presence changed and readers have not heard yet.
    pub presence_dirty: tokio::sync::Notify,
    /// Connections that have not authenticated yet (capped).
    pub admission: Arc<crate::listener::Admission>,
    /// Replay cache of idempotency keys.
    pub dedupe: std::sync::Mutex<crate::methods::Dedupe>,
    /// The agent runtime: runs, sessions, providers.
    pub agent: crate::agent::Runtime,
    /// Connected nodes and their pending invokes.
    pub nodes: crate::nodes::Nodes,
    /// Live canvas capabilities (one per socket that has one).
    pub canvas_caps: crate::canvas::Caps,
    /// The seed-mode canvas host's address, once it listens.
    pub canvas_host_addr: std::sync::OnceLock<SocketAddr>,
}

/// The gateway's timers and pre-auth caps.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// Request headers of a new connection (10 s).
    pub header_read: Duration,
    /// Unauthenticated connections: in all, and per address.
    pub preauth_caps: (usize, usize),
    /// `tick` events (`policy.tickIntervalMs`, 30 s).
    pub tick: Duration,
    /// WS pings; no pong by the next one closes the socket (25 s).
    pub ping: Duration,
    /// Open to a successful `connect` (15 s).
    pub handshake: Duration,
    /// Health refresh, each followed by a `health` event (60 s).
    pub health_refresh: Duration,
    /// Bytes queued for one socket before it is closed as a slow consumer
    /// (`policy.maxBufferedBytes`, 50 MiB).
    pub max_buffered: usize,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            header_read: crate::listener::HEADER_READ_TIMEOUT,
            preauth_caps: (
                crate::listener::MAX_PREAUTH,
                crate::listener::MAX_PREAUTH_PER_ADDR,
            ),
            tick: crate::protocol::TICK_INTERVAL,
            ping: crate::ws::PING_INTERVAL,
            handshake: crate::protocol::HANDSHAKE_TIMEOUT,
            health_refresh: Duration::from_secs(60),
            max_buffered: crate::protocol::MAX_BUFFERED_BYTES,
        }
    }
}

/// One client's presence entry, kept as the JSON every reader gets (a
/// snapshot or a `presence` event is a concatenation, not a deep clone and
/// a re-serialization per entry), with the fields the gateway asks about.
#[derive(Debug)]
pub struct Presence {
    json: Box<serde_json::value::RawValue>,
    device_id: Option<Box<str>>,
    instance_id: Option<Box<str>>,
    /// When the client left, for entries kept as `disconnect` (nodes).
    departed_ms: Option<u64>,
}

impl Presence {
    fn new(entry: &serde_json::Value) -> Self {
        let text = |k: &str| entry[k].as_str().map(Box::from);
        Self {
            json: serde_json::value::to_raw_value(entry).unwrap_or_else(|_| {
                serde_json::value::RawValue::from_string("{}".into()).expect("valid JSON")
            }),
            device_id: text("deviceId"),
            instance_id: text("instanceId"),
            departed_ms: (entry["reason"] == "disconnect")
                .then(|| entry["ts"].as_u64().unwrap_or(0)),
        }
    }

    /// The entry as sent.
    pub fn json(&self) -> &str {
        self.json.get()
    }
}

/// Departed entries kept at most (the oldest go first).
pub const PRESENCE_GONE_MAX: usize = 200;

/// How long a disconnected node stays in the presence list.
pub const PRESENCE_TTL: Duration = Duration::from_secs(300);

/// An event for every connected socket.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// Event name.
    pub event: &'static str,
    /// Payload, serialized once for every socket.
    pub payload: Arc<str>,
    /// The `stateVersion` to attach, taken when the event was made (a
    /// socket that reads it late still reports the version it describes).
    pub state_version: Option<Arc<serde_json::Value>>,
}

impl Gateway {
    /// New shared state with the protocol's timers; the handshake
    /// deadline honours `OPENCLAW_HANDSHAKE_TIMEOUT_MS`.
    pub fn new(settings: GatewaySettings, shutdown: CancellationToken) -> Arc<Self> {
        let mut timers = Timers::default();
        if let Some(ms) = std::env::var("OPENCLAW_HANDSHAKE_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            timers.handshake = Duration::from_millis(ms);
        }
        if let Some(ms) = std::env::var("OPENCLAW_HEADER_READ_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            timers.header_read = Duration::from_millis(ms);
        }
        Self::with_timers(settings, shutdown, timers)
    }

    /// New shared state with the given timers (tests shorten them).
    pub fn with_timers(
        settings: GatewaySettings,
        shutdown: CancellationToken,
        timers: Timers,
    ) -> Arc<Self> {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "gateway".to_string());
        let state_instance = openclaw_profiles::contract::instance_id(&settings.paths.state_dir);
        Arc::new(Self {
            agent: crate::agent::Runtime::new(&settings.paths.state_dir, &settings.config.raw),
            nodes: Default::default(),
            canvas_caps: Default::default(),
            canvas_host_addr: Default::default(),
            pairing: std::sync::Mutex::new(
                crate::pairing::Store::load(&settings.paths.state_dir).with_writer(),
            ),
            settings,
            started: Instant::now(),
            host,
            platform: format!(
                "{} {}",
                std::env::consts::OS,
                std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
            )
            .trim()
            .to_string(),
            shutdown,
            connections: TaskTracker::new(),
            tick_interval: timers.tick,
            ping_interval: timers.ping,
            handshake_timeout: timers.handshake,
            header_timeout: timers.header_read,
            health_refresh: timers.health_refresh,
            max_buffered: timers.max_buffered,
            events: tokio::sync::broadcast::channel(256).0,
            presence: Default::default(),
            presence_version: std::sync::atomic::AtomicU64::new(1),
            health_version: std::sync::atomic::AtomicU64::new(1),
            instance_id: crate::protocol::uuid_v4(),
            state_instance,
            limiter: Default::default(),
            dedupe: Default::default(),
            presence_dirty: tokio::sync::Notify::new(),
            admission: Arc::new(crate::listener::Admission::with_limits(
                timers.preauth_caps.0,
                timers.preauth_caps.1,
            )),
        })
    }

    /// `<bind address>:<port>` as a URL host (the fallback when a client
    /// sent no `Host`).
    pub fn local_host(&self) -> String {
        let port = self.settings.port;
        match self.settings.bind_addr {
            std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
            a => format!("{a}:{port}"),
        }
    }

    /// Milliseconds since start.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// `{presence, health}` as sent with events and in `hello-ok`.
    pub fn state_version(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        serde_json::json!({
            "presence": self.presence_version.load(Relaxed),
            "health": self.health_version.load(Relaxed),
        })
    }

    /// Sends `event` to every socket allowed to see it.
    pub fn broadcast(
        &self,
        event: &'static str,
        payload: serde_json::Value,
        with_state_version: bool,
    ) {
        // Serialized once here: each socket only splices it into its frame
        // (its own `seq`), whatever the number of sockets.
        self.broadcast_raw(event, payload.to_string().into(), with_state_version);
    }

    /// [`Self::broadcast`] of a payload already serialized.
    pub fn broadcast_raw(&self, event: &'static str, payload: Arc<str>, with_state_version: bool) {
        let _ = self.events.send(Broadcast {
            event,
            payload,
            state_version: with_state_version.then(|| Arc::new(self.state_version())),
        });
    }

    /// The presence list as JSON: the gateway's own entry followed by
    /// every client's.
    pub fn presence_list(&self) -> String {
        self.presence_up_to(usize::MAX)
    }

    /// The presence list of a `hello-ok` snapshot: the gateway and at most
    /// [`SNAPSHOT_PRESENCE_MAX`]` - 1` clients, so that a connect costs the
    /// same with ten clients or ten thousand (`system-presence` has them all).
    pub fn presence_snapshot(&self) -> String {
        self.presence_up_to(SNAPSHOT_PRESENCE_MAX - 1)
    }

    /// The gateway's own entry and at most `clients` clients' entries, as
    /// a JSON array.
    fn presence_up_to(&self, clients: usize) -> String {
        let mut list = String::from("[");
        list.push_str(&crate::methods::self_presence(self).to_string());
        if let Ok(p) = self.presence.lock() {
            list.reserve(p.values().take(clients).map(|e| e.json().len() + 1).sum());
            for e in p.values().take(clients) {
                list.push(',');
                list.push_str(e.json());
            }
        }
        list.push(']');
        list
    }

    /// Device ids of connected sockets.
    pub fn connected_devices(&self) -> Vec<String> {
        self.presence
            .lock()
            .map(|p| {
                p.values()
                    .filter_map(|e| e.device_id.as_deref().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records a client's presence (or removes it with `None`). Readers
    /// hear of it from the presence flusher ([`run`]): one `presence` event
    /// per burst of changes ([`PRESENCE_COALESCE`]), not one per change.
    pub fn set_presence(&self, conn_id: &str, entry: Option<serde_json::Value>) {
        if let Ok(mut p) = self.presence.lock() {
            match entry {
                Some(e) => p.insert(conn_id.to_string(), Presence::new(&e)),
                None => p.remove(conn_id),
            };
        }
        self.presence_version
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.presence_dirty.notify_one();
    }

    /// Marks a closed socket's presence entry `disconnect` and forgets it
    /// after [`PRESENCE_TTL`] (nodes: operators see them leave).
    pub fn presence_disconnect(self: &Arc<Self>, conn_id: &str) {
        let entry = self.presence.lock().ok().and_then(|p| {
            p.get(conn_id)
                .and_then(|e| serde_json::from_str::<serde_json::Value>(e.json()).ok())
        });
        let Some(mut entry) = entry else {
            return;
        };
        entry["reason"] = "disconnect".into();
        let ts = crate::protocol::now_ms();
        entry["ts"] = ts.into();
        // At most PRESENCE_GONE_MAX departed entries are kept, newest first.
        if let Ok(mut p) = self.presence.lock() {
            let mut gone: Vec<(u64, String)> = p
                .iter()
                .filter_map(|(k, e)| e.departed_ms.map(|t| (t, k.clone())))
                .collect();
            if gone.len() >= PRESENCE_GONE_MAX {
                gone.sort();
                for (_, k) in &gone[..=gone.len() - PRESENCE_GONE_MAX] {
                    p.remove(k);
                }
            }
        }
        self.set_presence(conn_id, Some(entry));
        let (gw, conn) = (Arc::downgrade(self), conn_id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(PRESENCE_TTL).await;
            if let Some(gw) = gw.upgrade() {
                let same = gw
                    .presence
                    .lock()
                    .is_ok_and(|p| p.get(&conn).is_some_and(|e| e.departed_ms == Some(ts)));
                if same {
                    gw.set_presence(&conn, None);
                }
            }
        });
    }

    /// Drops the departed entries of `instance_id` (a node that came back
    /// is listed once).
    pub fn presence_forget_gone(&self, instance_id: &str) {
        if let Ok(mut p) = self.presence.lock() {
            p.retain(|_, e| {
                !(e.departed_ms.is_some() && e.instance_id.as_deref() == Some(instance_id))
            });
        }
    }

    /// Broadcasts the presence list as it is now.
    fn flush_presence(&self) {
        let payload = format!(r#"{{"presence":{}}}"#, self.presence_list());
        self.broadcast_raw("presence", payload.into(), true);
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
        .route("/webchat.js", get(crate::webchat::script))
        .route("/webchat.css", get(crate::webchat::style))
        .route("/__openclaw__/canvas", get(crate::canvas::fallthrough))
        .route("/__openclaw__/canvas/", get(crate::canvas::fallthrough))
        .route(
            "/__openclaw__/canvas/{*rest}",
            any(crate::canvas::canvas_route),
        )
        .route(
            "/__openclaw__/cap/{cap}/{*rest}",
            any(crate::canvas::cap_route),
        )
        .route("/__openclaw__/cap/{cap}", any(crate::canvas::bare_cap))
        .with_state(gw)
}

/// A probe answer with this gateway's identity headers (pid, state-dir
/// instance, profile).
fn probe_response(gw: &Gateway, status: StatusCode, body: String) -> Response {
    use openclaw_profiles::contract::{HEADER_INSTANCE, HEADER_PID, HEADER_PROFILE};
    (
        status,
        [
            (
                header::CONTENT_TYPE.as_str(),
                "application/json; charset=utf-8",
            ),
            (HEADER_PID, &std::process::id().to_string()),
            (HEADER_INSTANCE, &gw.state_instance),
            (HEADER_PROFILE, gw.settings.paths.profile.as_str()),
        ],
        body,
    )
        .into_response()
}

async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    probe_response(&gw, StatusCode::OK, HEALTHZ_BODY.to_string())
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
    probe_response(&gw, status, body.to_string())
}

async fn root(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: axum::extract::Request,
) -> Response {
    let Some(upgrade) = crate::socket::Upgrade::from_request(&mut req) else {
        // A browser: the web chat page.
        return crate::webchat::index();
    };
    let headers = req.headers();
    let client = crate::proxy::client_addr(peer, headers, &gw.settings.trusted_proxies);
    // The connection's pre-auth slot goes with the socket until hello-ok.
    let preauth = req
        .extensions()
        .get::<crate::listener::Slot>()
        .and_then(crate::listener::Slot::take);
    // Where this client reaches us (capability URLs name it).
    let trusted = crate::proxy::is_trusted(peer.ip(), &gw.settings.trusted_proxies);
    let base = crate::canvas::public_base(headers, trusted, || gw.local_host());
    // Small buffers: thousands of mostly idle sockets each keep theirs
    // (tungstenite's 128 KiB default would be 128 KiB per client).
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(crate::protocol::MAX_BUFFERED_BYTES)
        .max_message_size(Some(MAX_PAYLOAD_BYTES))
        .max_frame_size(Some(MAX_PAYLOAD_BYTES));
    upgrade.on_upgrade(config, move |socket| {
        crate::ws::serve_connection(socket, gw, client, preauth, base)
    })
}

/// Serves on `listener` (through [`crate::listener::serve`]) until
/// `gw.shutdown` is cancelled, then gives open WebSocket connections up to
/// [`DRAIN_TIMEOUT`] to say goodbye; what is still handshaking is closed at
/// once.
pub async fn run(gw: Arc<Gateway>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = router(gw.clone());
    // The seed's canvas host on its own port, when configured.
    let skip = std::env::var("OPENCLAW_SKIP_CANVAS_HOST").is_ok_and(|v| v == "1");
    let port = listener.local_addr().map_or(gw.settings.port, |a| a.port());
    if let Some(cfg) = crate::canvas_host::Config::from_raw(
        &gw.settings.config.raw,
        port,
        &gw.settings.paths.state_dir,
        skip,
    ) {
        let host_gw = gw.clone();
        tokio::spawn(async move {
            let port = cfg.port;
            if let Err(e) = crate::canvas_host::serve(host_gw, cfg).await {
                tracing::error!(
                    port,
                    "the canvas host cannot listen ({e}); the gateway runs on without it (set canvasHost.port, or canvasHost.enabled:false)"
                );
            }
        });
    }
    // Health refresh: every 60 s a `health` event with a new stateVersion.
    let refresher = gw.clone();
    tokio::spawn(async move {
        let period = refresher.health_refresh;
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    refresher.health_version.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    refresher.broadcast("health", crate::methods::health_snapshot(&refresher), true);
                }
                () = refresher.shutdown.cancelled() => break,
            }
        }
    });
    let flusher = gw.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                () = flusher.shutdown.cancelled() => break,
                () = flusher.presence_dirty.notified() => {}
            }
            tokio::time::sleep(PRESENCE_COALESCE).await;
            flusher.flush_presence();
        }
    });
    // The accept loop runs on a worker, not on the thread that blocks on
    // the runtime: a connection's task then starts on the worker that
    // accepted it (its local queue) instead of waking another thread.
    let _ = tokio::spawn(crate::listener::serve(gw.clone(), listener, app)).await;
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
