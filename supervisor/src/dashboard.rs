//! `openclawctl dashboard [--port N]`: every profile at a glance in a
//! browser. A small HTTP/1.1 server on 127.0.0.1 only (std `TcpListener`,
//! a thread per connection) serving one page and its script from the
//! binary (no CDN, nothing fetched at runtime), a JSON snapshot, a
//! server-sent-events stream and start/stop/restart actions.
//!
//! One sampler thread builds the snapshot once a second (the same rows as
//! `status`, CPU and memory from one process refresh, a minute of history
//! per profile for the sparklines, the last log lines of profiles whose
//! log grew) and a doctor thread refreshes the findings every
//! [`DOCTOR_EVERY`]; every client gets the same bytes, so the work per tick
//! does not grow with the number of viewers.
//!
//! Access: a token generated at start, given once in the printed URL
//! (`/?token=...`), traded for an `HttpOnly; SameSite=Strict` cookie and
//! compared in constant time; the `Host` header must name the loopback
//! address we listen on (no DNS rebinding), and actions must come from
//! our own origin. Bounded as the gateway is: at most [`MAX_CONNECTIONS`]
//! connections ([`MAX_STREAMS`] of them event streams), a 16 KiB request
//! head read within [`HEAD_TIMEOUT`], no request bodies.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};
use openclaw_profiles::registry::Registry;
use serde_json::{Value, json};

use crate::context::Context;
use crate::status::{Sampler, StatusRow};
use crate::{CmdResult, Failure};

/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Event streams open at once (each holds a connection).
pub const MAX_STREAMS: usize = 32;
/// Time to receive a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head.
const MAX_HEAD: usize = 16 * 1024;
/// Samples kept per profile for its sparklines (one a second).
pub const HISTORY: usize = 60;
/// How often doctor runs.
pub const DOCTOR_EVERY: Duration = Duration::from_secs(10);
/// Log lines shown per profile.
const LOG_LINES: usize = 4;
/// The cookie that carries the token after the first visit.
const COOKIE: &str = "openclawctl_dashboard";

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/app.css");

/// What the sampler publishes.
#[derive(Default)]
struct Published {
    /// Bumped on every new snapshot.
    seq: u64,
    /// The whole state, history included (`/api/snapshot`, a stream's
    /// first event).
    full: Arc<String>,
    /// The latest tick: current values only (a stream's next events).
    tick: Arc<String>,
}

struct Shared {
    token: String,
    port: u16,
    exe: PathBuf,
    published: Mutex<Published>,
    changed: Condvar,
    connections: AtomicUsize,
    streams: AtomicUsize,
}

/// `openclawctl dashboard`: serves until interrupted.
pub fn serve(ctx: &Context, port: u16) -> CmdResult {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        Failure::problem(format!(
            "cannot listen on 127.0.0.1:{port}: {e}; choose another --port (0 picks a free one)"
        ))
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::problem(e.to_string()))?
        .port();
    let shared = Arc::new(Shared {
        token: openclaw_profiles::token::generate_gateway_token(),
        port,
        exe: std::env::current_exe().map_err(|e| Failure::problem(e.to_string()))?,
        published: Mutex::new(Published::default()),
        changed: Condvar::new(),
        connections: AtomicUsize::new(0),
        streams: AtomicUsize::new(0),
    });
    let doctor = Arc::new(Mutex::new(Value::Null));
    {
        let (env, doctor) = (ctx.env.clone(), doctor.clone());
        std::thread::spawn(move || doctor_loop(&env, &doctor));
    }
    {
        let (env, shared, doctor) = (ctx.env.clone(), shared.clone(), doctor.clone());
        std::thread::spawn(move || sampler_loop(&env, &shared, &doctor));
    }
    // The URL holds the token: it goes to the terminal, never to a log.
    openclaw_profiles::outln!(
        "dashboard: http://127.0.0.1:{port}/?token={} (loopback only; Ctrl-C stops it)",
        shared.token
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let mut s = stream;
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = respond(
                &mut s,
                503,
                "text/plain",
                &[],
                b"busy: too many connections\n",
            );
            continue;
        }
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &shared);
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn doctor_loop(env: &EnvSnapshot, out: &Mutex<Value>) {
    loop {
        if let Ok((registry, _)) = Registry::load_lenient(env) {
            let profiles: Vec<ProfilePaths> =
                registry.list().into_iter().map(|k| k.paths).collect();
            let binary =
                openclaw_service_templates::doctor::absolute(crate::launch::gateway_binary(env));
            let found = openclaw_service_templates::doctor::findings_json(
                env,
                registry.home(),
                &profiles,
                &binary,
            );
            if let Ok(mut slot) = out.lock() {
                *slot = found;
            }
        }
        std::thread::sleep(DOCTOR_EVERY);
    }
}

/// One profile's history and what was last seen of its log.
#[derive(Default)]
struct Track {
    cpu: VecDeque<f32>,
    memory: VecDeque<u64>,
    log_len: Option<u64>,
    log: Vec<String>,
}

fn sampler_loop(env: &EnvSnapshot, shared: &Shared, doctor: &Mutex<Value>) {
    let mut sampler = Sampler::new();
    let mut tracks: HashMap<String, Track> = HashMap::new();
    let mut next = Instant::now();
    loop {
        next += Duration::from_secs(1);
        let started = Instant::now();
        let (full, tick) = sample(env, &mut sampler, &mut tracks, doctor);
        if let Ok(mut p) = shared.published.lock() {
            p.seq += 1;
            p.full = Arc::new(full);
            p.tick = Arc::new(tick);
        }
        shared.changed.notify_all();
        // A slow sample (many profiles) is not followed by a burst.
        let now = Instant::now();
        if next < now {
            next = now + started.elapsed().min(Duration::from_secs(5));
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Builds the full snapshot and the tick from one sample.
fn sample(
    env: &EnvSnapshot,
    sampler: &mut Sampler,
    tracks: &mut HashMap<String, Track>,
    doctor: &Mutex<Value>,
) -> (String, String) {
    let (rows, error) = match Context::from_env(env.clone()) {
        Ok(ctx) => {
            let profiles: Vec<ProfilePaths> =
                ctx.registry.list().into_iter().map(|k| k.paths).collect();
            let mut rows = crate::status::collect(&ctx, &profiles);
            sampler.fill(&mut rows);
            let logs: Vec<PathBuf> = profiles.iter().map(crate::launch::log_path).collect();
            for (row, log) in rows.iter().zip(&logs) {
                let t = tracks.entry(row.name.clone()).or_default();
                push(&mut t.cpu, row.cpu_percent.unwrap_or(0.0));
                push(&mut t.memory, row.memory_bytes.unwrap_or(0));
                let len = std::fs::metadata(log).ok().map(|m| m.len());
                if len != t.log_len {
                    t.log_len = len;
                    t.log = crate::logfile::tail_lines(log, LOG_LINES);
                }
            }
            tracks.retain(|name, _| rows.iter().any(|r| &r.name == name));
            (rows, ctx.registry_error)
        }
        Err(f) => (Vec::new(), Some(f.message)),
    };
    let doctor = doctor.lock().map(|d| d.clone()).unwrap_or(Value::Null);
    let at = openclaw_profiles::lock::now_ms();
    let profile = |r: &StatusRow, history: bool| {
        let t = &tracks[&r.name];
        let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
        v["log"] = json!(t.log);
        if history {
            v["cpuHistory"] = json!(t.cpu);
            v["memoryHistory"] = json!(t.memory);
        }
        v
    };
    let full = json!({
        "at": at,
        "profiles": rows.iter().map(|r| profile(r, true)).collect::<Vec<_>>(),
        "doctor": doctor,
        "registryError": error,
        "historySeconds": HISTORY,
    });
    let tick = json!({
        "at": at,
        "profiles": rows.iter().map(|r| profile(r, false)).collect::<Vec<_>>(),
        "doctor": doctor,
        "registryError": error,
    });
    (full.to_string(), tick.to_string())
}

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

fn read_head(stream: &TcpStream) -> std::io::Result<Option<Request>> {
    stream.set_read_timeout(Some(HEAD_TIMEOUT))?;
    let mut reader = BufReader::new(stream.take(MAX_HEAD as u64));
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: Vec::new(),
    };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None); // the head did not end within MAX_HEAD
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(Some(req));
        }
        if let Some((k, v)) = l.split_once(':') {
            req.headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn token_matches(shared: &Shared, given: &str) -> bool {
    openclaw_profiles::token::secrets_equal(given, &shared.token)
}

fn cookie_token(req: &Request) -> Option<&str> {
    req.header("cookie")?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some(req) = read_head(&stream)? else {
        return Ok(());
    };
    // DNS rebinding: a page of another site that resolves its name to
    // 127.0.0.1 still sends its own name as Host.
    let host_ok = req.header("host").is_some_and(|h| {
        h == format!("127.0.0.1:{}", shared.port) || h == format!("localhost:{}", shared.port)
    });
    if !host_ok {
        return respond(&mut stream, 403, "text/plain", &[], b"forbidden host\n");
    }
    if req.method == "GET"
        && req.path == "/"
        && let Some(t) = req.query_param("token")
    {
        if !token_matches(shared, t) {
            return respond(&mut stream, 401, "text/plain", &[], b"wrong token\n");
        }
        // Trade the URL's token for a cookie, and drop it from the address bar.
        return respond(
            &mut stream,
            303,
            "text/plain",
            &[
                ("Location", "/".into()),
                (
                    "Set-Cookie",
                    format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
                ),
            ],
            b"",
        );
    }
    let authorized = cookie_token(&req).is_some_and(|t| token_matches(shared, t));
    if !authorized {
        return respond(
            &mut stream,
            401,
            "text/plain",
            &[],
            b"open the address `openclawctl dashboard` printed (it carries the token)\n",
        );
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => respond(
            &mut stream,
            200,
            "text/html; charset=utf-8",
            &[],
            PAGE.as_bytes(),
        ),
        ("GET", "/app.js") => respond(
            &mut stream,
            200,
            "text/javascript; charset=utf-8",
            &[],
            SCRIPT.as_bytes(),
        ),
        ("GET", "/app.css") => respond(
            &mut stream,
            200,
            "text/css; charset=utf-8",
            &[],
            STYLE.as_bytes(),
        ),
        ("GET", "/api/snapshot") => {
            let full = shared.published.lock().map(|p| p.full.clone());
            let body = full.map_or_else(|_| "{}".to_string(), |f| f.to_string());
            respond(&mut stream, 200, "application/json", &[], body.as_bytes())
        }
        ("GET", "/events") => events(stream, shared),
        ("POST", path) if path.starts_with("/api/profiles/") => {
            // Actions only from our own page.
            let origin_ok = req.header("origin").is_none_or(|o| {
                o == format!("http://127.0.0.1:{}", shared.port)
                    || o == format!("http://localhost:{}", shared.port)
            });
            if !origin_ok {
                return respond(&mut stream, 403, "text/plain", &[], b"forbidden origin\n");
            }
            let (status, body) = action(shared, &path["/api/profiles/".len()..]);
            respond(
                &mut stream,
                status,
                "application/json",
                &[],
                body.as_bytes(),
            )
        }
        (_, "/" | "/app.js" | "/app.css" | "/api/snapshot" | "/events") => {
            respond(&mut stream, 405, "text/plain", &[], b"method not allowed\n")
        }
        _ => respond(&mut stream, 404, "text/plain", &[], b"not found\n"),
    }
}

/// `POST /api/profiles/<name>/<start|stop|restart>`: runs our own binary
/// (`openclawctl --json <action> --profile <name>`), so the dashboard does
/// exactly what the command line does; `start` and `restart` do not wait
/// for readiness (the stream shows it).
fn action(shared: &Shared, rest: &str) -> (u16, String) {
    let Some((name, verb)) = rest.split_once('/') else {
        return (
            404,
            json!({"ok": false, "error": "no such action"}).to_string(),
        );
    };
    if openclaw_profiles::ProfileName::parse(name).is_err()
        || !matches!(verb, "start" | "stop" | "restart")
    {
        return (
            400,
            json!({"ok": false, "error": "no such profile or action"}).to_string(),
        );
    }
    let mut cmd = std::process::Command::new(&shared.exe);
    cmd.args(["--json", verb, "--profile", name]);
    if verb != "stop" {
        cmd.arg("--no-wait");
    }
    match cmd.stdin(std::process::Stdio::null()).output() {
        Ok(out) => {
            let doc: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| json!({"ok": out.status.success()}));
            (200, doc.to_string())
        }
        Err(e) => (
            200,
            json!({"ok": false, "error": format!("cannot run {}: {e}", shared.exe.display())})
                .to_string(),
        ),
    }
}

/// `GET /events`: the full snapshot, then each tick as it is published,
/// and a comment every 15 s of silence so that a dead peer is noticed.
fn events(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    if shared.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        shared.streams.fetch_sub(1, Ordering::SeqCst);
        return respond(
            &mut stream,
            503,
            "text/plain",
            &[],
            b"busy: too many streams\n",
        );
    }
    struct Release<'a>(&'a AtomicUsize);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _release = Release(&shared.streams);
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
    )?;
    let (mut seen, full) = {
        let p = shared
            .published
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        (p.seq, p.full.clone())
    };
    stream.write_all(format!("event: full\ndata: {full}\n\n").as_bytes())?;
    loop {
        let guard = shared
            .published
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let (p, timeout) = shared
            .changed
            .wait_timeout_while(guard, Duration::from_secs(15), |p| p.seq == seen)
            .map_err(|_| std::io::Error::other("poisoned"))?;
        if timeout.timed_out() {
            drop(p);
            stream.write_all(b": keep-alive\n\n")?;
            continue;
        }
        seen = p.seq;
        let tick = p.tick.clone();
        drop(p);
        stream.write_all(format!("data: {tick}\n\n").as_bytes())?;
    }
}
