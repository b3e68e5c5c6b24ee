//! Answers to gateway methods. Each method is a pure function of the
//! gateway's state and the params; [`dispatch`] maps names to them and
//! [`METHODS`] advertises exactly what is implemented.

use serde_json::{Value, json};

use crate::protocol::{ErrorShape, now_ms};
use crate::server::Gateway;

/// Methods advertised in `hello-ok.features.methods`.
pub const METHODS: &[&str] = &["health"];
/// Events advertised in `hello-ok.features.events`.
pub const EVENTS: &[&str] = &["connect.challenge", "tick", "shutdown"];

/// Runs `method`; `Err` becomes a failed `res`.
pub fn dispatch(gw: &Gateway, method: &str, _params: Option<&Value>) -> Result<Value, ErrorShape> {
    match method {
        "health" => Ok(health_snapshot(gw)),
        _ => Err(ErrorShape::invalid(format!("unknown method: {method}"))),
    }
}

/// The `health` answer (HealthSnapshot, spec §8.1): no channels are
/// configured yet and the agent runtime keeps no sessions.
pub fn health_snapshot(gw: &Gateway) -> Value {
    let started = now_ms();
    let sessions_path = gw
        .settings
        .paths
        .state_dir
        .join("agents/main/sessions/sessions.json")
        .to_string_lossy()
        .into_owned();
    let sessions = json!({"path": sessions_path, "count": 0, "recent": []});
    json!({
        "ok": true,
        "ts": started,
        "durationMs": now_ms().saturating_sub(started),
        "channels": {},
        "channelOrder": [],
        "channelLabels": {},
        "heartbeatSeconds": 0,
        "defaultAgentId": "main",
        "agents": [{
            "agentId": "main",
            "isDefault": true,
            "heartbeat": {
                "enabled": false,
                "every": "disabled",
                "everyMs": null,
                "prompt": "",
                "target": "none",
                "ackMaxChars": 300
            },
            "sessions": sessions
        }],
        "sessions": sessions
    })
}
