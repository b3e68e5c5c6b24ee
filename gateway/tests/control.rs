//! Scopes, the read methods, presence events, device identity with device
//! tokens, and `device.pair.*`, over a real WebSocket.

use ed25519_dalek::Signer;
use openclaw_e2e::schema::check_def;
use openclaw_gateway::identity::{SignedFields, device_id_of, encode_b64, payload_v3};
use serde_json::{Value, json};

use crate::support::*;

pub(crate) async fn connect_as(gw: &TestGateway, params: Value) -> (Ws, Value) {
    let (mut ws, _) = gw.open().await;
    send(&mut ws, &connect_frame("1", params)).await;
    let res = recv(&mut ws).await;
    (ws, res)
}

#[tokio::test]
async fn a_device_less_probe_loses_its_scopes_but_health_still_works() {
    let gw = TestGateway::with_token().await;
    let mut p = cli_params(Some(TOKEN));
    p["minProtocol"] = json!(3);
    p["client"]["mode"] = json!("probe");
    let (mut ws, res) = connect_as(&gw, p).await;
    assert_eq!(res["payload"]["auth"]["scopes"], json!([]));
    assert_eq!(call(&mut ws, "2", "health", json!(null)).await["ok"], true);
    let denied = call(&mut ws, "3", "status", json!(null)).await;
    assert_eq!(denied["error"]["code"], "FORBIDDEN");
    assert_eq!(denied["error"]["message"], "missing scope: operator.read");
    assert_eq!(
        denied["error"]["details"],
        json!({"code": "MISSING_SCOPE", "missingScope": "operator.read", "requiredScopes": ["operator.read"]})
    );
}

#[tokio::test]
async fn read_methods_answer_in_their_schema_shapes() {
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    let status = call(
        &mut ws,
        "2",
        "status",
        json!({"includeCliProjection": true}),
    )
    .await;
    let st = &status["payload"];
    assert!(
        st["runtimeVersion"].as_str().unwrap().ends_with("-rust"),
        "{st}"
    );
    assert_eq!(st["tasks"]["byStatus"]["running"], 0);
    assert_eq!(
        st["sessions"]["byAgent"][0]["path"], "[redacted]",
        "paths only for admin"
    );
    assert_eq!(st["cliProjection"]["agents"]["defaultId"], "main");

    let presence = call(&mut ws, "3", "system-presence", json!({})).await;
    let list = presence["payload"].as_array().unwrap();
    assert_eq!(list[0]["reason"], "self");
    assert!(
        list.iter()
            .any(|e| e["mode"] == "cli" && e["reason"] == "connect"),
        "{presence}"
    );
    for e in list {
        check_def("PresenceEntry", e);
    }

    let logs = call(&mut ws, "4", "logs.tail", json!({"limit": 10})).await;
    check_def("LogsTailResult", &logs["payload"]);
    let channels = call(&mut ws, "5", "channels.status", json!({})).await;
    check_def("ChannelsStatusResult", &channels["payload"]);
    assert_eq!(
        call(&mut ws, "6", "last-heartbeat", json!({})).await["payload"],
        Value::Null
    );
    let bad = call(&mut ws, "7", "logs.tail", json!({"limit": 0})).await;
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid logs.tail params"),
        "{bad}"
    );
}

#[tokio::test]
async fn config_get_redacts_secrets() {
    let gw = TestGateway::with_token_seeded(|dir| {
        std::fs::write(
            dir.join("openclaw.json"),
            r#"{ gateway: { mode: "local", auth: { token: "very-secret" } }, channels: { telegram: { botToken: "123:bot-secret" } } }"#,
        )
        .unwrap();
    })
    .await;
    let (mut ws, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    let cfg = call(&mut ws, "2", "config.get", json!({})).await;
    let text = cfg.to_string();
    assert!(
        !text.contains("very-secret") && !text.contains("bot-secret"),
        "{text}"
    );
    assert_eq!(
        cfg["payload"]["config"]["gateway"]["auth"]["token"],
        "__OPENCLAW_REDACTED__"
    );
    assert_eq!(cfg["payload"]["valid"], true);
    assert!(cfg["payload"]["hash"].as_str().unwrap().len() == 64);
    // The config goes out once, not once per view.
    assert_eq!(text.matches("123:").count(), 0);
    assert_eq!(text.matches("\"telegram\"").count(), 1, "{text}");
    assert_eq!(
        cfg["payload"]["runtimeConfig"]["gateway"]["mode"], "local",
        "{text}"
    );
}

#[tokio::test]
async fn a_config_too_large_for_a_frame_is_not_sent() {
    let gw = TestGateway::with_token_seeded(|dir| {
        let big = "x".repeat(14 * 1024 * 1024);
        std::fs::write(
            dir.join("openclaw.json"),
            format!(r#"{{ gateway: {{ mode: "local" }}, notes: "{big}" }}"#),
        )
        .unwrap();
    })
    .await;
    let (mut ws, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    let cfg = call(&mut ws, "2", "config.get", json!({})).await;
    assert_eq!(cfg["ok"], true);
    assert_eq!(cfg["payload"]["config"], Value::Null);
    assert!(
        cfg["payload"]["warnings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too large to send"),
        "{}",
        cfg["payload"]["warnings"]
    );
    assert!(cfg.to_string().len() < 100_000);
}

/// Answers past 64 KiB take the 8-byte length of a WebSocket frame header
/// (our frames are written without tungstenite's buffer): they arrive
/// whole, and the socket goes on.
#[tokio::test]
async fn an_answer_larger_than_64_kib_arrives_whole() {
    let notes = "y".repeat(300_000);
    let seeded = notes.clone();
    let gw = TestGateway::with_token_seeded(move |dir| {
        std::fs::write(
            dir.join("openclaw.json"),
            format!(r#"{{ gateway: {{ mode: "local" }}, notes: "{seeded}" }}"#),
        )
        .unwrap();
    })
    .await;
    let (mut ws, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    for id in ["2", "3"] {
        let cfg = call(&mut ws, id, "config.get", json!({})).await;
        assert_eq!(cfg["payload"]["config"]["notes"], notes.as_str());
    }
    let health = call(&mut ws, "4", "health", json!({})).await;
    assert_eq!(health["ok"], true);
}

#[tokio::test]
async fn logs_tail_follows_with_a_cursor() {
    let gw = TestGateway::with_token().await;
    let log = gw.state_dir().join("logs/gateway.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "one\ntwo\nthree\n").unwrap();
    let (mut ws, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    let first = call(&mut ws, "2", "logs.tail", json!({"limit": 2})).await["payload"].clone();
    assert_eq!(first["lines"], json!(["two", "three"]));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, b"four\n").unwrap();
    let next = call(
        &mut ws,
        "3",
        "logs.tail",
        json!({"cursor": first["cursor"]}),
    )
    .await["payload"]
        .clone();
    assert_eq!(next["lines"], json!(["four"]));
    assert_eq!(next["reset"], false);
    std::fs::write(&log, "new\n").unwrap();
    let after =
        call(&mut ws, "4", "logs.tail", json!({"cursor": next["cursor"]})).await["payload"].clone();
    assert_eq!(
        (after["reset"].as_bool(), after["lines"].clone()),
        (Some(true), json!(["new"]))
    );
}

#[tokio::test]
async fn readers_see_presence_events_when_clients_come_and_go() {
    let gw = TestGateway::with_token().await;
    let (mut watcher, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    let (other, _) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    // Changes are coalesced: the watcher's own arrival may come first (or
    // in the same event); seq counts up by one per event delivered.
    let mut seq = 0;
    let mut next_presence = async |watcher: &mut Ws, want: usize| loop {
        let ev = recv(watcher).await;
        assert_eq!(ev["event"], "presence", "{ev}");
        seq += 1;
        assert_eq!(ev["seq"], seq, "{ev}");
        assert!(ev["stateVersion"]["presence"].as_u64().unwrap() >= 2);
        if ev["payload"]["presence"].as_array().unwrap().len() == want {
            break;
        }
    };
    next_presence(&mut watcher, 3).await;
    drop(other);
    next_presence(&mut watcher, 2).await;
}

#[tokio::test]
async fn a_burst_of_connects_is_one_presence_event() {
    let gw = TestGateway::with_token().await;
    let (mut watcher, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    // Let the watcher's own arrival go out first.
    let first = recv(&mut watcher).await;
    assert_eq!(first["event"], "presence");
    let mut others = Vec::new();
    for _ in 0..20 {
        let (mut ws, _) = gw.open().await;
        send(&mut ws, &connect_frame("1", cli_params(Some(TOKEN)))).await;
        others.push(ws);
    }
    for ws in &mut others {
        assert_eq!(recv(ws).await["ok"], true);
    }
    // Far fewer events than connects, and the last one has everyone.
    let mut events = 0;
    loop {
        let ev = recv(&mut watcher).await;
        assert_eq!(ev["event"], "presence", "{ev}");
        events += 1;
        if ev["payload"]["presence"].as_array().unwrap().len() == 22 {
            break;
        }
    }
    assert!(events < 20, "{events} presence events for 20 connects");
}

pub(crate) struct Device {
    key: ed25519_dalek::SigningKey,
}

impl Device {
    pub(crate) fn new(seed: u8) -> Self {
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
        }
    }
    pub(crate) fn id(&self) -> String {
        device_id_of(self.key.verifying_key().as_bytes())
    }
    /// TUI-style connect params signed (v3) for this challenge.
    fn params(&self, challenge: &Value, auth: Value, scopes: &[&str]) -> Value {
        let client = json!({"id": "openclaw-tui", "displayName": "openclaw-tui", "version": "2026.9.6", "platform": "linux", "deviceFamily": "Linux", "mode": "ui"});
        self.signed(challenge, auth, "operator", client, scopes, json!({}))
    }

    /// What the real headless node host sends (`nodes-canvas.md` §2.1),
    /// declaring `commands`.
    pub(crate) fn node_params(&self, challenge: &Value, commands: &[&str]) -> Value {
        let client = json!({"id": "node-host", "displayName": "Test Node", "version": "2026.9.6", "platform": "linux", "deviceFamily": "Linux", "mode": "node", "instanceId": "0b7d8c1e-5d2a-4d4e-9a51-2f8f4d7b9c10"});
        let extra = json!({"caps": ["system"], "commands": commands, "pathEnv": "/usr/bin:/bin"});
        self.signed(
            challenge,
            json!({"token": TOKEN}),
            "node",
            client,
            &[],
            extra,
        )
    }

    /// Connect params for `role` and `client`, signed (v3) for this
    /// challenge, with `extra` fields merged in.
    fn signed(
        &self,
        challenge: &Value,
        auth: Value,
        role: &str,
        client: Value,
        scopes: &[&str],
        extra: Value,
    ) -> Value {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let ts = challenge["ts"].as_u64().unwrap();
        let nonce = challenge["nonce"].as_str().unwrap();
        let token = auth["token"]
            .as_str()
            .or(auth["deviceToken"].as_str())
            .unwrap_or("");
        let payload = payload_v3(
            &self.id(),
            ts,
            nonce,
            &SignedFields {
                client_id: client["id"].as_str().unwrap(),
                client_mode: client["mode"].as_str().unwrap(),
                role,
                scopes: &scopes,
                token,
                platform: Some("linux"),
                device_family: Some("Linux"),
            },
        );
        let mut p = json!({
            "minProtocol": 4, "maxProtocol": 4,
            "client": client,
            "role": role, "scopes": scopes, "auth": auth,
            "device": {
                "id": self.id(),
                "publicKey": encode_b64(self.key.verifying_key().as_bytes()),
                "signature": encode_b64(&self.key.sign(payload.as_bytes()).to_bytes()),
                "signedAt": ts, "nonce": nonce,
            },
        });
        if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
            p.extend(extra);
        }
        openclaw_e2e::schema::check_connect_params(&p);
        p
    }
}

#[tokio::test]
async fn a_local_device_is_paired_silently_and_gets_a_device_token_it_can_use() {
    let gw = TestGateway::with_token().await;
    let dev = Device::new(7);
    let scopes = ["operator.admin", "operator.read"];
    let (mut ws, challenge) = gw.open().await;
    send(
        &mut ws,
        &connect_frame(
            "1",
            dev.params(&challenge, json!({"token": TOKEN}), &scopes),
        ),
    )
    .await;
    let hello = recv(&mut ws).await;
    let auth = &hello["payload"]["auth"];
    assert_eq!(auth["scopes"], json!(scopes), "{hello}");
    let device_token = auth["deviceToken"].as_str().unwrap().to_string();
    assert_eq!(device_token.len(), 43);
    assert!(auth["issuedAtMs"].is_u64());

    // The store has it, 0600, and device.pair.list shows it connected, without the token.
    let list = call(&mut ws, "2", "device.pair.list", json!({})).await["payload"].clone();
    assert_eq!(list["paired"][0]["deviceId"], dev.id());
    assert_eq!(list["paired"][0]["approvedVia"], "silent");
    assert_eq!(list["paired"][0]["connected"], true);
    assert!(!list.to_string().contains(&device_token));
    drop(ws);

    // Next time the device token alone admits it, and the same token comes back.
    let (mut ws, challenge) = gw.open().await;
    send(
        &mut ws,
        &connect_frame(
            "1",
            dev.params(&challenge, json!({"deviceToken": device_token}), &scopes),
        ),
    )
    .await;
    let again = recv(&mut ws).await;
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(
        again["payload"]["auth"]["deviceToken"],
        device_token.as_str()
    );

    // Revoked, it no longer works.
    let revoked = call(
        &mut ws,
        "2",
        "device.token.revoke",
        json!({"deviceId": dev.id(), "role": "operator"}),
    )
    .await;
    assert!(revoked["payload"]["revokedAtMs"].is_u64(), "{revoked}");
    let (mut ws2, challenge) = gw.open().await;
    send(
        &mut ws2,
        &connect_frame(
            "1",
            dev.params(&challenge, json!({"deviceToken": device_token}), &scopes),
        ),
    )
    .await;
    let refused = recv(&mut ws2).await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["details"]["code"], "AUTH_TOKEN_MISSING");
}

#[tokio::test]
async fn a_device_token_never_grants_more_than_it_was_issued_with() {
    let gw = TestGateway::with_token().await;
    let dev = Device::new(9);
    // Paired (silently, on loopback, with the shared token) for reading only.
    let (mut ws, challenge) = gw.open().await;
    send(
        &mut ws,
        &connect_frame(
            "1",
            dev.params(&challenge, json!({"token": TOKEN}), &["operator.read"]),
        ),
    )
    .await;
    let hello = recv(&mut ws).await;
    let device_token = hello["payload"]["auth"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_string();
    drop(ws);
    // With only its device token, it asks for admin: refused, not upgraded.
    let (mut ws, challenge) = gw.open().await;
    send(
        &mut ws,
        &connect_frame(
            "1",
            dev.params(
                &challenge,
                json!({"deviceToken": device_token}),
                &["operator.admin"],
            ),
        ),
    )
    .await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["details"]["code"], "PAIRING_REQUIRED");
    assert_eq!(refused["error"]["details"]["reason"], "scope-upgrade");
    let paired = stored_paired(&gw, "operator.read").await.to_string();
    assert!(!paired.contains("operator.admin"), "{paired}");
    // What it holds still works.
    let (mut ws, challenge) = gw.open().await;
    send(
        &mut ws,
        &connect_frame(
            "1",
            dev.params(
                &challenge,
                json!({"deviceToken": device_token}),
                &["operator.read"],
            ),
        ),
    )
    .await;
    assert_eq!(recv(&mut ws).await["ok"], true);
}

#[tokio::test]
async fn a_bad_signature_is_refused_with_its_code() {
    let gw = TestGateway::with_token().await;
    let dev = Device::new(9);
    let (mut ws, challenge) = gw.open().await;
    let mut p = dev.params(&challenge, json!({"token": TOKEN}), &["operator.read"]);
    p["scopes"] = json!(["operator.admin"]); // signed over other scopes
    send(&mut ws, &connect_frame("1", p)).await;
    let res = recv(&mut ws).await;
    assert_eq!(res["error"]["message"], "device signature invalid");
    assert_eq!(
        res["error"]["details"]["code"],
        "DEVICE_AUTH_SIGNATURE_INVALID"
    );
    assert_eq!(expect_close(&mut ws).await.0, 1008);
}

#[tokio::test]
async fn operators_approve_and_reject_pending_requests() {
    let gw = TestGateway::with_token_seeded(|d| {
        seed_pending(
            d,
            &[
                ("r1", "d1", "ABCDEFGH", "operator"),
                ("r2", "d2", "JKLMNPQR", "operator"),
            ],
        )
    })
    .await;
    let (mut ws, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.pairing"]),
    )
    .await;
    let list = call(&mut ws, "2", "device.pair.list", json!({})).await["payload"].clone();
    assert_eq!(list["pending"].as_array().unwrap().len(), 2);
    let ok = call(
        &mut ws,
        "3",
        "device.pair.approve",
        json!({"requestId": "r1"}),
    )
    .await;
    assert_eq!(ok["payload"]["device"]["deviceId"], "d1", "{ok}");
    let resolved = recv(&mut ws).await;
    assert_eq!(resolved["event"], "device.pair.resolved");
    assert_eq!(resolved["payload"]["decision"], "approved");
    let no = call(
        &mut ws,
        "4",
        "device.pair.reject",
        json!({"requestId": "r2"}),
    )
    .await;
    assert_eq!(no["payload"]["decision"], "rejected");
    let missing = call(
        &mut ws,
        "5",
        "device.pair.approve",
        json!({"requestId": "r9"}),
    )
    .await;
    assert_eq!(missing["error"]["message"], "unknown requestId");
    let stored = stored_paired(&gw, "\"d1\"").await;
    assert_eq!(stored["d1"]["approvedVia"], "operator");
    // Readers without the pairing scope may not.
    let (mut reader, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.read"]),
    )
    .await;
    assert_eq!(
        call(&mut reader, "2", "device.pair.list", json!({})).await["error"]["code"],
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_answer() {
    let gw = TestGateway::with_token_seeded(|d| {
        seed_pending(d, &[("r1", "d1", "ABCDEFGH", "operator")])
    })
    .await;
    let (mut ws, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.pairing"]),
    )
    .await;
    let first = call(
        &mut ws,
        "2",
        "device.pair.approve",
        json!({"requestId": "r1", "idempotencyKey": "k-1"}),
    )
    .await;
    assert_eq!(first["ok"], true, "{first}");
    let again = call(
        &mut ws,
        "3",
        "device.pair.approve",
        json!({"requestId": "r1", "idempotencyKey": "k-1"}),
    )
    .await;
    assert_eq!(
        again["payload"], first["payload"],
        "replayed, not re-run (a re-run would fail: unknown requestId)"
    );
    let fresh = call(
        &mut ws,
        "4",
        "device.pair.approve",
        json!({"requestId": "r1", "idempotencyKey": "k-2"}),
    )
    .await;
    assert_eq!(fresh["error"]["message"], "unknown requestId");
}

#[tokio::test]
async fn idempotency_answers_never_leak_to_another_caller() {
    let gw = TestGateway::with_token_seeded(|d| {
        seed_pending(
            d,
            &[
                ("r1", "d1", "ABCDEFGH", "operator"),
                ("r2", "d2", "JKLMNPQR", "operator"),
            ],
        )
    })
    .await;
    let params = with_scopes(cli_params(Some(TOKEN)), &["operator.pairing"]);
    let (mut a, _) = connect_as(&gw, params.clone()).await;
    let (mut b, _) = connect_as(&gw, params).await;
    let first = call(
        &mut a,
        "2",
        "device.pair.approve",
        json!({"requestId": "r1", "idempotencyKey": "same"}),
    )
    .await;
    assert_eq!(first["ok"], true, "{first}");
    // Another caller with the same key runs its own request.
    let second = call(
        &mut b,
        "2",
        "device.pair.approve",
        json!({"requestId": "r2", "idempotencyKey": "same"}),
    )
    .await;
    assert_eq!(second["ok"], true, "{second}");
    assert_ne!(second["payload"], first["payload"], "{second}");
    assert_eq!(second["payload"]["device"]["deviceId"], "d2", "{second}");
}

#[tokio::test]
async fn random_frames_after_connect_never_break_the_gateway() {
    use rand::{RngExt, SeedableRng};
    let gw = TestGateway::with_token().await;
    let (mut ws, _) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pieces = [
        "{",
        "}",
        "\"type\"",
        ":",
        "\"req\"",
        ",",
        "\"id\"",
        "\"1\"",
        "\"method\"",
        "\"health\"",
        "null",
        "[",
        "]",
        "7",
        "\"params\"",
    ];
    for i in 0..200 {
        let text: String = (0..rng.random_range(0..12))
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        send_text(&mut ws, text).await;
        // Every frame gets a res (schema-checked) or the socket closes;
        // server events (presence) may come in between.
        loop {
            match next(&mut ws).await {
                Incoming::Frame(f) if f["type"] == "event" => continue,
                Incoming::Frame(f) => assert_eq!(f["type"], "res", "frame {i}: {f}"),
                Incoming::Close(_) => {
                    let (fresh, _) = connect_as(&gw, cli_params(Some(TOKEN))).await;
                    ws = fresh;
                }
            }
            break;
        }
    }
    assert_eq!(
        call(&mut ws, "z", "health", json!({})).await["ok"],
        true,
        "still serving"
    );
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed() {
    use openclaw_gateway::settings::Auth;
    use openclaw_profiles::config::Secret;
    let gw = TestGateway::start_with_intervals(
        Auth::Token(Secret::new(TOKEN)),
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_millis(100),
    )
    .await;
    let (mut ws, _) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    // Stay silent (not reading means not answering pings) for several
    // ping intervals: that silence is what is under test.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        expect_close(&mut ws).await,
        (1008, "pong timeout".to_string())
    );
}

#[tokio::test]
async fn a_client_that_answers_pings_stays() {
    use openclaw_gateway::settings::Auth;
    use openclaw_profiles::config::Secret;
    let gw = TestGateway::start_with_intervals(
        Auth::Token(Secret::new(TOKEN)),
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_millis(200),
    )
    .await;
    let (mut ws, _) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    // A client that keeps reading answers every ping (the pong goes out
    // with its next write); ten intervals later the socket still works.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(2000);
    let mut i = 0;
    while std::time::Instant::now() < until {
        let r = call(&mut ws, &format!("h{i}"), "health", json!({})).await;
        assert_eq!(r["ok"], true);
        i += 1;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_remote_device_waits_for_approval_then_gets_its_token() {
    let gw = TestGateway::with_token().await;
    let (mut operator, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.pairing"]),
    )
    .await;
    let dev = Device::new(11);
    let scopes = ["operator.read"];
    let (mut ws, challenge) = gw.open_forwarded("10.1.2.3").await;
    send(
        &mut ws,
        &connect_frame(
            "1",
            dev.params(&challenge, json!({"token": TOKEN}), &scopes),
        ),
    )
    .await;
    let res = recv(&mut ws).await;
    assert_eq!(res["error"]["code"], "NOT_PAIRED", "{res}");
    assert_eq!(
        res["error"]["message"],
        "pairing required: device is not approved yet"
    );
    let details = &res["error"]["details"];
    assert_eq!(
        (details["code"].as_str(), details["reason"].as_str()),
        (Some("PAIRING_REQUIRED"), Some("not-paired"))
    );
    assert_eq!(details["deviceId"], dev.id());
    let request_id = details["requestId"].as_str().unwrap().to_string();
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(
        (code, reason),
        (
            1008,
            format!("pairing required: device is not approved yet (requestId: {request_id})")
        )
    );

    // The operator hears about it, with the code, and approves.
    let requested = recv(&mut operator).await;
    assert_eq!(requested["event"], "device.pair.requested");
    assert_eq!(requested["payload"]["requestId"], request_id.as_str());
    assert_eq!(requested["payload"]["remoteIp"], "10.1.2.3");
    assert_eq!(requested["payload"]["code"].as_str().unwrap().len(), 8);
    let ok = call(
        &mut operator,
        "2",
        "device.pair.approve",
        json!({"requestId": request_id}),
    )
    .await;
    assert_eq!(ok["ok"], true, "{ok}");

    // The device's next connect is admitted and receives its device token.
    let (mut ws, challenge) = gw.open_forwarded("10.1.2.3").await;
    send(
        &mut ws,
        &connect_frame(
            "1",
            dev.params(&challenge, json!({"token": TOKEN}), &scopes),
        ),
    )
    .await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["ok"], true, "{hello}");
    assert_eq!(hello["payload"]["auth"]["scopes"], json!(scopes));
    assert_eq!(
        hello["payload"]["auth"]["deviceToken"]
            .as_str()
            .unwrap()
            .len(),
        43
    );
}

#[tokio::test]
async fn ten_wrong_tokens_lock_a_remote_address_out_but_not_loopback() {
    let gw = TestGateway::with_token().await;
    for _ in 0..10 {
        let (mut ws, _) = gw.open_forwarded("10.9.9.9").await;
        send(&mut ws, &connect_frame("1", cli_params(Some("wrong")))).await;
        assert_eq!(
            recv(&mut ws).await["error"]["details"]["code"],
            "AUTH_TOKEN_MISMATCH"
        );
    }
    // Now even the right token is refused from there...
    let (mut ws, _) = gw.open_forwarded("10.9.9.9").await;
    send(&mut ws, &connect_frame("1", cli_params(Some(TOKEN)))).await;
    let res = recv(&mut ws).await;
    assert_eq!(
        res["error"]["message"],
        "unauthorized: too many failed authentication attempts (retry later)"
    );
    assert_eq!(res["error"]["details"]["code"], "AUTH_RATE_LIMITED");
    assert!(res["error"]["details"]["retryAfterMs"].as_u64().unwrap() > 0);
    // ...while another address and loopback are unaffected.
    let (mut ws, _) = gw.open_forwarded("10.9.9.10").await;
    send(&mut ws, &connect_frame("1", cli_params(Some(TOKEN)))).await;
    let other = recv(&mut ws).await;
    assert_eq!(other["ok"], true);
    // A proxied (non-local) device-less CLI keeps no scopes.
    assert_eq!(other["payload"]["auth"]["scopes"], json!([]));
    assert_eq!(connect_as(&gw, cli_params(Some(TOKEN))).await.1["ok"], true);
}

#[tokio::test]
async fn forged_forwarding_headers_lock_nobody_out() {
    // No trusted proxy: X-Forwarded-For from the peer is not believed.
    let gw = TestGateway::start_trusting(
        openclaw_gateway::settings::Auth::Token(openclaw_profiles::config::Secret::new(TOKEN)),
        Default::default(),
        |_| {},
        Vec::new(),
    )
    .await;
    for _ in 0..12 {
        let (mut ws, _) = gw.open_forwarded("10.9.9.9").await;
        send(&mut ws, &connect_frame("1", cli_params(Some("wrong")))).await;
        assert_eq!(
            recv(&mut ws).await["error"]["details"]["code"],
            "AUTH_TOKEN_MISMATCH"
        );
    }
    // The address the attacker named is not locked out...
    let (mut ws, _) = gw.open_forwarded("10.9.9.9").await;
    send(&mut ws, &connect_frame("1", cli_params(Some(TOKEN)))).await;
    let res = recv(&mut ws).await;
    assert_eq!(res["ok"], true, "{res}");
    // ...and a forwarded connection is still not local: no scopes kept.
    assert_eq!(res["payload"]["auth"]["scopes"], json!([]));
}

#[tokio::test]
async fn health_refreshes_reach_every_socket_with_a_new_state_version() {
    use openclaw_gateway::settings::Auth;
    use openclaw_profiles::config::Secret;
    let period = std::time::Duration::from_millis(150);
    let timers = openclaw_gateway::server::Timers {
        health_refresh: period,
        ..Default::default()
    };
    let gw = TestGateway::start_full(Auth::Token(Secret::new(TOKEN)), timers, |_| {}).await;
    // Even a socket without scopes gets health events (they are unscoped).
    let mut p = cli_params(Some(TOKEN));
    p["client"]["mode"] = json!("probe");
    let (mut ws, _) = connect_as(&gw, p).await;
    let mut versions = Vec::new();
    while versions.len() < 2 {
        let f = recv(&mut ws).await;
        if f["event"] == "health" {
            assert_eq!(f["payload"]["ok"], true);
            versions.push(f["stateVersion"]["health"].as_u64().unwrap());
        }
    }
    assert!(versions[1] > versions[0], "{versions:?}");
}
