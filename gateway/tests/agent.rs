//! The agent runtime over a real WebSocket against an in-process gateway
//! whose model provider is the fake OpenAI-compatible server of the test
//! support (real SSE over loopback). Every frame is schema-checked by
//! `support::next`.

use std::time::Duration;

use openclaw_e2e::fake_provider::FakeProvider;
use serde_json::{Value, json};

use crate::support::{
    TOKEN, TestGateway, Ws, call, cli_params, connect_frame, presence, recv, send, with_scopes,
};

const REPLY: &str = "Hello from the fake provider. You said: ";

/// A connected operator socket with read and write scopes.
async fn writer(gw: &TestGateway) -> Ws {
    let (mut ws, _) = gw.open().await;
    let p = with_scopes(
        cli_params(Some(TOKEN)),
        &["operator.read", "operator.write"],
    );
    send(&mut ws, &connect_frame("c", p)).await;
    assert_eq!(recv(&mut ws).await["ok"], true);
    ws
}

/// Frames up to and including the run's terminal `chat` event (final,
/// error or aborted); `res` frames seen meanwhile are returned too.
async fn until_terminal(ws: &mut Ws, run_id: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let f = recv(ws).await;
        let terminal = f["event"] == "chat"
            && f["payload"]["runId"] == run_id
            && ["final", "error", "aborted"]
                .contains(&f["payload"]["state"].as_str().unwrap_or(""));
        seen.push(f);
        if terminal {
            return seen;
        }
    }
}

fn chat_events<'a>(frames: &'a [Value], state: &str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| f["event"] == "chat" && f["payload"]["state"] == state)
        .map(|f| &f["payload"])
        .collect()
}

async fn send_chat(ws: &mut Ws, key: &str, text: &str, run: &str) -> Value {
    call(
        ws,
        &format!("send-{run}"),
        "chat.send",
        json!({"sessionKey": key, "message": text, "deliver": false, "idempotencyKey": run}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_send_streams_cumulative_deltas_then_final_and_keeps_history() {
    let fake = FakeProvider::start();
    let gw = TestGateway::with_config(fake.config()).await;
    let mut ws = writer(&gw).await;

    let ack = send_chat(&mut ws, "main", "hello there", "run-1").await;
    assert_eq!(
        ack["payload"],
        json!({"runId": "run-1", "status": "started"})
    );
    let frames = until_terminal(&mut ws, "run-1").await;
    let deltas = chat_events(&frames, "delta");
    assert!(
        deltas.len() >= 5,
        "one delta per provider chunk: {}",
        deltas.len()
    );
    let mut text = String::new();
    let mut last_seq = 0;
    for d in &deltas {
        text.push_str(d["deltaText"].as_str().unwrap());
        assert_eq!(
            d["message"]["content"][0]["text"], text,
            "message is the cumulative text"
        );
        assert_eq!(d["sessionKey"], "agent:main:main");
        let seq = d["seq"].as_u64().unwrap();
        assert!(seq > last_seq, "per-run seq grows");
        last_seq = seq;
    }
    let fin = chat_events(&frames, "final")[0];
    assert_eq!(
        fin["message"]["content"][0]["text"],
        format!("{REPLY}hello there")
    );
    assert_eq!(fin["stopReason"], "stop");
    assert!(fin["seq"].as_u64().unwrap() > last_seq);
    let lifecycle: Vec<&str> = frames
        .iter()
        .filter(|f| f["event"] == "agent" && f["payload"]["stream"] == "lifecycle")
        .map(|f| f["payload"]["data"]["phase"].as_str().unwrap())
        .collect();
    assert_eq!(lifecycle, ["start", "model", "end"]);

    // What the provider saw: OpenClaw's request shape.
    let reqs = fake.completions();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.header("authorization"), Some("Bearer sk-fake-local"));
    assert_eq!(r.body["model"], "fake-model");
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"]["include_usage"], true);
    assert_eq!(r.body["max_completion_tokens"], 1024);
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert!(
        r.body.get("reasoning_effort").is_none(),
        "not for a non-reasoning model"
    );

    // A second turn carries the first as history.
    send_chat(&mut ws, "agent:main:main", "again", "run-2").await;
    until_terminal(&mut ws, "run-2").await;
    let msgs = fake.completions()[1].body["messages"].clone();
    let roles: Vec<&str> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(msgs[2]["content"], format!("{REPLY}hello there"));

    let h = call(
        &mut ws,
        "h",
        "chat.history",
        json!({"sessionKey": "agent:main:main", "limit": 200}),
    )
    .await;
    let h = &h["payload"];
    assert_eq!(h["totalMessages"], 4);
    let m = h["messages"].as_array().unwrap();
    assert_eq!(
        (m[0]["role"].as_str(), m[0]["content"].as_str()),
        (Some("user"), Some("hello there"))
    );
    assert_eq!(m[1]["content"][0]["text"], format!("{REPLY}hello there"));
    assert_eq!(m[1]["usage"]["input"], 10);
    assert_eq!(m[1]["provider"], "fakeai");
    let limited = call(
        &mut ws,
        "h2",
        "chat.history",
        json!({"sessionKey": "main", "limit": 1}),
    )
    .await;
    assert_eq!(
        limited["payload"]["messages"][0]["content"][0]["text"],
        format!("{REPLY}again")
    );
    assert_eq!(limited["payload"]["hasMore"], true);

    // Usage and counts that are no longer zero.
    let list = call(&mut ws, "l", "sessions.list", json!({})).await["payload"].clone();
    assert_eq!(list["count"], 1);
    let row = &list["sessions"][0];
    assert_eq!(row["key"], "agent:main:main");
    assert_eq!(
        (row["model"].as_str(), row["modelProvider"].as_str()),
        (Some("fake-model"), Some("fakeai"))
    );
    assert_eq!(row["inputTokens"], 10);
    assert!(row["outputTokens"].as_u64().unwrap() > 0);
    assert_eq!(row["contextTokens"], 32000);
    assert!(row["updatedAt"].as_u64().unwrap() > 0);
    let health = call(&mut ws, "hh", "health", json!({})).await["payload"].clone();
    assert_eq!(health["sessions"]["count"], 1);
    assert_eq!(health["sessions"]["recent"][0]["key"], "agent:main:main");
    let status = call(&mut ws, "s", "status", json!({})).await["payload"].clone();
    assert_eq!(status["sessions"]["count"], 1);
    assert_eq!(status["tasks"]["total"], 2);
    assert_eq!(status["tasks"]["byStatus"]["succeeded"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_replays_and_never_runs_twice() {
    let fake = FakeProvider::start();
    let gw = TestGateway::with_config(fake.config()).await;
    let mut ws = writer(&gw).await;

    send_chat(&mut ws, "main", "once", "dup-1").await;
    until_terminal(&mut ws, "dup-1").await;
    let again = send_chat(&mut ws, "main", "once", "dup-1").await;
    assert_eq!(again["payload"], json!({"runId": "dup-1", "status": "ok"}));

    // `agent`: ack, events, final; the same key again (another socket)
    // replays the stored final at once, without an ack.
    let params =
        json!({"message": "hi agent", "agentId": "main", "idempotencyKey": "dup-2", "timeout": 60});
    send(
        &mut ws,
        &json!({"type": "req", "id": "a1", "method": "agent", "params": params}),
    )
    .await;
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let f = recv(&mut ws).await;
        if f["type"] == "res" && f["id"] == "a1" {
            answers.push(f);
        }
    }
    assert_eq!(answers[0]["payload"]["status"], "accepted");
    assert_eq!(answers[0]["payload"]["sessionKey"], "agent:main:main");
    let fin = &answers[1];
    assert_eq!(fin["ok"], true);
    assert_eq!(fin["payload"]["status"], "ok");
    assert_eq!(
        fin["payload"]["result"]["payloads"][0]["text"],
        format!("{REPLY}hi agent")
    );
    assert_eq!(
        fin["payload"]["result"]["meta"]["agentMeta"]["usage"]["input"],
        10
    );

    let mut other = writer(&gw).await;
    let replay = call(&mut other, "a2", "agent", params.clone()).await;
    assert_eq!(
        replay["payload"], fin["payload"],
        "the stored final, not an ack"
    );
    assert_eq!(
        fake.completions().len(),
        2,
        "two runs, two provider requests"
    );

    // While a run is going, the key answers in_flight.
    send_chat(&mut ws, "slow-one", "slow please", "dup-3").await;
    let busy = send_chat(&mut other, "slow-one", "slow please", "dup-3").await;
    assert_eq!(busy["payload"]["status"], "in_flight");
    let wait = call(
        &mut other,
        "w",
        "agent.wait",
        json!({"runId": "dup-3", "timeoutMs": 50}),
    )
    .await;
    assert_eq!(wait["payload"]["status"], "timeout");
    // The slow run reached the provider once (the repeat started nothing).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fake.completions().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow run never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    call(
        &mut ws,
        "x",
        "chat.abort",
        json!({"sessionKey": "slow-one"}),
    )
    .await;
    let wait = call(&mut other, "w2", "agent.wait", json!({"runId": "dup-1"})).await;
    assert_eq!(wait["payload"]["status"], "ok");
    assert_eq!(
        wait["payload"]["terminalReply"]["text"],
        format!("{REPLY}once")
    );
    assert_eq!(fake.completions().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_the_stream_at_once_and_keeps_the_partial_reply() {
    let fake = FakeProvider::start();
    let gw = TestGateway::with_config(fake.config()).await;
    let mut ws = writer(&gw).await;
    send_chat(&mut ws, "main", "go slow", "slow-1").await;
    // Wait for the first tick.
    loop {
        let f = recv(&mut ws).await;
        if f["event"] == "chat" && f["payload"]["state"] == "delta" {
            break;
        }
    }
    send(
        &mut ws,
        &json!({"type": "req", "id": "ab", "method": "chat.abort",
        "params": {"sessionKey": "agent:main:main", "preserveSideRuns": true}}),
    )
    .await;
    let mut aborted_first = false;
    let res = loop {
        let f = recv(&mut ws).await;
        if f["event"] == "chat" && f["payload"]["state"] == "aborted" {
            assert_eq!(f["payload"]["stopReason"], "rpc");
            assert!(
                f["payload"]["message"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("tick0")
            );
            aborted_first = true;
        }
        if f["type"] == "res" && f["id"] == "ab" {
            break f;
        }
    };
    assert!(aborted_first, "the aborted event comes before the answer");
    assert_eq!(
        res["payload"],
        json!({"ok": true, "aborted": true, "runIds": ["slow-1"]})
    );
    openclaw_e2e::wait_until(
        Duration::from_secs(5),
        "the provider stream was closed",
        || fake.disconnects() >= 1,
    );

    let idle = call(&mut ws, "ab2", "chat.abort", json!({"sessionKey": "main"})).await;
    assert_eq!(
        idle["payload"],
        json!({"ok": true, "aborted": false, "runIds": []})
    );
    let h = call(&mut ws, "h", "chat.history", json!({"sessionKey": "main"})).await;
    let m = &h["payload"]["messages"];
    assert_eq!(m[1]["openclawAbort"]["aborted"], true);
    assert!(
        m[1]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("tick0")
    );

    // The next request carries the user message but not the partial answer.
    send_chat(&mut ws, "main", "after", "after-1").await;
    until_terminal(&mut ws, "after-1").await;
    let msgs = fake.completions().last().unwrap().body["messages"].clone();
    let roles: Vec<&str> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "user"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_reach_chat_and_agent_callers_and_retries_stop_at_the_timeout() {
    let fake = FakeProvider::start();
    let gw = TestGateway::with_config(fake.config()).await;
    let mut ws = writer(&gw).await;

    send_chat(&mut ws, "main", "boom400 now", "e-1").await;
    let frames = until_terminal(&mut ws, "e-1").await;
    let err = chat_events(&frames, "error")[0];
    assert_eq!(
        err["errorMessage"],
        "LLM request failed: provider rejected the request schema or tool payload."
    );
    assert_eq!(err["errorDetail"]["failoverReason"], "format");
    assert_eq!(err["errorDetail"]["httpStatus"], 400);
    assert_eq!(fake.completions().len(), 1, "a 400 is not retried");

    let fin = call(
        &mut ws,
        "a",
        "agent",
        json!({"message": "boom400", "idempotencyKey": "e-2"}),
    )
    .await;
    assert_eq!(fin["payload"]["status"], "accepted");
    let fin = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "res" && f["id"] == "a" {
            break f;
        }
    };
    assert_eq!(fin["ok"], false);
    assert_eq!(fin["payload"]["status"], "error");
    assert_eq!(fin["error"]["code"], "UNAVAILABLE");
    assert_eq!(fin["error"]["message"], fin["payload"]["summary"]);

    // 500s are retried, announced, and given up before the run's timeout.
    let started = std::time::Instant::now();
    call(&mut ws, "s5", "chat.send", json!({"sessionKey": "main", "message": "boom500", "idempotencyKey": "e-3", "timeoutMs": 2500})).await;
    let frames = until_terminal(&mut ws, "e-3").await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    let retrying = frames
        .iter()
        .filter(|f| f["event"] == "agent" && f["payload"]["data"]["phase"] == "retrying")
        .count();
    assert!(retrying >= 1, "retries are announced");
    assert!(fake.completions().len() >= 3, "first attempt plus a retry");
    let err = chat_events(&frames, "error")[0];
    assert!(
        err["errorMessage"].as_str().unwrap().contains("HTTP 500"),
        "{err}"
    );

    // A stream cut without finish_reason is an error, not a reply.
    send_chat(&mut ws, "main", "cut", "e-4").await;
    let frames = until_terminal(&mut ws, "e-4").await;
    assert!(
        chat_events(&frames, "error")[0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("finish_reason")
    );

    // A run that outlives its timeout.
    call(&mut ws, "t", "chat.send", json!({"sessionKey": "other", "message": "slow", "idempotencyKey": "e-5", "timeoutMs": 1200})).await;
    let frames = until_terminal(&mut ws, "e-5").await;
    assert_eq!(chat_events(&frames, "error")[0]["errorKind"], "timeout");

    // Failed turns are in the history, marked as errors.
    let h = call(&mut ws, "h", "chat.history", json!({"sessionKey": "main"})).await;
    let m = h["payload"]["messages"].as_array().unwrap();
    assert!(m.iter().any(|m| {
        m["stopReason"] == "error"
            && m["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("HTTP 400")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_message_on_a_busy_session_waits_for_the_first_turn() {
    let fake = FakeProvider::start();
    let gw = TestGateway::with_config(fake.config()).await;
    let mut ws = writer(&gw).await;
    // Three messages at once, from two sockets: they run in the order the
    // gateway accepted them, one at a time.
    let mut other = writer(&gw).await;
    send_chat(&mut ws, "main", "first", "q-1").await;
    send_chat(&mut other, "main", "second", "q-2").await;
    send_chat(&mut ws, "main", "third", "q-3").await;
    let mut order = Vec::new();
    loop {
        let f = recv(&mut ws).await;
        if f["event"] != "chat" {
            continue;
        }
        let run = f["payload"]["runId"].as_str().unwrap().to_string();
        if f["payload"]["state"] == "delta" && order.last() != Some(&run) {
            order.push(run.clone());
        }
        if f["payload"]["state"] == "final" && run == "q-3" {
            break;
        }
    }
    assert_eq!(
        order,
        ["q-1", "q-3"],
        "this socket's runs, in order, never interleaved"
    );
    let sent: Vec<usize> = fake
        .completions()
        .iter()
        .map(|r| r.body["messages"].as_array().unwrap().len())
        .collect();
    // Each turn saw every earlier answer (system + 2 per turn + its message).
    assert_eq!(sent, [2, 4, 6]);
    let said: Vec<String> = fake
        .completions()
        .iter()
        .map(openclaw_e2e::fake_provider::Recorded::clone)
        .map(|r| openclaw_e2e::fake_provider::last_user_text(&r.body))
        .collect();
    assert_eq!(said, ["first", "second", "third"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_created_patched_reset_deleted_and_survive_a_restart() {
    let fake = FakeProvider::start();
    let mut cfg = fake.config();
    cfg["models"]["providers"]["fakeai"]["models"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "other-model", "contextWindow": 8000, "reasoning": true}));
    let gw = TestGateway::with_config(cfg.clone()).await;
    let mut ws = writer(&gw).await;

    let sub = call(&mut ws, "sub", "sessions.subscribe", json!({})).await;
    assert_eq!(sub["payload"], json!({"subscribed": true}));
    let created = call(
        &mut ws,
        "c",
        "sessions.create",
        json!({"key": "tui-1", "agentId": "main",
        "parentSessionKey": "agent:main:main", "succeedsParent": true, "emitCommandHooks": true}),
    )
    .await;
    let p = &created["payload"];
    assert_eq!(p["key"], "agent:main:tui-1");
    assert_eq!(
        p["resolved"],
        json!({"modelProvider": "fakeai", "model": "fake-model"})
    );
    let sid = p["sessionId"].as_str().unwrap().to_string();

    let patched = call(
        &mut ws,
        "p",
        "sessions.patch",
        json!({"key": "agent:main:tui-1", "model": "fakeai/other-model", "thinkingLevel": "low"}),
    )
    .await;
    assert_eq!(patched["payload"]["resolved"]["model"], "other-model");
    assert_eq!(patched["payload"]["entry"]["contextTokens"], 8000);
    let bad = call(
        &mut ws,
        "p2",
        "sessions.patch",
        json!({"key": "tui-1", "model": "nope/x"}),
    )
    .await;
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no provider `nope`"),
        "{bad}"
    );

    send_chat(&mut ws, "tui-1", "on the other model", "s-1").await;
    until_terminal(&mut ws, "s-1").await;
    assert_eq!(fake.completions()[0].body["model"], "other-model");
    assert_eq!(
        fake.completions()[0].body["reasoning_effort"],
        "low",
        "the session's thinking level reaches a reasoning model"
    );
    let d = call(&mut ws, "d", "sessions.describe", json!({"key": "tui-1"})).await;
    assert_eq!(d["payload"]["session"]["sessionId"], sid);
    assert_eq!(d["payload"]["session"]["thinkingLevel"], "low");

    let reset = call(&mut ws, "r", "sessions.reset", json!({"key": "tui-1"})).await;
    let new_sid = reset["payload"]["sessionId"].as_str().unwrap().to_string();
    assert_ne!(new_sid, sid);
    let changed = loop {
        let f = recv(&mut ws).await;
        if f["event"] == "sessions.changed" && f["payload"]["reason"] == "reset" {
            break f;
        }
    };
    assert_eq!(changed["payload"]["sessionKey"], "agent:main:tui-1");
    let h = call(&mut ws, "h", "chat.history", json!({"sessionKey": "tui-1"})).await;
    assert_eq!(
        h["payload"]["totalMessages"], 0,
        "a reset session starts empty"
    );

    send_chat(&mut ws, "main", "remember me", "s-2").await;
    until_terminal(&mut ws, "s-2").await;
    let agents = call(&mut ws, "ag", "agents.list", json!({})).await;
    assert_eq!(agents["payload"]["defaultId"], "main");
    assert_eq!(
        agents["payload"]["agents"][0]["model"]["primary"],
        "fakeai/fake-model"
    );
    let models = call(&mut ws, "m", "models.list", json!({})).await;
    assert_eq!(models["payload"]["models"][0]["id"], "fake-model");
    assert!(
        !models.to_string().contains("sk-fake-local"),
        "no key in models.list"
    );
    let cfg_get = call(&mut ws, "cg", "config.get", json!({})).await;
    assert!(
        !cfg_get.to_string().contains("sk-fake-local"),
        "no key in config.get"
    );

    // A restart on the same state dir: history and index are still there.
    drop(ws);
    let dir = gw.stop().await;
    let gw = TestGateway::in_dir(dir, cfg).await;
    let mut ws = writer(&gw).await;
    let h = call(&mut ws, "h", "chat.history", json!({"sessionKey": "main"})).await;
    assert_eq!(
        h["payload"]["messages"][1]["content"][0]["text"],
        format!("{REPLY}remember me")
    );
    let d = call(&mut ws, "d", "sessions.describe", json!({"key": "tui-1"})).await;
    assert_eq!(d["payload"]["session"]["sessionId"], new_sid);
    assert_eq!(d["payload"]["session"]["model"], "other-model");

    // Delete needs admin.
    let denied = call(&mut ws, "del", "sessions.delete", json!({"key": "tui-1"})).await;
    assert_eq!(denied["error"]["code"], "FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_params_get_clear_errors() {
    let fake = FakeProvider::start();
    let gw = TestGateway::with_config(fake.config()).await;
    let mut ws = writer(&gw).await;
    for (method, params, needle) in [
        (
            "chat.send",
            json!({"sessionKey": "main", "message": "x"}),
            "idempotencyKey",
        ),
        (
            "chat.send",
            json!({"sessionKey": "main", "message": " ", "idempotencyKey": "k"}),
            "must not be empty",
        ),
        (
            "chat.send",
            json!({"sessionKey": "agent:Nope:x", "message": "x", "idempotencyKey": "k"}),
            "agent:<agentId>:<name>",
        ),
        (
            "chat.send",
            json!({"sessionKey": "agent:work:x", "message": "x", "idempotencyKey": "k"}),
            "unknown agent `work`",
        ),
        (
            "agent",
            json!({"message": 5, "idempotencyKey": "k"}),
            "message must be a string",
        ),
        (
            "agent.wait",
            json!({"runId": "never"}),
            "unknown run `never`",
        ),
        ("chat.history", json!({}), "sessionKey"),
        (
            "sessions.create",
            json!({"key": "x", "message": "hi"}),
            "chat.send",
        ),
    ] {
        let r = call(&mut ws, "b", method, params).await;
        assert_eq!(r["ok"], false, "{method}: {r}");
        let msg = r["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{method}: {msg}");
    }

    // Read-only callers cannot start runs.
    let (mut ro, _) = gw.connected().await;
    let r = call(
        &mut ro,
        "r",
        "chat.send",
        json!({"sessionKey": "main", "message": "x", "idempotencyKey": "k"}),
    )
    .await;
    assert_eq!(r["error"]["code"], "FORBIDDEN");
    assert!(fake.completions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_the_turn_fails_with_what_to_configure() {
    let gw = TestGateway::with_config(json!({})).await;
    let mut ws = writer(&gw).await;
    send_chat(&mut ws, "main", "hi", "n-1").await;
    let frames = until_terminal(&mut ws, "n-1").await;
    let err = chat_events(&frames, "error")[0];
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("agents.defaults.model.primary"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_backend_streams_lines_and_is_killed_on_abort() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!(
        "read -r line; echo \"you said: $line\"; echo second line; case \"$line\" in *hang*) echo $$ > {}; sleep 60 ;; esac",
        pidfile.display()
    );
    let cfg = json!({
        "models": {"providers": {"local": {"api": "command", "command": ["/bin/sh", "-c", script]}}},
        "agents": {"defaults": {"model": {"primary": "local/echo"}}}
    });
    let gw = TestGateway::with_config(cfg).await;
    let mut ws = writer(&gw).await;
    send_chat(&mut ws, "main", "hello\n", "c-1").await;
    let frames = until_terminal(&mut ws, "c-1").await;
    assert_eq!(chat_events(&frames, "delta").len(), 2, "one delta per line");
    let fin = chat_events(&frames, "final")[0];
    assert_eq!(
        fin["message"]["content"][0]["text"],
        "you said: hello\nsecond line"
    );

    send_chat(&mut ws, "main", "hang\n", "c-2").await;
    openclaw_e2e::wait_until(Duration::from_secs(10), "the command wrote its pid", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let r = call(&mut ws, "ab", "chat.abort", json!({"sessionKey": "main"})).await;
    assert_eq!(r["payload"]["aborted"], true);
    openclaw_e2e::wait_until(
        Duration::from_secs(5),
        "the command's process group is gone",
        || !openclaw_profiles::process::pid_alive(pid as u32),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_as_a_slow_consumer() {
    let fake = FakeProvider::start();
    let limit = 64 * 1024;
    let timers = openclaw_gateway::server::Timers {
        max_buffered: limit,
        ..Default::default()
    };
    let gw = TestGateway::with_config_timers(fake.config(), timers).await;
    let (mut ws, _) = gw.open().await;
    let p = with_scopes(
        cli_params(Some(TOKEN)),
        &["operator.read", "operator.write"],
    );
    send(&mut ws, &connect_frame("c", p)).await;
    let hello = recv(&mut ws).await;
    assert_eq!(
        hello["payload"]["policy"]["maxBufferedBytes"], limit,
        "{hello}"
    );
    // A long reply streams cumulative deltas (tens of MB in all) to a
    // socket that reads nothing more.
    let ack = send_chat(&mut ws, "main", "stamp:3000:0", "run-slow").await;
    assert_eq!(ack["payload"]["status"], "started");
    let clients = |gw: &TestGateway| presence(&gw.gw).len() - 1;
    assert_eq!(clients(&gw), 1);
    let watched = gw.gw.clone();
    tokio::task::spawn_blocking(move || {
        openclaw_e2e::wait_until(
            Duration::from_secs(60),
            "the gateway drops the slow socket",
            || presence(&watched).len() == 1,
        );
    })
    .await
    .unwrap();
    // What was already in the pipe drains, then the socket ends, before
    // the reply's end: the backlog was not kept.
    loop {
        match crate::support::next(&mut ws).await {
            crate::support::Incoming::Frame(f) => {
                assert!(
                    !(f["event"] == "chat" && f["payload"]["state"] == "final"),
                    "the slow socket got the whole reply"
                );
            }
            crate::support::Incoming::Close(c) => {
                if let Some((code, reason)) = c {
                    assert_eq!((code, reason.as_str()), (1008, "slow consumer"));
                }
                break;
            }
        }
    }
}
