//! Answers to gateway methods. [`dispatch`] authorizes (role, scope) and
//! maps names to handlers; [`METHODS`] and [`EVENTS`] advertise exactly
//! what is implemented.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::protocol::{ErrorShape, now_ms};
use crate::scopes::{self, ADMIN};
use crate::server::Gateway;

/// Methods advertised in `hello-ok.features.methods`: the control plane's
/// and the agent runtime's.
pub static METHODS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    [
        CONTROL_METHODS,
        crate::agent::methods::METHODS,
        crate::nodes::OPERATOR_METHODS,
        crate::nodes::NODE_METHODS,
    ]
    .concat()
});
/// Events advertised in `hello-ok.features.events`.
pub static EVENTS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    [
        CONTROL_EVENTS,
        crate::agent::methods::EVENTS,
        crate::nodes::EVENTS,
    ]
    .concat()
});

/// The control plane's methods.
const CONTROL_METHODS: &[&str] = &[
    "health",
    "status",
    "system-presence",
    "config.get",
    "logs.tail",
    "last-heartbeat",
    "channels.status",
    "device.pair.list",
    "device.pair.approve",
    "device.pair.reject",
    "device.pair.remove",
    "device.token.revoke",
];
/// The control plane's events.
const CONTROL_EVENTS: &[&str] = &[
    "connect.challenge",
    "tick",
    "presence",
    "health",
    "shutdown",
    "device.pair.requested",
    "device.pair.resolved",
];

/// Who is calling: what the handshake settled for the socket.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `operator` or `node`.
    pub role: String,
    /// Effective scopes.
    pub scopes: Vec<String>,
    /// The socket's connection id.
    pub conn_id: String,
    /// Who calls (`device:<id>` across reconnects, else `conn:<connId>`):
    /// idempotency answers replay to this caller only.
    pub identity: String,
    /// The socket's outbound queue (events and later answers); `None` for
    /// callers without a socket.
    pub outbound: Option<crate::ws::Outbound>,
}

/// How a method answers.
#[derive(Debug)]
pub enum Reply {
    /// A `res` now.
    Now(Result<Value, ErrorShape>),
    /// A `res` now; the sender fires once the socket has written it.
    NowThen(Result<Value, ErrorShape>, tokio::sync::oneshot::Sender<()>),
    /// A ready `res` frame now (a replayed final answer).
    Frame(String),
    /// The handler sends the `res` through the socket's outbound queue later.
    Later,
}

impl Caller {
    fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| s == ADMIN)
    }
}

/// Methods with side effects: a repeated `idempotencyKey` replays the
/// first answer instead of acting twice.
pub const SIDE_EFFECTING: &[&str] = &[
    "device.pair.approve",
    "device.pair.reject",
    "device.pair.remove",
    "device.token.revoke",
];

/// Replay cache for idempotency keys (spec §10): 5 minutes, 1000 entries.
#[derive(Debug, Default)]
pub struct Dedupe {
    entries: std::collections::VecDeque<(String, u64, Result<Value, ErrorShape>)>,
}

/// How long an answer is replayed.
pub const DEDUPE_TTL_MS: u64 = 300_000;
/// How many answers are kept.
pub const DEDUPE_MAX: usize = 1000;

impl Dedupe {
    fn get(&mut self, key: &str, now: u64) -> Option<Result<Value, ErrorShape>> {
        self.entries
            .retain(|(_, at, _)| now.saturating_sub(*at) < DEDUPE_TTL_MS);
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, r)| r.clone())
    }
    fn put(&mut self, key: String, now: u64, result: Result<Value, ErrorShape>) {
        if self.entries.len() >= DEDUPE_MAX {
            self.entries.pop_front();
        }
        self.entries.push_back((key, now, result));
    }
}

/// Authorizes and runs `method`, replaying answers to repeated
/// idempotency keys of side-effecting methods.
pub fn dispatch(
    gw: &std::sync::Arc<Gateway>,
    caller: &Caller,
    id: &str,
    method: &str,
    params: Option<&Value>,
) -> Reply {
    if crate::agent::methods::METHODS.contains(&method) {
        if let Err(e) = authorize(caller, method) {
            return Reply::Now(Err(e));
        }
        let empty = json!({});
        let params = params.filter(|p| !p.is_null()).unwrap_or(&empty);
        if !params.is_object() {
            return Reply::Now(Err(ErrorShape::invalid(format!(
                "invalid {method} params: must be an object"
            ))));
        }
        return crate::agent::methods::dispatch(gw, caller, id, method, params);
    }
    if crate::nodes::OPERATOR_METHODS.contains(&method)
        || crate::nodes::NODE_METHODS.contains(&method)
    {
        if let Err(e) = authorize(caller, method) {
            return Reply::Now(Err(e));
        }
        let empty = json!({});
        let params = params.filter(|p| !p.is_null()).unwrap_or(&empty);
        return crate::nodes::dispatch(gw, caller, id, method, params);
    }
    if method == "system-presence" {
        if let Err(e) = authorize(caller, method) {
            return Reply::Now(Err(e));
        }
        // The entries are kept as JSON: the answer is spliced, not rebuilt.
        return Reply::Frame(format!(
            r#"{{"type":"res","id":{},"ok":true,"payload":{}}}"#,
            Value::from(id),
            gw.presence_list()
        ));
    }
    Reply::Now(dispatch_control(gw, caller, method, params))
}

/// Role and scope checks for an advertised method.
fn authorize(caller: &Caller, method: &str) -> Result<(), ErrorShape> {
    // A node calls `health` and its own methods; operators never call those.
    let node_method = crate::nodes::NODE_METHODS.contains(&method);
    if (caller.role == "node" && method != "health" && !node_method)
        || (caller.role != "node" && node_method)
    {
        return Err(ErrorShape::invalid(format!(
            "unauthorized role: {}",
            caller.role
        )));
    }
    if let Some(needed) = scopes::method_scope(method)
        && !scopes::satisfies(&caller.scopes, needed)
    {
        return Err(scopes::forbidden(needed));
    }
    Ok(())
}

/// The control plane's methods, with idempotency-key replay.
fn dispatch_control(
    gw: &Gateway,
    caller: &Caller,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, ErrorShape> {
    let key = params
        .and_then(|p| p["idempotencyKey"].as_str())
        .filter(|k| !k.is_empty() && SIDE_EFFECTING.contains(&method))
        .map(|k| format!("{}\u{0}{method}\u{0}{k}", caller.identity));
    let Some(key) = key else {
        return dispatch_once(gw, caller, method, params);
    };
    if let Some(replay) = gw
        .dedupe
        .lock()
        .ok()
        .and_then(|mut d| d.get(&key, now_ms()))
    {
        return replay;
    }
    let result = dispatch_once(gw, caller, method, params);
    if let Ok(mut d) = gw.dedupe.lock() {
        d.put(key, now_ms(), result.clone());
    }
    result
}

fn dispatch_once(
    gw: &Gateway,
    caller: &Caller,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, ErrorShape> {
    if METHODS.contains(&method) {
        authorize(caller, method)?;
    }
    let empty = json!({});
    let params = params.filter(|p| !p.is_null()).unwrap_or(&empty);
    match method {
        "health" => Ok(health_snapshot(gw)),
        "status" => Ok(status_summary(gw, caller, params)),
        "config.get" => Ok(config_snapshot(gw)),
        "logs.tail" => logs_tail(gw, params),
        "last-heartbeat" => Ok(Value::Null),
        "channels.status" => Ok(channels_status(gw)),
        m if m.starts_with("device.") => crate::pairing::dispatch(gw, caller, m, params),
        _ => Err(ErrorShape::invalid(format!("unknown method: {method}"))),
    }
}

fn sessions_path(gw: &Gateway) -> String {
    gw.agent
        .sessions
        .lock()
        .map(|s| s.index_path(gw.agent.default_agent()))
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// `{path, count, recent}` of the session store: the ten newest sessions.
fn sessions_summary(gw: &Gateway, path: String) -> Value {
    let rows = gw
        .agent
        .sessions
        .lock()
        .map(|s| s.list(None))
        .unwrap_or_default();
    let now = now_ms();
    let recent: Vec<Value> = rows
        .iter()
        .take(10)
        .map(|(_, k, e)| json!({"key": k, "updatedAt": e.updated_at, "age": now.saturating_sub(e.updated_at)}))
        .collect();
    json!({"path": path, "count": rows.len(), "recent": recent})
}

/// The `health` answer (HealthSnapshot, spec §8.1): channels this gateway
/// has configured and the session store.
pub fn health_snapshot(gw: &Gateway) -> Value {
    let started = now_ms();
    let sessions = sessions_summary(gw, sessions_path(gw));
    let (order, labels, channels) = configured_channels(gw);
    json!({
        "ok": true,
        "ts": started,
        "durationMs": now_ms().saturating_sub(started),
        "channels": channels,
        "channelOrder": order,
        "channelLabels": labels,
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

/// Channels named in the config: order, labels, and a status object each
/// (none runs yet: channel adapters are not part of this gateway yet).
fn configured_channels(gw: &Gateway) -> (Vec<&'static str>, Value, Value) {
    let cfg = &gw.settings.config;
    let mut order = Vec::new();
    let mut labels = serde_json::Map::new();
    let mut channels = serde_json::Map::new();
    for (id, label, section) in [
        ("telegram", "Telegram", &cfg.telegram),
        ("discord", "Discord", &cfg.discord),
    ] {
        if let Some(sec) = section {
            order.push(id);
            labels.insert(id.into(), label.into());
            channels.insert(
                id.into(),
                json!({
                    "configured": sec.token.is_some(),
                    "enabled": sec.enabled.unwrap_or(true),
                    "running": false,
                    "lastError": "channel adapters are not available in this gateway build",
                }),
            );
        }
    }
    (order, Value::Object(labels), Value::Object(channels))
}

/// `channels.status`.
fn channels_status(gw: &Gateway) -> Value {
    let (order, labels, channels) = configured_channels(gw);
    let accounts: serde_json::Map<String, Value> =
        order.iter().map(|id| (id.to_string(), json!([]))).collect();
    let defaults: serde_json::Map<String, Value> = order
        .iter()
        .map(|id| (id.to_string(), json!("default")))
        .collect();
    json!({
        "ts": now_ms(),
        "channelOrder": order,
        "channelLabels": labels,
        "channels": channels,
        "channelAccounts": accounts,
        "channelDefaultAccountId": defaults,
    })
}

/// The gateway's own presence entry.
pub fn self_presence(gw: &Gateway) -> Value {
    json!({
        "host": gw.host,
        "ip": gw.host,
        "version": crate::VERSION,
        "platform": gw.platform,
        "mode": "gateway",
        "reason": "self",
        "instanceId": gw.instance_id,
        "text": format!("Gateway: {h} ({h}) · app {v} · mode gateway · reason self", h = gw.host, v = crate::VERSION),
        "ts": now_ms(),
    })
}

/// The `status` answer (StatusSummary, spec §8.2): the fields the CLI reads.
fn status_summary(gw: &Gateway, caller: &Caller, params: &Value) -> Value {
    let path = if caller.is_admin() {
        sessions_path(gw)
    } else {
        "[redacted]".into()
    };
    let zeros = |keys: &[&str]| -> Value {
        keys.iter()
            .map(|k| (k.to_string(), json!(0)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    // Agent runs since start (`tasks`): every run is a turn of this
    // gateway's own runtime (none of OpenClaw's subagent, acp, cli or cron
    // runtimes exist here, so `byRuntime` stays empty of counts).
    use std::sync::atomic::Ordering::Relaxed;
    let c = &gw.agent.counters;
    let queued = c.queued.load(Relaxed);
    let active = gw.agent.active_runs() as u64;
    let running = active.saturating_sub(queued);
    let (ok, failed, timed_out, cancelled) = (
        c.succeeded.load(Relaxed),
        c.failed.load(Relaxed),
        c.timed_out.load(Relaxed),
        c.cancelled.load(Relaxed),
    );
    let terminal = ok + failed + timed_out + cancelled;
    let summary = sessions_summary(gw, path.clone());
    let defaults = crate::agent::defaults(gw);
    let mut v = json!({
        "runtimeVersion": crate::VERSION,
        "heartbeat": {"defaultAgentId": "main", "agents": [{"agentId": "main", "enabled": false, "every": "disabled", "everyMs": null}]},
        "channelSummary": [],
        "queuedSystemEvents": [],
        "degradedSecretOwners": [],
        "tasks": {
            "total": c.accepted.load(Relaxed), "active": active, "terminal": terminal, "failures": failed + timed_out,
            "byStatus": {"queued": queued, "running": running, "succeeded": ok, "failed": failed,
                         "timed_out": timed_out, "cancelled": cancelled, "lost": 0},
            "byRuntime": zeros(&["subagent", "acp", "cli", "cron"]),
        },
        "taskAudit": {
            "total": 0, "warnings": 0, "errors": 0,
            "byCode": zeros(&["stale_queued", "stale_running", "lost", "delivery_failed", "missing_cleanup", "inconsistent_timestamps"]),
        },
        "sessions": {
            "paths": [path], "count": summary["count"], "defaults": {"model": defaults["model"], "contextTokens": defaults["contextTokens"]},
            "recent": summary["recent"],
            "byAgent": [{"agentId": gw.agent.default_agent(), "path": path, "count": summary["count"], "recent": summary["recent"]}],
        },
        "pid": std::process::id(),
        "uptimeMs": gw.uptime_ms(),
    });
    if params["includeCliProjection"] == true {
        v["cliProjection"] = json!({
            "agents": {"rows": [{"id": "main", "name": "main"}], "defaultId": "main", "ownership": "sole", "selectionRequired": false}
        });
    }
    v
}

/// Replaces secret values (tokens, passwords, keys) in a config tree.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, val)| {
                let secret = openclaw_profiles::config::is_secret_key(k);
                let out = if secret && val.is_string() {
                    json!("__OPENCLAW_REDACTED__")
                } else {
                    redact(val)
                };
                (k.clone(), out)
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Array(a) => a.iter().map(redact).collect(),
        other => other.clone(),
    }
}

/// The `config.get` answer: a redacted snapshot of `openclaw.json`.
fn config_snapshot(gw: &Gateway) -> Value {
    let path = &gw.settings.paths.config_path;
    let text = std::fs::read_to_string(path).ok();
    let hash = text.as_ref().map(|t| {
        Sha256::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    let parsed = openclaw_profiles::config::parse_config(text.as_deref().unwrap_or(""), path);
    let (valid, issues, config) = match &parsed {
        Ok(c) => (true, json!([]), redact(&c.raw)),
        Err(e) => (false, json!([{"message": e.to_string()}]), json!({})),
    };
    // The config once (redacted); `runtimeConfig` carries only the gateway
    // section clients read (`gateway.controlUi.basePath`); the other views
    // the real gateway derives (parsed, sourceConfig, resolved) are not
    // repeated. A config too large for one frame is not sent at all.
    let runtime = json!({"gateway": config.get("gateway").cloned().unwrap_or(json!({}))});
    let mut answer = json!({
        "path": path,
        "exists": text.is_some(),
        "valid": valid,
        "raw": null,
        "parsed": null,
        "config": config,
        "runtimeConfig": runtime,
        "sourceConfig": null,
        "resolved": null,
        "hash": hash,
        "configRevisionHash": hash,
        "issues": issues,
        "warnings": [],
    });
    let size = serde_json::to_vec(&answer).map_or(usize::MAX, |v| v.len());
    if size > crate::protocol::MAX_PAYLOAD_BYTES / 2 {
        answer["config"] = Value::Null;
        answer["runtimeConfig"] = json!({});
        answer["warnings"] = json!([{
            "message": format!(
                "the config is too large to send ({size} bytes; a frame holds at most {}): read {} on the gateway host",
                crate::protocol::MAX_PAYLOAD_BYTES,
                path.display()
            )
        }]);
    }
    answer
}

/// The gateway's log file: `logging.file`, else `<stateDir>/logs/gateway.log`
/// (where `openclawctl` and our service units capture its output).
pub fn log_file(gw: &Gateway) -> PathBuf {
    gw.settings
        .config
        .raw
        .pointer("/logging/file")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
        .unwrap_or_else(|| gw.settings.paths.logs_dir().join("gateway.log"))
}

/// Runs blocking file I/O from a method: on the multi-threaded runtime the
/// worker hands its other tasks to the rest first (`block_in_place`).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// `logs.tail {cursor?, limit?, maxBytes?}`: lines from `cursor` (a byte
/// offset), or the last `limit` lines; `reset` when the file shrank.
fn logs_tail(gw: &Gateway, params: &Value) -> Result<Value, ErrorShape> {
    let bad = |d: &str| ErrorShape::invalid(format!("invalid logs.tail params: {d}"));
    let limit = match &params["limit"] {
        Value::Null => 500,
        v => v
            .as_u64()
            .filter(|&n| (1..=5000).contains(&n))
            .ok_or_else(|| bad("limit must be 1..5000"))? as usize,
    };
    let max_bytes = match &params["maxBytes"] {
        Value::Null => 250_000,
        v => v
            .as_u64()
            .filter(|&n| (1..=1_000_000).contains(&n))
            .ok_or_else(|| bad("maxBytes must be 1..1000000"))?,
    };
    let cursor = match &params["cursor"] {
        Value::Null => None,
        v => Some(
            v.as_u64()
                .ok_or_else(|| bad("cursor must be a byte offset"))?,
        ),
    };
    let file = log_file(gw);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let (mut start, reset) = match cursor {
        Some(c) if c > size => (0, true),
        Some(c) => (c, false),
        None => (size.saturating_sub(max_bytes), false),
    };
    let truncated = size.saturating_sub(start) > max_bytes;
    if truncated {
        start = size - max_bytes;
    }
    // Up to a megabyte from disk: off the async workers' duty while it runs.
    let buf = blocking(|| {
        let mut buf = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&file) {
            let _ = f.seek(SeekFrom::Start(start));
            let _ = f.take(max_bytes).read_to_end(&mut buf);
        }
        buf
    });
    // Only whole lines: stop at the last newline, skip a partial first line.
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines: Vec<&str> = text.lines().collect();
    if (cursor.is_none() || truncated) && start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let lines: Vec<&str> = lines[lines.len().saturating_sub(limit)..].to_vec();
    Ok(json!({
        "file": file,
        "cursor": start + end as u64,
        "size": size,
        "lines": lines,
        "truncated": truncated,
        "reset": reset,
    }))
}
