//! The Redis password policy: long enough for the environment and, in staging and
//! production, not a well-known value and random-looking.
//!
//! # Security
//! Findings describe the password (its length, how many distinct characters it has), never
//! its value.

use crate::Environment;

/// Well-known weak passwords (lower case). `foobared` is the example in Redis's own
/// redis.conf; the rest are the usual top entries of leaked-password lists.
const WELL_KNOWN: &[&str] = &[
    "password",
    "passw0rd",
    "p@ssw0rd",
    "redis",
    "foobared",
    "changeme",
    "changeit",
    "secret",
    "admin",
    "root",
    "default",
    "letmein",
    "welcome",
    "qwerty",
    "iloveyou",
    "monkey",
    "dragon",
    "trustno1",
    "hunter2",
    "abc123",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
];

/// Fewest distinct characters a staging/production password may have: 32 characters drawn
/// from fewer than this are a pattern, not a random secret (hex from `openssl rand -hex 32`
/// has 16).
pub const MIN_DISTINCT: usize = 10;

/// One reason a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Shorter than the environment requires.
    TooShort {
        /// Characters found.
        len: usize,
        /// Characters required.
        min: usize,
    },
    /// A well-known weak value, a repetition of one, or one followed by digits.
    WellKnown,
    /// Too few distinct characters to be random.
    TooFewDistinct {
        /// Distinct characters found.
        distinct: usize,
        /// Distinct characters required.
        min: usize,
    },
}

/// Everything wrong with `password` under the environment's rules (empty when it passes).
pub fn assess(password: &str, env: Environment) -> Vec<Weakness> {
    let mut found = Vec::new();
    let len = password.chars().count();
    let min = env.min_password_len();
    if len < min {
        found.push(Weakness::TooShort { len, min });
    }
    if env.is_strict() {
        if is_well_known(password) {
            found.push(Weakness::WellKnown);
        }
        let mut chars: Vec<char> = password.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        if chars.len() < MIN_DISTINCT {
            found.push(Weakness::TooFewDistinct {
                distinct: chars.len(),
                min: MIN_DISTINCT,
            });
        }
    }
    found
}

/// Case-insensitive: a listed word, the word repeated (`foobaredfoobared…`, also cut
/// anywhere: `12345678901234567890…`), or either followed by digits (`password2024`).
fn is_well_known(password: &str) -> bool {
    let lower = password.to_lowercase();
    let core = lower.trim_end_matches(|c: char| c.is_ascii_digit());
    WELL_KNOWN.iter().any(|word| {
        let repeats = |text: &str| {
            !text.is_empty()
                && text.len() >= word.len()
                && text.bytes().zip(word.bytes().cycle()).all(|(a, b)| a == b)
        };
        repeats(&lower) || repeats(core)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Environment::*;

    const STRONG: &str = "Tq8vLw3ZkR9mXp2NcB7hJd4FgS6yUa1E"; // 32, random-looking

    #[test]
    fn strong_passwords_pass_everywhere() {
        for env in Environment::ALL {
            assert_eq!(assess(STRONG, env), [], "{env}");
            // `openssl rand -hex 32` and the setup script's 48 hex digits.
            assert_eq!(
                assess(
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    env
                ),
                [],
                "{env}"
            );
        }
        assert_eq!(
            assess(
                "3c2d0f1e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
                Production
            ),
            []
        );
    }

    #[test]
    fn length_depends_on_the_environment() {
        let twenty = &STRONG[..20];
        assert_eq!(assess(twenty, Development), []);
        for env in [Staging, Production] {
            assert_eq!(
                assess(twenty, env),
                [Weakness::TooShort { len: 20, min: 32 }]
            );
        }
        assert_eq!(
            assess(&STRONG[..15], Development),
            [Weakness::TooShort { len: 15, min: 16 }]
        );
        // Characters, not bytes.
        assert_eq!(assess("ééééééééééééééé", Development).len(), 1);
    }

    #[test]
    fn well_known_values_and_their_repetitions() {
        for weak in [
            "foobaredfoobaredfoobaredfoobared",
            "PasswordPasswordPasswordPassword",
            "redisredisredisredisredisredisredis",
            "changeme12345678901234567890123456",
            "12345678901234567890123456789012",
            "letmeinletmeinletmeinletmeinletmein2024",
            "Passw0rdPassw0rdPassw0rdPassw0rd",
        ] {
            let found = assess(weak, Production);
            assert!(found.contains(&Weakness::WellKnown), "{weak}: {found:?}");
            assert!(
                !assess(weak, Development).contains(&Weakness::WellKnown),
                "development checks only the length"
            );
        }
        for fine in [
            STRONG,
            "xfoobaredfoobaredfoobaredfoobared",
            "Qm9vYmFyZWQ-random-k3y-material-x",
        ] {
            assert!(!is_well_known(fine), "{fine}");
        }
    }

    #[test]
    fn too_few_distinct_characters() {
        let pattern = "abababababababababababababababab"; // 32 characters, 2 distinct
        assert_eq!(
            assess(pattern, Production),
            [Weakness::TooFewDistinct {
                distinct: 2,
                min: 10
            }]
        );
        assert_eq!(assess(pattern, Development), []);
        assert_eq!(
            assess("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Staging),
            [Weakness::TooFewDistinct {
                distinct: 1,
                min: 10
            }]
        );
    }

    #[test]
    fn all_weaknesses_are_reported() {
        assert_eq!(
            assess("redis", Production),
            [
                Weakness::TooShort { len: 5, min: 32 },
                Weakness::WellKnown,
                Weakness::TooFewDistinct {
                    distinct: 5,
                    min: 10
                },
            ]
        );
    }
}
