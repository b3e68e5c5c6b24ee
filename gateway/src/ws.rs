//! One WebSocket connection: the `connect.challenge` → `connect` →
//! `hello-ok` handshake (spec §3), then requests and server events until
//! the client leaves or the gateway stops.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use serde_json::{Value, json};

use crate::auth::secrets_equal;
use crate::methods::{self, EVENTS, METHODS};
use crate::protocol::{
    self, ConnectParams, ErrorShape, HANDSHAKE_TIMEOUT, MAX_BUFFERED_BYTES, MAX_PAYLOAD_BYTES,
    PREAUTH_MAX_BYTES, PROTOCOL_VERSION, RequestFrame, close, err_frame, event_frame, now_ms,
    ok_frame, seq_event_frame, uuid_v4,
};
use crate::server::Gateway;
use crate::settings::Auth;

/// What the handshake settled for this socket.
#[derive(Debug)]
struct Session {
    conn_id: String,
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

async fn send_json(socket: &mut WebSocket, frame: &Value) -> bool {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .is_ok()
}

async fn send_close(socket: &mut WebSocket, code: u16, reason: &str) {
    // Close reasons are limited to 123 bytes.
    let mut reason = reason.to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
}

/// Runs one connection to its end.
pub async fn serve_connection(mut socket: WebSocket, gw: Arc<Gateway>, peer: SocketAddr) {
    let _tracked = gw.connections.token();
    let nonce = uuid_v4();
    let challenge = event_frame("connect.challenge", json!({"nonce": nonce, "ts": now_ms()}));
    if !send_json(&mut socket, &challenge).await {
        return;
    }
    let handshake = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut socket, &gw, peer)) => r,
        () = gw.shutdown.cancelled() => {
            send_close(&mut socket, close::SERVICE_RESTART, "service restart").await;
            return;
        }
    };
    let session = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(Refusal::Close { res, code, reason })) => {
            if let Some(res) = res {
                let _ = send_json(&mut socket, &res).await;
            }
            send_close(&mut socket, code, &reason).await;
            return;
        }
        Ok(Err(Refusal::Gone)) => return,
        Err(_elapsed) => {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    tracing::debug!(conn_id = %session.conn_id, %peer, "client connected");
    connected(socket, gw, session).await;
}

fn refuse(id: &str, error: ErrorShape, code: u16, reason: &str) -> Refusal {
    Refusal::Close {
        res: Some(err_frame(id, &error)),
        code,
        reason: reason.to_string(),
    }
}

async fn handshake(
    socket: &mut WebSocket,
    gw: &Gateway,
    peer: SocketAddr,
) -> Result<Session, Refusal> {
    let text = loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Err(Refusal::Close {
                    res: None,
                    code: close::POLICY,
                    reason: "invalid handshake: first request must be connect".into(),
                });
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(Refusal::Gone),
        }
    };
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
    check_credentials(&gw.settings.auth, &params).map_err(|e| {
        let reason = e.message.clone();
        refuse(id, e, close::POLICY, &reason)
    })?;
    // Device identity is not supported yet: a device-less connection keeps
    // its requested scopes on loopback after shared-secret auth (spec §5.3,
    // the friendlier rule); from elsewhere it gets none.
    let scopes: Vec<String> = if peer.ip().is_loopback() {
        params.scopes.clone().unwrap_or_default()
    } else {
        Vec::new()
    };
    let conn_id = uuid_v4();
    let hello = hello_ok(gw, &conn_id, &role, &scopes);
    if !send_json(socket, &ok_frame(id, hello)).await {
        return Err(Refusal::Gone);
    }
    Ok(Session { conn_id })
}

fn auth_error(message: &str, code: &str, reason: &str, next: &str) -> ErrorShape {
    ErrorShape::invalid(message).with_details(json!({
        "code": code,
        "authReason": reason,
        "canRetryWithDeviceToken": false,
        "recommendedNextStep": next,
    }))
}

fn check_credentials(auth: &Auth, params: &ConnectParams) -> Result<(), ErrorShape> {
    let provided = params.auth.clone().unwrap_or_default();
    match auth {
        Auth::None => Ok(()),
        Auth::Token(expected) => match provided.token.as_deref().filter(|t| !t.is_empty()) {
            None => Err(auth_error(
                "unauthorized: gateway token missing (provide gateway auth token)",
                "AUTH_TOKEN_MISSING",
                "token_missing",
                "update_auth_configuration",
            )),
            Some(t) if secrets_equal(t, expected.expose()) => Ok(()),
            Some(_) => Err(auth_error(
                "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)",
                "AUTH_TOKEN_MISMATCH",
                "token_mismatch",
                "update_auth_credentials",
            )),
        },
        Auth::Password(expected) => match provided.password.as_deref().filter(|p| !p.is_empty()) {
            None => Err(auth_error(
                "unauthorized: gateway password missing (provide gateway auth password)",
                "AUTH_PASSWORD_MISSING",
                "password_missing",
                "update_auth_configuration",
            )),
            Some(p) if secrets_equal(p, expected.expose()) => Ok(()),
            Some(_) => Err(auth_error(
                "unauthorized: gateway password mismatch (use this gateway's gateway.auth.password)",
                "AUTH_PASSWORD_MISMATCH",
                "password_mismatch",
                "update_auth_credentials",
            )),
        },
    }
}

fn hello_ok(gw: &Gateway, conn_id: &str, role: &str, scopes: &[String]) -> Value {
    let now = now_ms();
    json!({
        "type": "hello-ok",
        "protocol": PROTOCOL_VERSION,
        "server": {"version": crate::VERSION, "connId": conn_id},
        "features": {"methods": METHODS, "events": EVENTS},
        "snapshot": {
            "presence": [{
                "host": gw.host,
                "version": crate::VERSION,
                "platform": std::env::consts::OS,
                "mode": "gateway",
                "reason": "self",
                "ts": now,
            }],
            "health": {},
            "stateVersion": {"presence": 1, "health": 0},
            "uptimeMs": gw.uptime_ms(),
            "sessionDefaults": {
                "defaultAgentId": "main",
                "mainKey": "main",
                "mainSessionKey": "agent:main:main",
                "scope": "per-sender",
            },
            "authMode": gw.settings.auth.mode_str(),
        },
        "auth": {"role": role, "scopes": scopes},
        "policy": {
            "maxPayload": MAX_PAYLOAD_BYTES,
            "maxBufferedBytes": MAX_BUFFERED_BYTES,
            "tickIntervalMs": gw.tick_interval.as_millis() as u64,
        },
    })
}

async fn connected(mut socket: WebSocket, gw: Arc<Gateway>, session: Session) {
    let mut seq: u64 = 0;
    let period = gw.tick_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            () = gw.shutdown.cancelled() => {
                seq += 1;
                let _ = send_json(&mut socket, &seq_event_frame("shutdown", json!({"reason": "gateway stopping"}), seq)).await;
                send_close(&mut socket, close::SERVICE_RESTART, "service restart").await;
                break;
            }
            _ = tick.tick() => {
                seq += 1;
                if !send_json(&mut socket, &seq_event_frame("tick", json!({"ts": now_ms()}), seq)).await {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = match RequestFrame::parse(&text) {
                        Ok(req) => match methods::dispatch(&gw, &req.method, req.params.as_ref()) {
                            Ok(payload) => ok_frame(&req.id, payload),
                            Err(e) => err_frame(&req.id, &e),
                        },
                        Err(detail) => match protocol::salvage_id(&text) {
                            Some(id) => err_frame(&id, &ErrorShape::invalid(format!("invalid request frame: {detail}"))),
                            None => {
                                send_close(&mut socket, close::POLICY, "invalid request frame").await;
                                break;
                            }
                        },
                    };
                    if !send_json(&mut socket, &reply).await {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    send_close(&mut socket, close::POLICY, "binary frames are not supported").await;
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            }
        }
    }
    tracing::debug!(conn_id = %session.conn_id, "client disconnected");
}
