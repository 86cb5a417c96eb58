//! Which rule set applies: development, staging or production (DESIGN.md §6).
//!
//! Detected from `REDCLOAK_ENV`, then `APP_ENV`, `ENVIRONMENT`, `NODE_ENV`. With none of them
//! set, production — the strictest rules — applies: forgetting to say where redcloak runs
//! must never make it less strict.

use std::fmt;

use crate::Problem;

/// The variables that name the environment, in the order they are consulted.
pub const VARIABLES: [&str; 4] = ["REDCLOAK_ENV", "APP_ENV", "ENVIRONMENT", "NODE_ENV"];

/// The environment redcloak runs in; it selects the rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    /// A developer's machine: TLS 1.2 allowed, shorter passwords, key-file permissions warned.
    Development,
    /// Same rules as production.
    Staging,
    /// The strictest rules; also the default.
    Production,
}

impl Environment {
    /// All environments, least strict first.
    pub const ALL: [Environment; 3] = [
        Environment::Development,
        Environment::Staging,
        Environment::Production,
    ];

    /// Reads a spelling: `dev`, `develop`, `development`, `local`; `stage`, `staging`;
    /// `prod`, `production` (any case, surrounding spaces ignored).
    pub fn parse(value: &str) -> Option<Environment> {
        match value.trim().to_ascii_lowercase().as_str() {
            "dev" | "develop" | "development" | "local" => Some(Environment::Development),
            "stage" | "staging" => Some(Environment::Staging),
            "prod" | "production" => Some(Environment::Production),
            _ => None,
        }
    }

    /// The canonical name (`development`, `staging`, `production`).
    pub fn name(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }

    /// Staging and production share the strict rules.
    pub fn is_strict(self) -> bool {
        self != Environment::Development
    }

    /// Whether TLS 1.2 may be negotiated with Redis (development only; 1.3 everywhere).
    pub fn allows_tls12(self) -> bool {
        !self.is_strict()
    }

    /// The TLS versions allowed, for messages.
    pub fn tls_versions(self) -> &'static str {
        if self.allows_tls12() {
            "TLS 1.2 and 1.3"
        } else {
            "TLS 1.3 only"
        }
    }

    /// Shortest Redis password accepted.
    pub fn min_password_len(self) -> usize {
        if self.is_strict() {
            32
        } else {
            16
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The environment found and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The rule set that applies.
    pub environment: Environment,
    /// The variable and value it came from; `None` means the default (production).
    pub source: Option<(&'static str, String)>,
    /// Variables that were set to something that is not an environment redcloak knows and
    /// were skipped (e.g. `NODE_ENV=test`: set for another program).
    pub ignored: Vec<(&'static str, String)>,
}

impl Detected {
    /// Where the environment came from, e.g. `REDCLOAK_ENV=prod` or `default`.
    pub fn source_text(&self) -> String {
        match &self.source {
            Some((var, value)) => format!("{var}={}", shown(value)),
            None => "default".to_owned(),
        }
    }
}

impl fmt::Display for Detected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(_) => write!(f, "{} (from {})", self.environment, self.source_text())?,
            None => write!(
                f,
                "{} (default: none of {} names an environment)",
                self.environment,
                VARIABLES.join(", ")
            )?,
        }
        for (var, value) in &self.ignored {
            write!(f, "; ignored {var}={}", shown(value))?;
        }
        Ok(())
    }
}

/// Detects the environment. An unknown `REDCLOAK_ENV` is an error (it was set for redcloak,
/// so a typo must not silently pick a rule set); the detection then reports production, so
/// that every other check still runs under the strictest rules. Unknown values of the
/// general variables are skipped: they belong to other programs (`NODE_ENV=test`).
pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> (Detected, Option<Problem>) {
    let mut ignored = Vec::new();
    for var in VARIABLES {
        let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        match Environment::parse(&value) {
            Some(environment) => {
                return (
                    Detected {
                        environment,
                        source: Some((var, value)),
                        ignored,
                    },
                    None,
                )
            }
            None if var == "REDCLOAK_ENV" => {
                let problem = Problem::new(
                    format!("REDCLOAK_ENV={} is not an environment redcloak knows", shown(&value)),
                    "development (dev, local), staging (stage) or production (prod); unset means production",
                    "set REDCLOAK_ENV=production (or staging, or development on a developer machine)",
                    "docs/security.md#unknown-environment",
                );
                return (
                    Detected {
                        environment: Environment::Production,
                        source: None,
                        ignored: vec![(var, value)],
                    },
                    Some(problem),
                );
            }
            None => ignored.push((var, value)),
        }
    }
    (
        Detected {
            environment: Environment::Production,
            source: None,
            ignored,
        },
        None,
    )
}

/// An environment value as shown in messages: quoted when odd, cut when long.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(40).collect();
    let truncated = cut.len() < value.len();
    if !truncated && !cut.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return cut;
    }
    let quoted = format!("{cut:?}");
    if truncated {
        format!("{}…\"", quoted.trim_end_matches('"'))
    } else {
        quoted
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn detect_in(vars: &[(&str, &str)]) -> (Detected, Option<Problem>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        detect(&|k| map.get(k).cloned())
    }

    #[test]
    fn spellings() {
        for (text, env) in [
            ("dev", Environment::Development),
            ("Development", Environment::Development),
            (" develop ", Environment::Development),
            ("LOCAL", Environment::Development),
            ("stage", Environment::Staging),
            ("Staging", Environment::Staging),
            ("prod", Environment::Production),
            ("PRODUCTION", Environment::Production),
        ] {
            assert_eq!(Environment::parse(text), Some(env), "{text}");
        }
        for text in ["", "test", "qa", "prd", "production2", "devel opment"] {
            assert_eq!(Environment::parse(text), None, "{text}");
        }
    }

    #[test]
    fn nothing_set_means_production() {
        let (d, problem) = detect_in(&[]);
        assert_eq!(
            (d.environment, d.source.clone(), problem),
            (Environment::Production, None, None)
        );
        assert_eq!(d.source_text(), "default");
        assert!(d.to_string().starts_with("production (default"), "{d}");
    }

    #[test]
    fn the_order_is_redcloak_env_app_env_environment_node_env() {
        let all = [
            ("REDCLOAK_ENV", "staging"),
            ("APP_ENV", "dev"),
            ("ENVIRONMENT", "prod"),
            ("NODE_ENV", "development"),
        ];
        for skip in 0..all.len() {
            let (d, _) = detect_in(&all[skip..]);
            assert_eq!(d.source.as_ref().unwrap().0, all[skip].0);
            assert_eq!(Some(d.environment), Environment::parse(all[skip].1));
        }
        let (d, _) = detect_in(&[("APP_ENV", "dev")]);
        assert_eq!(d.to_string(), "development (from APP_ENV=dev)");
    }

    #[test]
    fn unknown_general_values_are_skipped() {
        let (d, problem) = detect_in(&[("NODE_ENV", "test"), ("ENVIRONMENT", "qa")]);
        assert!(problem.is_none());
        assert_eq!(d.environment, Environment::Production);
        assert_eq!(d.source, None);
        assert_eq!(d.ignored.len(), 2);
        assert!(d.to_string().contains("ignored NODE_ENV=test"), "{d}");
        let (d, _) = detect_in(&[("APP_ENV", "qa"), ("NODE_ENV", "dev")]);
        assert_eq!(d.environment, Environment::Development);
        assert!(d.to_string().contains("ignored APP_ENV=qa"), "{d}");
    }

    #[test]
    fn an_unknown_redcloak_env_is_an_error_and_does_not_fall_through() {
        let (d, problem) = detect_in(&[("REDCLOAK_ENV", "prdo"), ("APP_ENV", "dev")]);
        let problem = problem.expect("an error");
        assert_eq!(
            d.environment,
            Environment::Production,
            "strictest while reporting"
        );
        assert!(problem.what.contains("REDCLOAK_ENV=prdo"), "{problem}");
        assert!(problem.fix.contains("REDCLOAK_ENV=production"), "{problem}");
        let (_, problem) = detect_in(&[("REDCLOAK_ENV", "  ")]);
        assert!(problem.is_none(), "empty is unset");
    }

    #[test]
    fn odd_values_are_quoted_and_cut() {
        assert_eq!(shown("prod"), "prod");
        assert_eq!(shown("a b"), "\"a b\"");
        let long = "x".repeat(100);
        let s = shown(&long);
        assert!(s.len() < 50 && s.ends_with("…\""), "{s}");
    }

    #[test]
    fn rules_per_environment() {
        assert_eq!(
            Environment::ALL.map(Environment::min_password_len),
            [16, 32, 32]
        );
        assert_eq!(
            Environment::ALL.map(Environment::allows_tls12),
            [true, false, false]
        );
    }
}
