//! Profile names, checked once when built (OpenClaw's `--profile` rules).

use std::fmt;

/// Error for a name that OpenClaw would refuse as `--profile`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The value was empty or only whitespace.
    #[error("--profile requires a value")]
    Empty,
    /// The value holds a character outside `[A-Za-z0-9_-]`.
    #[error("Invalid --profile (use letters, numbers, \"_\", \"-\" only): {0:?}")]
    Invalid(String),
    /// The value starts with `-`: every command line would read it as a flag.
    #[error(
        "Invalid --profile {0:?}: a profile name must not start with \"-\" (it would be read as a flag)"
    )]
    LeadingDash(String),
}

/// A validated profile name. `default` (any case) is the unnamed profile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileName(String);

impl ProfileName {
    /// Checks `raw` with OpenClaw's rules: trimmed, non-empty, letters,
    /// digits, `_` and `-` only.
    ///
    /// ```
    /// use openclaw_profiles::ProfileName;
    /// assert_eq!(ProfileName::parse(" work ").unwrap().as_str(), "work");
    /// assert!(ProfileName::parse("Default").unwrap().is_default());
    /// assert!(ProfileName::parse("a/b").is_err());
    /// assert!(ProfileName::parse("-lead").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(NameError::Invalid(trimmed.to_string()));
        }
        if trimmed.starts_with('-') {
            return Err(NameError::LeadingDash(trimmed.to_string()));
        }
        if trimmed.eq_ignore_ascii_case("default") {
            return Ok(Self::default_profile());
        }
        Ok(Self(trimmed.to_string()))
    }

    /// The unnamed profile (state dir `~/.openclaw`).
    pub fn default_profile() -> Self {
        Self("default".to_string())
    }

    /// True for the unnamed profile.
    pub fn is_default(&self) -> bool {
        self.0 == "default"
    }

    /// The name as typed (normalised to `default` for the unnamed profile).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The suffix OpenClaw appends to per-profile names: `""` or `-<name>`.
    pub fn suffix(&self) -> String {
        if self.is_default() {
            String::new()
        } else {
            format!("-{}", self.0)
        }
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ProfileName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_openclaw_rules() {
        let cases: &[(&str, Result<&str, NameError>)] = &[
            ("a", Ok("a")),
            ("  work_1-x ", Ok("work_1-x")),
            ("Default", Ok("default")),
            ("DEFAULT", Ok("default")),
            ("", Err(NameError::Empty)),
            ("   ", Err(NameError::Empty)),
            ("a b", Err(NameError::Invalid("a b".into()))),
            ("a/b", Err(NameError::Invalid("a/b".into()))),
            ("..", Err(NameError::Invalid("..".into()))),
            ("é", Err(NameError::Invalid("é".into()))),
        ];
        for (input, want) in cases {
            let got = ProfileName::parse(input).map(|n| n.as_str().to_string());
            assert_eq!(got, want.clone().map(str::to_string), "input {input:?}");
        }
    }

    #[test]
    fn error_message_matches_openclaw() {
        let err = ProfileName::parse("a.b").unwrap_err().to_string();
        assert!(err.starts_with("Invalid --profile (use letters, numbers, \"_\", \"-\" only)"));
        assert_eq!(
            ProfileName::parse("").unwrap_err().to_string(),
            "--profile requires a value"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_charset(s in "\\PC{0,20}") {
            if let Ok(name) = ProfileName::parse(&s) {
                prop_assert!(name.as_str().chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
                prop_assert!(!name.as_str().is_empty());
            }
        }
    }
}
