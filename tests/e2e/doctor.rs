//! `doctor`: each check against a real conflict built on disk, sockets and
//! processes; `--fix`; a clean multi-profile host with no findings.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use openclaw_e2e::home::stderr;
use openclaw_e2e::{TestHome, bins, ports};
use serde_json::Value;

use crate::skeleton::ok;

fn doctor(home: &TestHome, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let out = home.ctl(&args);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}", stderr(&out)));
    (out.status.code().unwrap(), v)
}

fn findings<'a>(v: &'a Value, id: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["checkId"] == id)
        .collect()
}

fn one<'a>(v: &'a Value, id: &str) -> &'a Value {
    let f = findings(v, id);
    assert_eq!(f.len(), 1, "want one {id} finding in {v:#}");
    f[0]
}

fn create(home: &TestHome, name: &str, port: u16) {
    ok(
        home,
        &["profile", "create", name, "--port", &port.to_string()],
    );
}

fn edit_config(home: &TestHome, name: &str, f: impl FnOnce(&mut Value)) {
    let path = home.state_dir(name).join("openclaw.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn registry_append(home: &TestHome, entry: &str) {
    let reg = home.path().join(".config/openclawctl/profiles.toml");
    let mut text = std::fs::read_to_string(&reg).unwrap_or_default();
    text.push_str(entry);
    std::fs::write(reg, text).unwrap();
}

fn unit_dir(home: &TestHome) -> std::path::PathBuf {
    home.path().join(".config/systemd/user")
}

fn write_rendered_unit(home: &TestHome, name: &str) -> std::path::PathBuf {
    let unit = ok(
        home,
        &[
            "service",
            "render",
            "--profile",
            name,
            "--target",
            "systemd",
        ],
    );
    std::fs::create_dir_all(unit_dir(home)).unwrap();
    let path = unit_dir(home).join(format!("openclaw-gateway-{name}.service"));
    std::fs::write(&path, unit).unwrap();
    path
}

fn assert_finding(f: &Value, severity: &str, profiles: &[&str], fixable: bool) {
    assert_eq!(f["severity"], severity, "{f}");
    let mut got: Vec<&str> = f["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, profiles, "{f}");
    assert_eq!(f["fixable"], fixable, "{f}");
    assert!(!f["fixHint"].as_str().unwrap().is_empty(), "{f}");
}

#[test]
fn a_clean_host_with_several_profiles_has_no_findings() {
    let home = TestHome::new();
    let slot = ports::claim_slots(3);
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        create(&home, n, slot.nth(i as u16));
    }
    ok(&home, &["start", "--profile", "a", "--profile", "b"]);
    let (code, v) = doctor(&home, &[]);
    assert_eq!((code, &v["ok"]), (0, &Value::Bool(true)), "{v:#}");
    assert_eq!(v["findings"], serde_json::json!([]));
    let out = home.ctl(&["doctor"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no problems found"));
    // The gateway binary's doctor runs the same checks.
    let out = home
        .command(bins::openclaw())
        .args(["--profile", "a", "doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn shared_state_dir_and_config_path() {
    let home = TestHome::new();
    let slot = ports::claim_slots(3);
    create(&home, "a", slot.nth(0));
    let a = home.state_dir("a");
    registry_append(
        &home,
        &format!(
            "\n[[profile]]\nname = \"b\"\nstate-dir = \"{}\"\n",
            a.display()
        ),
    );
    let c_state = home.path().join("c-state");
    std::fs::create_dir(&c_state).unwrap();
    registry_append(
        &home,
        &format!(
            "\n[[profile]]\nname = \"c\"\nstate-dir = \"{}\"\nconfig-path = \"{}\"\n",
            c_state.display(),
            a.join("openclaw.json").display()
        ),
    );
    let (code, v) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_finding(one(&v, "state-dir-shared"), "error", &["a", "b"], false);
    let shared: Vec<_> = findings(&v, "config-path-shared");
    assert!(
        shared
            .iter()
            .any(|f| f["profiles"] == serde_json::json!(["a", "c"])),
        "{v:#}"
    );
}

#[test]
fn overlapping_ranges_and_ports_held_by_others() {
    let home = TestHome::new();
    let slot = ports::claim_slots(3);
    create(&home, "a", slot.nth(0));
    create(&home, "b", slot.nth(1));
    create(&home, "c", slot.nth(2));
    edit_config(&home, "b", |v| {
        v["gateway"]["port"] = (slot.nth(0) + 50).into()
    });
    // A foreign program on c's port.
    let _foreign = std::net::TcpListener::bind(("127.0.0.1", slot.nth(2))).unwrap();
    let (code, v) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_finding(one(&v, "port-overlap"), "error", &["a", "b"], false);
    let busy = one(&v, "port-in-use");
    assert_finding(busy, "error", &["c"], false);
    let msg = busy["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "port {} of profile `c` is held by another program (pid {}",
            slot.nth(2),
            std::process::id()
        )),
        "{msg}"
    );
    // `openclaw doctor` reports what involves its profile only.
    let out = home
        .command(bins::openclaw())
        .args(["--profile", "c", "doctor", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings(&v, "port-overlap").len(), 0);
    assert_eq!(findings(&v, "port-in-use").len(), 1);
}

#[test]
fn a_port_held_by_another_profiles_gateway_is_named() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    create(&home, "a", slot.nth(0));
    create(&home, "b", slot.nth(1));
    ok(&home, &["start", "--profile", "b"]);
    edit_config(&home, "a", |v| v["gateway"]["port"] = slot.nth(1).into());
    let (_, v) = doctor(&home, &[]);
    let msg = one(&v, "port-in-use")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("is held by the gateway of profile `b`"),
        "{msg}"
    );
}

#[test]
fn stale_locks_are_found_and_fixed() {
    let home = TestHome::new();
    let slot = ports::claim();
    create(&home, "a", slot.base());
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let uid = nix::unistd::getuid();
    let dir = home.state_dir("a").join(format!("tmp/openclaw-{uid}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gateway.state.lock"), "").unwrap();
    std::fs::write(
        dir.join("gateway.state.json"),
        format!(r#"{{"pid":{dead},"version":"x","createdAt":0}}"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("gateway.1a2b3c4d.lock"),
        format!(r#"{{"pid":{dead},"createdAt":"x"}}"#),
    )
    .unwrap();
    let (code, v) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_finding(one(&v, "lock-stale"), "warning", &["a"], true);
    let (code, v) = doctor(&home, &["--fix", "--yes"]);
    assert_eq!((code, findings(&v, "lock-stale").len()), (0, 0), "{v:#}");
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "all three stale files are gone"
    );
    // A live owner's lock is never touched.
    ok(&home, &["start", "--profile", "a"]);
    let (code, _) = doctor(&home, &["--fix", "--yes"]);
    assert_eq!(code, 0);
    assert!(dir.join("gateway.state.lock").exists());
}

#[test]
fn services_drifted_stale_duplicated_and_without_linger() {
    let mut home = TestHome::new();
    home.set_env("USER", format!("doctor-test-{}", std::process::id()));
    let slot = ports::claim_slots(2);
    create(&home, "a", slot.nth(0));
    create(&home, "b", slot.nth(1));
    // a: an installed unit, then edited (drift).
    let unit = write_rendered_unit(&home, "a");
    let rendered = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        rendered.replace(&format!("--port {}", slot.nth(0)), "--port 1"),
    )
    .unwrap();
    // b: running under a keeper and also installed (two owners).
    ok(&home, &["start", "--profile", "b"]);
    write_rendered_unit(&home, "b");
    // ghost: a unit for a profile that does not exist.
    std::fs::write(
        unit_dir(&home).join("openclaw-gateway-ghost.service"),
        "[Service]\nExecStart=/nonexistent/openclaw gateway --port 1\nEnvironment=OPENCLAW_PROFILE=ghost\n",
    )
    .unwrap();
    let (code, v) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_finding(one(&v, "service-drift"), "warning", &["a"], true);
    assert_finding(one(&v, "supervisor-duplicate"), "error", &["b"], false);
    assert_finding(one(&v, "service-stale"), "warning", &["ghost"], false);
    assert!(
        one(&v, "linger-missing")["fixHint"]
            .as_str()
            .unwrap()
            .starts_with("sudo loginctl enable-linger doctor-test-")
    );
    // --fix rewrites the drifted unit of the stopped profile.
    let (_, v) = doctor(&home, &["--fix", "--yes"]);
    assert_eq!(findings(&v, "service-drift").len(), 0, "{v:#}");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), rendered);
}

#[test]
fn shared_bot_tokens_logs_and_workspaces_without_printing_secrets() {
    let home = TestHome::new();
    let slot = ports::claim_slots(2);
    create(&home, "a", slot.nth(0));
    create(&home, "b", slot.nth(1));
    let secret = "123456:very-secret-bot-token";
    let shared_ws = home.path().join("ws");
    let log = home.path().join("gateway.log");
    edit_config(&home, "a", |v| {
        v["channels"] = serde_json::json!({"telegram": {"botToken": secret}});
        v["logging"] = serde_json::json!({"file": log});
        v["agents"] = serde_json::json!({"defaults": {"workspace": shared_ws}});
    });
    edit_config(&home, "b", |v| {
        v["logging"] = serde_json::json!({"file": log});
        v["agents"] = serde_json::json!({"defaults": {"workspace": shared_ws}});
    });
    std::fs::write(
        home.state_dir("b").join(".env"),
        format!("TELEGRAM_BOT_TOKEN={secret}\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        home.state_dir("b").join(".env"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = home.ctl(&["doctor", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("very-secret"), "a token was printed: {text}");
    let human = home.ctl(&["doctor"]);
    assert!(!String::from_utf8_lossy(&human.stdout).contains("very-secret"));
    let v: Value = serde_json::from_str(&text).unwrap();
    let f = one(&v, "bot-token-shared");
    assert_finding(f, "error", &["a", "b"], false);
    assert!(
        f["message"].as_str().unwrap().contains("(config)")
            && f["message"].as_str().unwrap().contains("(.env)")
    );
    assert_finding(one(&v, "log-file-shared"), "warning", &["a", "b"], false);
    assert_finding(one(&v, "workspace-shared"), "warning", &["a", "b"], false);
}

#[test]
fn bind_without_auth_invalid_config_and_permissions() {
    let home = TestHome::new();
    let slot = ports::claim_slots(3);
    create(&home, "open", slot.nth(0));
    create(&home, "broken", slot.nth(1));
    create(&home, "loose", slot.nth(2));
    edit_config(&home, "open", |v| {
        v["gateway"]["bind"] = "lan".into();
        v["gateway"]["auth"] = serde_json::json!({"mode": "none"});
    });
    std::fs::write(
        home.state_dir("broken").join("openclaw.json"),
        "{\n  gateway: {\n    port: 1,,\n}",
    )
    .unwrap();
    std::fs::set_permissions(
        home.state_dir("loose"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let cfg = home.state_dir("loose").join("openclaw.json");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (code, v) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_finding(one(&v, "bind-without-auth"), "error", &["open"], false);
    let invalid = one(&v, "config-invalid");
    assert_finding(invalid, "error", &["broken"], false);
    let msg = invalid["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "{}:3:",
            home.state_dir("broken").join("openclaw.json").display()
        )),
        "{msg}"
    );
    let perms = findings(&v, "permissions");
    assert_eq!(perms.len(), 2, "{v:#}");
    for p in &perms {
        assert_finding(p, "warning", &["loose"], true);
    }
    doctor(&home, &["--fix", "--yes"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.state_dir("loose")), 0o700);
    assert_eq!(mode(&cfg), 0o600);
    let (_, v) = doctor(&home, &[]);
    assert_eq!(findings(&v, "permissions").len(), 0);
    // Without --yes and without a terminal, nothing is changed.
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = home.ctl(&["doctor", "--fix"]);
    assert!(
        stderr(&out).contains("skipped permissions"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mode(&cfg), 0o644);
}
