//! The agent runtime end to end: profiles started by `openclawctl` whose
//! model provider is the fake OpenAI-compatible server of the test support,
//! driven by the real OpenClaw CLI (`agent`, `gateway call`), the real TUI
//! in tmux, and our own `openclaw agent` / `openclaw sessions`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openclaw_e2e::fake_provider::FakeProvider;
use openclaw_e2e::home::{stderr, stdout};
use openclaw_e2e::{TestHome, bins, ports, wait_until};
use serde_json::Value;

use crate::interop::{assert_offline, ok_out, real_cli_env, token_of};
use crate::skeleton::ok;

const REPLY: &str = "Hello from the fake provider. You said: ";

/// Creates profile `name` on `port` with the fake as its model provider
/// and starts it.
fn start_with_fake(home: &TestHome, name: &str, port: u16, fake: &FakeProvider) {
    start_with_config(home, name, port, &fake.config());
}

/// Creates profile `name` on `port`, merges `extra`'s top-level keys into
/// its config (a key of `gateway` is merged one level down, keeping the
/// token) and starts it.
pub(crate) fn start_with_config(home: &TestHome, name: &str, port: u16, extra: &Value) {
    ok(
        home,
        &["profile", "create", name, "--port", &port.to_string()],
    );
    let path = home.state_dir(name).join("openclaw.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        match (k.as_str(), v.as_object()) {
            ("gateway", Some(g)) => {
                for (gk, gv) in g {
                    cfg["gateway"][gk] = gv.clone();
                }
            }
            _ => cfg[k] = v.clone(),
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let out = ok(home, &["start", name]);
    assert!(out.contains("started profile"), "{out}");
}

/// Our `openclaw --profile <name> args...`.
pub(crate) fn ours(home: &TestHome, name: &str, args: &[&str]) -> Output {
    home.command(bins::openclaw())
        .args(["--profile", name])
        .args(args)
        .output()
        .expect("run openclaw")
}

pub(crate) fn gateway_env(home: &TestHome, name: &str, port: u16) -> [(String, String); 2] {
    [
        (
            "OPENCLAW_GATEWAY_URL".into(),
            format!("ws://127.0.0.1:{port}"),
        ),
        ("OPENCLAW_GATEWAY_TOKEN".into(), token_of(home, name)),
    ]
}

pub(crate) fn real(home: &TestHome, env: &[(String, String)], args: &[&str]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    real_cli_env(home, &env, args)
}

#[test]
fn real_cli_agent_and_our_cli_chat_through_a_supervised_gateway() {
    let home = TestHome::new();
    let fake = FakeProvider::start();
    let slot = ports::claim();
    start_with_fake(&home, "a", slot.base(), &fake);
    let env = gateway_env(&home, "a", slot.base());

    // The real `openclaw agent`, plain and --json.
    let out = real(
        &home,
        &env,
        &[
            "agent",
            "--message",
            "hi from the real cli",
            "--agent",
            "main",
        ],
    );
    assert_eq!(ok_out(&out).trim(), format!("{REPLY}hi from the real cli"));
    let out = real(
        &home,
        &env,
        &["agent", "-m", "json please", "--agent", "main", "--json"],
    );
    let v: Value = serde_json::from_str(&ok_out(&out)).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(
        v["result"]["payloads"][0]["text"],
        format!("{REPLY}json please")
    );
    assert_eq!(v["result"]["meta"]["agentMeta"]["provider"], "fakeai");

    // A provider error: exit 1 with the gateway's message.
    let out = real(&home, &env, &["agent", "-m", "boom400", "--agent", "main"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        format!("{}{}", stdout(&out), stderr(&out))
            .contains("provider rejected the request schema"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // The same idempotency key twice: one provider request, the same answer.
    let before = fake.completions().len();
    let params = r#"{"message":"only once","agentId":"main","idempotencyKey":"e2e-dedupe-1"}"#;
    let call = || -> Value {
        let args = [
            "gateway",
            "call",
            "agent",
            "--params",
            params,
            "--expect-final",
            "--json",
        ];
        serde_json::from_str(&ok_out(&real(&home, &env, &args))).unwrap()
    };
    let (first, second) = (call(), call());
    assert_eq!(
        first["result"]["payloads"][0]["text"],
        format!("{REPLY}only once")
    );
    assert_eq!(first, second);
    assert_eq!(
        fake.completions().len(),
        before + 1,
        "the replay ran nothing"
    );

    // Our CLI: agent (plain, --json), sessions list/show/reset.
    let out = ours(&home, "a", &["agent", "--message", "from our cli"]);
    assert_eq!(ok_out(&out).trim(), format!("{REPLY}from our cli"));
    let out = ours(
        &home,
        "a",
        &[
            "agent",
            "-m",
            "ours as json",
            "--session-key",
            "side",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&ok_out(&out)).unwrap();
    assert_eq!(
        v["result"]["payloads"][0]["text"],
        format!("{REPLY}ours as json")
    );
    let out = ours(&home, "a", &["agent", "-m", "boom400"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("provider rejected"),
        "{}",
        stderr(&out)
    );

    let list = ok_out(&ours(&home, "a", &["sessions"]));
    assert!(
        list.contains("agent:main:main") && list.contains("agent:main:side"),
        "{list}"
    );
    assert!(list.contains("fake-model"), "{list}");
    let v: Value =
        serde_json::from_str(&ok_out(&ours(&home, "a", &["sessions", "list", "--json"]))).unwrap();
    let main_row = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "agent:main:main")
        .unwrap()
        .clone();
    assert!(main_row["totalTokens"].as_u64().unwrap() > 0, "{main_row}");
    let shown = ok_out(&ours(&home, "a", &["sessions", "show", "main"]));
    assert!(shown.contains("you: hi from the real cli"), "{shown}");
    assert!(
        shown.contains(&format!("agent: {REPLY}from our cli")),
        "{shown}"
    );

    // History survives `openclawctl restart`.
    ok(&home, &["restart", "a"]);
    let shown = ok_out(&ours(&home, "a", &["sessions", "show", "main", "--json"]));
    let v: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        v["totalMessages"], 12,
        "6 turns of the main session: {shown}"
    );
    let out = ok_out(&ours(&home, "a", &["sessions", "reset", "main"]));
    assert!(out.starts_with("reset agent:main:main"), "{out}");
    let v: Value = serde_json::from_str(&ok_out(&ours(
        &home,
        "a",
        &["sessions", "show", "main", "--json"],
    )))
    .unwrap();
    assert_eq!(v["totalMessages"], 0);

    // The provider key never reaches a log or a --json answer.
    let log =
        std::fs::read_to_string(home.state_dir("a").join("logs/gateway.log")).unwrap_or_default();
    assert!(!log.contains("sk-fake-local"));
    let cfg = ok_out(&ours(
        &home,
        "a",
        &["gateway", "call", "config.get", "--json"],
    ));
    assert!(!cfg.contains("sk-fake-local"));
    ok(&home, &["stop", "a"]);
}

#[test]
fn kill_9_during_a_streamed_reply_leaves_a_transcript_that_loads() {
    let home = TestHome::new();
    let fake = FakeProvider::start();
    let slot = ports::claim();
    start_with_fake(&home, "k", slot.base(), &fake);
    ok_out(&ours(&home, "k", &["agent", "-m", "first turn"]));
    let params = r#"{"sessionKey":"main","message":"slow please","idempotencyKey":"k-slow"}"#;
    let ack = ok_out(&ours(
        &home,
        "k",
        &["gateway", "call", "chat.send", "--params", params, "--json"],
    ));
    assert!(ack.contains("started"), "{ack}");
    wait_until(Duration::from_secs(10), "the slow stream started", || {
        fake.completions().len() == 2
    });
    let pid = crate::supervision::wait_gateway_pid(&home, "k");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    // The keeper brings it back; the transcript loads, the user's message
    // is there, and the session takes new turns.
    wait_until(Duration::from_secs(20), "a new gateway answers", || {
        crate::supervision::wait_gateway_pid(&home, "k") != pid
            && ours(&home, "k", &["gateway", "call", "health"])
                .status
                .success()
    });
    let v: Value = serde_json::from_str(&ok_out(&ours(
        &home,
        "k",
        &["sessions", "show", "main", "--json"],
    )))
    .unwrap();
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{v}");
    assert_eq!(msgs[2]["content"], "slow please");
    assert_eq!(
        ok_out(&ours(&home, "k", &["agent", "-m", "after"])).trim(),
        format!("{REPLY}after")
    );
    ok(&home, &["stop", "k"]);
}

/// A tmux server of its own (socket under the test home), killed on drop.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn start(home: &Path, command: &str) -> Self {
        let t = Self {
            socket: home.join("tmux.sock"),
        };
        let status = t
            .cmd()
            .args(["new-session", "-d", "-x", "120", "-y", "40", command])
            .status()
            .expect("run tmux (scripts/install-test-tools installs it)");
        assert!(status.success());
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    fn keys(&self, keys: &[&str]) {
        assert!(
            self.cmd()
                .arg("send-keys")
                .args(keys)
                .status()
                .unwrap()
                .success()
        );
    }

    fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text`; returns the screen.
    fn wait_for(&self, text: &str) -> String {
        let mut last = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            last = self.screen();
            if last.contains(text) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the TUI never showed {text:?}; screen:\n{last}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[test]
fn the_real_tui_streams_aborts_shows_errors_and_opens_a_new_session() {
    assert_offline();
    let home = TestHome::new();
    let fake = FakeProvider::start();
    let slot = ports::claim();
    start_with_fake(&home, "t", slot.base(), &fake);
    let cli_home = home.path().join("cli");
    std::fs::create_dir_all(cli_home.join("state")).unwrap();
    let command = format!(
        "env HOME={h} OPENCLAW_STATE_DIR={h}/state {cli} tui --url ws://127.0.0.1:{port} --token {token}",
        h = cli_home.display(),
        cli = bins::real_openclaw_cli().display(),
        port = slot.base(),
        token = token_of(&home, "t"),
    );
    let tui = Tmux::start(home.path(), &command);
    tui.wait_for("connected | idle");

    tui.keys(&["hello from tmux", "Enter"]);
    tui.wait_for(&format!("{REPLY}hello from tmux"));
    tui.wait_for("connected | idle");

    // A slow reply streams; Esc aborts it and keeps the partial text.
    tui.keys(&["please be slow", "Enter"]);
    tui.wait_for("tick1");
    tui.keys(&["Escape"]);
    let screen = tui.wait_for("run aborted");
    assert!(screen.contains("tick0"), "{screen}");
    wait_until(
        Duration::from_secs(5),
        "the provider stream was closed",
        || fake.disconnects() >= 1,
    );

    tui.keys(&["boom400", "Enter"]);
    tui.wait_for(
        "run error: LLM request failed: provider rejected the request schema or tool payload.",
    );

    tui.keys(&["/new", "Enter"]);
    let screen = tui.wait_for("new session: agent:main:tui-");
    assert!(screen.contains("tokens 0/32k"), "{screen}");
    tui.keys(&["in the new session", "Enter"]);
    tui.wait_for(&format!("{REPLY}in the new session"));
    drop(tui);

    // Both sessions are on disk.
    let v: Value =
        serde_json::from_str(&ok_out(&ours(&home, "t", &["sessions", "--json"]))).unwrap();
    let keys: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"agent:main:main"), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with("agent:main:tui-")),
        "{keys:?}"
    );
    ok(&home, &["stop", "t"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_chat_page_streams_a_reply_aborts_and_lists_sessions_in_chromium() {
    use openclaw_e2e::chromium::Chromium;
    let home = TestHome::new();
    let fake = FakeProvider::start();
    let slot = ports::claim();
    start_with_fake(&home, "w", slot.base(), &fake);
    let base = format!("http://127.0.0.1:{}", slot.base());
    let browser = Chromium::launch();
    let mut page = browser.page().await;

    // Without the token the page asks for it and can do nothing.
    page.goto(&format!("{base}/")).await;
    page.wait_for("document.body.dataset.state === 'login'", "the token form")
        .await;

    // With it: a device identity signs the handshake (silent loopback pairing).
    // The link `openclaw dashboard` prints (the token rides in the fragment).
    let link = ok_out(&ours(&home, "w", &["dashboard", "--no-open"]));
    assert_eq!(
        link.trim(),
        format!("{base}/#token={}", token_of(&home, "w"))
    );
    let details = ok_out(&ours(&home, "w", &["dashboard", "--json"]));
    assert!(!details.contains(&token_of(&home, "w")), "{details}");
    page.goto(link.trim()).await;
    page.wait_for(
        "document.body.dataset.state === 'idle'",
        "a connected, idle page",
    )
    .await;
    assert_eq!(
        page.eval("location.hash").await,
        "",
        "the token leaves the address bar"
    );

    page.eval("document.getElementById('input').focus()").await;
    page.type_text("hello from chromium").await;
    page.press_enter().await;
    let reply = page
        .wait_for(
            "[...document.querySelectorAll('#log li.assistant')].map(li => li.textContent).find(t => t.includes('You said'))",
            "the streamed reply",
        )
        .await;
    assert_eq!(reply, format!("{REPLY}hello from chromium"));
    page.wait_for(
        "document.body.dataset.state === 'idle'",
        "idle after the reply",
    )
    .await;

    // A slow reply streams into the page; Abort stops it.
    page.eval("document.getElementById('input').focus()").await;
    page.type_text("slow one").await;
    page.press_enter().await;
    page.wait_for(
        "document.querySelector('#log li.streaming')?.textContent.includes('tick1')",
        "streaming ticks",
    )
    .await;
    page.eval("document.getElementById('abort').click()").await;
    page.wait_for("[...document.querySelectorAll('#log li.system')].some(li => li.textContent === 'run aborted')", "run aborted").await;
    let kept = page
        .eval("[...document.querySelectorAll('#log li.assistant')].pop().textContent")
        .await;
    assert!(kept.as_str().unwrap().starts_with("tick0"), "{kept}");

    let shot = home.path().join("webchat.png");
    page.screenshot(&shot).await;
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a real screenshot"
    );
    if let Some(dir) = std::env::var_os("OPENCLAW_TEST_ARTIFACTS") {
        let _ = std::fs::copy(&shot, Path::new(&dir).join("webchat.png"));
    }

    // The session list, and a new session.
    page.wait_for(
        "document.querySelector('#sessions li.current')?.textContent.startsWith('agent:main:main')",
        "the main session listed",
    )
    .await;
    page.eval("document.getElementById('new').click()").await;
    page.wait_for(
        "document.getElementById('session').textContent.startsWith('agent:main:webchat-')",
        "a new session",
    )
    .await;
    page.wait_for(
        "document.querySelectorAll('#sessions li').length >= 2",
        "both sessions listed",
    )
    .await;
    // The page holds no secret: it is served with a strict policy.
    let (head, body) = http_get(slot.base(), "/").await;
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(!body.contains(&token_of(&home, "w")));
    drop(page);
    drop(browser);
    ok(&home, &["stop", "w"]);
}

async fn http_get(port: u16, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).await.unwrap();
    let (h, b) = all.split_once("\r\n\r\n").unwrap();
    (h.to_lowercase(), b.to_string())
}
