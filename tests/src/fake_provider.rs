//! A fake model provider speaking the OpenAI chat-completions wire
//! (`agent.md` "Fake provider surface"): `POST /v1/chat/completions`
//! streaming SSE (or one JSON answer), `GET /v1/models`, on 127.0.0.1 at a
//! port the OS picks. Every request is recorded.
//!
//! The reply is `Hello from the fake provider. You said: <user text>`, one
//! chunk per word. Words in the user text change that:
//! - `slow`: 30 chunks (`tick0 ` … `tick29 `) one second apart;
//! - `boom400` / `boom500`: HTTP 400 / 500 with an OpenAI error body;
//! - `boom429`: HTTP 429 with `Retry-After: 1`;
//! - `stamp:<n>:<gap_ms>`: `n` chunks `t<unix µs> ` sent `gap_ms` apart (the
//!   benchmark measures each chunk's way to the client from its stamp);
//! - `cut`: two chunks, then the connection closes without `[DONE]`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`, `GET`.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` when none).
    pub body: Value,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    disconnects: AtomicU64,
}

/// A running fake provider; stops when dropped.
#[derive(Debug)]
pub struct FakeProvider {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeProvider {
    /// Starts on 127.0.0.1 at an OS-chosen port.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0")
    }

    /// Starts on `addr`.
    pub fn start_on(addr: &str) -> Self {
        let std_listener = std::net::TcpListener::bind(addr).expect("bind the fake provider");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s2 = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((sock, _)) = listener.accept().await else {
                            continue;
                        };
                        let s = s2.clone();
                        tokio::spawn(async move {
                            let _ = serve(sock, s).await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>/v1`, the provider's `baseUrl`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// `POST /v1/chat/completions` requests so far.
    pub fn completions(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/chat/completions"))
            .collect()
    }

    /// Streams the client closed before the fake finished.
    pub fn disconnects(&self) -> u64 {
        self.shared.disconnects.load(Relaxed)
    }

    /// The `models.providers` / `agents.defaults` config using this fake as
    /// provider `fakeai`, model `fake-model` (as `agent.md` §0 did).
    pub fn config(&self) -> Value {
        json!({
            "models": {"mode": "merge", "providers": {"fakeai": {
                "baseUrl": self.base_url(), "apiKey": "sk-fake-local", "api": "openai-completions",
                "models": [{"id": "fake-model", "name": "Fake Model", "reasoning": false, "input": ["text"],
                            "contextWindow": 32000, "maxTokens": 1024}]
            }}},
            "agents": {"defaults": {"model": {"primary": "fakeai/fake-model"}}}
        })
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the human typed: the last user message with string content,
/// without OpenClaw's `[…] ` stamp, `Conversation info:` block and
/// `Runtime:` tail.
pub fn last_user_text(body: &Value) -> String {
    let text = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m["role"] == "user" && m["content"].is_string())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let mut t = text.to_string();
    if t.starts_with('[')
        && let Some(i) = t.find("] ")
    {
        t = t[i + 2..].to_string();
    }
    if t.starts_with("Conversation info:")
        && let Some(i) = t.find("```\n\n")
    {
        t = t[i + 5..].to_string();
    }
    if let Some(i) = t.find("\n\nRuntime:") {
        t.truncate(i);
    }
    t.trim().to_string()
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

async fn serve(sock: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut reader = BufReader::new(sock);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_lowercase(), v.trim().to_string());
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; len.min(64 << 20)];
    reader.read_exact(&mut body).await?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        headers,
        body: body.clone(),
    });
    let mut sock = reader.into_inner();
    if method == "GET" && path.ends_with("/models") {
        let b = json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]});
        return respond(&mut sock, 200, &[], &b.to_string()).await;
    }
    if method != "POST" || !path.ends_with("/chat/completions") {
        return respond(&mut sock, 404, &[], r#"{"error":{"message":"not found"}}"#).await;
    }
    let said = last_user_text(&body);
    if said.contains("boom400") {
        let b = r#"{"error":{"message":"fake provider rejected the request","type":"invalid_request_error","code":"fake_rejected"}}"#;
        return respond(&mut sock, 400, &[], b).await;
    }
    if said.contains("boom500") {
        return respond(
            &mut sock,
            500,
            &[],
            r#"{"error":{"message":"fake provider failure","type":"server_error"}}"#,
        )
        .await;
    }
    if said.contains("boom429") {
        return respond(
            &mut sock,
            429,
            &[("retry-after", "1")],
            r#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
        )
        .await;
    }
    let stamp = said.split_whitespace().find_map(|w| {
        let mut it = w.strip_prefix("stamp:")?.split(':');
        Some((
            it.next()?.parse::<usize>().ok()?,
            it.next()?.parse::<u64>().ok()?,
        ))
    });
    let (words, gap): (Vec<String>, Duration) = if said.contains("slow") {
        (
            (0..30).map(|i| format!("tick{i} ")).collect(),
            Duration::from_secs(1),
        )
    } else if let Some((n, gap)) = stamp {
        (
            (0..n).map(|_| String::new()).collect(),
            Duration::from_millis(gap),
        )
    } else {
        let reply = format!("Hello from the fake provider. You said: {said}");
        let ws: Vec<&str> = reply.split(' ').collect();
        let last = ws.len() - 1;
        let words = ws
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == last {
                    w.to_string()
                } else {
                    format!("{w} ")
                }
            })
            .collect();
        (words, Duration::ZERO)
    };
    let completion_tokens = words.len();
    if body["stream"] != true {
        let text: String = words.concat();
        let b = json!({"id": "chatcmpl-fake-1", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens, "total_tokens": 10 + completion_tokens}});
        return respond(&mut sock, 200, &[], &b.to_string()).await;
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
    sock.write_all(head.as_bytes()).await?;
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-fake-1", "object": "chat.completion.chunk", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut sent = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let cut = said.contains("cut");
    for (i, w) in words.iter().enumerate() {
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        let text = if stamp.is_some() {
            format!("t{} ", unix_micros())
        } else {
            w.clone()
        };
        sent.push_str(&chunk(json!({"content": text}), Value::Null));
        if sock.write_all(sent.as_bytes()).await.is_err() {
            shared.disconnects.fetch_add(1, Relaxed);
            return Ok(());
        }
        sent.clear();
        if cut && i == 1 {
            return Ok(());
        }
    }
    sent.push_str(&chunk(json!({}), json!("stop")));
    if body["stream_options"]["include_usage"] == true {
        let u = json!({"id": "chatcmpl-fake-1", "object": "chat.completion.chunk", "created": 0, "model": "fake-model",
            "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens, "total_tokens": 10 + completion_tokens}});
        sent.push_str(&format!("data: {u}\n\n"));
    }
    sent.push_str("data: [DONE]\n\n");
    if sock.write_all(sent.as_bytes()).await.is_err() {
        shared.disconnects.fetch_add(1, Relaxed);
    }
    let _ = sock.shutdown().await;
    Ok(())
}

async fn respond(
    sock: &mut TcpStream,
    status: u16,
    extra: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.shutdown().await
}
