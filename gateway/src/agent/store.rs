//! Sessions on disk: one index per agent
//! (`<stateDir>/agents/<agentId>/sessions/sessions.json`, the path
//! OpenClaw's `health` reports; written whole and atomically by a writer
//! thread) and one append-only transcript per session id
//! (`<sessionId>.jsonl` beside it, each line fsynced).
//!
//! A crash mid-append leaves at most one torn last line: readers skip lines
//! that do not parse, and the next append starts on a fresh line, so every
//! complete message stays readable.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::persist::{self, Writer};
use crate::protocol::{now_ms, uuid_v4};

/// The default agent.
pub const DEFAULT_AGENT: &str = "main";
/// The main session's last part (`agent:<id>:main`).
pub const MAIN_KEY: &str = "main";
/// Longest session key accepted.
pub const MAX_KEY_LEN: usize = 512;

/// A session key qualified with its agent: `agent:<agentId>:<rest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The agent id.
    pub agent: String,
    /// The full key.
    pub full: String,
}

/// True for an agent id OpenClaw accepts (a lowercase slug).
pub fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Qualifies `key` (`agent.md` §1): `agent:<agentId>:<rest>` stays as it
/// is; anything else (a bare `main`, `tui-…`) belongs to `agent`.
pub fn qualify(key: &str, agent: &str) -> Result<SessionKey, String> {
    let key = key.trim();
    if key.is_empty() {
        return Err("session key is empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("session key is longer than {MAX_KEY_LEN} bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err("session key contains control characters".into());
    }
    if let Some(rest) = key.strip_prefix("agent:") {
        let Some((id, tail)) = rest.split_once(':') else {
            return Err(format!(
                "session key `{key}` is not `agent:<agentId>:<name>`"
            ));
        };
        if !valid_agent_id(id) || tail.is_empty() {
            return Err(format!(
                "session key `{key}` is not `agent:<agentId>:<name>` (agent ids are lowercase letters, digits, - and _)"
            ));
        }
        return Ok(SessionKey {
            agent: id.to_string(),
            full: key.to_string(),
        });
    }
    Ok(SessionKey {
        agent: agent.to_string(),
        full: format!("agent:{agent}:{key}"),
    })
}

/// One session's index entry.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The current transcript.
    pub session_id: String,
    /// Created, ms.
    pub created_at: u64,
    /// Last change, ms.
    pub updated_at: u64,
    /// What created it (`chat.send`, `agent`, `sessions.create`).
    #[serde(default)]
    pub created_via: String,
    /// `idle`, `running`, `done`, `failed`, `aborted`, `timeout`.
    #[serde(default)]
    pub status: String,
    /// Model override (`<provider>/<model>`, `sessions.patch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_override: Option<String>,
    /// Thinking level override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
    /// Label (`sessions.create|patch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The session this one continues (`/new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_key: Option<String>,
    /// Provider and model of the last turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_provider: Option<String>,
    /// Model of the last turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_model: Option<String>,
    /// Prompt tokens of the last turn (the context in use).
    #[serde(default)]
    pub input_tokens: u64,
    /// Completion tokens of the last turn.
    #[serde(default)]
    pub output_tokens: u64,
    /// Prompt + completion tokens of the last turn.
    #[serde(default)]
    pub total_tokens: u64,
    /// Prompt tokens over the session's life.
    #[serde(default)]
    pub input_tokens_sum: u64,
    /// Completion tokens over the session's life.
    #[serde(default)]
    pub output_tokens_sum: u64,
    /// Messages in the current transcript.
    #[serde(default)]
    pub message_count: u64,
}

impl Entry {
    fn new(created_via: &str) -> Self {
        let now = now_ms();
        Self {
            session_id: uuid_v4(),
            created_at: now,
            updated_at: now,
            created_via: created_via.to_string(),
            status: "idle".into(),
            ..Self::default()
        }
    }
}

/// Token counts of one provider answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

impl Usage {
    /// As transcripts and `chat` events carry it.
    pub fn to_json(self) -> Value {
        json!({"input": self.input, "output": self.output, "cacheRead": 0, "cacheWrite": 0,
               "totalTokens": self.input + self.output})
    }
}

/// The sessions of every agent, in memory, saved on each change.
#[derive(Debug)]
pub struct Sessions {
    root: PathBuf,
    index: BTreeMap<String, BTreeMap<String, Entry>>,
    writer: Option<Writer>,
}

impl Sessions {
    /// Loads the index of each agent under `<stateDir>/agents/`.
    pub fn load(state_dir: &Path, agents: &[String]) -> Self {
        let root = state_dir.join("agents");
        let index = agents
            .iter()
            .map(|a| {
                let map = persist::read_map(
                    &index_path(&root, a),
                    "session index",
                    "transcripts are kept beside it, but sessions must be opened again by key",
                );
                (a.clone(), map)
            })
            .collect();
        Self {
            root,
            index,
            writer: None,
        }
    }

    /// Saves from now on through a writer thread (the gateway's store).
    pub fn with_writer(mut self) -> Self {
        self.writer = Writer::spawn("session-index");
        self
    }

    /// The index file of `agent`.
    pub fn index_path(&self, agent: &str) -> PathBuf {
        index_path(&self.root, agent)
    }

    /// The transcript of a session id.
    pub fn transcript_path(&self, agent: &str, session_id: &str) -> PathBuf {
        self.root
            .join(agent)
            .join("sessions")
            .join(format!("{session_id}.jsonl"))
    }

    fn save(&self, agent: &str) {
        let Some(map) = self.index.get(agent) else {
            return;
        };
        let bytes = serde_json::to_vec_pretty(map).expect("index serializes");
        if let Err(e) = persist::save(self.writer.as_ref(), vec![(self.index_path(agent), bytes)]) {
            tracing::error!(agent, error = %e, "cannot save the session index");
        }
    }

    /// The entry of `key`.
    pub fn get(&self, key: &SessionKey) -> Option<&Entry> {
        self.index.get(&key.agent)?.get(&key.full)
    }

    /// Number of sessions across agents.
    pub fn count(&self) -> usize {
        self.index.values().map(BTreeMap::len).sum()
    }

    /// The entry of `key`, created (and saved) if missing.
    pub fn ensure(&mut self, key: &SessionKey, created_via: &str) -> Entry {
        let map = self.index.entry(key.agent.clone()).or_default();
        if let Some(e) = map.get(&key.full) {
            return e.clone();
        }
        let e = Entry::new(created_via);
        map.insert(key.full.clone(), e.clone());
        self.save(&key.agent);
        e
    }

    /// Changes `key`'s entry (if it exists) and saves.
    pub fn update(&mut self, key: &SessionKey, f: impl FnOnce(&mut Entry)) -> Option<Entry> {
        let e = self.index.get_mut(&key.agent)?.get_mut(&key.full)?;
        f(e);
        let out = e.clone();
        self.save(&key.agent);
        Some(out)
    }

    /// A fresh transcript behind `key` (created if missing); overrides stay.
    pub fn reset(&mut self, key: &SessionKey) -> Entry {
        self.ensure(key, "sessions.reset");
        self.update(key, |e| {
            let overrides = (
                e.model_override.take(),
                e.thinking_level.take(),
                e.label.take(),
            );
            *e = Entry {
                created_via: std::mem::take(&mut e.created_via),
                model_override: overrides.0,
                thinking_level: overrides.1,
                label: overrides.2,
                ..Entry::new("")
            };
        })
        .expect("ensured above")
    }

    /// Removes `key`; its transcript is deleted too when asked.
    pub fn delete(&mut self, key: &SessionKey, transcript: bool) -> bool {
        let Some(e) = self
            .index
            .get_mut(&key.agent)
            .and_then(|m| m.remove(&key.full))
        else {
            return false;
        };
        self.save(&key.agent);
        if transcript {
            let _ = std::fs::remove_file(self.transcript_path(&key.agent, &e.session_id));
        }
        true
    }

    /// `agent`'s sessions (every agent's with `None`), newest first.
    pub fn list(&self, agent: Option<&str>) -> Vec<(String, String, Entry)> {
        let mut rows: Vec<(String, String, Entry)> = self
            .index
            .iter()
            .filter(|(a, _)| agent.is_none_or(|want| want == a.as_str()))
            .flat_map(|(a, m)| m.iter().map(|(k, e)| (a.clone(), k.clone(), e.clone())))
            .collect();
        rows.sort_by(|x, y| y.2.updated_at.cmp(&x.2.updated_at).then(x.1.cmp(&y.1)));
        rows
    }
}

fn index_path(root: &Path, agent: &str) -> PathBuf {
    root.join(agent).join("sessions").join("sessions.json")
}

/// Appends one JSON line to a transcript and fsyncs it. When the file ends
/// in a torn line (a crash mid-write), the new line starts on its own.
pub fn append_line(path: &Path, line: &Value) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        openclaw_profiles::atomic::create_private_dir(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let mut buf = Vec::with_capacity(256);
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            buf.push(b'\n');
        }
    }
    serde_json::to_writer(&mut buf, line).expect("a JSON value serializes");
    buf.push(b'\n');
    f.write_all(&buf)?;
    f.sync_data()
}

/// The lines of a transcript that parse (a torn line is skipped), and how
/// many did not.
pub fn read_lines(path: &Path) -> (Vec<Value>, usize) {
    let Ok(text) = std::fs::read(path) else {
        return (Vec::new(), 0);
    };
    let mut skipped = 0;
    let lines = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .filter_map(|l| match serde_json::from_slice::<Value>(l) {
            Ok(v) if v.is_object() => Some(v),
            _ => {
                skipped += 1;
                None
            }
        })
        .collect();
    (lines, skipped)
}

/// The messages of a transcript, oldest first.
pub fn read_messages(path: &Path) -> Vec<Value> {
    let (lines, skipped) = read_lines(path);
    if skipped > 0 {
        tracing::warn!(file = %path.display(), skipped, "transcript lines that do not parse were skipped (a crash mid-write leaves at most one)");
    }
    lines
        .into_iter()
        .filter(|l| l["type"] == "message")
        .map(|mut l| l["message"].take())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_qualified_as_openclaw_does() {
        let k = qualify("main", "main").unwrap();
        assert_eq!(k.full, "agent:main:main");
        assert_eq!(qualify("tui-1", "work").unwrap().full, "agent:work:tui-1");
        let k = qualify("agent:work:x:y", "main").unwrap();
        assert_eq!(
            (k.agent.as_str(), k.full.as_str()),
            ("work", "agent:work:x:y")
        );
        for bad in [
            "",
            "agent:",
            "agent:main",
            "agent:Main:x",
            "agent:main:",
            "a\nb",
        ] {
            assert!(qualify(bad, "main").is_err(), "{bad:?}");
        }
        assert!(qualify(&"k".repeat(600), "main").is_err());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_append_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/t.jsonl");
        append_line(
            &path,
            &json!({"type": "message", "message": {"role": "user", "content": "a"}}),
        )
        .unwrap();
        // A crash in the middle of the second line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"type":"message","message":{"role":"assis"#)
            .unwrap();
        drop(f);
        assert_eq!(read_messages(&path).len(), 1);
        append_line(
            &path,
            &json!({"type": "message", "message": {"role": "user", "content": "b"}}),
        )
        .unwrap();
        let msgs = read_messages(&path);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(msgs[1]["content"], "b");
        assert_eq!(read_lines(&path).1, 1, "the torn line alone is skipped");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn index_round_trip_reset_keeps_overrides_and_a_damaged_index_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let agents = vec!["main".to_string()];
        let key = qualify("main", "main").unwrap();
        let first = {
            let mut s = Sessions::load(dir.path(), &agents);
            let e = s.ensure(&key, "chat.send");
            s.update(&key, |e| e.model_override = Some("p/m".into()));
            e
        };
        let mut s = Sessions::load(dir.path(), &agents);
        assert_eq!(s.get(&key).unwrap().session_id, first.session_id);
        let reset = s.reset(&key);
        assert_ne!(reset.session_id, first.session_id);
        assert_eq!(reset.model_override.as_deref(), Some("p/m"));
        assert!(s.delete(&key, true));
        assert_eq!(s.count(), 0);

        let path = s.index_path("main");
        std::fs::write(&path, "{ not json").unwrap();
        let s = Sessions::load(dir.path(), &agents);
        assert_eq!(s.count(), 0);
        let aside = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("sessions.json.corrupt-")
            })
            .count();
        assert_eq!(aside, 1);
    }
}
