//! `openclawctl profile create a && start --profile a && status --json`,
//! two profiles side by side, the singleton guard seen from outside, and
//! `stop` leaving nothing behind.

use std::time::Duration;

use openclaw_e2e::home::{stderr, stdout};
use openclaw_e2e::{TestHome, bins, ports, wait_until};
use openclaw_profiles::process::pid_alive;
use serde_json::Value;

pub(crate) fn ok(home: &TestHome, args: &[&str]) -> String {
    let out = home.ctl(args);
    assert!(
        out.status.success(),
        "openclawctl {args:?} failed ({:?}): {}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

pub(crate) fn status_of(home: &TestHome, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(home, &["status", "--json"])).unwrap();
    v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no profile {name} in {v}"))
        .clone()
}

pub(crate) fn create_and_start(home: &TestHome, name: &str, port: u16) -> Value {
    ok(
        home,
        &["profile", "create", name, "--port", &port.to_string()],
    );
    let out = ok(home, &["start", "--profile", name]);
    assert!(out.contains(&format!("started profile `{name}`")), "{out}");
    status_of(home, name)
}

#[test]
fn start_status_stop_walking_skeleton() {
    let home = TestHome::new();
    let slot = ports::claim();
    let s = create_and_start(&home, "a", slot.base());
    assert_eq!(s["state"], "running");
    assert_eq!(s["healthy"], true);
    assert_eq!(s["managedBy"], "openclawctl");
    assert_eq!(s["port"], slot.base());
    assert_eq!(s["restarts"], 0);
    assert_eq!(s["lastExit"], Value::Null);
    assert!(s["uptimeMs"].is_u64());
    assert_eq!(s["stateDir"], home.state_dir("a").to_str().unwrap());
    assert_eq!(
        s["configPath"],
        home.state_dir("a").join("openclaw.json").to_str().unwrap()
    );
    let pid = s["pid"].as_u64().unwrap() as u32;
    // The gateway outlived the `openclawctl start` process and logs to its state dir.
    assert!(pid_alive(pid));
    let log = std::fs::read_to_string(home.state_dir("a").join("logs/gateway.log")).unwrap();
    assert!(
        log.contains(&format!("listening on ws://127.0.0.1:{}", slot.base())),
        "{log}"
    );
    // The table shows the same facts.
    let table = ok(&home, &["status"]);
    assert!(
        table.contains("running") && table.contains(&pid.to_string()),
        "{table}"
    );

    let out = ok(&home, &["stop", "--profile", "a"]);
    assert!(
        out.contains(&format!("stopped profile `a` (pid {pid})")),
        "{out}"
    );
    assert!(!pid_alive(pid), "no gateway process is left");
    assert!(home.lock_holders().is_empty(), "no lock is held");
    let s = status_of(&home, "a");
    assert_eq!(
        (s["state"].as_str(), s["pid"].as_u64()),
        (Some("stopped"), None)
    );
    // Stopping again is a no-op.
    assert!(ok(&home, &["stop", "--profile", "a"]).contains("is not running"));
}

#[test]
fn start_is_idempotent() {
    let home = TestHome::new();
    let slot = ports::claim();
    let s = create_and_start(&home, "a", slot.base());
    let out = ok(&home, &["start", "--profile", "a"]);
    assert!(
        out.contains(&format!("profile `a` is already running (pid {}", s["pid"])),
        "{out}"
    );
    assert_eq!(status_of(&home, "a")["pid"], s["pid"]);
}

#[test]
fn two_profiles_run_side_by_side_with_disjoint_ports_and_state() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    for name in ["a", "b"] {
        let out = home
            .command(bins::openclawctl())
            .env("OPENCLAWCTL_PORT_BASE", slot.base().to_string())
            .args(["profile", "create", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    ok(&home, &["start", "--profile", "a", "--profile", "b"]);
    let (a, b) = (status_of(&home, "a"), status_of(&home, "b"));
    for s in [&a, &b] {
        assert_eq!(
            (s["state"].as_str(), s["healthy"].as_bool()),
            (Some("running"), Some(true)),
            "{s}"
        );
    }
    assert_eq!(a["port"], slot.nth(0));
    assert_eq!(b["port"], slot.nth(1));
    assert_ne!(a["stateDir"], b["stateDir"]);
    assert_ne!(a["pid"], b["pid"]);
    // Stopping one leaves the other alone.
    ok(&home, &["stop", "--profile", "a"]);
    assert_eq!(status_of(&home, "b")["state"], "running");
    ok(&home, &["stop", "--all"]);
    assert_eq!(status_of(&home, "b")["state"], "stopped");
}

#[test]
fn a_second_gateway_on_a_running_profiles_state_dir_exits_78() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    let a = create_and_start(&home, "a", slot.base());
    // A hand-started gateway pointed at a's state dir, on another port.
    let out = home
        .command(bins::openclaw())
        .env("OPENCLAW_STATE_DIR", home.state_dir("a"))
        .args(["gateway", "--port", &slot.nth(1).to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "gateway already running (pid {}); lock timeout after 5000ms",
            a["pid"]
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(status_of(&home, "a")["healthy"], true);
}

#[test]
fn start_refuses_a_busy_port_with_78_naming_its_owner() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "b", "--port", &slot.base().to_string()],
    );
    let _foreign = std::net::TcpListener::bind(("127.0.0.1", slot.base())).unwrap();
    let out = home.ctl(&["start", "--profile", "b"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    // The refusal names the owner: this test process.
    assert!(
        stderr(&out).contains(&format!(
            "port {} is in use by pid {} (",
            slot.base(),
            std::process::id()
        )),
        "{}",
        stderr(&out)
    );
    assert!(home.lock_holders().is_empty(), "no gateway was started");
    assert_eq!(status_of(&home, "b")["state"], "conflict");
}

#[test]
fn a_gateway_that_fails_to_start_is_reported_with_its_log_and_exit_code() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let config = home.state_dir("a").join("openclaw.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"local\"", "\"remote\"")).unwrap();
    let out = home.ctl(&["start", "--profile", "a"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot start profile `a`: openclaw gateway: Gateway start blocked"),
        "{err}"
    );
    // One line tells why; the log follows only with --verbose.
    assert!(!err.contains("last log lines"), "{err}");
    assert!(err.contains("start again with --verbose"), "{err}");
    let out = home.ctl(&["start", "a", "--verbose"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("last log lines"), "{}", stderr(&out));
    // 78 is never restarted: the profile is in conflict, with the error.
    let s = status_of(&home, "a");
    assert_eq!(
        (s["state"].as_str(), s["restarts"].as_u64()),
        (Some("conflict"), Some(0)),
        "{s}"
    );
    assert_eq!(s["lastExit"]["code"], 78);
    assert!(
        s["lastError"]
            .as_str()
            .unwrap()
            .contains("set gateway.mode=local (current: remote)"),
        "{s}"
    );
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    // A "gateway" that ignores SIGTERM.
    let stubborn =
        crate::supervision::script(&home, "stubborn", "trap '' TERM INT\nexec sleep 300");
    let out = home
        .command(bins::openclawctl())
        .env("OPENCLAWCTL_GATEWAY_BIN", &stubborn)
        .args(["start", "--profile", "a", "--no-wait"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = crate::supervision::wait_gateway_pid(&home, "a");
    let out = ok(&home, &["stop", "--profile", "a", "--timeout", "1"]);
    assert!(out.contains("killed after the stop timeout"), "{out}");
    wait_until(Duration::from_secs(5), "gateway gone", || !pid_alive(pid));
}
