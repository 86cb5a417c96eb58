#!/usr/bin/env python3
"""Generates crates/redcloak-commands/src/table/keyspecs.rs from a real Redis's COMMAND output.

Usage: scripts/dev/gen-keyspecs.py [port]   (a plain redis-server on 127.0.0.1:<port>, default 6379)

The table is Redis 7's own description of where keys are (key specifications: begin_search +
find_keys, with per-key flags) plus the command flags redcloak uses. A test in
tests/tests/coverage.rs compares it with the live server, so regenerate it when Redis changes.
"""
import sys
import redis

port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
r = redis.Redis(port=port, decode_responses=True)
conn = r.connection_pool.get_connection("COMMAND")
conn.send_command("COMMAND")
raw = conn.read_response(disable_decoding=False)
r.connection_pool.release(conn)


def pairs(flat):
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


KEY_FLAGS = ["RO", "RW", "OW", "RM", "access", "update", "insert", "delete",
             "not_key", "incomplete", "variable_flags"]

rows = []


def add(info, parent=None):
    name = info[0].upper()
    full = f"{parent}|{name.split('|')[-1]}" if parent else name
    full = full.upper()
    flags = set(info[2])
    specs = []
    for spec in info[8] if len(info) > 8 else []:
        s = pairs(spec)
        kflags = [f for f in s.get("flags", [])]
        for f in kflags:
            assert f in KEY_FLAGS, f
        bs = pairs(s["begin_search"])
        if bs["type"] == "index":
            begin = f"Index({pairs(bs['spec'])['index']})"
        elif bs["type"] == "keyword":
            k = pairs(bs["spec"])
            begin = f'Keyword("{k["keyword"]}", {k["startfrom"]})'
        else:
            begin = "Begin::Unknown"
        fk = pairs(s["find_keys"])
        if fk["type"] == "range":
            k = pairs(fk["spec"])
            find = f"Range({k['lastkey']}, {k['keystep']}, {k['limit']})"
        elif fk["type"] == "keynum":
            k = pairs(fk["spec"])
            find = f"KeyNum({k['keynumidx']}, {k['firstkey']}, {k['keystep']})"
        else:
            find = "Find::Unknown"
        fl = " | ".join(f"K_{f.upper()}" for f in kflags) or "0"
        specs.append(f"KeySpec {{ flags: {fl}, begin: {begin}, find: {find} }}")
    rows.append((full, "write" in flags, "blocking" in flags or name == "WAIT",
                 "movablekeys" in flags, "no_mandatory_keys" in flags, "noscript" in flags, specs))
    if len(info) > 9:
        for sub in info[9]:
            add(sub, parent=name)


for info in raw:
    info = [x.decode() if isinstance(x, bytes) else x for x in info]
    def dec(v):
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, list):
            return [dec(x) for x in v]
        return v
    add(dec(info))

rows.sort(key=lambda r: r[0])
out = []
out.append("""//! Where the keys are in each command's arguments, and its flags: Redis 7.0's own key
//! specifications (`COMMAND` → begin_search / find_keys / key flags), generated from a real
//! server by `scripts/dev/gen-keyspecs.py`. Do not edit by hand: a test compares this table
//! with the live `COMMAND` of the Redis the tests run against. Subcommands are named
//! `CONTAINER|SUB`.
//!
//! The interpretation ([`super::keypos::find`]) follows Redis's key-spec rules; commands whose
//! specs Redis marks `incomplete` (SORT's STORE, MIGRATE's KEYS…) have a finder in `keypos.rs`.
#![allow(clippy::all, unused_imports)]

use super::keypos::{Begin::{self, Index, Keyword}, CommandKeys, Find::{self, KeyNum, Range}, KeySpec, K_ACCESS, K_DELETE, K_INCOMPLETE,
    K_INSERT, K_NOT_KEY, K_OW, K_RM, K_RO, K_RW, K_UPDATE, K_VARIABLE_FLAGS};

/// Sorted by name.
#[rustfmt::skip]
pub(crate) const KEY_SPECS: &[CommandKeys] = &[""")
for name, write, blocking, movable, optional, noscript, specs in rows:
    s = ", ".join(specs)
    out.append(f'    CommandKeys {{ name: "{name}", write: {str(write).lower()}, blocking: {str(blocking).lower()}, movable: {str(movable).lower()}, optional_keys: {str(optional).lower()}, noscript: {str(noscript).lower()}, specs: &[{s}] }},')
out.append("];")
print("\n".join(out))
