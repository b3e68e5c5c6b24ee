//! The `openclaw` binary: the singleton guard's messages and exit code 78,
//! refusals before binding, and a graceful stop on SIGTERM.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use openclaw_e2e::home::{Running, stderr};
use openclaw_e2e::{TestHome, ports, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw");

fn write_config(home: &TestHome, profile: &str, body: &str) {
    let dir = home.state_dir(profile);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("openclaw.json"), body).unwrap();
}

fn gateway(home: &TestHome, profile: &str, args: &[&str]) -> Command {
    let mut cmd = home.command(BIN);
    cmd.args(["--profile", profile, "gateway"]).args(args);
    cmd
}

fn live(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains(r#"{"ok":true,"status":"live"}"#)
}

fn start_live(home: &TestHome, profile: &str, port: u16) -> Running {
    write_config(
        home,
        profile,
        &format!(r#"{{ gateway: {{ mode: "local", port: {port}, auth: {{ token: "t" }} }} }}"#),
    );
    let mut cmd = gateway(home, profile, &[]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let g = Running::spawn(cmd);
    wait_until(Duration::from_secs(20), "gateway answers /healthz", || {
        live(port)
    });
    g
}

#[test]
fn a_second_gateway_on_the_same_state_dir_exits_78() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    let first = start_live(&home, "a", slot.nth(0));
    // Same profile (same state dir), another port: the state lock refuses.
    let out = gateway(&home, "a", &["--port", &slot.nth(1).to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "gateway already running (pid {}); lock timeout after 5000ms",
            first.pid()
        )),
        "{}",
        stderr(&out)
    );
    assert!(live(slot.nth(0)), "the first gateway is unharmed");
}

#[test]
fn a_second_gateway_on_the_same_port_exits_78() {
    let home = TestHome::new();
    let slot = ports::claim();
    let port = slot.base();
    let _first = start_live(&home, "a", port);
    write_config(
        &home,
        "b",
        r#"{ gateway: { mode: "local", auth: { token: "u" } } }"#,
    );
    let out = gateway(&home, "b", &["--port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "another gateway instance is already listening on ws://127.0.0.1:{port}"
        )),
        "{}",
        stderr(&out)
    );
    // The loser released its state lock on the way out.
    assert!(
        home.lock_holders().len() == 1,
        "only the first gateway holds a lock"
    );
}

#[test]
fn refusals_exit_78_before_binding() {
    let home = TestHome::new();
    let slot = ports::claim();
    let port = slot.base().to_string();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "{}",
            &["--port", &port],
            "Gateway start blocked: set gateway.mode=local (current: unset)",
        ),
        (
            r#"{gateway:{mode:"local"}}"#,
            &["--port", &port, "--bind", "lan"],
            "refusing to bind gateway to 0.0.0.0:",
        ),
        (
            r#"{gateway:{mode:"local", port: "x"}}"#,
            &["--port", &port],
            "`gateway.port` must be a port number",
        ),
        ("{ gateway: ", &["--port", &port], "invalid JSON5 in "),
    ];
    for (config, args, want) in cases {
        write_config(&home, "a", config);
        let out = gateway(&home, "a", args).output().unwrap();
        assert_eq!(out.status.code(), Some(78), "{config}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{config}: {}", stderr(&out));
        assert!(!live(slot.base()));
    }
}

#[test]
fn bad_profile_names_are_usage_errors() {
    let home = TestHome::new();
    let out = home
        .command(BIN)
        .args(["--profile", "a b", "gateway"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(r#"Invalid --profile (use letters, numbers, "_", "-" only)"#),
        "{}",
        stderr(&out)
    );
    let out = home
        .command(BIN)
        .args(["--dev", "--profile", "x", "gateway"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Cannot combine --dev with --profile"));
}

#[test]
fn sigterm_stops_gracefully_and_releases_the_lock() {
    let home = TestHome::new();
    let slot = ports::claim();
    let mut g = start_live(&home, "a", slot.base());
    assert_eq!(home.lock_holders(), vec![g.pid()]);
    g.signal(Signal::SIGTERM);
    let status = g.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert!(home.lock_holders().is_empty());
    assert!(!live(slot.base()));
    // The next gateway on that state dir starts at once.
    let _again = start_live(&home, "a", slot.base());
}

#[test]
fn env_token_and_port_are_honoured() {
    let home = TestHome::new();
    let slot = ports::claim();
    write_config(&home, "a", r#"{ gateway: { mode: "local" } }"#);
    let mut cmd = gateway(&home, "a", &[]);
    cmd.env("OPENCLAW_GATEWAY_PORT", slot.base().to_string())
        .env("OPENCLAW_GATEWAY_TOKEN", "from-env")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _g = Running::spawn(cmd);
    wait_until(Duration::from_secs(20), "gateway on the env port", || {
        live(slot.base())
    });
}

/// A container's first start: the config comes from the seed, once; a
/// later seed never replaces it. `gateway healthcheck` passes on the live
/// gateway only (its JSON body, not any 200).
#[test]
fn a_config_seed_fills_an_absent_config_and_healthcheck_checks_the_body() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    let slot = ports::claim();
    let port = slot.base();
    let seed = home.path().join("seed.json");
    std::fs::write(
        &seed,
        r#"{ gateway: { mode: "local", auth: { token: "t" } } }"#,
    )
    .unwrap();
    let config = home.state_dir("a").join("openclaw.json");
    let check = |args: &[&str]| {
        home.command(BIN)
            .args([
                "--profile",
                "a",
                "gateway",
                "healthcheck",
                "--timeout",
                "2000",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let out = check(&["--port", &port.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing answers"), "{}", stderr(&out));
    let mut cmd = gateway(&home, "a", &["--port", &port.to_string()]);
    cmd.env("OPENCLAW_CONFIG_SEED", &seed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let g = Running::spawn(cmd);
    wait_until(Duration::from_secs(20), "the seeded gateway", || live(port));
    let seeded = std::fs::read_to_string(&config).unwrap();
    assert!(seeded.contains(r#"token: "t""#), "{seeded}");
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for args in [
        &["--port", &port.to_string()][..],
        &["--port", &port.to_string(), "--ready"],
    ] {
        let out = check(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    drop(g);
    // Another seed later: the live config stays.
    std::fs::write(
        &seed,
        r#"{ gateway: { mode: "local", auth: { token: "other" } } }"#,
    )
    .unwrap();
    let mut cmd = gateway(&home, "a", &["--port", &port.to_string()]);
    cmd.env("OPENCLAW_CONFIG_SEED", &seed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _g = Running::spawn(cmd);
    wait_until(Duration::from_secs(20), "the gateway again", || live(port));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), seeded);
    // Something else on a port that answers 200 without our body fails.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = other.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    });
    let out = check(&["--port", &other_port.to_string()]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("without a gateway's JSON body"),
        "{}",
        stderr(&out)
    );
}

/// A compact profile has no room for the browser's CDP ports: a config
/// that turns the browser on is refused with the way out.
#[test]
fn a_compact_profile_refuses_the_browser() {
    let home = TestHome::new();
    let slot = ports::claim();
    let port = slot.base().to_string();
    write_config(
        &home,
        "a",
        r#"{ gateway: { mode: "local", auth: { token: "t" } }, browser: { enabled: true } }"#,
    );
    let out = gateway(&home, "a", &["--port", &port])
        .env("OPENCLAWCTL_PORT_PLAN", "compact")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("outside this profile's compact port plan")
            && stderr(&out).contains("--ports full"),
        "{}",
        stderr(&out)
    );
    assert!(!live(slot.base()));
    // The full plan keeps OpenClaw's ports: the same config starts.
    let mut cmd = gateway(&home, "a", &["--port", &port]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _g = Running::spawn(cmd);
    wait_until(Duration::from_secs(20), "the full-plan gateway", || {
        live(slot.base())
    });
}

#[test]
fn the_worker_count_is_checked_and_honoured() {
    let home = TestHome::new();
    let slot = ports::claim();
    write_config(&home, "a", r#"{ gateway: { mode: "local" } }"#);
    let port = slot.base().to_string();
    for bad in ["0", "65", "two"] {
        let out = gateway(&home, "a", &["--port", &port])
            .env("OPENCLAW_GATEWAY_WORKERS", bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("OPENCLAW_GATEWAY_WORKERS must be a whole number from 1 to 64"),
            "{bad}: {}",
            stderr(&out)
        );
        assert!(!live(slot.base()));
    }
    let mut cmd = gateway(&home, "a", &["--port", &port]);
    cmd.env("OPENCLAW_GATEWAY_WORKERS", "3")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _g = Running::spawn(cmd);
    wait_until(Duration::from_secs(20), "a gateway with 3 workers", || {
        live(slot.base())
    });
}

#[test]
fn one_config_file_is_one_gateway_unless_multi_gateway_is_allowed() {
    let home = TestHome::new();
    let slot = ports::claim_slots(3);
    let config = home.path().join("shared.json");
    std::fs::write(
        &config,
        r#"{ gateway: { mode: "local", auth: { token: "t" } } }"#,
    )
    .unwrap();
    let run = |state: &str, port: u16| {
        let mut cmd = home.command(BIN);
        cmd.env("OPENCLAW_STATE_DIR", home.path().join(state))
            .env("OPENCLAW_CONFIG_PATH", &config)
            .args(["gateway", "--port", &port.to_string()]);
        cmd
    };
    let mut first = run("s1", slot.nth(0));
    first
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let first = Running::spawn(first);
    wait_until(Duration::from_secs(20), "first gateway", || {
        live(slot.nth(0))
    });
    let out = run("s2", slot.nth(1)).output().unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "gateway already running (pid {}); lock timeout after 5000ms",
            first.pid()
        )),
        "{}",
        stderr(&out)
    );
    let mut multi = run("s3", slot.nth(2));
    multi
        .env("OPENCLAW_ALLOW_MULTI_GATEWAY", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _multi = Running::spawn(multi);
    wait_until(
        Duration::from_secs(20),
        "the multi-gateway one starts",
        || live(slot.nth(2)),
    );
}

#[test]
fn under_a_service_manager_a_newcomer_yields_to_a_healthy_incumbent() {
    let home = TestHome::new();
    let slot = ports::claim();
    let _first = start_live(&home, "a", slot.base());
    let out = gateway(&home, "a", &[])
        .env("INVOCATION_ID", "test-invocation")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the gateway of profile `a` (pid {}) already serves ws://127.0.0.1:{}; yielding to it",
            _first.pid(),
            slot.base()
        )),
        "{}",
        stderr(&out)
    );
    // (The lock path would have said "gateway already running": this one
    // yielded before waiting on the lock.)
}

#[test]
fn operator_commands_find_and_talk_to_the_gateway() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    let port = slot.nth(0);
    // A pending device request to approve by its code, and a log to tail.
    let state = home.state_dir("a");
    std::fs::create_dir_all(state.join("devices")).unwrap();
    let pending = serde_json::json!({"r1": {"requestId": "r1", "code": "ABCDEFGH", "deviceId": "d1", "publicKey": "k",
        "clientId": "cli", "clientMode": "cli", "role": "operator", "scopes": [], "remoteIp": "10.0.0.9",
        "ts": openclaw_profiles::lock::now_ms()}});
    std::fs::write(state.join("devices/pending.json"), pending.to_string()).unwrap();
    std::fs::create_dir_all(state.join("logs")).unwrap();
    std::fs::write(
        state.join("logs/gateway.log"),
        "first line\nsecond line\nthird line\n",
    )
    .unwrap();
    let _g = start_live(&home, "a", port);
    let oc = |args: &[&str]| home.command(BIN).args(args).output().unwrap();
    let json = |out: &std::process::Output| -> serde_json::Value {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // The profile's own config: port and token.
    assert_eq!(
        json(&oc(&["--profile", "a", "health", "--json"]))["ok"],
        true
    );
    // --url with --token.
    let url = format!("ws://127.0.0.1:{port}");
    let st = json(&oc(&[
        "gateway", "call", "status", "--url", &url, "--token", "t", "--json",
    ]));
    assert!(st["runtimeVersion"].as_str().unwrap().ends_with("-rust"));
    // OPENCLAW_GATEWAY_URL and OPENCLAW_GATEWAY_TOKEN.
    let out = home
        .command(BIN)
        .env("OPENCLAW_GATEWAY_URL", &url)
        .env("OPENCLAW_GATEWAY_TOKEN", "t")
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["tasks"]["total"], 0);
    // --deep adds the service and the channels' states, and says that no
    // probe ran (there is no channel adapter to probe yet).
    let deep = json(&oc(&["--profile", "a", "status", "--deep", "--json"]));
    assert_eq!(
        (
            deep["service"]["installed"].as_bool(),
            deep["channels"]["channelOrder"].clone(),
            deep["channelsProbed"].as_bool()
        ),
        (Some(false), serde_json::json!([]), Some(false))
    );
    let out = oc(&["--profile", "a", "channels", "status", "--probe"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Probe: not run"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        json(&oc(&[
            "--profile",
            "a",
            "channels",
            "status",
            "--probe",
            "--json"
        ]))["probed"],
        false
    );
    // A wrong token: exit 1 and the gateway's error.
    let out = oc(&[
        "gateway", "call", "health", "--url", &url, "--token", "nope", "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH");
    // --url without --token is a usage error.
    assert_eq!(
        oc(&["gateway", "call", "health", "--url", &url])
            .status
            .code(),
        Some(2)
    );
    // The probe connects with reduced scopes, like the real gateway's probes,
    // and prints the real CLI's document.
    let probe = json(&oc(&["--profile", "a", "gateway", "probe", "--json"]));
    assert_eq!(
        (probe["ok"].as_bool(), probe["capability"].as_str()),
        (Some(true), Some("connected_no_operator_scope"))
    );
    assert_eq!(probe["primaryTargetId"], "localLoopback", "{probe}");
    assert_eq!(probe["targets"][0]["connect"]["ok"], true, "{probe}");
    assert_eq!(
        probe["warnings"][0]["code"], "probe_scope_limited",
        "{probe}"
    );
    // Wrong credentials: reachable, with a warning, and exit 1.
    let out = oc(&["gateway", "probe", "--url", &url, "--token", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Reachable: yes")
            && text.contains("Warning: The gateway answered but refused"),
        "{text}"
    );
    // Nobody there: not reachable.
    let out = oc(&[
        "gateway",
        "probe",
        "--url",
        "ws://127.0.0.1:9",
        "--token",
        "x",
        "--timeout",
        "2000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Reachable: no"));
    // The real CLI's flags are accepted and honoured.
    for args in [
        &[
            "--profile",
            "a",
            "--no-color",
            "--log-level",
            "warn",
            "health",
            "--verbose",
            "--timeout",
            "5000",
        ][..],
        &[
            "--profile",
            "a",
            "status",
            "--all",
            "--json",
            "--timeout",
            "5000",
        ],
        &[
            "--profile",
            "a",
            "logs",
            "--limit",
            "2",
            "--max-bytes",
            "4096",
            "--plain",
            "--utc",
        ],
        &[
            "gateway",
            "call",
            "health",
            "--url",
            &url,
            "--token",
            "t",
            "--expect-final",
            "--timeout",
            "5000",
            "--json",
        ],
        &[
            "--profile",
            "a",
            "doctor",
            "--non-interactive",
            "--yes",
            "--json",
        ],
    ] {
        let out = oc(args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("unexpected argument"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let verbose = oc(&["--profile", "a", "health", "--verbose"]);
    assert!(String::from_utf8_lossy(&verbose.stdout).contains("Snapshot:"));
    let all = json(&oc(&["--profile", "a", "status", "--all", "--json"]));
    assert_eq!(all["channelsProbed"], false, "--all includes the deep view");
    // logs over logs.tail.
    let out = oc(&["--profile", "a", "logs", "-n", "2"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "second line\nthird line\n"
    );
    // channels and devices.
    assert_eq!(
        json(&oc(&["--profile", "a", "channels", "status", "--json"]))["channelOrder"],
        serde_json::json!([])
    );
    let list = json(&oc(&["--profile", "a", "devices", "list", "--json"]));
    assert_eq!(list["pending"][0]["code"], "ABCDEFGH");
    // pairing approve by code, in OpenClaw's `pairing approve <channel> <code>` form too.
    let out = oc(&[
        "--profile",
        "a",
        "pairing",
        "approve",
        "telegram",
        "abcdefgh",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = json(&oc(&["--profile", "a", "devices", "list", "--json"]));
    assert_eq!(
        (
            list["pending"].as_array().unwrap().len(),
            list["paired"][0]["deviceId"].as_str()
        ),
        (0, Some("d1"))
    );
    let out = oc(&["--profile", "a", "pairing", "approve", "ZZZZZZZZ"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no pending pairing request with code ZZZZZZZZ"));
    // Nothing listening: exit 1, not a hang.
    let out = oc(&[
        "health",
        "--url",
        &format!("ws://127.0.0.1:{}", slot.nth(1)),
        "--token",
        "t",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach the gateway"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_client_that_never_sends_connect_is_closed_after_the_handshake_deadline() {
    use futures_util::StreamExt;
    let home = TestHome::new();
    let slot = ports::claim();
    write_config(
        &home,
        "a",
        r#"{ gateway: { mode: "local", auth: { token: "t" } } }"#,
    );
    let mut cmd = gateway(&home, "a", &["--port", &slot.base().to_string()]);
    cmd.env("OPENCLAW_HANDSHAKE_TIMEOUT_MS", "300")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _g = Running::spawn(cmd);
    let port = slot.base();
    tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(20), "gateway", || live(port))
    })
    .await
    .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut saw_challenge = false;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                    saw_challenge |= t.contains("connect.challenge")
                }
                Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => return true,
                Ok(_) => {}
            }
        }
        true
    })
    .await;
    assert!(saw_challenge);
    assert_eq!(ended, Ok(true), "the gateway closed the silent socket");
}

#[test]
fn logs_follow_prints_new_lines_as_they_come() {
    use std::io::BufRead;
    let home = TestHome::new();
    let slot = ports::claim();
    let log = home.state_dir("a").join("logs/gateway.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "old line\n").unwrap();
    let _g = start_live(&home, "a", slot.base());
    let mut cmd = home.command(BIN);
    cmd.args(["--profile", "a", "logs", "-n", "1", "--follow"])
        .stdout(std::process::Stdio::piped());
    let mut follower = Running::spawn(cmd);
    let out = follower.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "old line"
    );
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, b"fresh line\n").unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "fresh line"
    );
}

#[test]
fn gateway_status_deep_lists_other_gateway_services() {
    let home = TestHome::new();
    write_config(&home, "a", r#"{ gateway: { mode: "local" } }"#);
    let units = home.path().join(".config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("clawdbot-gateway.service"),
        "[Service]\nExecStart=/usr/bin/node /opt/clawdbot/dist/index.js gateway\n",
    )
    .unwrap();
    let out = home
        .command(BIN)
        .args(["--profile", "a", "gateway", "status", "--deep", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["installed"], false);
    let others = v["otherServices"].as_array().unwrap();
    assert!(
        others
            .iter()
            .any(|o| o["name"] == "clawdbot-gateway.service" && o["legacy"] == true),
        "{v}"
    );
    let human = home
        .command(BIN)
        .args(["--profile", "a", "gateway", "status", "--deep"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("Other gateway-like services detected")
    );
}

#[test]
fn no_log_level_prints_a_secret() {
    let home = TestHome::new();
    let slot = ports::claim();
    let port = slot.base();
    let secret = "trace-level-secret-0123456789abcdef";
    write_config(
        &home,
        "a",
        &format!(
            r#"{{ gateway: {{ mode: "local", port: {port}, auth: {{ token: "{secret}" }} }} }}"#
        ),
    );
    let log = home.path().join("trace.log");
    let mut cmd = gateway(&home, "a", &[]);
    cmd.env("RUST_LOG", "trace")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::options().append(true).open(&log).unwrap());
    let mut g = Running::spawn(cmd);
    wait_until(Duration::from_secs(20), "gateway answers /healthz", || {
        live(port)
    });
    let url = format!("ws://127.0.0.1:{port}");
    let out = home
        .command(BIN)
        .env("RUST_LOG", "trace")
        .args([
            "gateway", "call", "health", "--url", &url, "--token", secret, "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(secret),
        "the client traced the secret"
    );
    g.signal(nix::sys::signal::Signal::SIGTERM);
    g.wait_exit(Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "no trace output at all: {text}"
    );
    assert!(!text.contains(secret), "the gateway traced the secret");
    // Debug output of every secret-bearing type hides it too.
    let flags = openclaw_gateway::settings::GatewayFlags {
        token: Some(openclaw_profiles::config::Secret::new(secret)),
        ..Default::default()
    };
    let target = openclaw_gateway::client::Target {
        url: url.clone(),
        token: Some(openclaw_profiles::config::Secret::new(secret)),
        password: Some(openclaw_profiles::config::Secret::new(secret)),
        timeout: Duration::from_secs(1),
    };
    let auth: openclaw_gateway::protocol::ConnectAuth = serde_json::from_value(
        serde_json::json!({"token": secret, "deviceToken": secret, "password": secret}),
    )
    .unwrap();
    for dbg in [
        format!("{flags:?}"),
        format!("{target:?}"),
        format!("{auth:?}"),
    ] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
}

#[test]
fn a_stop_does_not_wait_for_half_sent_requests() {
    let home = TestHome::new();
    let slot = ports::claim();
    let mut g = start_live(&home, "a", slot.base());
    // Half a request: without a header deadline and a stop that closes what
    // is still handshaking, this kept the gateway alive.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", slot.base())).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    g.signal(nix::sys::signal::Signal::SIGTERM);
    // Well inside the 10 s header deadline.
    let status = g.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
}
