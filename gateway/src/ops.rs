//! The operator commands of the `openclaw` binary, over [`crate::client`]:
//! `gateway call`, `gateway probe`, `health`, `status`, `logs`,
//! `channels status`, `devices ...`, `pairing ...`. Each returns the exit
//! code: 0 ok, 1 the gateway refused or could not be reached, 2 usage.

use openclaw_profiles::config::Secret;
use openclaw_profiles::outln;
use std::time::Duration;

use openclaw_profiles::paths::EnvSnapshot;
use serde_json::{Value, json};

use crate::client::{As, CLI, CallError, Client, PROBE, Target, resolve_target};
use crate::scopes;

/// Connection flags shared by the commands.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// `--url`.
    pub url: Option<String>,
    /// `--token`.
    pub token: Option<Secret>,
    /// `--password`.
    pub password: Option<Secret>,
    /// `--port`: this profile's gateway on another local port.
    pub port: Option<u16>,
    /// `--json`.
    pub json: bool,
    /// `--timeout`.
    pub timeout: Option<Duration>,
}

/// A string field, or empty.
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub(crate) fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) fn fail(conn: &Conn, e: &CallError) -> u8 {
    if conn.json {
        print_json(&e.to_json());
    }
    eprintln!("gateway request failed: {}", e.message);
    1
}

fn target(env: &EnvSnapshot, conn: &Conn) -> Result<Target, u8> {
    let mut t = resolve_target(env, conn.url.as_deref(), conn.token.as_ref()).map_err(|e| {
        eprintln!("openclaw: {e}");
        2
    })?;
    if let Some(d) = conn.timeout {
        t.timeout = d;
    }
    if let Some(p) = conn.port {
        t.url = format!("ws://127.0.0.1:{p}");
    }
    if let Some(p) = &conn.password {
        t.password = Some(p.clone());
        if conn.token.is_none() {
            t.token = None;
        }
    }
    Ok(t)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Connects as `who` with `scopes`, runs `f`, closes.
pub(crate) fn with_client<T>(
    env: &EnvSnapshot,
    conn: &Conn,
    who: As,
    scopes: &[&str],
    f: impl AsyncFnOnce(&mut Client) -> Result<T, CallError>,
) -> Result<T, u8> {
    let t = target(env, conn)?;
    runtime().block_on(async {
        let mut c = Client::connect(&t, who, scopes)
            .await
            .map_err(|e| fail(conn, &e))?;
        let r = f(&mut c).await;
        c.close().await;
        r.map_err(|e| fail(conn, &e))
    })
}

/// Least privilege for a method, as the real CLI asks.
fn scopes_for(method: &str) -> Vec<&'static str> {
    match scopes::method_scope(method) {
        None => vec![scopes::READ],
        Some(s) if crate::methods::METHODS.contains(&method) => vec![s],
        Some(_) => vec![
            scopes::ADMIN,
            scopes::READ,
            scopes::WRITE,
            "operator.approvals",
            scopes::PAIRING,
        ],
    }
}

/// `openclaw gateway call <method> [--params JSON] [--expect-final]`: with
/// `--expect-final`, an `accepted` ack is skipped and the final answer
/// printed (`agent`).
pub fn call(
    env: &EnvSnapshot,
    conn: &Conn,
    method: &str,
    params: Option<&str>,
    expect_final: bool,
) -> u8 {
    let params: Value = match params.map(serde_json::from_str).transpose() {
        Ok(p) => p.unwrap_or(json!({})),
        Err(e) => {
            eprintln!("openclaw: --params is not JSON: {e}");
            return 2;
        }
    };
    match with_client(env, conn, CLI, &scopes_for(method), async |c| {
        if expect_final {
            c.request_final(method, params).await
        } else {
            c.request(method, params).await
        }
    }) {
        Ok(v) => {
            print_json(&v);
            0
        }
        Err(code) => code,
    }
}

/// `openclaw gateway probe`: connects as a probe and reads what its scopes
/// allow; `--json` prints the real CLI's document (`targets[]`,
/// `warnings[]`, `primaryTargetId`, ...). A gateway that answers but
/// refuses the credentials is reachable, with a warning, as the real CLI
/// says.
pub fn probe(env: &EnvSnapshot, conn: &Conn) -> u8 {
    let Ok(t) = target(env, conn) else { return 2 };
    let started = std::time::Instant::now();
    let explicit = conn.url.is_some() || env.get("OPENCLAW_GATEWAY_URL").is_some();
    let target_id = if explicit {
        "explicit"
    } else {
        "localLoopback"
    };
    let result = runtime().block_on(async {
        let mut c = Client::connect(&t, PROBE, &[scopes::READ]).await?;
        let latency = started.elapsed().as_millis() as u64;
        let mut out = json!({});
        let mut scope_limited = None;
        for m in ["health", "status", "system-presence", "config.get"] {
            match c.request(m, json!({})).await {
                Ok(v) => out[m] = v,
                Err(e) if e.code == "FORBIDDEN" => scope_limited = Some(e.message.clone()),
                Err(e) => return Err(e),
            }
        }
        let hello = c.hello.clone();
        c.close().await;
        Ok((hello, out, scope_limited, latency))
    });
    let duration = started.elapsed().as_millis() as u64;
    let timeout_ms = t.timeout.as_millis() as u64;
    let mut warnings = Vec::new();
    let (ok, degraded, capability, connect, auth, server, data) = match &result {
        Ok((hello, out, limited, latency)) => {
            let capability = if limited.is_some() {
                "connected_no_operator_scope"
            } else {
                "read"
            };
            if limited.is_some() {
                warnings.push(json!({
                    "code": "probe_scope_limited",
                    "message": "Read-probe diagnostics are limited by gateway scopes (missing operator.read). Connection succeeded, but read-only status calls are incomplete. Hint: pair device identity or use credentials with operator.read.",
                    "targetIds": [target_id],
                }));
            }
            (
                true,
                limited.is_some(),
                capability,
                json!({"ok": true, "rpcOk": limited.is_none(), "scopeLimited": limited.is_some(),
                       "latencyMs": latency, "error": limited, "close": null}),
                json!({"role": hello["auth"]["role"], "scopes": hello["auth"]["scopes"], "capability": capability}),
                hello["server"].clone(),
                out.clone(),
            )
        }
        Err(e) => {
            // The gateway answered (it refused the credentials or the
            // handshake): reachable, but not usable with these credentials.
            let answered = e.code != "UNAVAILABLE";
            if answered {
                warnings.push(json!({
                    "code": "probe_auth_failed",
                    "message": format!("The gateway answered but refused the connection: {}. Check the token or password.", e.message),
                    "targetIds": [target_id],
                }));
            }
            (
                false,
                answered,
                if answered {
                    "connected_auth_failed"
                } else {
                    "unknown"
                },
                json!({"ok": false, "rpcOk": false, "scopeLimited": false, "latencyMs": null,
                       "error": e.message, "close": null}),
                json!({"role": null, "scopes": [], "capability": "unknown"}),
                json!({"version": null, "connId": null}),
                json!({}),
            )
        }
    };
    let doc = json!({
        "ok": ok,
        "degraded": degraded,
        "capability": capability,
        "ts": openclaw_profiles::lock::now_ms(),
        "durationMs": duration,
        "timeoutMs": timeout_ms,
        "primaryTargetId": target_id,
        "warnings": warnings,
        "network": {"localLoopbackUrl": t.url, "localTailnetUrl": null, "tailnetIPv4": null},
        "discovery": {"timeoutMs": 0, "count": 0, "beacons": []},
        "targets": [{
            "id": target_id,
            "kind": target_id,
            "url": t.url,
            "active": true,
            "tunnel": null,
            "connect": connect,
            "auth": auth,
            "server": server,
            "self": null,
            "config": data.get("config.get"),
            "health": data.get("health"),
            "summary": data.get("status"),
            "presence": data.get("system-presence"),
        }],
    });
    let reachable = ok || degraded;
    if conn.json {
        print_json(&doc);
    } else {
        outln!(
            "Reachable: {} ({})",
            if reachable { "yes" } else { "no" },
            t.url
        );
        if let Some(v) = doc["targets"][0]["server"]["version"].as_str() {
            outln!(
                "Server: {v} (connId {})",
                text(&doc["targets"][0]["server"]["connId"])
            );
        }
        outln!("Capability: {capability}");
        if !ok && !degraded {
            outln!("Error: {}", text(&doc["targets"][0]["connect"]["error"]));
        }
        for w in &warnings {
            outln!("Warning: {}", text(&w["message"]));
        }
    }
    u8::from(!ok)
}

/// `openclaw health`.
pub fn health(env: &EnvSnapshot, conn: &Conn, verbose: bool) -> u8 {
    match with_client(env, conn, CLI, &[scopes::READ], async |c| {
        c.request("health", json!({})).await
    }) {
        Ok(v) if conn.json => {
            print_json(&v);
            0
        }
        Ok(v) => {
            outln!("Gateway: {}", if v["ok"] == true { "ok" } else { "not ok" });
            let order: Vec<&str> = v["channelOrder"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str()).collect())
                .unwrap_or_default();
            outln!(
                "Channels: {}",
                if order.is_empty() {
                    "none configured".to_string()
                } else {
                    order.join(", ")
                }
            );
            for a in v["agents"].as_array().into_iter().flatten() {
                outln!(
                    "Agent {}: {} sessions ({})",
                    a["agentId"].as_str().unwrap_or("?"),
                    a["sessions"]["count"],
                    text(&a["sessions"]["path"])
                );
            }
            if verbose {
                outln!("Snapshot:");
                print_json(&v);
            }
            0
        }
        Err(code) => code,
    }
}

/// `openclaw status [--deep]`: the gateway's status summary; `--deep`
/// adds this profile's OS service and the channels' states (`channelsProbed:
/// false`: no channel adapter runs yet, so nothing is probed).
pub fn status(env: &EnvSnapshot, conn: &Conn, deep: bool) -> u8 {
    let params = json!({"includeChannelSummary": false, "includeCliProjection": true});
    let result = with_client(env, conn, CLI, &[scopes::READ], async |c| {
        let mut v = c.request("status", params).await?;
        if deep {
            v["channels"] = c
                .request("channels.status", json!({"probe": false}))
                .await?;
            v["channelsProbed"] = false.into();
        }
        Ok(v)
    });
    let mut v = match result {
        Ok(v) => v,
        Err(code) => return code,
    };
    if deep {
        v["service"] = crate::service::describe(env);
    }
    if conn.json {
        print_json(&v);
        return 0;
    }
    outln!(
        "Gateway: {} (pid {})",
        v["runtimeVersion"].as_str().unwrap_or("?"),
        v["pid"]
    );
    outln!("Uptime: {} s", v["uptimeMs"].as_u64().unwrap_or(0) / 1000);
    outln!("Sessions: {}", v["sessions"]["count"]);
    outln!("Tasks: {} active", v["tasks"]["active"]);
    if deep {
        let s = &v["service"];
        if s["installed"] == true {
            outln!(
                "Service: {} {} ({}/{})",
                text(&s["manager"]),
                text(&s["service"]),
                text(&s["activeState"]),
                text(&s["subState"])
            );
        } else {
            outln!("Service: not installed");
        }
        let order = v["channels"]["channelOrder"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        outln!(
            "Channels: {}",
            if order.is_empty() {
                "none configured".to_string()
            } else {
                order
                    .iter()
                    .filter_map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        outln!("Channel probe: not run (this gateway has no channel adapters yet)");
    }
    0
}

/// `openclaw channels status [--probe]`.
pub fn channels_status(env: &EnvSnapshot, conn: &Conn, probe: bool, only: Option<&str>) -> u8 {
    // No channel adapter runs yet: there is nothing a probe could reach, and
    // the answer says so rather than claim one.
    match with_client(env, conn, CLI, &[scopes::READ], async |c| {
        c.request("channels.status", json!({"probe": false})).await
    }) {
        Ok(mut v) if conn.json => {
            v["probed"] = false.into();
            print_json(&v);
            0
        }
        Ok(v) => {
            if probe {
                outln!(
                    "Probe: not run (this gateway has no channel adapters yet; states below are from the config)"
                );
            }
            let order = v["channelOrder"].as_array().cloned().unwrap_or_default();
            if order.is_empty() {
                outln!("No channels configured.");
            }
            for id in order {
                let id = id.as_str().unwrap_or("?");
                if only.is_some_and(|o| o != id) {
                    continue;
                }
                let c = &v["channels"][id];
                outln!(
                    "{id}: configured {}, running {}{}",
                    c["configured"],
                    c["running"],
                    c["lastError"]
                        .as_str()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
            0
        }
        Err(code) => code,
    }
}

/// `openclaw logs [-n N] [--follow]`: the gateway's log over `logs.tail`.
/// What `openclaw logs` was asked for.
#[derive(Debug, Clone)]
pub struct LogsOptions {
    /// `--limit`.
    pub lines: usize,
    /// `--max-bytes`.
    pub max_bytes: Option<u64>,
    /// `--follow`.
    pub follow: bool,
    /// `--interval`.
    pub interval: Duration,
}

/// `openclaw logs [--limit N] [--max-bytes B] [--follow [--interval MS]]`.
pub fn logs(env: &EnvSnapshot, conn: &Conn, opts: &LogsOptions) -> u8 {
    let Ok(t) = target(env, conn) else { return 2 };
    let (lines, follow) = (opts.lines, opts.follow);
    let limit = lines.clamp(1, 5000);
    runtime().block_on(async {
        let mut attempts = 0;
        let mut cursor: Option<u64> = None;
        loop {
            let mut c = match Client::connect(&t, CLI, &[scopes::READ]).await {
                Ok(c) => c,
                Err(e) if follow && attempts < 8 => {
                    attempts += 1;
                    eprintln!("logs: {} (reconnecting, attempt {attempts}/8)", e.message);
                    tokio::time::sleep(Duration::from_secs(1 << attempts.min(5))).await;
                    continue;
                }
                Err(e) => return fail(conn, &e),
            };
            attempts = 0;
            loop {
                let mut params = match cursor {
                    Some(cur) => json!({"cursor": cur, "limit": 5000}),
                    None => json!({"limit": limit}),
                };
                if let Some(b) = opts.max_bytes {
                    params["maxBytes"] = b.into();
                }
                let v = match c.request("logs.tail", params).await {
                    Ok(v) => v,
                    Err(e) if follow => {
                        eprintln!("logs: {}", e.message);
                        break;
                    }
                    Err(e) => return fail(conn, &e),
                };
                for l in v["lines"].as_array().into_iter().flatten() {
                    if conn.json {
                        outln!("{}", json!({"line": l}));
                    } else {
                        outln!("{}", l.as_str().unwrap_or(""));
                    }
                }
                cursor = v["cursor"].as_u64();
                if !follow {
                    c.close().await;
                    return 0;
                }
                tokio::time::sleep(opts.interval).await;
            }
        }
    })
}

/// `openclaw devices list|approve|reject`.
pub fn devices(env: &EnvSnapshot, conn: &Conn, action: &str, request_id: Option<&str>) -> u8 {
    let (method, params) = match (action, request_id) {
        ("list", _) => ("device.pair.list", json!({})),
        ("approve", Some(id)) => ("device.pair.approve", json!({"requestId": id})),
        ("reject", Some(id)) => ("device.pair.reject", json!({"requestId": id})),
        _ => {
            eprintln!("openclaw: devices {action} needs a request id");
            return 2;
        }
    };
    // Pairing a device for another role than operator (a node) needs
    // admin too; ask for it only then, as the real CLI ends up doing.
    let mut wanted = vec![scopes::PAIRING];
    if let ("approve", Some(id)) = (action, request_id) {
        let listed = with_client(env, conn, CLI, &[scopes::PAIRING], async |c| {
            c.request("device.pair.list", json!({})).await
        });
        let role = listed.ok().and_then(|v| {
            v["pending"]
                .as_array()?
                .iter()
                .find(|p| p["requestId"] == id)
                .and_then(|p| p["role"].as_str().map(str::to_string))
        });
        if role.is_some_and(|r| r != "operator") {
            wanted.push(scopes::ADMIN);
        }
    }
    match with_client(env, conn, CLI, &wanted, async |c| {
        c.request(method, params).await
    }) {
        Ok(v) if conn.json => {
            print_json(&v);
            0
        }
        Ok(v) if action == "list" => {
            let pending = v["pending"].as_array().cloned().unwrap_or_default();
            let paired = v["paired"].as_array().cloned().unwrap_or_default();
            outln!("Pending ({}):", pending.len());
            for p in &pending {
                outln!(
                    "  {}  code {}  {} {} from {}",
                    text(&p["requestId"]),
                    text(&p["code"]),
                    text(&p["clientId"]),
                    text(&p["role"]),
                    text(&p["remoteIp"])
                );
            }
            outln!("Paired ({}):", paired.len());
            for p in &paired {
                outln!(
                    "  {}  {} {}{}",
                    text(&p["deviceId"]),
                    text(&p["clientId"]),
                    text(&p["role"]),
                    if p["connected"] == true {
                        " (connected)"
                    } else {
                        ""
                    }
                );
            }
            0
        }
        Ok(v) => {
            outln!("{action}d {}", text(&v["requestId"]));
            0
        }
        Err(code) => code,
    }
}

/// `openclaw pairing list|approve|reject [<channel>] <code>`: device
/// requests by their 8-character code (chat-channel pairing needs the
/// channel adapters, not in this gateway yet).
pub fn pairing(env: &EnvSnapshot, conn: &Conn, action: &str, args: &[String]) -> u8 {
    let code = args.last().map(|c| c.to_uppercase());
    let list = match with_client(env, conn, CLI, &[scopes::PAIRING], async |c| {
        c.request("device.pair.list", json!({})).await
    }) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let pending = list["pending"].as_array().cloned().unwrap_or_default();
    if action == "list" {
        if conn.json {
            print_json(&json!({"requests": pending}));
        } else if pending.is_empty() {
            outln!("No pending pairing requests.");
        } else {
            for p in &pending {
                outln!(
                    "{}  {} {} from {}",
                    text(&p["code"]),
                    text(&p["clientId"]),
                    text(&p["role"]),
                    text(&p["remoteIp"])
                );
            }
        }
        return 0;
    }
    let Some(code) = code else {
        eprintln!("openclaw: pairing {action} needs a code");
        return 2;
    };
    let Some(req) = pending
        .iter()
        .find(|p| p["code"].as_str() == Some(code.as_str()))
    else {
        eprintln!(
            "openclaw: no pending pairing request with code {code} (see `openclaw pairing list`)"
        );
        return 1;
    };
    let id = text(&req["requestId"]).to_string();
    devices(env, conn, action, Some(&id))
}

/// `gateway healthcheck`: one GET of `/healthz` (or `/readyz`) on this
/// host's gateway, its JSON body checked (`ok: true`, or `ready: true`):
/// a catch-all 200 from something else on the port does not pass.
pub fn healthcheck(
    env: &EnvSnapshot,
    ready: bool,
    port: Option<u16>,
    timeout_ms: u64,
) -> Result<(), String> {
    use std::io::{Read, Write};
    let port = match port {
        Some(p) => p,
        None => {
            let paths = openclaw_profiles::paths::resolve_paths(env).map_err(|e| e.to_string())?;
            let cfg = openclaw_profiles::config::load_config(&paths.config_path)
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            openclaw_profiles::ports::resolve_gateway_port(None, env, cfg.gateway.port)
                .map_err(|e| e.to_string())?
        }
    };
    let path = if ready { "/readyz" } else { "/healthz" };
    let timeout = std::time::Duration::from_millis(timeout_ms.max(1));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("nothing answers on 127.0.0.1:{port} ({e})"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("cannot ask {path}: {e}"))?;
    let mut answer = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(|e| format!("no answer from {path} within {timeout_ms} ms ({e})"))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    let json: Option<serde_json::Value> = serde_json::from_str(body.trim()).ok();
    let key = if ready { "ready" } else { "ok" };
    match json {
        Some(v) if status == "200" && v[key] == true => Ok(()),
        Some(v) => Err(format!("{path} answered {status} with {key}={}", v[key])),
        None => Err(format!(
            "{path} answered {status} without a gateway's JSON body"
        )),
    }
}
