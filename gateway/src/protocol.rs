//! Frames of OpenClaw gateway protocol 4 (spec `protocol.md` §1–3): the
//! constants, the three frame kinds, error shapes, and the parsed form of
//! `connect` params. Only the fields we use are typed; unknown fields from
//! newer clients are ignored.

use openclaw_profiles::config::Secret;
use std::time::Duration;

use rand::RngExt;
use serde::Deserialize;
use serde_json::{Value, json};

/// The protocol this gateway speaks.
pub const PROTOCOL_VERSION: u64 = 4;
/// Oldest protocol a `probe` client may offer.
pub const MIN_PROBE_PROTOCOL: u64 = 3;
/// Largest frame accepted before `hello-ok`.
pub const PREAUTH_MAX_BYTES: usize = 65_536;
/// Largest frame accepted after `hello-ok` (`policy.maxPayload`).
pub const MAX_PAYLOAD_BYTES: usize = 26_214_400;
/// Outbound backlog limit (`policy.maxBufferedBytes`).
pub const MAX_BUFFERED_BYTES: usize = 52_428_800;
/// `policy.tickIntervalMs`.
pub const TICK_INTERVAL: Duration = Duration::from_millis(30_000);
/// Time from open to a successful `connect`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Close codes (spec §2.2).
pub mod close {
    /// Policy violation: handshake, auth and pairing failures.
    pub const POLICY: u16 = 1008;
    /// No overlapping protocol version.
    pub const PROTOCOL: u16 = 1002;
    /// Frame too large.
    pub const TOO_BIG: u16 = 1009;
    /// The gateway is stopping or restarting.
    pub const SERVICE_RESTART: u16 = 1012;
    /// An operator removed this node (`node.pair.remove`).
    pub const DEVICE_REMOVED: u16 = 4001;
}

/// Error codes clients match on (spec §2.1).
pub mod code {
    /// Bad frame or params, auth failure, unknown method.
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
}

/// The `error` object of a failed `res`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorShape {
    /// `INVALID_REQUEST`, `FORBIDDEN`, ...
    pub code: &'static str,
    /// Human text; clients match some exactly.
    pub message: String,
    /// Structured details (`details.code` etc.).
    pub details: Option<Value>,
    /// `retryable: true` on the wire (the client may try again as is).
    pub retryable: bool,
}

impl ErrorShape {
    /// An `INVALID_REQUEST` error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, message)
    }

    /// An error with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retryable: false,
        }
    }

    /// Marks the error retryable.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Adds `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The `error` object.
    pub fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.details {
            e["details"] = d.clone();
        }
        if self.retryable {
            e["retryable"] = true.into();
        }
        e
    }
}

/// `{"type":"event",...}` without `seq` (only `connect.challenge` goes out
/// this way).
pub fn event_frame(event: &str, payload: Value) -> Value {
    json!({"type": "event", "event": event, "payload": payload})
}

/// A successful `res`.
pub fn ok_frame(id: &str, payload: Value) -> Value {
    json!({"type": "res", "id": id, "ok": true, "payload": payload})
}

/// A failed `res`.
pub fn err_frame(id: &str, error: &ErrorShape) -> Value {
    json!({"type": "res", "id": id, "ok": false, "error": error.to_json()})
}

/// A `req` frame as received.
#[derive(Debug, Deserialize)]
pub struct RequestFrame {
    /// Must be `req`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Echoed in the `res`.
    pub id: String,
    /// Method name.
    pub method: String,
    /// Method params.
    #[serde(default)]
    pub params: Option<Value>,
}

impl RequestFrame {
    /// Parses a text frame; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let frame: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if frame.kind != "req" {
            return Err(format!("expected a req frame, got type {:?}", frame.kind));
        }
        if frame.id.is_empty() || frame.method.is_empty() {
            return Err("id and method must be non-empty".into());
        }
        Ok(frame)
    }
}

/// Best effort: the `id` of a frame that failed to parse as a request.
pub fn salvage_id(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("id")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `connect.params.client`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientInfo {
    /// `client.id` (`cli`, `openclaw-tui`, ...).
    pub id: String,
    /// `client.mode` (`cli`, `probe`, `ui`, ...).
    pub mode: String,
    /// `client.version`.
    pub version: String,
    /// `client.platform`.
    pub platform: String,
    /// `client.instanceId`.
    #[serde(default, rename = "instanceId")]
    pub instance_id: Option<String>,
    /// `client.displayName`.
    #[serde(default, rename = "displayName")]
    pub display_name: Option<String>,
    /// `client.deviceFamily`.
    #[serde(default, rename = "deviceFamily")]
    pub device_family: Option<String>,
    /// `client.modelIdentifier`.
    #[serde(default, rename = "modelIdentifier")]
    pub model_identifier: Option<String>,
}

/// `connect.params.auth`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConnectAuth {
    /// Shared token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Shared password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A device token issued earlier.
    #[serde(default, rename = "deviceToken")]
    pub device_token: Option<Secret>,
    /// A bootstrap token (setup codes).
    #[serde(default, rename = "bootstrapToken")]
    pub bootstrap_token: Option<Secret>,
}

/// `connect.params`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    /// Lowest protocol the client speaks.
    pub min_protocol: u64,
    /// Highest protocol the client speaks.
    pub max_protocol: u64,
    /// Who the client is.
    pub client: ClientInfo,
    /// `operator` (default) or `node`.
    #[serde(default)]
    pub role: Option<String>,
    /// Requested scopes, in order.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Credentials.
    #[serde(default)]
    pub auth: Option<ConnectAuth>,
    /// Device identity proof.
    #[serde(default)]
    pub device: Option<crate::identity::DeviceProof>,
    /// A node's declared capabilities.
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    /// A node's declared commands.
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    /// A node's declared permissions (`{name: bool}`).
    #[serde(default)]
    pub permissions: Option<serde_json::Value>,
    /// A node's `PATH`.
    #[serde(default, rename = "pathEnv")]
    pub path_env: Option<String>,
}

impl ConnectParams {
    /// True if the client's protocol range admits ours (probes may offer
    /// 3..4, node hosts N-1).
    pub fn protocol_ok(&self) -> bool {
        let ours = self.min_protocol <= PROTOCOL_VERSION && PROTOCOL_VERSION <= self.max_protocol;
        let probe = self.client.mode == "probe"
            && self.max_protocol >= MIN_PROBE_PROTOCOL
            && self.min_protocol <= PROTOCOL_VERSION;
        let node = self.role.as_deref() == Some("node")
            && self.client.mode == "node"
            && self.min_protocol <= 3
            && 3 <= self.max_protocol;
        ours || probe || node
    }
}

/// A random UUID v4 string (nonces, connection ids).
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    openclaw_profiles::lock::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    fn params(min: u64, max: u64, mode: &str, role: Option<&str>) -> ConnectParams {
        ConnectParams {
            min_protocol: min,
            max_protocol: max,
            client: ClientInfo {
                id: "cli".into(),
                mode: mode.into(),
                version: "1".into(),
                platform: "linux".into(),
                instance_id: None,
                display_name: None,
                device_family: None,
                model_identifier: None,
            },
            role: role.map(str::to_string),
            scopes: None,
            auth: None,
            device: None,
            caps: None,
            commands: None,
            permissions: None,
            path_env: None,
        }
    }

    #[test]
    fn protocol_negotiation_rules() {
        let cases = [
            (4, 4, "cli", None, true),
            (3, 5, "cli", None, true),
            (3, 3, "cli", None, false),
            (5, 6, "cli", None, false),
            (3, 4, "probe", None, true),
            (3, 3, "probe", None, true),
            (2, 2, "probe", None, false),
            (3, 3, "node", Some("node"), true),
            (3, 3, "node", Some("operator"), false),
        ];
        for (min, max, mode, role, want) in cases {
            assert_eq!(
                params(min, max, mode, role).protocol_ok(),
                want,
                "{min}..{max} {mode} {role:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,200}") {
            let _ = RequestFrame::parse(&s);
            let _ = salvage_id(&s);
        }

        #[test]
        fn connect_params_never_panic(
            min in proptest::option::of(0u64..10),
            scopes in proptest::collection::vec("\\PC{0,12}", 0..4),
            id in "\\PC{0,12}",
        ) {
            let v = serde_json::json!({"minProtocol": min, "maxProtocol": 4, "client": {"id": id, "version": "1", "platform": "p", "mode": "cli"}, "scopes": scopes});
            if let Ok(p) = serde_json::from_value::<ConnectParams>(v) {
                let _ = p.protocol_ok();
            }
        }
    }

    #[test]
    fn request_parse_errors() {
        assert!(RequestFrame::parse(r#"{"type":"req","id":"1","method":"health"}"#).is_ok());
        assert!(RequestFrame::parse(r#"{"type":"event","id":"1","method":"x"}"#).is_err());
        assert!(RequestFrame::parse(r#"{"type":"req","id":"","method":"x"}"#).is_err());
        assert!(RequestFrame::parse("not json").is_err());
        assert_eq!(
            salvage_id(r#"{"type":"req","id":"7"}"#).as_deref(),
            Some("7")
        );
    }
}
