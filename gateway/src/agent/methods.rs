//! The agent runtime's methods (`agent.md` §2–§10): `chat.*`, `agent`,
//! `agent.wait`, `sessions.*`, `agents.list`, `models.list`,
//! `commands.list`, and the empty `question.list` /
//! `plugin.approval.list` the TUI asks for.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::store::{self, SessionKey};
use super::{Kind, RunSpec, Runtime, Status};
use crate::methods::{Caller, Reply};
use crate::protocol::{ErrorShape, now_ms, ok_frame};
use crate::server::Gateway;

/// Methods this module answers.
pub const METHODS: &[&str] = &[
    "chat.send",
    "chat.history",
    "chat.abort",
    "agent",
    "agent.wait",
    "sessions.subscribe",
    "sessions.unsubscribe",
    "sessions.list",
    "sessions.describe",
    "sessions.create",
    "sessions.reset",
    "sessions.delete",
    "sessions.patch",
    "agents.list",
    "models.list",
    "commands.list",
    "question.list",
    "plugin.approval.list",
];

/// Events runs and sessions emit.
pub const EVENTS: &[&str] = &["agent", "chat", "sessions.changed"];

/// Longest `agent.wait`.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// How long `chat.abort` waits for the aborted runs to settle.
const ABORT_SETTLE: Duration = Duration::from_secs(5);

fn bad(method: &str, detail: impl std::fmt::Display) -> ErrorShape {
    ErrorShape::invalid(format!("invalid {method} params: {detail}"))
}

fn str_param<'a>(
    method: &str,
    p: &'a Value,
    key: &str,
    required: bool,
) -> Result<Option<&'a str>, ErrorShape> {
    match &p[key] {
        Value::Null if !required => Ok(None),
        Value::Null => Err(bad(method, format!("must have required property '{key}'"))),
        Value::String(s) => Ok(Some(s)),
        _ => Err(bad(method, format!("{key} must be a string"))),
    }
}

fn u64_param(method: &str, p: &Value, key: &str) -> Result<Option<u64>, ErrorShape> {
    match &p[key] {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(method, format!("{key} must be a non-negative integer"))),
    }
}

fn key_param(rt: &Runtime, method: &str, p: &Value, field: &str) -> Result<SessionKey, ErrorShape> {
    let raw = str_param(method, p, field, true)?.unwrap_or_default();
    let agent = str_param(method, p, "agentId", false)?.unwrap_or(rt.default_agent());
    let key = store::qualify(raw, agent).map_err(|e| bad(method, e))?;
    known_agent(rt, method, &key.agent)?;
    Ok(key)
}

fn known_agent(rt: &Runtime, method: &str, agent: &str) -> Result<(), ErrorShape> {
    if rt.agents.iter().any(|a| a == agent) {
        Ok(())
    } else {
        Err(bad(
            method,
            format!("unknown agent `{agent}` (agents: {})", rt.agents.join(", ")),
        ))
    }
}

/// The session store, for a method that changes it.
fn sessions_mut(rt: &Runtime) -> Result<std::sync::MutexGuard<'_, store::Sessions>, ErrorShape> {
    rt.sessions
        .lock()
        .map_err(|_| ErrorShape::invalid("session store unavailable"))
}

/// Refuses a model reference the config cannot resolve, saying why.
fn check_model(gw: &Gateway, method: &str, model: &str) -> Result<(), ErrorShape> {
    super::provider::resolve(&gw.settings.config.raw, Some(model))
        .map(drop)
        .map_err(|e| bad(method, e))
}

fn idempotency_key<'a>(method: &str, p: &'a Value) -> Result<&'a str, ErrorShape> {
    let k = str_param(method, p, "idempotencyKey", true)?.unwrap_or_default();
    if k.trim().is_empty() || k.len() > 256 || k.chars().any(char::is_control) {
        return Err(bad(
            method,
            "idempotencyKey must be a non-empty string of at most 256 characters",
        ));
    }
    Ok(k)
}

/// Answers an agent-runtime method (the caller checked role and scope).
pub fn dispatch(gw: &Arc<Gateway>, caller: &Caller, id: &str, method: &str, p: &Value) -> Reply {
    let now = |r: Result<Value, ErrorShape>| Reply::Now(r);
    match method {
        "chat.send" => {
            let (written, ack) = tokio::sync::oneshot::channel();
            match chat_send(gw, caller, id, p, ack) {
                Ok(v) => Reply::NowThen(Ok(v), written),
                Err(e) => now(Err(e)),
            }
        }
        "agent" => agent(gw, caller, id, p),
        "agent.wait" => agent_wait(gw, caller, id, p),
        "chat.abort" => chat_abort(gw, caller, id, p),
        "chat.history" => now(chat_history(gw, p)),
        "sessions.subscribe" => {
            if let Some(o) = &caller.outbound {
                gw.agent.subscribe(o);
            }
            now(Ok(json!({"subscribed": true})))
        }
        "sessions.unsubscribe" => {
            gw.agent.unsubscribe(&caller.conn_id);
            now(Ok(json!({"subscribed": false})))
        }
        "sessions.list" => now(sessions_list(gw, p)),
        "sessions.describe" => now(sessions_describe(gw, p)),
        "sessions.create" => now(sessions_create(gw, p)),
        "sessions.reset" => now(sessions_reset(gw, p)),
        "sessions.delete" => now(sessions_delete(gw, p)),
        "sessions.patch" => now(sessions_patch(gw, p)),
        "agents.list" => now(Ok(agents_list(gw))),
        "models.list" => now(Ok(
            json!({"models": super::provider::catalog(&gw.settings.config.raw)}),
        )),
        // No server-side slash commands, questions or plugin approvals
        // exist in this gateway: the honest answers are empty.
        "commands.list" => now(Ok(json!({"commands": []}))),
        "question.list" => now(Ok(json!({"questions": []}))),
        "plugin.approval.list" => now(Ok(json!([]))),
        _ => now(Err(ErrorShape::invalid(format!(
            "unknown method: {method}"
        )))),
    }
}

fn timeout_of(gw: &Gateway, ms: Option<u64>) -> Duration {
    ms.filter(|m| *m > 0).map_or_else(
        || super::configured_timeout(&gw.settings.config.raw),
        Duration::from_millis,
    )
}

fn chat_send(
    gw: &Arc<Gateway>,
    caller: &Caller,
    id: &str,
    p: &Value,
    ack: tokio::sync::oneshot::Receiver<()>,
) -> Result<Value, ErrorShape> {
    const M: &str = "chat.send";
    let rt = &gw.agent;
    let key = key_param(rt, M, p, "sessionKey")?;
    let message = str_param(M, p, "message", true)?.unwrap_or_default();
    let run_id = idempotency_key(M, p)?;
    if message.trim().is_empty() {
        return Err(bad(M, "message must not be empty"));
    }
    let timeout = timeout_of(gw, u64_param(M, p, "timeoutMs")?);
    let thinking = str_param(M, p, "thinking", false)?.map(str::to_string);
    let queue_mode = str_param(M, p, "queueMode", false)?.unwrap_or("followup");
    if let Some(run) = rt.run(run_id) {
        let status = run.outcome().map_or("in_flight", |o| o.status.as_str());
        return Ok(json!({"runId": run_id, "status": status}));
    }
    if queue_mode == "interrupt" {
        for r in rt.active_in(&key.full) {
            r.abort("interrupt");
        }
    }
    Runtime::start(
        gw,
        RunSpec {
            id: run_id.to_string(),
            key,
            kind: Kind::Chat,
            message: message.to_string(),
            timeout,
            origin: caller.outbound.clone(),
            request_id: id.to_string(),
            thinking,
            model: None,
            ack: Some(ack),
        },
    );
    Ok(json!({"runId": run_id, "status": "started"}))
}

fn agent(gw: &Arc<Gateway>, caller: &Caller, id: &str, p: &Value) -> Reply {
    match agent_start(gw, caller, id, p) {
        Ok(r) => r,
        Err(e) => Reply::Now(Err(e)),
    }
}

fn agent_start(
    gw: &Arc<Gateway>,
    caller: &Caller,
    id: &str,
    p: &Value,
) -> Result<Reply, ErrorShape> {
    const M: &str = "agent";
    let rt = &gw.agent;
    let message = str_param(M, p, "message", true)?.unwrap_or_default();
    let run_id = idempotency_key(M, p)?;
    let agent_id = str_param(M, p, "agentId", false)?.unwrap_or(rt.default_agent());
    known_agent(rt, M, agent_id)?;
    let key = match (
        str_param(M, p, "sessionKey", false)?,
        str_param(M, p, "sessionId", false)?,
    ) {
        (Some(k), _) => store::qualify(k, agent_id).map_err(|e| bad(M, e))?,
        (None, Some(sid)) => {
            let found = rt.sessions.lock().ok().and_then(|s| {
                s.list(None)
                    .into_iter()
                    .find(|(_, _, e)| e.session_id == sid)
                    .map(|(a, k, _)| SessionKey { agent: a, full: k })
            });
            found.ok_or_else(|| bad(M, format!("no session has sessionId {sid}")))?
        }
        (None, None) => store::qualify(store::MAIN_KEY, agent_id).map_err(|e| bad(M, e))?,
    };
    known_agent(rt, M, &key.agent)?;
    if message.trim().is_empty() {
        return Err(bad(M, "message must not be empty"));
    }
    let timeout = match u64_param(M, p, "timeout")? {
        Some(s) if s > 0 => Duration::from_secs(s),
        _ => super::configured_timeout(&gw.settings.config.raw),
    };
    let model = match (
        str_param(M, p, "provider", false)?,
        str_param(M, p, "model", false)?,
    ) {
        (Some(pv), Some(m)) if !m.contains('/') => Some(format!("{pv}/{m}")),
        (_, Some(m)) => Some(m.to_string()),
        _ => None,
    };
    if let Some(m) = &model {
        check_model(gw, M, m)?;
    }
    if let Some(run) = rt.run(run_id) {
        // A repeated key never starts a second run: the stored final
        // answer, or `in_flight` while it still runs.
        return Ok(match run.outcome() {
            Some(o) => Reply::Frame(super::final_frame(id, &o)),
            None => Reply::Now(Ok(json!({"runId": run_id, "status": "in_flight",
                "sessionKey": run.key.full, "agentId": run.key.agent}))),
        });
    }
    let run = Runtime::start(
        gw,
        RunSpec {
            id: run_id.to_string(),
            key: key.clone(),
            kind: Kind::Agent,
            message: message.to_string(),
            timeout,
            origin: caller.outbound.clone(),
            request_id: id.to_string(),
            thinking: str_param(M, p, "thinking", false)?.map(str::to_string),
            model,
            ack: None,
        },
    );
    Ok(Reply::Now(Ok(
        json!({"runId": run_id, "sessionKey": key.full, "agentId": key.agent,
        "status": "accepted", "acceptedAt": run.accepted_at}),
    )))
}

fn wait_answer(run_id: &str, o: Option<&super::Outcome>, started: u64) -> Value {
    match o {
        None => json!({"runId": run_id, "status": "timeout", "startedAt": started}),
        Some(o) => {
            let status = match o.status {
                Status::Ok => "ok",
                Status::Timeout => "timeout",
                Status::Error | Status::Aborted => "error",
            };
            let mut v = json!({"runId": run_id, "status": status, "startedAt": started, "endedAt": o.ended_at,
                "stopReason": o.stop_reason,
                "terminalReply": {"disposition": "visible", "text": o.text}});
            if let Some(e) = &o.error {
                v["error"] = e.clone().into();
            }
            v
        }
    }
}

fn agent_wait(gw: &Arc<Gateway>, caller: &Caller, id: &str, p: &Value) -> Reply {
    const M: &str = "agent.wait";
    let run_id = match str_param(M, p, "runId", true) {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return Reply::Now(Err(e)),
    };
    let timeout = match u64_param(M, p, "timeoutMs") {
        Ok(t) => t
            .map_or(Duration::from_secs(30), Duration::from_millis)
            .min(MAX_WAIT),
        Err(e) => return Reply::Now(Err(e)),
    };
    let Some(run) = gw.agent.run(run_id) else {
        return Reply::Now(Err(ErrorShape::invalid(format!(
            "unknown run `{run_id}` (runs are remembered for {} minutes after they end)",
            super::RUN_RETENTION_MS / 60_000
        ))));
    };
    if let Some(o) = run.outcome() {
        return Reply::Now(Ok(wait_answer(run_id, Some(&o), run.accepted_at)));
    }
    let Some(out) = caller.outbound.clone() else {
        return Reply::Now(Ok(wait_answer(run_id, None, run.accepted_at)));
    };
    let (id, run_id) = (id.to_string(), run_id.to_string());
    tokio::spawn(async move {
        let o = tokio::time::timeout(timeout, run.ended()).await.ok();
        let answer = wait_answer(&run_id, o.as_deref(), run.accepted_at);
        out.frame(ok_frame(&id, answer).to_string()).await;
    });
    Reply::Later
}

fn chat_abort(gw: &Arc<Gateway>, caller: &Caller, id: &str, p: &Value) -> Reply {
    const M: &str = "chat.abort";
    let key = match key_param(&gw.agent, M, p, "sessionKey") {
        Ok(k) => k,
        Err(e) => return Reply::Now(Err(e)),
    };
    let only = match str_param(M, p, "runId", false) {
        Ok(r) => r.map(str::to_string),
        Err(e) => return Reply::Now(Err(e)),
    };
    let runs: Vec<_> = gw
        .agent
        .active_in(&key.full)
        .into_iter()
        .filter(|r| only.as_deref().is_none_or(|o| o == r.id))
        .collect();
    for r in &runs {
        r.abort("rpc");
    }
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let answer = json!({"ok": true, "aborted": !ids.is_empty(), "runIds": ids});
    let Some(out) = caller.outbound.clone().filter(|_| !runs.is_empty()) else {
        return Reply::Now(Ok(answer));
    };
    // The answer follows the runs' `aborted` events, as the real gateway's.
    let id = id.to_string();
    tokio::spawn(async move {
        let settle = futures_util::future::join_all(runs.iter().map(|r| r.ended()));
        let _ = tokio::time::timeout(ABORT_SETTLE, settle).await;
        out.frame(ok_frame(&id, answer).to_string()).await;
    });
    Reply::Later
}

fn transcript(gw: &Gateway, key: &SessionKey) -> (Option<store::Entry>, Vec<Value>) {
    let (entry, path) = match gw.agent.sessions.lock() {
        Ok(s) => {
            let e = s.get(key).cloned();
            let path = e
                .as_ref()
                .map(|e| s.transcript_path(&key.agent, &e.session_id));
            (e, path)
        }
        Err(_) => (None, None),
    };
    let messages = path
        .map(|p| crate::methods::blocking(|| store::read_messages(&p)))
        .unwrap_or_default();
    (entry, messages)
}

fn chat_history(gw: &Gateway, p: &Value) -> Result<Value, ErrorShape> {
    const M: &str = "chat.history";
    let key = key_param(&gw.agent, M, p, "sessionKey")?;
    let limit = u64_param(M, p, "limit")?.unwrap_or(200).clamp(1, 1000) as usize;
    let offset = u64_param(M, p, "offset")?.unwrap_or(0) as usize;
    let max_chars = u64_param(M, p, "maxChars")?.map(|n| n as usize);
    let (entry, all) = transcript(gw, &key);
    let total = all.len();
    let end = total.saturating_sub(offset);
    let start = end.saturating_sub(limit);
    let mut messages: Vec<Value> = all[start..end].to_vec();
    if let Some(max) = max_chars {
        for m in &mut messages {
            if let Value::String(s) = &mut m["content"]
                && s.chars().count() > max
            {
                *s = s.chars().take(max).collect();
            }
            if let Some(parts) = m["content"].as_array_mut() {
                for part in parts {
                    if let Value::String(t) = &mut part["text"]
                        && t.chars().count() > max
                    {
                        *t = t.chars().take(max).collect();
                    }
                }
            }
        }
    }
    let mut v = json!({
        "sessionKey": key.full, "messages": messages, "totalMessages": total,
        "hasMore": start > 0, "defaults": super::defaults(gw),
        "pendingInputs": {"items": [], "total": 0},
    });
    if start > 0 {
        v["nextOffset"] = (offset + limit).into();
    }
    if let Some(e) = &entry {
        v["sessionId"] = e.session_id.clone().into();
        v["sessionInfo"] = super::session_row(gw, &key.full, &key.agent, e);
        if let Some(t) = &e.thinking_level {
            v["thinkingLevel"] = t.clone().into();
        }
    }
    Ok(v)
}

fn sessions_list(gw: &Gateway, p: &Value) -> Result<Value, ErrorShape> {
    const M: &str = "sessions.list";
    let agent = str_param(M, p, "agentId", false)?;
    if let Some(a) = agent {
        known_agent(&gw.agent, M, a)?;
    }
    let limit = u64_param(M, p, "limit")?.map(|n| n as usize);
    let offset = u64_param(M, p, "offset")?.unwrap_or(0) as usize;
    let search = str_param(M, p, "search", false)?.map(str::to_lowercase);
    let (rows, path) = match gw.agent.sessions.lock() {
        Ok(s) => (
            s.list(agent),
            s.index_path(agent.unwrap_or(gw.agent.default_agent())),
        ),
        Err(_) => (Vec::new(), Default::default()),
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|(_, k, e)| {
            search.as_deref().is_none_or(|q| {
                k.to_lowercase().contains(q)
                    || e.label
                        .as_deref()
                        .is_some_and(|l| l.to_lowercase().contains(q))
            })
        })
        .collect();
    let total = rows.len();
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|(a, k, e)| super::session_row(gw, k, a, e))
        .collect();
    let has_more = offset + page.len() < total;
    let mut v = json!({
        "ts": now_ms(), "path": path, "count": page.len(), "totalCount": total,
        "limitApplied": limit, "hasMore": has_more, "defaults": super::defaults(gw), "sessions": page,
    });
    if has_more {
        v["nextOffset"] = (offset + v["count"].as_u64().unwrap_or(0) as usize).into();
    }
    Ok(v)
}

fn sessions_describe(gw: &Gateway, p: &Value) -> Result<Value, ErrorShape> {
    let key = key_param(&gw.agent, "sessions.describe", p, "key")?;
    let entry = gw
        .agent
        .sessions
        .lock()
        .ok()
        .and_then(|s| s.get(&key).cloned());
    Ok(json!({"session": entry.map(|e| super::session_row(gw, &key.full, &key.agent, &e))}))
}

fn resolved(gw: &Gateway, e: &store::Entry) -> Value {
    match super::provider::resolve(&gw.settings.config.raw, e.model_override.as_deref()) {
        Ok(r) => json!({"modelProvider": r.provider, "model": r.model}),
        Err(_) => json!({"modelProvider": null, "model": null}),
    }
}

fn sessions_create(gw: &Gateway, p: &Value) -> Result<Value, ErrorShape> {
    const M: &str = "sessions.create";
    let rt = &gw.agent;
    if !p["message"].is_null() || !p["task"].is_null() {
        return Err(bad(
            M,
            "a first message is not supported here: create the session, then send it with chat.send",
        ));
    }
    let fresh = crate::protocol::uuid_v4();
    let raw = str_param(M, p, "key", false)?.unwrap_or(&fresh);
    let agent = str_param(M, p, "agentId", false)?.unwrap_or(rt.default_agent());
    let key = store::qualify(raw, agent).map_err(|e| bad(M, e))?;
    known_agent(rt, M, &key.agent)?;
    let model = str_param(M, p, "model", false)?;
    if let Some(m) = model {
        check_model(gw, M, m)?;
    }
    let parent = str_param(M, p, "parentSessionKey", false)?
        .map(|k| store::qualify(k, &key.agent).map(|k| k.full))
        .transpose()
        .map_err(|e| bad(M, e))?;
    let label = str_param(M, p, "label", false)?.or(str_param(M, p, "displayName", false)?);
    let thinking = str_param(M, p, "thinkingLevel", false)?;
    let entry = {
        let mut s = sessions_mut(rt)?;
        s.ensure(&key, M);
        s.update(&key, |e| {
            if let Some(m) = model {
                e.model_override = Some(m.to_string());
            }
            if let Some(l) = label {
                e.label = Some(l.to_string());
            }
            if let Some(t) = thinking {
                e.thinking_level = Some(t.to_string());
            }
            if parent.is_some() {
                e.parent_session_key = parent.clone();
            }
        })
        .unwrap_or_default()
    };
    rt.session_changed(&key, Some(&entry), json!({"reason": "create"}));
    Ok(
        json!({"ok": true, "key": key.full, "sessionId": entry.session_id,
        "entry": {"sessionId": entry.session_id, "updatedAt": entry.updated_at},
        "runStarted": false, "resolved": resolved(gw, &entry)}),
    )
}

fn sessions_reset(gw: &Gateway, p: &Value) -> Result<Value, ErrorShape> {
    const M: &str = "sessions.reset";
    let rt = &gw.agent;
    let key = key_param(rt, M, p, "key")?;
    let reason = str_param(M, p, "reason", false)?.unwrap_or("reset");
    if reason != "reset" && reason != "new" {
        return Err(bad(M, "reason must be \"new\" or \"reset\""));
    }
    for r in rt.active_in(&key.full) {
        r.abort("rpc");
    }
    let entry = sessions_mut(rt)?.reset(&key);
    rt.session_changed(&key, Some(&entry), json!({"reason": reason}));
    Ok(
        json!({"ok": true, "key": key.full, "sessionId": entry.session_id,
        "entry": {"sessionId": entry.session_id, "updatedAt": entry.updated_at}}),
    )
}

fn sessions_delete(gw: &Gateway, p: &Value) -> Result<Value, ErrorShape> {
    const M: &str = "sessions.delete";
    let rt = &gw.agent;
    let key = key_param(rt, M, p, "key")?;
    if !rt.active_in(&key.full).is_empty() {
        return Err(ErrorShape::invalid(format!(
            "session {} has a turn running: abort it (chat.abort) before deleting the session",
            key.full
        )));
    }
    let transcript = p["deleteTranscript"] == true;
    let deleted = sessions_mut(rt)?.delete(&key, transcript);
    if deleted {
        rt.session_changed(&key, None, json!({"reason": "delete"}));
    }
    Ok(json!({"ok": true, "key": key.full, "deleted": deleted}))
}

fn sessions_patch(gw: &Gateway, p: &Value) -> Result<Value, ErrorShape> {
    const M: &str = "sessions.patch";
    let rt = &gw.agent;
    let key = key_param(rt, M, p, "key")?;
    // Each field: absent = unchanged, null = cleared, a string = set.
    let field = |k: &str| -> Result<Option<Option<String>>, ErrorShape> {
        match &p[k] {
            Value::Null if p.get(k).is_none() => Ok(None),
            Value::Null => Ok(Some(None)),
            Value::String(s) if !s.trim().is_empty() => Ok(Some(Some(s.clone()))),
            _ => Err(bad(M, format!("{k} must be a non-empty string or null"))),
        }
    };
    let model = field("model")?;
    let thinking = field("thinkingLevel")?;
    let label = field("label")?;
    if let Some(Some(m)) = &model {
        check_model(gw, M, m)?;
    }
    let entry = {
        let mut s = sessions_mut(rt)?;
        s.ensure(&key, M);
        s.update(&key, |e| {
            if let Some(m) = model {
                e.model_override = m;
            }
            if let Some(t) = thinking {
                e.thinking_level = t;
            }
            if let Some(l) = label {
                e.label = l;
            }
            e.updated_at = now_ms();
        })
        .unwrap_or_default()
    };
    rt.session_changed(&key, Some(&entry), json!({"reason": "patch"}));
    Ok(
        json!({"ok": true, "key": key.full, "entry": super::session_row(gw, &key.full, &key.agent, &entry),
        "resolved": resolved(gw, &entry)}),
    )
}

fn agents_list(gw: &Gateway) -> Value {
    let model = super::provider::default_model(&gw.settings.config.raw);
    let agents: Vec<Value> = gw
        .agent
        .agents
        .iter()
        .map(|id| {
            let mut a = json!({"id": id, "name": id});
            if let Some(m) = &model {
                a["model"] = json!({"primary": m});
            }
            a
        })
        .collect();
    json!({"defaultId": gw.agent.default_agent(), "mainKey": store::MAIN_KEY, "scope": "per-sender",
        "agents": agents, "ownership": "sole", "selectionRequired": false})
}
