//! Nodes over a real WebSocket (`nodes-canvas.md` §2–§7): a scripted node
//! that signs as the real headless host does, operators that list,
//! approve and invoke, and every answer `node.invoke` can give.

use serde_json::{Value, json};

use crate::control::{Device, connect_as};
use crate::support::*;

/// What the real headless host declares, plus commands policy withholds
/// on Linux (canvas is macOS-only, `dir.*` is a dangerous plugin command,
/// `worker.*` is private).
const DECLARED: &[&str] = &[
    "system.which",
    "system.run",
    "fs.listDir",
    "canvas.present",
    "dir.list",
    "worker.launch.v1",
];

fn operator(scopes: &[&str]) -> Value {
    with_scopes(cli_params(Some(TOKEN)), scopes)
}

/// Connects `dev` as a node; returns its socket and `hello-ok` payload.
async fn node(gw: &TestGateway, dev: &Device) -> (Ws, Value) {
    let (mut ws, challenge) = gw.open().await;
    send(
        &mut ws,
        &connect_frame("1", dev.node_params(&challenge, DECLARED)),
    )
    .await;
    let res = recv(&mut ws).await;
    assert_eq!(res["ok"], true, "{res}");
    (ws, res["payload"].clone())
}

/// The next frame that is event `name` (others pass by).
async fn event(ws: &mut Ws, name: &str) -> Value {
    loop {
        let f = recv(ws).await;
        if f["type"] == "event" && f["event"] == name {
            return f;
        }
    }
}

async fn invoke(ws: &mut Ws, id: &str, node_id: &str, command: &str, timeout_ms: u64) {
    send(
        ws,
        &json!({"type": "req", "id": id, "method": "node.invoke", "params": {
            "nodeId": node_id, "command": command, "params": {"bins": ["sh"]},
            "idempotencyKey": format!("key-{id}"), "timeoutMs": timeout_ms,
        }}),
    )
    .await;
}

/// The `res` with `id` (events pass by).
async fn res(ws: &mut Ws, id: &str) -> Value {
    loop {
        let f = recv(ws).await;
        if f["type"] == "res" && f["id"] == id {
            return f;
        }
    }
}

#[tokio::test]
async fn a_local_node_is_paired_silently_then_its_surface_is_approved_and_invoked() {
    let gw = TestGateway::with_token().await;
    let (mut pairer, _) = connect_as(&gw, operator(&["operator.read", "operator.pairing"])).await;
    let (mut admin, _) = connect_as(&gw, operator(&["operator.admin"])).await;
    let (mut watcher, _) = connect_as(&gw, operator(&["operator.read"])).await;
    let dev = Device::new(31);
    let (mut nd, hello) = node(&gw, &dev).await;
    assert_eq!(hello["auth"]["role"], "node");
    assert!(hello["auth"]["deviceToken"].is_string(), "{hello}");
    // Readers see the node in presence, named by device id and display name.
    let entry = loop {
        let p = event(&mut watcher, "presence").await;
        if let Some(e) = p["payload"]["presence"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["roles"] == json!(["node"])).cloned())
        {
            break e;
        }
    };
    assert_eq!(
        (
            entry["instanceId"].as_str(),
            entry["text"].as_str(),
            entry["reason"].as_str()
        ),
        (
            Some(dev.id().as_str()),
            Some("Node: Test Node · mode node"),
            Some("connect")
        ),
        "{entry}"
    );

    // The declared surface waits for approval; policy withheld the rest.
    let asked = event(&mut pairer, "node.pair.requested").await["payload"].clone();
    assert_eq!(asked["nodeId"], dev.id());
    assert_eq!(
        asked["commands"],
        json!(["fs.listDir", "system.run", "system.which"])
    );
    assert_eq!(
        asked["requiredApproveScopes"],
        json!(["operator.pairing", "operator.admin"])
    );
    let list = call(&mut pairer, "2", "node.list", json!({})).await;
    let row = &list["payload"]["nodes"][0];
    assert_eq!(
        (row["approvalState"].as_str(), row["connected"].as_bool()),
        (Some("pending-approval"), Some(true)),
        "{row}"
    );
    assert_eq!(
        (row["commands"].clone(), row["pathEnv"].clone()),
        (json!([]), json!("/usr/bin:/bin"))
    );
    assert_eq!(row["pendingRequestId"], asked["requestId"]);
    // Pending fields are for pairing readers only.
    let (mut reader, _) = connect_as(&gw, operator(&["operator.read"])).await;
    let plain = call(&mut reader, "2", "node.list", json!({})).await;
    assert!(
        plain["payload"]["nodes"][0]
            .get("pendingRequestId")
            .is_none()
    );

    // Until approval nothing runs.
    invoke(&mut admin, "3", &dev.id(), "system.which", 5000).await;
    let r = res(&mut admin, "3").await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pending approval"),
        "{r}"
    );
    // system.* needs admin to approve.
    let id = asked["requestId"].as_str().unwrap();
    let denied = call(
        &mut pairer,
        "4",
        "node.pair.approve",
        json!({"requestId": id}),
    )
    .await;
    assert_eq!(denied["ok"], false, "{denied}");
    let ok = call(
        &mut admin,
        "4",
        "node.pair.approve",
        json!({"requestId": id}),
    )
    .await;
    assert_eq!(ok["payload"]["node"]["commands"], asked["commands"], "{ok}");
    // The node hears the decision on its own socket, without a seq.
    let resolved = event(&mut nd, "node.pair.resolved").await;
    assert_eq!(resolved["payload"]["decision"], "approved");
    assert!(resolved.get("seq").is_none(), "{resolved}");

    // An invoke reaches the node as a targeted event with the time left.
    invoke(&mut admin, "5", &dev.id(), "system.which", 5000).await;
    let req = event(&mut nd, "node.invoke.request").await;
    assert!(req.get("seq").is_none(), "{req}");
    let p = &req["payload"];
    assert_eq!(
        (p["command"].as_str(), p["paramsJSON"].as_str()),
        (Some("system.which"), Some(r#"{"bins":["sh"]}"#))
    );
    assert!(p["timeoutMs"].as_u64().unwrap() <= 5000);
    let answered = call(&mut nd, "n1", "node.invoke.result", json!({
        "id": p["id"], "nodeId": dev.id(), "ok": true, "payloadJSON": r#"{"bins":{"sh":"/bin/sh"}}"#,
    }))
    .await;
    assert_eq!(answered["payload"], json!({"ok": true}));
    let r = res(&mut admin, "5").await;
    assert_eq!(
        r["payload"]["payload"],
        json!({"bins": {"sh": "/bin/sh"}}),
        "{r}"
    );
    assert_eq!(r["payload"]["command"], "system.which");
    // A late or repeated answer is ignored.
    let late = call(
        &mut nd,
        "n2",
        "node.invoke.result",
        json!({"id": p["id"], "nodeId": dev.id(), "ok": true}),
    )
    .await;
    assert_eq!(late["payload"]["ignored"], true);

    // The node's own error comes back as UNAVAILABLE with its code.
    invoke(&mut admin, "6", &dev.id(), "system.run", 5000).await;
    let req = event(&mut nd, "node.invoke.request").await;
    let params: Value =
        serde_json::from_str(req["payload"]["paramsJSON"].as_str().unwrap()).unwrap();
    assert!(
        params["runId"].is_string(),
        "system.run gets a runId: {params}"
    );
    call(
        &mut nd,
        "n3",
        "node.invoke.result",
        json!({
            "id": req["payload"]["id"], "nodeId": dev.id(), "ok": false,
            "error": {"code": "UNAVAILABLE", "message": "command not supported"},
        }),
    )
    .await;
    let r = res(&mut admin, "6").await;
    assert_eq!(r["error"]["message"], "UNAVAILABLE: command not supported");
    assert_eq!(r["error"]["details"]["nodeCommandDispatched"], true);

    // No answer in time: TIMEOUT, and the node is told to cancel.
    invoke(&mut admin, "7", &dev.id(), "system.which", 200).await;
    let req = event(&mut nd, "node.invoke.request").await;
    let r = res(&mut admin, "7").await;
    assert_eq!(r["error"]["details"]["nodeError"]["code"], "TIMEOUT", "{r}");
    let cancel = event(&mut nd, "node.invoke.cancel").await;
    assert_eq!(cancel["payload"]["invokeId"], req["payload"]["id"]);

    // Policy refusals, worded as OpenClaw words them.
    invoke(&mut admin, "8", &dev.id(), "canvas.navigate", 5000).await;
    let r = res(&mut admin, "8").await;
    assert_eq!(
        r["error"]["message"],
        "node command not allowed: \"canvas.navigate\" is not in the allowlist for platform \"linux\""
    );
    invoke(&mut admin, "9", &dev.id(), "system.execApprovals.get", 5000).await;
    assert!(
        res(&mut admin, "9").await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exec.approvals.node")
    );
    // fs.listDir needs admin to invoke, not just write.
    let (mut writer, _) = connect_as(&gw, operator(&["operator.write"])).await;
    invoke(&mut writer, "10", &dev.id(), "fs.listDir", 5000).await;
    assert_eq!(res(&mut writer, "10").await["ok"], false);
    invoke(&mut admin, "11", "no-such-node", "system.which", 5000).await;
    let r = res(&mut admin, "11").await;
    assert_eq!(
        (
            r["error"]["code"].as_str(),
            r["error"]["details"]["code"].as_str(),
            r["error"]["retryable"].as_bool()
        ),
        (Some("UNAVAILABLE"), Some("PAIRING_CHANGED"), Some(true))
    );

    // Host stats are kept; a rename shows in describe.
    let stats = json!({"cpuCount": 2, "loadAverage": [0.1, 0.2, 0.3]}).to_string();
    let ack = call(
        &mut nd,
        "n4",
        "node.event",
        json!({"event": "node.host.stats", "payloadJSON": stats}),
    )
    .await;
    assert_eq!(
        ack["payload"],
        json!({"ok": true, "event": "node.host.stats", "handled": true})
    );
    call(
        &mut pairer,
        "12",
        "node.rename",
        json!({"nodeId": dev.id(), "displayName": "Kitchen"}),
    )
    .await;
    let d = call(
        &mut reader,
        "13",
        "node.describe",
        json!({"nodeId": dev.id()}),
    )
    .await;
    assert_eq!(
        (
            d["payload"]["displayName"].as_str(),
            d["payload"]["hostStats"]["cpuCount"].as_u64()
        ),
        (Some("Kitchen"), Some(2))
    );

    // The node goes away mid-invoke: DISCONNECTED; then NOT_CONNECTED.
    invoke(&mut admin, "14", &dev.id(), "system.which", 5000).await;
    event(&mut nd, "node.invoke.request").await;
    drop(nd);
    let r = res(&mut admin, "14").await;
    assert_eq!(
        r["error"]["details"]["nodeError"]["code"], "DISCONNECTED",
        "{r}"
    );
    // Its presence entry stays, marked as gone.
    loop {
        let p = event(&mut watcher, "presence").await;
        let gone = p["payload"]["presence"].as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["instanceId"] == dev.id().as_str() && e["reason"] == "disconnect")
        });
        if gone {
            break;
        }
    }
    invoke(&mut admin, "15", &dev.id(), "system.which", 5000).await;
    let r = res(&mut admin, "15").await;
    assert_eq!(r["error"]["details"]["code"], "NOT_CONNECTED", "{r}");
    // Offline rows come from the store and keep the approved surface.
    let row = call(&mut reader, "16", "node.list", json!({})).await["payload"]["nodes"][0].clone();
    assert_eq!(
        (row["connected"].as_bool(), row["approvalState"].as_str()),
        (Some(false), Some("approved"))
    );
    assert_eq!(row["commands"], asked["commands"]);
    assert!(row.get("pathEnv").is_none(), "{row}");

    // A surface can be rejected too: it stays unapproved.
    let (mut other, _) = {
        let dev2 = Device::new(34);
        let (ws, hello) = node(&gw, &dev2).await;
        (ws, (dev2, hello))
    };
    let asked2 = event(&mut pairer, "node.pair.requested").await["payload"].clone();
    let rejected = call(
        &mut pairer,
        "18",
        "node.pair.reject",
        json!({"requestId": asked2["requestId"]}),
    )
    .await;
    assert_eq!(rejected["payload"]["decision"], "rejected", "{rejected}");
    assert_eq!(
        event(&mut other, "node.pair.resolved").await["payload"]["decision"],
        "rejected"
    );
    let listed = call(&mut pairer, "19", "node.pair.list", json!({})).await;
    assert_eq!(listed["payload"]["pending"], json!([]));
    let unknown = call(
        &mut pairer,
        "20",
        "node.pair.approve",
        json!({"requestId": "nope"}),
    )
    .await;
    assert_eq!(unknown["error"]["message"], "unknown requestId");

    // Removing the node closes its socket with 4001.
    let (mut nd, _) = node(&gw, &dev).await;
    let removed = call(
        &mut pairer,
        "17",
        "node.pair.remove",
        json!({"nodeId": dev.id()}),
    )
    .await;
    assert_eq!(removed["payload"], json!({"nodeId": dev.id()}));
    assert_eq!(
        expect_close(&mut nd).await,
        (4001, "device removed".to_string())
    );
}

#[tokio::test]
async fn without_auto_approval_a_local_node_waits_for_an_admin() {
    let gw = TestGateway::with_config(
        json!({"gateway": {"nodes": {"pairing": {"autoApproveLocal": false}}}}),
    )
    .await;
    let (mut pairer, _) = connect_as(&gw, operator(&["operator.pairing"])).await;
    let dev = Device::new(32);
    let (mut nd, challenge) = gw.open().await;
    send(
        &mut nd,
        &connect_frame("1", dev.node_params(&challenge, DECLARED)),
    )
    .await;
    let refused = recv(&mut nd).await;
    assert_eq!(
        refused["error"]["details"]["code"], "PAIRING_REQUIRED",
        "{refused}"
    );
    assert_eq!(refused["error"]["details"]["requestedRole"], "node");
    let (code, reason) = expect_close(&mut nd).await;
    assert_eq!(code, 1008);
    assert!(reason.starts_with("pairing required"), "{reason}");
    let asked = event(&mut pairer, "device.pair.requested").await;
    let id = asked["payload"]["requestId"].as_str().unwrap().to_string();
    // Pairing a node needs admin (the real CLI retries with it).
    let denied = call(
        &mut pairer,
        "2",
        "device.pair.approve",
        json!({"requestId": id}),
    )
    .await;
    assert_eq!(denied["error"]["message"], "device pairing approval denied");
    let (mut admin, _) = connect_as(&gw, operator(&["operator.admin"])).await;
    let ok = call(
        &mut admin,
        "2",
        "device.pair.approve",
        json!({"requestId": id}),
    )
    .await;
    assert_eq!(ok["ok"], true, "{ok}");
    let (_nd, hello) = node(&gw, &dev).await;
    assert_eq!(hello["auth"]["role"], "node");
}

#[tokio::test]
async fn node_methods_belong_to_nodes_and_operator_methods_to_operators() {
    let gw = TestGateway::with_token().await;
    let (mut admin, _) = connect_as(&gw, operator(&["operator.admin"])).await;
    let r = call(
        &mut admin,
        "2",
        "node.invoke.result",
        json!({"id": "x", "nodeId": "y", "ok": true}),
    )
    .await;
    assert_eq!(r["error"]["message"], "unauthorized role: operator");
    let dev = Device::new(33);
    let (mut nd, _) = node(&gw, &dev).await;
    let r = call(&mut nd, "2", "node.list", json!({})).await;
    assert_eq!(r["error"]["message"], "unauthorized role: node");
    // A node answers only for itself.
    let r = call(
        &mut nd,
        "3",
        "node.invoke.result",
        json!({"id": "x", "nodeId": "someone-else", "ok": true}),
    )
    .await;
    assert_eq!(r["error"]["message"], "nodeId mismatch");
    // Inventory waits for approval, retryably, as the real host expects.
    let r = call(
        &mut nd,
        "4",
        "node.runnerInventory.update",
        json!({"protocolFeatures": []}),
    )
    .await;
    assert_eq!(
        (
            r["error"]["code"].as_str(),
            r["error"]["retryable"].as_bool()
        ),
        (Some("UNAVAILABLE"), Some(true))
    );
    // A device-less node is refused: its id is its device id.
    let (mut bare, _) = gw.open().await;
    let mut p = cli_params(Some(TOKEN));
    p["role"] = "node".into();
    p["client"]["mode"] = "node".into();
    send(&mut bare, &connect_frame("1", p)).await;
    let r = recv(&mut bare).await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("device identity"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departed_entries_are_capped_and_a_returning_node_is_listed_once() {
    let gw = TestGateway::with_token().await;
    let max = openclaw_gateway::server::PRESENCE_GONE_MAX;
    for i in 0..max + 5 {
        let conn = format!("conn-{i}");
        let entry = json!({"instanceId": format!("node-{i}"), "reason": "connect", "ts": i});
        gw.gw.set_presence(&conn, Some(entry));
        gw.gw.presence_disconnect(&conn);
    }
    let gone = |gw: &TestGateway| {
        presence(&gw.gw)
            .iter()
            .filter(|e| e["reason"] == "disconnect")
            .count()
    };
    assert_eq!(gone(&gw), max);
    // A node that comes back replaces its departed entry.
    let dev = Device::new(35);
    let (nd, _) = node(&gw, &dev).await;
    drop(nd);
    openclaw_e2e::wait_until(
        std::time::Duration::from_secs(5),
        "the node's departed entry",
        || {
            presence(&gw.gw)
                .iter()
                .any(|e| e["instanceId"] == dev.id().as_str() && e["reason"] == "disconnect")
        },
    );
    let (_nd, _) = node(&gw, &dev).await;
    let mine: Vec<_> = presence(&gw.gw)
        .into_iter()
        .filter(|e| e["instanceId"] == dev.id().as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["reason"], "connect");
}
