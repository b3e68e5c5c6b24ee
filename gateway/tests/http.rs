//! The HTTP probes on the gateway port.

use std::io::{Read, Write};

use openclaw_gateway::settings::Auth;

use crate::support::TestGateway;

fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let resp = raw(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_get_and_head_and_refuse_other_methods() {
    let gw = TestGateway::start(Auth::None).await;
    let addr = gw.addr;
    tokio::task::spawn_blocking(move || {
        for path in ["/health", "/healthz"] {
            let (status, head, body) = get(addr, "GET", path);
            assert_eq!(status, 200);
            assert!(head.contains("content-type: application/json"));
            assert_eq!(body, r#"{"ok":true,"status":"live"}"#);
            let (status, _, body) = get(addr, "HEAD", path);
            assert_eq!((status, body.as_str()), (200, ""));
        }
        for path in ["/ready", "/readyz"] {
            let (status, _, body) = get(addr, "GET", path);
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["ready"], true);
            assert!(v["uptimeMs"].is_u64(), "local callers get details: {v}");
        }
        let (status, head, _) = get(addr, "POST", "/healthz");
        assert_eq!(status, 405);
        assert!(head.contains("allow: get,head"), "{head}");
        // A browser at `/` gets the web chat page; nothing else is there.
        let (status, head, body) = get(addr, "GET", "/");
        assert_eq!(status, 200);
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        assert!(body.contains("<title>OpenClaw web chat</title>"));
        let (status, _, _) = get(addr, "GET", "/nothing-here");
        assert_eq!(status, 404);
    })
    .await
    .unwrap();
}

/// Reads until EOF (or an error), bounded by `limit`; what was read.
fn read_until_closed(s: &mut std::net::TcpStream, limit: std::time::Duration) -> Option<String> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Some(String::from_utf8_lossy(&out).into_owned())
        }
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_closed_at_the_header_deadline() {
    use openclaw_gateway::server::Timers;
    let gw = TestGateway::start_full(
        Auth::None,
        Timers {
            header_read: std::time::Duration::from_millis(300),
            ..Timers::default()
        },
        |_| {},
    )
    .await;
    let addr = gw.addr;
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let got = read_until_closed(&mut s, std::time::Duration::from_secs(10));
        assert!(got.is_some(), "the gateway kept a half-sent request open");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_past_the_preauth_cap_are_shed_and_authenticated_clients_do_not_count() {
    use openclaw_gateway::server::Timers;
    let gw = TestGateway::start_full(
        openclaw_gateway::settings::Auth::Token(openclaw_profiles::config::Secret::new(
            crate::support::TOKEN,
        )),
        Timers {
            preauth_caps: (2, 2),
            ..Timers::default()
        },
        |_| {},
    )
    .await;
    let addr = gw.addr;
    // Two authenticated clients hold no pre-auth slot...
    let (_a, _) = gw.connected().await;
    let (_b, _) = gw.connected().await;
    // ...so two strangers fit, and the third is shed with a 503 at once.
    let strangers = tokio::task::spawn_blocking(move || {
        let one = std::net::TcpStream::connect(addr).unwrap();
        let two = std::net::TcpStream::connect(addr).unwrap();
        let mut three = std::net::TcpStream::connect(addr).unwrap();
        let mut answer = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !answer.contains("503") && std::time::Instant::now() < deadline {
            answer = read_until_closed(&mut three, std::time::Duration::from_secs(10))
                .unwrap_or_default();
            if !answer.contains("503") {
                three = std::net::TcpStream::connect(addr).unwrap();
            }
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        (one, two)
    })
    .await
    .unwrap();
    drop(strangers);
    // Once they leave, a client gets in again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ok = tokio_tungstenite::connect_async(gw.url()).await.is_ok();
        if ok {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slots never freed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_announcing_a_huge_frame_is_cut_off_from_the_header() {
    use openclaw_gateway::server::Timers;
    let gw = TestGateway::start_full(
        Auth::None,
        Timers {
            // Long, so that only the frame limit can end the connection.
            handshake: std::time::Duration::from_secs(120),
            ..Timers::default()
        },
        |_| {},
    )
    .await;
    let addr = gw.addr;
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        // A masked text frame announcing 24 MB, then 1 KiB of it, then silence.
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend_from_slice(&(24u64 * 1024 * 1024).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.extend(std::iter::repeat_n(b'x', 1024));
        s.write_all(&frame).unwrap();
        let got = read_until_closed(&mut s, std::time::Duration::from_secs(10));
        assert!(got.is_some(), "the connection stayed open");
    })
    .await
    .unwrap();
    // Others are served as ever.
    let (_ws, _) = gw.open().await;
}
