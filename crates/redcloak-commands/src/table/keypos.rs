//! Where a request's keys are: Redis 7.0's key specifications (`keyspecs.rs`, generated from
//! a real server) interpreted the way Redis interprets them, plus the few commands whose
//! specs Redis itself marks incomplete or variable (SORT's `STORE`, SET's `GET`, BITFIELD's
//! sub-operations), which get a finder of their own here.
//!
//! Used for the shadow cache (which keys a write may change), `COMMAND GETKEYS` answered by
//! redcloak, and the script engine's view of a script's declared keys.

use bytes::Bytes;

use crate::words;

/// Key flags (Redis's `CMD_KEY_*`), as bits.
pub const K_RO: u16 = 1 << 0;
/// Read-write.
pub const K_RW: u16 = 1 << 1;
/// Overwrite.
pub const K_OW: u16 = 1 << 2;
/// Remove.
pub const K_RM: u16 = 1 << 3;
/// The value is read (returned or used).
pub const K_ACCESS: u16 = 1 << 4;
/// The value is updated.
pub const K_UPDATE: u16 = 1 << 5;
/// Data is added.
pub const K_INSERT: u16 = 1 << 6;
/// Data is deleted.
pub const K_DELETE: u16 = 1 << 7;
/// Not really a key (e.g. a channel name).
pub const K_NOT_KEY: u16 = 1 << 8;
/// The spec may miss keys.
pub const K_INCOMPLETE: u16 = 1 << 9;
/// Flags depend on the arguments.
pub const K_VARIABLE_FLAGS: u16 = 1 << 10;

/// Names of the flags, in the order Redis prints them.
const FLAG_NAMES: [(u16, &str); 11] = [
    (K_RO, "RO"),
    (K_RW, "RW"),
    (K_OW, "OW"),
    (K_RM, "RM"),
    (K_ACCESS, "access"),
    (K_UPDATE, "update"),
    (K_INSERT, "insert"),
    (K_DELETE, "delete"),
    (K_NOT_KEY, "not_key"),
    (K_INCOMPLETE, "incomplete"),
    (K_VARIABLE_FLAGS, "variable_flags"),
];

/// The key flags' names, as `COMMAND GETKEYSANDFLAGS` lists them.
pub fn flag_names(flags: u16) -> impl Iterator<Item = &'static str> {
    FLAG_NAMES
        .iter()
        .filter(move |(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
}

/// Where a key spec starts looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// At this argument.
    Index(i32),
    /// After this keyword, searched from this index (negative: from the end, backwards).
    Keyword(&'static str, i32),
    /// Redis does not say (the command has its own key finder).
    Unknown,
}

/// How a key spec finds keys from where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Find {
    /// `(lastkey, keystep, limit)`: up to `lastkey` (relative; negative: from the end), every
    /// `keystep`-th argument; with a limit, a `1/limit` share of what remains.
    Range(i32, i32, i32),
    /// `(keynumidx, firstkey, keystep)`: the number of keys is at `keynumidx` (relative), the
    /// keys start at `firstkey` (relative).
    KeyNum(i32, i32, i32),
    /// Redis does not say.
    Unknown,
}

/// One key specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// `K_*` bits.
    pub flags: u16,
    /// Where the search begins.
    pub begin: Begin,
    /// How keys are found from there.
    pub find: Find,
}

/// A command's key specifications and the flags redcloak uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandKeys {
    /// `NAME` or `CONTAINER|SUB`, upper case.
    pub name: &'static str,
    /// The command may modify data.
    pub write: bool,
    /// The command may block (Redis's `blocking` flag, and `WAIT`).
    pub blocking: bool,
    /// Keys are found by parsing the arguments (numkeys, keywords…).
    pub movable: bool,
    /// Redis's `no_mandatory_keys`: the command may name no key at all (EVAL with 0 keys).
    pub optional_keys: bool,
    /// Redis's `noscript`: scripts may not call it.
    pub noscript: bool,
    /// Redis's key specifications, in order.
    pub specs: &'static [KeySpec],
}

/// The keys of one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyUse {
    /// `(argument index, K_* flags)` of each key, in Redis's order.
    pub keys: Vec<(usize, u16)>,
    /// The command may modify data.
    pub write: bool,
    /// The command may change keys that cannot be listed (FLUSHDB, SWAPDB, a write whose keys
    /// could not be found): a cache must forget everything.
    pub touches_all: bool,
    /// The command may block.
    pub blocking: bool,
    /// The keys could not be found the way Redis would find them (a syntax error Redis will
    /// report, or a command without key specifications).
    pub invalid: bool,
}

impl KeyUse {
    /// The argument indexes of the keys.
    pub fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.keys.iter().map(|&(i, _)| i)
    }
}

/// Finds the keys of `args` (the command name at 0) by `keys`' specifications.
pub fn find(keys: &CommandKeys, arity: i32, args: &[Bytes]) -> KeyUse {
    let mut found = KeyUse {
        write: keys.write,
        blocking: keys.blocking,
        ..KeyUse::default()
    };
    if let Some(custom) = CUSTOM.iter().find(|c| c.name == keys.name) {
        (custom.find)(args, &mut found);
    } else if by_specs(keys.specs, arity, args, &mut found.keys).is_err() {
        found.keys.clear();
        found.invalid = true;
    }
    // A write that names no key we can see may change anything (FLUSHDB, SWAPDB…).
    found.touches_all = keys.write && (found.keys.is_empty() || found.invalid);
    found
}

/// Redis's `getKeysUsingKeySpecs` (without `RETURN_PARTIAL`): `Err` when a spec does not
/// fit the arguments (Redis then reports a syntax or arity error itself).
fn by_specs(
    specs: &[KeySpec],
    arity: i32,
    args: &[Bytes],
    out: &mut Vec<(usize, u16)>,
) -> Result<(), ()> {
    let argc = args.len() as i64;
    for spec in specs {
        if spec.flags & K_NOT_KEY != 0 {
            continue;
        }
        let mut first: i64 = match spec.begin {
            Begin::Index(i) => i64::from(i),
            Begin::Keyword(word, from) => {
                let from = i64::from(from);
                let (start, end) = if from > 0 {
                    (from, argc - 1)
                } else {
                    (argc + from, 1)
                };
                let mut i = start;
                let mut found = 0;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if words::is(&args[i as usize], word) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue; // the keyword is optional: no keys from this spec
                }
                found
            }
            Begin::Unknown => return Err(()),
        };
        let (last, step) = match spec.find {
            Find::Range(lastkey, step, limit) => {
                let (lastkey, limit) = (i64::from(lastkey), i64::from(limit));
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, i64::from(step))
            }
            Find::KeyNum(idx, firstkey, step) => {
                let at = first + i64::from(idx);
                if i64::from(idx) >= argc || at >= argc {
                    return Err(());
                }
                let n = words::int(&args[at as usize])
                    .filter(|&n| n >= 0)
                    .ok_or(())?;
                first += i64::from(firstkey);
                // The client's numkeys can be up to i64::MAX: no key can be that far.
                (first.checked_add(n - 1).ok_or(())?, i64::from(step))
            }
            Find::Unknown => return Err(()),
        };
        if last >= argc || last < first || first >= argc {
            return Err(());
        }
        let step = step.max(1);
        let mut i = first;
        while i <= last {
            if i >= argc || i < first {
                if arity < 0 {
                    i += step;
                    continue;
                }
                return Err(());
            }
            out.push((i as usize, spec.flags));
            i += step;
        }
        if spec.flags & K_INCOMPLETE != 0 {
            return Err(());
        }
    }
    Ok(())
}

/// Commands whose keys (or key flags) Redis finds with code of its own rather than with key
/// specifications.
struct Custom {
    name: &'static str,
    find: fn(&[Bytes], &mut KeyUse),
}

const CUSTOM: &[Custom] = &[
    Custom {
        name: "SORT",
        find: sort_keys,
    },
    Custom {
        name: "SORT_RO",
        find: sort_keys,
    },
    Custom {
        name: "MIGRATE",
        find: migrate_keys,
    },
    Custom {
        name: "SET",
        find: set_keys,
    },
    Custom {
        name: "BITFIELD",
        find: bitfield_keys,
    },
];

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern …] [ASC|DESC] [ALPHA] [STORE dest]`
/// (Redis's `sortGetKeys`; BY/GET patterns are not keys).
fn sort_keys(args: &[Bytes], out: &mut KeyUse) {
    if args.len() < 2 {
        out.invalid = true;
        return;
    }
    out.keys.push((1, K_RO | K_ACCESS));
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let skip = if words::is(&args[i], "limit") {
            2
        } else if words::is(&args[i], "get") || words::is(&args[i], "by") {
            1
        } else if words::is(&args[i], "store") {
            store = Some(i + 1);
            1
        } else {
            0
        };
        i += skip + 1;
    }
    if let Some(at) = store.filter(|&at| at < args.len()) {
        out.keys.push((at, K_OW | K_UPDATE));
    }
}

/// `MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS k …]`,
/// as Redis's `migrateGetKeys` reads it: `KEYS` is looked for whatever the key argument is,
/// and `KEYS` with a non-empty key argument names no key (Redis: "Invalid arguments").
fn migrate_keys(args: &[Bytes], out: &mut KeyUse) {
    let mut keys_at = None;
    let mut i = 6;
    while i < args.len() {
        if words::is(&args[i], "keys") {
            if args.get(3).is_some_and(|k| !k.is_empty()) {
                out.invalid = true;
                return;
            }
            keys_at = Some(i + 1);
            break;
        } else if words::is(&args[i], "auth") {
            i += 1;
        } else if words::is(&args[i], "auth2") {
            i += 2;
        }
        i += 1;
    }
    match keys_at {
        Some(at) => out
            .keys
            .extend((at..args.len()).map(|i| (i, K_RW | K_ACCESS | K_DELETE))),
        None if args.len() > 3 => out.keys.push((3, K_RW | K_ACCESS | K_DELETE)),
        None => out.invalid = true,
    }
}

/// `SET key value … [GET]`: the key is read too when `GET` is given (Redis's `setGetKeys`).
fn set_keys(args: &[Bytes], out: &mut KeyUse) {
    if args.len() < 3 {
        out.invalid = true;
        return;
    }
    let get = args[3..].iter().any(|a| words::is(a, "get"));
    let flags = if get {
        K_RW | K_ACCESS | K_UPDATE
    } else {
        K_OW | K_UPDATE
    };
    out.keys.push((1, flags));
}

/// `BITFIELD key [GET …] [SET …] [INCRBY …]`: read-only when it only GETs.
fn bitfield_keys(args: &[Bytes], out: &mut KeyUse) {
    if args.len() < 2 {
        out.invalid = true;
        return;
    }
    let writes = args[2..]
        .iter()
        .any(|a| words::is(a, "set") || words::is(a, "incrby"));
    let flags = if writes {
        K_RW | K_ACCESS | K_UPDATE
    } else {
        K_RO | K_ACCESS
    };
    out.keys.push((1, flags));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn keys_of(s: &str) -> Vec<usize> {
        let a = args(s);
        let name = a[0].to_ascii_uppercase();
        let ks = super::super::keyspecs::KEY_SPECS
            .iter()
            .find(|k| k.name.as_bytes() == &name[..])
            .unwrap();
        find(ks, -2, &a).positions().collect()
    }

    #[test]
    fn specs_are_interpreted_like_redis() {
        assert_eq!(keys_of("GET k"), vec![1]);
        assert_eq!(keys_of("MSET a 1 b 2"), vec![1, 3]);
        assert_eq!(keys_of("DEL a b c"), vec![1, 2, 3]);
        assert_eq!(keys_of("BLPOP a b 0"), vec![1, 2]);
        assert_eq!(keys_of("XREAD COUNT 1 STREAMS s1 s2 0 0"), vec![4, 5]);
        assert_eq!(keys_of("XREAD streams s1 0"), vec![2]);
        assert_eq!(keys_of("BLMPOP 0 2 a b LEFT"), vec![3, 4]);
        assert_eq!(keys_of("LMPOP 1 a LEFT"), vec![2]);
        assert_eq!(keys_of("ZUNIONSTORE d 2 a b"), vec![1, 3, 4]);
        assert_eq!(keys_of("EVAL s 2 a b x"), vec![3, 4]);
        assert_eq!(keys_of("GEORADIUS g 0 0 1 km STORE d"), vec![1, 7]);
        assert_eq!(keys_of("SORT l BY w_* GET o_* STORE d"), vec![1, 7]);
        assert_eq!(keys_of("SORT l LIMIT 0 1 store d"), vec![1, 6]);
        assert_eq!(keys_of("RENAME a b"), vec![1, 2]);
        assert!(keys_of("FLUSHDB").is_empty());
    }

    #[test]
    fn migrate_keys_like_migrate_get_keys() {
        let mig = |s: &str| {
            let mut a = args(s);
            for arg in &mut a {
                if &arg[..] == b"''" {
                    *arg = Bytes::new();
                }
            }
            let mut out = KeyUse::default();
            migrate_keys(&a, &mut out);
            (out.positions().collect::<Vec<_>>(), out.invalid)
        };
        assert_eq!(mig("MIGRATE h 1 k 0 5"), (vec![3], false));
        assert_eq!(mig("MIGRATE h 1 '' 0 5 COPY KEYS a b"), (vec![8, 9], false));
        assert_eq!(mig("MIGRATE h 1 '' 0 5 AUTH keys KEYS a"), (vec![9], false));
        assert_eq!(
            mig("MIGRATE h 1 '' 0 5 AUTH2 u keys keys\0x a"),
            (vec![10], false)
        );
        // KEYS with a key argument: no keys, as in Redis.
        assert_eq!(mig("MIGRATE h 1 k 0 5 REPLACE keys a b"), (vec![], true));
        assert_eq!(mig("MIGRATE h 1 '' 0 5 KEYS"), (vec![], false));
    }

    #[test]
    fn keywords_match_like_strcasecmp() {
        assert_eq!(keys_of("XREAD streams\0x s1 0"), vec![2]);
    }

    #[test]
    fn bad_numkeys_is_invalid() {
        let a = args("LMPOP x a LEFT");
        let ks = super::super::keyspecs::KEY_SPECS
            .iter()
            .find(|k| k.name == "LMPOP")
            .unwrap();
        let found = find(ks, -4, &a);
        assert!(found.invalid && found.touches_all);
    }

    /// Found by the `encode_request` fuzz target (then in `table::keys_of`): a numkeys near
    /// i64::MAX overflowed `first + numkeys`, a panic with overflow checks.
    #[test]
    fn numkeys_at_the_integer_limits_is_invalid_not_a_panic() {
        let commands = [
            "LMPOP",
            "BLMPOP 0",
            "ZMPOP",
            "BZMPOP 0",
            "SINTERCARD",
            "ZINTERCARD",
            "ZDIFF",
            "ZINTER",
            "ZUNION",
            "ZDIFFSTORE d",
            "ZINTERSTORE d",
            "ZUNIONSTORE d",
            "EVAL s",
            "EVALSHA s",
            "FCALL f",
            "FCALL_RO f",
            "EVAL_RO s",
        ];
        let numkeys = [
            "9223372036854775807",
            "9223372036854775806",
            "9223372036854775808",
            "18446744073709551615",
            "-9223372036854775808",
        ];
        for c in commands {
            for n in numkeys {
                let a = args(&format!("{c} {n} k LEFT"));
                let name = a[0].to_ascii_uppercase();
                let ks = super::super::keyspecs::KEY_SPECS
                    .iter()
                    .find(|k| k.name.as_bytes() == &name[..])
                    .unwrap_or_else(|| panic!("{c}: no key specs"));
                let found = find(ks, -3, &a);
                assert!(found.invalid && found.keys.is_empty(), "{c} {n}: {found:?}");
            }
        }
    }

    #[test]
    fn flags_print_in_redis_order() {
        assert_eq!(
            flag_names(K_RW | K_ACCESS | K_DELETE).collect::<Vec<_>>(),
            vec!["RW", "access", "delete"]
        );
    }
}
