//! `openclawctl start`, `stop` and `restart`.
//!
//! `start` spawns a keeper per profile ([`crate::keeper`]) and waits for all
//! of them at once until each gateway answers `/readyz`, reporting the
//! keeper's verdict (conflict, crash loop) with the last log lines when one
//! fails. `stop` asks the keeper to stop (SIGTERM), waits up to `--timeout`
//! for the gateway to exit, then kills its process group. `restart` asks a
//! running keeper for a fresh gateway (SIGHUP), or starts the profile.

use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};
use openclaw_profiles::lock::{self, LockState};
use openclaw_profiles::paths::ProfilePaths;
use openclaw_profiles::process::{describe, pid_alive, same_process_alive};

use crate::context::Context;
use crate::facts::{self, Holder};
use crate::keeper::EXIT_ALREADY_SUPERVISED;
use crate::launch::{log_path, spawn_keeper};
use crate::logfile::tail_lines;
use crate::supervision::{self, State, read_record, write_record};
use crate::{CmdResult, Failure, probe, service_cmd};
use openclaw_service_templates::native::Native;

/// How often waits poll.
const POLL: Duration = Duration::from_millis(20);
/// Log lines shown when a start fails.
const LOG_LINES_ON_FAILURE: usize = 15;

/// `stop`'s default SIGTERM → SIGKILL grace.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `start` and `restart`.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// How long to wait for `/readyz`.
    pub wait: Duration,
    /// Return right after spawning.
    pub no_wait: bool,
    /// On failure, show the last log lines after the verdict.
    pub verbose: bool,
}

/// A profile `start` or `restart` waits for.
struct Pending {
    paths: ProfilePaths,
    keeper: Option<Child>,
    /// For `restart`: the gateway pid that must be replaced.
    replaced_pid: Option<u32>,
    verb: &'static str,
    /// Set when the OS service manager runs the profile: its port.
    service: Option<(Native, u16)>,
    /// The keeper's stderr (early failures land there before its log opens).
    keeper_stderr: Option<std::fs::File>,
    /// The identity of this profile's gateway in probe answers.
    instance: String,
    /// Show log lines on failure.
    verbose: bool,
    /// Since when no keeper has seemed to hold the profile (a verdict waits
    /// for [`KEEPER_GONE_GRACE`]: one read of the kernel's lock table can
    /// miss a lock while other locks come and go).
    keeper_gone_since: Option<Instant>,
}

/// How long a keeper must look gone before a start says so.
const KEEPER_GONE_GRACE: Duration = Duration::from_millis(250);

impl Pending {
    fn keeper(
        paths: ProfilePaths,
        keeper: Option<Child>,
        replaced_pid: Option<u32>,
        verb: &'static str,
    ) -> Self {
        Self {
            instance: openclaw_profiles::contract::instance_id(&paths.state_dir),
            paths,
            keeper,
            replaced_pid,
            verb,
            service: None,
            keeper_stderr: None,
            keeper_gone_since: None,
            verbose: false,
        }
    }

    fn failed(&self, code: u8, head: String) -> Failure {
        failure_with_log(&self.paths, code, head, self.verbose)
    }
}

/// Starts or restarts a profile whose OS service is installed, through the
/// service manager. `None` when the profile has no service.
fn through_service(
    ctx: &Context,
    paths: &ProfilePaths,
    verb: &'static str,
) -> Option<Result<Option<Pending>, Failure>> {
    let native = service_cmd::native(ctx);
    let sp = service_cmd::service_profile(paths);
    if !native.is_installed(sp) {
        return None;
    }
    let facts = facts::gather(paths);
    if verb == "started" && facts.live {
        crate::report::done(
            format!(
                "profile `{}` is already running under {} (pid {})",
                paths.profile,
                service_cmd::describe_service(&native, paths),
                facts.gateway_pid().map_or("?".into(), |p| p.to_string())
            ),
            serde_json::json!({
                "profile": paths.profile.as_str(),
                "result": "already running",
                "pid": facts.gateway_pid(),
                "managedBy": native.kind.as_str(),
            }),
        );
        return Some(Ok(None));
    }
    let port = match facts.port {
        Ok(p) => p,
        Err(e) => {
            return Some(Err(Failure::conflict(format!(
                "profile `{}`: {e}",
                paths.profile
            ))));
        }
    };
    let action = if verb == "started" {
        "start"
    } else {
        "restart"
    };
    // A (re)start reads everything a fresh start reads: the unit is
    // rewritten if the profile changed (port, paths), and the env file is
    // projected again from the profile's `.env`.
    if let Err(f) = service_cmd::refresh(ctx, paths) {
        return Some(Err(f));
    }
    if let Err(e) = native.control(action, sp) {
        return Some(Err(Failure::problem(format!(
            "cannot {action} profile `{}`: {e}",
            paths.profile
        ))));
    }
    let port = facts::configured_port(paths).unwrap_or(port);
    let mut p = Pending::keeper(
        paths.clone(),
        None,
        if verb == "restarted" {
            facts.gateway_pid()
        } else {
            None
        },
        verb,
    );
    p.service = Some((native, port));
    Some(Ok(Some(p)))
}

fn poll_service(p: &Pending, native: &Native, port: u16) -> Progress {
    let sp = service_cmd::service_profile(&p.paths);
    if let Ok(st) = native.status(sp)
        && st.active_state == "failed"
    {
        let (code, what) = if st.last_exit_code == Some(78) {
            (78, "conflict (exit 78)")
        } else {
            (1, "failed")
        };
        let why = crate::logfile::last_error_line(&log_path(&p.paths))
            .map_or(String::new(), |l| format!(": {l}"));
        return Progress::Failed(p.failed(
            code,
            format!(
                "profile `{}`: {} reports {what}{why}",
                p.paths.profile,
                service_cmd::describe_service(native, &p.paths)
            ),
        ));
    }
    let holder = match facts::gather(&p.paths).holder {
        Holder::Known(o) => Some(o.pid),
        _ => None,
    };
    match holder {
        Some(pid)
            if Some(pid) != p.replaced_pid
                && probe::is_ready_as(port, facts::PROBE_TIMEOUT, &p.instance) =>
        {
            Progress::Ready(pid, port)
        }
        _ => Progress::Waiting,
    }
}

/// Reports every failure of a multi-profile command (stderr, or items of
/// the `--json` document); the worst exit code wins (78 over 1).
pub fn report_failures(failures: Vec<Failure>) -> CmdResult {
    let mut worst: Option<u8> = None;
    let mut messages = Vec::new();
    for f in &failures {
        if crate::report::json() {
            crate::report::done(
                "",
                serde_json::json!({"error": f.message, "code": crate::report::code_name(f.code), "exitCode": f.code}),
            );
            messages.push(f.message.lines().next().unwrap_or_default().to_string());
        } else {
            eprintln!("openclawctl: {}", f.message);
        }
        // A conflict (78) wins over a plain problem (1).
        worst = Some(worst.map_or(f.code, |w| if f.code == 78 { 78 } else { w }));
    }
    worst.map_or(Ok(()), |code| {
        Err(Failure {
            code,
            message: messages.join("; "),
        })
    })
}

/// `openclawctl start` for each named profile.
pub fn start(ctx: &Context, names: &[String], opts: &StartOptions) -> CmdResult {
    let mut pending = Vec::new();
    let mut failures = Vec::new();
    // Keepers inherit our cgroup: in a delegated one, we leave it for a
    // leaf first so that they can give their tenants sub-groups.
    if names.iter().any(|n| {
        ctx.known_profile(n)
            .is_ok_and(|p| crate::enforce::needs_cgroup(&p.limits))
    }) {
        crate::enforce::step_into_leaf(&ctx.env);
    }
    crate::report::progress_start("starting", names.len());
    // Keepers are spawned several at once; each then starts on its own.
    for launched in crate::fanout::map(names, LAUNCHES_AT_ONCE, |name| launch(ctx, name)) {
        match launched {
            Ok(Some(mut p)) => {
                p.verbose = opts.verbose;
                pending.push(p);
            }
            Ok(None) => crate::report::progress_tick(true),
            Err(f) => {
                failures.push(f);
                crate::report::progress_tick(false);
            }
        }
    }
    if opts.no_wait {
        for p in &pending {
            crate::report::done(
                format!("starting profile `{}`", p.paths.profile),
                serde_json::json!({"profile": p.paths.profile.as_str(), "result": "starting"}),
            );
        }
    } else {
        failures.extend(wait_all(pending, opts.wait));
    }
    crate::report::progress_end();
    report_failures(failures)
}

/// Spawns a keeper for `name` unless one runs; `None` when nothing is left
/// to wait for.
fn launch(ctx: &Context, name: &str) -> Result<Option<Pending>, Failure> {
    let paths = ctx.known_profile(name)?;
    if let Some(r) = through_service(ctx, &paths, "started") {
        return r;
    }
    let facts = facts::gather(&paths);
    if facts.supervised {
        let state = facts
            .record
            .as_ref()
            .map_or("starting", |r| r.state.as_str());
        if facts.live {
            crate::report::done(
                format!(
                    "profile `{}` is already running (pid {}, port {})",
                    paths.profile,
                    facts.gateway_pid().map_or("?".into(), |p| p.to_string()),
                    facts.serving_port().map_or("?".into(), |p| p.to_string())
                ),
                serde_json::json!({
                    "profile": paths.profile.as_str(),
                    "result": "already running",
                    "pid": facts.gateway_pid(),
                    "port": facts.serving_port(),
                }),
            );
            return Ok(None);
        }
        crate::report::note(format!(
            "profile `{}` is already supervised ({state}); waiting for it",
            paths.profile
        ));
        return Ok(Some(Pending::keeper(paths, None, None, "started")));
    }
    let stderr = tempfile::tempfile().ok();
    let keeper = spawn_keeper(
        &ctx.env,
        &paths,
        stderr.as_ref().and_then(|f| f.try_clone().ok()),
    )
    .map_err(|e| {
        Failure::usage(format!(
            "cannot spawn the keeper of profile `{}`: {e}",
            paths.profile
        ))
    })?;
    let mut p = Pending::keeper(paths, Some(keeper), None, "started");
    p.keeper_stderr = stderr;
    Ok(Some(p))
}

/// A failed start: the verdict (with the line that explains it) first;
/// the last log lines follow only with `--verbose`.
fn failure_with_log(paths: &ProfilePaths, code: u8, head: String, verbose: bool) -> Failure {
    let lines = tail_lines(&log_path(paths), LOG_LINES_ON_FAILURE);
    let tail = if lines.is_empty() {
        String::new()
    } else if verbose {
        format!(
            "\nlast log lines ({}):\n  {}",
            log_path(paths).display(),
            lines.join("\n  ")
        )
    } else {
        format!(
            "\n  (the log: `openclawctl logs {}`, or start again with --verbose)",
            paths.profile
        )
    };
    Failure {
        code,
        message: format!("{head}{tail}"),
    }
}

/// What a keeper wrote to stderr before its log was open.
fn keeper_stderr(file: Option<&mut std::fs::File>) -> Option<String> {
    use std::io::{Read, Seek};
    let f = file?;
    let mut text = String::new();
    f.seek(std::io::SeekFrom::Start(0)).ok()?;
    f.read_to_string(&mut text).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(
        line.trim()
            .trim_start_matches("openclawctl keep: ")
            .to_string(),
    )
}

/// What one pending profile is doing right now.
enum Progress {
    Waiting,
    Ready(u32, u16),
    Failed(Failure),
}

fn poll(p: &mut Pending) -> Progress {
    if let Some((native, port)) = &p.service {
        return poll_service(p, native, *port);
    }
    let name = p.paths.profile.to_string();
    if let Some(child) = &mut p.keeper
        && let Ok(Some(status)) = child.try_wait()
    {
        let keeper_pid = child.id();
        p.keeper = None;
        if status.code() != Some(i32::from(EXIT_ALREADY_SUPERVISED)) {
            let rec = read_record(&p.paths).filter(|r| r.keeper_pid == keeper_pid);
            let early = keeper_stderr(p.keeper_stderr.as_mut());
            let why = rec
                .as_ref()
                .and_then(|r| r.last_error.clone())
                .or(early.clone())
                .unwrap_or_else(|| format!("its keeper exited ({status})"));
            return Progress::Failed(match rec.map(|r| r.state) {
                Some(State::Conflict) => {
                    p.failed(78, format!("cannot start profile `{name}`: {why}"))
                }
                Some(State::Failed) => p.failed(1, format!("profile `{name}` failed: {why}")),
                Some(State::Stopped) => p.failed(
                    1,
                    format!(
                        "profile `{name}` was stopped while it started (by `openclawctl stop`?)"
                    ),
                ),
                _ => p.failed(
                    1,
                    format!(
                        "the keeper of profile `{name}` could not start ({status}): {}",
                        early.unwrap_or_else(|| "it gave no reason".into())
                    ),
                ),
            });
        }
        // Lost a start race: another keeper supervises; wait for it.
    }
    let gone = p.keeper.is_none() && !supervision::keeper_alive(&p.paths);
    if !gone {
        p.keeper_gone_since = None;
    }
    if gone
        && p.keeper_gone_since
            .get_or_insert_with(Instant::now)
            .elapsed()
            < KEEPER_GONE_GRACE
    {
        return Progress::Waiting;
    }
    if gone {
        let rec = read_record(&p.paths);
        let state = rec.as_ref().map(|r| r.state);
        let why = rec
            .as_ref()
            .and_then(|r| r.last_error.clone())
            .unwrap_or_else(|| match state {
                Some(State::Stopped) => {
                    "it was stopped while it started (by `openclawctl stop`?)".into()
                }
                _ => "its keeper exited without saying why; see `openclawctl logs`".into(),
            });
        let code = if state == Some(State::Conflict) {
            78
        } else {
            1
        };
        return Progress::Failed(p.failed(code, format!("profile `{name}` is not running: {why}")));
    }
    let Some(rec) = read_record(&p.paths) else {
        return Progress::Waiting;
    };
    // Trust only a record written by the keeper that runs now: ours if we
    // spawned one, else a live one (a dead keeper's record is stale).
    let current = match &p.keeper {
        Some(child) => rec.keeper_pid == child.id(),
        None => supervision::keeper_alive(&p.paths) && pid_alive(rec.keeper_pid),
    };
    if !current {
        return Progress::Waiting;
    }
    match (rec.gateway_pid, rec.state) {
        // Ready once the keeper itself saw it healthy, and `/readyz` agrees.
        (Some(pid), State::Running)
            if Some(pid) != p.replaced_pid
                && probe::is_ready_as(rec.port, facts::PROBE_TIMEOUT, &p.instance) =>
        {
            Progress::Ready(pid, rec.port)
        }
        _ => Progress::Waiting,
    }
}

/// Waits for every pending profile at once.
fn wait_all(mut pending: Vec<Pending>, limit: Duration) -> Vec<Failure> {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut shown = 0;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for mut p in pending {
            match poll(&mut p) {
                Progress::Waiting => still.push(p),
                Progress::Ready(pid, port) => {
                    crate::report::done(
                        format!(
                            "{} profile `{}` (pid {pid}, port {port})",
                            p.verb, p.paths.profile
                        ),
                        serde_json::json!({
                            "profile": p.paths.profile.as_str(),
                            "result": p.verb,
                            "pid": pid,
                            "port": port,
                        }),
                    );
                    crate::report::progress_tick(true);
                }
                Progress::Failed(f) => {
                    failures.push(f);
                    crate::report::progress_tick(false);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() >= limit {
            for p in &pending {
                failures.push(p.failed(
                    1,
                    format!(
                        "profile `{}` did not become ready within {}s; its keeper keeps trying (`openclawctl status`, `openclawctl logs --profile {}`)",
                        p.paths.profile,
                        limit.as_secs(),
                        p.paths.profile
                    ),
                ));
            }
            break;
        }
        if started.elapsed().as_secs() > shown {
            shown = started.elapsed().as_secs();
            crate::report::progress_redraw();
        }
        std::thread::sleep(POLL);
    }
    failures
}

/// `openclawctl restart`: a running keeper gets SIGHUP (a fresh gateway,
/// backoff and crash-loop counters reset); anything else is started.
pub fn restart(ctx: &Context, names: &[String], opts: &StartOptions) -> CmdResult {
    let mut pending = Vec::new();
    let mut failures = Vec::new();
    for name in names {
        let paths = match ctx.known_profile(name) {
            Ok(p) => p,
            Err(f) => {
                failures.push(f);
                continue;
            }
        };
        if let Some(r) = through_service(ctx, &paths, "restarted") {
            match r {
                Ok(Some(p)) => pending.push(p),
                Ok(None) => {}
                Err(f) => failures.push(f),
            }
            continue;
        }
        let facts = facts::gather(&paths);
        match (facts.supervised, &facts.record) {
            // Limits are the keeper's to apply: new ones need a new keeper.
            (true, Some(rec)) if rec.limits != paths.limits => {
                crate::report::note(format!(
                    "profile `{name}`: its limits changed ({}); a new keeper applies them",
                    paths.limits.summary()
                ));
                let replaced = rec.gateway_pid;
                if let Err(f) = stop_keeper(&paths, Duration::from_secs(10)) {
                    failures.push(f);
                    continue;
                }
                match launch(ctx, name) {
                    Ok(Some(mut p)) => {
                        p.verb = "restarted";
                        p.replaced_pid = replaced;
                        p.verbose = opts.verbose;
                        pending.push(p);
                    }
                    Ok(None) => {}
                    Err(f) => failures.push(f),
                }
            }
            (true, Some(rec)) => {
                // The keeper re-reads the config (port included) before it
                // spawns the new gateway.
                let _ = kill(Pid::from_raw(rec.keeper_pid as i32), Signal::SIGHUP);
                let mut p = Pending::keeper(paths, None, rec.gateway_pid, "restarted");
                p.verbose = opts.verbose;
                pending.push(p);
            }
            _ => match launch(ctx, name) {
                Ok(Some(mut p)) => {
                    p.verbose = opts.verbose;
                    pending.push(p);
                }
                Ok(None) => {}
                Err(f) => failures.push(f),
            },
        }
    }
    if !opts.no_wait {
        failures.extend(wait_all(pending, opts.wait));
    }
    crate::report::progress_end();
    report_failures(failures)
}

/// `openclawctl stop` for each named profile.
pub fn stop(ctx: &Context, names: &[String], timeout: Duration) -> CmdResult {
    // Many at once (each mostly waits for its keeper to go), bounded.
    crate::report::progress_start("stopping", names.len());
    let failures = crate::fanout::map(names, STOPS_AT_ONCE, |name| {
        let failed = ctx
            .known_profile(name)
            .and_then(|paths| stop_one(ctx, &paths, timeout))
            .err();
        crate::report::progress_tick(failed.is_none());
        failed
    });
    crate::report::progress_end();
    report_failures(failures.into_iter().flatten().collect())
}

/// Most keepers `start` spawns at once.
const LAUNCHES_AT_ONCE: usize = 8;

/// Most profiles `stop` stops at once.
const STOPS_AT_ONCE: usize = 32;

/// Stops the keeper of `paths` and its gateway: SIGTERM to the keeper,
/// which stops the gateway's group with `timeout` as its grace (written
/// where the keeper reads it), then SIGKILL to the group after `timeout`.
/// Returns the stopped gateway's pid and how it ended.
pub fn stop_keeper(
    paths: &ProfilePaths,
    timeout: Duration,
) -> Result<(Option<u32>, &'static str), Failure> {
    let Some(rec) = read_record(paths).filter(|r| pid_alive(r.keeper_pid)) else {
        return Ok((None, ""));
    };
    let gateway = rec.gateway_pid;
    let keeper = Pid::from_raw(rec.keeper_pid as i32);
    let _ = supervision::request_stop_grace(paths, timeout);
    let _ = kill(keeper, Signal::SIGTERM);
    let gone = |p: Option<u32>| p.is_none_or(|p| !pid_alive(p));
    let mut how = "";
    // A little beyond `timeout`: the keeper's own SIGKILL comes first.
    if !wait_until(timeout + Duration::from_secs(1), || {
        gone(gateway) && !supervision::keeper_alive(paths)
    }) {
        if let Some(g) = gateway {
            let _ = killpg(Pid::from_raw(g as i32), Signal::SIGKILL);
            how = ", killed after the stop timeout";
        }
        if !wait_until(Duration::from_secs(5), || !supervision::keeper_alive(paths)) {
            let _ = kill(keeper, Signal::SIGKILL);
        }
    } else if read_record(paths)
        .and_then(|r| r.last_exit)
        .is_some_and(|e| e.signal.as_deref() == Some("SIGKILL"))
    {
        // The keeper itself escalated when the grace ran out.
        how = ", killed after the stop timeout";
    }
    Ok((gateway, how))
}

fn stop_one(ctx: &Context, paths: &ProfilePaths, timeout: Duration) -> CmdResult {
    let name = paths.profile.as_str();
    let native = service_cmd::native(ctx);
    let sp = service_cmd::service_profile(paths);
    if native.is_installed(sp) {
        let pid = facts::gather(paths).gateway_pid();
        native
            .control("stop", sp)
            .map_err(|e| Failure::problem(format!("cannot stop profile `{name}`: {e}")))?;
        wait_until(timeout, || state_lock_free(paths));
        let by = service_cmd::describe_service(&native, paths);
        let human = match pid {
            Some(p) => format!("stopped profile `{name}` (pid {p}) through {by}"),
            None => format!("stopped profile `{name}` through {by}"),
        };
        stopped(human, name, "stopped", pid);
        return Ok(());
    }
    let facts = facts::gather(paths);
    let mut stopped_pid = None;
    let mut how = "";
    if facts.supervised {
        (stopped_pid, how) = stop_keeper(paths, timeout)?;
    }
    // Whatever still holds the state dir (a gateway started by hand, or
    // one whose keeper died) is stopped too.
    match facts::gather(paths).holder {
        Holder::Known(owner) if same_process_alive(owner.pid, owner.start_time) => {
            how = terminate(owner.pid, timeout).map_err(Failure::problem)?;
            if stopped_pid.is_none() {
                crate::report::note(format!(
                    "stopping pid {} (not started by openclawctl)",
                    owner.pid
                ));
            }
            stopped_pid = Some(owner.pid);
        }
        Holder::Known(owner) => {
            return Err(Failure::problem(format!(
                "profile `{name}`: the state lock is held, but not by its recorded owner (pid {}, gone); find the holder with `fuser {}`",
                owner.pid,
                paths.state_lock_path().display()
            )));
        }
        Holder::Unknown => {
            return Err(Failure::problem(format!(
                "profile `{name}`: the state lock {} is held by a process that left no owner record; find it with `fuser {}`",
                paths.state_lock_path().display(),
                paths.state_lock_path().display()
            )));
        }
        Holder::None => {}
    }
    wait_until(Duration::from_secs(5), || state_lock_free(paths));
    if let Some(pid) = stopped_pid {
        stopped(
            format!("stopped profile `{name}` (pid {pid}{how})"),
            name,
            "stopped",
            Some(pid),
        );
    } else if facts.supervised {
        stopped(format!("stopped profile `{name}`"), name, "stopped", None);
    } else if let Some(mut rec) = facts
        .record
        .filter(|r| matches!(r.state, State::Failed | State::Conflict))
    {
        let was = rec.state.as_str();
        rec.state = State::Stopped;
        let _ = write_record(paths, &rec);
        stopped(
            format!("profile `{name}` was {was}; marked stopped"),
            name,
            "marked stopped",
            None,
        );
    } else {
        stopped(
            format!("profile `{name}` is not running"),
            name,
            "not running",
            None,
        );
    }
    Ok(())
}

fn stopped(human: String, name: &str, result: &str, pid: Option<u32>) {
    crate::report::done(
        human,
        serde_json::json!({"profile": name, "result": result, "pid": pid}),
    );
}

fn state_lock_free(paths: &ProfilePaths) -> bool {
    lock::inspect(&paths.state_lock_path()).is_ok_and(|s| s == LockState::Free)
}

/// Stops `pid` and its process group: SIGTERM, up to `grace` for it to
/// exit, then SIGKILL. Returns how it ended, for the message.
pub fn terminate(pid: u32, grace: Duration) -> Result<&'static str, String> {
    let target = Pid::from_raw(pid as i32);
    // A gateway we started leads its own group; one started by hand may not.
    let group = getpgid(Some(target)).ok().filter(|g| *g == target);
    let send = |sig: Signal| match group {
        Some(g) => killpg(g, sig),
        None => kill(target, sig),
    };
    match send(Signal::SIGTERM) {
        Ok(()) => {}
        Err(nix::errno::Errno::ESRCH) => return Ok(""),
        Err(e) => return Err(format!("cannot signal {}: {e}", describe(pid))),
    }
    if wait_until(grace, || !pid_alive(pid)) {
        if group.is_some() {
            let _ = send(Signal::SIGKILL); // leftovers of the group
        }
        return Ok("");
    }
    let _ = send(Signal::SIGKILL);
    if wait_until(Duration::from_secs(5), || !pid_alive(pid)) {
        Ok(", killed after the stop timeout")
    } else {
        Err(format!("pid {pid} survived SIGKILL"))
    }
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
