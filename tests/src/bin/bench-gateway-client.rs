//! Load client for `scripts/bench-gateway` (not a test): against one
//! gateway URL, measures WS connect → `hello-ok`, `health` round trips on
//! an open socket, and `health` throughput over many connections. Prints
//! one JSON document.
//!
//! usage: `bench-gateway-client <ws-url> <token> [connects] [round-trips] [connections] [seconds]`

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

async fn connect(url: &str, token: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let challenge = next_json(&mut ws).await;
    assert_eq!(challenge["event"], "connect.challenge");
    let params = json!({"minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "cli", "version": "bench", "platform": "linux", "mode": "cli"},
        "caps": [], "auth": {"token": token}, "role": "operator", "scopes": ["operator.read"]});
    ws.send(Message::Text(
        json!({"type": "req", "id": "c", "method": "connect", "params": params})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    loop {
        let f = next_json(&mut ws).await;
        if f["id"] == "c" {
            assert_eq!(f["ok"], true, "connect refused: {f}");
            return ws;
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
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
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut ws = connect(&url, &token).await;
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
