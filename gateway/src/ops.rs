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
    /// `--json`.
    pub json: bool,
}

/// A string field, or empty.
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn fail(conn: &Conn, e: &CallError) -> u8 {
    if conn.json {
        print_json(&e.to_json());
    }
    eprintln!("gateway request failed: {}", e.message);
    1
}

fn target(env: &EnvSnapshot, conn: &Conn) -> Result<Target, u8> {
    resolve_target(env, conn.url.as_deref(), conn.token.as_ref()).map_err(|e| {
        eprintln!("openclaw: {e}");
        2
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Connects as `who` with `scopes`, runs `f`, closes.
fn with_client<T>(
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

/// `openclaw gateway call <method> [--params JSON]`.
pub fn call(env: &EnvSnapshot, conn: &Conn, method: &str, params: Option<&str>) -> u8 {
    let params: Value = match params.map(serde_json::from_str).transpose() {
        Ok(p) => p.unwrap_or(json!({})),
        Err(e) => {
            eprintln!("openclaw: --params is not JSON: {e}");
            return 2;
        }
    };
    match with_client(env, conn, CLI, &scopes_for(method), async |c| {
        c.request(method, params).await
    }) {
        Ok(v) => {
            print_json(&v);
            0
        }
        Err(code) => code,
    }
}

/// `openclaw gateway probe`: connects as a probe and reads what its scopes allow.
pub fn probe(env: &EnvSnapshot, conn: &Conn) -> u8 {
    let Ok(t) = target(env, conn) else { return 2 };
    let started = std::time::Instant::now();
    let result = runtime().block_on(async {
        let mut c = Client::connect(&t, PROBE, &[scopes::READ]).await?;
        let latency = started.elapsed().as_millis() as u64;
        let mut out = json!({});
        let mut scope_limited = false;
        for m in ["health", "status", "system-presence", "config.get"] {
            match c.request(m, json!({})).await {
                Ok(v) => out[m] = v,
                Err(e) if e.code == "FORBIDDEN" => scope_limited = true,
                Err(e) => return Err(e),
            }
        }
        let hello = c.hello.clone();
        c.close().await;
        Ok((hello, out, scope_limited, latency))
    });
    match result {
        Ok((hello, out, limited, latency)) => {
            let capability = if limited {
                "connected_no_operator_scope"
            } else {
                "read"
            };
            let doc = json!({
                "ok": true, "degraded": limited, "capability": capability, "url": t.url, "latencyMs": latency,
                "server": hello["server"], "auth": hello["auth"],
                "health": out.get("health"), "status": out.get("status"), "presence": out.get("system-presence"),
            });
            if conn.json {
                print_json(&doc);
            } else {
                outln!("Reachable: yes ({}, {latency} ms)", t.url);
                outln!(
                    "Server: {} (connId {})",
                    hello["server"]["version"].as_str().unwrap_or("?"),
                    hello["server"]["connId"].as_str().unwrap_or("?")
                );
                outln!(
                    "Capability: {capability}; scopes {}",
                    hello["auth"]["scopes"]
                );
            }
            0
        }
        Err(e) => {
            if conn.json {
                print_json(&json!({"ok": false, "url": t.url, "error": e.message}));
            } else {
                outln!("Reachable: no ({}): {}", t.url, e.message);
            }
            1
        }
    }
}

/// `openclaw health`.
pub fn health(env: &EnvSnapshot, conn: &Conn) -> u8 {
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
pub fn channels_status(env: &EnvSnapshot, conn: &Conn, probe: bool) -> u8 {
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
pub fn logs(env: &EnvSnapshot, conn: &Conn, lines: usize, follow: bool) -> u8 {
    let Ok(t) = target(env, conn) else { return 2 };
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
                let params = match cursor {
                    Some(cur) => json!({"cursor": cur, "limit": 5000}),
                    None => json!({"limit": limit}),
                };
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
                tokio::time::sleep(Duration::from_millis(500)).await;
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
    match with_client(env, conn, CLI, &[scopes::PAIRING], async |c| {
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
