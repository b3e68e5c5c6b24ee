//! An in-process gateway on 127.0.0.1:0 and a WebSocket client whose every
//! received frame is validated against the protocol schema.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use openclaw_e2e::schema::{check_connect_params, check_frame};
use openclaw_gateway::server::Timers;
use openclaw_gateway::settings::{Auth, GatewaySettings};
use openclaw_gateway::{Gateway, run};
use openclaw_profiles::ProfileName;
use openclaw_profiles::config::Secret;
use openclaw_profiles::paths::ProfilePaths;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) const TOKEN: &str = "test-token-123";

pub(crate) struct TestGateway {
    pub(crate) addr: SocketAddr,
    /// The gateway's shared state (to read what it reports, e.g. the
    /// canvas host's address).
    pub(crate) gw: std::sync::Arc<Gateway>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestGateway {
    pub(crate) async fn start(auth: Auth) -> Self {
        Self::start_with_tick(auth, openclaw_gateway::protocol::TICK_INTERVAL).await
    }

    pub(crate) async fn start_with_tick(auth: Auth, tick: Duration) -> Self {
        Self::start_full(
            auth,
            Timers {
                tick,
                ..Timers::default()
            },
            |_| {},
        )
        .await
    }

    pub(crate) async fn start_with_intervals(auth: Auth, tick: Duration, ping: Duration) -> Self {
        Self::start_full(
            auth,
            Timers {
                tick,
                ping,
                ..Timers::default()
            },
            |_| {},
        )
        .await
    }

    /// Every knob: auth, timers, and a `seed` run on the state dir before
    /// the gateway starts.
    pub(crate) async fn start_full(
        auth: Auth,
        timers: Timers,
        seed: impl FnOnce(&std::path::Path),
    ) -> Self {
        // The tests' "remote" clients come through a proxy on this host.
        let loopback = openclaw_gateway::proxy::Cidr::parse("127.0.0.0/8").unwrap();
        Self::start_trusting(auth, timers, seed, vec![loopback]).await
    }

    /// As `start_full`, believing forwarding headers only from `trusted`.
    pub(crate) async fn start_trusting(
        auth: Auth,
        timers: Timers,
        seed: impl FnOnce(&std::path::Path),
        trusted: Vec<openclaw_gateway::proxy::Cidr>,
    ) -> Self {
        Self::start_in(
            tempfile::tempdir().unwrap(),
            auth,
            timers,
            seed,
            trusted,
            Value::Null,
        )
        .await
    }

    /// A token gateway whose config (`openclaw.json` as JSON) is `raw`.
    pub(crate) async fn with_config(raw: Value) -> Self {
        Self::in_dir(tempfile::tempdir().unwrap(), raw).await
    }

    /// A token gateway with config `raw` and `timers`.
    pub(crate) async fn with_config_timers(raw: Value, timers: Timers) -> Self {
        let loopback = openclaw_gateway::proxy::Cidr::parse("127.0.0.0/8").unwrap();
        Self::start_in(
            tempfile::tempdir().unwrap(),
            Auth::Token(Secret::new(TOKEN)),
            timers,
            |_| {},
            vec![loopback],
            raw,
        )
        .await
    }

    /// A token gateway with config `raw` on the state dir under `dir` (a
    /// second gateway on the same dir sees what the first left).
    pub(crate) async fn in_dir(dir: tempfile::TempDir, raw: Value) -> Self {
        let loopback = openclaw_gateway::proxy::Cidr::parse("127.0.0.0/8").unwrap();
        Self::start_in(
            dir,
            Auth::Token(Secret::new(TOKEN)),
            Timers::default(),
            |_| {},
            vec![loopback],
            raw,
        )
        .await
    }

    /// Stops the gateway and hands back its directory.
    pub(crate) async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        let _ = self.task.await;
        self._dir
    }

    async fn start_in(
        dir: tempfile::TempDir,
        auth: Auth,
        timers: Timers,
        seed: impl FnOnce(&std::path::Path),
        trusted: Vec<openclaw_gateway::proxy::Cidr>,
        raw: Value,
    ) -> Self {
        let state_dir = dir.path().join("state");
        std::fs::create_dir_all(&state_dir).unwrap();
        seed(&state_dir);
        let settings = GatewaySettings {
            paths: ProfilePaths {
                profile: ProfileName::parse("t").unwrap(),
                config_path: state_dir.join("openclaw.json"),
                state_dir,
                ports: Default::default(),
                limits: Default::default(),
            },
            port: 0,
            bind_addr: "127.0.0.1".parse().unwrap(),
            auth,
            config: openclaw_profiles::config::OpenClawConfig {
                raw,
                ..Default::default()
            },
            trusted_proxies: trusted,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let gw = Gateway::with_timers(settings, shutdown.clone(), timers);
        let task = tokio::spawn(run(gw.clone(), listener));
        Self {
            addr,
            gw,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// The state dir (to seed or inspect the pairing store).
    pub(crate) fn state_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("state")
    }

    /// Starts with a token after running `seed` on the state dir.
    pub(crate) async fn with_token_seeded(seed: impl FnOnce(&std::path::Path)) -> Self {
        Self::start_full(Auth::Token(Secret::new(TOKEN)), Timers::default(), seed).await
    }

    pub(crate) async fn with_token() -> Self {
        Self::start(Auth::Token(Secret::new(TOKEN))).await
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Opens a socket and returns it with the `connect.challenge` payload.
    pub(crate) async fn open(&self) -> (Ws, Value) {
        let (mut ws, _) = tokio_tungstenite::connect_async(self.url()).await.unwrap();
        let challenge = recv(&mut ws).await;
        assert_eq!(challenge["event"], "connect.challenge");
        assert!(challenge.get("seq").is_none(), "challenge carries no seq");
        let nonce = challenge["payload"]["nonce"].as_str().unwrap();
        assert_eq!(nonce.len(), 36, "nonce is a uuid: {nonce}");
        assert!(challenge["payload"]["ts"].is_u64());
        (ws, challenge["payload"].clone())
    }

    /// Opens a socket as if a proxy forwarded it from `ip` (not local).
    pub(crate) async fn open_forwarded(&self, ip: &str) -> (Ws, Value) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = self.url().into_client_request().unwrap();
        req.headers_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let challenge = recv(&mut ws).await;
        assert_eq!(challenge["event"], "connect.challenge");
        (ws, challenge["payload"].clone())
    }

    /// Opens a socket and completes the handshake as `openclaw gateway call`.
    pub(crate) async fn connected(&self) -> (Ws, Value) {
        let (mut ws, _) = self.open().await;
        send(&mut ws, &connect_frame("1", cli_params(Some(TOKEN)))).await;
        let res = recv(&mut ws).await;
        assert_eq!(res["ok"], true, "{res}");
        (ws, res["payload"].clone())
    }
}

/// Writes pending device requests `(requestId, deviceId, code, role)` into
/// a state dir's pairing store.
pub(crate) fn seed_pending(state_dir: &std::path::Path, requests: &[(&str, &str, &str, &str)]) {
    let devices = state_dir.join("devices");
    std::fs::create_dir_all(&devices).unwrap();
    let all: serde_json::Map<String, Value> = requests
        .iter()
        .map(|(id, dev, code, role)| {
            let client = if *role == "node" { ("node-host", "node") } else { ("cli", "cli") };
            let v = json!({"requestId": id, "code": code, "deviceId": dev, "publicKey": "k", "platform": "linux",
                "clientId": client.0, "clientMode": client.1, "role": role, "scopes": [],
                "remoteIp": "10.0.0.9", "ts": openclaw_gateway::protocol::now_ms()});
            (id.to_string(), v)
        })
        .collect();
    std::fs::write(devices.join("pending.json"), Value::Object(all).to_string()).unwrap();
}

/// The connect params `openclaw gateway call health` sends (transcript).
pub(crate) fn cli_params(token: Option<&str>) -> Value {
    let mut p = json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "deviceFamily": "Linux",
                   "mode": "cli", "instanceId": "3dddd640-85c1-4bc7-96f2-83d34d24f9b8"},
        "caps": [], "role": "operator", "scopes": ["operator.read"]
    });
    if let Some(t) = token {
        p["auth"] = json!({"token": t});
    }
    check_connect_params(&p);
    p
}

pub(crate) fn connect_frame(id: &str, params: Value) -> Value {
    json!({"type": "req", "id": id, "method": "connect", "params": params})
}

pub(crate) async fn send(ws: &mut Ws, frame: &Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

pub(crate) async fn send_text(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// What the server sent next: a frame (schema-checked) or a close.
#[derive(Debug)]
pub(crate) enum Incoming {
    Frame(Value),
    Close(Option<(u16, String)>),
}

pub(crate) async fn next(ws: &mut Ws) -> Incoming {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("server answered within 10s");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("server frames are JSON");
                check_frame(&v);
                return Incoming::Frame(v);
            }
            Some(Ok(Message::Close(c))) => {
                return Incoming::Close(c.map(|c| (u16::from(c.code), c.reason.to_string())));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
            None | Some(Err(_)) => return Incoming::Close(None),
        }
    }
}

pub(crate) async fn recv(ws: &mut Ws) -> Value {
    match next(ws).await {
        Incoming::Frame(v) => v,
        Incoming::Close(c) => panic!("socket closed ({c:?}) while a frame was expected"),
    }
}

/// Waits for the close frame, passing over server events (a `presence`
/// event, a `tick`) that may come first.
pub(crate) async fn expect_close(ws: &mut Ws) -> (u16, String) {
    loop {
        match next(ws).await {
            Incoming::Close(Some(c)) => return c,
            Incoming::Frame(f) if f["type"] == "event" => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A request on a connected socket; returns the `res` with that id.
pub(crate) async fn call(ws: &mut Ws, id: &str, method: &str, params: Value) -> Value {
    send(
        ws,
        &json!({"type": "req", "id": id, "method": method, "params": params}),
    )
    .await;
    loop {
        let f = recv(ws).await;
        if f["type"] == "res" && f["id"] == id {
            return f;
        }
    }
}

/// `devices/paired.json` once the store's writer has put it on disk with
/// `want` in it (bounded wait).
pub(crate) async fn stored_paired(gw: &TestGateway, want: &str) -> Value {
    let path = gw.state_dir().join("devices/paired.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && text.contains(want)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never held {want}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `params` asking for `scopes`.
pub(crate) fn with_scopes(mut p: Value, scopes: &[&str]) -> Value {
    p["scopes"] = json!(scopes);
    p
}

/// The gateway's presence list, parsed (the gateway keeps it as JSON).
pub(crate) fn presence(gw: &Gateway) -> Vec<serde_json::Value> {
    serde_json::from_str(&gw.presence_list()).expect("the presence list is a JSON array")
}
