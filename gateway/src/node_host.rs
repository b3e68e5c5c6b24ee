//! `openclaw node run`: a headless node (spec `nodes-canvas.md` §8). It
//! connects to a gateway with role `node`, signing with a device identity
//! of its own (`<stateDir>/node/device.json`, 0600, made on first run), and
//! answers `system.which` and `system.run`. `system.run` is refused unless
//! the program is on this node's allowlist (`--allow-run <program>`,
//! repeatable; `*` allows any): an operator who can invoke commands must
//! not get a shell on this host by default. Other commands answer
//! `UNAVAILABLE "command not supported"`, as the real host does.
//!
//! Lost connections are retried with backoff (0.5 s doubling to 30 s, with
//! jitter), also while the device waits for an operator's approval; a
//! refused shared secret ends the host (exit 1); SIGTERM or SIGINT close
//! the socket and end it (exit 0).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::Signer;
use futures_util::{SinkExt, StreamExt};
use openclaw_profiles::config::Secret;
use rand::RngExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::identity::{SignedFields, device_id_of, encode_b64, payload_v3};

/// What `openclaw node run` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ws://host:port`.
    pub url: String,
    /// Shared token.
    pub token: Option<Secret>,
    /// Shared password.
    pub password: Option<Secret>,
    /// Where the identity lives.
    pub state_dir: PathBuf,
    /// `client.displayName`.
    pub display_name: String,
    /// Programs `system.run` may start (`*`: any).
    pub allow_run: Vec<String>,
}

/// Why the host stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM/SIGINT.
    Signal,
    /// The gateway refused our credentials.
    AuthRefused(String),
}

/// Commands this host declares.
pub const COMMANDS: &[&str] = &["system.run", "system.which"];
/// The most output kept per stream of a `system.run`.
const MAX_OUTPUT: usize = 1024 * 1024;
/// Host stats go to the gateway this often.
const STATS_EVERY: Duration = Duration::from_secs(60);

/// The node's device identity.
pub struct Identity {
    key: ed25519_dalek::SigningKey,
    /// Device id (hex SHA-256 of the public key).
    pub device_id: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads `<stateDir>/node/device.json`, making it (0600, written
    /// atomically) on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, String> {
        let path = state_dir.join("node").join("device.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is damaged ({e}); move it aside to make a new identity",
                    path.display()
                )
            })?;
            let seed = v["privateKey"]
                .as_str()
                .and_then(crate::identity::decode_b64)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    format!(
                        "{} has no usable privateKey; move it aside to make a new identity",
                        path.display()
                    )
                })?;
            return Ok(Self::from_seed(seed));
        }
        let seed: [u8; 32] = rand::rng().random();
        let id = Self::from_seed(seed);
        let doc = json!({
            "version": 1,
            "deviceId": id.device_id,
            "publicKey": encode_b64(id.key.verifying_key().as_bytes()),
            "privateKey": encode_b64(&seed),
            "createdAtMs": crate::protocol::now_ms(),
        });
        openclaw_profiles::atomic::create_private_dir(path.parent().expect("has a parent"))
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        openclaw_profiles::atomic::write_atomic(&path, doc.to_string().as_bytes(), 0o600)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(id)
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let device_id = device_id_of(key.verifying_key().as_bytes());
        Self { key, device_id }
    }

    /// Connect params for this challenge, signed (v3).
    fn connect_params(&self, opts: &Options, nonce: &str, ts: u64, instance: &str) -> Value {
        let token = opts
            .token
            .as_ref()
            .or(opts.password.as_ref())
            .map(Secret::expose)
            .unwrap_or("");
        let fields = SignedFields {
            client_id: "node-host",
            client_mode: "node",
            role: "node",
            scopes: &[],
            token,
            platform: Some(std::env::consts::OS),
            device_family: Some(family()),
        };
        let payload = payload_v3(&self.device_id, ts, nonce, &fields);
        let mut auth = json!({});
        if let Some(t) = &opts.token {
            auth["token"] = t.expose().into();
        }
        if let Some(p) = &opts.password {
            auth["password"] = p.expose().into();
        }
        json!({
            "minProtocol": 4, "maxProtocol": 4,
            "client": {
                "id": "node-host", "displayName": opts.display_name, "version": crate::VERSION,
                "platform": std::env::consts::OS, "deviceFamily": family(), "mode": "node",
                "instanceId": instance,
            },
            "caps": ["system"],
            "commands": COMMANDS,
            "pathEnv": std::env::var("PATH").unwrap_or_default(),
            "auth": auth,
            "role": "node", "scopes": [],
            "device": {
                "id": self.device_id,
                "publicKey": encode_b64(self.key.verifying_key().as_bytes()),
                "signature": encode_b64(&self.key.sign(payload.as_bytes()).to_bytes()),
                "signedAt": ts, "nonce": nonce,
            },
        })
    }
}

fn family() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Mac",
        "windows" => "Windows",
        _ => "Unknown",
    }
}

/// Runs the host until a signal or a refused credential.
pub async fn run(opts: Options, stop: tokio_util::sync::CancellationToken) -> Result<Stop, String> {
    let id = Identity::load_or_create(&opts.state_dir)?;
    let instance = crate::protocol::uuid_v4();
    eprintln!("node host: device {} → {}", id.device_id, opts.url);
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = tokio::select! {
            r = session(&opts, &id, &instance, &stop) => r,
            () = stop.cancelled() => return Ok(Stop::Signal),
        };
        match outcome {
            Session::Stopped => return Ok(Stop::Signal),
            Session::AuthRefused(m) => return Ok(Stop::AuthRefused(m)),
            Session::Lost { connected, why } => {
                if connected {
                    backoff = Duration::from_millis(500);
                }
                let wait = backoff.mul_f64(rand::random_range(0.8..1.2));
                eprintln!(
                    "node host: {why}; reconnecting in {:.1}s",
                    wait.as_secs_f64()
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return Ok(Stop::Signal),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

enum Session {
    Stopped,
    AuthRefused(String),
    Lost { connected: bool, why: String },
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Result<Value, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .map_err(|e| format!("bad frame from the gateway: {e}"));
            }
            Some(Ok(Message::Close(c))) => {
                return Err(match c {
                    Some(c) => format!(
                        "the gateway closed the connection ({} {})",
                        u16::from(c.code),
                        c.reason
                    ),
                    None => "the gateway closed the connection".into(),
                });
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("connection lost: {e}")),
            None => return Err("connection lost".into()),
        }
    }
}

/// One connection: handshake, then answer invokes until it ends.
async fn session(
    opts: &Options,
    id: &Identity,
    instance: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> Session {
    let lost = |why: String| Session::Lost {
        connected: false,
        why,
    };
    let (mut ws, _) = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(opts.url.as_str()),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return lost(format!("cannot reach {}: {e}", opts.url)),
        Err(_) => return lost(format!("timed out connecting to {}", opts.url)),
    };
    let challenge = match next_json(&mut ws).await {
        Ok(c) if c["event"] == "connect.challenge" => c,
        Ok(_) => return lost("the gateway did not send connect.challenge".into()),
        Err(e) => return lost(e),
    };
    let nonce = challenge["payload"]["nonce"].as_str().unwrap_or("");
    let ts = challenge["payload"]["ts"].as_u64().unwrap_or(0);
    let req = json!({"type": "req", "id": "1", "method": "connect",
        "params": id.connect_params(opts, nonce, ts, instance)});
    if ws
        .send(Message::Text(req.to_string().into()))
        .await
        .is_err()
    {
        return lost("connection lost during the handshake".into());
    }
    let res = match next_json(&mut ws).await {
        Ok(r) => r,
        Err(e) => return lost(e),
    };
    if res["ok"] != true {
        let msg = res["error"]["message"]
            .as_str()
            .unwrap_or("connect refused")
            .to_string();
        let code = res["error"]["details"]["code"].as_str().unwrap_or("");
        if code == "PAIRING_REQUIRED" {
            let rid = res["error"]["details"]["requestId"].as_str().unwrap_or("?");
            return lost(format!(
                "waiting for operator approval: `openclaw devices approve {rid}` on the gateway"
            ));
        }
        if code.starts_with("AUTH_") && code != "AUTH_RATE_LIMITED" {
            return Session::AuthRefused(msg);
        }
        return lost(msg);
    }
    eprintln!("node host: connected as {}", id.device_id);
    serve(ws, opts, id, stop).await
}

/// The connected loop: invokes run as tasks; their results, and host
/// stats, go out through one channel.
async fn serve(
    mut ws: Ws,
    opts: &Options,
    id: &Identity,
    stop: &tokio_util::sync::CancellationToken,
) -> Session {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(64);
    let mut running: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    let mut stats = tokio::time::interval(STATS_EVERY);
    let mut next = 2u64;
    let lost = |why: String| Session::Lost {
        connected: true,
        why,
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = ws.close(None).await;
                return Session::Stopped;
            }
            _ = stats.tick() => {
                let frame = json!({"type": "req", "id": format!("{next}"), "method": "node.event",
                    "params": {"event": "node.host.stats", "payloadJSON": host_stats().to_string()}});
                next += 1;
                if ws.send(Message::Text(frame.to_string().into())).await.is_err() {
                    return lost("connection lost".into());
                }
            }
            Some(result) = rx.recv() => {
                if let Some(iid) = result["id"].as_str() {
                    running.remove(iid);
                }
                let frame = json!({"type": "req", "id": format!("{next}"), "method": "node.invoke.result", "params": result});
                next += 1;
                if ws.send(Message::Text(frame.to_string().into())).await.is_err() {
                    return lost("connection lost".into());
                }
            }
            f = next_json(&mut ws) => {
                let f = match f {
                    Ok(f) => f,
                    Err(e) => return lost(e),
                };
                match f["event"].as_str() {
                    Some("node.invoke.request") => {
                        let p = f["payload"].clone();
                        let iid = p["id"].as_str().unwrap_or("").to_string();
                        let (tx, allow, node) = (tx.clone(), opts.allow_run.clone(), id.device_id.clone());
                        let task = tokio::spawn(async move {
                            let out = answer(&p, &allow).await;
                            let mut r = json!({"id": p["id"], "nodeId": node});
                            match out {
                                Ok(payload) => {
                                    r["ok"] = true.into();
                                    r["payloadJSON"] = payload.to_string().into();
                                }
                                Err((code, message)) => {
                                    r["ok"] = false.into();
                                    r["error"] = json!({"code": code, "message": message});
                                }
                            }
                            let _ = tx.send(r).await;
                        });
                        running.insert(iid, task.abort_handle());
                    }
                    Some("node.invoke.cancel") => {
                        // Aborting the task drops its child, which kills it.
                        if let Some(h) = f["payload"]["invokeId"].as_str().and_then(|i| running.remove(i)) {
                            h.abort();
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// One invoke's answer: its payload, or `(code, message)`.
async fn answer(p: &Value, allow: &[String]) -> Result<Value, (String, String)> {
    let params: Value = p["paramsJSON"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(json!({}));
    match p["command"].as_str().unwrap_or("") {
        "system.which" => {
            let mut found = serde_json::Map::new();
            for b in params["bins"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Some(path) = which(b) {
                    found.insert(b.to_string(), path.to_string_lossy().into_owned().into());
                }
            }
            Ok(json!({"bins": found}))
        }
        "system.run" => {
            let budget = params["timeoutMs"]
                .as_u64()
                .or(p["timeoutMs"].as_u64())
                .unwrap_or(30_000);
            system_run(&params, allow, Duration::from_millis(budget)).await
        }
        _ => Err(("UNAVAILABLE".into(), "command not supported".into())),
    }
}

/// `name` on `PATH` (a name with a slash is checked as given).
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return runnable(&p).then_some(p);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| runnable(p))
}

async fn system_run(
    params: &Value,
    allow: &[String],
    budget: Duration,
) -> Result<Value, (String, String)> {
    let argv: Vec<String> = params["command"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let Some(program) = argv.first() else {
        return Err((
            "INVALID_REQUEST".into(),
            "system.run needs command: [program, args...]".into(),
        ));
    };
    let base = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !allow.iter().any(|a| a == "*" || a == program || *a == base) {
        return Err((
            "UNAVAILABLE".into(),
            format!(
                "system.run denied: `{base}` is not on this node's allowlist (start the node with --allow-run {base})"
            ),
        ));
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = params["cwd"].as_str() {
        cmd.current_dir(cwd);
    }
    if let Some(env) = params["env"].as_object() {
        for (k, v) in env {
            if let Some(v) = v.as_str() {
                cmd.env(k, v);
            }
        }
    }
    let child = cmd.spawn().map_err(|e| {
        (
            "UNAVAILABLE".to_string(),
            format!("cannot run {program}: {e}"),
        )
    })?;
    let out = tokio::time::timeout(budget, child.wait_with_output()).await;
    let clip = |b: Vec<u8>| {
        let mut s = String::from_utf8_lossy(&b).into_owned();
        if s.len() > MAX_OUTPUT {
            let mut cut = MAX_OUTPUT;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
        s
    };
    Ok(match out {
        Ok(Ok(o)) => json!({
            "exitCode": o.status.code(), "timedOut": false, "success": o.status.success(),
            "stdout": clip(o.stdout), "stderr": clip(o.stderr), "error": null,
        }),
        Ok(Err(e)) => json!({"exitCode": null, "timedOut": false, "success": false,
            "stdout": "", "stderr": "", "error": e.to_string()}),
        // The timed-out child was dropped, which kills it.
        Err(_) => json!({"exitCode": null, "timedOut": true, "success": false,
            "stdout": "", "stderr": "", "error": "timed out"}),
    })
}

/// `node.host.stats`: CPUs, load, memory and disk of this host.
fn host_stats() -> Value {
    let load: Vec<f64> = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    let mut v = json!({
        "cpuCount": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "loadAverage": load,
        "memoryTotalBytes": kb("MemTotal:"),
        "memoryFreeBytes": kb("MemAvailable:"),
    });
    if let Ok(fs) = nix::sys::statvfs::statvfs("/") {
        let frag = fs.fragment_size();
        v["diskTotalBytes"] = (fs.blocks() * frag).into();
        v["diskAvailableBytes"] = (fs.blocks_available() * frag).into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.device_id, b.device_id);
        let mode = std::fs::metadata(dir.path().join("node/device.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{a:?}").contains("privateKey"));
    }

    #[tokio::test]
    async fn system_run_is_denied_unless_allowed_and_times_out() {
        let denied = system_run(
            &json!({"command": ["echo", "hi"]}),
            &[],
            Duration::from_secs(5),
        )
        .await;
        assert!(denied.unwrap_err().1.contains("--allow-run echo"));
        let ok = system_run(
            &json!({"command": ["echo", "hi"]}),
            &["echo".into()],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(
            (ok["stdout"].as_str(), ok["exitCode"].as_i64()),
            (Some("hi\n"), Some(0))
        );
        let slow = system_run(
            &json!({"command": ["sleep", "5"]}),
            &["*".into()],
            Duration::from_millis(100),
        )
        .await
        .unwrap();
        assert_eq!(slow["timedOut"], true);
        assert!(which("sh").is_some() && which("no-such-binary-xyz").is_none());
    }
}
