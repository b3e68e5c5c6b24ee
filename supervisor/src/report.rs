//! What a command reports, for people or for `--json`. Action commands
//! (`start`, `stop`, `restart`, `profile create|rm|set`, `service
//! install|uninstall`) call [`done`] for each thing they did: a line on
//! stdout, or, under `--json`, one item of the single document `main`
//! prints at the end (`{"ok", "results", "error"?, "code"?, "exitCode"}`).
//! Commands that print a document of their own (`status`, `profile
//! list|show`, `doctor`, `service status|render`) print it themselves; on
//! failure `main` prints the error object instead.

use std::fmt::Display;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use openclaw_profiles::outln;
use serde_json::Value;

static JSON: AtomicBool = AtomicBool::new(false);
static ITEMS: Mutex<Vec<Value>> = Mutex::new(Vec::new());

/// Turns `--json` on for this process.
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// True under `--json`.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Reports one thing done: `human` on stdout, or `item` into the document.
pub fn done(human: impl Display, item: Value) {
    if json() {
        ITEMS.lock().unwrap_or_else(|e| e.into_inner()).push(item);
    } else {
        line(human);
    }
}

/// Reports a note for people only (progress, hints); nothing under `--json`.
pub fn note(human: impl Display) {
    if !json() {
        line(human);
    }
}

/// A line on stdout, above the progress bar when one is drawn.
fn line(human: impl Display) {
    let bar = bar();
    if bar.is_some() {
        eprint!("\r\x1b[2K");
    }
    outln!("{human}");
    if let Some(b) = bar.as_ref() {
        b.draw();
    }
}

/// The progress bar of a command over many profiles (`start --all`,
/// `stop --all`): one line on stderr, redrawn in place, only on a terminal
/// and never under `--json`.
struct Bar {
    what: &'static str,
    total: usize,
    done: usize,
    failed: usize,
    started: std::time::Instant,
}

impl Bar {
    fn draw(&self) {
        const WIDTH: usize = 30;
        let filled = (self.done + self.failed) * WIDTH / self.total.max(1);
        eprint!(
            "\r\x1b[2K{} [{}{}] {}/{}{} {}s",
            self.what,
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.done,
            self.total,
            if self.failed > 0 {
                format!(", {} failed", self.failed)
            } else {
                String::new()
            },
            self.started.elapsed().as_secs()
        );
        use std::io::Write;
        let _ = std::io::stderr().flush();
    }
}

static BAR: Mutex<Option<Bar>> = Mutex::new(None);

/// The bar, if one is drawn (a poisoned lock is still the bar).
fn bar() -> std::sync::MutexGuard<'static, Option<Bar>> {
    BAR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a progress bar for `total` profiles (`what`: `starting`), when
/// stderr is a terminal, `--json` is off and there is more than one.
pub fn progress_start(what: &'static str, total: usize) {
    use std::io::IsTerminal;
    if json() || total < 2 || !std::io::stderr().is_terminal() {
        return;
    }
    let bar = Bar {
        what,
        total,
        done: 0,
        failed: 0,
        started: std::time::Instant::now(),
    };
    bar.draw();
    *self::bar() = Some(bar);
}

/// One profile finished (`ok` or failed); redraws the bar.
pub fn progress_tick(ok: bool) {
    if let Some(b) = bar().as_mut() {
        if ok {
            b.done += 1;
        } else {
            b.failed += 1;
        }
        b.draw();
    }
}

/// Redraws the bar (its clock), if one is drawn.
pub fn progress_redraw() {
    if let Some(b) = bar().as_ref() {
        b.draw();
    }
}

/// Removes the bar.
pub fn progress_end() {
    if bar().take().is_some() {
        eprint!("\r\x1b[2K");
    }
}

/// The items reported so far.
pub fn take_items() -> Vec<Value> {
    std::mem::take(&mut *ITEMS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The `code` string of an exit code.
pub fn code_name(exit: u8) -> &'static str {
    match exit {
        0 => "ok",
        1 => "problem",
        2 => "usage",
        78 => "conflict",
        _ => "error",
    }
}

/// The document `main` prints under `--json` when a command ends.
pub fn document(error: Option<(&str, u8)>, items: Vec<Value>) -> Value {
    let mut doc = serde_json::json!({ "ok": error.is_none(), "results": items });
    match error {
        Some((message, exit)) => {
            doc["error"] = message.into();
            doc["code"] = code_name(exit).into();
            doc["exitCode"] = exit.into();
        }
        None => doc["exitCode"] = 0.into(),
    }
    doc
}
