//! Test support shared by every test binary of the workspace: the protocol
//! schema validator, temp homes, port slots, the built binaries, and
//! guards that stop every gateway a test started, even when it fails.
//!
//! Nothing here is used by the shipped binaries.

pub mod bins;
pub mod chromium;
pub mod fake_provider;
pub mod home;
pub mod ports;
pub mod schema;
pub mod wait;

pub use home::TestHome;
pub use wait::wait_until;
