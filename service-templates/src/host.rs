//! What the install driver needs from the machine: files and commands.
//! [`RealHost`] does them for real; tests use [`Recorder`], which records
//! every call and answers commands from a script.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// The output of a command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CmdOutput {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Files and commands, as the driver uses them.
pub trait Host {
    /// Writes `contents` to `path` atomically with `mode`, creating parents.
    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()>;
    /// Removes `path` (absent is fine).
    fn remove_file(&mut self, path: &Path) -> std::io::Result<()>;
    /// Reads `path` (`None` if absent).
    fn read_file(&mut self, path: &Path) -> Option<String>;
    /// Runs `program args...` and returns its output.
    fn run(&mut self, program: &str, args: &[&str]) -> std::io::Result<CmdOutput>;
}

/// The machine itself.
#[derive(Debug, Default)]
pub struct RealHost;

impl Host for RealHost {
    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        openclaw_profiles::atomic::write_atomic(path, contents, mode)
    }
    fn remove_file(&mut self, path: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    fn read_file(&mut self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
    fn run(&mut self, program: &str, args: &[&str]) -> std::io::Result<CmdOutput> {
        let out = std::process::Command::new(program).args(args).output()?;
        Ok(CmdOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A file written, with its mode.
    Write(PathBuf, u32),
    /// A file removed.
    Remove(PathBuf),
    /// A command run: program and args joined by spaces.
    Run(String),
}

/// A test host: files live in memory, commands get scripted answers (or
/// success with empty output), and every call is recorded.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Calls in order.
    pub calls: Vec<Call>,
    /// Files as written.
    pub files: std::collections::BTreeMap<PathBuf, String>,
    /// Answers for commands whose line starts with the key, used in order.
    pub answers: Vec<(String, VecDeque<CmdOutput>)>,
}

impl Recorder {
    /// Scripts the next answer for commands starting with `prefix`.
    pub fn answer(&mut self, prefix: &str, out: CmdOutput) {
        match self.answers.iter_mut().find(|(p, _)| p == prefix) {
            Some((_, q)) => q.push_back(out),
            None => self
                .answers
                .push((prefix.to_string(), VecDeque::from([out]))),
        }
    }

    /// The command lines run, in order.
    pub fn commands(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                Call::Run(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Host for Recorder {
    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
        self.calls.push(Call::Write(path.to_path_buf(), mode));
        self.files.insert(
            path.to_path_buf(),
            String::from_utf8_lossy(contents).into_owned(),
        );
        Ok(())
    }
    fn remove_file(&mut self, path: &Path) -> std::io::Result<()> {
        self.calls.push(Call::Remove(path.to_path_buf()));
        self.files.remove(path);
        Ok(())
    }
    fn read_file(&mut self, path: &Path) -> Option<String> {
        self.files.get(path).cloned()
    }
    fn run(&mut self, program: &str, args: &[&str]) -> std::io::Result<CmdOutput> {
        let line = std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        self.calls.push(Call::Run(line.clone()));
        let scripted = self
            .answers
            .iter_mut()
            .find(|(p, q)| line.starts_with(p.as_str()) && !q.is_empty())
            .and_then(|(_, q)| q.pop_front());
        Ok(scripted.unwrap_or(CmdOutput {
            code: Some(0),
            ..Default::default()
        }))
    }
}
