//! The command table is the only place that knows command names: the proxy decides nothing
//! by matching a command name. This test reads the proxy's sources (outside `#[cfg(test)]`
//! modules and comments) and fails on any string literal that is a command name from the
//! table, except the commands redcloak itself sends to Redis.
//!
//! Run: `cargo test -p redcloak-proxy --test command_names`.

use std::collections::BTreeSet;
use std::path::Path;

/// Commands redcloak sends on its own behalf, and why.
const OWN: &[(&str, &str)] = &[
    ("AUTH", "authenticating its upstream connections"),
    ("SELECT", "restoring the database on a new connection"),
    ("HELLO", "restoring RESP3 on a new connection"),
    ("MULTI", "restoring an open transaction on a new connection"),
    (
        "PING",
        "health probes, and the barrier that keeps a local answer behind pub/sub messages",
    ),
    (
        "QUIT",
        "the barrier before a subscribed connection closes (Redis answers everything first)",
    ),
    ("DISCARD", "dropping a transaction redcloak aborted"),
    (
        "SET",
        "journaled writes and putting back an undecryptable value",
    ),
    ("MSET", "journaled writes"),
    ("DEL", "journaled deletes"),
    ("PEXPIREAT", "journaled expiries"),
    ("PERSIST", "journaled expiry removal"),
    ("LPUSH", "putting back an undecryptable list element"),
    (
        "EVAL",
        "putting back the old value GETSET / SET … GET replaced, only while the key holds what \
         they wrote",
    ),
    (
        "RPUSH",
        "putting back an undecryptable list element and rewriting a list (emulation)",
    ),
    (
        "LPOP",
        "an emulated LMOVE/RPOPLPUSH pops the element it moved (aes-gcm)",
    ),
    ("RPOP", "(the same, from the tail)"),
    ("LINDEX", "an emulated LMOVE reads the element it moves"),
    ("WATCH", "emulated commands read under WATCH"),
    ("UNWATCH", "an emulation that writes nothing"),
    ("EXEC", "emulated commands write in MULTI/EXEC"),
    ("GET", "emulated commands read strings"),
    ("HGET", "emulated commands read hash fields"),
    ("HSET", "emulated commands write hash fields"),
    ("LRANGE", "emulated commands read lists"),
    ("PEXPIRETIME", "a rewritten list keeps its expiry"),
    ("TYPE", "SORT reads a collection of any type"),
    ("SMEMBERS", "SORT reads a set"),
    ("ZRANGE", "SORT reads a sorted set"),
    (
        "COPY",
        "a transaction redcloak carries out copies the keys it writes",
    ),
    (
        "RENAME",
        "...and commits the copies; an emulated RENAME (aes-gcm) renames after re-binding",
    ),
    ("SCAN", "the scratch janitor looks for left-over copies"),
    ("COUNT", "(SCAN's COUNT option, for the janitor)"),
    ("UNLINK", "the janitor deletes left-over copies"),
    ("INFO", "the janitor finds the databases with keys"),
    ("TIME", "the janitor and scratch names use Redis's clock"),
    (
        "PUBSUB",
        "a script's PUBLISH is sent at commit; its reply counts subscribers now",
    ),
    ("NUMSUB", "(PUBSUB NUMSUB, for that count)"),
    (
        "HGETALL",
        "function libraries are read from their old hash, to move them (function_store)",
    ),
    (
        "FCALL_RO",
        "function libraries are read from redcloak's Redis function library",
    ),
    (
        "FUNCTION",
        "function libraries are written to redcloak's Redis function library",
    ),
    ("LOAD", "(FUNCTION LOAD REPLACE of that library)"),
    (
        "DELETE",
        "(FUNCTION DELETE of that library, when no library is left)",
    ),
    ("SADD", "putting back an undecryptable set member"),
    ("ZADD", "putting back an undecryptable sorted-set member"),
    ("LSET", "rewrap re-encrypts a list element in place"),
    ("SREM", "rewrap removes a member's old ciphertext"),
    (
        "ZREM",
        "rewrap removes a sorted-set member's old ciphertext",
    ),
    ("XRANGE", "rewrap reads a stream"),
    ("XINFO", "rewrap reads a stream's last ID and groups"),
    ("STREAM", "(XINFO STREAM, for rewrap)"),
    (
        "GROUPS",
        "(XINFO GROUPS: rewrap rebuilds a stream's consumer groups)",
    ),
    ("CONSUMERS", "(XINFO CONSUMERS, for rewrap)"),
    ("XPENDING", "rewrap reads a group's pending entries"),
    ("XGROUP", "rewrap recreates a rebuilt stream's groups"),
    ("CREATE", "(XGROUP CREATE, for rewrap)"),
    ("CREATECONSUMER", "(XGROUP CREATECONSUMER, for rewrap)"),
    (
        "XCLAIM",
        "rewrap gives pending entries back to their consumers",
    ),
    ("XADD", "rewrap rebuilds a stream"),
    ("XSETID", "rewrap restores a rebuilt stream's last ID"),
];

/// String literals in `code`, except option words compared with `words::is(arg, "WORD")`
/// (option words such as SET's `GET` or HELLO's `SETNAME` are not command names).
fn literals(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            let before = code[..i].trim_end();
            let option_word = before.ends_with("is(")
                || (before.ends_with(',')
                    && before
                        .rfind("is(")
                        .is_some_and(|at| !before[at..].contains(')')));
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && bytes[j] != b'"' {
                if bytes[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            if !option_word {
                found.push(code[start..j.min(code.len())].to_owned());
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    found
}

/// The source without `#[cfg(test)]` modules (which are last in each file) and comments.
fn production_code(source: &str) -> String {
    let cut = source.find("#[cfg(test)]").unwrap_or(source.len());
    source[..cut]
        .lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal would cut it: only cut when the line has no quote
            // before the comment.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_command_name_is_matched_outside_the_table() {
    let names: BTreeSet<&str> = redcloak_commands::table::all()
        .flat_map(|spec| std::iter::once(spec.name).chain(spec.subcommands.iter().map(|s| s.name)))
        .filter(|name| name.len() > 2)
        .collect();
    let own: BTreeSet<&str> = OWN.iter().map(|(n, _)| *n).collect();
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut offenders = Vec::new();
    let mut own_seen = BTreeSet::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for literal in literals(&production_code(&source)) {
            if !names.contains(literal.as_str()) {
                continue;
            }
            if own.contains(literal.as_str()) {
                own_seen.insert(literal.clone());
            } else {
                offenders.push(format!("{}: \"{literal}\"", file.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "command names matched outside the command table (put the fact in the table's row):\n{}",
        offenders.join("\n")
    );
    assert!(
        !files.is_empty() && !own_seen.is_empty(),
        "the scan saw the sources"
    );
}
