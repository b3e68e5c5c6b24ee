//! `openclawctl` as a user runs it, on profiles in a temp home. Commands
//! that start gateways need the `openclaw` binary too and live in the
//! workspace's e2e tests (`tests/e2e`).

use std::path::Path;
use std::process::Output;

use openclaw_e2e::home::{stderr, stdout};
use openclaw_e2e::{TestHome, ports};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_openclawctl");

fn ctl(home: &TestHome, args: &[&str]) -> Output {
    home.command(BIN)
        .args(args)
        .output()
        .expect("run openclawctl")
}

fn ctl_ok(home: &TestHome, args: &[&str]) -> String {
    let out = ctl(home, args);
    assert!(
        out.status.success(),
        "openclawctl {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn create_makes_a_private_state_dir_and_a_config_with_a_token() {
    let home = TestHome::new();
    let slot = ports::claim();
    ctl_ok(
        &home,
        &["profile", "create", "a", "--port", &slot.base().to_string()],
    );
    let dir = home.state_dir("a");
    assert_eq!(mode(&dir), 0o700);
    let config = dir.join("openclaw.json");
    assert_eq!(mode(&config), 0o600);
    let cfg = openclaw_profiles::config::load_config(&config)
        .unwrap()
        .unwrap();
    assert_eq!(cfg.gateway.port, Some(slot.base()));
    assert_eq!(cfg.raw["gateway"]["mode"], "local");
    let token = cfg.gateway.auth.token.unwrap();
    assert_eq!(token.expose().len(), 48);
    // show and list never print the token
    let show = ctl_ok(&home, &["profile", "show", "a", "--json"]);
    let list = ctl_ok(&home, &["profile", "list", "--json"]);
    assert!(!show.contains(token.expose()) && !list.contains(token.expose()));
    let v: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v["port"], slot.base());
    assert_eq!(v["hasToken"], true);
    assert_eq!(v["origin"], "openclawctl");
}

#[test]
fn allocation_gives_disjoint_ranges_and_skips_busy_ports() {
    let home = TestHome::new();
    let slot = ports::claim_slots(4);
    // Something else listens inside the second slot's reserved set.
    let _busy = std::net::TcpListener::bind(("127.0.0.1", slot.nth(1) + 4)).unwrap();
    let out = home
        .command(BIN)
        .env("OPENCLAWCTL_PORT_BASE", slot.base().to_string())
        .args(["profile", "create", "a"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = home
        .command(BIN)
        .env("OPENCLAWCTL_PORT_BASE", slot.base().to_string())
        .args(["profile", "create", "b"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&ctl_ok(&home, &["profile", "list", "--json"])).unwrap();
    let port_of = |name: &str| {
        list["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["port"]
            .as_u64()
            .unwrap() as u16
    };
    assert_eq!(port_of("a"), slot.nth(0));
    assert_eq!(port_of("b"), slot.nth(2), "slot 1 has a busy port");
}

#[test]
fn create_refuses_collisions_with_clear_errors() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    let base = slot.base().to_string();
    ctl_ok(&home, &["profile", "create", "a", "--port", &base]);
    let cases: Vec<(Vec<String>, i32, String)> = vec![
        (
            vec!["a".into(), "--port".into(), slot.nth(1).to_string()],
            1,
            "profile `a` already exists".into(),
        ),
        (
            vec!["b".into(), "--port".into(), (slot.base() + 50).to_string()],
            1,
            format!(
                "port {} overlaps profile `a` (base {base}",
                slot.base() + 50
            ),
        ),
        (
            vec![
                "c".into(),
                "--state-dir".into(),
                home.state_dir("a").display().to_string(),
            ],
            1,
            "already belongs to profile `a`".into(),
        ),
        (
            vec!["default".into()],
            2,
            "`default` is the unnamed profile".into(),
        ),
        (
            vec!["bad name".into()],
            2,
            "invalid profile name \"bad name\"".into(),
        ),
    ];
    for (args, code, want) in cases {
        let mut full = vec!["profile", "create"];
        full.extend(args.iter().map(String::as_str));
        let out = ctl(&home, &full);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&want), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn profiles_made_by_the_real_cli_are_listed() {
    let home = TestHome::new();
    let dir = home.state_dir("fromcli");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("openclaw.json"),
        "// made by openclaw\n{ gateway: { port: 19789 } }",
    )
    .unwrap();
    let list: Value = serde_json::from_str(&ctl_ok(&home, &["profile", "list", "--json"])).unwrap();
    let p = &list["profiles"][0];
    assert_eq!(p["name"], "fromcli");
    assert_eq!(p["origin"], "discovered");
    assert_eq!(p["port"], 19789);
    let status: Value = serde_json::from_str(&ctl_ok(&home, &["status", "--json"])).unwrap();
    assert_eq!(status["profiles"][0]["state"], "stopped");
    assert_eq!(status["profiles"][0]["managedBy"], "none");
}

#[test]
fn custom_state_dir_and_config_are_remembered() {
    let home = TestHome::new();
    let slot = ports::claim();
    let state = home.path().join("srv/state-x");
    let config = home.path().join("etc/x.json");
    ctl_ok(
        &home,
        &[
            "profile",
            "create",
            "x",
            "--port",
            &slot.base().to_string(),
            "--state-dir",
            state.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let v: Value =
        serde_json::from_str(&ctl_ok(&home, &["profile", "show", "x", "--json"])).unwrap();
    assert_eq!(v["stateDir"], state.to_str().unwrap());
    assert_eq!(v["configPath"], config.to_str().unwrap());
    assert!(config.is_file());
    assert!(!home.state_dir("x").exists());
}

#[test]
fn unknown_profiles_and_bad_usage_exit_2() {
    let home = TestHome::new();
    for args in [
        &["start", "--profile", "nope"][..],
        &["stop", "--profile", "nope"],
        &["status", "--profile", "nope"],
    ] {
        let out = ctl(&home, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains(
                "unknown profile `nope`: create it with `openclawctl profile create nope`"
            )
        );
    }
    let out = ctl(&home, &["start"]);
    assert_eq!(out.status.code(), Some(2), "start needs --profile or --all");
}

#[test]
fn a_broken_registry_is_reported_not_overwritten() {
    let home = TestHome::new();
    let reg = home.path().join(".config/openclawctl/profiles.toml");
    std::fs::create_dir_all(reg.parent().unwrap()).unwrap();
    std::fs::write(&reg, "[[profile]]\nname = 'a'\nthis is = = not toml").unwrap();
    std::fs::create_dir(home.path().join(".openclaw-ondisk")).unwrap();
    // Reading commands still work, on the profiles found on disk, and the
    // warning names the file, line and column.
    let out = ctl(&home, &["profile", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ondisk"), "{}", stdout(&out));
    let want = format!("invalid profile registry {}:3:6", reg.display());
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert_eq!(ctl(&home, &["status"]).status.code(), Some(0));
    // Editing commands refuse, and the file is left as it was.
    let out = ctl(&home, &["profile", "create", "b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&reg).unwrap(),
        "[[profile]]\nname = 'a'\nthis is = = not toml"
    );
    // doctor reports it as a finding.
    let out = ctl(&home, &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["checkId"] == "registry-invalid")
        .unwrap_or_else(|| panic!("no registry-invalid finding: {doc}"));
    assert!(f["message"].as_str().unwrap().contains(&want), "{doc}");
}

#[test]
fn status_on_an_empty_home_says_what_to_do() {
    let home = TestHome::new();
    assert!(ctl_ok(&home, &["status"]).contains("openclawctl profile create"));
    let v: Value = serde_json::from_str(&ctl_ok(&home, &["status", "--json"])).unwrap();
    assert_eq!(v, serde_json::json!({"profiles": []}));
}

#[test]
fn completions_are_generated_for_each_shell() {
    let home = TestHome::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = ctl_ok(&home, &["completions", shell]);
        assert!(
            out.contains("openclawctl") && out.contains("profile") && out.contains("doctor"),
            "{shell}: {out}"
        );
    }
    assert_eq!(ctl(&home, &["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn limits_are_recorded_shown_changed_and_refused_when_malformed() {
    let home = TestHome::new();
    let slot = ports::claim();
    let out = ctl_ok(
        &home,
        &[
            "profile",
            "create",
            "a",
            "--port",
            &slot.base().to_string(),
            "--memory-max",
            "256M",
            "--cpu-quota",
            "50%",
        ],
    );
    assert!(
        out.contains("limits: memory-max 256M, cpu-quota 50%"),
        "{out}"
    );
    let show = |home: &TestHome| -> Value {
        serde_json::from_str(&ctl_ok(home, &["profile", "show", "a", "--json"])).unwrap()
    };
    assert_eq!(
        show(&home)["limits"],
        serde_json::json!({"memoryMaxBytes": 268435456, "cpuQuotaPercent": 50, "tasksMax": null, "nofile": null})
    );
    // Either spelling; `none` removes one; the others stay.
    let out = ctl_ok(&home, &["profile", "set", "a", "tasks-max", "128"]);
    assert!(
        out.contains("memory-max 256M, cpu-quota 50%, tasks-max 128")
            && out.contains("openclawctl restart a"),
        "{out}"
    );
    ctl_ok(
        &home,
        &[
            "profile",
            "set",
            "a",
            "--memory-max",
            "none",
            "--nofile",
            "2048",
        ],
    );
    let v = show(&home);
    assert_eq!(v["limits"]["memoryMaxBytes"], Value::Null);
    assert_eq!(v["limits"]["nofile"], 2048);
    assert_eq!(v["limits"]["tasksMax"], 128);
    assert!(
        ctl_ok(&home, &["profile", "show", "a"])
            .contains("limits:         cpu-quota 50%, tasks-max 128, nofile 2048")
    );
    // The unit carries them.
    let unit = ctl_ok(
        &home,
        &["service", "render", "--profile", "a", "--target", "systemd"],
    );
    assert!(
        unit.contains("CPUQuota=50%\nTasksMax=128\nLimitNOFILE=2048\n"),
        "{unit}"
    );
    // Malformed values are usage errors that say what to write, and change nothing.
    for (args, want) in [
        (
            &["profile", "set", "a", "--cpu-quota", "50"][..],
            "e.g. 50%",
        ),
        (&["profile", "set", "a", "memory-max", "lots"], "not a size"),
        (&["profile", "set", "a", "--nofile", "8"], "between 64"),
        (
            &["profile", "create", "b", "--memory-max", "1M"],
            "at least 16M",
        ),
        (&["profile", "set", "a"], "required"),
    ] {
        let out = ctl(&home, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert!(!home.state_dir("b").exists());
    assert_eq!(show(&home)["limits"]["nofile"], 2048);
}
