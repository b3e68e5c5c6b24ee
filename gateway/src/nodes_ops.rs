//! `openclaw nodes ...`: the node commands of the real CLI against a
//! running gateway (`status`, `list`, `pending`, `describe`, `approve`,
//! `reject`, `rename`, `remove`, `invoke`), with the real CLI's scopes
//! (least privilege; approving asks for exactly the scopes the request
//! names) and `--node` resolution (id or IP, then name, then an id prefix
//! of 6 or more characters; a connected node wins ties).

use openclaw_profiles::outln;
use openclaw_profiles::paths::EnvSnapshot;
use serde_json::{Value, json};

use crate::cli::NodesCommand;
use crate::client::CLI;
use crate::ops::{Conn, print_json, with_client};
use crate::scopes;

/// The `--invoke-timeout` default, as the real CLI's.
const INVOKE_TIMEOUT_MS: u64 = 15_000;

/// Runs `openclaw nodes <command>`.
pub fn nodes(env: &EnvSnapshot, conn: &Conn, command: &NodesCommand) -> u8 {
    match command {
        NodesCommand::Status => status(env, conn),
        NodesCommand::List => list(env, conn),
        NodesCommand::Pending => pending(env, conn),
        NodesCommand::Describe { node } => describe(env, conn, node),
        NodesCommand::Approve { request_id } => approve(env, conn, request_id),
        NodesCommand::Reject { request_id } => simple(
            env,
            conn,
            &[scopes::PAIRING],
            "node.pair.reject",
            json!({"requestId": request_id}),
            &format!("rejected {request_id}"),
        ),
        NodesCommand::Rename { node, name } => match resolve(env, conn, node) {
            Ok(id) => simple(
                env,
                conn,
                &[scopes::PAIRING],
                "node.rename",
                json!({"nodeId": id, "displayName": name}),
                &format!("renamed {id} to {name}"),
            ),
            Err(code) => code,
        },
        NodesCommand::Remove { node } => match resolve(env, conn, node) {
            Ok(id) => simple(
                env,
                conn,
                &[scopes::PAIRING],
                "node.pair.remove",
                json!({"nodeId": id}),
                &format!("removed {id}"),
            ),
            Err(code) => code,
        },
        NodesCommand::Invoke {
            node,
            command,
            params,
            invoke_timeout,
        } => invoke(env, conn, node, command, params.as_deref(), *invoke_timeout),
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn ago(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return String::new();
    };
    let s = crate::protocol::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..=9 => "just now".into(),
        10..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}

fn request(
    env: &EnvSnapshot,
    conn: &Conn,
    scopes: &[&str],
    method: &str,
    params: Value,
) -> Result<Value, u8> {
    let method = method.to_string();
    with_client(env, conn, CLI, scopes, async |c| {
        c.request(&method, params).await
    })
}

fn simple(
    env: &EnvSnapshot,
    conn: &Conn,
    scopes: &[&str],
    method: &str,
    params: Value,
    done: &str,
) -> u8 {
    match request(env, conn, scopes, method, params) {
        Ok(v) if conn.json => {
            print_json(&v);
            0
        }
        Ok(_) => {
            outln!("{done}");
            0
        }
        Err(code) => code,
    }
}

fn status(env: &EnvSnapshot, conn: &Conn) -> u8 {
    let v = match request(
        env,
        conn,
        &[scopes::READ, scopes::PAIRING],
        "node.list",
        json!({}),
    ) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if conn.json {
        print_json(&v);
        return 0;
    }
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    let connected = nodes.iter().filter(|n| n["connected"] == true).count();
    outln!("Known: {} · Connected: {connected}", nodes.len());
    if nodes.is_empty() {
        outln!("No nodes. Start one with `openclaw node run --host <gateway host> --port <port>`.");
        return 0;
    }
    outln!(
        "{:<20}  {:<16}  {:<9}  {:<17}  {:>8}  ID",
        "NODE",
        "IP",
        "STATUS",
        "APPROVAL",
        "COMMANDS"
    );
    for n in &nodes {
        outln!(
            "{:<20}  {:<16}  {:<9}  {:<17}  {:>8}  {}",
            text(&n["displayName"]),
            text(&n["remoteIp"]),
            if n["connected"] == true {
                "connected"
            } else {
                "offline"
            },
            text(&n["approvalState"]),
            n["commands"].as_array().map_or(0, Vec::len),
            text(&n["nodeId"])
        );
    }
    if let Some(id) = nodes.iter().find_map(|n| n["pendingRequestId"].as_str()) {
        outln!("A surface waits for approval: `openclaw nodes approve {id}`.");
    }
    0
}

fn list(env: &EnvSnapshot, conn: &Conn) -> u8 {
    let v = match request(env, conn, &[scopes::PAIRING], "node.pair.list", json!({})) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if conn.json {
        print_json(&v);
        return 0;
    }
    let pending = v["pending"].as_array().cloned().unwrap_or_default();
    let paired = v["paired"].as_array().cloned().unwrap_or_default();
    outln!("Pending: {} · Paired: {}", pending.len(), paired.len());
    print_pending(&pending);
    if !paired.is_empty() {
        outln!("\nPaired");
        outln!("{:<20}  {:<64}  LAST CONNECT", "NODE", "ID");
        for p in &paired {
            outln!(
                "{:<20}  {:<64}  {}",
                text(&p["displayName"]),
                text(&p["nodeId"]),
                ago(p["lastSeenAtMs"].as_u64())
            );
        }
    }
    0
}

fn print_pending(pending: &[Value]) {
    if pending.is_empty() {
        return;
    }
    outln!("\nPending");
    outln!(
        "{:<36}  {:<20}  {:>8}  NEEDS",
        "REQUEST",
        "NODE",
        "COMMANDS"
    );
    for p in pending {
        let needs: Vec<&str> = p["requiredApproveScopes"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        outln!(
            "{:<36}  {:<20}  {:>8}  {}",
            text(&p["requestId"]),
            text(&p["displayName"]),
            p["commands"].as_array().map_or(0, Vec::len),
            needs.join(", ")
        );
    }
}

fn pending(env: &EnvSnapshot, conn: &Conn) -> u8 {
    let v = match request(env, conn, &[scopes::PAIRING], "node.pair.list", json!({})) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let pending = v["pending"].as_array().cloned().unwrap_or_default();
    if conn.json {
        print_json(&Value::Array(pending));
        return 0;
    }
    if pending.is_empty() {
        outln!("No pending node surfaces.");
    }
    print_pending(&pending);
    0
}

/// `--node` as the real CLI resolves it, over `node.list`.
fn resolve(env: &EnvSnapshot, conn: &Conn, wanted: &str) -> Result<String, u8> {
    let v = request(env, conn, &[scopes::READ], "node.list", json!({}))?;
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    pick(&nodes, wanted).ok_or_else(|| {
        eprintln!("openclaw: no node matches `{wanted}` (`openclaw nodes status` lists them)");
        1
    })
}

/// Exact id or IP first, then display name, then an id prefix (≥ 6
/// characters); a connected node wins ties.
fn pick(nodes: &[Value], wanted: &str) -> Option<String> {
    let w = wanted.trim();
    let rules: [&dyn Fn(&Value) -> bool; 3] = [
        &|n| text(&n["nodeId"]) == w || text(&n["remoteIp"]) == w,
        &|n| text(&n["displayName"]).eq_ignore_ascii_case(w),
        &|n| w.len() >= 6 && text(&n["nodeId"]).starts_with(w),
    ];
    for rule in rules {
        let mut hits: Vec<&Value> = nodes.iter().filter(|n| rule(n)).collect();
        hits.sort_by_key(|n| n["connected"] != true);
        if let Some(n) = hits.first() {
            return Some(text(&n["nodeId"]).to_string());
        }
    }
    None
}

fn describe(env: &EnvSnapshot, conn: &Conn, node: &str) -> u8 {
    let id = match resolve(env, conn, node) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let v = match request(
        env,
        conn,
        &[scopes::READ],
        "node.describe",
        json!({"nodeId": id}),
    ) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if conn.json {
        print_json(&v);
        return 0;
    }
    for (label, key) in [
        ("ID", "nodeId"),
        ("Name", "displayName"),
        ("Client", "clientId"),
        ("IP", "remoteIp"),
        ("Device", "deviceFamily"),
        ("Version", "version"),
        ("PATH", "pathEnv"),
        ("Approval", "approvalState"),
    ] {
        if let Some(s) = v[key].as_str() {
            outln!("{label:<10} {s}");
        }
    }
    outln!(
        "{:<10} paired · {}",
        "Status",
        if v["connected"] == true {
            "connected"
        } else {
            "offline"
        }
    );
    let list = |k: &str| -> String {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    outln!("{:<10} {}", "Caps", list("caps"));
    outln!("Commands");
    for c in v["commands"].as_array().into_iter().flatten() {
        outln!("- {}", text(c));
    }
    0
}

/// Approving connects with exactly the scopes the request names (as the
/// real CLI's second connection does).
fn approve(env: &EnvSnapshot, conn: &Conn, request_id: &str) -> u8 {
    let listed = match request(env, conn, &[scopes::PAIRING], "node.pair.list", json!({})) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let Some(p) = listed["pending"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["requestId"] == request_id)
    else {
        eprintln!(
            "openclaw: Unknown node pairing requestId {request_id} (`openclaw nodes pending` lists them)"
        );
        return 1;
    };
    let needed: Vec<String> = p["requiredApproveScopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| vec![scopes::PAIRING.to_string()]);
    let needed: Vec<&str> = needed.iter().map(String::as_str).collect();
    simple(
        env,
        conn,
        &needed,
        "node.pair.approve",
        json!({"requestId": request_id}),
        &format!("approved {request_id}"),
    )
}

fn invoke(
    env: &EnvSnapshot,
    conn: &Conn,
    node: &str,
    command: &str,
    params: Option<&str>,
    invoke_timeout: Option<u64>,
) -> u8 {
    if command == "system.run" || command == "system.run.prepare" {
        eprintln!(
            "openclaw: command \"{command}\" is reserved for shell execution; use the exec tool with host=node instead"
        );
        return 1;
    }
    let params: Value = match params.map(serde_json::from_str).transpose() {
        Ok(p) => p.unwrap_or(json!({})),
        Err(e) => {
            eprintln!("openclaw: --params is not JSON: {e}");
            return 2;
        }
    };
    let id = match resolve(env, conn, node) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let timeout = invoke_timeout.unwrap_or(INVOKE_TIMEOUT_MS);
    // The call outlives the node's budget, as the real CLI's transport does.
    let mut conn = conn.clone();
    let floor = std::time::Duration::from_millis(timeout + 10_000);
    conn.timeout = Some(conn.timeout.map_or(floor, |t| t.max(floor)));
    let scope = if crate::nodes::policy::ADMIN_ONLY.contains(&command) {
        scopes::ADMIN
    } else {
        scopes::WRITE
    };
    let p = json!({
        "nodeId": id, "command": command, "params": params,
        "idempotencyKey": crate::protocol::uuid_v4(), "timeoutMs": timeout,
    });
    match request(env, &conn, &[scope], "node.invoke", p) {
        Ok(v) if conn.json => {
            print_json(&v);
            0
        }
        Ok(v) => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&v["payload"]).unwrap_or_default()
            );
            0
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_resolve_as_the_real_cli_resolves_them() {
        let nodes = vec![
            json!({"nodeId": "abcdef0123", "displayName": "Kitchen", "remoteIp": "10.0.0.5", "connected": false}),
            json!({"nodeId": "abcdef9999", "displayName": "kitchen", "remoteIp": "10.0.0.6", "connected": true}),
        ];
        assert_eq!(pick(&nodes, "10.0.0.5").as_deref(), Some("abcdef0123"));
        // A name matches either; the connected one wins.
        assert_eq!(pick(&nodes, "KITCHEN").as_deref(), Some("abcdef9999"));
        assert_eq!(pick(&nodes, "abcdef0").as_deref(), Some("abcdef0123"));
        // Too short a prefix is no match.
        assert_eq!(pick(&nodes, "abc"), None);
    }
}
