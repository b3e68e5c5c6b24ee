//! `openclawctl` under real use: many shells at once, pipes, a second
//! gateway on the same port, changed configs, killed keepers, and the
//! habits of pm2 users (positional names, `logs` of every profile,
//! resource columns, `--json` on every command, `profile set`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openclaw_e2e::home::{stderr, stdout};
use openclaw_e2e::{TestHome, bins, ports, wait_until};
use openclaw_profiles::process::pid_alive;
use serde_json::Value;

use crate::skeleton::{create_and_start, ok, status_of};

fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

fn profiles(home: &TestHome) -> Vec<Value> {
    json(&home.ctl(&["profile", "list", "--json"]))["profiles"]
        .as_array()
        .unwrap()
        .clone()
}

/// Live processes of this home whose command line contains `needle`.
fn processes(home: &TestHome, needle: &str) -> Vec<u32> {
    crate::supervision::processes_with(&format!("HOME={}", home.path().display()), needle)
}

/// Spawns `openclawctl args` without waiting.
fn spawn_ctl(home: &TestHome, args: &[&str]) -> std::process::Child {
    home.command(bins::openclawctl())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn twenty_parallel_creates_register_twenty_profiles_on_disjoint_ranges() {
    let home = TestHome::new();
    let slot = ports::claim_slots(24);
    let base = slot.base().to_string();
    let custom = home.path().join("custom");
    let children: Vec<_> = (0..20)
        .map(|i| {
            let name = format!("t{i}");
            let dir = custom.join(&name);
            let mut cmd = home.command(bins::openclawctl());
            cmd.env("OPENCLAWCTL_PORT_BASE", &base)
                .args(["profile", "create", &name]);
            // Half of them with a custom state dir (those vanished before).
            if i % 2 == 0 {
                cmd.arg("--state-dir").arg(&dir);
            }
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let listed = profiles(&home);
    assert_eq!(listed.len(), 20, "{listed:?}");
    let mut bases: Vec<u16> = listed
        .iter()
        .map(|p| p["port"].as_u64().unwrap() as u16)
        .collect();
    bases.sort_unstable();
    for w in bases.windows(2) {
        assert!(
            !openclaw_profiles::ports::overlaps(w[0], w[1]),
            "ranges of {} and {} overlap: {bases:?}",
            w[0],
            w[1]
        );
    }
    for p in listed
        .iter()
        .filter(|p| p["name"].as_str().unwrap()[1..].parse::<u32>().unwrap() % 2 == 0)
    {
        assert!(
            p["stateDir"]
                .as_str()
                .unwrap()
                .starts_with(custom.to_str().unwrap()),
            "{p}"
        );
    }
}

#[test]
fn a_second_gateway_on_the_same_port_is_a_conflict_not_a_success() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    let port = slot.base().to_string();
    ok(&home, &["profile", "create", "a", "--port", &port]);
    ok(
        &home,
        &["profile", "create", "b", "--port", &slot.nth(1).to_string()],
    );
    // b configured onto a's port by hand.
    let cfg = home.state_dir("b").join("openclaw.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace(&slot.nth(1).to_string(), &port)).unwrap();
    let out = home.ctl(&["start", "--all"]);
    assert!(
        !out.status.success(),
        "start --all must fail: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    // Exactly one of them won; the loser names the owner.
    let (winner, loser) = if err.contains("cannot start profile `b`") {
        ("a", "b")
    } else {
        ("b", "a")
    };
    assert!(
        err.contains(&format!("cannot start profile `{loser}`")),
        "{err}"
    );
    assert!(
        err.contains(&format!("the gateway of profile `{winner}`")),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(78), "{err}");
    let w = status_of(&home, winner);
    let l = status_of(&home, loser);
    assert_eq!(
        (w["state"].as_str(), w["healthy"].as_bool()),
        (Some("running"), Some(true)),
        "{w}"
    );
    assert_eq!(
        (l["state"].as_str(), l["healthy"].as_bool()),
        (Some("conflict"), Some(false)),
        "{l}"
    );
    assert!(
        l["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("profile `{winner}`")),
        "{l}"
    );
}

#[test]
fn restart_serves_on_the_port_configured_now() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    create_and_start(&home, "a", slot.base());
    let new_port = slot.nth(1).to_string();
    let out = ok(&home, &["profile", "set", "a", "gateway.port", &new_port]);
    assert!(
        out.contains("apply it with `openclawctl restart a`"),
        "{out}"
    );
    // Comments and other keys survive the edit.
    let cfg = std::fs::read_to_string(home.state_dir("a").join("openclaw.json")).unwrap();
    assert!(cfg.contains(&new_port) && cfg.contains("token"), "{cfg}");
    ok(&home, &["restart", "a"]);
    let s = status_of(&home, "a");
    assert_eq!(s["port"].as_u64(), Some(u64::from(slot.nth(1))), "{s}");
    assert_eq!(s["healthy"], true, "{s}");
    assert!(listening(slot.nth(1)));
    assert!(!listening(slot.base()));
    // Invalid values are usage errors that change nothing.
    for (k, v) in [
        ("gateway.port", "0"),
        ("gateway.port", "x"),
        ("gateway.bind", "moon"),
        ("gateway.nope", "1"),
    ] {
        let out = home.ctl(&["profile", "set", "a", k, v]);
        assert_eq!(out.status.code(), Some(2), "{k}={v}: {}", stderr(&out));
    }
    // Beyond loopback without auth is refused.
    ok(&home, &["profile", "set", "a", "gateway.bind", "lan"]);
    let out = home.ctl(&["profile", "set", "a", "gateway.auth.mode", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("without auth"), "{}", stderr(&out));
}

/// True if something accepts connections on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn a_token_only_in_the_state_dotenv_works_under_the_keeper() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    // The token lives only in <stateDir>/.env; the config names no secret.
    let cfg_path = home.state_dir("a").join("openclaw.json");
    let token = "only-in-dotenv-0123456789abcdef";
    std::fs::write(
        &cfg_path,
        format!(
            "{{ gateway: {{ mode: 'local', port: {}, auth: {{ mode: 'token' }} }} }}\n",
            slot.base()
        ),
    )
    .unwrap();
    let dotenv = home.state_dir("a").join(".env");
    std::fs::write(&dotenv, format!("OPENCLAW_GATEWAY_TOKEN={token}\n")).unwrap();
    let out = home.ctl(&["start", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Our operator command resolves the same token from .env.
    let out = home
        .command(bins::openclaw())
        .args(["--profile", "a", "health", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // A wrong token in the process env wins over .env, as in OpenClaw.
    let out = home
        .command(bins::openclaw())
        .env("OPENCLAW_GATEWAY_TOKEN", "wrong")
        .args(["--profile", "a", "health", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "process env must win over .env");
    assert!(!stderr(&out).contains(token) && !stdout(&out).contains(token));
}

#[test]
fn profile_dev_gets_the_port_openclaw_gives_it() {
    let home = TestHome::new();
    let out = home.ctl(&["profile", "create", "dev", "--port", "19500"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("OPENCLAW_GATEWAY_PORT=19001"),
        "{}",
        stderr(&out)
    );
    let out = ok(&home, &["profile", "create", "dev"]);
    assert!(out.contains("port 19001"), "{out}");
    // The allocator keeps dev's range for it while dev does not exist.
    let other = TestHome::new();
    let out = other
        .command(bins::openclawctl())
        .env("OPENCLAWCTL_PORT_BASE", "18900")
        .args(["profile", "create", "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("port 18900 "), "{}", stdout(&out));
}

/// A writer end of a pipe whose reader is already closed: every write
/// fails with EPIPE at once.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn commands_exit_quietly_when_their_output_is_closed() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let runs: Vec<(std::path::PathBuf, Vec<&str>)> = vec![
        (bins::openclawctl(), vec!["status"]),
        (bins::openclawctl(), vec!["profile", "list"]),
        (bins::openclawctl(), vec!["doctor"]),
        (bins::openclawctl(), vec!["status", "--json"]),
        (bins::openclawctl(), vec!["completions", "bash"]),
        (bins::openclaw(), vec!["--profile", "a", "doctor"]),
    ];
    for (bin, args) in runs {
        let out = home
            .command(&bin)
            .args(&args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("failed printing"),
            "{args:?}: {err}"
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}

#[test]
fn start_does_not_leak_the_callers_descriptors() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "c", "--port", &slot.base().to_string()],
    );
    // `cat` ends only when every holder of the pipe has closed it: with a
    // leaked fd 9, keeper and gateway would hold it for their whole life.
    let mut child = home
        .command("bash")
        .arg("-c")
        .arg(format!(
            "{} start c 9>&1 | cat >/dev/null",
            bins::openclawctl().display()
        ))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`start c 9>&1 | cat` never finished: fd 9 leaked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And the profile runs.
    assert_eq!(status_of(&home, "c")["healthy"], true);
}

#[test]
fn stop_honours_a_timeout_longer_than_ten_seconds() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let stubborn = crate::supervision::script(
        &home,
        "stubborn",
        "trap '' TERM INT\nwhile :; do sleep 0.2; done",
    );
    let out = home
        .command(bins::openclawctl())
        .env("OPENCLAWCTL_GATEWAY_BIN", &stubborn)
        .args(["start", "a", "--no-wait"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = crate::supervision::wait_gateway_pid(&home, "a");
    let stop = spawn_ctl(&home, &["stop", "a", "--timeout", "13"]);
    // Past the keeper's old 10 s cap, the gateway is still given its grace.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(11_500) {
        assert!(
            pid_alive(pid),
            "killed after {:?}, before the 13 s asked for",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = stop.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("killed after the stop timeout"),
        "{}",
        stdout(&out)
    );
    assert!(!pid_alive(pid));
}

#[test]
fn readers_never_make_a_starting_keeper_lose_its_race() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = ["status", "doctor"]
        .into_iter()
        .map(|cmd| {
            let stop = stop.clone();
            let mut c = home.command(bins::openclawctl());
            c.arg(cmd).stdout(Stdio::null()).stderr(Stdio::null());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = c.status();
                }
            })
        })
        .collect();
    let starts: Vec<_> = (0..20).map(|_| spawn_ctl(&home, &["start", "a"])).collect();
    let outs: Vec<_> = starts
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    for o in &outs {
        assert!(o.status.success(), "a start failed: {}", stderr(o));
    }
    assert_eq!(processes(&home, "openclawctl-keeper").len(), 1);
    assert_eq!(processes(&home, "gateway run").len(), 1);
}

#[test]
fn a_killed_keeper_is_shown_and_logged() {
    let home = TestHome::new();
    let slot = ports::claim();
    create_and_start(&home, "a", slot.base());
    let rec: Value = serde_json::from_str(
        &std::fs::read_to_string(home.state_dir("a").join("tmp/openclawctl.json")).unwrap(),
    )
    .unwrap();
    let keeper = rec["keeperPid"].as_u64().unwrap() as u32;
    let gateway = rec["gatewayPid"].as_u64().unwrap() as u32;
    kill(Pid::from_raw(keeper as i32), Signal::SIGKILL).unwrap();
    wait_until(
        Duration::from_secs(10),
        "the gateway follows its keeper",
        || !pid_alive(gateway),
    );
    let s = status_of(&home, "a");
    assert_eq!(s["state"], "stopped", "{s}");
    assert_eq!(s["lastExit"]["reason"], "keeper killed", "{s}");
    assert!(
        s["lastError"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {keeper}")),
        "{s}"
    );
    let log = ok(&home, &["logs", "a"]);
    assert!(log.contains("died without stopping"), "{log}");
    let table = ok(&home, &["status"]);
    assert!(table.contains("keeper killed"), "{table}");
}

#[test]
fn small_mistakes_get_clear_errors() {
    let home = TestHome::new();
    let out = home.ctl(&["profile", "create", "x", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = home.ctl(&["profile", "create", "--", "-lead"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must not start with `-`"),
        "{}",
        stderr(&out)
    );
    let nl = home.path().join("with\nnewline");
    let out = home
        .command(bins::openclawctl())
        .args(["profile", "create", "nl", "--state-dir"])
        .arg(&nl)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("control character"),
        "{}",
        stderr(&out)
    );
    assert!(!nl.exists());
    let out = home.ctl(&["profile", "create", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("profile name must not be empty"),
        "{}",
        stderr(&out)
    );
    let slot = ports::claim_slots(2);
    ok(
        &home,
        &["profile", "create", "A", "--port", &slot.base().to_string()],
    );
    let out = home.ctl(&["profile", "create", "a", "--port", &slot.nth(1).to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("only in case"), "{}", stderr(&out));
    // A keeper that cannot even set up says why.
    ok(
        &home,
        &["profile", "create", "m", "--port", &slot.nth(1).to_string()],
    );
    std::fs::write(home.state_dir("m").join("tmp"), "not a dir").unwrap();
    let out = home.ctl(&["start", "m"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("tmp") && !err.contains("it gave no reason"),
        "{err}"
    );
    // A bad config is said once.
    std::fs::remove_file(home.state_dir("m").join("tmp")).unwrap();
    std::fs::write(home.state_dir("m").join("openclaw.json"), "{ gateway: ").unwrap();
    let out = home.ctl(&["start", "m"]);
    let err = stderr(&out);
    assert_eq!(err.matches("invalid JSON5").count(), 1, "{err}");
    assert!(err.contains("openclaw.json:1:"), "{err}");
    // A config nested 100,000 deep crashes nothing: it is refused by name.
    let deep = format!(
        "{{ gateway: {{ x: {}1{} }} }}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(home.state_dir("m").join("openclaw.json"), deep).unwrap();
    for args in [
        &["status"][..],
        &["doctor"],
        &["stop", "m"],
        &["start", "m"],
    ] {
        let out = home.ctl(args);
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 78)),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
    }
    let out = home.ctl(&["start", "m"]);
    assert!(
        stderr(&out).contains("nested deeper than 64"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pm2_habits_positional_names_json_resources_and_all_logs() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    for (i, n) in ["a", "b"].iter().enumerate() {
        let out = json(&home.ctl(&[
            "profile",
            "create",
            n,
            "--port",
            &slot.nth(i as u16).to_string(),
            "--json",
        ]));
        assert_eq!(out["ok"], true, "{out}");
        assert_eq!(out["results"][0]["name"], *n, "{out}");
    }
    let started = json(&home.ctl(&["start", "a", "b", "--json"]));
    assert_eq!(started["ok"], true, "{started}");
    let results = started["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{started}");
    assert!(
        results
            .iter()
            .all(|r| r["result"] == "started" && r["pid"].is_u64())
    );
    // Resource columns, in JSON and in the table.
    let st = json(&home.ctl(&["status", "a", "--json"]));
    let rows = st["profiles"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{st}");
    assert!(rows[0]["memoryBytes"].as_u64().unwrap() > 1_000_000, "{st}");
    assert!(rows[0]["cpuPercent"].is_number(), "{st}");
    let table = ok(&home, &["status"]);
    assert!(table.contains("MEMORY") && table.contains("MiB"), "{table}");
    // Logs of every profile, prefixed, in time order.
    let logs = ok(&home, &["logs", "-n", "5"]);
    assert!(logs.lines().any(|l| l.starts_with("a | ")), "{logs}");
    assert!(logs.lines().any(|l| l.starts_with("b | ")), "{logs}");
    let stamps: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.split(" | ").nth(1)?.split_whitespace().next())
        .filter(|t| t.len() >= 20 && t.as_bytes()[10] == b'T')
        .map(|t| &t[..19])
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_unstable();
    assert_eq!(stamps, sorted, "{logs}");
    // Errors under --json are a document too.
    let out = home.ctl(&["stop", "nope", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out);
    assert_eq!(
        (doc["ok"].as_bool(), doc["exitCode"].as_u64()),
        (Some(false), Some(2)),
        "{doc}"
    );
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("unknown profile `nope`"),
        "{doc}"
    );
    let out = home.ctl(&["start", "--bogus", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["code"], "usage");
    let stopped = json(&home.ctl(&["stop", "a", "--profile", "b", "--json"]));
    assert_eq!(stopped["results"].as_array().unwrap().len(), 2, "{stopped}");
    let removed = json(&home.ctl(&["profile", "rm", "b", "--json"]));
    assert_eq!(removed["results"][0]["result"], "removed", "{removed}");
}

#[test]
fn service_render_under_json_is_a_document() {
    let home = TestHome::new();
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let doc = json(&home.ctl(&[
        "service",
        "render",
        "--profile",
        "a",
        "--target",
        "systemd",
        "--json",
    ]));
    assert_eq!(doc["profile"], "a");
    assert!(
        doc["text"]
            .as_str()
            .unwrap()
            .contains("RestartPreventExitStatus=78"),
        "{doc}"
    );
}

#[test]
fn logs_follow_interleaves_every_profile() {
    use std::io::BufRead;
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    create_and_start(&home, "a", slot.nth(0));
    create_and_start(&home, "b", slot.nth(1));
    let mut follow = home
        .command(bins::openclawctl())
        .args(["logs", "-f", "-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The tails (one line each) come first: then it follows.
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("logs -f printed its tail");
    }
    ok(&home, &["restart", "a", "b"]);
    let (mut seen_a, mut seen_b) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen_a && seen_b) && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen_a |= l.starts_with("a | ") && l.contains("restart requested");
            seen_b |= l.starts_with("b | ") && l.contains("restart requested");
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        seen_a && seen_b,
        "followed lines of a: {seen_a}, of b: {seen_b}"
    );
}
