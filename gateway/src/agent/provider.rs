//! Model providers: which model a turn uses (OpenClaw's own config keys,
//! `models.providers.<id>` and `agents.defaults.model.primary`), the
//! OpenAI-compatible chat-completions client (streaming SSE, usage, retries
//! with backoff and jitter inside the run's deadline), and the command
//! backend (`api: "command"`: a local program answers on stdout).
//!
//! Cancellation is the caller's: it drops the future, which closes the
//! HTTP stream or kills the command's process group at once.

use std::time::{Duration, Instant};

use openclaw_profiles::config::Secret;
use serde_json::{Value, json};

use super::store::Usage;

/// Longest reply kept (bytes); a longer stream ends as if cut by length.
pub const MAX_REPLY_BYTES: usize = 1 << 20;
/// Retries of a failing provider request (429, 5xx, connection errors).
pub const MAX_RETRIES: u32 = 8;
/// Longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Largest error body read from a provider.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The first retry's delay: 1 s, or `OPENCLAW_PROVIDER_RETRY_BASE_MS`
/// (tests shorten it).
fn retry_base() -> Duration {
    std::env::var("OPENCLAW_PROVIDER_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis)
}

/// How a provider is reached.
#[derive(Debug, Clone)]
pub enum Backend {
    /// `POST {base_url}/chat/completions`, streaming.
    OpenAi {
        /// `models.providers.<id>.baseUrl`.
        base_url: String,
        /// Sent as `Authorization: Bearer …` when set.
        api_key: Option<Secret>,
    },
    /// A program: the prompt on stdin, the reply on stdout.
    Command {
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// A model a turn can use.
#[derive(Debug, Clone)]
pub struct Route {
    /// The provider id (`fakeai`).
    pub provider: String,
    /// The provider-local model id (`fake-model`).
    pub model: String,
    /// Display name.
    pub name: String,
    /// `contextWindow` of the model entry.
    pub context_window: Option<u64>,
    /// `maxTokens` of the model entry (sent as `max_completion_tokens`).
    pub max_tokens: Option<u64>,
    /// `api` of the provider.
    pub api: String,
    /// `reasoning` of the model entry: the model takes `reasoning_effort`.
    pub reasoning: bool,
    /// The turn's thinking level (`chat.send.thinking`, the session's
    /// `thinkingLevel`): sent as `reasoning_effort` to reasoning models when
    /// it is one of `minimal`, `low`, `medium`, `high`.
    pub thinking: Option<String>,
    /// How to reach it.
    pub backend: Backend,
}

impl Route {
    /// `<provider>/<model>`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// The model reference the config names for new turns, if any:
/// `agents.defaults.model.primary` (or `agents.defaults.model` as a string).
pub fn default_model(raw: &Value) -> Option<String> {
    let m = raw.pointer("/agents/defaults/model")?;
    m.get("primary")
        .and_then(Value::as_str)
        .or(m.as_str())
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
}

/// Resolves a model reference (`<provider>/<model>`; `None`: the default).
pub fn resolve(raw: &Value, wanted: Option<&str>) -> Result<Route, String> {
    let Some(reference) = wanted.map(str::to_string).or_else(|| default_model(raw)) else {
        return Err(
            "No model is configured: set agents.defaults.model.primary to \"<provider>/<model>\" and describe the provider under models.providers in openclaw.json"
                .into(),
        );
    };
    let Some((provider, model)) = reference
        .split_once('/')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
    else {
        return Err(format!(
            "model `{reference}` is not `<provider>/<model>` (e.g. \"openai/gpt-4.1-mini\" or a provider of models.providers)"
        ));
    };
    let section = raw.pointer(&format!("/models/providers/{}", escape_pointer(provider)));
    let builtin_openai = json!({"baseUrl": "https://api.openai.com/v1"});
    let section = match section {
        Some(s) => s,
        None if provider == "openai" => &builtin_openai,
        None => {
            return Err(format!(
                "model `{reference}`: no provider `{provider}` under models.providers in openclaw.json"
            ));
        }
    };
    let api = section["api"]
        .as_str()
        .unwrap_or("openai-completions")
        .to_string();
    let entry = section["models"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["id"] == model));
    let field = |k: &str| entry.and_then(|e| e[k].as_u64());
    let backend = match api.as_str() {
        "openai-completions" | "openai" => {
            let base_url = section["baseUrl"]
                .as_str()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or_else(|| {
                    format!("models.providers.{provider}.baseUrl must be an http(s) URL (e.g. \"http://127.0.0.1:11434/v1\")")
                })?
                .trim_end_matches('/')
                .to_string();
            let api_key = api_key(section, provider);
            if api_key.is_none() && provider == "openai" {
                return Err("No route-compatible authentication source is configured for openai. Set OPENAI_API_KEY or models.providers.openai.apiKey.".into());
            }
            Backend::OpenAi { base_url, api_key }
        }
        "command" => {
            let (program, mut args) = match &section["command"] {
                Value::String(s) if !s.is_empty() => (s.clone(), Vec::new()),
                Value::Array(a)
                    if a.first()
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty()) =>
                {
                    (
                        a[0].as_str().unwrap_or_default().to_string(),
                        a[1..]
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                    )
                }
                _ => {
                    return Err(format!(
                        "models.providers.{provider}.command must name the program to run (a string, or [program, args…])"
                    ));
                }
            };
            if let Some(extra) = section["args"].as_array() {
                args.extend(extra.iter().filter_map(|v| v.as_str().map(str::to_string)));
            }
            Backend::Command { program, args }
        }
        other => {
            return Err(format!(
                "models.providers.{provider}.api `{other}` is not supported by this gateway (supported: openai-completions, command)"
            ));
        }
    };
    Ok(Route {
        provider: provider.to_string(),
        model: model.to_string(),
        name: entry
            .and_then(|e| e["name"].as_str())
            .unwrap_or(model)
            .to_string(),
        context_window: field("contextWindow"),
        max_tokens: field("maxTokens"),
        api,
        reasoning: entry.is_some_and(|e| e["reasoning"] == true),
        thinking: None,
        backend,
    })
}

/// Every model the config lists (`models.list`), the default first.
pub fn catalog(raw: &Value) -> Vec<Value> {
    let default = default_model(raw);
    let mut out = Vec::new();
    if let Some(providers) = raw.pointer("/models/providers").and_then(Value::as_object) {
        for (pid, section) in providers {
            let usable = resolve(raw, Some(&format!("{pid}/x"))).is_ok();
            for m in section["models"].as_array().into_iter().flatten() {
                let Some(id) = m["id"].as_str() else { continue };
                let mut row = json!({
                    "id": id,
                    "name": m["name"].as_str().unwrap_or(id),
                    "provider": pid,
                    "available": usable,
                });
                for k in ["contextWindow", "reasoning", "input"] {
                    if !m[k].is_null() {
                        row[k] = m[k].clone();
                    }
                }
                if !usable {
                    row["unavailableReason"] = json!("missing-auth");
                }
                out.push(row);
            }
        }
    }
    if let Some(d) = &default {
        out.sort_by_key(|r| {
            format!(
                "{}/{}",
                r["provider"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            ) != *d
        });
    }
    out
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// `apiKey` of a provider section (`${VAR}` reads the environment), else
/// `<PROVIDER>_API_KEY` from the environment.
fn api_key(section: &Value, provider: &str) -> Option<Secret> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let configured = section["apiKey"]
        .as_str()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let key = match configured {
        Some(k) if k.starts_with("${") && k.ends_with('}') => from_env(&k[2..k.len() - 1]),
        Some(k) => Some(k.to_string()),
        None => {
            let var: String = provider
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            from_env(&format!("{var}_API_KEY"))
        }
    };
    key.map(Secret::new)
}

/// What the provider streams back, as it arrives.
#[derive(Debug)]
pub enum Chunk<'a> {
    /// A piece of visible text.
    Text(&'a str),
    /// The request failed and is tried again after `delay`.
    Retrying {
        /// The retry about to happen (1-based).
        attempt: u32,
        /// Pause before it.
        delay: Duration,
        /// What failed.
        reason: String,
    },
}

/// A complete answer.
#[derive(Debug, Default)]
pub struct Reply {
    /// The whole text.
    pub text: String,
    /// `finish_reason` (`stop`, `length`, …).
    pub finish: String,
    /// Token counts, when the provider sent them.
    pub usage: Option<Usage>,
    /// The provider's response id.
    pub response_id: Option<String>,
}

/// Why a turn got no answer.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `chat.errorMessage` and the `agent` error message.
    pub message: String,
    /// `errorKind`: `refusal`, `timeout`, `rate_limit`, `context_length`, `unknown`.
    pub kind: &'static str,
    /// `errorDetail.failoverReason`.
    pub failover: &'static str,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// The start of the provider's error message.
    pub preview: Option<String>,
    /// The text stored in the transcript.
    pub visible: String,
    /// Worth another attempt.
    pub retryable: bool,
    /// `Retry-After`, when the provider sent one.
    pub retry_after: Option<Duration>,
}

impl Failure {
    fn new(message: String, kind: &'static str, failover: &'static str, visible: String) -> Self {
        Self {
            message,
            kind,
            failover,
            http_status: None,
            preview: None,
            visible,
            retryable: false,
            retry_after: None,
        }
    }

    /// `errorDetail` of a `chat` error event.
    pub fn detail(&self, route: &Route) -> Value {
        let mut d = json!({"provider": route.provider, "model": route.model, "failoverReason": self.failover});
        if let Some(s) = self.http_status {
            d["httpStatus"] = s.into();
        }
        if let Some(p) = &self.preview {
            d["providerErrorMessagePreview"] = p.clone().into();
        }
        d
    }
}

/// Runs one completion with retries: 429, 5xx and connection errors are
/// tried again after 1 s, 2 s, 4 s … (at most [`MAX_RETRY_DELAY`], ±25 %
/// jitter, `Retry-After` honoured) while the next attempt still starts
/// before `deadline`; nothing is retried once text has been streamed.
pub async fn complete(
    http: &reqwest::Client,
    route: &Route,
    messages: &[Value],
    env: &[(&str, &str)],
    deadline: Instant,
    on: &mut (dyn FnMut(Chunk<'_>) + Send),
) -> Result<Reply, Failure> {
    let mut attempt = 0;
    loop {
        let mut streamed = false;
        let result = match &route.backend {
            Backend::OpenAi { base_url, api_key } => {
                let mut tap = |c: Chunk<'_>| {
                    streamed = true;
                    on(c)
                };
                openai(http, base_url, api_key.as_ref(), route, messages, &mut tap).await
            }
            Backend::Command { program, args } => {
                return command(program, args, messages, env, on).await;
            }
        };
        let failure = match result {
            Ok(r) => return Ok(r),
            Err(f) if !f.retryable || streamed || attempt >= MAX_RETRIES => return Err(f),
            Err(f) => f,
        };
        attempt += 1;
        let backoff = retry_base()
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(MAX_RETRY_DELAY);
        let jitter = rand::random_range(0.75..1.25);
        let delay = failure
            .retry_after
            .unwrap_or_else(|| backoff.mul_f64(jitter))
            .min(MAX_RETRY_DELAY);
        if Instant::now() + delay >= deadline {
            return Err(failure);
        }
        on(Chunk::Retrying {
            attempt,
            delay,
            reason: failure.message.clone(),
        });
        tokio::time::sleep(delay).await;
    }
}

fn http_failure(status: u16, body: &[u8], route: &Route, retry_after: Option<Duration>) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let preview: Option<String> = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or(v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| {
            Some(String::from_utf8_lossy(body).trim().to_string()).filter(|s| !s.is_empty())
        })
        .map(|s| s.chars().take(200).collect());
    let context = preview
        .as_deref()
        .is_some_and(|p| p.contains("context_length") || p.contains("context length"));
    let (message, kind, failover, visible) = match status {
        400 if context => (
            "LLM request failed: the conversation is longer than the model's context window."
                .to_string(),
            "context_length",
            "context_overflow",
            format!("⚠️ LLM request failed (context length exceeded, HTTP {status})."),
        ),
        400 | 422 => (
            "LLM request failed: provider rejected the request schema or tool payload.".to_string(),
            "unknown",
            "format",
            format!("⚠️ LLM request failed (request format rejected, HTTP {status})."),
        ),
        401 | 403 => (
            format!(
                "LLM request failed: provider `{}` rejected the API key (HTTP {status}); check models.providers.{}.apiKey.",
                route.provider, route.provider
            ),
            "unknown",
            "auth",
            format!("⚠️ LLM request failed (authentication rejected, HTTP {status})."),
        ),
        404 => (
            format!(
                "LLM request failed: provider `{}` does not serve model `{}` (HTTP 404).",
                route.provider, route.model
            ),
            "unknown",
            "model_not_found",
            "⚠️ LLM request failed (model not found, HTTP 404).".to_string(),
        ),
        429 => (
            "LLM request failed: the provider is rate limiting requests (HTTP 429).".to_string(),
            "rate_limit",
            "rate_limit",
            "⚠️ LLM request failed (rate limited, HTTP 429). Try again shortly.".to_string(),
        ),
        s if s >= 500 => (
            format!(
                "LLM request failed (provider internal error, HTTP {s}). This is usually temporary — try again shortly."
            ),
            "unknown",
            "server_error",
            format!(
                "⚠️ LLM request failed (provider internal error, HTTP {s}). This is usually temporary — try again shortly."
            ),
        ),
        s => (
            format!("LLM request failed: the provider answered HTTP {s}."),
            "unknown",
            "unknown",
            format!("⚠️ LLM request failed (HTTP {s})."),
        ),
    };
    Failure {
        http_status: Some(status),
        preview,
        retryable: status == 429 || status >= 500,
        retry_after,
        ..Failure::new(message, kind, failover, visible)
    }
}

fn network_failure(base_url: &str, what: &str, e: &reqwest::Error) -> Failure {
    // reqwest's Display names the URL (never the key, which is a header).
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    let message = format!(
        "LLM request failed: {what} {base_url}: {}",
        if cause.is_empty() {
            e.to_string()
        } else {
            cause
        }
    );
    Failure {
        retryable: true,
        ..Failure::new(
            message,
            "unknown",
            "network",
            "⚠️ LLM request failed (provider unreachable).".into(),
        )
    }
}

async fn openai(
    http: &reqwest::Client,
    base_url: &str,
    api_key: Option<&Secret>,
    route: &Route,
    messages: &[Value],
    on: &mut (dyn FnMut(Chunk<'_>) + Send),
) -> Result<Reply, Failure> {
    use futures_util::StreamExt;
    let mut body = json!({
        "model": route.model,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": messages,
    });
    if let Some(n) = route.max_tokens {
        body["max_completion_tokens"] = n.into();
    }
    if let Some(level) = route
        .thinking
        .as_deref()
        .filter(|l| route.reasoning && ["minimal", "low", "medium", "high"].contains(l))
    {
        body["reasoning_effort"] = level.into();
    }
    let mut req = http
        .post(format!("{base_url}/chat/completions"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_string());
    if let Some(k) = api_key {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", k.expose()))
            .map_err(|_| {
                Failure::new(
                    format!(
                        "models.providers.{}.apiKey contains characters a header cannot carry",
                        route.provider
                    ),
                    "unknown",
                    "auth",
                    "⚠️ LLM request failed (invalid API key).".into(),
                )
            })?;
        v.set_sensitive(true);
        req = req.header("authorization", v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| network_failure(base_url, "cannot reach", &e))?;
    let status = resp.status().as_u16();
    if status >= 400 {
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(Ok(b)) = stream.next().await {
            body.extend_from_slice(&b);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
        return Err(http_failure(status, &body, route, retry_after));
    }
    let mut sse = Sse::default();
    let mut reply = Reply::default();
    let mut stream = resp.bytes_stream();
    let mut done = false;
    while !done {
        let Some(next) = stream.next().await else {
            break;
        };
        let bytes = next.map_err(|e| network_failure(base_url, "the stream broke from", &e))?;
        sse.push(&bytes);
        if sse.buf.len() > MAX_REPLY_BYTES * 2 {
            return Err(Failure::new(
                "LLM request failed: the provider sent an event larger than 2 MiB".into(),
                "unknown",
                "format",
                "⚠️ LLM request failed (malformed stream).".into(),
            ));
        }
        while let Some(data) = sse.next_data() {
            if data.trim() == "[DONE]" {
                done = true;
                break;
            }
            let Ok(v) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
                let msg = err["message"].as_str().unwrap_or("error in stream");
                return Err(Failure {
                    preview: Some(msg.chars().take(200).collect()),
                    ..Failure::new(
                        format!("LLM request failed: {msg}"),
                        "unknown",
                        "unknown",
                        format!("⚠️ LLM request failed: {msg}"),
                    )
                });
            }
            if reply.response_id.is_none() {
                reply.response_id = v["id"].as_str().map(str::to_string);
            }
            if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                reply.usage = Some(Usage {
                    input: u["prompt_tokens"].as_u64().unwrap_or(0),
                    output: u["completion_tokens"].as_u64().unwrap_or(0),
                });
            }
            let choice = &v["choices"][0];
            let delta = if choice["delta"].is_object() {
                &choice["delta"]
            } else {
                &choice["message"]
            };
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                if reply.text.len() + text.len() > MAX_REPLY_BYTES {
                    reply.finish = "length".into();
                    done = true;
                    break;
                }
                reply.text.push_str(text);
                on(Chunk::Text(text));
            }
            if let Some(refusal) = delta["refusal"].as_str().filter(|t| !t.is_empty()) {
                return Err(Failure::new(
                    format!("The model refused: {refusal}"),
                    "refusal",
                    "refusal",
                    format!("⚠️ {refusal}"),
                ));
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                reply.finish = f.to_string();
            }
        }
    }
    if reply.finish.is_empty() {
        return Err(Failure::new(
            "LLM request failed: Stream ended without finish_reason".into(),
            "unknown",
            "network",
            "⚠️ LLM request failed (the stream ended early).".into(),
        ));
    }
    Ok(reply)
}

/// Server-sent events: `data:` payloads, one per blank-line-terminated event.
#[derive(Debug, Default)]
struct Sse {
    buf: Vec<u8>,
}

impl Sse {
    fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn next_data(&mut self) -> Option<String> {
        loop {
            let end = self
                .buf
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
                .or_else(|| {
                    self.buf
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|i| (i, 4))
                })?;
            let block: Vec<u8> = self.buf.drain(..end.0 + end.1).collect();
            let text = String::from_utf8_lossy(&block[..end.0]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                return Some(data.join("\n"));
            }
        }
    }
}

/// Kills a command's process group unless it was reaped.
struct GroupKill(Option<nix::unistd::Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The command backend: the newest user message on stdin, the reply read
/// from stdout line by line (each line streamed as it comes); a non-zero
/// exit is a failure naming the last line of stderr. Dropping the future
/// (abort, timeout) kills the program's whole process group.
async fn command(
    program: &str,
    args: &[String],
    messages: &[Value],
    env: &[(&str, &str)],
    on: &mut (dyn FnMut(Chunk<'_>) + Send),
) -> Result<Reply, Failure> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let prompt = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let fail = |m: String| {
        Failure::new(
            m,
            "unknown",
            "command",
            "⚠️ The command backend failed.".into(),
        )
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run the command backend `{program}`: {e}")))?;
    let mut guard = GroupKill(child.id().map(|p| nix::unistd::Pid::from_raw(p as i32)));
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(prompt.as_bytes()).await;
        let _ = stdin.shutdown().await;
    });
    let errors = tokio::spawn(async move {
        let mut tail = Vec::new();
        let _ = (&mut stderr)
            .take(MAX_ERROR_BODY as u64)
            .read_to_end(&mut tail)
            .await;
        String::from_utf8_lossy(&tail).to_string()
    });
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut reply = Reply::default();
    let mut truncated = false;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| fail(format!("cannot read the output of `{program}`: {e}")))?
    {
        if truncated {
            continue;
        }
        let piece = if reply.text.is_empty() {
            line
        } else {
            format!("\n{line}")
        };
        if reply.text.len() + piece.len() > MAX_REPLY_BYTES {
            truncated = true;
            continue;
        }
        reply.text.push_str(&piece);
        on(Chunk::Text(&piece));
    }
    let status = child
        .wait()
        .await
        .map_err(|e| fail(format!("cannot wait for `{program}`: {e}")))?;
    guard.0 = None;
    let _ = writer.await;
    let stderr_text = errors.await.unwrap_or_default();
    if !status.success() {
        let last = stderr_text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message on stderr");
        return Err(fail(format!(
            "the command backend `{program}` failed ({status}): {last}"
        )));
    }
    reply.finish = if truncated { "length" } else { "stop" }.into();
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Value {
        json!({
            "models": {"providers": {
                "fakeai": {"baseUrl": "http://127.0.0.1:1/v1/", "apiKey": "sk-x",
                           "models": [{"id": "fake-model", "name": "Fake", "contextWindow": 32000, "maxTokens": 1024}]},
                "local": {"api": "command", "command": ["/bin/echo", "-n"], "args": ["hi"]},
                "odd": {"api": "anthropic-messages", "baseUrl": "http://x"}
            }},
            "agents": {"defaults": {"model": {"primary": "fakeai/fake-model"}}}
        })
    }

    #[test]
    fn models_resolve_from_openclaws_keys() {
        let r = resolve(&cfg(), None).unwrap();
        assert_eq!(r.reference(), "fakeai/fake-model");
        assert_eq!((r.context_window, r.max_tokens), (Some(32000), Some(1024)));
        let Backend::OpenAi { base_url, api_key } = &r.backend else {
            panic!()
        };
        assert_eq!(base_url, "http://127.0.0.1:1/v1");
        assert_eq!(api_key.as_ref().unwrap().expose(), "sk-x");
        assert!(!format!("{r:?}").contains("sk-x"), "the key never prints");
        let c = resolve(&cfg(), Some("local/any")).unwrap();
        let Backend::Command { program, args } = &c.backend else {
            panic!()
        };
        assert_eq!(
            (program.as_str(), args.clone()),
            ("/bin/echo", vec!["-n".to_string(), "hi".into()])
        );
        for (want, needle) in [
            ("nope/x", "no provider `nope`"),
            ("odd/x", "not supported"),
            ("noslash", "is not `<provider>/<model>`"),
        ] {
            let e = resolve(&cfg(), Some(want)).unwrap_err();
            assert!(e.contains(needle), "{want}: {e}");
        }
        assert!(
            resolve(&json!({}), None)
                .unwrap_err()
                .contains("agents.defaults.model.primary")
        );
    }

    #[test]
    fn sse_events_split_on_blank_lines_across_chunks() {
        let mut s = Sse::default();
        s.push(b"data: {\"a\":1}\n\nda");
        assert_eq!(s.next_data().as_deref(), Some("{\"a\":1}"));
        assert_eq!(s.next_data(), None);
        s.push(b"ta: [DONE]\r\n\r\n: comment\n\n");
        assert_eq!(s.next_data().as_deref(), Some("[DONE]"));
        assert_eq!(s.next_data(), None);
    }

    #[test]
    fn http_errors_map_to_what_clients_show() {
        let r = resolve(&cfg(), None).unwrap();
        let f = http_failure(400, br#"{"error":{"message":"bad"}}"#, &r, None);
        assert_eq!(
            f.message,
            "LLM request failed: provider rejected the request schema or tool payload."
        );
        assert_eq!(
            (f.failover, f.retryable, f.preview.as_deref()),
            ("format", false, Some("bad"))
        );
        let f = http_failure(500, b"", &r, None);
        assert!(f.retryable && f.message.contains("HTTP 500"));
        let f = http_failure(429, b"", &r, Some(Duration::from_secs(2)));
        assert_eq!(
            (f.kind, f.retry_after),
            ("rate_limit", Some(Duration::from_secs(2)))
        );
    }
}
