//! The command table: one row per command redcloak knows, saying what it does with it.
//!
//! # Security
//! The table is the policy. A command that is not in it is refused (fail closed), so a new
//! Redis command can never carry a plaintext value past the proxy by accident. Every row
//! states which arguments are values (encrypted before they leave) and which parts of the
//! reply are values (decrypted before the client sees them).
//!
//! Rows are grouped by family in `table/strings.rs`, `keys.rs` and `connection.rs`; later families only
//! add rows (and, where a reply has a new shape, a [`ReplyRule`] variant).

mod connection;
mod keys;
mod strings;

/// How a command is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Encrypt the value arguments and forward to Redis; transform the reply by the row's rule.
    Forward,
    /// Answered by redcloak itself, never forwarded.
    Local(Local),
    /// Refused with an explanation: the command cannot work on encrypted values, or would
    /// reconfigure or bypass the secured server.
    Refuse(Refusal),
}

/// Commands redcloak answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// `AUTH`: the client's credentials are discarded; the upstream connection is
    /// authenticated with redcloak's own secret. Answered `+OK`.
    Auth,
    /// `QUIT`: answered `+OK`, then the connection is closed after every earlier reply.
    Quit,
}

/// Why a known command is refused, and what to do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Why the command cannot work through redcloak (completes "… is not supported on encrypted values: …").
    pub reason: &'static str,
    /// What to do instead, when something exists.
    pub alternative: Option<&'static str>,
}

/// Which arguments of a command are values to encrypt. Indexes count the command name as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueArgs {
    /// No argument is a value.
    None,
    /// Exactly the argument at this index (e.g. `SET key value` → 2).
    At(usize),
    /// Every second argument starting at this index (`MSET k v k v` → 2, 4, …).
    EveryOther(usize),
    /// Every argument from this index on (`LPUSH key v v v` → 2…).
    From(usize),
}

impl ValueArgs {
    /// Whether argument `index` (0 = the command name) is a value.
    pub fn is_value(self, index: usize) -> bool {
        match self {
            ValueArgs::None => false,
            ValueArgs::At(i) => index == i,
            ValueArgs::EveryOther(start) => index >= start && (index - start) % 2 == 0,
            ValueArgs::From(start) => index >= start,
        }
    }

    /// Whether any argument is a value.
    pub fn any(self) -> bool {
        self != ValueArgs::None
    }
}

/// Which parts of a reply are values to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyRule {
    /// Nothing in the reply is a value: forwarded byte for byte.
    Pass,
    /// A bulk string reply is a value (`GET`); nil, status and integer replies pass.
    Value,
    /// An array whose bulk-string elements are values (`MGET`); nil elements pass.
    Values,
}

/// The family a command belongs to, for `docs/commands.md` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// PING, ECHO, AUTH, SELECT, QUIT…
    Connection,
    /// Key space and expiry: DEL, EXISTS, EXPIRE, TTL, TYPE…
    Keys,
    /// String values: SET, GET, MSET…
    Strings,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Upper-case command name as Redis spells it.
    pub name: &'static str,
    /// Redis arity: `n > 0` exactly n arguments (name included), `n < 0` at least `-n`.
    pub arity: i32,
    /// What redcloak does with the command.
    pub action: Action,
    /// Which arguments are values (only meaningful for [`Action::Forward`]).
    pub values: ValueArgs,
    /// Which parts of the reply are values.
    pub reply: ReplyRule,
    /// The family, for documentation.
    pub family: Family,
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}

/// Shorthand constructors used by the family files.
pub(crate) const fn forward(
    name: &'static str,
    arity: i32,
    values: ValueArgs,
    reply: ReplyRule,
    family: Family,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        action: Action::Forward,
        values,
        reply,
        family,
    }
}

pub(crate) const fn refuse(
    name: &'static str,
    arity: i32,
    family: Family,
    reason: &'static str,
    alternative: Option<&'static str>,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        action: Action::Refuse(Refusal {
            reason,
            alternative,
        }),
        values: ValueArgs::None,
        reply: ReplyRule::Pass,
        family,
    }
}

/// Every row of the table, in no particular order.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    connection::COMMANDS
        .iter()
        .chain(keys::COMMANDS)
        .chain(strings::COMMANDS)
}

/// The longest command name in the table; longer names cannot match.
const MAX_NAME: usize = 32;

/// Looks a command up by name, ASCII case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    let mut upper = [0u8; MAX_NAME];
    let upper = &mut upper[..name.len()];
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    let index = index();
    index
        .binary_search_by(|spec| spec.name.as_bytes().cmp(upper))
        .ok()
        .map(|i| index[i])
}

/// The rows sorted by name, built once.
fn index() -> &'static [&'static CommandSpec] {
    static INDEX: std::sync::OnceLock<Vec<&'static CommandSpec>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut rows: Vec<&'static CommandSpec> = all().collect();
        rows.sort_by_key(|spec| spec.name);
        rows
    })
}

/// `docs/commands.md`, generated from the table (a test keeps the file and the table equal).
pub fn markdown() -> String {
    let mut rows: Vec<&CommandSpec> = all().collect();
    rows.sort_by_key(|s| (s.family, s.name));
    let mut md = String::from(
        "# Commands\n\n\
         <!-- Generated from crates/redcloak-commands/src/table/ by \
         `UPDATE_DOCS=1 cargo test -p redcloak-commands markdown`. Do not edit by hand. -->\n\n\
         Every command redcloak knows, and what it does with it. A command that is not listed is \
         refused with `-ERR redcloak: command '…' is not supported` (fail closed): redcloak forwards \
         only what it can keep encrypted.\n\n\
         - **forward**: sent to Redis; *values* are encrypted on the way in, *reply* values decrypted \
         on the way out.\n\
         - **local**: answered by redcloak, never sent to Redis.\n\
         - **refused**: cannot work on encrypted values; the error says why and what to do instead.\n",
    );
    let mut family = None;
    for spec in rows {
        if family != Some(spec.family) {
            family = Some(spec.family);
            md.push_str(&format!(
                "\n## {:?}\n\n| command | arity | action | encrypted arguments | reply |\n|---|---|---|---|---|\n",
                spec.family
            ));
        }
        let action = match spec.action {
            Action::Forward => "forward".to_owned(),
            Action::Local(Local::Auth) => "local: `+OK`; the client's credentials are discarded, redcloak authenticates with its own".to_owned(),
            Action::Local(Local::Quit) => "local: `+OK`, then close".to_owned(),
            Action::Refuse(r) => match r.alternative {
                Some(alt) => format!("refused: {}; instead, {alt}", r.reason),
                None => format!("refused: {}", r.reason),
            },
        };
        let values = match spec.values {
            ValueArgs::None => "—".to_owned(),
            ValueArgs::At(i) => format!("argument {i}"),
            ValueArgs::EveryOther(i) => format!("every second argument from {i}"),
            ValueArgs::From(i) => format!("every argument from {i}"),
        };
        let reply = match (spec.action, spec.reply) {
            (Action::Forward, ReplyRule::Pass) => "as Redis sent it",
            (Action::Forward, ReplyRule::Value) => "bulk value decrypted",
            (Action::Forward, ReplyRule::Values) => "each bulk value decrypted",
            _ => "—",
        };
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            spec.name, spec.arity, action, values, reply
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_upper_case_and_short() {
        let mut seen = std::collections::HashSet::new();
        for spec in all() {
            assert!(seen.insert(spec.name), "{} appears twice", spec.name);
            assert_eq!(spec.name, spec.name.to_ascii_uppercase());
            assert!(spec.name.len() <= MAX_NAME);
            assert_ne!(spec.arity, 0, "{}: arity 0 is not a Redis arity", spec.name);
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_fails_closed() {
        assert_eq!(lookup(b"get").map(|s| s.name), Some("GET"));
        assert_eq!(lookup(b"GeT").map(|s| s.name), Some("GET"));
        assert_eq!(lookup(b"mset").map(|s| s.name), Some("MSET"));
        assert!(lookup(b"FLUSHALLX").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(&[b'A'; 100]).is_none());
        assert!(
            lookup(b"CONFIG").is_none(),
            "not in the table: refused by default"
        );
    }

    #[test]
    fn every_forwarded_value_command_names_a_value_position_within_its_arity() {
        for spec in all() {
            if spec.action != Action::Forward {
                continue;
            }
            match spec.values {
                ValueArgs::None => {}
                ValueArgs::At(i) | ValueArgs::EveryOther(i) | ValueArgs::From(i) => {
                    assert!(i >= 1, "{}: the name is never a value", spec.name);
                    assert!(
                        (i as i32) < spec.arity.abs(),
                        "{}: value position {i} is outside arity {}",
                        spec.name,
                        spec.arity
                    );
                }
            }
        }
    }

    #[test]
    fn markdown_matches_docs_commands_md() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/commands.md");
        let generated = markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/commands.md differs from the command table; regenerate it with \
             `UPDATE_DOCS=1 cargo test -p redcloak-commands markdown`"
        );
    }

    #[test]
    fn value_positions() {
        assert!(ValueArgs::At(2).is_value(2));
        assert!(!ValueArgs::At(2).is_value(3));
        let pairs = ValueArgs::EveryOther(2);
        assert_eq!(
            (0..8).filter(|&i| pairs.is_value(i)).collect::<Vec<_>>(),
            vec![2, 4, 6]
        );
        assert_eq!(
            (0..5)
                .filter(|&i| ValueArgs::From(2).is_value(i))
                .collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert!(!ValueArgs::None.is_value(1));
    }

    #[test]
    fn arity() {
        let get = lookup(b"GET").unwrap();
        assert!(get.arity_ok(2));
        assert!(!get.arity_ok(1));
        assert!(!get.arity_ok(3));
        let set = lookup(b"SET").unwrap();
        assert!(set.arity_ok(3));
        assert!(set.arity_ok(9));
        assert!(!set.arity_ok(2));
    }
}
