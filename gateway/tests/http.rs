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
        let (status, _, _) = get(addr, "GET", "/");
        assert_eq!(status, 404);
    })
    .await
    .unwrap();
}
