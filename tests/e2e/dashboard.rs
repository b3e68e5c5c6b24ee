//! `openclawctl dashboard` in headless Chromium: 20 running profiles at a
//! glance (screenshot and DOM), a gateway killed with kill -9 shown as a
//! restart by the live stream, stop and start from the page, and the
//! server's refusals (no token, a foreign Host, a foreign Origin). With
//! `OPENCLAW_TEST_ARTIFACTS=DIR` the screenshot is kept there.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openclaw_e2e::chromium::Chromium;
use openclaw_e2e::home::Running;
use openclaw_e2e::{TestHome, bins, ports};
use serde_json::Value;

use crate::skeleton::{ok, status_of};

/// One raw HTTP/1.1 request to the dashboard; the status code and body.
fn http(port: u16, head: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_twenty_tenants_live_and_a_kill_as_a_restart() {
    const N: usize = 20;
    let home = TestHome::new();
    let slot = ports::claim();
    for i in 0..N {
        let mut cmd = home.command(bins::openclawctl());
        cmd.env("OPENCLAWCTL_PORT_BASE", slot.base().to_string());
        let name = format!("t{i:02}");
        let mut args = vec!["profile", "create", &name, "--ports", "compact"];
        if i == 3 {
            args.extend(["--memory-max", "256M", "--cpu-quota", "50%"]);
        }
        let out = cmd.args(&args).output().unwrap();
        assert!(out.status.success(), "{name}");
    }
    ok(&home, &["start", "--all"]);

    let mut cmd = home.command(bins::openclawctl());
    cmd.args(["dashboard", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut dash = Running::spawn(cmd);
    let mut line = String::new();
    BufReader::new(dash.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let port: u16 = url["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let token = url.split("token=").nth(1).unwrap().to_string();

    // Refusals: no token, a wrong one, a foreign Host (DNS rebinding), a
    // foreign Origin for an action.
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let cookie = format!("Cookie: openclawctl_dashboard={token}\r\n");
    let get = |path: &str, extra: &str| http(port, &format!("GET {path} HTTP/1.1\r\n{extra}\r\n"));
    assert_eq!(get("/api/snapshot", &host).0, 401);
    assert_eq!(get("/?token=nope", &host).0, 401);
    assert_eq!(get("/", &format!("{host}{cookie}")).0, 200);
    assert_eq!(
        get(
            "/api/snapshot",
            &format!("Host: attacker.example:{port}\r\n{cookie}")
        )
        .0,
        403
    );
    let (code, _) = http(
        port,
        &format!(
            "POST /api/profiles/t00/stop HTTP/1.1\r\n{host}{cookie}Origin: http://attacker.example\r\n\r\n"
        ),
    );
    assert_eq!(code, 403);
    assert_eq!(status_of(&home, "t00")["state"], "running");
    // The snapshot is the status rows plus history and log lines; no secret.
    let (code, body) = get("/api/snapshot", &format!("{host}{cookie}"));
    assert_eq!(code, 200);
    let snap: Value = serde_json::from_str(&body).unwrap();
    let cfg = openclaw_profiles::config::load_config(&home.state_dir("t00").join("openclaw.json"))
        .unwrap()
        .unwrap();
    assert!(!body.contains(cfg.gateway.auth.token.unwrap().expose()));
    assert!(
        snap["profiles"].as_array().is_some_and(|p| p.len() == N),
        "{snap}"
    );

    let browser = Chromium::launch();
    let mut page = browser.page().await;
    page.goto(&url).await;
    page.wait_for(
        &format!(
            "document.querySelectorAll('.card[data-healthy=\"true\"]').length === {N} && document.getElementById('conn').dataset.state === 'live'"
        ),
        "20 healthy profiles, live",
    )
    .await;
    assert_eq!(
        page.eval("location.search").await,
        "",
        "the token leaves the address bar"
    );
    page.wait_for(
        "document.querySelector('[data-doctor=\"clean\"], .finding[data-check]') !== null",
        "doctor's verdict",
    )
    .await;
    // Sparklines fill as samples arrive; memory is shown against its limit.
    page.wait_for(
        "[...document.querySelectorAll('.card[data-profile=\"t05\"] polyline')].every(p => p.getAttribute('points').split(' ').length >= 3)",
        "three samples in t05's sparklines",
    )
    .await;
    let mem = page
        .eval("document.querySelector('.card[data-profile=\"t03\"] [data-fact=\"memory\"]').textContent")
        .await;
    assert!(mem.as_str().unwrap().ends_with("/ 256.0 MiB"), "{mem}");
    let log = page
        .eval("document.querySelector('.card[data-profile=\"t05\"] .log').textContent")
        .await;
    assert!(log.as_str().unwrap().contains("is healthy"), "{log}");
    let summary = page
        .eval("document.getElementById('summary').textContent")
        .await;
    assert!(
        summary
            .as_str()
            .unwrap()
            .starts_with("20 profiles · 20 running"),
        "{summary}"
    );
    let shot = home.path().join("dashboard.png");
    page.screenshot_full(&shot).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Some(dir) = std::env::var_os("OPENCLAW_TEST_ARTIFACTS") {
        let _ = std::fs::copy(&shot, std::path::Path::new(&dir).join("dashboard.png"));
    }

    // kill -9 of one gateway: the page shows the restart without a reload.
    let victim = status_of(&home, "t07")["pid"].as_u64().unwrap();
    let killed = Instant::now();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    page.wait_for(
        &format!(
            "(c => c && c.dataset.restarts === '1' && c.dataset.pid !== '{victim}' && c.dataset.pid !== '')(document.querySelector('.card[data-profile=\"t07\"]'))"
        ),
        "t07 restarted",
    )
    .await;
    let shown_after = killed.elapsed();
    eprintln!("dashboard: kill -9 shown as a restart after {shown_after:?}");
    assert!(shown_after < Duration::from_secs(10), "{shown_after:?}");

    // Stop and start from the page.
    page.eval("document.querySelector('.card[data-profile=\"t01\"] button[data-action=\"stop\"]').click()")
        .await;
    page.wait_for(
        "document.querySelector('.card[data-profile=\"t01\"]').dataset.state === 'stopped'",
        "t01 stopped",
    )
    .await;
    assert_eq!(status_of(&home, "t01")["state"], "stopped");
    page.eval("document.querySelector('.card[data-profile=\"t01\"] button[data-action=\"start\"]').click()")
        .await;
    page.wait_for(
        "(c => c.dataset.state === 'running' && c.dataset.healthy === 'true')(document.querySelector('.card[data-profile=\"t01\"]'))",
        "t01 running again",
    )
    .await;

    drop(page);
    drop(browser);
    dash.signal(Signal::SIGTERM);
    dash.wait_exit(Duration::from_secs(10));
    ok(&home, &["stop", "--all"]);
    assert!(home.lock_holders().is_empty());
}
