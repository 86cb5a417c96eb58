//! The security policy as a list of rules, each evaluated to pass, warn or fail — what
//! `redcloak check` prints and what decides whether redcloak starts.

use std::fmt;

use crate::{Config, ConfigError, Detected, Problem, TlsMaterial};

/// One rule of DESIGN.md §6 (and the plumbing rules around it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The environment is known.
    Environment,
    /// The configuration file and limits are valid.
    Settings,
    /// The plaintext listener stays on the host.
    Listener,
    /// Redis is reached with `rediss://`.
    UpstreamUrl,
    /// The TLS versions the environment allows.
    TlsVersions,
    /// Redis's certificate is verified against a CA.
    ServerVerification,
    /// redcloak's client certificate is present, valid and matches its key.
    ClientCertificate,
    /// The client private key file is not readable by others.
    PrivateKeyFile,
    /// AUTH with a password that meets the environment's rules.
    Auth,
    /// The Fernet key ring is present and valid.
    EncryptionKeys,
    /// The live TLS + AUTH + PING handshake with Redis.
    Handshake,
}

impl Rule {
    /// Every rule, in the order `redcloak check` prints them.
    pub const ALL: [Rule; 11] = [
        Rule::Environment,
        Rule::Settings,
        Rule::Listener,
        Rule::UpstreamUrl,
        Rule::TlsVersions,
        Rule::ServerVerification,
        Rule::ClientCertificate,
        Rule::PrivateKeyFile,
        Rule::Auth,
        Rule::EncryptionKeys,
        Rule::Handshake,
    ];

    /// A short title.
    pub fn title(self) -> &'static str {
        match self {
            Rule::Environment => "environment",
            Rule::Settings => "settings",
            Rule::Listener => "plaintext listener",
            Rule::UpstreamUrl => "upstream URL",
            Rule::TlsVersions => "TLS versions",
            Rule::ServerVerification => "server certificate",
            Rule::ClientCertificate => "client certificate (mTLS)",
            Rule::PrivateKeyFile => "client key file",
            Rule::Auth => "AUTH",
            Rule::EncryptionKeys => "encryption keys",
            Rule::Handshake => "live handshake",
        }
    }

    /// Where the rule is explained.
    pub fn docs(self) -> &'static str {
        match self {
            Rule::Environment => "docs/security.md#environment",
            Rule::Settings => "docs/configuration.md#settings",
            Rule::Listener => "docs/security.md#plaintext-listener",
            Rule::UpstreamUrl => "docs/security.md#upstream-url",
            Rule::TlsVersions => "docs/security.md#tls-versions",
            Rule::ServerVerification => "docs/security.md#server-verification",
            Rule::ClientCertificate => "docs/security.md#mtls",
            Rule::PrivateKeyFile => "docs/security.md#private-key-file",
            Rule::Auth => "docs/security.md#auth",
            Rule::EncryptionKeys => "docs/security.md#encryption-keys",
            Rule::Handshake => "docs/security.md#startup-handshake",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// How a rule came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Satisfied; the text says what was found (never a secret).
    Pass(String),
    /// Allowed in this environment, but should be fixed (redcloak starts).
    Warn(Problem),
    /// Not allowed: redcloak does not start.
    Fail(Problem),
}

/// One rule's outcome. A rule may have several (e.g. two bad settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The rule.
    pub rule: Rule,
    /// Its outcome.
    pub outcome: Outcome,
}

impl Check {
    /// A pass.
    pub fn pass(rule: Rule, detail: impl Into<String>) -> Check {
        Check {
            rule,
            outcome: Outcome::Pass(detail.into()),
        }
    }

    /// A warning.
    pub fn warn(rule: Rule, problem: Problem) -> Check {
        Check {
            rule,
            outcome: Outcome::Warn(problem),
        }
    }

    /// A failure.
    pub fn fail(rule: Rule, problem: Problem) -> Check {
        Check {
            rule,
            outcome: Outcome::Fail(problem),
        }
    }

    /// Whether this stops redcloak.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail(_))
    }

    /// The problem, for a warning or a failure.
    pub fn problem(&self) -> Option<&Problem> {
        match &self.outcome {
            Outcome::Pass(_) => None,
            Outcome::Warn(p) | Outcome::Fail(p) => Some(p),
        }
    }

    /// `✅`, `⚠️` or `❌`.
    pub fn symbol(&self) -> &'static str {
        match self.outcome {
            Outcome::Pass(_) => "✅",
            Outcome::Warn(_) => "⚠️",
            Outcome::Fail(_) => "❌",
        }
    }

    /// The one-line summary: what passed, or the problem's "what".
    pub fn summary(&self) -> &str {
        match &self.outcome {
            Outcome::Pass(detail) => detail,
            Outcome::Warn(p) | Outcome::Fail(p) => &p.what,
        }
    }
}

impl fmt::Display for Check {
    /// `✅ upstream URL: rediss://localhost:6380/0`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.symbol(), self.rule, self.summary())
    }
}

/// The result of evaluating a configuration: every rule's outcome and, when everything
/// needed was present, the configuration itself.
#[derive(Debug)]
pub struct Evaluation {
    /// The environment whose rules were applied.
    pub detected: Detected,
    /// Every outcome, in the order found.
    pub checks: Vec<Check>,
    pub(crate) config: Option<Config>,
    /// TLS material that loaded while something else was missing (so the caller can still
    /// check the key against the certificate and report everything in one run).
    pub(crate) partial_tls: Option<TlsMaterial>,
}

impl Evaluation {
    /// The configuration, when every required piece was present (it may still have failed
    /// checks: see [`Evaluation::passed`]).
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The TLS material, if it loaded.
    pub fn tls(&self) -> Option<&TlsMaterial> {
        self.config
            .as_ref()
            .map(|c| &c.tls)
            .or(self.partial_tls.as_ref())
    }

    /// Adds outcomes found outside this crate (the TLS builder, the live handshake).
    pub fn record(&mut self, checks: impl IntoIterator<Item = Check>) {
        self.checks.extend(checks);
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.config.is_some() && !self.checks.iter().any(Check::failed)
    }

    /// The failures.
    pub fn failures(&self) -> impl Iterator<Item = &Problem> {
        self.checks.iter().filter_map(|c| match &c.outcome {
            Outcome::Fail(p) => Some(p),
            _ => None,
        })
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.checks.iter().filter_map(|c| match &c.outcome {
            Outcome::Warn(p) => Some(p),
            _ => None,
        })
    }

    /// The checks in rule order (stable within a rule), for printing.
    pub fn sorted_checks(&self) -> Vec<&Check> {
        let mut checks: Vec<&Check> = self.checks.iter().collect();
        checks.sort_by_key(|c| c.rule);
        checks
    }

    /// The configuration if nothing failed, else every failure.
    pub fn into_result(self) -> Result<Config, ConfigError> {
        let problems: Vec<Problem> = self.failures().cloned().collect();
        match self.config {
            Some(config) if problems.is_empty() => Ok(config),
            _ if !problems.is_empty() => Err(ConfigError { problems }),
            // Unreachable by construction (a missing piece is always reported), but never
            // start without saying why.
            _ => Err(ConfigError {
                problems: vec![Problem::new(
                    "the configuration is incomplete",
                    "every required setting",
                    "run `redcloak check` to see each rule",
                    "docs/configuration.md#settings",
                )],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment;

    fn evaluation(checks: Vec<Check>) -> Evaluation {
        Evaluation {
            detected: environment::detect(&|_| None).0,
            checks,
            config: None,
            partial_tls: None,
        }
    }

    fn problem(what: &str) -> Problem {
        Problem::new(what, "r", "f", "docs/security.md#auth")
    }

    #[test]
    fn checks_print_a_symbol_the_rule_and_a_summary() {
        let pass = Check::pass(Rule::UpstreamUrl, "rediss://h:1/0 (TLS)");
        assert_eq!(pass.to_string(), "✅ upstream URL: rediss://h:1/0 (TLS)");
        let warn = Check::warn(Rule::PrivateKeyFile, problem("mode 0644"));
        assert_eq!(warn.to_string(), "⚠️ client key file: mode 0644");
        let fail = Check::fail(Rule::Auth, problem("too short"));
        assert_eq!(fail.to_string(), "❌ AUTH: too short");
        assert!(fail.failed() && !warn.failed() && !pass.failed());
        assert!(pass.problem().is_none() && warn.problem().is_some());
    }

    #[test]
    fn sorted_by_rule_and_failures_collected() {
        let mut e = evaluation(vec![
            Check::fail(Rule::Auth, problem("a")),
            Check::pass(Rule::Environment, "production"),
            Check::warn(Rule::ClientCertificate, problem("w")),
            Check::fail(Rule::Listener, problem("l")),
        ]);
        e.record([Check::pass(Rule::Handshake, "ok")]);
        let order: Vec<Rule> = e.sorted_checks().iter().map(|c| c.rule).collect();
        assert_eq!(
            order,
            [
                Rule::Environment,
                Rule::Listener,
                Rule::ClientCertificate,
                Rule::Auth,
                Rule::Handshake
            ]
        );
        assert_eq!(e.warnings().count(), 1);
        assert!(!e.passed());
        let err = e.into_result().unwrap_err();
        let whats: Vec<&str> = err.problems.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(whats, ["a", "l"], "failures only, in the order found");
    }

    #[test]
    fn an_incomplete_configuration_never_loads() {
        let e = evaluation(vec![Check::pass(Rule::Environment, "production")]);
        assert!(!e.passed());
        assert_eq!(e.into_result().unwrap_err().problems.len(), 1);
    }

    #[test]
    fn every_rule_has_a_title_and_a_docs_anchor() {
        for rule in Rule::ALL {
            assert!(!rule.title().is_empty());
            assert!(rule.docs().starts_with("docs/") && rule.docs().contains(".md#"));
        }
    }
}
