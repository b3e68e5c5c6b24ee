//! The shared vocabulary of `openclawctl` and the `openclaw` gateway.
//!
//! Everything both binaries must agree on lives here, so that neither depends
//! on the other: profile names ([`name`]), where a profile's files are
//! ([`paths`]), which ports it reserves ([`ports`]), how `openclaw.json` is
//! read and edited ([`config`]), the state-dir ownership lock ([`lock`]),
//! atomic file writes ([`atomic`]), the registry of profiles `openclawctl`
//! knows ([`registry`]) and the contract between the binaries: env var
//! names, exit codes and the `/healthz` body ([`contract`]).
//!
//! This crate does no network I/O beyond test-binding a local port, starts no
//! async runtime and parses no command lines.

pub mod atomic;
pub mod config;
pub mod contract;
pub mod doctor;
pub mod dotenv;
pub mod limits;
pub mod lock;
pub mod logrotate;
pub mod name;
pub mod paths;
pub mod ports;
pub mod process;
pub mod purge;
pub mod registry;
pub mod stdout;
pub mod token;

pub use name::ProfileName;
