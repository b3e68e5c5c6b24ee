//! End-to-end scenarios across the real `openclawctl` and `openclaw`
//! binaries (built beforehand with `cargo build --workspace --bins`), and
//! the real OpenClaw CLI as a client of our gateway ([`interop`]).

mod agent;
mod dashboard;
mod doctor;
mod export;
mod interop;
mod nodes;
mod real_use;
mod services;
mod skeleton;
mod supervision;
