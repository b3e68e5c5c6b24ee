//! The built `openclaw` and `openclawctl` binaries. `CARGO_BIN_EXE_*` only
//! exists inside the package that owns a binary, so this finds them in the
//! target dir relative to the running test executable, as ripgrep's tests
//! do. They must be built first: `cargo build --workspace --bins`.

use std::path::PathBuf;

/// The target profile dir (`target/debug`) holding the test executable.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/<test>-<hash> -> target/debug
    let deps = exe.parent().expect("test exe has a parent");
    if deps.ends_with("deps") {
        deps.parent().expect("deps has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

fn find(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first with `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// `target/debug/openclaw`.
pub fn openclaw() -> PathBuf {
    find("openclaw")
}

/// `target/debug/openclawctl`.
pub fn openclawctl() -> PathBuf {
    find("openclawctl")
}

/// The real OpenClaw CLI wrapper from `OPENCLAW_CLI` (set by the script
/// that ran `scripts/install-openclaw-cli`). Panics with the fix
/// when it is not set: the interop tests never skip.
pub fn real_openclaw_cli() -> PathBuf {
    let p = std::env::var_os("OPENCLAW_CLI")
        .map(PathBuf::from)
        .unwrap_or_default();
    assert!(
        p.is_file(),
        "OPENCLAW_CLI must point at the real OpenClaw CLI wrapper (got {:?}); run the suite with scripts/test, which installs it",
        p
    );
    p
}
