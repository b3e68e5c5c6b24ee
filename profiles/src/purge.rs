//! The containment check before `profile rm --purge` deletes anything: a
//! profile's files are deleted only when they are plainly that profile's
//! and nothing else's.

use std::path::{Path, PathBuf};

/// Why a path may not be purged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The path is `/`, the home dir or one of its ancestors.
    #[error("refusing to delete {}: it is the home directory or contains it", .0.display())]
    ContainsHome(PathBuf),
    /// The path is a symlink (we would delete somewhere else).
    #[error("refusing to delete {}: it is a symlink; remove the link by hand", .0.display())]
    Symlink(PathBuf),
    /// The path is not a directory.
    #[error("refusing to delete {}: it is not a directory", .0.display())]
    NotADir(PathBuf),
    /// The dir does not look like an OpenClaw state dir.
    #[error("refusing to delete {}: it does not look like an OpenClaw state dir (no openclaw.json, logs/ or tmp/)", .0.display())]
    NotAStateDir(PathBuf),
    /// Another profile uses or lives inside this dir.
    #[error("refusing to delete {}: profile `{profile}` uses {}", .path.display(), .other.display())]
    Shared {
        /// The dir to delete.
        path: PathBuf,
        /// The other profile.
        profile: String,
        /// Its path inside (or equal to) `path`.
        other: PathBuf,
    },
}

fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Checks that `state_dir` may be deleted: a real directory (not a
/// symlink), not the home dir or above it, shaped like a state dir, and
/// holding no path of another profile (`others`: name and paths).
pub fn check_purgeable(
    state_dir: &Path,
    home: &Path,
    others: &[(String, Vec<PathBuf>)],
) -> Result<(), Refusal> {
    let meta =
        std::fs::symlink_metadata(state_dir).map_err(|_| Refusal::NotADir(state_dir.into()))?;
    if meta.file_type().is_symlink() {
        return Err(Refusal::Symlink(state_dir.into()));
    }
    if !meta.is_dir() {
        return Err(Refusal::NotADir(state_dir.into()));
    }
    let dir = canon(state_dir);
    if dir.parent().is_none() || canon(home).starts_with(&dir) {
        return Err(Refusal::ContainsHome(state_dir.into()));
    }
    let looks_like_state = ["openclaw.json", "logs", "tmp"]
        .iter()
        .any(|n| dir.join(n).exists());
    if !looks_like_state {
        return Err(Refusal::NotAStateDir(state_dir.into()));
    }
    for (profile, paths) in others {
        if let Some(p) = paths.iter().find(|p| canon(p).starts_with(&dir)) {
            return Err(Refusal::Shared {
                path: state_dir.into(),
                profile: profile.clone(),
                other: p.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_everything_that_is_not_plainly_a_state_dir() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let ok = h.join(".openclaw-a");
        std::fs::create_dir_all(ok.join("logs")).unwrap();
        assert_eq!(check_purgeable(&ok, h, &[]), Ok(()));

        assert_eq!(
            check_purgeable(h, h, &[]),
            Err(Refusal::ContainsHome(h.into()))
        );
        assert_eq!(
            check_purgeable(Path::new("/"), h, &[]),
            Err(Refusal::ContainsHome("/".into()))
        );
        let plain = h.join("photos");
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(
            check_purgeable(&plain, h, &[]),
            Err(Refusal::NotAStateDir(plain.clone()))
        );
        let link = h.join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert_eq!(
            check_purgeable(&link, h, &[]),
            Err(Refusal::Symlink(link.clone()))
        );
        let missing = h.join("missing");
        assert_eq!(
            check_purgeable(&missing, h, &[]),
            Err(Refusal::NotADir(missing.clone()))
        );
        let others = vec![("b".to_string(), vec![ok.join("b.json")])];
        assert!(matches!(
            check_purgeable(&ok, h, &others),
            Err(Refusal::Shared { .. })
        ));
    }
}
