//! Load client for `scripts/bench-gateway` (not a test): against one
//! gateway URL, measures WS connect → `hello-ok`, `health` round trips on
//! an open socket, and `health` throughput over many connections. Prints
//! one JSON document.
//!
//! usage: `bench-gateway-client <ws-url> <token> [connects] [round-trips] [connections] [seconds]`
//!    or: `bench-gateway-client hold <ws-url> <token> <clients> <readers> <pid-file>`: opens
//!        `clients` idle authenticated connections (no scopes) plus `readers`
//!        with `operator.read` (they get the presence events), one after the
//!        other, reporting connect → hello-ok p50/p99 for the first 1,000 and
//!        the last 1,000; then writes its pid to `pid-file` and holds them
//!        until stdin closes, counting the presence events the readers got.
//!    or: `bench-gateway-client stream <ws-url> <token> <sessions> <chunks> <gap-ms>`: each
//!        session sends one `chat.send` that the fake provider answers with
//!        `chunks` chunks stamped with their send time; reports each delta's
//!        way from the provider to this client (median, p99).
//!    or: `bench-gateway-client invoke <ws-url> <token> <count>`: waits for a
//!        connected node, approves its surface if it waits for that, then
//!        times `count` `node.invoke system.which` round trips one after
//!        the other (median, p99).
//!    or: `bench-gateway-client canvas <host:port> <token> <path> <clients> <seconds>`:
//!        `clients` keep-alive connections GET `path` with the Bearer token
//!        as fast as they can; prints requests per second and bytes.
//!    or: `bench-gateway-client direct <base-url> <chunks> <gap-ms>`: the same
//!        chunks read straight from the fake provider (no gateway).
//!    or: `bench-gateway-client relay <base-url>`: a bare TCP relay in front
//!        of the fake provider (`direct` through it is the floor of one
//!        more process hop).
//!    or: `bench-gateway-client floor`: a bare WebSocket server with the
//!        gateway's runtime shape that does no work: it sends a challenge,
//!        reads one frame, answers with a `hello-ok`-sized frame, then
//!        answers every frame with a `res` of the same id. The main mode
//!        run against it is this machine's floor for the same handshake and
//!        round trip. Prints its URL; serves until stdin closes.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("json frame"),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

async fn send_req(ws: &mut Ws, id: &str, method: &str, params: Value) {
    let frame = json!({"type": "req", "id": id, "method": method, "params": params});
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The `p` quantile of sorted microsecond figures (0 when empty).
fn quantile_us(sorted: &[u64], p: f64) -> u64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

async fn connect(url: &str, token: &str) -> Ws {
    connect_with(url, token, &["operator.read"]).await
}

async fn connect_with(url: &str, token: &str, scopes: &[&str]) -> Ws {
    // A gateway that says it is still starting (retryable) is asked again,
    // as its clients do; for at most a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match try_connect(url, token, scopes).await {
            Ok(ws) => return ws,
            Err(f) if f["error"]["retryable"] == true && Instant::now() < deadline => {
                let ms = f["error"]["retryAfterMs"].as_u64().unwrap_or(500);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(f) => panic!("connect refused: {f}"),
        }
    }
}

async fn try_connect(url: &str, token: &str, scopes: &[&str]) -> Result<Ws, Value> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let challenge = next_json(&mut ws).await;
    assert_eq!(challenge["event"], "connect.challenge");
    let params = json!({"minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "cli", "version": "bench", "platform": "linux", "mode": "cli"},
        "caps": [], "auth": {"token": token}, "role": "operator", "scopes": scopes});
    send_req(&mut ws, "c", "connect", params).await;
    loop {
        let f = next_json(&mut ws).await;
        if f["id"] == "c" {
            return if f["ok"] == true { Ok(ws) } else { Err(f) };
        }
    }
}

async fn health(ws: &mut Ws, id: u64) {
    let id = id.to_string();
    ws.send(Message::Text(
        json!({"type": "req", "id": id, "method": "health", "params": {}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    loop {
        let f = next_json(ws).await;
        if f["type"] == "res" && f["id"] == id.as_str() {
            return;
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// One session's streamed turn: the latency of each delta (µs from the
/// fake provider's stamp to this client's receipt) and whether it ended
/// with `final`.
async fn streamed_turn(mut ws: Ws, i: usize, chunks: usize, gap_ms: u64) -> (Vec<u64>, bool) {
    let run = format!("bench-run-{i}-{}", unix_micros());
    let params = json!({"sessionKey": format!("bench-{i}"), "message": format!("stamp:{chunks}:{gap_ms}"),
        "deliver": false, "idempotencyKey": run});
    send_req(&mut ws, "s", "chat.send", params).await;
    let mut lat = Vec::with_capacity(chunks);
    loop {
        let f = next_json(&mut ws).await;
        if f["event"] != "chat" || f["payload"]["runId"] != run.as_str() {
            continue;
        }
        let now = unix_micros();
        match f["payload"]["state"].as_str() {
            Some("delta") => {
                // Each delta's newest stamp is the chunk that caused it.
                if let Some(sent) = f["payload"]["deltaText"]
                    .as_str()
                    .and_then(|t| t.split_whitespace().next_back())
                    .and_then(|w| w.strip_prefix('t'))
                    .and_then(|w| w.parse::<u128>().ok())
                {
                    lat.push(now.saturating_sub(sent) as u64);
                }
            }
            Some("final") => return (lat, true),
            Some("error" | "aborted") => {
                eprintln!("turn {run} ended: {}", f["payload"]);
                return (lat, false);
            }
            _ => {}
        }
    }
}

/// `stream <url> <token> <sessions> <chunks> <gap-ms>`: every session
/// streams one reply of `chunks` stamped chunks at once; prints the
/// per-delta latency median and p99, and how many turns completed.
async fn stream(args: &[String]) {
    let (url, token) = (args[2].clone(), args[3].clone());
    let sessions: usize = args[4].parse().expect("sessions");
    let chunks: usize = args[5].parse().expect("chunks");
    let gap: u64 = args[6].parse().expect("gap ms");
    // Connected one after the other (a burst of connects would meet the
    // gateways' caps on unauthenticated sockets), then all stream at once.
    let mut sockets = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        sockets.push(connect_with(&url, &token, &["operator.write"]).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(streamed_turn(ws, i, chunks, gap)))
        .collect();
    let mut all = Vec::new();
    let mut completed = 0;
    for t in tasks {
        let (lat, ok) = t.await.expect("session task");
        all.extend(lat);
        completed += usize::from(ok);
    }
    all.sort_unstable();
    let pct = |p| quantile_us(&all, p);
    println!(
        "{}",
        json!({"sessions": sessions, "completed": completed, "deltas": all.len(),
               "deltaUsMedian": pct(0.5), "deltaUsP99": pct(0.99),
               "elapsedMs": started.elapsed().as_millis() as u64})
    );
}

/// `direct <base-url> <chunks> <gap-ms>`: the baseline without a gateway:
/// reads the fake provider's SSE stream itself and reports each chunk's
/// latency the same way (median, p99), so that the gateway's own share is
/// the difference.
async fn direct(args: &[String]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = args[2]
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let (chunks, gap): (usize, u64) = (args[3].parse().unwrap(), args[4].parse().unwrap());
    let body =
        json!({"model": "fake-model", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": format!("stamp:{chunks}:{gap}")}]})
        .to_string();
    let mut s = tokio::net::TcpStream::connect(&base).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {base}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16384];
    let mut lat = Vec::new();
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        let now = unix_micros();
        buf.extend_from_slice(&chunk[..n]);
        while let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..i + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if let Some(sent) = v["choices"][0]["delta"]["content"]
                .as_str()
                .and_then(|t| t.trim().strip_prefix('t'))
                .and_then(|t| t.parse::<u128>().ok())
            {
                lat.push(now.saturating_sub(sent) as u64);
            }
        }
    }
    lat.sort_unstable();
    let pct = |p| quantile_us(&lat, p);
    println!(
        "{}",
        json!({"chunks": lat.len(), "deltaUsMedian": pct(0.5), "deltaUsP99": pct(0.99)})
    );
}

/// `relay <base-url>`: a bare TCP relay in front of the fake provider (the
/// floor for any process between provider and client: one more hop, no
/// work); prints its own base URL and spawns the relay.
async fn relay(args: &[String]) {
    let upstream = args[2]
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
}

/// `floor`: see the module docs. The frames have the sizes of ours
/// (challenge ~130 bytes, hello-ok ~1.9 KB).
async fn floor() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let challenge = json!({"type": "event", "event": "connect.challenge",
                    "payload": {"nonce": "0123456789abcdef0123456789abcdef", "ts": unix_micros() as u64 / 1000}});
                if ws
                    .send(Message::Text(challenge.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
                let mut hello = true;
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(t) = msg else { continue };
                    let f: Value = serde_json::from_str(&t).unwrap_or_default();
                    let payload = if hello {
                        hello = false;
                        json!({"type": "hello-ok", "protocol": 4, "padding": "x".repeat(1800)})
                    } else {
                        json!({"ok": true, "ts": unix_micros() as u64 / 1000})
                    };
                    let res = json!({"type": "res", "id": f["id"], "ok": true, "payload": payload});
                    if ws
                        .send(Message::Text(res.to_string().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

/// A request and its answer (events pass by).
async fn rpc(ws: &mut Ws, id: &str, method: &str, params: Value) -> Value {
    send_req(ws, id, method, params).await;
    loop {
        let f = next_json(ws).await;
        if f["type"] == "res" && f["id"] == id {
            return f;
        }
    }
}

/// The `canvas` mode; see the module docs.
async fn canvas(args: &[String]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, token, path) = (args[2].clone(), args[3].clone(), args[4].clone());
    let clients: usize = args[5].parse().expect("clients");
    let secs: u64 = args[6].parse().expect("seconds");
    let until = Instant::now() + Duration::from_secs(secs);
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, req) = (addr.clone(), req.clone());
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(&addr)
                    .await
                    .expect("connect");
                s.set_nodelay(true).unwrap();
                let (mut done, mut bytes) = (0u64, 0u64);
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut chunk = vec![0u8; 64 * 1024];
                while Instant::now() < until {
                    s.write_all(req.as_bytes()).await.expect("write");
                    buf.clear();
                    // Headers, then Content-Length bytes of body.
                    let (head_end, len) = loop {
                        let n = s.read(&mut chunk).await.expect("read");
                        assert!(n > 0, "the server closed the connection");
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            assert!(head.starts_with("http/1.1 200"), "{head}");
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .expect("content-length");
                            break (i + 4, len);
                        }
                    };
                    while buf.len() < head_end + len {
                        let n = s.read(&mut chunk).await.expect("read");
                        assert!(n > 0, "the server closed the connection");
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    done += 1;
                    bytes += len as u64;
                }
                (done, bytes)
            })
        })
        .collect();
    let (mut done, mut bytes) = (0u64, 0u64);
    for t in tasks {
        let (d, b) = t.await.unwrap();
        done += d;
        bytes += b;
    }
    println!(
        "{}",
        json!({"clients": clients, "requests": done, "rps": done / secs.max(1), "mbPerSec": bytes as f64 / 1e6 / secs.max(1) as f64})
    );
}

/// The `invoke` mode; see the module docs.
async fn invoke(args: &[String]) {
    let (url, token) = (args[2].clone(), args[3].clone());
    let count: usize = args[4].parse().expect("count");
    let mut ws = connect_with(&url, &token, &["operator.admin"]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 0u64;
    let mut id = || {
        n += 1;
        format!("b{n}")
    };
    let node = loop {
        assert!(
            Instant::now() < deadline,
            "no approved node connected within 120 s"
        );
        let list = rpc(&mut ws, &id(), "node.list", json!({})).await;
        let row = list["payload"]["nodes"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["connected"] == true).cloned());
        match row {
            Some(r) if r["approvalState"] == "approved" => {
                break r["nodeId"].as_str().unwrap().to_string();
            }
            Some(_) => {
                let pending = rpc(&mut ws, &id(), "node.pair.list", json!({})).await;
                if let Some(req) = pending["payload"]["pending"][0]["requestId"].as_str() {
                    rpc(
                        &mut ws,
                        &id(),
                        "node.pair.approve",
                        json!({"requestId": req}),
                    )
                    .await;
                }
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let one = async |ws: &mut Ws, rid: String| -> u64 {
        let t = Instant::now();
        let r = rpc(
            ws,
            &rid,
            "node.invoke",
            json!({
                "nodeId": node, "command": "system.which", "params": {"bins": ["sh"]},
                "idempotencyKey": format!("bench-{rid}"), "timeoutMs": 10_000,
            }),
        )
        .await;
        assert_eq!(r["ok"], true, "invoke failed: {r}");
        t.elapsed().as_micros() as u64
    };
    for _ in 0..20 {
        one(&mut ws, id()).await;
    }
    let started = Instant::now();
    let mut lat = Vec::with_capacity(count);
    for _ in 0..count {
        lat.push(one(&mut ws, id()).await);
    }
    lat.sort_unstable();
    println!(
        "{}",
        json!({"invokes": count, "medianUs": quantile_us(&lat, 0.5), "p99Us": quantile_us(&lat, 0.99),
               "elapsedMs": started.elapsed().as_millis() as u64})
    );
}

/// The `hold` mode; see the module docs.
async fn hold(args: &[String]) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (url, token) = (args[2].clone(), args[3].clone());
    let clients: usize = args[4].parse().expect("clients");
    let readers: usize = args[5].parse().expect("readers");
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let events = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut held = Vec::with_capacity(clients + readers);
    let mut ms = Vec::with_capacity(clients);
    for i in 0..clients + readers {
        let reader = i >= clients;
        let scopes: &[&str] = if reader { &["operator.read"] } else { &[] };
        let t = Instant::now();
        let mut ws = connect_with(&url, &token, scopes).await;
        if !reader {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let events = events.clone();
        held.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if reader
                    && let Message::Text(t) = m
                    && t.contains(r#""event":"presence""#)
                {
                    events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    let k = ms.len().min(1000);
    let (mut first, mut last) = (ms[..k].to_vec(), ms[ms.len() - k..].to_vec());
    println!(
        "{}",
        json!({
            "clients": clients,
            "readers": readers,
            "connectMsP50First1k": percentile(&mut first, 0.5),
            "connectMsP99First1k": percentile(&mut first, 0.99),
            "connectMsP50Last1k": percentile(&mut last, 0.5),
            "connectMsP99Last1k": percentile(&mut last, 0.99),
        })
    );
    std::fs::write(&args[6], std::process::id().to_string()).expect("pid file");
    // Hold until told to go (stdin closes).
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
    eprintln!(
        "presence events seen by {readers} readers: {}",
        events.load(std::sync::atomic::Ordering::Relaxed)
    );
    for h in held {
        h.abort();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode @ ("relay" | "floor")) = args.get(1).map(String::as_str) {
        // The gateway's runtime shape (two workers), so that the hop costs
        // what any process in the middle costs.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        if mode == "relay" {
            rt.block_on(relay(&args));
        } else {
            rt.block_on(floor());
        }
        // Serves until stdin closes.
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        return;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(client_main(args));
}

async fn client_main(args: Vec<String>) {
    if args.get(1).map(String::as_str) == Some("direct") {
        direct(&args).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("stream") {
        stream(&args).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("canvas") {
        canvas(&args).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("invoke") {
        invoke(&args).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("hold") {
        hold(&args).await;
        return;
    }
    let (url, token) = (args[1].clone(), args[2].clone());
    let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (connects, rtts, conns, secs) = (n(3, 50), n(4, 2000), n(5, 64), n(6, 5));

    let mut connect_ms = Vec::new();
    for _ in 0..connects {
        let t = Instant::now();
        let ws = connect(&url, &token).await;
        connect_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(ws);
    }
    let mut ws = connect(&url, &token).await;
    for i in 0..20 {
        health(&mut ws, i).await; // warm up
    }
    let mut rtt_us = Vec::new();
    for i in 0..rtts {
        let t = Instant::now();
        health(&mut ws, 100 + i).await;
        rtt_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // Connected one after the other first (a gateway may cap sockets that
    // have not authenticated), then loaded all at once.
    let mut sockets = Vec::new();
    for _ in 0..conns {
        sockets.push(connect(&url, &token).await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (c, mut ws) in (0u64..).zip(sockets) {
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                health(&mut ws, c * 1_000_000 + done).await;
                done += 1;
            }
            done
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "connectHelloMsMedian": median(connect_ms),
            "healthRttUsMedian": median(rtt_us),
            "healthPerSec": total as f64 / elapsed,
            "connections": conns,
        })
    );
}
