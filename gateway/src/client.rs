//! A protocol-4 client for the operator commands of the `openclaw` binary
//! (`gateway call`, `health`, `status`, `logs`, `devices`, ...), finding the
//! gateway as the real CLI does: `--url` (with `--token`), else
//! `OPENCLAW_GATEWAY_URL` with `OPENCLAW_GATEWAY_TOKEN`, else the profile's
//! own config (port and token).

use openclaw_profiles::config::Secret;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use openclaw_profiles::config::{self, AuthMode};
use openclaw_profiles::contract::{ENV_GATEWAY_PASSWORD, ENV_GATEWAY_TOKEN};
use openclaw_profiles::paths::{self, EnvSnapshot};
use openclaw_profiles::ports;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::protocol::uuid_v4;

/// How long a call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the gateway is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://host:port`.
    pub url: String,
    /// Shared token.
    pub token: Option<Secret>,
    /// Shared password.
    pub password: Option<Secret>,
    /// How long connecting, and each call, may take (`--timeout`).
    pub timeout: Duration,
}

/// A failed connect or call, as the gateway reported it.
#[derive(Debug, Clone)]
pub struct CallError {
    /// Error code (`INVALID_REQUEST`, `FORBIDDEN`, ..., or `UNAVAILABLE`
    /// when the gateway could not be reached).
    pub code: String,
    /// Message.
    pub message: String,
    /// Details, if any.
    pub details: Option<Value>,
}

impl CallError {
    fn unavailable(message: String) -> Self {
        Self {
            code: "UNAVAILABLE".into(),
            message,
            details: None,
        }
    }
    /// The `{ok:false,error}` document `--json` prints.
    pub fn to_json(&self) -> Value {
        let mut e = json!({"type": "gateway_request_error", "code": self.code, "message": self.message, "retryable": false});
        if let Some(d) = &self.details {
            e["details"] = d.clone();
        }
        json!({"ok": false, "error": e})
    }
}

/// Resolves the target from flags, env and the profile's config.
pub fn resolve_target(
    env: &EnvSnapshot,
    url: Option<&str>,
    token: Option<&Secret>,
) -> Result<Target, String> {
    let from_env = |key| env.get(key).map(Secret::new);
    if let Some(u) = url {
        let token =
            token.ok_or("--url needs --token (or use the profile's own gateway without --url)")?;
        return Ok(Target {
            url: u.to_string(),
            token: Some(token.clone()),
            password: None,
            timeout: CALL_TIMEOUT,
        });
    }
    if let Some(u) = env.get("OPENCLAW_GATEWAY_URL") {
        return Ok(Target {
            url: u.to_string(),
            token: token.cloned().or_else(|| from_env(ENV_GATEWAY_TOKEN)),
            password: from_env(ENV_GATEWAY_PASSWORD),
            timeout: CALL_TIMEOUT,
        });
    }
    let paths = paths::resolve_paths(env).map_err(|e| e.to_string())?;
    let cfg = config::load_config(&paths.config_path)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let port =
        ports::resolve_gateway_port(None, env, cfg.gateway.port).map_err(|e| e.to_string())?;
    let token = token
        .cloned()
        .or_else(|| from_env(ENV_GATEWAY_TOKEN))
        .or_else(|| cfg.gateway.auth.token.clone());
    let password = from_env(ENV_GATEWAY_PASSWORD)
        .or_else(|| cfg.gateway.auth.password.clone())
        .filter(|_| cfg.gateway.auth.mode == Some(AuthMode::Password) || token.is_none());
    Ok(Target {
        url: format!("ws://127.0.0.1:{port}"),
        token,
        password,
        timeout: CALL_TIMEOUT,
    })
}

/// A connected client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
    timeout: Duration,
    /// The `hello-ok` payload.
    pub hello: Value,
}

/// Who the client says it is.
#[derive(Debug, Clone, Copy)]
pub struct As {
    /// `client.id`.
    pub id: &'static str,
    /// `client.mode`.
    pub mode: &'static str,
    /// Oldest protocol offered.
    pub min_protocol: u64,
}

/// `cli`/`cli`, protocol 4.
pub const CLI: As = As {
    id: "cli",
    mode: "cli",
    min_protocol: 4,
};
/// `cli`/`probe`, protocols 3..4.
pub const PROBE: As = As {
    id: "cli",
    mode: "probe",
    min_protocol: 3,
};

fn recv_err(e: impl std::fmt::Display) -> CallError {
    CallError::unavailable(format!("connection lost: {e}"))
}

impl Client {
    /// Connects and completes the handshake.
    pub async fn connect(target: &Target, who: As, scopes: &[&str]) -> Result<Self, CallError> {
        let (ws, _) = tokio::time::timeout(
            target.timeout,
            tokio_tungstenite::connect_async(target.url.as_str()),
        )
        .await
        .map_err(|_| CallError::unavailable(format!("timed out connecting to {}", target.url)))?
        .map_err(|e| {
            CallError::unavailable(format!("cannot reach the gateway at {}: {e}", target.url))
        })?;
        let mut c = Self {
            ws,
            next: 1,
            timeout: target.timeout,
            hello: Value::Null,
        };
        let challenge = c.next_frame().await?;
        if challenge["event"] != "connect.challenge" {
            return Err(CallError::unavailable(
                "the gateway did not send connect.challenge".into(),
            ));
        }
        let mut auth = json!({});
        if let Some(t) = &target.token {
            auth["token"] = t.expose().into();
        }
        if let Some(p) = &target.password {
            auth["password"] = p.expose().into();
        }
        let params = json!({
            "minProtocol": who.min_protocol, "maxProtocol": 4,
            "client": {"id": who.id, "version": crate::VERSION, "platform": std::env::consts::OS, "mode": who.mode, "instanceId": uuid_v4()},
            "caps": [], "auth": auth, "role": "operator", "scopes": scopes,
        });
        c.hello = c.request("connect", params).await?;
        Ok(c)
    }

    async fn next_frame(&mut self) -> Result<Value, CallError> {
        loop {
            let msg = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .map_err(|_| CallError::unavailable("timed out waiting for the gateway".into()))?;
            match msg {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).map_err(recv_err),
                Some(Ok(Message::Close(c))) => {
                    return Err(CallError::unavailable(format!(
                        "gateway closed the connection{}",
                        c.map(|c| format!(" ({} {})", u16::from(c.code), c.reason))
                            .unwrap_or_default()
                    )));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(recv_err(e)),
                None => {
                    return Err(CallError::unavailable(
                        "gateway closed the connection".into(),
                    ));
                }
            }
        }
    }

    /// Sends a request and waits for its `res` (events are skipped).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        self.exchange(method, params, false).await
    }

    /// Sends a request whose method answers twice (`agent`: an `accepted`
    /// ack, then the final answer) and returns the final one; a failed
    /// final keeps its payload in `details`.
    pub async fn request_final(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        self.exchange(method, params, true).await
    }

    async fn exchange(
        &mut self,
        method: &str,
        params: Value,
        wait_final: bool,
    ) -> Result<Value, CallError> {
        let id = format!("{}:{}", self.next, uuid_v4());
        self.next += 1;
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .map_err(recv_err)?;
        loop {
            let f = self.next_frame().await?;
            if f["type"] != "res" || f["id"] != id.as_str() {
                continue;
            }
            if f["ok"] == true {
                if wait_final && f["payload"]["status"] == "accepted" {
                    continue;
                }
                return Ok(f["payload"].clone());
            }
            let details = if wait_final {
                f.get("payload").cloned()
            } else {
                f["error"].get("details").cloned()
            };
            return Err(CallError {
                code: f["error"]["code"]
                    .as_str()
                    .unwrap_or("UNAVAILABLE")
                    .to_string(),
                message: f["error"]["message"]
                    .as_str()
                    .unwrap_or("request failed")
                    .to_string(),
                details,
            });
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
