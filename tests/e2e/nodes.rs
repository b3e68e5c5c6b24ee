//! The real OpenClaw headless node host (`openclaw node run`) against a
//! gateway `openclawctl` started, driven by the real OpenClaw CLI
//! (`openclaw nodes ...`, `gateway call`), inside the loopback-only
//! namespace.

use std::time::Duration;

use openclaw_e2e::home::Running;
use openclaw_e2e::{TestHome, bins, ports, wait_until};
use serde_json::{Value, json};

use crate::agent::{gateway_env, ours, real, start_with_config};
use crate::interop::{assert_offline, ok_out, real_cli_command, token_of};

/// The real node host for profile `name`'s gateway, with its own state.
fn node_host(home: &TestHome, name: &str, port: u16) -> Running {
    assert_offline();
    let dir = home.path().join("node-host");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut cmd = home.command(bins::real_openclaw_cli());
    cmd.env("HOME", &dir)
        .env("OPENCLAW_STATE_DIR", &state)
        .env("OPENCLAW_CONFIG_PATH", state.join("openclaw.json"))
        .env("OPENCLAW_GATEWAY_TOKEN", token_of(home, name))
        .env("OPENCLAW_NO_AUTO_UPDATE", "1")
        .args([
            "node",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--display-name",
            "E2E Node",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    Running::spawn(cmd)
}

/// `nodes invoke --node <node> --command system.which` for `sh`, as JSON.
fn which_sh(node: &str) -> [&str; 9] {
    [
        "nodes",
        "invoke",
        "--node",
        node,
        "--command",
        "system.which",
        "--params",
        r#"{"bins":["sh"]}"#,
        "--json",
    ]
}

fn json_of(out: &std::process::Output) -> Value {
    let text = ok_out(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `nodes status --json` once `pred` holds for its first node.
fn first_node_when(
    home: &TestHome,
    env: &[(String, String)],
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    wait_until(Duration::from_secs(60), what, || {
        let out = real(home, env, &["nodes", "status", "--json"]);
        if !out.status.success() {
            return false;
        }
        last = json_of(&out)["nodes"][0].clone();
        pred(&last)
    });
    last
}

/// `gateway call node.invoke` of `system.run` (the `nodes invoke` command
/// refuses it) with `argv` and `timeout_ms`, as a command to run.
fn run_on_node(
    home: &TestHome,
    env: &[(String, String)],
    node: &str,
    argv: &[&str],
    timeout_ms: u64,
) -> std::process::Command {
    let params = json!({
        "nodeId": node, "command": "system.run", "params": {"command": argv},
        "idempotencyKey": format!("e2e-{timeout_ms}-{}", argv.join("-")), "timeoutMs": timeout_ms,
    });
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    real_cli_command(
        home,
        &env,
        &[
            "gateway",
            "call",
            "node.invoke",
            "--params",
            &params.to_string(),
            "--timeout",
            "30000",
            "--json",
        ],
    )
}

/// Both streams of a finished command, for matching an error code.
fn all_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_real_node_host_pairs_is_approved_and_runs_commands_through_our_gateway() {
    let home = TestHome::new();
    let slot = ports::claim();
    start_with_config(&home, "a", slot.base(), &json!({}));
    let env = gateway_env(&home, "a", slot.base());
    let host = node_host(&home, "a", slot.base());

    // Silent loopback pairing; the surface waits for an operator.
    let row = first_node_when(&home, &env, "the node host is listed", |n| {
        n["connected"] == true
    });
    assert_eq!(
        (row["approvalState"].as_str(), row["displayName"].as_str()),
        (Some("pending-approval"), Some("E2E Node")),
        "{row}"
    );
    let node = row["nodeId"].as_str().unwrap().to_string();
    let pending = json_of(&real(&home, &env, &["nodes", "pending", "--json"]));
    let request = pending[0]["requestId"].as_str().unwrap().to_string();
    assert_eq!(
        pending[0]["requiredApproveScopes"],
        json!(["operator.pairing", "operator.admin"])
    );
    let approved = json_of(&real(
        &home,
        &env,
        &["nodes", "approve", &request, "--json"],
    ));
    assert_eq!(approved["node"]["nodeId"], node.as_str());
    let row = first_node_when(&home, &env, "the surface is approved", |n| {
        n["approvalState"] == "approved"
    });
    let commands = row["commands"].as_array().unwrap();
    assert!(commands.contains(&json!("system.which")), "{row}");
    assert!(!commands.contains(&json!("file.write")), "withheld: {row}");

    // The real `nodes list` and `nodes describe` read it.
    let listed = json_of(&real(&home, &env, &["nodes", "list", "--json"]));
    assert_eq!(listed["paired"][0]["nodeId"], node.as_str(), "{listed}");
    let described = json_of(&real(
        &home,
        &env,
        &["nodes", "describe", "--node", "E2E Node", "--json"],
    ));
    assert_eq!(
        (
            described["nodeId"].as_str(),
            described["connected"].as_bool()
        ),
        (Some(node.as_str()), Some(true)),
        "{described}"
    );

    // The real `nodes invoke` gets the node's answer back.
    let which = json_of(&real(&home, &env, &which_sh(&node)));
    let sh = which["payload"]["bins"]["sh"].as_str().unwrap_or_default();
    assert!(sh.ends_with("/sh"), "{which}");

    // Ours does the same: status, and invoke by display name.
    let mine = json_of(&ours(&home, "a", &["nodes", "status", "--json"]));
    assert_eq!(mine["nodes"][0]["approvalState"], "approved");
    let which = json_of(&ours(&home, "a", &which_sh("E2E Node")));
    assert_eq!(which["payload"]["bins"]["sh"].as_str(), Some(sh), "{which}");

    // Past its timeout: TIMEOUT (the node is told to cancel).
    let out = run_on_node(&home, &env, &node, &["sleep", "5"], 500)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && all_text(&out).contains("TIMEOUT"),
        "{}",
        all_text(&out)
    );

    // The node killed mid-invoke: DISCONNECTED, at once.
    let waiter = Running::spawn({
        let mut c = run_on_node(&home, &env, &node, &["sleep", "20"], 25_000);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    });
    // Wait until the node host runs the command, then kill it.
    wait_until(Duration::from_secs(30), "the node runs sleep 20", || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x0020\x00"))
    });
    host.signal(nix::sys::signal::Signal::SIGKILL);
    let out = waiter.output(Duration::from_secs(30));
    assert!(
        !out.status.success() && all_text(&out).contains("DISCONNECTED"),
        "{}",
        all_text(&out)
    );
    let row = first_node_when(&home, &env, "the node shows offline", |n| {
        n["connected"] == false
    });
    assert_eq!(row["approvalState"], "approved");
    drop(host);
}

#[test]
fn without_auto_approval_the_real_node_host_waits_for_devices_approve() {
    let home = TestHome::new();
    let slot = ports::claim();
    let cfg = json!({"gateway": {"nodes": {"pairing": {"autoApproveLocal": false}}}});
    start_with_config(&home, "a", slot.base(), &cfg);
    let env = gateway_env(&home, "a", slot.base());
    let host = node_host(&home, "a", slot.base());
    // The device request shows up; the real CLI approves it (it retries
    // with admin when pairing alone is refused).
    let mut request = String::new();
    wait_until(Duration::from_secs(60), "a node device request", || {
        let out = real(&home, &env, &["devices", "list", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        match v["pending"].as_array().and_then(|p| p.first()) {
            Some(p) if p["role"] == "node" => {
                request = p["requestId"].as_str().unwrap().to_string();
                true
            }
            _ => false,
        }
    });
    ok_out(&real(
        &home,
        &env,
        &["devices", "approve", &request, "--json"],
    ));
    // The paused host must be restarted; then it connects.
    drop(host);
    let _host = node_host(&home, "a", slot.base());
    let row = first_node_when(&home, &env, "the approved node connects", |n| {
        n["connected"] == true
    });
    assert_eq!(row["approvalState"], "pending-approval", "{row}");
}

/// Our `openclaw node run` for a gateway on `port` with `token`, keeping
/// its identity under `dir`.
fn our_node(home: &TestHome, dir: &str, port: u16, token: &str, extra: &[&str]) -> Running {
    let state = home.path().join(dir);
    let mut cmd = home.command(bins::openclaw());
    cmd.env("OPENCLAW_STATE_DIR", &state)
        .env("OPENCLAW_CONFIG_PATH", state.join("openclaw.json"))
        .env("OPENCLAW_GATEWAY_TOKEN", token)
        .args([
            "node",
            "run",
            "--port",
            &port.to_string(),
            "--display-name",
            "Our Node",
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    Running::spawn(cmd)
}

/// `nodes pending` → `nodes approve` with the real CLI.
/// `nodes pending` until a request shows, then `nodes approve` it, with
/// `cli` (the real CLI or ours).
fn approve_first_pending(cli: impl Fn(&[&str]) -> std::process::Output) {
    let mut request = String::new();
    wait_until(Duration::from_secs(60), "a pending node surface", || {
        let out = cli(&["nodes", "pending", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v[0]["requestId"].as_str().is_some_and(|r| {
            request = r.to_string();
            true
        })
    });
    ok_out(&cli(&["nodes", "approve", &request, "--json"]));
}

#[test]
fn our_node_host_serves_our_gateway_survives_its_restart_and_stops_on_sigterm() {
    let home = TestHome::new();
    let slot = ports::claim();
    start_with_config(&home, "a", slot.base(), &json!({}));
    let env = gateway_env(&home, "a", slot.base());
    let token = token_of(&home, "a");
    let mut node = our_node(
        &home,
        "our-node",
        slot.base(),
        &token,
        &["--allow-run", "echo"],
    );
    // Our own CLI approves it this time.
    approve_first_pending(|args| ours(&home, "a", args));
    let row = first_node_when(&home, &env, "our node is approved", |n| {
        n["approvalState"] == "approved" && n["connected"] == true
    });
    assert_eq!(
        row["commands"],
        json!(["system.run", "system.which"]),
        "{row}"
    );
    let id = row["nodeId"].as_str().unwrap().to_string();
    // Its identity is its own, private, and kept across runs.
    let doc = home.path().join("our-node/node/device.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&doc).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // system.run: an allowed program runs; any other is refused by the node.
    let out = run_on_node(&home, &env, &id, &["echo", "hello"], 10_000)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["payload"]["stdout"], "hello\n", "{}", all_text(&out));
    let out = run_on_node(&home, &env, &id, &["ls", "/"], 10_000)
        .output()
        .unwrap();
    assert!(
        all_text(&out).contains("not on this node's allowlist"),
        "{}",
        all_text(&out)
    );

    // The gateway restarts: the node comes back by itself.
    crate::skeleton::ok(&home, &["restart", "a"]);
    first_node_when(&home, &env, "our node reconnects", |n| {
        n["connected"] == true
    });
    let which = json_of(&ours(&home, "a", &which_sh("Our Node")));
    assert!(which["payload"]["bins"]["sh"].is_string(), "{which}");

    // SIGTERM: it says goodbye and exits 0.
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(node.wait_exit(Duration::from_secs(10)).success());
    first_node_when(&home, &env, "our node shows offline", |n| {
        n["connected"] == false
    });
    // Renamed, described and removed with our CLI.
    ok_out(&ours(
        &home,
        "a",
        &["nodes", "rename", "--node", "Our Node", "--name", "Renamed"],
    ));
    let d = json_of(&ours(
        &home,
        "a",
        &["nodes", "describe", "--node", "Renamed", "--json"],
    ));
    assert_eq!(
        (d["nodeId"].as_str(), d["connected"].as_bool()),
        (Some(id.as_str()), Some(false)),
        "{d}"
    );
    ok_out(&ours(&home, "a", &["nodes", "remove", "--node", "Renamed"]));
    let left = json_of(&ours(&home, "a", &["nodes", "status", "--json"]));
    assert_eq!(left["nodes"], json!([]), "{left}");
    // A wrong secret ends it with 1 instead of retrying forever.
    let mut wrong = our_node(&home, "our-node", slot.base(), "not-the-token", &[]);
    assert_eq!(wrong.wait_exit(Duration::from_secs(30)).code(), Some(1));
}

/// True if `GET /healthz` on `port` answers 200.
fn healthz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    s.write_all(req.as_bytes()).is_ok() && s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// The real OpenClaw gateway (`openclaw gateway run`) on `port` with
/// `token`, its state under `home`; up when `/healthz` answers.
fn real_gateway(home: &TestHome, port: u16, token: &str) -> Running {
    assert_offline();
    let state = home.path().join("real-gateway/state");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = json!({"gateway": {"mode": "local", "auth": {"mode": "token", "token": token}}});
    std::fs::write(state.join("openclaw.json"), cfg.to_string()).unwrap();
    let mut cmd = home.command(bins::real_openclaw_cli());
    cmd.env("HOME", home.path().join("real-gateway"))
        .env("OPENCLAW_STATE_DIR", &state)
        .env("OPENCLAW_CONFIG_PATH", state.join("openclaw.json"))
        .args(["gateway", "run", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let gw = Running::spawn(cmd);
    wait_until(
        Duration::from_secs(120),
        "the real gateway answers /healthz",
        || healthz(port),
    );
    gw
}

#[test]
fn our_node_host_works_with_the_real_openclaw_gateway() {
    let home = TestHome::new();
    let slot = ports::claim();
    let token = "real-gateway-token-0123456789";
    let _gw = real_gateway(&home, slot.base(), token);
    let env = [
        (
            "OPENCLAW_GATEWAY_URL".to_string(),
            format!("ws://127.0.0.1:{}", slot.base()),
        ),
        ("OPENCLAW_GATEWAY_TOKEN".to_string(), token.to_string()),
    ];
    let _node = our_node(&home, "our-node", slot.base(), token, &[]);
    approve_first_pending(|args| real(&home, &env, args));
    let row = first_node_when(
        &home,
        &env,
        "our node is approved by the real gateway",
        |n| n["approvalState"] == "approved" && n["connected"] == true,
    );
    let which = json_of(&real(
        &home,
        &env,
        &which_sh(row["nodeId"].as_str().unwrap()),
    ));
    assert!(
        which["payload"]["bins"]["sh"]
            .as_str()
            .is_some_and(|p| p.ends_with("/sh")),
        "{which}"
    );
}
