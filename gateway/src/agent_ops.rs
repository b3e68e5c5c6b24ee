//! The agent runtime's operator commands: `openclaw agent` (one turn,
//! printed as the real CLI prints it) and `openclaw sessions
//! list|show|reset|delete`.

use std::time::Duration;

use openclaw_profiles::outln;
use openclaw_profiles::paths::EnvSnapshot;
use serde_json::{Value, json};

use crate::cli::{AgentArgs, SessionsArgs, SessionsCommand};
use crate::client::CLI;
use crate::ops::{Conn, print_json, with_client};
use crate::scopes;

/// `openclaw dashboard`: the web chat link of this profile's gateway
/// (`http://127.0.0.1:<port>/#token=…`), printed, and opened in a browser
/// (`$BROWSER`, else `xdg-open`/`open`) unless `--no-open`. The token is in
/// the fragment, which browsers never send; `--json` leaves it out.
pub fn dashboard(env: &EnvSnapshot, no_open: bool, json_out: bool) -> u8 {
    let target = match crate::client::resolve_target(env, None, None) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("openclaw: {e}");
            return 2;
        }
    };
    let base = format!(
        "{}/",
        target
            .url
            .replacen("ws://", "http://", 1)
            .replacen("wss://", "https://", 1)
            .trim_end_matches('/')
    );
    if json_out {
        print_json(
            &json!({"url": base, "auth": if target.token.is_some() { "token" } else if target.password.is_some() { "password" } else { "none" },
            "tokenInUrl": false, "hint": "open the url and paste the gateway token, or run without --json for a link that carries it"}),
        );
        return 0;
    }
    let link = match &target.token {
        Some(t) => format!("{base}#token={}", url_fragment(t.expose())),
        None => base,
    };
    outln!("{link}");
    if no_open {
        return 0;
    }
    let opener = env.get("BROWSER").map(str::to_string).unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        }
        .into()
    });
    match std::process::Command::new(&opener)
        .arg(&link)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => 0,
        Err(e) => {
            eprintln!(
                "openclaw: could not launch a browser with `{opener}` ({e}): open the link above"
            );
            0
        }
    }
}

/// Percent-encodes what a URL fragment cannot carry as is.
fn url_fragment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Largest `--message-file`.
const MAX_MESSAGE_FILE: u64 = 4 << 20;

/// `openclaw agent`: sends `agent` and prints the reply (`--json`: the
/// final answer). Exit 0 when the run answered, 1 when it failed or the
/// gateway could not be reached, 2 for bad flags.
pub fn agent(env: &EnvSnapshot, args: &AgentArgs) -> u8 {
    let message = match (&args.message, &args.message_file) {
        (Some(m), _) => m.clone(),
        (None, Some(path)) => match read_message_file(path) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("openclaw: {e}");
                return 2;
            }
        },
        (None, None) => unreachable!("clap requires --message or --message-file"),
    };
    if message.trim().is_empty() {
        eprintln!("openclaw: the message is empty: pass the text with --message");
        return 2;
    }
    let timeout = args.timeout.unwrap_or(600);
    let conn = Conn {
        url: args.url.clone(),
        token: args.token.clone(),
        password: args.password.clone(),
        port: args.port,
        json: args.json,
        // As the real CLI: wait for the final answer up to the run's
        // timeout plus 30 s.
        timeout: Some(Duration::from_secs(timeout + 30)),
    };
    let mut params = json!({
        "message": message, "idempotencyKey": crate::protocol::uuid_v4(),
        "deliver": false, "timeout": timeout,
    });
    for (k, v) in [
        ("agentId", &args.agent),
        ("sessionKey", &args.session_key),
        ("sessionId", &args.session_id),
        ("model", &args.model),
        ("thinking", &args.thinking),
    ] {
        if let Some(v) = v {
            params[k] = v.clone().into();
        }
    }
    let run_id = params["idempotencyKey"].clone();
    let result = with_client(env, &conn, CLI, &[scopes::WRITE], async |c| {
        Ok(c.request_final("agent", params).await)
    });
    match result {
        Err(code) => code,
        Ok(Ok(fin)) => {
            if args.json {
                print_json(&fin);
            } else {
                for p in fin["result"]["payloads"].as_array().into_iter().flatten() {
                    if let Some(t) = p["text"].as_str() {
                        outln!("{t}");
                    }
                }
            }
            0
        }
        Ok(Err(e)) => {
            if args.json {
                print_json(&json!({"ok": false, "runId": run_id, "origin": "gateway",
                    "error": {"type": "cli_error", "code": e.code, "message": e.message}}));
            }
            eprintln!("openclaw agent: {}", e.message);
            1
        }
    }
}

fn read_message_file(path: &std::path::Path) -> Result<String, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read --message-file {}: {e}", path.display()))?;
    if meta.len() > MAX_MESSAGE_FILE {
        return Err(format!(
            "--message-file {} is {} bytes; the limit is 4 MiB",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read --message-file {}: {e}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|_| format!("--message-file {} is not UTF-8 text", path.display()))
}

fn limit_of(raw: Option<&str>, default: u64) -> Result<Option<u64>, String> {
    match raw {
        None => Ok(Some(default)),
        Some("all") => Ok(None),
        Some(n) => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("--limit must be a positive number or `all`, not `{n}`")),
    }
}

fn age(ms: u64) -> String {
    let s = crate::protocol::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

fn tokens(row: &Value) -> String {
    let total = row["totalTokens"].as_u64().unwrap_or(0);
    match row["contextTokens"].as_u64() {
        Some(ctx) if ctx > 0 => format!("{total}/{}k ({}%)", ctx / 1000, total * 100 / ctx),
        _ => total.to_string(),
    }
}

/// `openclaw sessions [list|show|reset|delete]`.
pub fn sessions(env: &EnvSnapshot, args: &SessionsArgs) -> u8 {
    let conn = args.conn.to_conn();
    match &args.command {
        None | Some(SessionsCommand::List) => list(env, &conn, args),
        Some(SessionsCommand::Show { key }) => show(env, &conn, args, key),
        Some(SessionsCommand::Reset { key }) => {
            mutate(env, &conn, "sessions.reset", json!({"key": key}), args)
        }
        Some(SessionsCommand::Delete { key, transcript }) => mutate(
            env,
            &conn,
            "sessions.delete",
            json!({"key": key, "deleteTranscript": transcript}),
            args,
        ),
    }
}

fn with_agent(mut p: Value, args: &SessionsArgs) -> Value {
    if let Some(a) = &args.agent {
        p["agentId"] = a.clone().into();
    }
    p
}

fn list(env: &EnvSnapshot, conn: &Conn, args: &SessionsArgs) -> u8 {
    let limit = match limit_of(args.limit.as_deref(), 100) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("openclaw: {e}");
            return 2;
        }
    };
    let params = if args.all_agents {
        json!({})
    } else {
        with_agent(json!({}), args)
    };
    let listed = with_client(env, conn, CLI, &[scopes::READ], async |c| {
        c.request("sessions.list", params).await
    });
    let Ok(mut v) = listed else {
        return listed.err().unwrap_or(1);
    };
    let now = crate::protocol::now_ms();
    if let Some(rows) = v["sessions"].as_array_mut() {
        if let Some(min) = args.active {
            rows.retain(|r| {
                now.saturating_sub(r["updatedAt"].as_u64().unwrap_or(0)) <= min * 60_000
            });
        }
        if let Some(l) = limit {
            rows.truncate(l as usize);
        }
    }
    v["count"] = v["sessions"].as_array().map_or(0, Vec::len).into();
    if conn.json {
        print_json(&v);
        return 0;
    }
    let rows = v["sessions"].as_array().cloned().unwrap_or_default();
    outln!("Session store: {}", v["path"].as_str().unwrap_or(""));
    outln!("Sessions listed: {}", rows.len());
    if rows.is_empty() {
        outln!("No sessions found.");
        return 0;
    }
    let key_w = rows
        .iter()
        .map(|r| r["key"].as_str().unwrap_or("").len())
        .max()
        .unwrap_or(3)
        .max(3);
    outln!(
        "{:<key_w$}  {:<9}  {:<20}  {:<16}  STATUS",
        "KEY",
        "UPDATED",
        "MODEL",
        "TOKENS"
    );
    for r in &rows {
        outln!(
            "{:<key_w$}  {:<9}  {:<20}  {:<16}  {}",
            r["key"].as_str().unwrap_or(""),
            age(r["updatedAt"].as_u64().unwrap_or(0)),
            r["model"].as_str().unwrap_or("-"),
            tokens(r),
            r["status"].as_str().unwrap_or("")
        );
    }
    0
}

fn show(env: &EnvSnapshot, conn: &Conn, args: &SessionsArgs, key: &str) -> u8 {
    let limit = match limit_of(args.limit.as_deref(), 200) {
        Ok(l) => l.unwrap_or(1000),
        Err(e) => {
            eprintln!("openclaw: {e}");
            return 2;
        }
    };
    let params = with_agent(json!({"sessionKey": key, "limit": limit}), args);
    let shown = with_client(env, conn, CLI, &[scopes::READ], async |c| {
        c.request("chat.history", params).await
    });
    let Ok(v) = shown else {
        return shown.err().unwrap_or(1);
    };
    if conn.json {
        print_json(&v);
        return 0;
    }
    outln!(
        "session {} ({} messages{})",
        v["sessionKey"].as_str().unwrap_or(key),
        v["totalMessages"],
        v["sessionId"]
            .as_str()
            .map(|s| format!(", transcript {s}"))
            .unwrap_or_default()
    );
    for m in v["messages"].as_array().into_iter().flatten() {
        let who = match m["role"].as_str() {
            Some("user") => "you",
            Some("assistant") if m["stopReason"] == "error" => "error",
            Some("assistant") if m.get("openclawAbort").is_some() => "agent (aborted)",
            Some("assistant") => "agent",
            Some(other) => other,
            None => "?",
        };
        outln!("{who}: {}", crate::agent::message_text(m));
    }
    0
}

fn mutate(env: &EnvSnapshot, conn: &Conn, method: &str, params: Value, args: &SessionsArgs) -> u8 {
    let params = with_agent(params, args);
    let scope = scopes::method_scope(method).unwrap_or(scopes::WRITE);
    let done = with_client(env, conn, CLI, &[scope], async |c| {
        c.request(method, params).await
    });
    let Ok(v) = done else {
        return done.err().unwrap_or(1);
    };
    if conn.json {
        print_json(&v);
    } else if method == "sessions.reset" {
        outln!(
            "reset {} (new transcript {})",
            v["key"].as_str().unwrap_or(""),
            v["sessionId"].as_str().unwrap_or("")
        );
    } else if v["deleted"] == true {
        outln!("deleted {}", v["key"].as_str().unwrap_or(""));
    } else {
        outln!("no session {}", v["key"].as_str().unwrap_or(""));
    }
    0
}
