//! Supervision with real processes: restarts after kill -9, backoff into
//! `failed`, exit 78, whole-group stops, a keeper killed with SIGKILL,
//! start races, `--all`, health-driven restarts, log rotation, `logs`,
//! `restart` and `profile rm`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openclaw_e2e::home::{Running, stderr, stdout};
use openclaw_e2e::{TestHome, bins, ports, wait_until};
use openclaw_profiles::process::pid_alive;
use serde_json::Value;

use crate::skeleton::{create_and_start, ok, status_of};

/// An executable shell script in the test home, used as a stand-in
/// gateway (`OPENCLAWCTL_GATEWAY_BIN`).
pub(crate) fn script(home: &TestHome, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = home.path().join(format!("{name}.sh"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn record(home: &TestHome, name: &str) -> Value {
    let text = std::fs::read_to_string(home.state_dir(name).join("tmp/openclawctl.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Waits until the keeper recorded a gateway pid, and returns it.
pub(crate) fn wait_gateway_pid(home: &TestHome, name: &str) -> u32 {
    let mut pid = None;
    wait_until(
        Duration::from_secs(20),
        "the keeper records a gateway pid",
        || {
            pid = std::fs::read_to_string(home.state_dir(name).join("tmp/openclawctl.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["gatewayPid"].as_u64());
            pid.is_some()
        },
    );
    pid.unwrap() as u32
}

fn sigkill(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
}

fn ctl_with(home: &TestHome, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = home.command(bins::openclawctl());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

/// Live processes whose environment holds `needle` and whose command line
/// contains `cmd`.
pub(crate) fn processes_with(needle: &str, cmd: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid_alive(pid))
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&env)
                .split('\0')
                .any(|v| v == needle)
                && String::from_utf8_lossy(&line)
                    .replace('\0', " ")
                    .contains(cmd)
        })
        .collect()
}

#[test]
fn a_gateway_killed_with_sigkill_is_restarted_and_healthy_again() {
    let home = TestHome::new();
    let slot = ports::claim();
    let first = create_and_start(&home, "a", slot.base())["pid"]
        .as_u64()
        .unwrap() as u32;
    sigkill(first);
    let mut s = Value::Null;
    wait_until(Duration::from_secs(20), "a new healthy gateway", || {
        s = status_of(&home, "a");
        s["healthy"] == true && s["pid"].as_u64().is_some_and(|p| p as u32 != first)
    });
    assert_eq!(s["state"], "running");
    assert_eq!(s["restarts"], 1);
    assert_eq!(s["lastExit"]["signal"], "SIGKILL");
    assert_eq!(record(&home, "a")["deaths"].as_array().unwrap().len(), 1);
}

#[test]
fn a_gateway_that_exits_at_once_backs_off_then_fails_with_its_tally() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let crash = script(&home, "crash", "echo 'boom: cannot start' >&2\nexit 3");
    let out = ctl_with(
        &home,
        &[("OPENCLAWCTL_GATEWAY_BIN", crash.to_str().unwrap())],
        &["start", "--profile", "a"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("profile `a` failed: crash loop: 5 deaths within 60s (last: code 3)"),
        "{err}"
    );
    assert!(err.contains("boom: cannot start"), "{err}");
    let s = status_of(&home, "a");
    assert_eq!(
        (s["state"].as_str(), s["restarts"].as_u64()),
        (Some("failed"), Some(4)),
        "{s}"
    );
    assert_eq!(s["lastExit"]["code"], 3);
    let deaths = record(&home, "a")["deaths"].as_array().unwrap().clone();
    assert_eq!(deaths.len(), 5);
    assert!(deaths.iter().all(|d| d["code"] == 3));
    // Backoff grew: 0 ms first, then about 250, 500 and 1000 ms (±20 %).
    let log = std::fs::read_to_string(home.state_dir("a").join("logs/gateway.log")).unwrap();
    let delays: Vec<u64> = log
        .lines()
        .filter_map(|l| {
            l.split("restarting in ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(delays.len(), 4, "{log}");
    assert_eq!(delays[0], 0);
    for (d, nominal) in delays[1..].iter().zip([250u64, 500, 1000]) {
        assert!(
            *d >= nominal * 8 / 10 && *d <= nominal * 12 / 10,
            "delay {d} for {nominal}: {delays:?}"
        );
    }
    // No keeper stays behind, and `start` begins afresh once fixed.
    assert!(
        processes_with(
            &format!("HOME={}", home.path().display()),
            "openclawctl-keeper --profile a"
        )
        .is_empty()
    );
    let s = create_and_start_again(&home, "a");
    assert_eq!(s["state"], "running");
}

fn create_and_start_again(home: &TestHome, name: &str) -> Value {
    ok(home, &["start", "--profile", name]);
    status_of(home, name)
}

#[test]
fn stop_leaves_no_process_of_the_gateways_group() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    // The gateway spawns a grandchild in its process group, then becomes the gateway.
    let wrapper = script(
        &home,
        "with-grandchild",
        &format!(
            "sleep 300 &\necho $! >> \"$HOME/grandchildren\"\nexec '{}' \"$@\"",
            bins::openclaw().display()
        ),
    );
    let env = [("OPENCLAWCTL_GATEWAY_BIN", wrapper.to_str().unwrap())];
    let out = ctl_with(&home, &env, &["start", "--profile", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let grandchildren = |home: &TestHome| -> Vec<u32> {
        std::fs::read_to_string(home.path().join("grandchildren"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let first = grandchildren(&home)[0];
    let gateway = status_of(&home, "a")["pid"].as_u64().unwrap() as u32;
    assert!(pid_alive(first));
    assert_eq!(
        nix::unistd::getpgid(Some(Pid::from_raw(first as i32)))
            .unwrap()
            .as_raw() as u32,
        gateway
    );

    // kill -9 of the gateway takes its grandchild along; the restart makes a new one.
    sigkill(gateway);
    wait_until(
        Duration::from_secs(10),
        "the first grandchild is gone",
        || !pid_alive(first),
    );
    wait_until(Duration::from_secs(20), "restarted", || {
        status_of(&home, "a")["healthy"] == true && grandchildren(&home).len() == 2
    });
    let second = grandchildren(&home)[1];
    assert!(pid_alive(second));

    ok(&home, &["stop", "--profile", "a"]);
    wait_until(
        Duration::from_secs(5),
        "the second grandchild is gone",
        || !pid_alive(second),
    );
    assert!(home.lock_holders().is_empty());
    assert_eq!(status_of(&home, "a")["state"], "stopped");
}

#[test]
fn a_keeper_killed_with_sigkill_leaves_no_unsupervised_gateway() {
    let home = TestHome::new();
    let slot = ports::claim();
    let gateway = create_and_start(&home, "a", slot.base())["pid"]
        .as_u64()
        .unwrap() as u32;
    let keeper = record(&home, "a")["keeperPid"].as_u64().unwrap() as u32;
    sigkill(keeper);
    // The gateway follows its lifeline and stops by itself.
    wait_until(Duration::from_secs(10), "the gateway stops", || {
        !pid_alive(gateway)
    });
    wait_until(Duration::from_secs(5), "the state lock is free", || {
        home.lock_holders().is_empty()
    });
    let s = status_of(&home, "a");
    assert_eq!(
        (s["state"].as_str(), s["managedBy"].as_str()),
        (Some("stopped"), Some("none")),
        "{s}"
    );
    // And the profile starts again normally.
    assert_eq!(create_and_start_again(&home, "a")["healthy"], true);
}

#[test]
fn twenty_parallel_starts_run_exactly_one_gateway() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    // Twenty real processes at once; each one's output is kept so a failure
    // says which start failed and why.
    let outputs: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    home.command(bins::openclawctl())
                        .args(["start", "--profile", "a"])
                        .output()
                        .expect("run openclawctl start")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outputs {
        assert!(
            out.status.success(),
            "a parallel start failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        );
    }
    let state_dir = format!("OPENCLAW_STATE_DIR={}", home.state_dir("a").display());
    assert_eq!(
        processes_with(&state_dir, "gateway run").len(),
        1,
        "exactly one gateway"
    );
    let home_var = format!("HOME={}", home.path().display());
    assert_eq!(
        processes_with(&home_var, "openclawctl-keeper --profile a").len(),
        1,
        "exactly one keeper"
    );
    let log = std::fs::read_to_string(home.state_dir("a").join("logs/gateway.log")).unwrap();
    assert_eq!(log.matches("started gateway pid").count(), 1, "{log}");
    assert_eq!(status_of(&home, "a")["healthy"], true);
}

#[test]
fn start_all_brings_up_ten_profiles_on_disjoint_ports() {
    let home = TestHome::new();
    let slot = ports::claim_slots(10);
    let base = slot.base().to_string();
    for i in 0..10 {
        let out = ctl_with(
            &home,
            &[("OPENCLAWCTL_PORT_BASE", &base)],
            &["profile", "create", &format!("p{i}")],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = ok(&home, &["start", "--all"]);
    assert_eq!(out.matches("started profile").count(), 10, "{out}");
    let want: Vec<u64> = (0..10).map(|i| u64::from(slot.nth(i))).collect();
    all_running_on_then_stopped(&home, &want);
}

/// Many tenants on the compact port plan (5 ports apart): created one
/// after the other, started with `--all`, every row healthy in `status`,
/// all stopped. 200 here (the 1,000 runs in `scripts/bench-scale`
/// territory: CI time), on a checked free range of 1,110 ports.
#[test]
fn two_hundred_compact_profiles_start_report_and_stop_together() {
    const N: usize = 200;
    let home = TestHome::new();
    let slot = ports::claim_slots(10);
    let base = slot.base().to_string();
    for i in 0..N {
        let out = ctl_with(
            &home,
            &[("OPENCLAWCTL_PORT_BASE", &base)],
            &[
                "profile",
                "create",
                &format!("t{i:03}"),
                "--ports",
                "compact",
            ],
        );
        assert!(out.status.success(), "t{i:03}: {}", stderr(&out));
    }
    let shown: Value =
        serde_json::from_str(&ok(&home, &["profile", "show", "t001", "--json"])).unwrap();
    let shown = if shown["results"].is_array() {
        shown["results"][0].clone()
    } else {
        shown
    };
    assert_eq!(shown["portPlan"], "compact", "{shown}");
    let out = ok(&home, &["start", "--all"]);
    assert_eq!(out.matches("started profile").count(), N, "{out}");
    let want: Vec<u64> = (0..N as u64)
        .map(|i| u64::from(slot.base()) + 5 * i)
        .collect();
    all_running_on_then_stopped(&home, &want);
}

/// `status --json` lists exactly the ports `want`, every row running and
/// healthy; then `stop --all` leaves no gateway holding a state lock.
fn all_running_on_then_stopped(home: &TestHome, want: &[u64]) {
    let v: Value = serde_json::from_str(&ok(home, &["status", "--json"])).unwrap();
    let rows = v["profiles"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    let mut ports: Vec<u64> = rows.iter().map(|r| r["port"].as_u64().unwrap()).collect();
    ports.sort();
    assert_eq!(ports, want);
    for r in rows {
        assert_eq!(
            (r["state"].as_str(), r["healthy"].as_bool()),
            (Some("running"), Some(true)),
            "{r}"
        );
    }
    ok(home, &["stop", "--all"]);
    assert!(home.lock_holders().is_empty());
    // Every keeper was told to stop: none is left to restart its gateway
    // (a stop that saw a keeper as gone, through a `/proc/locks` read that
    // skipped its lock, would have stopped the gateway alone).
    wait_until(Duration::from_secs(5), "no keeper or gateway left", || {
        home.processes().is_empty()
    });
}

#[test]
fn a_hung_gateway_is_restarted_by_failing_health_checks() {
    let home = TestHome::new();
    let slot = ports::claim();
    let first = create_and_start(&home, "a", slot.base())["pid"]
        .as_u64()
        .unwrap() as u32;
    kill(Pid::from_raw(first as i32), Signal::SIGSTOP).unwrap();
    let mut s = Value::Null;
    wait_until(
        Duration::from_secs(30),
        "a new gateway after failed health checks",
        || {
            s = status_of(&home, "a");
            s["healthy"] == true && s["pid"].as_u64().is_some_and(|p| p as u32 != first)
        },
    );
    assert!(!pid_alive(first));
    let log = std::fs::read_to_string(home.state_dir("a").join("logs/gateway.log")).unwrap();
    assert!(
        log.contains(&format!(
            "gateway pid {first} failed its health checks; restarting it"
        )),
        "{log}"
    );
}

#[test]
fn a_chatty_gateways_log_is_rotated_within_bounds() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let chatty = script(
        &home,
        "chatty",
        &format!(
            "i=0\nwhile [ $i -lt 4000 ]; do echo \"chatty line $i with some padding to make it longer\"; i=$((i+1)); done\nexec '{}' \"$@\"",
            bins::openclaw().display()
        ),
    );
    let env = [
        ("OPENCLAWCTL_GATEWAY_BIN", chatty.to_str().unwrap()),
        ("OPENCLAWCTL_LOG_MAX_BYTES", "20000"),
        ("OPENCLAWCTL_LOG_FILES", "2"),
    ];
    let out = ctl_with(&home, &env, &["start", "--profile", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let logs = home.state_dir("a").join("logs");
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["gateway.log", "gateway.log.1", "gateway.log.2"]);
    for n in &names {
        let len = std::fs::metadata(logs.join(n)).unwrap().len();
        assert!(len <= 20_000, "{n} is {len} bytes");
    }
    // The newest output is in the live file.
    let live = std::fs::read_to_string(logs.join("gateway.log")).unwrap();
    assert!(live.contains("listening on ws://127.0.0.1:"), "{live}");
}

#[test]
fn restart_gives_a_fresh_gateway_and_logs_follow_it() {
    let home = TestHome::new();
    let slot = ports::claim();
    let first = create_and_start(&home, "a", slot.base())["pid"]
        .as_u64()
        .unwrap() as u32;

    let out = ok(&home, &["logs", "--profile", "a", "-n", "2"]);
    assert_eq!(out.lines().count(), 2, "{out}");

    let mut cmd = home.command(bins::openclawctl());
    cmd.args(["logs", "--profile", "a", "-n", "0", "--follow"])
        .stdout(Stdio::piped());
    let mut follower = Running::spawn(cmd);
    let stdout = follower.child.stdout.take().unwrap();

    let out = ok(&home, &["restart", "--profile", "a"]);
    assert!(out.contains("restarted profile `a`"), "{out}");
    let s = status_of(&home, "a");
    let second = s["pid"].as_u64().unwrap() as u32;
    assert_ne!(second, first);
    assert_eq!(
        (s["restarts"].as_u64(), s["healthy"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(!pid_alive(first));

    // The follower prints the new gateway's start (bounded by its own kill below).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let want = format!("started gateway pid {second}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains(&want)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "logs --follow never showed {want:?}: {seen:?}"
        );
        if let Ok(l) = rx.recv_timeout(left) {
            seen.push(l);
        }
    }
}

#[test]
fn start_refuses_a_state_dir_owned_by_a_hand_started_gateway() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.nth(0).to_string()],
    );
    let mut cmd = home.command(bins::openclaw());
    cmd.args([
        "--profile",
        "a",
        "gateway",
        "--port",
        &slot.nth(1).to_string(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let manual = Running::spawn(cmd);
    wait_until(
        Duration::from_secs(20),
        "the manual gateway holds the lock",
        || home.lock_holders() == vec![manual.pid()],
    );
    let out = home.ctl(&["start", "--profile", "a"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("is owned by pid {} (", manual.pid()))
            && stderr(&out).contains("gateway"),
        "{}",
        stderr(&out)
    );
    let s = status_of(&home, "a");
    assert_eq!(
        (s["state"].as_str(), s["managedBy"].as_str()),
        (Some("running"), Some("external")),
        "{s}"
    );
}

#[test]
fn profile_rm_forgets_and_purges_only_with_force_and_containment() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    create_and_start(&home, "a", slot.nth(0));
    let out = home.ctl(&["profile", "rm", "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is running; stop it first"),
        "{}",
        stderr(&out)
    );
    ok(&home, &["stop", "--profile", "a"]);

    let out = home.ctl(&["profile", "rm", "a", "--purge"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("add --force to confirm"),
        "{}",
        stderr(&out)
    );
    assert!(home.state_dir("a").is_dir());

    ok(&home, &["profile", "rm", "a", "--purge", "--force"]);
    assert!(!home.state_dir("a").exists());
    assert!(
        ok(&home, &["profile", "list"])
            .trim()
            .starts_with("no profiles")
    );

    // A profile whose state dir is the home itself is never purged.
    let h = home.path().to_str().unwrap();
    ok(
        &home,
        &[
            "profile",
            "create",
            "h",
            "--port",
            &slot.nth(1).to_string(),
            "--state-dir",
            h,
        ],
    );
    let out = home.ctl(&["profile", "rm", "h", "--purge", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("it is the home directory or contains it"),
        "{}",
        stderr(&out)
    );
    assert!(Path::new(h).join("openclaw.json").is_file());
    // Without --purge it is only forgotten.
    let out = ok(&home, &["profile", "rm", "h"]);
    assert!(out.contains("its files stay"), "{out}");
    assert!(Path::new(h).join("openclaw.json").is_file());
}

/// Per-tenant limits under keepers: `hog` (`--memory-max 64M --nofile
/// 512`) runs the real gateway with a child that, on a signal file, grows
/// past 256 MiB; the keeper kills the tree and restarts it under the normal
/// policy, while `calm` keeps serving with the same pid throughout.
/// `status` shows use against limit. (The keeper's cgroup path needs a
/// delegated cgroup v2 memory controller, which these machines do not
/// have: here the watchdog does it, and the log says why.)
#[test]
fn a_tenant_over_its_memory_limit_is_killed_and_restarted_its_neighbour_untouched() {
    let home = TestHome::new();
    let (a, b) = (ports::claim(), ports::claim());
    let calm = create_and_start(&home, "calm", a.base());
    let calm_pid = calm["pid"].as_u64().unwrap();
    let out = ok(
        &home,
        &[
            "profile",
            "create",
            "hog",
            "--port",
            &b.base().to_string(),
            "--memory-max",
            "64M",
            "--nofile",
            "512",
        ],
    );
    assert!(out.contains("limits: memory-max 64M, nofile 512"), "{out}");
    let trigger = home.path().join("grow");
    let wrapper = script(
        &home,
        "hog",
        &format!(
            "(while [ ! -e {t} ]; do sleep 0.05; done; rm -f {t}; (head -c 256M /dev/zero; sleep 600) | tail >/dev/null) &\nexec {gw} \"$@\"",
            t = trigger.display(),
            gw = bins::openclaw().display()
        ),
    );
    let out = ctl_with(
        &home,
        &[("OPENCLAWCTL_GATEWAY_BIN", wrapper.to_str().unwrap())],
        &["start", "--profile", "hog"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let s = status_of(&home, "hog");
    let first = s["pid"].as_u64().unwrap();
    assert_eq!(s["limits"]["memoryMaxBytes"], 64 << 20, "{s}");
    assert_eq!(s["limits"]["nofile"], 512, "{s}");
    assert!(s["memoryBytes"].as_u64().unwrap() < 64 << 20, "{s}");
    assert!(s["openFiles"].as_u64().unwrap() <= 512, "{s}");
    // The rlimit reached the gateway.
    let limits = std::fs::read_to_string(format!("/proc/{first}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("512")),
        "{limits}"
    );
    let table = ok(&home, &["status"]);
    assert!(table.contains("/ 64M"), "{table}");
    assert!(table.contains("hog: open files"), "{table}");

    std::fs::write(&trigger, "").unwrap();
    let mut s = Value::Null;
    wait_until(
        Duration::from_secs(30),
        "hog killed and healthy again",
        || {
            s = status_of(&home, "hog");
            s["healthy"] == true && s["pid"].as_u64().is_some_and(|p| p != first)
        },
    );
    assert_eq!(s["restarts"], 1, "{s}");
    assert_eq!(s["lastExit"]["signal"], "SIGKILL", "{s}");
    assert!(
        s["lastExit"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("memory-max 64M exceeded")),
        "{s}"
    );
    let log = std::fs::read_to_string(home.state_dir("hog").join("logs/gateway.log")).unwrap();
    assert!(
        log.contains("memory-max is enforced by the keeper's watchdog")
            || log.contains("applied by cgroup"),
        "{log}"
    );
    // New limits need a new keeper: `restart` starts one.
    ok(&home, &["profile", "set", "hog", "--nofile", "600"]);
    let out = ctl_with(
        &home,
        &[("OPENCLAWCTL_GATEWAY_BIN", wrapper.to_str().unwrap())],
        &["restart", "hog"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("limits changed"), "{}", stdout(&out));
    let pid = status_of(&home, "hog")["pid"].as_u64().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("600")),
        "{limits}"
    );
    // The neighbour never noticed.
    let c = status_of(&home, "calm");
    assert_eq!(
        (c["pid"].as_u64(), c["restarts"].as_u64(), &c["healthy"]),
        (Some(calm_pid), Some(0), &Value::Bool(true)),
        "{c}"
    );
    ok(&home, &["stop", "--all"]);
}

/// On a terminal (`script` gives the command a pty), `start --all` and
/// `stop --all` draw a progress bar on stderr, above which each profile's
/// line is printed; `--json` and pipes never get one.
#[test]
fn start_all_and_stop_all_draw_a_progress_bar_only_on_a_terminal() {
    let home = TestHome::new();
    let slot = ports::claim();
    for i in 0..3 {
        let out = ctl_with(
            &home,
            &[("OPENCLAWCTL_PORT_BASE", &slot.base().to_string())],
            &["profile", "create", &format!("t{i}"), "--ports", "compact"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let on_tty = |args: &str| {
        let out = home
            .command("script")
            .args([
                "-qec",
                &format!("{} {args}", bins::openclawctl().display()),
                "/dev/null",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = on_tty("start --all");
    assert!(shown.contains("\r\x1b[2Kstarting ["), "{shown:?}");
    assert!(shown.contains("] 3/3"), "{shown:?}");
    assert_eq!(shown.matches("started profile `t").count(), 3, "{shown:?}");
    let shown = on_tty("stop --all");
    assert!(
        shown.contains("stopping [") && shown.contains("] 3/3"),
        "{shown:?}"
    );
    // Not under --json, not into a pipe.
    let shown = on_tty("--json start --all");
    assert!(!shown.contains("starting ["), "{shown:?}");
    let out = ok(&home, &["stop", "--all"]);
    assert!(!out.contains('['), "{out}");
}
