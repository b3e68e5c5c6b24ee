//! The `openclaw` gateway: a WebSocket control plane wire-compatible with
//! OpenClaw protocol 4, HTTP probes on the same port, and the operator
//! commands of the `openclaw` binary.
//!
//! Layout: [`settings`] resolves flags, env and config into checked
//! settings; [`guard`] takes the state lock and binds the port;
//! [`server`] is the axum router and [`run`]; [`ws`] runs one WebSocket
//! connection; [`methods`] answers requests (authorized by [`scopes`]);
//! [`identity`] verifies device signatures; [`pairing`] keeps paired
//! devices and their tokens; [`protocol`] holds frames and constants;
//! [`auth`] compares secrets and limits failed attempts.

/// Log targets of dependencies that trace frame or header contents (and so
/// secrets): capped at `info` whatever `RUST_LOG` asks.
pub const SECRET_BEARING_LOG_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "axum::extract::ws",
];

pub mod agent;
pub mod agent_ops;
pub mod auth;
pub mod canvas;
pub mod canvas_host;
pub mod channels;
pub mod cli;
pub mod client;
pub mod frameguard;
pub mod guard;
pub mod identity;
pub mod listener;
pub mod methods;
pub mod node_host;
pub mod nodes;
pub mod nodes_ops;
pub mod ops;
pub mod output;
pub mod pairing;
pub mod persist;
pub mod protocol;
pub mod proxy;
pub mod scopes;
pub mod server;
pub mod service;
pub mod settings;
pub mod socket;
pub mod webchat;
pub mod ws;

pub use server::{Gateway, run};

/// This gateway's version, as reported in `hello-ok.server.version`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-rust");

/// Why a gateway did not start. Every variant exits with 78 (`EX_CONFIG`):
/// a service manager must not restart a gateway that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid config, flags or environment.
    #[error("{0}")]
    Config(String),
    /// The state dir is owned by a live gateway.
    #[error("{0}")]
    Lock(String),
    /// The port is taken or cannot be bound.
    #[error("{0}")]
    Bind(String),
}

impl StartError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        openclaw_profiles::contract::EX_CONFIG
    }
}
