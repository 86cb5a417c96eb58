//! Redis's own description of its commands (`COMMAND DOCS`, `COMMAND INFO`), read from the
//! plain Redis at startup: the argument grammar of every command and subcommand, hence the
//! option words (tokens) and arities the generator uses. Taking them from Redis, not from
//! redcloak's table, is what makes the comparison independent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::wire::{multibulk, Conn, Event, Reply};

/// The type of one argument, as `COMMAND DOCS` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A key name.
    Key,
    /// Any string (what it means is in the argument's name).
    String,
    /// An integer.
    Integer,
    /// A floating point number.
    Double,
    /// A glob-style pattern.
    Pattern,
    /// A Unix time (seconds or milliseconds, see the name).
    UnixTime,
    /// Only the token.
    PureToken,
    /// One of the children.
    OneOf,
    /// All of the children, in order.
    Block,
}

/// One argument of a command.
#[derive(Debug, Clone)]
pub struct Arg {
    /// Its name in the docs (`value`, `field`, `timeout`…): says what it means.
    pub name: String,
    /// Its type.
    pub kind: Kind,
    /// The option word that precedes it (or is it, for pure tokens).
    pub token: Option<String>,
    /// It may be left out.
    pub optional: bool,
    /// It may repeat.
    pub multiple: bool,
    /// When it repeats, the token repeats too.
    pub multiple_token: bool,
    /// The alternatives (one-of) or parts (block).
    pub children: Vec<Arg>,
}

/// One command or subcommand.
#[derive(Debug, Clone)]
pub struct Command {
    /// Lower-case name; a subcommand is `container|sub`.
    pub name: String,
    /// Redis's arity (name, and for a subcommand the container, included).
    pub arity: i64,
    /// Its arguments (after the name, or after container and subcommand).
    pub args: Vec<Arg>,
    /// Redis's flags for it (`write`, `blocking`, `pubsub`…).
    pub flags: BTreeSet<String>,
}

impl Command {
    /// Every option word that appears anywhere in its grammar.
    pub fn tokens(&self) -> Vec<String> {
        fn walk(args: &[Arg], out: &mut BTreeSet<String>) {
            for a in args {
                if let Some(t) = &a.token {
                    out.insert(t.clone());
                }
                walk(&a.children, out);
            }
        }
        let mut set = BTreeSet::new();
        walk(&self.args, &mut set);
        set.into_iter().collect()
    }
}

/// All commands Redis describes.
#[derive(Debug, Clone, Default)]
pub struct Docs {
    /// By lower-case name (`get`, `client|setname`).
    pub commands: BTreeMap<String, Command>,
}

impl Docs {
    /// Reads `COMMAND DOCS` and `COMMAND INFO` from a plain Redis.
    pub fn load(conn: &mut Conn) -> Result<Docs, String> {
        let docs = ask(conn, &["COMMAND", "DOCS"])?;
        let info = ask(conn, &["COMMAND", "INFO"])?;
        let mut commands = BTreeMap::new();
        let docs = pairs(&docs).ok_or("COMMAND DOCS: not a map")?;
        for (name, doc) in docs {
            let name = lower(&name)?;
            let Some(fields) = pairs(doc) else { continue };
            let fields: BTreeMap<String, &Reply> = fields
                .into_iter()
                .filter_map(|(k, v)| Some((lower(&k).ok()?, v)))
                .collect();
            commands.insert(name.clone(), command(&name, &fields));
            if let Some(subs) = fields.get("subcommands").and_then(|s| pairs(s)) {
                for (sub, sdoc) in subs {
                    let sub = lower(&sub)?;
                    let Some(sfields) = pairs(sdoc) else { continue };
                    let sfields: BTreeMap<String, &Reply> = sfields
                        .into_iter()
                        .filter_map(|(k, v)| Some((lower(&k).ok()?, v)))
                        .collect();
                    commands.insert(sub.clone(), command(&sub, &sfields));
                }
            }
        }
        // COMMAND INFO: [name, arity, flags, first, last, step, acl, tips, keyspecs, subcommands]
        let apply_info = |entry: &Reply, commands: &mut BTreeMap<String, Command>| {
            let Some(items) = entry.items() else { return };
            let (Some(name), Some(Reply::Integer(arity))) = (items.first(), items.get(1)) else {
                return;
            };
            let Some(name) = name
                .text()
                .map(|n| String::from_utf8_lossy(n).to_lowercase())
            else {
                return;
            };
            let arity = std::str::from_utf8(arity)
                .ok()
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let flags = items
                .get(2)
                .and_then(|f| f.items())
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.text())
                        .map(|x| String::from_utf8_lossy(x).to_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let c = commands.entry(name.clone()).or_insert_with(|| Command {
                name,
                arity: 0,
                args: Vec::new(),
                flags: BTreeSet::new(),
            });
            c.arity = arity;
            c.flags = flags;
        };
        for entry in info.items().ok_or("COMMAND INFO: not an array")? {
            apply_info(entry, &mut commands);
            if let Some(subs) = entry.items().and_then(|i| i.get(9)).and_then(|s| s.items()) {
                for sub in subs {
                    apply_info(sub, &mut commands);
                }
            }
        }
        if commands.len() < 100 {
            return Err(format!("only {} commands described", commands.len()));
        }
        Ok(Docs { commands })
    }

    /// The description of `name` (`get`, `client|setname`), case-insensitively.
    pub fn get(&self, name: &str) -> Option<&Command> {
        self.commands.get(&name.to_ascii_lowercase())
    }

    /// Whether Redis knows this request's command (and subcommand, for a container), looking
    /// names up the way Redis does: case-insensitively, the whole name (a NUL inside a name
    /// makes it another name).
    pub fn knows(&self, args: &[Vec<u8>]) -> bool {
        let Some(name) = args.first().and_then(|n| std::str::from_utf8(n).ok()) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        if !self.commands.contains_key(&name) || name.contains('|') {
            return false;
        }
        let prefix = format!("{name}|");
        let has_subs = self.commands.keys().any(|k| k.starts_with(&prefix));
        if !has_subs || args.len() < 2 {
            return true;
        }
        match std::str::from_utf8(&args[1]) {
            Ok(sub) => self
                .commands
                .contains_key(&format!("{prefix}{}", sub.to_ascii_lowercase())),
            Err(_) => false,
        }
    }
}

fn ask(conn: &mut Conn, args: &[&str]) -> Result<Reply, String> {
    let mut out = Vec::new();
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    multibulk(&args, &mut out);
    conn.write(&out);
    match conn.next(Duration::from_secs(10)) {
        Event::Frame(r) => Ok(r),
        other => Err(format!("{args:?}: {other:?}")),
    }
}

fn lower(r: &Reply) -> Result<String, String> {
    r.text()
        .map(|t| String::from_utf8_lossy(t).to_lowercase())
        .ok_or_else(|| format!("expected a name, got {r:?}"))
}

/// A map, or a flat `[k, v, k, v…]` array, as pairs.
fn pairs(r: &Reply) -> Option<Vec<(Reply, &Reply)>> {
    let items = match r {
        Reply::Map(v) | Reply::Array(v) => v,
        _ => return None,
    };
    Some(
        items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), &c[1]))
            .collect(),
    )
}

fn command(name: &str, fields: &BTreeMap<String, &Reply>) -> Command {
    Command {
        name: name.to_owned(),
        arity: 0,
        args: fields
            .get("arguments")
            .and_then(|a| a.items())
            .map(|a| a.iter().filter_map(arg).collect())
            .unwrap_or_default(),
        flags: BTreeSet::new(),
    }
}

fn arg(r: &Reply) -> Option<Arg> {
    let fields: BTreeMap<String, &Reply> = pairs(r)?
        .into_iter()
        .filter_map(|(k, v)| Some((lower(&k).ok()?, v)))
        .collect();
    let text = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.text())
            .map(|t| String::from_utf8_lossy(t).into_owned())
    };
    let kind = match text("type")?.as_str() {
        "key" => Kind::Key,
        "string" => Kind::String,
        "integer" => Kind::Integer,
        "double" => Kind::Double,
        "pattern" => Kind::Pattern,
        "unix-time" => Kind::UnixTime,
        "pure-token" => Kind::PureToken,
        "oneof" => Kind::OneOf,
        "block" => Kind::Block,
        _ => Kind::String,
    };
    let flags: BTreeSet<String> = fields
        .get("flags")
        .and_then(|f| f.items())
        .map(|f| {
            f.iter()
                .filter_map(|x| x.text())
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(Arg {
        name: text("name").unwrap_or_default(),
        kind,
        token: text("token"),
        optional: flags.contains("optional"),
        multiple: flags.contains("multiple"),
        multiple_token: flags.contains("multiple_token"),
        children: fields
            .get("arguments")
            .and_then(|a| a.items())
            .map(|a| a.iter().filter_map(arg).collect())
            .unwrap_or_default(),
    })
}
