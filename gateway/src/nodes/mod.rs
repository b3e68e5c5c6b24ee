//! Nodes (spec `nodes-canvas.md` §2–§7): devices that connect with role
//! `node`, declare capabilities and commands, and run commands for
//! operators.
//!
//! Admission has two gates. Device pairing (`pairing`, the same store as
//! operators) decides whether the socket may connect; the command surface
//! (`node.pair.*`) decides which declared commands count, and lives on the
//! paired-device record (`node_surface`, `pending_node_surface`). The live
//! side is [`Nodes`]: one entry per node id (the device id; the newest
//! socket routes) and the invokes waiting for a node's answer.

pub mod policy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::methods::{Caller, Reply};
use crate::pairing::{NodeFacts, NodeSurface, Paired, PendingSurface};
use crate::protocol::{ClientInfo, ErrorShape, err_frame, now_ms, ok_frame, uuid_v4};
use crate::scopes;
use crate::server::Gateway;
use crate::ws::Outbound;

/// Methods operators call.
pub const OPERATOR_METHODS: &[&str] = &[
    "node.list",
    "node.describe",
    "node.invoke",
    "node.rename",
    "node.pair.list",
    "node.pair.approve",
    "node.pair.reject",
    "node.pair.remove",
];
/// Methods only a node's own socket calls.
pub const NODE_METHODS: &[&str] = &[
    "node.invoke.result",
    "node.event",
    "node.runnerInventory.update",
    "node.skills.update",
    "node.pluginTools.update",
    "node.pluginSurface.refresh",
];
/// Events this module sends.
pub const EVENTS: &[&str] = &[
    "node.invoke.request",
    "node.invoke.cancel",
    "node.pair.requested",
    "node.pair.resolved",
    "node.runnerInventory.changed",
];

/// An invoke without `timeoutMs` waits this long.
pub const DEFAULT_INVOKE_TIMEOUT_MS: u64 = 30_000;
/// The longest wait an invoke may ask for.
const MAX_INVOKE_TIMEOUT_MS: u64 = 10 * 60_000;
/// Invokes waiting at once, gateway-wide (each holds a task and a slot).
const MAX_PENDING_INVOKES: usize = 4096;
/// Host stats are saved at most this often per node.
const HOST_STATS_SAVE_MS: u64 = 60_000;

/// What a node said when it connected.
#[derive(Debug, Clone)]
pub struct NodeHello {
    /// Node id (the device id).
    pub node_id: String,
    /// Its `client` block.
    pub client: ClientInfo,
    /// Declared capabilities.
    pub caps: Vec<String>,
    /// Declared commands.
    pub commands: Vec<String>,
    /// Declared permissions (`{name: bool}`).
    pub permissions: Option<Value>,
    /// Its `PATH`.
    pub path_env: Option<String>,
    /// Where it connected from.
    pub remote_ip: String,
}

/// A connected node.
#[derive(Debug, Clone)]
struct Live {
    hello: NodeHello,
    conn_id: String,
    out: Outbound,
    /// Declared commands policy lets an operator approve (sorted).
    declared: Vec<String>,
    /// Declared capabilities (sorted).
    caps: Vec<String>,
    connected_at_ms: u64,
}

/// An invoke waiting for its node. The node's answer (or its socket's
/// close, or the timer) writes the caller's `res` straight to the caller's
/// queue: no task sits between the node's answer and the caller.
#[derive(Debug)]
struct Waiting {
    node_id: String,
    /// The node socket it went to.
    conn_id: String,
    command: String,
    /// The caller's request id and queue.
    req_id: String,
    origin: Outbound,
    /// The deadline's task (aborted when the answer comes first).
    timer: Option<tokio::task::AbortHandle>,
}

impl Waiting {
    /// Answers the caller and stops the timer.
    fn finish(self, result: Result<Value, ErrorShape>) {
        if let Some(t) = &self.timer {
            t.abort();
        }
        let frame = match result {
            Ok(payload) => ok_frame(&self.req_id, payload),
            Err(e) => err_frame(&self.req_id, &e),
        };
        self.origin.answer(frame.to_string());
    }
}

/// Connected nodes and the invokes waiting for them.
#[derive(Debug, Default)]
pub struct Nodes {
    live: Mutex<HashMap<String, Live>>,
    waiting: Mutex<HashMap<String, Waiting>>,
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v: Vec<String> = v.to_vec();
    v.sort();
    v.dedup();
    v
}

fn policy_config(gw: &Gateway) -> policy::Config {
    policy::Config::from_raw(&gw.settings.config.raw)
}

/// `gateway.nodes.pairing.autoApproveLocal` (default true).
pub fn auto_approve_local(gw: &Gateway) -> bool {
    gw.settings
        .config
        .raw
        .pointer("/gateway/nodes/pairing/autoApproveLocal")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// A targeted event: no `seq` (it does not advance the socket's counter).
fn targeted(event: &str, payload: Value) -> String {
    crate::protocol::event_frame(event, payload).to_string()
}

fn platform_of(p: &Paired) -> &'static str {
    policy::platform_id(
        p.platform.as_deref().unwrap_or(""),
        p.node.as_ref().and_then(|n| n.device_family.as_deref()),
    )
}

impl Nodes {
    /// Registers a node socket that just got its `hello-ok`: records its
    /// facts and, when it declares more than was approved, files (or
    /// reuses) a surface request and tells pairing operators.
    pub fn attach(&self, gw: &Gateway, hello: NodeHello, conn_id: &str, out: Outbound) {
        let cfg = policy_config(gw);
        let platform = policy::platform_id(
            &hello.client.platform,
            hello.client.device_family.as_deref(),
        );
        let allow = policy::pairing_allowlist(&cfg, platform);
        let declared: Vec<String> = sorted(
            &policy::normalize_declared(&hello.commands)
                .into_iter()
                .filter(|c| allow.contains(c))
                .collect::<Vec<_>>(),
        );
        let withheld: Vec<&String> = hello
            .commands
            .iter()
            .filter(|c| !declared.contains(c))
            .collect();
        if !withheld.is_empty() {
            tracing::info!(node = %hello.node_id, ?withheld, "node command surface withheld");
        }
        let caps = sorted(&hello.caps);
        let now = now_ms();
        let mut requested = None;
        if let Ok(mut store) = gw.pairing.lock() {
            if let Some(p) = store.paired.get_mut(&hello.node_id) {
                let facts = p.node.get_or_insert_with(NodeFacts::default);
                facts.version = Some(hello.client.version.clone());
                facts.device_family = hello.client.device_family.clone();
                facts.model_identifier = hello.client.model_identifier.clone();
                facts.remote_ip = Some(hello.remote_ip.clone());
                facts.last_connected_at_ms = Some(now);
                p.platform = Some(hello.client.platform.clone());
                p.client_id = hello.client.id.clone();
                p.client_mode = hello.client.mode.clone();
                if p.display_name.is_none() {
                    p.display_name = hello.client.display_name.clone();
                }
                let covered = p.node_surface.as_ref().is_some_and(|s| {
                    declared.iter().all(|c| s.commands.contains(c))
                        && caps.iter().all(|c| s.caps.contains(c))
                });
                if !covered {
                    let reuse = p
                        .pending_node_surface
                        .as_ref()
                        .filter(|s| s.commands == declared && s.caps == caps)
                        .cloned();
                    let pending = reuse.unwrap_or_else(|| PendingSurface {
                        request_id: uuid_v4(),
                        caps: caps.clone(),
                        commands: declared.clone(),
                        permissions: hello.permissions.clone(),
                        ts: now,
                    });
                    p.pending_node_surface = Some(pending);
                    requested = Some(pending_wire(p, false));
                }
            }
            let _ = store.save();
        }
        let live = Live {
            hello,
            conn_id: conn_id.to_string(),
            out,
            declared,
            caps,
            connected_at_ms: now,
        };
        if let Ok(mut l) = self.live.lock() {
            l.insert(live.hello.node_id.clone(), live);
        }
        if let Some(p) = requested {
            gw.broadcast("node.pair.requested", p, false);
        }
    }

    /// Forgets a closed node socket (unless a newer one took over) and
    /// fails every invoke still waiting on it with `DISCONNECTED`.
    pub fn detach(&self, gw: &Gateway, node_id: &str, conn_id: &str) {
        if let Ok(mut l) = self.live.lock()
            && l.get(node_id).is_some_and(|n| n.conn_id == conn_id)
        {
            l.remove(node_id);
        }
        let gone: Vec<Waiting> = self
            .waiting
            .lock()
            .map(|mut w| {
                let ids: Vec<String> = w
                    .iter()
                    .filter(|(_, v)| v.conn_id == conn_id)
                    .map(|(k, _)| k.clone())
                    .collect();
                ids.iter().filter_map(|k| w.remove(k)).collect()
            })
            .unwrap_or_default();
        for w in gone {
            let msg = format!("node disconnected ({})", w.command);
            w.finish(Err(node_error("DISCONNECTED", &msg, true)));
        }
        if let Ok(mut store) = gw.pairing.lock()
            && let Some(p) = store.paired.get_mut(node_id)
        {
            p.node
                .get_or_insert_with(NodeFacts::default)
                .last_disconnected_at_ms = Some(now_ms());
            let _ = store.save();
        }
    }

    fn live(&self, node_id: &str) -> Option<Live> {
        self.live.lock().ok()?.get(node_id).cloned()
    }

    /// How many nodes are connected.
    pub fn connected(&self) -> usize {
        self.live.lock().map(|l| l.len()).unwrap_or(0)
    }
}

/// What `P` and `A` rows share: who the node is, from its record.
fn node_fields(p: &Paired, rest: Value) -> Value {
    let mut v = json!({
        "nodeId": p.device_id,
        "clientId": p.client_id,
        "clientMode": p.client_mode,
        "displayName": p.display_name,
        "platform": p.platform,
        "version": p.node.as_ref().and_then(|n| n.version.clone()),
        "deviceFamily": p.node.as_ref().and_then(|n| n.device_family.clone()),
    });
    if let (Some(o), Value::Object(rest)) = (v.as_object_mut(), rest) {
        o.extend(rest);
    }
    strip_nulls(v)
}

/// `P` of `node.pair.list` / `node.pair.requested`.
fn pending_wire(p: &Paired, with_silent: bool) -> Value {
    let s = p.pending_node_surface.as_ref();
    let commands = s.map(|s| s.commands.clone()).unwrap_or_default();
    let mut rest = json!({
        "requestId": s.map(|s| s.request_id.clone()),
        "caps": s.map(|s| s.caps.clone()).unwrap_or_default(),
        "requiredApproveScopes": policy::required_approve_scopes(&commands),
        "commands": commands,
        "ts": s.map_or(0, |s| s.ts),
    });
    if with_silent {
        rest["silent"] = (p.approved_via == "silent").into();
    }
    node_fields(p, rest)
}

/// `A` of `node.pair.list` / `node.pair.approve`.
fn approved_wire(p: &Paired) -> Value {
    let s = p.node_surface.as_ref();
    node_fields(
        p,
        json!({
            "caps": s.map(|s| s.caps.clone()).unwrap_or_default(),
            "commands": s.map(|s| s.commands.clone()).unwrap_or_default(),
            "createdAtMs": s.map(|s| s.created_at_ms),
            "approvedAtMs": s.map(|s| s.approved_at_ms),
            "lastSeenAtMs": p.last_seen_at_ms,
            "lastSeenReason": p.last_seen_at_ms.map(|_| "connect"),
        }),
    )
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
}

/// A node's effective commands: what it declared now and an operator
/// approved.
fn effective(live: &Live, p: &Paired) -> (Vec<String>, Vec<String>) {
    match &p.node_surface {
        Some(s) => (
            live.declared
                .iter()
                .filter(|c| s.commands.contains(c))
                .cloned()
                .collect(),
            live.caps
                .iter()
                .filter(|c| s.caps.contains(c))
                .cloned()
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    }
}

fn approval_state(p: &Paired) -> &'static str {
    match (&p.node_surface, &p.pending_node_surface) {
        (Some(_), None) => "approved",
        (Some(_), Some(_)) => "pending-reapproval",
        (None, Some(_)) => "pending-approval",
        (None, None) => "unapproved",
    }
}

/// One `node.list` row (spec §6).
fn row(p: &Paired, live: Option<&Live>, pairing_reader: bool) -> Value {
    let facts = p.node.clone().unwrap_or_default();
    let (commands, caps) = match live {
        Some(l) => effective(l, p),
        None => p
            .node_surface
            .as_ref()
            .map(|s| (s.commands.clone(), s.caps.clone()))
            .unwrap_or_default(),
    };
    let mut v = json!({
        "nodeId": p.device_id,
        "displayName": p.display_name,
        "platform": p.platform,
        "version": facts.version,
        "clientId": p.client_id,
        "clientMode": p.client_mode,
        "deviceFamily": facts.device_family,
        "modelIdentifier": facts.model_identifier,
        "remoteIp": facts.remote_ip,
        "caps": sorted(&caps),
        "commands": sorted(&commands),
        "sessionHost": false,
        "hostStats": facts.host_stats,
        "approvalState": approval_state(p),
        "lastConnectedAtMs": facts.last_connected_at_ms,
        "lastDisconnectedAtMs": facts.last_disconnected_at_ms,
        "lastSeenAtMs": p.last_seen_at_ms,
        "lastSeenReason": p.last_seen_at_ms.map(|_| "connect"),
        "approvedAtMs": p.node_surface.as_ref().map_or(p.approved_at_ms, |s| s.approved_at_ms),
        "paired": true,
        "connected": live.is_some(),
    });
    if let Some(l) = live {
        v["nodePluginTools"] = json!([]);
        v["pathEnv"] = l.hello.path_env.clone().into();
        v["permissions"] = l.hello.permissions.clone().unwrap_or(Value::Null);
        v["connectedAtMs"] = l.connected_at_ms.into();
        v["lastActiveAtMs"] = l.connected_at_ms.into();
    }
    if pairing_reader && let Some(s) = &p.pending_node_surface {
        v["pendingRequestId"] = s.request_id.clone().into();
        v["pendingDeclaredCaps"] = s.caps.clone().into();
        v["pendingDeclaredCommands"] = s.commands.clone().into();
        if let Some(perm) = &s.permissions {
            v["pendingDeclaredPermissions"] = perm.clone();
        }
    }
    strip_nulls(v)
}

fn is_node(p: &Paired) -> bool {
    p.roles.iter().any(|r| r == "node")
}

fn param<'a>(p: &'a Value, key: &str, method: &str) -> Result<&'a str, ErrorShape> {
    p[key]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ErrorShape::invalid(format!("invalid {method} params: {key} is required")))
}

/// Runs a node method (operator or node side).
pub fn dispatch(
    gw: &Arc<Gateway>,
    caller: &Caller,
    id: &str,
    method: &str,
    params: &Value,
) -> Reply {
    match method {
        "node.invoke" => invoke(gw, caller, id, params),
        _ => Reply::Now(answer(gw, caller, method, params)),
    }
}

fn answer(
    gw: &Gateway,
    caller: &Caller,
    method: &str,
    params: &Value,
) -> Result<Value, ErrorShape> {
    let pairing_reader = scopes::satisfies(&caller.scopes, scopes::PAIRING);
    match method {
        "node.list" => {
            let live = gw.nodes.live.lock().map(|l| l.clone()).unwrap_or_default();
            let store = gw.pairing.lock().map_err(|_| busy())?;
            let mut rows: Vec<(bool, String, Value)> = store
                .paired
                .values()
                .filter(|p| is_node(p))
                .map(|p| {
                    let l = live.get(&p.device_id);
                    let name = p.display_name.clone().unwrap_or_default().to_lowercase();
                    (l.is_none(), name, row(p, l, pairing_reader))
                })
                .collect();
            rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            Ok(json!({"ts": now_ms(), "nodes": rows.into_iter().map(|r| r.2).collect::<Vec<_>>()}))
        }
        "node.describe" => {
            let node_id = param(params, "nodeId", method)?;
            let live = gw.nodes.live(node_id);
            let store = gw.pairing.lock().map_err(|_| busy())?;
            let p = store
                .paired
                .get(node_id)
                .filter(|p| is_node(p))
                .ok_or_else(|| ErrorShape::invalid("unknown nodeId"))?;
            let mut v = row(p, live.as_ref(), pairing_reader);
            v["ts"] = now_ms().into();
            Ok(v)
        }
        "node.rename" => {
            let node_id = param(params, "nodeId", method)?;
            let name = param(params, "displayName", method)?;
            let mut store = gw.pairing.lock().map_err(|_| busy())?;
            let p = store
                .paired
                .get_mut(node_id)
                .filter(|p| is_node(p))
                .ok_or_else(|| ErrorShape::invalid("unknown nodeId"))?;
            p.display_name = Some(name.to_string());
            store.save().map_err(save_failed)?;
            Ok(json!({"nodeId": node_id, "displayName": name}))
        }
        "node.pair.list" => {
            let store = gw.pairing.lock().map_err(|_| busy())?;
            let nodes = store.paired.values().filter(|p| is_node(p));
            Ok(json!({
                "pending": nodes.clone().filter(|p| p.pending_node_surface.is_some()).map(|p| pending_wire(p, true)).collect::<Vec<_>>(),
                "paired": nodes.filter(|p| p.node_surface.is_some()).map(approved_wire).collect::<Vec<_>>(),
            }))
        }
        "node.pair.approve" | "node.pair.reject" => resolve(gw, caller, method, params),
        "node.pair.remove" => {
            let node_id = param(params, "nodeId", method)?.to_string();
            let mut store = gw.pairing.lock().map_err(|_| busy())?;
            let p = store
                .paired
                .get_mut(&node_id)
                .filter(|p| is_node(p))
                .ok_or_else(|| ErrorShape::invalid("unknown nodeId"))?;
            p.roles.retain(|r| r != "node");
            p.tokens.remove("node");
            p.node_surface = None;
            p.pending_node_surface = None;
            if p.roles.is_empty() {
                store.paired.remove(&node_id);
            }
            store.save().map_err(save_failed)?;
            drop(store);
            let resolved =
                json!({"requestId": "", "nodeId": node_id, "decision": "removed", "ts": now_ms()});
            gw.broadcast("node.pair.resolved", resolved, false);
            if let Some(l) = gw.nodes.live(&node_id) {
                l.out
                    .close(crate::protocol::close::DEVICE_REMOVED, "device removed");
            }
            Ok(json!({"nodeId": node_id}))
        }
        "node.invoke.result" => invoke_result(gw, caller, params),
        "node.event" => node_event(gw, caller, params),
        "node.runnerInventory.update" => {
            let node_id = own_node(caller)?;
            let store = gw.pairing.lock().map_err(|_| busy())?;
            match store.paired.get(&node_id) {
                Some(p) if p.node_surface.is_some() => Ok(json!({"nodeId": node_id})),
                _ => Err(ErrorShape::new(
                    "UNAVAILABLE",
                    "node capability surface is awaiting operator approval; run `openclaw nodes pending`, then `openclaw nodes approve <requestId>`",
                )
                .retryable()),
            }
        }
        "node.skills.update" => Ok(json!({"nodeId": own_node(caller)?, "skills": []})),
        "node.pluginTools.update" => Ok(json!({"nodeId": own_node(caller)?, "tools": []})),
        "node.pluginSurface.refresh" => surface_refresh(gw, caller, params),
        _ => Err(ErrorShape::invalid(format!("unknown method: {method}"))),
    }
}

fn busy() -> ErrorShape {
    ErrorShape::new("UNAVAILABLE", "pairing store unavailable").retryable()
}

fn save_failed(e: std::io::Error) -> ErrorShape {
    ErrorShape::new("UNAVAILABLE", format!("cannot save the pairing store: {e}"))
}

/// The node id of a node socket (its device id).
fn own_node(caller: &Caller) -> Result<String, ErrorShape> {
    caller
        .identity
        .strip_prefix("device:")
        .map(str::to_string)
        .ok_or_else(|| ErrorShape::invalid("node connections need a device identity"))
}

/// `node.pluginSurface.refresh {surface, observedUrl?}`: a new capability
/// URL (the old one dies), unless the node observed a stale one while its
/// current one still lives (then the current one, unchanged).
fn surface_refresh(gw: &Gateway, caller: &Caller, params: &Value) -> Result<Value, ErrorShape> {
    let surface = param(params, "surface", "node.pluginSurface.refresh")?;
    let unavailable = || {
        ErrorShape::new(
            "UNAVAILABLE",
            format!("{surface} plugin surface unavailable"),
        )
    };
    if surface != "canvas" {
        return Err(unavailable());
    }
    let Some((cap, url, expires)) = gw.canvas_caps.current(&caller.conn_id) else {
        return Err(unavailable());
    };
    let observed = params["observedUrl"].as_str().unwrap_or("");
    let (url, expires) = if !observed.is_empty() && !observed.contains(&cap) {
        (url, expires)
    } else {
        let base = url
            .split("/__openclaw__/cap/")
            .next()
            .unwrap_or_default()
            .to_string();
        gw.canvas_caps.issue(&caller.conn_id, &base)
    };
    Ok(json!({"surface": "canvas", "pluginSurfaceUrls": {"canvas": url}, "expiresAtMs": expires}))
}

/// `node.pair.approve|reject {requestId}`.
fn resolve(
    gw: &Gateway,
    caller: &Caller,
    method: &str,
    params: &Value,
) -> Result<Value, ErrorShape> {
    let request_id = param(params, "requestId", method)?;
    let approve = method == "node.pair.approve";
    let mut store = gw.pairing.lock().map_err(|_| busy())?;
    let p = store
        .paired
        .values_mut()
        .find(|p| {
            p.pending_node_surface
                .as_ref()
                .is_some_and(|s| s.request_id == request_id)
        })
        .ok_or_else(|| ErrorShape::invalid("unknown requestId"))?;
    let pending = p
        .pending_node_surface
        .clone()
        .expect("found by its pending surface");
    if approve {
        for needed in policy::required_approve_scopes(&pending.commands) {
            if !scopes::satisfies(&caller.scopes, needed) {
                return Err(scopes::forbidden(needed));
            }
        }
    }
    let node_id = p.device_id.clone();
    p.pending_node_surface = None;
    let now = now_ms();
    if approve {
        let created = p.node_surface.as_ref().map_or(now, |s| s.created_at_ms);
        p.node_surface = Some(NodeSurface {
            caps: pending.caps,
            commands: pending.commands,
            created_at_ms: created,
            approved_at_ms: now,
        });
    }
    let node = approved_wire(p);
    store.save().map_err(save_failed)?;
    drop(store);
    let decision = if approve { "approved" } else { "rejected" };
    let resolved =
        json!({"requestId": request_id, "nodeId": node_id, "decision": decision, "ts": now});
    if approve {
        gw.broadcast(
            "node.runnerInventory.changed",
            json!({"nodeId": node_id}),
            false,
        );
    }
    gw.broadcast("node.pair.resolved", resolved.clone(), false);
    if let Some(l) = gw.nodes.live(&node_id) {
        l.out
            .frame_now(targeted("node.pair.resolved", resolved.clone()));
    }
    Ok(if approve {
        json!({"requestId": request_id, "node": node})
    } else {
        resolved
    })
}

/// `node.invoke` (spec §5): checks in the real gateway's order, then the
/// request goes to the node and the answer comes back later.
fn invoke(gw: &Arc<Gateway>, caller: &Caller, id: &str, params: &Value) -> Reply {
    let started = std::time::Instant::now();
    let checked = (|| {
        let node_id = param(params, "nodeId", "node.invoke")?.to_string();
        let command = param(params, "command", "node.invoke")?.to_string();
        param(params, "idempotencyKey", "node.invoke")?;
        if policy::is_private(&command) {
            return Err(ErrorShape::invalid(
                "node.invoke does not allow private node controls",
            ));
        }
        if command.starts_with("system.execApprovals.") {
            return Err(ErrorShape::invalid(
                "node.invoke does not allow system.execApprovals.*; use exec.approvals.node.*",
            ));
        }
        if policy::ADMIN_ONLY.contains(&command.as_str())
            && !scopes::satisfies(&caller.scopes, scopes::ADMIN)
        {
            return Err(scopes::forbidden(scopes::ADMIN));
        }
        let store = gw.pairing.lock().map_err(|_| busy())?;
        let Some(p) = store.paired.get(&node_id).filter(|p| is_node(p)).cloned() else {
            return Err(ErrorShape::new(
                "UNAVAILABLE",
                "node pairing changed while invocation was active",
            )
            .with_details(json!({"code": "PAIRING_CHANGED"}))
            .retryable());
        };
        drop(store);
        let Some(live) = gw.nodes.live(&node_id) else {
            return Err(
                ErrorShape::new("UNAVAILABLE", "node not connected").with_details(json!({
                    "code": "NOT_CONNECTED",
                    "nodeError": {"code": "NOT_CONNECTED", "message": "node not connected"},
                    "nodeCommandDispatched": false,
                })),
            );
        };
        let cfg = policy_config(gw);
        let platform = platform_of(&p);
        // As the real gateway: a live node's own commands stand in for an
        // approval not yet given, so that a pending surface is reported
        // as pending rather than as not allowlisted.
        let approved = p
            .node_surface
            .as_ref()
            .map_or_else(|| live.declared.clone(), |s| s.commands.clone());
        let allow = policy::runtime_allowlist(&cfg, platform, &approved);
        let (effective, _) = effective(&live, &p);
        if let Some((reason, message)) =
            policy::rejection(&cfg, &command, platform, &allow, &effective, &live.declared)
        {
            return Err(ErrorShape::invalid(message)
                .with_details(json!({"reason": reason, "command": command})));
        }
        Ok((node_id, command, live))
    })();
    let (node_id, command, live) = match checked {
        Ok(v) => v,
        Err(e) => return Reply::Now(Err(e)),
    };
    let Some(origin) = caller.outbound.clone() else {
        return Reply::Now(Err(ErrorShape::invalid("node.invoke needs a socket")));
    };
    let budget = params["timeoutMs"]
        .as_u64()
        .unwrap_or(DEFAULT_INVOKE_TIMEOUT_MS)
        .min(MAX_INVOKE_TIMEOUT_MS);
    let invoke_id = uuid_v4();
    let left = budget.saturating_sub(started.elapsed().as_millis() as u64);
    if left == 0 {
        return Reply::Now(Err(node_error("TIMEOUT", "node invoke timed out", false)));
    }
    {
        let Ok(mut w) = gw.nodes.waiting.lock() else {
            return Reply::Now(Err(busy()));
        };
        if w.len() >= MAX_PENDING_INVOKES {
            return Reply::Now(Err(ErrorShape::new(
                "UNAVAILABLE",
                "too many node invokes in flight; try again shortly",
            )
            .retryable()));
        }
        w.insert(
            invoke_id.clone(),
            Waiting {
                node_id: node_id.clone(),
                conn_id: live.conn_id.clone(),
                command: command.clone(),
                req_id: id.to_string(),
                origin,
                timer: None,
            },
        );
    }
    let mut request = json!({
        "id": invoke_id,
        "nodeId": node_id,
        "command": command,
        "timeoutMs": left,
        "idempotencyKey": params["idempotencyKey"],
    });
    if let Some(p) = params.get("params").filter(|p| !p.is_null()) {
        let mut p = p.clone();
        if command == "system.run" && p.is_object() && p.get("runId").is_none() {
            p["runId"] = uuid_v4().into();
        }
        request["paramsJSON"] = p.to_string().into();
    }
    live.out.frame_now(targeted("node.invoke.request", request));
    // The deadline: past it the caller hears TIMEOUT and the node is told
    // to cancel (hosts that understand cancels).
    let (gw2, iid) = (gw.clone(), invoke_id.clone());
    let timer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(left)).await;
        let w = gw2
            .nodes
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&iid));
        if let Some(mut w) = w {
            if ["node-host", "openclaw-macos"].contains(&live.hello.client.id.as_str()) {
                live.out.frame_now(targeted(
                    "node.invoke.cancel",
                    json!({"invokeId": iid, "nodeId": w.node_id}),
                ));
            }
            w.timer = None;
            w.finish(Err(node_error("TIMEOUT", "node invoke timed out", true)));
        }
    });
    if let Ok(mut w) = gw.nodes.waiting.lock()
        && let Some(entry) = w.get_mut(&invoke_id)
    {
        entry.timer = Some(timer.abort_handle());
    }
    Reply::Later
}

/// `UNAVAILABLE "<code>: <message>"` with the node's error.
fn node_error(code: &str, message: &str, dispatched: bool) -> ErrorShape {
    ErrorShape::new("UNAVAILABLE", format!("{code}: {message}")).with_details(json!({
        "nodeError": {"code": code, "message": message},
        "nodeCommandDispatched": dispatched,
    }))
}

fn map_result(node_id: &str, command: &str, r: &Value) -> Result<Value, ErrorShape> {
    if r["ok"].as_bool() == Some(true) {
        let payload_json = r["payloadJSON"].as_str();
        let payload = payload_json
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .or_else(|| r.get("payload").cloned())
            .unwrap_or(Value::Null);
        return Ok(json!({
            "ok": true, "nodeId": node_id, "command": command,
            "payload": payload, "payloadJSON": payload_json,
        }));
    }
    let code = r["error"]["code"].as_str().unwrap_or("");
    let message = r["error"]["message"]
        .as_str()
        .unwrap_or("node command failed");
    let text = if code.is_empty() {
        message.to_string()
    } else {
        format!("{code}: {message}")
    };
    Err(ErrorShape::new("UNAVAILABLE", text).with_details(json!({
        "nodeError": r["error"],
        "nodeCommandDispatched": true,
    })))
}

/// `node.invoke.result` from a node.
fn invoke_result(gw: &Gateway, caller: &Caller, params: &Value) -> Result<Value, ErrorShape> {
    let invoke_id = param(params, "id", "node.invoke.result")?;
    let node_id = param(params, "nodeId", "node.invoke.result")?;
    if own_node(caller)? != node_id {
        return Err(ErrorShape::invalid("nodeId mismatch"));
    }
    let waiting = gw
        .nodes
        .waiting
        .lock()
        .map_err(|_| busy())?
        .remove(invoke_id);
    match waiting {
        Some(w) if w.node_id == node_id => {
            let result = map_result(node_id, &w.command, params);
            w.finish(result);
            Ok(json!({"ok": true}))
        }
        Some(w) => {
            // Another node's invoke: put it back untouched.
            if let Ok(mut m) = gw.nodes.waiting.lock() {
                m.insert(invoke_id.to_string(), w);
            }
            Err(ErrorShape::invalid("nodeId mismatch"))
        }
        None => Ok(json!({"ok": true, "ignored": true})),
    }
}

/// `node.event` from a node: `node.host.stats` is kept on its record;
/// every event is acknowledged.
fn node_event(gw: &Gateway, caller: &Caller, params: &Value) -> Result<Value, ErrorShape> {
    let event = param(params, "event", "node.event")?;
    let node_id = own_node(caller)?;
    if event == "node.host.stats" {
        let payload = params["payloadJSON"]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .or_else(|| params.get("payload").cloned())
            .filter(Value::is_object);
        if let Some(mut stats) = payload {
            let now = now_ms();
            stats["updatedAtMs"] = now.into();
            let mut store = gw.pairing.lock().map_err(|_| busy())?;
            if let Some(p) = store.paired.get_mut(&node_id) {
                let facts = p.node.get_or_insert_with(NodeFacts::default);
                let due = facts
                    .host_stats
                    .as_ref()
                    .and_then(|s| s["updatedAtMs"].as_u64())
                    .is_none_or(|at| now.saturating_sub(at) >= HOST_STATS_SAVE_MS);
                facts.host_stats = Some(stats);
                if due {
                    let _ = store.save();
                }
            }
        }
    }
    Ok(json!({"ok": true, "event": event, "handled": true}))
}
