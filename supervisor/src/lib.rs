//! `openclawctl`: runs many isolated OpenClaw gateways on one host, one per
//! profile.
//!
//! One module per command group: [`profile_cmd`] (`profile create|list|
//! show|rm`), [`lifecycle`] (`start`, `stop`, `restart`), [`status`],
//! [`logs_cmd`], [`service_cmd`] (`service install|uninstall|status|render`),
//! and [`keeper`], the small process that supervises one
//! profile's gateway. Shared pieces: [`context`] (the environment and
//! registry every command resolves once), [`launch`] (spawning keepers and
//! gateways), [`policy`] (restart policy), [`supervision`] (the keeper's
//! record and lock), [`logfile`] (rotating log), [`probe`] (loopback HTTP
//! probes), [`facts`] (what is true about one profile right now).
//!
//! The supervisor knows the gateway only through the `openclaw-profiles`
//! contract and the gateway's command line, never its code.

pub mod cli;
pub mod context;
pub mod dashboard;
pub mod enforce;
pub mod export;
pub mod facts;
pub mod fanout;
pub mod keeper;
pub mod launch;
pub mod lifecycle;
pub mod logfile;
pub mod logs_cmd;
pub mod policy;
pub use openclaw_service_templates::probe;
pub mod profile_cmd;
pub mod report;
pub mod service_cmd;
pub mod status;
pub mod supervision;

/// A command's failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// Exit code: 1 found a problem, 2 usage or internal, 78 owned
    /// elsewhere or bad config (passed through from the gateway).
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    /// Ran and found a problem (exit 1).
    pub fn problem(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
    /// Usage or internal error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
    /// A lock, port or config conflict (exit 78).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            code: openclaw_profiles::contract::EX_CONFIG as u8,
            message: message.into(),
        }
    }
}

/// Result of a command.
pub type CmdResult = Result<(), Failure>;
