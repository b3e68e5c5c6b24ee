//! What every command resolves once: the environment, the home, the
//! registry, and profile lookup by name.

use openclaw_profiles::ProfileName;
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};
use openclaw_profiles::registry::Registry;

use crate::Failure;

/// The resolved environment of one `openclawctl` invocation.
#[derive(Debug)]
pub struct Context {
    /// Our own environment (children get a scrubbed copy).
    pub env: EnvSnapshot,
    /// The profile registry (discovered profiles only when the file is
    /// damaged; see `registry_error`).
    pub registry: Registry,
    /// Why the registry file could not be read, when it could not.
    pub registry_error: Option<String>,
}

impl Context {
    /// Loads the environment and the registry. A damaged registry file
    /// does not stop commands that only read: they see the profiles found
    /// on disk, after a warning that names the file, line and column.
    pub fn load() -> Result<Self, Failure> {
        let ctx = Self::from_env(EnvSnapshot::from_process())?;
        if let Some(e) = &ctx.registry_error {
            eprintln!("openclawctl: warning: {e} (only profiles found on disk are listed)");
        }
        Ok(ctx)
    }

    /// Like [`Context::load`] for a given environment, quietly (the
    /// registry's error stays in `registry_error`).
    pub fn from_env(env: EnvSnapshot) -> Result<Self, Failure> {
        let (registry, error) =
            Registry::load_lenient(&env).map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Self {
            env,
            registry,
            registry_error: error.map(|e| e.to_string()),
        })
    }

    /// Takes the registry's exclusive lock and reloads it, for commands
    /// that edit it: everything they decide from here on (port
    /// allocation, uniqueness) cannot race with another `openclawctl`.
    pub fn lock_registry(&mut self) -> Result<(), Failure> {
        self.registry = Registry::lock(&self.env).map_err(|e| Failure::problem(e.to_string()))?;
        self.registry_error = None;
        Ok(())
    }

    /// Parses a profile name given on the command line.
    pub fn parse_name(raw: &str) -> Result<ProfileName, Failure> {
        use openclaw_profiles::name::NameError;
        ProfileName::parse(raw).map_err(|e| {
            Failure::usage(match e {
                NameError::Empty => {
                    "a profile name must not be empty (letters, digits, `_` and `-`)".to_string()
                }
                NameError::Invalid(n) => {
                    format!("invalid profile name {n:?}: use letters, digits, `_` and `-` only")
                }
                NameError::LeadingDash(n) => format!(
                    "invalid profile name {n:?}: it must not start with `-` (command lines would read it as a flag)"
                ),
            })
        })
    }

    /// The named profiles (each must be known), or every known profile when
    /// none is named.
    pub fn profiles_or_all(&self, names: &[String]) -> Result<Vec<ProfilePaths>, Failure> {
        if names.is_empty() {
            return Ok(self.registry.list().into_iter().map(|k| k.paths).collect());
        }
        names.iter().map(|n| self.known_profile(n)).collect()
    }

    /// The paths of a known profile, or an error that says how to create it.
    pub fn known_profile(&self, raw: &str) -> Result<ProfilePaths, Failure> {
        let name = Self::parse_name(raw)?;
        if !self.registry.is_known(&name) {
            return Err(Failure::usage(format!(
                "unknown profile `{name}`: create it with `openclawctl profile create {name}`"
            )));
        }
        Ok(self.registry.paths_for(&name))
    }
}
