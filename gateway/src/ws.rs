//! One WebSocket connection: the `connect.challenge` → `connect` →
//! `hello-ok` handshake (spec §3–7), then requests, server events filtered
//! by scope, and presence, until the client leaves or the gateway stops.
//!
//! Handshake order: frame and params → protocol → role → failed-auth
//! lockout → credentials (shared token/password, or a device token) →
//! device-less rules → device proof → pairing → device token → `hello-ok`.

use openclaw_profiles::config::Secret;
use std::sync::Arc;

use crate::socket::{CloseFrame, Socket};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::auth::secrets_equal;
use crate::identity::{self, SignedFields};
use crate::methods::{self, Caller, EVENTS, METHODS};
use crate::pairing;
use crate::protocol::{
    self, ConnectParams, ErrorShape, MAX_PAYLOAD_BYTES, PREAUTH_MAX_BYTES, PROTOCOL_VERSION,
    RequestFrame, close, err_frame, event_frame, now_ms, ok_frame, uuid_v4,
};
use crate::scopes;
use crate::server::Gateway;
use crate::settings::Auth;

/// A device's last-seen time reaches disk at most this often.
const LAST_SEEN_EVERY_MS: u64 = 60_000;

/// Interval of server WS pings after auth (the pong window).
pub const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(25);

/// Events and answers queued for one socket beyond what the socket's own
/// loop produces (agent runs, late answers). Bounded: an event that does
/// not fit is dropped and counted, and the socket's next frame `seq`
/// jumps by what it missed, as with a lagging broadcast.
#[derive(Debug, Clone)]
pub struct Outbound {
    conn_id: Arc<str>,
    /// Boxed items: the channel allocates its first block of 32 slots
    /// up front, on every socket, so a slot is a pointer.
    tx: tokio::sync::mpsc::Sender<Box<Out>>,
    missed: Arc<std::sync::atomic::AtomicU64>,
    backlog: Arc<Backlog>,
}

/// Bytes queued for one socket and not yet written. Past the limit
/// (`policy.maxBufferedBytes`) the peer is a slow consumer: the socket is
/// closed with 1008 `slow consumer`, as the real gateway does, instead of
/// buffering without end.
#[derive(Debug)]
pub struct Backlog {
    bytes: std::sync::atomic::AtomicUsize,
    limit: usize,
    tripped: std::sync::atomic::AtomicBool,
    slow: tokio::sync::Notify,
}

impl Backlog {
    /// Counts `n` more bytes; false (and the socket marked slow) past the
    /// limit.
    fn charge(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if self.bytes.fetch_add(n, Relaxed) + n > self.limit {
            self.bytes.fetch_sub(n, Relaxed);
            self.tripped.store(true, Relaxed);
            self.slow.notify_one();
            return false;
        }
        true
    }

    fn discharge(&self, n: usize) {
        self.bytes
            .fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn tripped(&self) -> bool {
        self.tripped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Out {
    fn bytes(&self) -> usize {
        match self {
            Out::Event(_, p) => p.len(),
            Out::Frame(f) => f.len(),
            Out::Close(..) => 0,
        }
    }
}

/// One queued item.
#[derive(Debug)]
pub enum Out {
    /// An event (the socket checks its scope and adds its `seq`).
    Event(&'static str, Arc<str>),
    /// A ready frame (a `res`, or an event targeted at this socket alone,
    /// which carries no `seq`).
    Frame(String),
    /// Close the socket with this code and reason.
    Close(u16, String),
}

/// Most queued frames, and bytes, one write takes.
const BATCH_FRAMES: usize = 64;
const BATCH_BYTES: usize = 256 * 1024;

/// Items a socket's outbound queue holds.
pub const OUTBOUND_QUEUE: usize = 1024;

impl Outbound {
    /// A queue for connection `conn_id` holding at most `limit` bytes, and
    /// its receiving end.
    pub fn new(conn_id: &str, limit: usize) -> (Self, tokio::sync::mpsc::Receiver<Box<Out>>) {
        let (tx, rx) = tokio::sync::mpsc::channel(OUTBOUND_QUEUE);
        let out = Self {
            conn_id: conn_id.into(),
            tx,
            missed: Default::default(),
            backlog: Arc::new(Backlog {
                bytes: Default::default(),
                limit,
                tripped: Default::default(),
                slow: Default::default(),
            }),
        };
        (out, rx)
    }

    /// Queues `item` if the byte budget allows (else the socket is marked
    /// slow); `Err(item)` when the queue itself is full.
    fn push(&self, item: Out) -> Result<(), Option<Out>> {
        let n = item.bytes();
        if !self.backlog.charge(n) {
            return Err(None);
        }
        match self.tx.try_send(Box::new(item)) {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Full(item)) => {
                self.backlog.discharge(n);
                Err(Some(*item))
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                self.backlog.discharge(n);
                Err(None)
            }
        }
    }

    /// The connection id.
    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    /// Queues an event; a full queue drops it (counted as missed).
    pub fn event(&self, event: &'static str, payload: Arc<str>) {
        if let Err(Some(_)) = self.push(Out::Event(event, payload)) {
            self.missed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Queues an answer, waiting for room in a full queue (answers are
    /// never dropped while the socket keeps up).
    pub async fn frame(&self, frame: String) {
        if let Err(Some(item)) = self.push(Out::Frame(frame)) {
            self.send_when_room(item).await;
        }
    }

    /// Queues an answer without waiting; a full queue hands it to a task
    /// that waits for room.
    pub fn answer(&self, frame: String) {
        if let Err(Some(item)) = self.push(Out::Frame(frame)) {
            let out = self.clone();
            tokio::spawn(async move { out.send_when_room(item).await });
        }
    }

    /// An answer the full queue refused, queued as soon as there is room.
    async fn send_when_room(&self, item: Out) {
        self.backlog.charge(item.bytes());
        let _ = self.tx.send(Box::new(item)).await;
    }

    /// Queues a ready frame without waiting; a full queue drops it (an
    /// invoke request dropped this way times out like a lost one).
    pub fn frame_now(&self, frame: String) {
        let _ = self.push(Out::Frame(frame));
    }

    /// Asks the socket to close with `code` and `reason`.
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self
            .tx
            .try_send(Box::new(Out::Close(code, reason.to_string())));
    }
}

/// What the handshake settled for this socket.
#[derive(Debug)]
struct Session {
    caller: Caller,
    device_id: Option<String>,
    /// What a node declared (role `node` only).
    node: Option<Box<crate::nodes::NodeHello>>,
}

/// How a handshake ended without a session.
enum Refusal {
    /// Send this `res` (if any), then close with code and reason.
    Close {
        res: Option<Value>,
        code: u16,
        reason: String,
    },
    /// The peer went away.
    Gone,
}

async fn send_json(socket: &mut Socket, frame: &Value) -> bool {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .is_ok()
}

async fn send_close(socket: &mut Socket, code: u16, reason: &str) {
    // Close reasons are limited to 123 bytes.
    let mut reason = reason.to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: Utf8Bytes::from(reason),
        })))
        .await;
}

/// Runs one connection to its end.
///
/// `client` is the client's address and whether the connection is local
/// (a loopback socket that no proxy forwarded).
pub async fn serve_connection(
    socket: Socket,
    gw: Arc<Gateway>,
    client: (std::net::IpAddr, bool),
    preauth: Option<crate::listener::PreAuth>,
    base: String,
) {
    let _tracked = gw.connections.token();
    // The handshake's larger state lives in a box that is gone once the
    // socket is connected: an idle socket's task holds only `connected`.
    let Some((socket, session)) = Box::pin(open(socket, &gw, client, preauth, base)).await else {
        return;
    };
    connected(socket, gw, session).await;
}

/// The challenge and the handshake: the socket and its session once
/// `hello-ok` is out, `None` when the connection ended before.
async fn open(
    mut socket: Socket,
    gw: &Arc<Gateway>,
    client: (std::net::IpAddr, bool),
    preauth: Option<crate::listener::PreAuth>,
    base: String,
) -> Option<(Socket, Session)> {
    let nonce = uuid_v4();
    let challenge = event_frame("connect.challenge", json!({"nonce": nonce, "ts": now_ms()}));
    if !send_json(&mut socket, &challenge).await {
        return None;
    }
    let handshake = tokio::select! {
        r = tokio::time::timeout(gw.handshake_timeout, handshake(&mut socket, gw, client, &nonce, &base)) => r,
        () = gw.shutdown.cancelled() => {
            send_close(&mut socket, close::SERVICE_RESTART, "service restart").await;
            return None;
        }
    };
    let session = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(Refusal::Close { res, code, reason })) => {
            if let Some(res) = res {
                let _ = send_json(&mut socket, &res).await;
            }
            send_close(&mut socket, code, &reason).await;
            return None;
        }
        Ok(Err(Refusal::Gone)) => {
            // The frame guard cut an oversized pre-auth frame off from its
            // header: still say why, as for a frame read whole.
            if preauth
                .as_ref()
                .is_some_and(crate::listener::PreAuth::oversized)
            {
                send_close(&mut socket, close::TOO_BIG, "preauth payload too large").await;
            }
            return None;
        }
        Err(_elapsed) => {
            let _ = socket.send(Message::Close(None)).await;
            return None;
        }
    };
    // Authenticated: no longer counted against the pre-auth caps.
    drop(preauth);
    tracing::debug!(conn_id = %session.caller.conn_id, ip = %client.0, "client connected");
    Some((socket, session))
}

fn refuse(id: &str, error: ErrorShape, code: u16, reason: &str) -> Refusal {
    Refusal::Close {
        res: Some(err_frame(id, &error)),
        code,
        reason: reason.to_string(),
    }
}

async fn first_text(socket: &mut Socket) -> Result<Utf8Bytes, Refusal> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Err(Refusal::Close {
                    res: None,
                    code: close::POLICY,
                    reason: "invalid handshake: first request must be connect".into(),
                });
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(Refusal::Gone),
        }
    }
}

async fn handshake(
    socket: &mut Socket,
    gw: &Gateway,
    client: (std::net::IpAddr, bool),
    nonce: &str,
    base: &str,
) -> Result<Session, Refusal> {
    let text = first_text(socket).await?;
    if text.len() > PREAUTH_MAX_BYTES {
        return Err(Refusal::Close {
            res: None,
            code: close::TOO_BIG,
            reason: "preauth payload too large".into(),
        });
    }
    let frame = match RequestFrame::parse(&text) {
        Ok(f) => f,
        Err(detail) => {
            let msg = format!("invalid request frame: {detail}");
            return Err(match protocol::salvage_id(&text) {
                Some(id) => refuse(&id, ErrorShape::invalid(&msg), close::POLICY, &msg),
                None => Refusal::Close {
                    res: None,
                    code: close::POLICY,
                    reason: msg,
                },
            });
        }
    };
    let id = frame.id.as_str();
    if frame.method != "connect" {
        let msg = "invalid handshake: first request must be connect";
        return Err(refuse(id, ErrorShape::invalid(msg), close::POLICY, msg));
    }
    let params: ConnectParams =
        match serde_json::from_value(frame.params.clone().unwrap_or(Value::Null)) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("invalid connect params: {e}");
                return Err(refuse(id, ErrorShape::invalid(&msg), close::POLICY, &msg));
            }
        };
    if !params.protocol_ok() {
        let err = ErrorShape::invalid("protocol mismatch").with_details(json!({
            "code": "PROTOCOL_MISMATCH",
            "clientMinProtocol": params.min_protocol,
            "clientMaxProtocol": params.max_protocol,
            "expectedProtocol": PROTOCOL_VERSION,
            "minimumProbeProtocol": protocol::MIN_PROBE_PROTOCOL,
        }));
        return Err(refuse(id, err, close::PROTOCOL, "protocol mismatch"));
    }
    let role = params
        .role
        .clone()
        .unwrap_or_else(|| "operator".to_string());
    if role != "operator" && role != "node" {
        return Err(refuse(
            id,
            ErrorShape::invalid("invalid role"),
            close::POLICY,
            "invalid role",
        ));
    }
    let requested: Vec<String> = params.scopes.clone().unwrap_or_default();
    let (ip, local) = client;

    // Failed-auth lockout (never for loopback).
    if let Some(left) = gw.limiter.lock().ok().and_then(|l| l.locked(ip, now_ms())) {
        let err = ErrorShape {
            code: protocol::code::INVALID_REQUEST,
            message: "unauthorized: too many failed authentication attempts (retry later)".into(),
            details: Some(
                json!({"code": "AUTH_RATE_LIMITED", "authReason": "rate_limited", "recommendedNextStep": "wait_then_retry", "retryAfterMs": left}),
            ),
            retryable: true,
        };
        let reason = err.message.clone();
        return Err(refuse(id, err, close::POLICY, &reason));
    }

    // Credentials: the shared secret, else a device token of a paired device.
    let auth = params.auth.clone().unwrap_or_default();
    let device_id = params.device.as_ref().map(|d| d.id.to_ascii_lowercase());
    let device_token = auth.device_token.clone().or_else(|| auth.token.clone());
    let shared = check_credentials(&gw.settings.auth, &params, device_id.is_some());
    let via_device_token = shared.is_err()
        && match (&device_id, &device_token) {
            (Some(d), Some(t)) => gw
                .pairing
                .lock()
                .is_ok_and(|s| s.check_token(d, &role, t.expose())),
            _ => false,
        };
    if let Err(e) = &shared
        && !via_device_token
    {
        let wrong = e.details.as_ref().is_some_and(|d| {
            d["authReason"]
                .as_str()
                .is_some_and(|r| r.ends_with("mismatch"))
        });
        if wrong && let Ok(mut l) = gw.limiter.lock() {
            l.failed(ip, now_ms());
        }
        let reason = e.message.clone();
        return Err(refuse(id, e.clone(), close::POLICY, &reason));
    }

    // Device-less: shared-secret auth passed. Scopes survive only for the
    // CLI and the internal backend client on a local socket (spec §5.3).
    let Some(proof) = params.device.as_ref() else {
        if role == "node" {
            let msg = "node connections need a device identity (the node id is the device id)";
            return Err(refuse(id, ErrorShape::invalid(msg), close::POLICY, msg));
        }
        let keeps = local
            && ((params.client.id == "cli" && params.client.mode == "cli")
                || (params.client.id == "gateway-client" && params.client.mode == "backend"));
        let scopes = if keeps { requested } else { Vec::new() };
        return finish(
            socket,
            gw,
            id,
            &params,
            role,
            scopes,
            None,
            None,
            (ip, base),
        )
        .await;
    };

    // Device proof.
    let token_field = auth
        .token
        .clone()
        .or(auth.device_token.clone())
        .or(auth.bootstrap_token.clone())
        .unwrap_or_else(|| Secret::new(""));
    let fields = SignedFields {
        client_id: &params.client.id,
        client_mode: &params.client.mode,
        role: &role,
        scopes: &requested,
        token: token_field.expose(),
        platform: Some(params.client.platform.as_str()),
        device_family: params.client.device_family.as_deref(),
    };
    if let Err(e) = identity::verify(proof, nonce, &fields) {
        let reason = e.message.clone();
        return Err(refuse(id, e, close::POLICY, &reason));
    }
    let device = proof.id.to_ascii_lowercase();
    // A device token never grants more than it was issued with: silent
    // upgrades belong to the shared-secret paths only (spec §5).
    // Nodes are paired silently on loopback unless
    // `gateway.nodes.pairing.autoApproveLocal` is false.
    let silent =
        local && !via_device_token && (role != "node" || crate::nodes::auto_approve_local(gw));
    let token = match pair_device(gw, &params, proof, &role, &requested, ip, silent) {
        Ok(t) => t,
        Err((err, reason)) => return Err(refuse(id, err, close::POLICY, &reason)),
    };
    finish(
        socket,
        gw,
        id,
        &params,
        role,
        requested,
        Some(device),
        token,
        (ip, base),
    )
    .await
}

/// Pairing: a local device that proved the shared secret is approved
/// silently (`silent`); any other (a remote one, or one that came with only
/// its device token and asks for more than it holds) files a pending
/// request and is refused until an operator approves it. Returns the
/// device token of `(device, role)`.
fn pair_device(
    gw: &Gateway,
    params: &ConnectParams,
    proof: &identity::DeviceProof,
    role: &str,
    requested: &[String],
    ip: std::net::IpAddr,
    silent: bool,
) -> Result<Option<pairing::DeviceToken>, (ErrorShape, String)> {
    let device = proof.id.to_ascii_lowercase();
    let busy = || {
        (
            ErrorShape::invalid("pairing store unavailable"),
            "pairing store unavailable".to_string(),
        )
    };
    let mut store = gw.pairing.lock().map_err(|_| busy())?;
    let needs = match store.paired.get(&device) {
        None => Some(("not-paired", "pairing required: device is not approved yet")),
        Some(p) if p.public_key != proof.public_key => {
            Some(("not-paired", "pairing required: device is not approved yet"))
        }
        Some(p) if !p.roles.iter().any(|r| r == role) => Some((
            "role-upgrade",
            "pairing required: role upgrade pending approval",
        )),
        Some(p) if !requested.iter().all(|s| scopes::satisfies(&p.scopes, s)) => Some((
            "scope-upgrade",
            "pairing required: scope upgrade pending approval",
        )),
        // Asking beyond the role's issued token counts as an upgrade too.
        Some(p)
            if p.tokens
                .get(role)
                .is_some_and(|t| !requested.iter().all(|s| scopes::satisfies(&t.scopes, s)))
                && !silent =>
        {
            Some((
                "scope-upgrade",
                "pairing required: scope upgrade pending approval",
            ))
        }
        Some(_) => None,
    };
    if let Some((reason, message)) = needs {
        let req = store.request(pairing::pending_from(
            &device,
            &proof.public_key,
            &params.client,
            role,
            requested,
            &ip.to_string(),
        ));
        if silent {
            store.approve(&req.request_id, "silent");
        } else {
            let _ = store.save();
            drop(store);
            gw.broadcast(
                "device.pair.requested",
                serde_json::to_value(&req).unwrap_or_default(),
                false,
            );
            let err = ErrorShape {
                code: "NOT_PAIRED",
                message: message.into(),
                details: Some(json!({
                    "code": "PAIRING_REQUIRED", "reason": reason, "requestId": req.request_id,
                    "remediationHint": "Approve this device from the pending pairing requests.",
                    "deviceId": device, "requestedRole": role, "requestedScopes": requested,
                })),
                retryable: false,
            };
            return Err((err, format!("{message} (requestId: {})", req.request_id)));
        }
    }
    let issued_before = store
        .paired
        .get(&device)
        .and_then(|p| p.tokens.get(role))
        .map(|t| t.created_at_ms);
    let token = store.token_for(&device, role, requested);
    let now = now_ms();
    let mut changed = token.as_ref().map(|t| t.created_at_ms) != issued_before;
    if let Some(p) = store.paired.get_mut(&device) {
        // Last-seen is saved at most once a minute per device, not on every
        // connect.
        changed |= p
            .last_seen_at_ms
            .is_none_or(|seen| now.saturating_sub(seen) >= LAST_SEEN_EVERY_MS);
        p.last_seen_at_ms = Some(now);
    }
    if changed {
        let _ = store.save();
    }
    Ok(token)
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    socket: &mut Socket,
    gw: &Gateway,
    id: &str,
    params: &ConnectParams,
    role: String,
    scopes: Vec<String>,
    device_id: Option<String>,
    token: Option<pairing::DeviceToken>,
    (remote_ip, base): (std::net::IpAddr, &str),
) -> Result<Session, Refusal> {
    let conn_id = uuid_v4();
    let mut hello = hello_ok(gw, &conn_id, &role, &scopes, token.as_ref());
    // The canvas surface: every operator, and nodes whose approved
    // surface includes `canvas` (spec `nodes-canvas.md` §9.3).
    let canvas = role == "operator"
        || (role == "node"
            && params
                .caps
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c == "canvas"))
            && device_id.as_ref().is_some_and(|d| {
                gw.pairing.lock().is_ok_and(|s| {
                    s.paired
                        .get(d)
                        .and_then(|p| p.node_surface.as_ref())
                        .is_some_and(|n| n.caps.iter().any(|c| c == "canvas"))
                })
            }));
    if canvas {
        let (url, _) = gw.canvas_caps.issue(&conn_id, base);
        hello.plugin_surface_urls = Some(json!({ "canvas": url }));
    }
    // Protocol-3 clients learn the seed-mode canvas host's URL.
    if params.max_protocol < 4
        && let Some(addr) = gw.canvas_host_addr.get()
    {
        hello.canvas_host_url = Some(crate::canvas_host::host_url(base, addr.port()));
    }
    let frame = serde_json::to_string(&OkRes {
        kind: "res",
        id,
        ok: true,
        payload: &hello,
    })
    .expect("hello-ok serializes");
    drop(hello);
    if socket.send_text(&frame).await.is_err() {
        return Err(Refusal::Gone);
    }
    let c = &params.client;
    let mut entry = json!({
        "host": c.display_name.clone().unwrap_or_else(|| c.id.clone()),
        "version": c.version, "platform": c.platform, "mode": c.mode,
        "reason": "connect", "roles": [role], "scopes": scopes, "ts": now_ms(),
    });
    for (k, v) in [
        ("instanceId", &c.instance_id),
        ("deviceFamily", &c.device_family),
        ("deviceId", &device_id),
    ] {
        if let Some(v) = v {
            entry[k] = v.clone().into();
        }
    }
    let mut node = None;
    if role == "node"
        && let Some(d) = &device_id
    {
        // A node's presence names it by device id and display name.
        let name = c.display_name.clone().unwrap_or_else(|| c.id.clone());
        entry["instanceId"] = d.clone().into();
        entry["text"] = format!("Node: {name} · mode {}", c.mode).into();
        gw.presence_forget_gone(d);
        node = Some(Box::new(crate::nodes::NodeHello {
            node_id: d.clone(),
            client: c.clone(),
            caps: params.caps.clone().unwrap_or_default(),
            commands: params.commands.clone().unwrap_or_default(),
            permissions: params.permissions.clone(),
            path_env: params.path_env.clone(),
            remote_ip: remote_ip.to_string(),
        }));
    }
    gw.set_presence(&conn_id, Some(entry));
    // Who the caller is: its proven device (across reconnects), else this
    // one connection (a client-chosen `instanceId` proves nothing).
    let identity = match &device_id {
        Some(d) => format!("device:{d}"),
        None => format!("conn:{conn_id}"),
    };
    Ok(Session {
        caller: Caller {
            role,
            scopes,
            conn_id,
            identity,
            outbound: None,
        },
        device_id,
        node,
    })
}

fn auth_error(
    message: &str,
    code: &str,
    reason: &str,
    next: &str,
    retry_with_device: bool,
) -> ErrorShape {
    ErrorShape::invalid(message).with_details(json!({
        "code": code,
        "authReason": reason,
        "canRetryWithDeviceToken": retry_with_device,
        "recommendedNextStep": next,
    }))
}

fn check_credentials(
    auth: &Auth,
    params: &ConnectParams,
    has_device: bool,
) -> Result<(), ErrorShape> {
    let provided = params.auth.clone().unwrap_or_default();
    match auth {
        Auth::None => Ok(()),
        Auth::Token(expected) => match provided
            .token
            .as_ref()
            .map(Secret::expose)
            .filter(|t| !t.is_empty())
        {
            None => Err(auth_error(
                "unauthorized: gateway token missing (provide gateway auth token)",
                "AUTH_TOKEN_MISSING",
                "token_missing",
                "update_auth_configuration",
                false,
            )),
            Some(t) if secrets_equal(t, expected.expose()) => Ok(()),
            Some(_) => Err(auth_error(
                "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)",
                "AUTH_TOKEN_MISMATCH",
                "token_mismatch",
                if has_device {
                    "retry_with_device_token"
                } else {
                    "update_auth_credentials"
                },
                has_device,
            )),
        },
        Auth::Password(expected) => match provided
            .password
            .as_ref()
            .map(Secret::expose)
            .filter(|p| !p.is_empty())
        {
            None => Err(auth_error(
                "unauthorized: gateway password missing (provide gateway auth password)",
                "AUTH_PASSWORD_MISSING",
                "password_missing",
                "update_auth_configuration",
                false,
            )),
            Some(p) if secrets_equal(p, expected.expose()) => Ok(()),
            Some(_) => Err(auth_error(
                "unauthorized: gateway password mismatch (use this gateway's gateway.auth.password)",
                "AUTH_PASSWORD_MISMATCH",
                "password_mismatch",
                "update_auth_credentials",
                has_device,
            )),
        },
    }
}

/// `hello-ok`, serialized straight from its parts: the advertised
/// features are serialized once per process and the presence snapshot is
/// spliced from the stored entries (a connect builds no JSON tree).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloOk<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    protocol: u64,
    server: HelloServer<'a>,
    features: &'static serde_json::value::RawValue,
    snapshot: Snapshot,
    auth: HelloAuth<'a>,
    policy: Policy,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin_surface_urls: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    canvas_host_url: Option<String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloServer<'a> {
    version: &'static str,
    conn_id: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    presence: Box<serde_json::value::RawValue>,
    health: serde_json::Map<String, Value>,
    state_version: Value,
    uptime_ms: u64,
    session_defaults: &'static serde_json::value::RawValue,
    auth_mode: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloAuth<'a> {
    role: &'a str,
    scopes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at_ms: Option<u64>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    max_payload: usize,
    max_buffered_bytes: usize,
    tick_interval_ms: u64,
}

/// A successful `res` around a typed payload.
#[derive(serde::Serialize)]
struct OkRes<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    ok: bool,
    payload: T,
}

/// `{"methods": [...], "events": [...]}`, serialized once.
static FEATURES: std::sync::LazyLock<Box<serde_json::value::RawValue>> =
    std::sync::LazyLock::new(|| {
        serde_json::value::to_raw_value(&json!({"methods": &*METHODS, "events": &*EVENTS}))
            .expect("static JSON")
    });

static SESSION_DEFAULTS: std::sync::LazyLock<Box<serde_json::value::RawValue>> =
    std::sync::LazyLock::new(|| {
        serde_json::value::to_raw_value(&json!({
            "defaultAgentId": "main",
            "mainKey": "main",
            "mainSessionKey": "agent:main:main",
            "scope": "per-sender",
        }))
        .expect("static JSON")
    });

fn hello_ok<'a>(
    gw: &Gateway,
    conn_id: &'a str,
    role: &'a str,
    scopes: &'a [String],
    token: Option<&'a pairing::DeviceToken>,
) -> HelloOk<'a> {
    let presence = serde_json::value::RawValue::from_string(gw.presence_snapshot())
        .expect("presence entries are JSON");
    HelloOk {
        kind: "hello-ok",
        protocol: PROTOCOL_VERSION,
        server: HelloServer {
            version: crate::VERSION,
            conn_id,
        },
        features: &FEATURES,
        snapshot: Snapshot {
            presence,
            health: Default::default(),
            state_version: gw.state_version(),
            uptime_ms: gw.uptime_ms(),
            session_defaults: &SESSION_DEFAULTS,
            auth_mode: gw.settings.auth.mode_str(),
        },
        auth: HelloAuth {
            role,
            scopes,
            device_token: token.map(|t| t.token.as_str()),
            issued_at_ms: token.map(|t| t.created_at_ms),
        },
        policy: Policy {
            max_payload: MAX_PAYLOAD_BYTES,
            max_buffered_bytes: gw.max_buffered,
            tick_interval_ms: gw.tick_interval.as_millis() as u64,
        },
        plugin_surface_urls: None,
        canvas_host_url: None,
    }
}

/// An event frame around an already serialized payload (the same bytes for
/// every socket; only `seq` and `stateVersion` are the socket's own).
fn spliced_event(event: &str, payload: &str, seq: u64, state: Option<&Value>) -> String {
    let mut f = String::with_capacity(payload.len() + 96);
    f.push_str(r#"{"type":"event","event":"#);
    f.push_str(&Value::from(event).to_string());
    f.push_str(r#","payload":"#);
    f.push_str(payload);
    f.push_str(r#","seq":"#);
    f.push_str(&seq.to_string());
    if let Some(s) = state {
        f.push_str(r#","stateVersion":"#);
        f.push_str(&s.to_string());
    }
    f.push('}');
    f
}

/// Sends `msg` unless the socket's backlog overflows first (a peer that
/// stopped reading would otherwise hold this task in the write forever).
async fn watched(socket: &mut Socket, msg: Message, backlog: &Backlog) -> bool {
    tokio::select! {
        r = socket.send(msg) => r.is_ok(),
        () = backlog.slow.notified() => false,
    }
}

/// [`watched`] for frames written together in one write.
async fn watched_all(socket: &mut Socket, frames: &[String], backlog: &Backlog) -> bool {
    tokio::select! {
        r = socket.send_texts(frames) => r.is_ok(),
        () = backlog.slow.notified() => false,
    }
}

fn event_allowed(caller: &Caller, event: &str) -> bool {
    match scopes::event_scope(event) {
        None => true,
        Some(needed) => caller.role == "operator" && scopes::satisfies(&caller.scopes, needed),
    }
}

async fn connected(mut socket: Socket, gw: Arc<Gateway>, session: Session) {
    let mut caller = session.caller;
    let (outbound, mut queued) = Outbound::new(&caller.conn_id, gw.max_buffered);
    let missed = outbound.missed.clone();
    let backlog = outbound.backlog.clone();
    let node_id = session.node.as_ref().map(|n| n.node_id.clone());
    if let Some(hello) = session.node {
        gw.nodes
            .attach(&gw, *hello, &caller.conn_id, outbound.clone());
    }
    caller.outbound = Some(outbound);
    let mut events = gw.events.subscribe();
    let mut seq: u64 = 0;
    let period = gw.tick_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    // Keepalive: a WS ping every 25 s; no pong by the next one closes.
    let every = gw.ping_interval;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            () = gw.shutdown.cancelled() => {
                seq += 1;
                let f = spliced_event("shutdown", r#"{"reason":"gateway stopping"}"#, seq, None);
                let _ = socket.send(Message::Text(f.into())).await;
                send_close(&mut socket, close::SERVICE_RESTART, "service restart").await;
                break;
            }
            _ = tick.tick() => {
                seq += 1;
                let f = spliced_event("tick", &json!({"ts": now_ms()}).to_string(), seq, None);
                if !watched(&mut socket, Message::Text(f.into()), &backlog).await {
                    break;
                }
            }
            _ = ping.tick() => {
                if awaiting_pong {
                    send_close(&mut socket, close::POLICY, "pong timeout").await;
                    break;
                }
                awaiting_pong = true;
                if !watched(&mut socket, Message::Ping(Default::default()), &backlog).await {
                    break;
                }
            }
            () = backlog.slow.notified() => break,
            Some(item) = queued.recv() => {
                // What is queued by now goes out in one write (a streamed
                // turn queues a `chat` and an `agent` event per piece).
                let mut batch = Vec::new();
                let (mut bytes, mut next, mut close) = (0, Some(item), None);
                while let Some(item) = next.take() {
                    backlog.discharge(item.bytes());
                    match *item {
                        Out::Event(event, payload) if event_allowed(&caller, event) => {
                            seq += 1 + missed.swap(0, std::sync::atomic::Ordering::Relaxed);
                            batch.push(spliced_event(event, &payload, seq, None));
                        }
                        Out::Event(..) => {}
                        Out::Frame(f) => batch.push(f),
                        Out::Close(code, reason) => {
                            close = Some((code, reason));
                            break;
                        }
                    }
                    bytes += batch.last().map_or(0, String::len);
                    if batch.len() < BATCH_FRAMES && bytes < BATCH_BYTES {
                        next = queued.try_recv().ok();
                    }
                }
                if !batch.is_empty() && !watched_all(&mut socket, &batch, &backlog).await {
                    break;
                }
                if let Some((code, reason)) = close {
                    send_close(&mut socket, code, &reason).await;
                    break;
                }
            }
            ev = events.recv() => match ev {
                Ok(b) if event_allowed(&caller, b.event) => {
                    seq += 1;
                    let f = spliced_event(b.event, &b.payload, seq, b.state_version.as_deref());
                    if !watched(&mut socket, Message::Text(f.into()), &backlog).await {
                        break;
                    }
                }
                Ok(_) => {}
                // Too slow to keep up: the events it missed still count, so
                // its next `seq` shows the gap (clients report gaps).
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    seq += missed;
                    tracing::debug!(conn_id = %caller.conn_id, missed, "slow client missed events");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    // Fired once the answer is on the wire (`Reply::NowThen`).
                    let mut written = None;
                    let reply = match RequestFrame::parse(&text) {
                        Ok(req) => {
                            let result = match methods::dispatch(&gw, &caller, &req.id, &req.method, req.params.as_ref()) {
                                methods::Reply::Now(r) => r,
                                methods::Reply::NowThen(r, w) => {
                                    written = Some(w);
                                    r
                                }
                                methods::Reply::Frame(f) => {
                                    if !watched(&mut socket, Message::Text(f.into()), &backlog).await {
                                        break;
                                    }
                                    continue;
                                }
                                methods::Reply::Later => continue,
                            };
                            match result {
                                Ok(payload) => ok_frame(&req.id, payload),
                                Err(e) => err_frame(&req.id, &e),
                            }
                        }
                        Err(detail) => match protocol::salvage_id(&text) {
                            Some(id) => err_frame(&id, &ErrorShape::invalid(format!("invalid request frame: {detail}"))),
                            None => {
                                send_close(&mut socket, close::POLICY, "invalid request frame").await;
                                break;
                            }
                        },
                    };
                    if !watched(&mut socket, Message::Text(reply.to_string().into()), &backlog).await {
                        break;
                    }
                    if let Some(w) = written {
                        let _ = w.send(());
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    send_close(&mut socket, close::POLICY, "binary frames are not supported").await;
                    break;
                }
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            }
        }
    }
    if backlog.tripped() {
        // Best effort: a peer that stopped reading may never take the
        // close frame either.
        tracing::info!(conn_id = %caller.conn_id, "closing a slow consumer");
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            send_close(&mut socket, close::POLICY, "slow consumer"),
        )
        .await;
    }
    match &node_id {
        // A node's entry stays listed as disconnected for a while.
        Some(n) => {
            gw.nodes.detach(&gw, n, &caller.conn_id);
            gw.presence_disconnect(&caller.conn_id);
        }
        None => gw.set_presence(&caller.conn_id, None),
    }
    gw.agent.unsubscribe(&caller.conn_id);
    gw.canvas_caps.drop_conn(&caller.conn_id);
    tracing::debug!(conn_id = %caller.conn_id, device = ?session.device_id, "client disconnected");
}
