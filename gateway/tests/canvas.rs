//! The canvas documents route over real HTTP (`nodes-canvas.md` §9.1,
//! §9.3): every path, auth, MIME, cache and sandbox rule, and capability
//! URLs that slide, refresh and die with their socket.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::json;

use crate::control::{Device, connect_as};
use crate::support::*;

/// One request; `(status, lower-cased head, body)`.
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: canvas.test\r\nConnection: close\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_string())
}

const DOC: &str = "cv_0123456789abcdef0123456789abcdef";
/// Its inline script marks the page, then tries the network.
const HTML: &str = "<!doctype html><html><body><p id=x>hi</p><script>const x=document.getElementById('x');x.textContent='ran';fetch('/healthz').then(()=>{x.dataset.fetch='allowed'},()=>{x.dataset.fetch='blocked'});</script></body></html>";
/// The same page in a document without `cspSandbox` (the control case).
const PLAIN_DOC: &str = "cv_plain";

/// A document with an HTML entry, a stylesheet in a subdirectory, a file
/// of unknown type, a symlink out and a symlinked subdirectory.
fn seed(state: &std::path::Path) {
    let doc = state.join("canvas/documents").join(DOC);
    std::fs::create_dir_all(doc.join("css")).unwrap();
    std::fs::write(doc.join("index.html"), HTML).unwrap();
    std::fs::write(doc.join("css/site.css"), "p{color:red}").unwrap();
    std::fs::write(doc.join("blob.bin"), [0u8, 1, 2]).unwrap();
    std::fs::write(
        doc.join("manifest.json"),
        json!({"id": DOC, "localEntrypoint": "index.html", "cspSandbox": "scripts"}).to_string(),
    )
    .unwrap();
    let plain = state.join("canvas/documents").join(PLAIN_DOC);
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("index.html"), HTML).unwrap();
    std::fs::write(state.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(state.join("secret.txt"), doc.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(state, doc.join("up")).unwrap();
}

/// A token gateway whose state holds the documents of [`seed`].
async fn seeded() -> TestGateway {
    TestGateway::start_full(
        openclaw_gateway::settings::Auth::Token(openclaw_profiles::config::Secret::new(TOKEN)),
        Default::default(),
        seed,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_served_by_the_real_gateways_rules() {
    let gw = seeded().await;
    let addr = gw.addr;
    tokio::task::spawn_blocking(move || {
        let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
        let base = format!("/__openclaw__/canvas/documents/{DOC}");
        // Served byte for byte, no-store, the sandbox CSP from the manifest.
        let (status, head, body) = http(addr, "GET", &format!("{base}/index.html"), &bearer);
        assert_eq!((status, body.as_str()), (200, HTML));
        for want in [
            "content-type: text/html; charset=utf-8",
            "cache-control: no-store",
            "x-content-type-options: nosniff",
            "content-security-policy: default-src 'none';",
            "sandbox allow-scripts",
        ] {
            assert!(head.contains(want), "{want} in {head}");
        }
        let (status, head, body) = http(addr, "GET", &format!("{base}/css/site.css"), &bearer);
        assert_eq!((status, body.as_str()), (200, "p{color:red}"));
        assert!(head.contains("content-type: text/css\r\n"), "{head}");
        assert!(!head.contains("content-security-policy"), "{head}");
        let (_, head, _) = http(addr, "GET", &format!("{base}/blob.bin"), &bearer);
        assert!(
            head.contains("content-type: application/octet-stream"),
            "{head}"
        );
        // HEAD: the headers and length, no body.
        let (status, head, body) = http(addr, "HEAD", &format!("{base}/index.html"), &bearer);
        assert_eq!((status, body.as_str()), (200, ""));
        assert!(
            head.contains(&format!("content-length: {}", HTML.len())),
            "{head}"
        );

        // Auth even on loopback: none, or a wrong Bearer, is 401 JSON.
        for extra in ["", "Authorization: Bearer wrong\r\n"] {
            let (status, head, body) = http(addr, "GET", &format!("{base}/index.html"), extra);
            assert_eq!(status, 401, "{extra}");
            assert!(head.contains("content-type: application/json"));
            assert_eq!(
                body,
                r#"{"error":{"message":"Unauthorized","type":"unauthorized"}}"#
            );
        }
        // Other methods: 405.
        let (status, _, body) = http(addr, "POST", &format!("{base}/index.html"), &bearer);
        assert_eq!((status, body.as_str()), (405, "Method Not Allowed"));
        // Missing files, symlinks (to a file or through a directory): 404.
        for path in ["missing.html", "leak.txt", "up/secret.txt"] {
            let (status, head, body) = http(addr, "GET", &format!("{base}/{path}"), &bearer);
            assert_eq!((status, body.as_str()), (404, "not found"), "{path}");
            assert!(head.contains("text/plain; charset=utf-8"));
        }
        // Not a document path (a bare id, traversal, bad ids): the page at
        // `/`, never a file.
        for path in [
            format!("/__openclaw__/canvas/documents/{DOC}"),
            "/__openclaw__/canvas/".to_string(),
            "/__openclaw__/canvas/index.html".to_string(),
            format!("{base}/%2e%2e/%2e%2e/secret.txt"),
            format!("{base}/..%2f..%2fsecret.txt"),
            "/__openclaw__/canvas/documents/../secret.txt/x".to_string(),
            "/__openclaw__/canvas/documents/a:b/index.html".to_string(),
        ] {
            let (status, head, body) = http(addr, "GET", &path, &bearer);
            assert_eq!(status, 200, "{path}");
            assert!(head.contains("text/html"), "{path}: {head}");
            assert!(!body.contains("top secret"), "{path}");
        }
    })
    .await
    .unwrap();
}

fn cap_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_urls_work_without_headers_refresh_and_die_with_their_socket() {
    let gw = seeded().await;
    let addr = gw.addr;
    // Every operator socket gets one, named after the Host it connected to.
    let (ws, hello) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    let url = hello["payload"]["pluginSurfaceUrls"]["canvas"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with(&format!("http://{}/__openclaw__/cap/", gw.addr)),
        "{url}"
    );
    let cap = cap_of(&url);
    assert_eq!(cap.len(), 24);
    let path = format!("/__openclaw__/canvas/documents/{DOC}/index.html");
    let c = cap.clone();
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        let (status, _, body) = http(addr, "GET", &format!("/__openclaw__/cap/{c}{p}"), "");
        assert_eq!((status, body.as_str()), (200, HTML));
        let (status, _, _) = http(addr, "GET", &format!("{p}?oc_cap={c}"), "");
        assert_eq!(status, 200);
        // A wrong cap, or a cap with no path, is 401.
        let (status, _, _) = http(
            addr,
            "GET",
            &format!("/__openclaw__/cap/AAAAAAAAAAAAAAAAAAAAAAAA{p}"),
            "",
        );
        assert_eq!(status, 401);
        let (status, _, _) = http(addr, "GET", &format!("/__openclaw__/cap/{c}"), "");
        assert_eq!(status, 401);
    })
    .await
    .unwrap();
    // The socket closes: its cap dies.
    drop(ws);
    let (c, p) = (cap.clone(), path.clone());
    tokio::task::spawn_blocking(move || {
        let url = format!("/__openclaw__/cap/{c}{p}");
        openclaw_e2e::wait_until(
            Duration::from_secs(5),
            "the cap dies with its socket",
            || http(addr, "GET", &url, "").0 == 401,
        );
    })
    .await
    .unwrap();

    // Nodes: only with an approved `canvas` capability; refresh kills the
    // old URL, and operators may not call it.
    let (mut op, _) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    let r = call(
        &mut op,
        "2",
        "node.pluginSurface.refresh",
        json!({"surface": "canvas"}),
    )
    .await;
    assert_eq!(r["error"]["message"], "unauthorized role: operator");
    let dev = Device::new(41);
    let (mut nd, challenge) = gw.open().await;
    let mut params = dev.node_params(&challenge, &["canvas.present"]);
    params["caps"] = json!(["canvas"]);
    send(&mut nd, &connect_frame("1", params)).await;
    let hello = recv(&mut nd).await;
    assert!(
        hello["payload"].get("pluginSurfaceUrls").is_none(),
        "not approved yet: {hello}"
    );
    let r = call(
        &mut nd,
        "2",
        "node.pluginSurface.refresh",
        json!({"surface": "canvas"}),
    )
    .await;
    assert_eq!(r["error"]["message"], "canvas plugin surface unavailable");
    // An operator approves the surface (caps only: canvas commands are
    // macOS-only); on its next connect the node gets a URL.
    let (mut pairer, _) = connect_as(
        &gw,
        with_scopes(cli_params(Some(TOKEN)), &["operator.pairing"]),
    )
    .await;
    let listed = call(&mut pairer, "2", "node.pair.list", json!({})).await;
    let request = listed["payload"]["pending"][0]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = call(
        &mut pairer,
        "3",
        "node.pair.approve",
        json!({"requestId": request}),
    )
    .await;
    assert_eq!(ok["payload"]["node"]["caps"], json!(["canvas"]), "{ok}");
    drop(nd);
    let (mut nd, challenge) = gw.open().await;
    let mut params = dev.node_params(&challenge, &["canvas.present"]);
    params["caps"] = json!(["canvas"]);
    send(&mut nd, &connect_frame("1", params)).await;
    let hello = recv(&mut nd).await;
    let first = hello["payload"]["pluginSurfaceUrls"]["canvas"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        &mut nd,
        "2",
        "node.pluginSurface.refresh",
        json!({"surface": "canvas", "observedUrl": first}),
    )
    .await;
    let second = r["payload"]["pluginSurfaceUrls"]["canvas"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, first);
    assert!(r["payload"]["expiresAtMs"].as_u64().unwrap() > openclaw_gateway::protocol::now_ms());
    // A stale observed URL while the current one lives: the current one.
    let r = call(
        &mut nd,
        "3",
        "node.pluginSurface.refresh",
        json!({"surface": "canvas", "observedUrl": first}),
    )
    .await;
    assert_eq!(r["payload"]["pluginSurfaceUrls"]["canvas"], second.as_str());
    let (old, new) = (cap_of(&first), cap_of(&second));
    tokio::task::spawn_blocking(move || {
        assert_eq!(
            http(addr, "GET", &format!("/__openclaw__/cap/{old}{path}"), "").0,
            401
        );
        assert_eq!(
            http(addr, "GET", &format!("/__openclaw__/cap/{new}{path}"), "").0,
            200
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_runs_a_sandboxed_documents_inline_script_through_a_capability_url_and_fetch_is_blocked()
 {
    let gw = seeded().await;
    let (_ws, hello) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    let url = hello["payload"]["pluginSurfaceUrls"]["canvas"]
        .as_str()
        .unwrap()
        .to_string();
    let browser = openclaw_e2e::chromium::Chromium::launch();
    let mut page = browser.page().await;
    // No headers: the capability alone opens it; the inline script runs,
    // and the sandbox CSP stops its fetch.
    page.goto(&format!(
        "{url}/__openclaw__/canvas/documents/{DOC}/index.html"
    ))
    .await;
    page.wait_for(
        "document.getElementById('x') && document.getElementById('x').textContent === 'ran'",
        "the inline script ran",
    )
    .await;
    let verdict = page
        .wait_for(
            "document.getElementById('x').dataset.fetch",
            "the fetch settled",
        )
        .await;
    assert_eq!(verdict, "blocked");
    // The control: without `cspSandbox` the same page may fetch.
    page.goto(&format!(
        "{url}/__openclaw__/canvas/documents/{PLAIN_DOC}/index.html"
    ))
    .await;
    page.wait_for(
        "document.getElementById('x') && document.getElementById('x').textContent === 'ran'",
        "the plain page ran",
    )
    .await;
    let verdict = page
        .wait_for(
            "document.getElementById('x').dataset.fetch",
            "the plain fetch settled",
        )
        .await;
    assert_eq!(verdict, "allowed");
}

/// The seed-mode host's address once it listens.
fn canvas_host(gw: &TestGateway) -> std::net::SocketAddr {
    let mut addr = None;
    openclaw_e2e::wait_until(Duration::from_secs(10), "the canvas host listens", || {
        addr = gw.gw.canvas_host_addr.get().copied();
        addr.is_some()
    });
    addr.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_canvas_host_serves_its_root_on_its_own_port() {
    let gw = TestGateway::with_config(json!({"canvasHost": {"enabled": true, "port": 0}})).await;
    let host = canvas_host(&gw);
    assert!(
        host.ip().is_loopback(),
        "bound to the gateway's address: {host}"
    );
    assert_ne!(host.port(), gw.addr.port());
    let root = gw.state_dir().join("canvas");
    std::fs::create_dir_all(root.join("game")).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<html><body><h1>root</h1></body></html>",
    )
    .unwrap();
    std::fs::write(
        root.join("game/index.html"),
        "<html><body>game</body></html>",
    )
    .unwrap();
    std::fs::write(root.join("app.js"), "console.log(1)").unwrap();
    std::fs::write(gw.state_dir().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(gw.state_dir().join("secret.txt"), root.join("leak.txt")).unwrap();
    tokio::task::spawn_blocking(move || {
        let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
        // Directories answer with their index, with the reload script.
        for (path, want) in [
            ("/__openclaw__/canvas/", "<h1>root</h1>"),
            ("/__openclaw__/canvas/game", "game"),
        ] {
            let (status, head, body) = http(host, "GET", path, &bearer);
            assert_eq!(status, 200, "{path}");
            assert!(
                body.contains(want) && body.contains("/__openclaw__/ws"),
                "{path}: {body}"
            );
            assert!(head.contains("cache-control: no-store"));
            let script = body.find("<script>").unwrap();
            assert!(
                script < body.rfind("</body>").unwrap(),
                "before </body>: {body}"
            );
        }
        let (status, head, body) = http(host, "GET", "/__openclaw__/canvas/app.js", &bearer);
        assert_eq!((status, body.as_str()), (200, "console.log(1)"));
        assert!(head.contains("content-type: text/javascript"), "{head}");
        // Traversal and symlinks: 404; other methods: 405; no auth: 401.
        for path in [
            "/__openclaw__/canvas/leak.txt",
            "/__openclaw__/canvas/%2e%2e/secret.txt",
            "/__openclaw__/canvas/nope.html",
        ] {
            let (status, _, body) = http(host, "GET", path, &bearer);
            assert_eq!(status, 404, "{path}");
            assert!(!body.contains("top secret"));
        }
        assert_eq!(http(host, "POST", "/__openclaw__/canvas/", &bearer).0, 405);
        assert_eq!(http(host, "GET", "/__openclaw__/canvas/", "").0, 401);
        // The reload socket's path without an upgrade: 426.
        assert_eq!(http(host, "GET", "/__openclaw__/ws", &bearer).0, 426);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_open_in_chromium_reloads_when_its_file_changes() {
    let gw = TestGateway::with_config(json!({"canvasHost": {"enabled": true, "port": 0}})).await;
    let host = canvas_host(&gw);
    let root = gw.state_dir().join("canvas");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<html><body><p id=v>one</p></body></html>",
    )
    .unwrap();
    let (_ws, hello) = connect_as(&gw, cli_params(Some(TOKEN))).await;
    let url = hello["payload"]["pluginSurfaceUrls"]["canvas"]
        .as_str()
        .unwrap()
        .to_string();
    let cap = cap_of(&url);
    let browser = openclaw_e2e::chromium::Chromium::launch();
    let mut page = browser.page().await;
    page.goto(&format!(
        "http://{host}/__openclaw__/cap/{cap}/__openclaw__/canvas/"
    ))
    .await;
    page.wait_for("document.documentElement.dataset.openclawReload === 'connected' && document.getElementById('v').textContent === 'one'", "the page with its reload socket")
        .await;
    page.eval("window.__kept = 1").await;
    let t = std::time::Instant::now();
    std::fs::write(
        root.join("index.html"),
        "<html><body><p id=v>two</p></body></html>",
    )
    .unwrap();
    page.wait_for(
        "document.getElementById('v') && document.getElementById('v').textContent === 'two'",
        "the reloaded page",
    )
    .await;
    eprintln!(
        "canvas live reload: the page showed the change {} ms after the write",
        t.elapsed().as_millis()
    );
    assert_eq!(
        page.eval("window.__kept === undefined").await,
        true,
        "a real reload, not a patch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bearer_secrets_count_toward_the_auth_lockout() {
    let gw = seeded().await;
    let addr = gw.addr;
    // A remote address (through the trusted local proxy) guesses.
    tokio::task::spawn_blocking(move || {
        let path = format!("/__openclaw__/canvas/documents/{DOC}/index.html");
        for _ in 0..10 {
            let extra = "X-Forwarded-For: 10.7.7.7\r\nAuthorization: Bearer guess\r\n";
            assert_eq!(http(addr, "GET", &path, extra).0, 401);
        }
        // Now even the right secret is refused from there...
        let right = format!("X-Forwarded-For: 10.7.7.7\r\nAuthorization: Bearer {TOKEN}\r\n");
        assert_eq!(http(addr, "GET", &path, &right).0, 401);
        // ...but not from elsewhere.
        let other = format!("X-Forwarded-For: 10.7.7.8\r\nAuthorization: Bearer {TOKEN}\r\n");
        assert_eq!(http(addr, "GET", &path, &other).0, 200);
    })
    .await
    .unwrap();
    // The WebSocket from that address is locked out too.
    let (mut ws, _) = gw.open_forwarded("10.7.7.7").await;
    send(&mut ws, &connect_frame("1", cli_params(Some(TOKEN)))).await;
    let r = recv(&mut ws).await;
    assert_eq!(r["error"]["details"]["code"], "AUTH_RATE_LIMITED", "{r}");
}
