//! The real OpenClaw CLI (npm `openclaw`) as a client of a gateway started
//! by `openclawctl`. The CLI reaches for the internet on its own, so these
//! tests refuse to run outside a loopback-only network namespace
//! (`shared/tools/openclaw-cli/offline.sh`, which `scripts/test` uses).

use std::process::Output;

use openclaw_e2e::home::{stderr, stdout};
use openclaw_e2e::{TestHome, bins, ports};
use serde_json::Value;

use crate::skeleton::{create_and_start, ok};

/// Panics unless this process can only reach loopback.
pub(crate) fn assert_offline() {
    // /proc/self/net follows this process's network namespace (sysfs does not).
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("read /proc/self/net/dev");
    let ifaces: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|i| i.trim().to_string()))
        .collect();
    assert!(
        ifaces.iter().all(|i| i == "lo"),
        "the real OpenClaw CLI only runs in a loopback-only network namespace, but this one has {ifaces:?}; \
         run the suite with scripts/test (or under scripts/offline)"
    );
}

/// Runs the real CLI with a throwaway client home inside `home`.
fn real_cli(home: &TestHome, args: &[&str]) -> Output {
    real_cli_env(home, &[], args)
}

/// The same, with extra environment (e.g. `OPENCLAW_GATEWAY_URL`).
pub(crate) fn real_cli_env(home: &TestHome, env: &[(&str, &str)], args: &[&str]) -> Output {
    real_cli_command(home, env, args)
        .output()
        .expect("run the real OpenClaw CLI")
}

/// The real CLI as a command, not yet run (for one that runs alongside).
pub(crate) fn real_cli_command(
    home: &TestHome,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Command {
    assert_offline();
    let cli_home = home.path().join("cli");
    let state = cli_home.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut cmd = home.command(bins::real_openclaw_cli());
    cmd.env("HOME", &cli_home)
        .env("OPENCLAW_STATE_DIR", &state)
        .env("OPENCLAW_CONFIG_PATH", state.join("openclaw.json"))
        .envs(env.iter().copied())
        .args(args);
    cmd
}

pub(crate) fn token_of(home: &TestHome, name: &str) -> String {
    let cfg = openclaw_profiles::config::load_config(&home.state_dir(name).join("openclaw.json"))
        .unwrap()
        .unwrap();
    cfg.gateway.auth.token.unwrap().expose().to_string()
}

#[test]
fn real_cli_gateway_call_health_against_a_started_profile() {
    let home = TestHome::new();
    let slot = ports::claim();
    let s = create_and_start(&home, "a", slot.base());
    assert_eq!(s["healthy"], true);
    let url = format!("ws://127.0.0.1:{}", slot.base());
    let token = token_of(&home, "a");

    let out = real_cli(
        &home,
        &[
            "gateway", "call", "health", "--url", &url, "--token", &token, "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let health: Value =
        serde_json::from_str(&stdout(&out)).expect("the CLI printed our health JSON");
    assert_eq!(health["ok"], true);
    assert_eq!(health["defaultAgentId"], "main");
    let sessions = health["sessions"]["path"].as_str().unwrap();
    assert!(
        sessions.starts_with(home.state_dir("a").to_str().unwrap()),
        "{sessions}"
    );

    // A wrong token: exit 1 and the real gateway's message.
    let out = real_cli(
        &home,
        &[
            "gateway", "call", "health", "--url", &url, "--token", "WRONG", "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        err["error"]["message"],
        "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)"
    );
    assert_eq!(err["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH");
}

/// Stdout of a command that must have exited 0 (else both streams shown).
pub(crate) fn ok_out(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

fn json_out(out: &Output) -> Value {
    let text = ok_out(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn real_cli_gateway_calls_status_presence_and_config() {
    let home = TestHome::new();
    let slot = ports::claim();
    create_and_start(&home, "a", slot.base());
    let url = format!("ws://127.0.0.1:{}", slot.base());
    let token = token_of(&home, "a");
    let call = |m: &str| {
        real_cli(
            &home,
            &[
                "gateway", "call", m, "--url", &url, "--token", &token, "--json",
            ],
        )
    };

    let status = json_out(&call("status"));
    assert!(
        status["runtimeVersion"]
            .as_str()
            .unwrap()
            .ends_with("-rust"),
        "{status}"
    );
    assert_eq!(status["tasks"]["total"], 0);
    let presence = json_out(&call("system-presence"));
    assert_eq!(presence[0]["mode"], "gateway");
    assert_eq!(presence[0]["reason"], "self");
    let config = json_out(&call("config.get"));
    assert_eq!(config["valid"], true);
    assert_eq!(config["config"]["gateway"]["port"], slot.base());
    assert!(
        !stdout(&call("config.get")).contains(&token),
        "the token is redacted"
    );
    // An unknown method: exit 1 with the spec's message.
    let out = call("no.such.method");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("unknown method: no.such.method")
            || stderr(&out).contains("unknown method: no.such.method")
    );
}

#[test]
fn real_cli_probe_health_env_and_status_remote() {
    let home = TestHome::new();
    let slot = ports::claim();
    create_and_start(&home, "a", slot.base());
    let url = format!("ws://127.0.0.1:{}", slot.base());
    let token = token_of(&home, "a");

    let probe = json_out(&real_cli(
        &home,
        &[
            "gateway", "probe", "--url", &url, "--token", &token, "--json",
        ],
    ));
    assert_eq!(probe["ok"], true, "{probe}");
    let explicit = probe["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "explicit")
        .unwrap();
    assert_eq!(explicit["connect"]["ok"], true, "{explicit}");
    assert!(
        explicit["server"]["version"]
            .as_str()
            .unwrap()
            .ends_with("-rust")
    );

    // `health` finds the gateway through OPENCLAW_GATEWAY_URL/TOKEN.
    let gateway_env = [
        ("OPENCLAW_GATEWAY_URL", url.as_str()),
        ("OPENCLAW_GATEWAY_TOKEN", token.as_str()),
    ];
    let out = real_cli_env(&home, &gateway_env, &["health", "--json"]);
    let health = json_out(&out);
    assert_eq!(health["ok"], true);
    assert_eq!(health["defaultAgentId"], "main");

    // `status` with a client config in remote mode.
    std::fs::write(
        home.path().join("cli/state/openclaw.json"),
        format!("{{ gateway: {{ mode: \"remote\", remote: {{ url: \"{url}\", token: \"{token}\" }} }} }}"),
    )
    .unwrap();
    let status = json_out(&real_cli(&home, &["status", "--json"]));
    assert!(status.is_object(), "{status}");
}

#[test]
fn real_cli_logs_and_devices_list() {
    let home = TestHome::new();
    let slot = ports::claim();
    create_and_start(&home, "a", slot.base());
    let url = format!("ws://127.0.0.1:{}", slot.base());
    let token = token_of(&home, "a");

    let devices = json_out(&real_cli(
        &home,
        &[
            "devices", "list", "--json", "--url", &url, "--token", &token,
        ],
    ));
    assert_eq!(devices["pending"], serde_json::json!([]));
    assert!(devices["paired"].is_array(), "{devices}");

    let gateway_env = [
        ("OPENCLAW_GATEWAY_URL", url.as_str()),
        ("OPENCLAW_GATEWAY_TOKEN", token.as_str()),
    ];
    let out = real_cli_env(&home, &gateway_env, &["logs", "--limit", "20"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("listening on ws://127.0.0.1:"),
        "{}",
        stdout(&out)
    );
}

/// OpenClaw's `--profile dev` goes to port 19001 (its CLI sets
/// `OPENCLAW_GATEWAY_PORT`); a `dev` profile of ours serves exactly there,
/// so the real CLI reaches it with no flags at all.
#[test]
fn real_cli_reaches_profile_dev_on_its_implied_port() {
    assert_offline();
    let home = TestHome::new();
    let out = ok(&home, &["profile", "create", "dev"]);
    assert!(out.contains("port 19001"), "{out}");
    ok(&home, &["start", "dev"]);
    let out = home
        .command(bins::real_openclaw_cli())
        .args(["--profile", "dev", "gateway", "status"])
        .output()
        .expect("run the real OpenClaw CLI");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("Probe target: ws://127.0.0.1:19001")
            && text.contains("Connectivity probe: ok"),
        "{text}"
    );
    let out = home
        .command(bins::real_openclaw_cli())
        .args(["--profile", "dev", "gateway", "call", "health", "--json"])
        .output()
        .expect("run the real OpenClaw CLI");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    ok(&home, &["stop", "dev"]);
}
