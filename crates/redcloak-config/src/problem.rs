//! Configuration problems, reported all together in the what / required / fix / docs form.

use std::fmt;

/// One thing wrong with the configuration. Its texts never contain a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What was found.
    pub what: String,
    /// What the policy requires.
    pub required: String,
    /// The exact variable or command that fixes it.
    pub fix: String,
    /// Where the rule is explained (`docs/<file>.md#<anchor>`).
    pub docs: &'static str,
}

impl Problem {
    /// Builds a problem.
    pub fn new(
        what: impl Into<String>,
        required: impl Into<String>,
        fix: impl Into<String>,
        docs: &'static str,
    ) -> Self {
        Problem {
            what: what.into(),
            required: required.into(),
            fix: fix.into(),
            docs,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error: {}\n  required: {}\n  fix: {}\n  docs: {}",
            self.what, self.required, self.fix, self.docs
        )
    }
}

/// Everything wrong with a configuration (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order they were found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
