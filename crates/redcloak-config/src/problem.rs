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

impl Problem {
    /// The same four lines, headed `warning:` instead of `error:`.
    pub fn as_warning(&self) -> AsWarning<'_> {
        AsWarning(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, label: &str) -> fmt::Result {
        write!(
            f,
            "{label}: {}\n  required: {}\n  fix: {}\n  docs: {}",
            self.what, self.required, self.fix, self.docs
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, "error")
    }
}

/// A [`Problem`] shown as a warning (see [`Problem::as_warning`]).
#[derive(Debug, Clone, Copy)]
pub struct AsWarning<'a>(&'a Problem);

impl fmt::Display for AsWarning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, "warning")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_warnings_have_the_four_lines() {
        let p = Problem::new("found", "needed", "do this", "docs/security.md#auth");
        assert_eq!(
            p.to_string(),
            "error: found\n  required: needed\n  fix: do this\n  docs: docs/security.md#auth"
        );
        assert_eq!(
            p.as_warning().to_string(),
            "warning: found\n  required: needed\n  fix: do this\n  docs: docs/security.md#auth"
        );
        let all = ConfigError {
            problems: vec![p.clone(), p],
        };
        assert_eq!(all.to_string().matches("error: found").count(), 2);
    }
}
