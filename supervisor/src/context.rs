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
    /// The profile registry.
    pub registry: Registry,
}

impl Context {
    /// Loads the environment and the registry.
    pub fn load() -> Result<Self, Failure> {
        let env = EnvSnapshot::from_process();
        let registry = Registry::load(&env).map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Self { env, registry })
    }

    /// Parses a profile name given on the command line.
    pub fn parse_name(raw: &str) -> Result<ProfileName, Failure> {
        ProfileName::parse(raw).map_err(|e| Failure::usage(e.to_string()))
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
