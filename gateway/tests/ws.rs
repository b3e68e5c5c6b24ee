//! The WebSocket handshake and requests, frame by frame.

use openclaw_gateway::settings::Auth;
use openclaw_profiles::config::Secret;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn cli_handshake_gets_a_schema_valid_hello_ok() {
    let gw = TestGateway::with_token().await;
    let (_ws, hello) = gw.connected().await;
    assert_eq!(hello["type"], "hello-ok");
    assert_eq!(hello["protocol"], 4);
    assert_eq!(hello["policy"]["tickIntervalMs"], 30000);
    assert_eq!(hello["policy"]["maxPayload"], 26_214_400);
    assert_eq!(hello["auth"]["role"], "operator");
    assert_eq!(hello["auth"]["scopes"], json!(["operator.read"]));
    assert_eq!(hello["snapshot"]["authMode"], "token");
    assert_eq!(
        hello["features"]["methods"],
        json!(*openclaw_gateway::methods::METHODS)
    );
    assert!(
        hello["server"]["version"]
            .as_str()
            .unwrap()
            .ends_with("-rust")
    );
}

#[tokio::test]
async fn health_answers_a_health_snapshot() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.connected().await;
    let res = call(&mut ws, "2:abc", "health", json!({})).await;
    assert_eq!(res["ok"], true, "{res}");
    let p = &res["payload"];
    assert_eq!(p["ok"], true);
    assert!(p["ts"].is_u64());
    assert_eq!(p["defaultAgentId"], "main");
    assert_eq!(p["agents"][0]["agentId"], "main");
    assert_eq!(p["channels"], json!({}));
    // a second request on the same socket works too
    let again = call(&mut ws, "3:abc", "health", json!(null)).await;
    assert_eq!(again["ok"], true);
}

#[tokio::test]
async fn unknown_method_gets_the_spec_error() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.connected().await;
    let res = call(&mut ws, "9", "no.such.method", json!({})).await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "unknown method: no.such.method");
}

#[tokio::test]
async fn wrong_token_is_refused_like_the_real_gateway() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    send(&mut ws, &connect_frame("1:x", cli_params(Some("WRONG")))).await;
    let res = recv(&mut ws).await;
    assert_eq!(res["ok"], false);
    let msg = "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)";
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], msg);
    assert_eq!(
        res["error"]["details"],
        json!({"code": "AUTH_TOKEN_MISMATCH", "authReason": "token_mismatch",
               "canRetryWithDeviceToken": false, "recommendedNextStep": "update_auth_credentials"})
    );
    assert_eq!(expect_close(&mut ws).await, (1008, msg.to_string()));
}

#[tokio::test]
async fn missing_token_is_refused() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    send(&mut ws, &connect_frame("1", cli_params(None))).await;
    let res = recv(&mut ws).await;
    assert_eq!(
        res["error"]["message"],
        "unauthorized: gateway token missing (provide gateway auth token)"
    );
    assert_eq!(res["error"]["details"]["code"], "AUTH_TOKEN_MISSING");
    assert_eq!(expect_close(&mut ws).await.0, 1008);
}

#[tokio::test]
async fn password_mode_checks_the_password() {
    let gw = TestGateway::start(Auth::Password(Secret::new("pw"))).await;
    let (mut ws, _) = gw.open().await;
    let mut p = cli_params(None);
    p["auth"] = json!({"password": "pw"});
    send(&mut ws, &connect_frame("1", p.clone())).await;
    assert_eq!(recv(&mut ws).await["ok"], true);
    let (mut ws, _) = gw.open().await;
    p["auth"] = json!({"password": "nope"});
    send(&mut ws, &connect_frame("1", p)).await;
    assert_eq!(
        recv(&mut ws).await["error"]["details"]["code"],
        "AUTH_PASSWORD_MISMATCH"
    );
}

#[tokio::test]
async fn auth_none_admits_loopback_clients() {
    let gw = TestGateway::start(Auth::None).await;
    let (mut ws, _) = gw.open().await;
    send(&mut ws, &connect_frame("1", cli_params(None))).await;
    let res = recv(&mut ws).await;
    assert_eq!(res["payload"]["snapshot"]["authMode"], "none");
}

#[tokio::test]
async fn first_frame_must_be_connect() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    send(
        &mut ws,
        &json!({"type": "req", "id": "1", "method": "health", "params": {}}),
    )
    .await;
    let res = recv(&mut ws).await;
    let msg = "invalid handshake: first request must be connect";
    assert_eq!(res["error"]["message"], msg);
    assert_eq!(expect_close(&mut ws).await, (1008, msg.to_string()));
}

#[tokio::test]
async fn non_json_first_frame_closes_the_socket() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    send_text(&mut ws, "hello?".into()).await;
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.starts_with("invalid request frame"), "{reason}");
}

#[tokio::test]
async fn malformed_connect_params_are_named() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    send(&mut ws, &connect_frame("1", json!({"minProtocol": "four"}))).await;
    let res = recv(&mut ws).await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid connect params: "),
        "{res}"
    );
    assert_eq!(expect_close(&mut ws).await.0, 1008);
}

#[tokio::test]
async fn protocol_mismatch_closes_with_1002() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    let mut p = cli_params(Some(TOKEN));
    p["minProtocol"] = json!(5);
    p["maxProtocol"] = json!(6);
    send(&mut ws, &connect_frame("1", p)).await;
    let res = recv(&mut ws).await;
    assert_eq!(res["error"]["message"], "protocol mismatch");
    assert_eq!(res["error"]["details"]["code"], "PROTOCOL_MISMATCH");
    assert_eq!(res["error"]["details"]["expectedProtocol"], 4);
    assert_eq!(
        expect_close(&mut ws).await,
        (1002, "protocol mismatch".to_string())
    );
}

#[tokio::test]
async fn probe_clients_may_offer_protocol_3() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    let mut p = cli_params(Some(TOKEN));
    p["minProtocol"] = json!(3);
    p["client"]["mode"] = json!("probe");
    p["client"]["version"] = json!("dev");
    send(&mut ws, &connect_frame("1", p)).await;
    assert_eq!(recv(&mut ws).await["ok"], true);
}

#[tokio::test]
async fn oversized_preauth_frame_closes_with_1009() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    let mut p = cli_params(Some(TOKEN));
    p["client"]["displayName"] = json!("x".repeat(70_000));
    send(&mut ws, &connect_frame("1", p)).await;
    assert_eq!(
        expect_close(&mut ws).await,
        (1009, "preauth payload too large".to_string())
    );
}

#[tokio::test]
async fn invalid_role_is_refused() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.open().await;
    let mut p = cli_params(Some(TOKEN));
    p["role"] = json!("admin");
    send(&mut ws, &connect_frame("1", p)).await;
    assert_eq!(recv(&mut ws).await["error"]["message"], "invalid role");
}

#[tokio::test]
async fn malformed_request_after_connect_gets_an_error_not_a_panic() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.connected().await;
    send(&mut ws, &json!({"type": "req", "id": "5", "method": 7})).await;
    let res = recv(&mut ws).await;
    assert_eq!(res["id"], "5");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request frame")
    );
    // still usable
    assert_eq!(call(&mut ws, "6", "health", json!({})).await["ok"], true);
}

#[tokio::test]
async fn stopping_sends_shutdown_then_closes_1012() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = gw.connected().await;
    gw.shutdown.cancel();
    let ev = recv(&mut ws).await;
    assert_eq!(ev["event"], "shutdown");
    assert_eq!(ev["seq"], 1);
    assert_eq!(
        expect_close(&mut ws).await,
        (1012, "service restart".to_string())
    );
    gw.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn ticks_arrive_on_the_advertised_interval_with_increasing_seq() {
    let gw = TestGateway::start_with_tick(
        Auth::Token(Secret::new(TOKEN)),
        std::time::Duration::from_millis(100),
    )
    .await;
    let (mut ws, hello) = gw.connected().await;
    assert_eq!(hello["policy"]["tickIntervalMs"], 100);
    // Every event counts in seq (its own arrival's `presence` too).
    let mut ticks = Vec::new();
    let mut seq = 0;
    while ticks.len() < 2 {
        let ev = recv(&mut ws).await;
        seq += 1;
        assert_eq!(ev["seq"].as_u64(), Some(seq), "{ev}");
        if ev["event"] == "tick" {
            ticks.push(ev);
        }
    }
    assert!(ticks[1]["payload"]["ts"].as_u64() >= ticks[0]["payload"]["ts"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_for_the_event_stream_sees_a_seq_gap() {
    use openclaw_gateway::server::Timers;
    let gw = TestGateway::start_full(
        Auth::Token(Secret::new(TOKEN)),
        Timers {
            // A health event every millisecond: far more than a socket
            // that is not read can take.
            health_refresh: std::time::Duration::from_millis(1),
            ..Timers::default()
        },
        |_| {},
    )
    .await;
    // A client socket with the smallest receive buffer, so that the
    // gateway's writes back up soon.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    let tcp = sock.connect(gw.addr).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(gw.url(), tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
    assert_eq!(recv(&mut ws).await["event"], "connect.challenge");
    send(
        &mut ws,
        &connect_frame(
            "1",
            with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
        ),
    )
    .await;
    assert_eq!(recv(&mut ws).await["ok"], true);
    // Do not read for a while: the socket's buffers fill, its receiver lags.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let mut last = 0u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ev = recv(&mut ws).await;
        let seq = ev["seq"].as_u64().unwrap();
        if seq > last + 1 {
            break; // the gap that tells the client it missed events
        }
        last = seq;
        assert!(
            std::time::Instant::now() < deadline,
            "no seq gap after {last} events"
        );
    }
}
