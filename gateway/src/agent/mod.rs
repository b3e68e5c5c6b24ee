//! The agent runtime (`agent.md`): runs (one user message → one model
//! answer), their `agent` and `chat` events, sessions that survive
//! restarts ([`store`]), and the model providers ([`provider`]).
//!
//! A run is registered under its id (the request's `idempotencyKey`) from
//! the moment it is accepted until 10 minutes after it ended, so that a
//! repeated key replays instead of running twice and `agent.wait` can
//! answer. Runs of one session take turns (a lane per session key); runs of
//! different sessions go in parallel.
//!
//! Events go to the socket that started the run and to every socket that
//! called `sessions.subscribe` (each filters by scope), serialized once per
//! event: the work per event grows with the interested sockets only.

pub mod methods;
pub mod provider;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::methods::blocking;
use crate::protocol::{ErrorShape, now_ms};
use crate::server::Gateway;
use crate::ws::Outbound;
use store::{Entry, SessionKey, Sessions, Usage};

/// How long a finished run is remembered (replay, `agent.wait`).
pub const RUN_RETENTION_MS: u64 = 600_000;
/// Most finished runs remembered.
pub const RUN_RETENTION_MAX: usize = 1000;
/// Most reply text the remembered runs may hold in all (a reply is at most
/// `provider::MAX_REPLY_BYTES`).
pub const RUN_RETENTION_BYTES: usize = 32 << 20;
/// Default run timeout (`agents.defaults.timeoutSeconds`, OpenClaw's 600 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The system message of every turn.
pub const SYSTEM_PROMPT: &str = "You are a personal assistant running inside OpenClaw.";

/// Pause between writing a `chat.send` ack and the run's first event. The
/// real TUI (2026.9.6) drops a run whose events it reads in the same
/// network read as the ack (its send continuation runs after those
/// events): the reply only shows after a history reload and the session
/// stays "busy". OpenClaw's gateway never hits this (its first event comes
/// a second after the ack); a local backend answering at once would. The
/// pause starts when the socket has written the ack (`RunSpec::ack`).
pub const ACK_GAP: Duration = Duration::from_millis(50);

/// Which method started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `chat.send` (TUI, web chat): the answer is in `chat` events.
    Chat,
    /// `agent` (CLI): a final `res` on the request's id.
    Agent,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The model answered.
    Ok,
    /// The provider (or the config) failed.
    Error,
    /// `chat.abort` (or a `queueMode: interrupt` send).
    Aborted,
    /// The run's timeout passed.
    Timeout,
}

impl Status {
    /// As `agent.wait` and replays say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Aborted => "aborted",
            Self::Timeout => "timeout",
        }
    }
}

/// What a finished run left.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The visible reply (partial when aborted).
    pub text: String,
    /// `stop`, `length`, `rpc`, `error`, `timeout`.
    pub stop_reason: String,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// Ended, ms.
    pub ended_at: u64,
    /// The final `res` of an `agent` run: `ok`, payload, error.
    pub final_res: (bool, Value, Option<ErrorShape>),
}

/// One accepted run.
#[derive(Debug)]
pub struct Run {
    /// `runId` (= the idempotency key).
    pub id: String,
    /// Its session.
    pub key: SessionKey,
    /// Which method started it.
    pub kind: Kind,
    /// Accepted, ms.
    pub accepted_at: u64,
    /// Cancelled by `chat.abort` (the reason is in `abort_reason`).
    pub cancel: CancellationToken,
    abort_reason: Mutex<&'static str>,
    seq: AtomicU64,
    /// The socket that started it (gets its events and, for `agent`, the
    /// final `res`).
    origin: Option<Outbound>,
    /// The request id of the `agent` call (for the final `res`).
    request_id: String,
    done: tokio::sync::watch::Sender<Option<Arc<Outcome>>>,
}

impl Run {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Relaxed) + 1
    }

    /// The outcome, once it ended.
    pub fn outcome(&self) -> Option<Arc<Outcome>> {
        self.done.borrow().clone()
    }

    /// Waits until the run ends.
    pub async fn ended(&self) -> Arc<Outcome> {
        let mut rx = self.done.subscribe();
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return o;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as the run; unreachable in practice.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Aborts the run (queued or running) for `reason` (`rpc`).
    pub fn abort(&self, reason: &'static str) {
        if let Ok(mut r) = self.abort_reason.lock() {
            *r = reason;
        }
        self.cancel.cancel();
    }
}

/// Counters since the gateway started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Runs accepted.
    pub accepted: AtomicU64,
    /// Runs that answered.
    pub succeeded: AtomicU64,
    /// Runs that failed.
    pub failed: AtomicU64,
    /// Runs aborted.
    pub cancelled: AtomicU64,
    /// Runs that timed out.
    pub timed_out: AtomicU64,
    /// Runs waiting for their session's turn now.
    pub queued: AtomicU64,
}

/// The agent runtime of one gateway.
#[derive(Debug)]
pub struct Runtime {
    /// Session index (and the transcripts' paths).
    pub sessions: Mutex<Sessions>,
    runs: Mutex<HashMap<String, Arc<Run>>>,
    /// The newest accepted run of each session: a new run waits for it to
    /// end, so turns of a session run one at a time in acceptance order.
    lanes: Mutex<HashMap<String, Arc<Run>>>,
    subscribers: Mutex<HashMap<String, Outbound>>,
    http: OnceLock<reqwest::Client>,
    /// Agent ids (`main` and `agents.list[].id`), the default first.
    pub agents: Vec<String>,
    /// Run counters.
    pub counters: Counters,
}

/// The agents a config defines: `agents.list[].id` (the one marked
/// `default: true` first), else `main` alone.
pub fn agent_ids(raw: &Value) -> Vec<String> {
    let mut ids: Vec<(bool, String)> = raw
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let id = a["id"].as_str()?;
            store::valid_agent_id(id).then(|| (a["default"] == true, id.to_string()))
        })
        .collect();
    ids.sort_by_key(|(d, _)| !d);
    let mut out: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
    if out.is_empty() {
        out.push(store::DEFAULT_AGENT.to_string());
    }
    out.dedup();
    out
}

impl Runtime {
    /// The runtime of the gateway whose state dir and config these are.
    pub fn new(state_dir: &std::path::Path, raw: &Value) -> Self {
        let agents = agent_ids(raw);
        Self {
            sessions: Mutex::new(Sessions::load(state_dir, &agents).with_writer()),
            runs: Mutex::default(),
            lanes: Mutex::default(),
            subscribers: Mutex::default(),
            http: OnceLock::new(),
            agents,
            counters: Counters::default(),
        }
    }

    /// The default agent id.
    pub fn default_agent(&self) -> &str {
        &self.agents[0]
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(90))
                .user_agent(concat!("openclaw-gateway/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client with default TLS roots builds")
        })
    }

    /// Runs that have not ended.
    pub fn active_runs(&self) -> usize {
        self.runs
            .lock()
            .map(|r| r.values().filter(|r| r.outcome().is_none()).count())
            .unwrap_or(0)
    }

    /// A run by id (running or remembered).
    pub fn run(&self, id: &str) -> Option<Arc<Run>> {
        self.runs.lock().ok()?.get(id).cloned()
    }

    /// Runs of a session that have not ended.
    pub fn active_in(&self, key: &str) -> Vec<Arc<Run>> {
        self.runs
            .lock()
            .map(|r| {
                r.values()
                    .filter(|r| r.key.full == key && r.outcome().is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Marks a socket for session events (`sessions.subscribe`).
    pub fn subscribe(&self, out: &Outbound) {
        if let Ok(mut s) = self.subscribers.lock() {
            s.insert(out.conn_id().to_string(), out.clone());
        }
    }

    /// Forgets a closed socket.
    pub fn unsubscribe(&self, conn_id: &str) {
        if let Ok(mut s) = self.subscribers.lock() {
            s.remove(conn_id);
        }
    }

    /// Sends an event to the run's socket and every subscriber.
    fn deliver(&self, origin: Option<&Outbound>, event: &'static str, payload: &Value) {
        self.deliver_raw(origin, event, payload.to_string().into());
    }

    /// The same with the payload already serialized.
    fn deliver_raw(&self, origin: Option<&Outbound>, event: &'static str, payload: Arc<str>) {
        if let Some(o) = origin {
            o.event(event, payload.clone());
        }
        if let Ok(subs) = self.subscribers.lock() {
            for (conn, out) in subs.iter() {
                if origin.is_none_or(|o| o.conn_id() != conn) {
                    out.event(event, payload.clone());
                }
            }
        }
    }

    /// `sessions.changed` to subscribers.
    pub fn session_changed(&self, key: &SessionKey, entry: Option<&Entry>, what: Value) {
        let mut p = json!({"sessionKey": key.full, "agentId": key.agent, "ts": now_ms()});
        if let Some(e) = entry {
            p["sessionId"] = e.session_id.clone().into();
            p["updatedAt"] = e.updated_at.into();
        }
        if let (Some(p), Value::Object(w)) = (p.as_object_mut(), what) {
            p.extend(w);
        }
        self.deliver(None, "sessions.changed", &p);
    }

    /// Accepts a run: registers it (replays and `in_flight` are the
    /// caller's, from [`Runtime::run`]), then runs it on its own task.
    pub fn start(gw: &Arc<Gateway>, spec: RunSpec) -> Arc<Run> {
        let rt = &gw.agent;
        let run = Arc::new(Run {
            id: spec.id.clone(),
            key: spec.key.clone(),
            kind: spec.kind,
            accepted_at: now_ms(),
            cancel: gw.shutdown.child_token(),
            abort_reason: Mutex::new("rpc"),
            seq: AtomicU64::new(0),
            origin: spec.origin.clone(),
            request_id: spec.request_id.clone(),
            done: tokio::sync::watch::channel(None).0,
        });
        if let Ok(mut runs) = rt.runs.lock() {
            let now = now_ms();
            runs.retain(|_, r| {
                r.outcome()
                    .is_none_or(|o| now.saturating_sub(o.ended_at) < RUN_RETENTION_MS)
            });
            // At most RUN_RETENTION_MAX finished runs holding at most
            // RUN_RETENTION_BYTES of replies: the oldest go first.
            let finished: Vec<(u64, String, usize)> = runs
                .values()
                .filter_map(|r| {
                    r.outcome()
                        .map(|o| (o.ended_at, r.id.clone(), o.text.len()))
                })
                .collect();
            for id in evicted(finished, RUN_RETENTION_MAX, RUN_RETENTION_BYTES) {
                runs.remove(&id);
            }
            runs.insert(run.id.clone(), run.clone());
        }
        rt.counters.accepted.fetch_add(1, Relaxed);
        // Its place in the session's queue is taken here, in the order runs
        // are accepted (not when its task first runs).
        let before = rt
            .lanes
            .lock()
            .ok()
            .and_then(|mut l| l.insert(run.key.full.clone(), run.clone()));
        let (gw2, run2) = (gw.clone(), run.clone());
        tokio::spawn(async move { execute(gw2, run2, spec, before).await });
        run
    }
}

/// Which finished runs `(ended_at, id, reply bytes)` to forget, oldest
/// first, so that fewer than `max` remain (room for one more) holding at
/// most `max_bytes`.
fn evicted(mut finished: Vec<(u64, String, usize)>, max: usize, max_bytes: usize) -> Vec<String> {
    finished.sort_unstable();
    let mut bytes: usize = finished.iter().map(|f| f.2).sum();
    let mut count = finished.len();
    let mut out = Vec::new();
    for (_, id, len) in finished {
        if count < max && bytes <= max_bytes {
            break;
        }
        out.push(id);
        count -= 1;
        bytes -= len;
    }
    out
}

/// What a new run needs.
#[derive(Debug)]
pub struct RunSpec {
    /// Fires when the socket has written the request's ack (`chat.send`):
    /// the run's events wait for it, then [`ACK_GAP`].
    pub ack: Option<tokio::sync::oneshot::Receiver<()>>,
    /// `runId`.
    pub id: String,
    /// Its session.
    pub key: SessionKey,
    /// Which method.
    pub kind: Kind,
    /// The user's message.
    pub message: String,
    /// From `chat.send.timeoutMs` / `agent.timeout`, else the default.
    pub timeout: Duration,
    /// The socket that asked.
    pub origin: Option<Outbound>,
    /// The request id (`agent`'s final `res`).
    pub request_id: String,
    /// `chat.send.thinking` / `agent.thinking` for this turn.
    pub thinking: Option<String>,
    /// `agent.provider`/`agent.model` for this turn.
    pub model: Option<String>,
}

/// The run timeout a config sets (`agents.defaults.timeoutSeconds`).
pub fn configured_timeout(raw: &Value) -> Duration {
    raw.pointer("/agents/defaults/timeoutSeconds")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

/// Emits a run's events.
struct Emitter<'a> {
    rt: &'a Runtime,
    run: &'a Run,
}

impl Emitter<'_> {
    fn agent(&self, stream: &str, data: Value) {
        let p = json!({
            "runId": self.run.id, "seq": self.run.next_seq(), "stream": stream, "ts": now_ms(),
            "data": data, "sessionKey": self.run.key.full, "agentId": self.run.key.agent,
        });
        self.rt.deliver(self.run.origin.as_ref(), "agent", &p);
    }

    fn chat(&self, state: &str, extra: Value) {
        let mut p = json!({
            "runId": self.run.id, "sessionKey": self.run.key.full, "agentId": self.run.key.agent,
            "seq": self.run.next_seq(), "state": state,
        });
        if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
            p.extend(e);
        }
        self.rt.deliver(self.run.origin.as_ref(), "chat", &p);
    }
}

/// A streamed piece: the `chat` delta and the `agent` assistant event,
/// serialized straight from borrowed text (the hot path of a turn: no
/// intermediate JSON tree, no copy of the cumulative text).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ChatDelta<'a> {
    run_id: &'a str,
    session_key: &'a str,
    agent_id: &'a str,
    seq: u64,
    state: &'static str,
    delta_text: &'a str,
    message: StreamedMessage<'a>,
}

#[derive(serde::Serialize)]
struct StreamedMessage<'a> {
    role: &'static str,
    content: [TextPart<'a>; 1],
    timestamp: u64,
}

#[derive(serde::Serialize)]
struct TextPart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct AssistantEvent<'a> {
    run_id: &'a str,
    seq: u64,
    stream: &'static str,
    ts: u64,
    data: AssistantData<'a>,
    session_key: &'a str,
    agent_id: &'a str,
}

#[derive(serde::Serialize)]
struct AssistantData<'a> {
    text: &'a str,
    delta: &'a str,
}

impl Emitter<'_> {
    /// One streamed piece (`text` is the reply so far).
    fn delta(&self, piece: &str, text: &str) {
        let (run, ts) = (self.run, now_ms());
        let chat = ChatDelta {
            run_id: &run.id,
            session_key: &run.key.full,
            agent_id: &run.key.agent,
            seq: run.next_seq(),
            state: "delta",
            delta_text: piece,
            message: StreamedMessage {
                role: "assistant",
                content: [TextPart { kind: "text", text }],
                timestamp: ts,
            },
        };
        let json = serde_json::to_string(&chat).expect("a delta serializes");
        self.rt
            .deliver_raw(run.origin.as_ref(), "chat", json.into());
        let agent = AssistantEvent {
            run_id: &run.id,
            seq: run.next_seq(),
            stream: "assistant",
            ts,
            data: AssistantData { text, delta: piece },
            session_key: &run.key.full,
            agent_id: &run.key.agent,
        };
        let json = serde_json::to_string(&agent).expect("an agent event serializes");
        self.rt
            .deliver_raw(run.origin.as_ref(), "agent", json.into());
    }
}

fn assistant_message(text: &str, ts: u64) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": ts})
}

/// The provider's messages: the system prompt, then the transcript's user
/// and answered assistant messages (failed and aborted turns are not
/// replayed as answers), the newest user message last.
fn provider_messages(history: &[Value]) -> Vec<Value> {
    let mut out = vec![json!({"role": "system", "content": SYSTEM_PROMPT})];
    for m in history {
        match m["role"].as_str() {
            Some("user") => {
                if let Some(t) = m["content"].as_str() {
                    out.push(json!({"role": "user", "content": t}));
                }
            }
            Some("assistant") if m["stopReason"] != "error" && m.get("openclawAbort").is_none() => {
                let text = message_text(m);
                if !text.is_empty() {
                    out.push(json!({"role": "assistant", "content": text}));
                }
            }
            _ => {}
        }
    }
    out
}

/// The visible text of a message (a string, or its `text` parts).
pub fn message_text(m: &Value) -> String {
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

/// Appends a message to a session's transcript.
fn persist(gw: &Gateway, key: &SessionKey, session_id: &str, run_id: &str, message: &Value) {
    let path = gw
        .agent
        .sessions
        .lock()
        .map(|s| s.transcript_path(&key.agent, session_id));
    let Ok(path) = path else { return };
    let line =
        json!({"type": "message", "runId": run_id, "timestamp": now_ms(), "message": message});
    if let Err(e) = blocking(|| store::append_line(&path, &line)) {
        tracing::error!(file = %path.display(), error = %e, "cannot append to the transcript");
    }
}

async fn execute(gw: Arc<Gateway>, run: Arc<Run>, mut spec: RunSpec, before: Option<Arc<Run>>) {
    let rt = &gw.agent;
    let deadline = Instant::now() + spec.timeout;
    let emit = Emitter { rt, run: &run };
    if let Some(written) = spec.ack.take() {
        // The ack must reach the client on its own (see ACK_GAP).
        let _ = tokio::time::timeout(Duration::from_secs(5), written).await;
        tokio::time::sleep(ACK_GAP).await;
    }
    // Wait for the session's previous run (it waited for its own).
    rt.counters.queued.fetch_add(1, Relaxed);
    let previous_done = async {
        if let Some(p) = &before {
            p.ended().await;
        }
    };
    let turn = tokio::select! {
        () = previous_done => Some(()),
        () = run.cancel.cancelled() => None,
        () = tokio::time::sleep_until(deadline.into()) => None,
    };
    drop(before);
    rt.counters.queued.fetch_sub(1, Relaxed);
    let started_at = now_ms();
    let entry = rt
        .sessions
        .lock()
        .map(|mut s| {
            let via = if run.kind == Kind::Chat {
                "chat.send"
            } else {
                "agent"
            };
            s.ensure(&run.key, via);
            s.update(&run.key, |e| {
                e.status = "running".into();
                e.updated_at = started_at;
            })
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    persist(
        &gw,
        &run.key,
        &entry.session_id,
        &run.id,
        &json!({"role": "user", "content": spec.message, "timestamp": run.accepted_at,
                "idempotencyKey": format!("{}:user", run.id)}),
    );
    rt.session_changed(
        &run.key,
        Some(&entry),
        json!({"phase": "start", "runId": run.id}),
    );
    emit.agent(
        "lifecycle",
        json!({"phase": "start", "startedAt": started_at}),
    );

    let mut text = String::new();
    let mut usage: Option<Usage> = None;
    let mut route_used: Option<provider::Route> = None;
    let result: Result<provider::Reply, (Status, Option<provider::Failure>)> = if turn.is_none() {
        Err((
            if run.cancel.is_cancelled() {
                Status::Aborted
            } else {
                Status::Timeout
            },
            None,
        ))
    } else {
        match provider::resolve(
            &gw.settings.config.raw,
            spec.model.as_deref().or(entry.model_override.as_deref()),
        ) {
            Err(message) => Err((
                Status::Error,
                Some(provider::Failure {
                    message: message.clone(),
                    kind: "unknown",
                    failover: "config",
                    http_status: None,
                    preview: None,
                    visible: format!("⚠️ {message}"),
                    retryable: false,
                    retry_after: None,
                }),
            )),
            Ok(mut route) => {
                route.thinking = spec.thinking.clone().or(entry.thinking_level.clone());
                emit.agent(
                    "lifecycle",
                    json!({"phase": "model", "provider": route.provider, "model": route.model}),
                );
                emit.agent("run_status", json!({"phase": "starting_model"}));
                emit.chat("status", json!({"phase": "starting_model"}));
                let history = {
                    let path = rt
                        .sessions
                        .lock()
                        .map(|s| s.transcript_path(&run.key.agent, &entry.session_id))
                        .ok();
                    path.map(|p| blocking(|| store::read_messages(&p)))
                        .unwrap_or_default()
                };
                let messages = provider_messages(&history);
                let env = [
                    ("OPENCLAW_SESSION_KEY", run.key.full.as_str()),
                    ("OPENCLAW_AGENT_ID", run.key.agent.as_str()),
                    ("OPENCLAW_RUN_ID", run.id.as_str()),
                    ("OPENCLAW_MODEL", route.model.as_str()),
                ];
                let outcome = {
                    let mut on = |c: provider::Chunk<'_>| match c {
                        provider::Chunk::Text(piece) => {
                            text.push_str(piece);
                            // The chat delta first: it is what clients render.
                            emit.delta(piece, &text);
                        }
                        provider::Chunk::Retrying {
                            attempt,
                            delay,
                            reason,
                        } => {
                            let secs = delay.as_secs_f64().ceil() as u64;
                            emit.agent("run_status", json!({
                                "phase": "retrying",
                                "message": format!("Provider temporarily unavailable. Retrying in {secs}s ({attempt}/{}).", provider::MAX_RETRIES),
                                "retryAttempt": attempt, "maxRetries": provider::MAX_RETRIES,
                                "delayMs": delay.as_millis() as u64, "reason": reason,
                            }));
                            emit.chat("status", json!({"phase": "starting_model"}));
                        }
                    };
                    let call =
                        provider::complete(rt.http(), &route, &messages, &env, deadline, &mut on);
                    tokio::select! {
                        r = call => r.map_err(|f| (Status::Error, Some(f))),
                        () = run.cancel.cancelled() => Err((Status::Aborted, None)),
                        () = tokio::time::sleep_until(deadline.into()) => Err((Status::Timeout, None)),
                    }
                };
                route_used = Some(route);
                outcome
            }
        }
    };
    let ended_at = now_ms();
    let (provider_id, model_id) = route_used.as_ref().map_or((None, None), |r| {
        (Some(r.provider.clone()), Some(r.model.clone()))
    });
    let outcome = match result {
        Ok(reply) => {
            usage = reply.usage;
            let mut message = assistant_message(&reply.text, ended_at);
            message["api"] = route_used.as_ref().map(|r| r.api.clone()).into();
            message["provider"] = provider_id.clone().into();
            message["model"] = model_id.clone().into();
            message["stopReason"] = reply.finish.clone().into();
            if let Some(u) = usage {
                message["usage"] = u.to_json();
            }
            if let Some(id) = &reply.response_id {
                message["responseId"] = id.clone().into();
            }
            persist(&gw, &run.key, &entry.session_id, &run.id, &message);
            if let Some(u) = usage {
                emit.agent("usage", json!({"outputTokens": u.output}));
            }
            emit.agent(
                "lifecycle",
                json!({"phase": "end", "startedAt": started_at, "endedAt": ended_at,
                "aborted": false, "stopReason": reply.finish, "status": "ok",
                "terminalReply": {"disposition": "visible", "text": reply.text}}),
            );
            let mut fin = json!({"stopReason": reply.finish, "message": message});
            if let Some(u) = usage {
                fin["usage"] = u.to_json();
            }
            emit.chat("final", fin);
            rt.counters.succeeded.fetch_add(1, Relaxed);
            let mut meta = json!({"durationMs": ended_at.saturating_sub(started_at), "aborted": false, "stopReason": reply.finish,
                "agentMeta": {"sessionId": entry.session_id, "provider": provider_id, "model": model_id}});
            if let Some(u) = usage {
                meta["agentMeta"]["usage"] = json!({"input": u.input, "output": u.output, "cacheRead": 0, "cacheWrite": 0, "total": u.input + u.output});
            }
            Outcome {
                status: Status::Ok,
                text: reply.text.clone(),
                stop_reason: reply.finish.clone(),
                error: None,
                ended_at,
                final_res: (
                    true,
                    json!({"runId": run.id, "status": "ok", "summary": "completed",
                           "result": {"payloads": [{"text": reply.text, "mediaUrl": null}], "meta": meta}}),
                    None,
                ),
            }
        }
        Err((Status::Aborted, _)) => {
            let reason = run.abort_reason.lock().map(|r| *r).unwrap_or("rpc");
            let partial = assistant_message(&text, ended_at);
            if !text.is_empty() {
                let mut m = partial.clone();
                m["stopReason"] = "stop".into();
                m["provider"] = "openclaw".into();
                m["model"] = "gateway-injected".into();
                m["openclawAbort"] = json!({"aborted": true, "origin": reason, "runId": run.id});
                persist(&gw, &run.key, &entry.session_id, &run.id, &m);
            }
            emit.chat("aborted", json!({"stopReason": reason, "message": partial}));
            emit.agent(
                "lifecycle",
                json!({"phase": "end", "status": "cancelled", "aborted": true, "stopReason": reason,
                "startedAt": started_at, "endedAt": ended_at}),
            );
            emit.agent(
                "lifecycle",
                json!({"phase": "error", "error": "This operation was aborted", "aborted": true,
                "stopReason": reason, "endedAt": ended_at, "executionSettled": true}),
            );
            rt.counters.cancelled.fetch_add(1, Relaxed);
            let msg = "agent run aborted".to_string();
            Outcome {
                status: Status::Aborted,
                text: text.clone(),
                stop_reason: reason.into(),
                error: Some(msg.clone()),
                ended_at,
                final_res: (
                    false,
                    json!({"runId": run.id, "status": "error", "summary": "aborted"}),
                    Some(ErrorShape {
                        code: "UNAVAILABLE",
                        message: msg,
                        details: None,
                        retryable: false,
                    }),
                ),
            }
        }
        Err((status, failure)) => {
            let timed_out = status == Status::Timeout;
            let (message, kind, visible, detail) = match &failure {
                Some(f) => (
                    f.message.clone(),
                    f.kind,
                    f.visible.clone(),
                    route_used.as_ref().map(|r| f.detail(r)),
                ),
                None => {
                    let m = format!(
                        "The agent run timed out after {} s (its timeout).",
                        spec.timeout.as_secs()
                    );
                    (m.clone(), "timeout", format!("⚠️ {m}"), None)
                }
            };
            let shown = if text.is_empty() {
                visible
            } else {
                format!("{text}\n\n{visible}")
            };
            let mut m = assistant_message(&shown, ended_at);
            m["stopReason"] = "error".into();
            m["errorMessage"] = message.clone().into();
            m["provider"] = provider_id.clone().into();
            m["model"] = model_id.clone().into();
            if let Some(s) = failure.as_ref().and_then(|f| f.http_status) {
                m["errorCode"] = s.into();
            }
            persist(&gw, &run.key, &entry.session_id, &run.id, &m);
            emit.agent("lifecycle", json!({"phase": "error", "error": message, "aborted": false,
                "stopReason": if timed_out { "timeout" } else { "error" }, "endedAt": ended_at, "executionSettled": true}));
            let mut ev = json!({"errorMessage": message, "errorKind": kind});
            if let Some(d) = detail {
                ev["errorDetail"] = d;
            }
            emit.chat("error", ev);
            if timed_out {
                rt.counters.timed_out.fetch_add(1, Relaxed);
            } else {
                rt.counters.failed.fetch_add(1, Relaxed);
            }
            Outcome {
                status,
                text: text.clone(),
                stop_reason: if timed_out { "timeout" } else { "error" }.into(),
                error: Some(message.clone()),
                ended_at,
                final_res: (
                    false,
                    json!({"runId": run.id, "status": status.as_str(), "summary": message}),
                    Some(ErrorShape {
                        code: "UNAVAILABLE",
                        message,
                        details: None,
                        retryable: false,
                    }),
                ),
            }
        }
    };
    let status_word = match outcome.status {
        Status::Ok => "done",
        Status::Error => "failed",
        Status::Aborted => "aborted",
        Status::Timeout => "timeout",
    };
    let updated = rt.sessions.lock().ok().and_then(|mut s| {
        s.update(&run.key, |e| {
            e.status = status_word.into();
            e.updated_at = ended_at;
            e.message_count = e.message_count.saturating_add(2);
            if let Some(p) = &provider_id {
                e.last_provider = Some(p.clone());
                e.last_model = model_id.clone();
            }
            if let Some(u) = usage {
                e.input_tokens = u.input;
                e.output_tokens = u.output;
                e.total_tokens = u.input + u.output;
                e.input_tokens_sum += u.input;
                e.output_tokens_sum += u.output;
            }
        })
    });
    let phase = if outcome.status == Status::Ok {
        "end"
    } else {
        "error"
    };
    rt.session_changed(
        &run.key,
        updated.as_ref(),
        json!({"phase": phase, "runId": run.id}),
    );
    let outcome = Arc::new(outcome);
    run.done.send_replace(Some(outcome.clone()));
    // The session's newest run forgets its lane (a later one replaced it).
    if let Ok(mut lanes) = rt.lanes.lock()
        && lanes
            .get(&run.key.full)
            .is_some_and(|l| Arc::ptr_eq(l, &run))
    {
        lanes.remove(&run.key.full);
    }
    if run.kind == Kind::Agent
        && let Some(origin) = &run.origin
    {
        origin.frame(final_frame(&run.request_id, &outcome)).await;
    }
}

/// The final `res` of an `agent` run for request `id` (also its replay).
pub fn final_frame(id: &str, outcome: &Outcome) -> String {
    let (ok, payload, error) = &outcome.final_res;
    let mut f = json!({"type": "res", "id": id, "ok": ok, "payload": payload});
    if let Some(e) = error {
        f["error"] = e.to_json();
    }
    f.to_string()
}

/// A session row (`sessions.list`, `sessions.describe`, `sessionInfo`).
pub fn session_row(gw: &Gateway, key: &str, agent: &str, e: &Entry) -> Value {
    let route = provider::resolve(&gw.settings.config.raw, e.model_override.as_deref()).ok();
    let (provider_id, model) = match (&e.last_provider, &route) {
        (_, Some(r)) => (Some(r.provider.clone()), Some(r.model.clone())),
        (Some(p), None) => (Some(p.clone()), e.last_model.clone()),
        _ => (None, None),
    };
    let mut row = json!({
        "key": key, "kind": "direct", "sessionId": e.session_id, "updatedAt": e.updated_at,
        "createdAt": e.created_at, "agentId": agent, "model": model, "modelProvider": provider_id,
        "contextTokens": route.as_ref().and_then(|r| r.context_window),
        "inputTokens": e.input_tokens, "outputTokens": e.output_tokens, "totalTokens": e.total_tokens,
        "totalTokensFresh": true, "status": e.status, "createdVia": e.created_via,
        "messageCount": e.message_count,
        "usageTotals": {"input": e.input_tokens_sum, "output": e.output_tokens_sum},
    });
    for (k, v) in [
        ("thinkingLevel", &e.thinking_level),
        ("label", &e.label),
        ("displayName", &e.label),
        ("parentSessionKey", &e.parent_session_key),
    ] {
        if let Some(v) = v {
            row[k] = v.clone().into();
        }
    }
    row
}

/// `defaults` of `sessions.list` / `chat.history`: the default model.
pub fn defaults(gw: &Gateway) -> Value {
    match provider::resolve(&gw.settings.config.raw, None) {
        Ok(r) => {
            json!({"modelProvider": r.provider, "model": r.model, "contextTokens": r.context_window})
        }
        Err(_) => json!({"modelProvider": null, "model": null, "contextTokens": null}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_runs_are_bounded_by_count_and_bytes_oldest_first() {
        let runs = |v: &[(u64, &str, usize)]| {
            v.iter()
                .map(|(t, id, n)| (*t, id.to_string(), *n))
                .collect()
        };
        assert!(evicted(runs(&[(1, "a", 10), (2, "b", 10)]), 3, 100).is_empty());
        assert_eq!(
            evicted(runs(&[(2, "b", 10), (1, "a", 10), (3, "c", 10)]), 3, 100),
            ["a"]
        );
        assert_eq!(
            evicted(runs(&[(1, "a", 60), (2, "b", 60), (3, "c", 10)]), 10, 100),
            ["a"]
        );
        assert_eq!(
            evicted(runs(&[(1, "a", 10), (2, "b", 500)]), 10, 100),
            ["a", "b"]
        );
    }
}
