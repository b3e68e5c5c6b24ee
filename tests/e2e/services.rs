//! A profile as a real systemd user unit, run by a real, private
//! `systemd --user` manager (`scripts/systemd-user-up`): install,
//! readiness, restart by systemd after kill -9, `managedBy: systemd`, exit
//! 78 staying down, uninstall leaving nothing behind, and the `--deep`
//! scan. If no manager can start, the test fails: it must run in CI.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use openclaw_e2e::home::{stderr, stdout};
use openclaw_e2e::{TestHome, ports, wait_until};
use openclaw_profiles::process::pid_alive;
use serde_json::Value;

use crate::skeleton::{ok, status_of};

/// `scripts/<name>` of this repository.
fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// A private user manager for one test; stopped on drop.
struct Manager {
    base: PathBuf,
}

impl Manager {
    fn up(home: &mut TestHome) -> Self {
        let base = home.base().to_path_buf();
        let out = Command::new("bash")
            .arg(script("systemd-user-up"))
            .arg(&base)
            .output()
            .expect("run scripts/systemd-user-up");
        assert!(
            out.status.success(),
            "could not start a systemd user manager (install the `systemd` package; needs root and writable cgroups): {}{}",
            stdout(&out),
            stderr(&out)
        );
        home.set_env("XDG_RUNTIME_DIR", base.join("run").to_string_lossy());
        Self { base }
    }

    fn systemctl(&self, args: &[&str]) -> String {
        let out = Command::new("systemctl")
            .arg("--user")
            .args(args)
            .env("HOME", self.base.join("home"))
            .env("XDG_RUNTIME_DIR", self.base.join("run"))
            .output()
            .unwrap();
        stdout(&out).trim().to_string()
    }

    fn main_pid(&self, unit: &str) -> Option<u32> {
        self.systemctl(&["show", "-p", "MainPID", "--value", unit])
            .parse()
            .ok()
            .filter(|&p| p > 0)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("systemd-user-down"))
            .arg(&self.base)
            .output();
    }
}

#[test]
fn a_profile_installed_as_a_systemd_user_unit_is_run_by_systemd() {
    let mut home = TestHome::under_base();
    let manager = Manager::up(&mut home);
    let slot = ports::claim();
    let unit = "openclaw-gateway-a.service";
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );

    let out = ok(&home, &["service", "install", "--profile", "a"]);
    assert!(
        out.contains("installed") && out.contains("is ready on port"),
        "{out}"
    );
    let unit_path = home.path().join(".config/systemd/user").join(unit);
    let installed = std::fs::read_to_string(&unit_path).unwrap();
    assert_eq!(
        ok(
            &home,
            &["service", "render", "--profile", "a", "--target", "systemd"]
        ),
        installed
    );
    assert!(
        !installed
            .contains(&std::fs::read_to_string(home.state_dir("a").join("openclaw.json")).unwrap())
    );
    assert_eq!(manager.systemctl(&["is-active", unit]), "active");
    assert_eq!(manager.systemctl(&["is-enabled", unit]), "enabled");
    // Installing again changes nothing.
    assert!(
        ok(&home, &["service", "install", "--profile", "a"])
            .contains("already installed and up to date")
    );

    let s = status_of(&home, "a");
    let first = manager.main_pid(unit).unwrap();
    assert_eq!(
        (s["managedBy"].as_str(), s["state"].as_str()),
        (Some("systemd"), Some("running")),
        "{s}"
    );
    assert_eq!(s["pid"], first);
    assert_eq!(s["healthy"], true);

    // kill -9 of the main pid: systemd restarts it (RestartSec=5).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut s = Value::Null;
    wait_until(
        Duration::from_secs(30),
        "systemd restarts the gateway",
        || {
            s = status_of(&home, "a");
            s["healthy"] == true && s["pid"].as_u64().is_some_and(|p| p as u32 != first)
        },
    );
    // systemd counts the restart; it forgets how an auto-restarted process
    // ended (ExecMain* describe the new one, and there is no journal here).
    assert_eq!(s["restarts"], 1, "{s}");

    // One owner: start goes through systemd; no keeper ever runs it.
    let out = ok(&home, &["start", "--profile", "a"]);
    assert!(
        out.contains("already running under systemd openclaw-gateway-a.service"),
        "{out}"
    );
    // A keeper asked to run it anyway refuses (78) and says who owns it.
    let out = home.ctl(&["keep", "--profile", "a"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let rec: Value = serde_json::from_str(
        &std::fs::read_to_string(home.state_dir("a").join("tmp/openclawctl.json")).unwrap(),
    )
    .unwrap();
    assert!(
        rec["lastError"]
            .as_str()
            .unwrap()
            .contains("is installed as systemd openclaw-gateway-a.service"),
        "{rec}"
    );
    assert_eq!(status_of(&home, "a")["managedBy"], "systemd");
    let out = ok(&home, &["stop", "--profile", "a"]);
    assert!(out.contains("through systemd"), "{out}");
    assert_eq!(status_of(&home, "a")["state"], "stopped");
    let out = ok(&home, &["start", "--profile", "a"]);
    assert!(out.contains("started profile `a`"), "{out}");

    // A gateway that exits 78 stays down.
    let config = home.state_dir("a").join("openclaw.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"local\"", "\"remote\"")).unwrap();
    let out = home.ctl(&["restart", "--profile", "a"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let restarts_then = manager.systemctl(&["show", "-p", "NRestarts", "--value", unit]);
    // Watch it for longer than RestartSec=5: it must stay down throughout.
    let watch_until = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < watch_until {
        assert_eq!(
            manager.systemctl(&["is-active", unit]),
            "failed",
            "restarted after exit 78"
        );
        assert!(
            home.lock_holders().is_empty(),
            "a gateway came back after exit 78"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        manager.systemctl(&["show", "-p", "NRestarts", "--value", unit]),
        restarts_then
    );
    let s = status_of(&home, "a");
    assert_eq!(
        (s["state"].as_str(), s["managedBy"].as_str()),
        (Some("conflict"), Some("systemd")),
        "{s}"
    );
    assert_eq!(s["lastExit"]["code"], 78, "{s}");
    // As for keeper rows, the gateway's last error line explains it.
    assert!(
        s["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("gateway.mode=local"),
        "{s}"
    );
    std::fs::write(&config, text).unwrap();

    // A stale unit for a profile that no longer exists, found by the scan.
    std::fs::write(
        home.path().join(".config/systemd/user/openclaw-gateway-ghost.service"),
        "[Service]\nExecStart=/nonexistent/openclaw gateway --port 1\nEnvironment=OPENCLAW_PROFILE=ghost\n",
    )
    .unwrap();
    let v: Value = serde_json::from_str(&ok(&home, &["service", "status", "--json"])).unwrap();
    let a = &v["services"][0];
    assert_eq!(
        (a["installed"].as_bool(), a["drifted"].as_bool()),
        (Some(true), Some(false)),
        "{a}"
    );
    let issue = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "openclaw-gateway-ghost.service")
        .unwrap();
    assert_eq!(issue["problem"], "stale");
    assert!(
        issue["hint"]
            .as_str()
            .unwrap()
            .starts_with("systemctl --user disable --now openclaw-gateway-ghost.service")
    );

    // Uninstall leaves no unit file and no process; the state dir stays.
    let pid = manager.main_pid(unit);
    let out = ok(&home, &["service", "uninstall", "--profile", "a"]);
    assert!(out.contains("uninstalled"), "{out}");
    assert!(!unit_path.exists());
    assert!(home.lock_holders().is_empty());
    if let Some(p) = pid {
        assert!(!pid_alive(p));
    }
    assert!(home.state_dir("a").join("openclaw.json").is_file());
    assert_eq!(status_of(&home, "a")["managedBy"], "none");

    // The gateway binary's own `gateway install|status|uninstall` use the same unit.
    let oc = |args: &[&str]| {
        let out = home
            .command(openclaw_e2e::bins::openclaw())
            .args(["--profile", "a", "gateway"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openclaw gateway {args:?}: {}",
            stderr(&out)
        );
        stdout(&out)
    };
    assert!(oc(&["install"]).contains("openclaw-gateway-a.service"));
    assert_eq!(
        std::fs::read_to_string(&unit_path).unwrap(),
        installed,
        "the same unit as openclawctl's"
    );
    wait_until(Duration::from_secs(20), "healthy under systemd", || {
        status_of(&home, "a")["healthy"] == true
    });
    let v: Value = serde_json::from_str(&oc(&["status", "--json"])).unwrap();
    assert_eq!(
        (v["installed"].as_bool(), v["activeState"].as_str()),
        (Some(true), Some("active")),
        "{v}"
    );
    oc(&["uninstall"]);
    assert!(!unit_path.exists());
    wait_until(Duration::from_secs(20), "no gateway left", || {
        home.lock_holders().is_empty()
    });
}

#[test]
fn install_without_a_user_manager_says_how_to_fix_it() {
    let mut home = TestHome::under_base();
    // A runtime dir with no manager behind it.
    let run = home.base().join("run");
    std::fs::create_dir_all(&run).unwrap();
    home.set_env("XDG_RUNTIME_DIR", run.to_string_lossy());
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let out = home.ctl(&["service", "install", "--profile", "a"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no systemd user manager is running")
            && err.contains("loginctl enable-linger"),
        "{err}"
    );
    assert!(
        !home
            .path()
            .join(".config/systemd/user/openclaw-gateway-a.service")
            .exists()
    );
}

#[test]
fn install_all_hands_keepers_over_and_rm_takes_the_service_with_it() {
    let mut home = TestHome::under_base();
    let manager = Manager::up(&mut home);
    let slot = ports::claim_slots(2);
    for (i, n) in ["a", "b"].iter().enumerate() {
        ok(
            &home,
            &[
                "profile",
                "create",
                n,
                "--port",
                &slot.nth(i as u16).to_string(),
            ],
        );
    }
    // b: its token only in <stateDir>/.env, and small log limits there too.
    let token = "b-token-only-in-dotenv-0123456789";
    std::fs::write(
        home.state_dir("b").join("openclaw.json"),
        format!(
            "{{ gateway: {{ mode: 'local', port: {}, auth: {{ mode: 'token' }} }} }}\n",
            slot.nth(1)
        ),
    )
    .unwrap();
    std::fs::write(
        home.state_dir("b").join(".env"),
        format!("OPENCLAW_GATEWAY_TOKEN={token}\nOPENCLAWCTL_LOG_MAX_BYTES=300\nOPENCLAWCTL_LOG_FILES=2\n"),
    )
    .unwrap();
    // a runs under a keeper first.
    ok(&home, &["start", "a"]);
    assert_eq!(status_of(&home, "a")["managedBy"], "openclawctl");

    let out = home.ctl(&["service", "install", "--all", "--json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let results = doc["results"].as_array().unwrap();
    let of = |n: &str| results.iter().find(|r| r["profile"] == n).unwrap().clone();
    assert_eq!(of("a")["handedOver"], true, "{doc}");
    assert_eq!(of("b")["handedOver"], false, "{doc}");
    for n in ["a", "b"] {
        let s = status_of(&home, n);
        assert_eq!(
            (s["managedBy"].as_str(), s["healthy"].as_bool()),
            (Some("systemd"), Some(true)),
            "{s}"
        );
    }
    assert!(
        std::fs::read_to_string(
            home.path()
                .join(".config/systemd/user/openclaw-gateway-b.service")
        )
        .is_ok_and(|u| !u.contains(token)),
        "the token never goes into the unit"
    );
    // The operator command finds the same token as the gateway under systemd.
    let out = home
        .command(openclaw_e2e::bins::openclaw())
        .args(["--profile", "b", "health", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Under systemd the gateway rotates its own log, with the keeper's rule.
    let rotated = home.state_dir("b").join("logs/gateway.log.1");
    for _ in 0..8 {
        if rotated.exists() {
            break;
        }
        ok(&home, &["restart", "b"]);
    }
    assert!(rotated.exists(), "gateway.log never rotated under systemd");
    assert!(!home.state_dir("b").join("logs/gateway.log.3").exists());
    assert!(!ok(&home, &["logs", "b"]).is_empty());

    // Removing a profile removes its service first; nothing is left behind.
    let unit = "openclaw-gateway-a.service";
    let out = ok(&home, &["profile", "rm", "a", "--purge", "--force"]);
    assert!(out.contains("uninstalled its service"), "{out}");
    assert!(!home.path().join(".config/systemd/user").join(unit).exists());
    assert_ne!(manager.systemctl(&["is-enabled", unit]), "enabled");
    assert_ne!(manager.systemctl(&["is-active", unit]), "active");
    assert!(!home.state_dir("a").exists());
    ok(&home, &["service", "uninstall", "b"]);
}

/// `export systemd` for a host without openclawctl: the exported unit
/// verifies, and after the profile is gone from this host (a fresh host
/// with the same home), the exported `install.sh`, run as the user against
/// a real user manager, brings the gateway up on its port; run again it
/// keeps the live config.
#[test]
fn an_exported_unit_installs_and_runs_without_openclawctl() {
    let mut home = TestHome::under_base();
    let manager = Manager::up(&mut home);
    let slot = ports::claim();
    ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    // Its limits travel with it, as unit lines the manager applies.
    ok(
        &home,
        &[
            "profile",
            "set",
            "a",
            "--memory-max",
            "256M",
            "--cpu-quota",
            "50%",
            "--tasks-max",
            "256",
            "--nofile",
            "4096",
        ],
    );
    std::fs::write(
        home.state_dir("a").join(".env"),
        "EXTRA_SETTING=from-dotenv\n",
    )
    .unwrap();
    let binary = openclaw_e2e::bins::openclaw();
    let out_dir = home.base().join("export");
    let out = ok(
        &home,
        &[
            "export",
            "systemd",
            "--profile",
            "a",
            "--out",
            out_dir.to_str().unwrap(),
            "--binary",
            binary.to_str().unwrap(),
        ],
    );
    assert!(out.contains("openclaw-gateway-a.service"), "{out}");
    let dir = out_dir.join("a");
    let unit_file = dir.join("openclaw-gateway-a.service");
    let unit = std::fs::read_to_string(&unit_file).unwrap();
    assert!(unit.contains(binary.to_str().unwrap()), "{unit}");
    for line in [
        "MemoryMax=256M",
        "CPUQuota=50%",
        "TasksMax=256",
        "LimitNOFILE=4096",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in {unit}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("openclaw.json")), 0o600);
    assert_eq!(mode(&dir.join("gateway.systemd.env")), 0o600);
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--user", "--man=no"])
        .arg(&unit_file)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", manager.base.join("run"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    // This host forgets the profile and its files: the target is "new".
    ok(&home, &["profile", "rm", "a", "--purge", "--force"]);
    let state = home.state_dir("a");
    assert!(!state.exists());
    let install = || {
        Command::new("sh")
            .arg(dir.join("install.sh"))
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", manager.base.join("run"))
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .unwrap()
    };
    let run = install();
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("openclaw.json")), 0o600);
    assert!(
        std::fs::read_to_string(state.join("gateway.systemd.env"))
            .unwrap()
            .contains("EXTRA_SETTING=from-dotenv")
    );
    wait_until(
        Duration::from_secs(30),
        "the exported unit's gateway",
        || !openclaw_profiles::ports::is_port_free(slot.base()),
    );
    assert_eq!(
        manager.systemctl(&["is-active", "openclaw-gateway-a.service"]),
        "active"
    );
    // The manager took the limits; the open-files rlimit is on the process.
    // (Memory, CPU and tasks are cgroup settings: this machine's user
    // manager has no delegated controllers to apply them to.)
    let unit = "openclaw-gateway-a.service";
    assert_eq!(
        manager.systemctl(&["show", "-p", "MemoryMax", "--value", unit]),
        (256u64 << 20).to_string()
    );
    assert_eq!(
        manager.systemctl(&["show", "-p", "CPUQuotaPerSecUSec", "--value", unit]),
        "500ms"
    );
    assert_eq!(
        manager.systemctl(&["show", "-p", "TasksMax", "--value", unit]),
        "256"
    );
    let pid = manager.main_pid(unit).expect("the unit's main pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits.lines().any(|l| l.starts_with("Max open files")
            && l.split_whitespace().skip(3).take(2).eq(["4096", "4096"])),
        "{limits}"
    );
    // Again, with an edited live config: it stays.
    let live = state.join("openclaw.json");
    let edited = std::fs::read_to_string(&live).unwrap() + "\n// edited on the host\n";
    std::fs::write(&live, &edited).unwrap();
    let run = install();
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(std::fs::read_to_string(&live).unwrap(), edited);
    manager.systemctl(&["disable", "--now", "openclaw-gateway-a.service"]);
}
