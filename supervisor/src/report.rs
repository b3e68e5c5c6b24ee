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
        outln!("{human}");
    }
}

/// Reports a note for people only (progress, hints); nothing under `--json`.
pub fn note(human: impl Display) {
    if !json() {
        outln!("{human}");
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
