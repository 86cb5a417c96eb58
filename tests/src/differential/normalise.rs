//! Normalisations: the replies that differ between *any* two Redis servers given the same
//! commands, and how they are compared instead. Every rule here is a blind spot of the
//! differential test, so the list is short and each entry says why it exists. Everything not
//! listed is compared byte for byte.
//!
//! Two settings make further rules unnecessary; both servers run with them
//! (`REDIS_ARGS`): `hash-max-listpack-value 8192` (ciphertext is longer than plaintext: without
//! it Redis would keep redcloak's hashes as hash tables, whose iteration order depends on a
//! per-process random seed, and the plain Redis's as listpacks, in insertion order) and
//! `stream-node-max-bytes 0` (stream nodes then split by entry count only, so approximate
//! trimming `MAXLEN ~` removes the same entries whatever the value sizes). `hz 500` only makes
//! blocking timeouts end on time (Redis checks them in its cron, every 100 ms by default),
//! which keeps the run fast.

use super::docs::Docs;
use super::gen::Cmd;
use super::wire::Reply;

/// Arguments both Redis servers are started with (see the module documentation).
pub const REDIS_ARGS: &[&str] = &[
    "--hash-max-listpack-value",
    "8192",
    "--stream-node-max-bytes",
    "0",
    "--hz",
    "500",
];

/// How a command's reply is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Byte for byte.
    Exact,
    /// Types and lengths only: the content is per-server state (clock, client ids, memory,
    /// statistics, random output) or the size of what Redis stores, which is the ciphertext's.
    Shape,
    /// The type of the reply only: per-server statistics whose very length varies (which
    /// commands ran, how many latency buckets, memory sections).
    Kind,
    /// Every list at every depth in any order: COMMAND's replies come from Redis's command
    /// dictionary (and each command's subcommand dictionary), in per-process random order.
    DeepUnordered,
    /// The top-level elements in any order: Redis lists them from a hash table whose order
    /// depends on a per-process random seed.
    Unordered,
    /// SCAN-family: `[cursor, items]`; items (HSCAN, ZSCAN: pairs) in any order; if either
    /// server did not finish in one call (cursor not 0), only the shape (cursors are
    /// hash-table positions).
    Scan {
        /// Items come in pairs.
        pairs: bool,
    },
    /// Integers within a tolerance (they count time, and the two servers run the same command
    /// a few milliseconds apart): seconds ±1, milliseconds ±2000.
    Clock(i64),
    /// HELLO: the connection `id` differs (each server numbers its own clients).
    Hello,
    /// Random samples (HRANDFIELD, SRANDMEMBER, SPOP, ZRANDMEMBER): equal as multisets when the
    /// sample is the whole collection; otherwise same shape and length, and no value on
    /// redcloak's side still encrypted.
    Sample,
    /// Streams' consumer bookkeeping: the named time fields (`idle`, `seen-time`,
    /// `active-time`, `inactive`) and pending entries' delivery times, ±2000 ms.
    StreamTimes,
    /// SORT / SORT_RO with a `BY` pattern that is looked up (it has a `*`): elements whose
    /// weights are equal — all of them when the pattern names no existing key — stay in the
    /// order the sort found them, the collection's iteration order, which for a set is its
    /// hash table's (per-process random seed). So the groups of `group` elements (one per
    /// `GET`, at least one) are compared in any order; with a `LIMIT`, which elements fall
    /// inside depends on that order too, and only the shape is compared unless the groups
    /// agree anyway (a value still encrypted still differs). This relies on the generator:
    /// its BY patterns (`k:*`, `*`, `f*`, `nomatch*`…) with its elements (markers, numbers)
    /// never name one of its keys, so every element ties; the order by real weights (DESC,
    /// numbers, ALPHA) is not checked here but by redcloak's SORT tests
    /// (`emulate/sort.rs`, `sort_of_every_type_answers_like_redis`).
    SortTies {
        /// Reply elements per sorted element.
        group: usize,
        /// A `LIMIT` was given.
        limit: bool,
    },
}

/// Commands whose reply is a set's members, in the set's order: a hash table's when the set is
/// large or not all integers (per-process random between two Redis servers); the order of the
/// ciphertexts for redcloak's members otherwise (docs/commands.md, sets).
const SET_REPLIES: &[&str] = &["SMEMBERS", "SINTER", "SUNION", "SDIFF"];

/// Whether a script body does nothing but return one of [`SET_REPLIES`]'s replies
/// (`return redis.call('SMEMBERS', …)`): its reply is that command's, and compared as it is.
/// A script that does anything else with a set's members (indexes them, concatenates them)
/// is compared exactly.
fn returns_a_set(body: &[u8]) -> bool {
    let body = String::from_utf8_lossy(body);
    let body = body.trim();
    let Some(call) = ["return redis.call('", "return redis.pcall('"]
        .iter()
        .find_map(|p| body.strip_prefix(p))
    else {
        return false;
    };
    SET_REPLIES.iter().any(|name| {
        call.get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && call[name.len()..].starts_with("',")
            && call.ends_with(')')
            && !call.contains(['(', ';', '\n'])
            && !call[..call.len() - 1].contains(')')
    })
}

/// EVAL / EVALSHA (and `_RO`) of a script that only returns a set's members ([`returns_a_set`];
/// for EVALSHA, the SHA1 of such a body).
fn script_returns_a_set(cmd: &Cmd, display: &str) -> bool {
    let Some(script) = cmd.args.get(1) else {
        return false;
    };
    match display {
        "EVAL" | "EVAL_RO" => returns_a_set(script),
        "EVALSHA" | "EVALSHA_RO" => super::gen::script_bodies()
            .filter(|body| returns_a_set(body.as_bytes()))
            .any(|body| {
                use sha1::Digest;
                let sha: String = sha1::Sha1::digest(body.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                script.eq_ignore_ascii_case(sha.as_bytes())
            }),
        _ => false,
    }
}

/// [`Rule::SortTies`] for a SORT / SORT_RO whose `BY` pattern is looked up (Redis sorts
/// without lookups only when the pattern has no `*`).
fn sort_ties(cmd: &Cmd) -> Option<Rule> {
    let args = cmd.args.get(2..)?;
    let is = |a: &[u8], w: &str| super::gen::strcasecmp_eq(a, w);
    let (mut by, mut gets, mut limit) = (false, 0, false);
    let mut i = 0;
    while i < args.len() {
        match () {
            _ if is(&args[i], "BY") && i + 1 < args.len() => {
                // `strchr(pattern, '*')`: a C string, up to the first NUL.
                by = args[i + 1]
                    .split(|&b| b == 0)
                    .next()
                    .is_some_and(|p| p.contains(&b'*'));
                i += 2;
            }
            _ if is(&args[i], "GET") && i + 1 < args.len() => {
                gets += 1;
                i += 2;
            }
            _ if is(&args[i], "LIMIT") && i + 2 < args.len() => {
                limit = true;
                i += 3;
            }
            _ if is(&args[i], "STORE") => i += 2,
            _ => i += 1,
        }
    }
    by.then_some(Rule::SortTies {
        group: gets.max(1),
        limit,
    })
}

fn rule(cmd: &Cmd, docs: &Docs) -> Rule {
    let display = cmd.display(docs);
    if script_returns_a_set(cmd, &display) {
        return Rule::Unordered;
    }
    if display == "SORT" || display == "SORT_RO" {
        if let Some(rule) = sort_ties(cmd) {
            return rule;
        }
    }
    match display.as_str() {
        "TIME" | "LASTSAVE" | "CLIENT ID" | "ACL GENPASS" | "RANDOMKEY" | "DUMP"
        | "FUNCTION DUMP" | "OBJECT REFCOUNT" | "SLOWLOG LEN" => Rule::Shape,
        "INFO" | "LOLWUT" | "CLIENT INFO" | "CLIENT LIST" | "SLOWLOG GET" => Rule::Kind,
        d if d.starts_with("MEMORY ") || d.starts_with("LATENCY ") => Rule::Kind,
        "KEYS" | "PUBSUB CHANNELS" | "PUBSUB SHARDCHANNELS" | "ACL CAT" => Rule::Unordered,
        d if SET_REPLIES.contains(&d) => Rule::Unordered,
        // FUNCTION LIST: a library's functions are kept in a dictionary (two Redis servers
        // list them in different orders).
        "COMMAND" | "COMMAND LIST" | "COMMAND DOCS" | "COMMAND INFO" | "FUNCTION LIST" => {
            Rule::DeepUnordered
        }
        "SCAN" | "SSCAN" => Rule::Scan { pairs: false },
        "HSCAN" | "ZSCAN" => Rule::Scan { pairs: true },
        "TTL" | "EXPIRETIME" | "OBJECT IDLETIME" => Rule::Clock(1),
        "PTTL" | "PEXPIRETIME" => Rule::Clock(2000),
        "HELLO" => Rule::Hello,
        "HRANDFIELD" | "SRANDMEMBER" | "SPOP" | "ZRANDMEMBER" => Rule::Sample,
        "XPENDING" | "XINFO CONSUMERS" | "XINFO STREAM" => Rule::StreamTimes,
        _ => Rule::Exact,
    }
}

/// Brings the two replies to one command to a comparable form (in place). `queued` are the
/// commands an EXEC ran, to compare each element of its reply by its own command's rule.
pub fn reconcile(
    docs: &Docs,
    cmd: &Cmd,
    queued: Option<&[Cmd]>,
    redcloak: &mut Reply,
    redis: &mut Reply,
) {
    if let (Some(queued), Reply::Array(a), Reply::Array(b)) = (queued, &mut *redcloak, &mut *redis)
    {
        if a.len() == queued.len() && b.len() == queued.len() {
            for ((q, x), y) in queued.iter().zip(a.iter_mut()).zip(b.iter_mut()) {
                reconcile(docs, q, None, x, y);
            }
        }
        return;
    }
    // Errors are compared as they are, whatever the command.
    if redcloak.error_text().is_some() || redis.error_text().is_some() {
        return;
    }
    let display = cmd.display(docs);
    match rule(cmd, docs) {
        Rule::Exact => {}
        Rule::Shape => {
            shape(redcloak);
            shape(redis);
        }
        Rule::Kind => {
            kind(redcloak);
            kind(redis);
        }
        Rule::Unordered => {
            sort_top(redcloak);
            sort_top(redis);
        }
        Rule::DeepUnordered => {
            sort_deep(redcloak);
            sort_deep(redis);
        }
        // A cursor other than 0 is a hash-table position, which holds other items in each
        // server (per-process hash seed; for redcloak's collections, the positions of
        // ciphertexts); compact encodings (listpacks, intsets) ignore it and return
        // everything, which is still compared. The cursor is SCAN's first argument and the
        // others' second.
        Rule::Scan { pairs }
            if cmd
                .args
                .get(if display == "SCAN" { 1 } else { 2 })
                .is_some_and(|c| c != b"0") =>
        {
            let (mut x, mut y) = (redcloak.clone(), redis.clone());
            scan(&mut x, &mut y, pairs);
            if x == y {
                (*redcloak, *redis) = (x, y);
            } else {
                kind_unless_encrypted(redcloak, redis);
            }
        }
        Rule::Scan { pairs } => scan(redcloak, redis, pairs),
        Rule::Clock(tol) => tolerate(redcloak, redis, tol),
        Rule::Hello => {
            hide_field(redcloak, b"id");
            hide_field(redis, b"id");
        }
        Rule::Sample => sample(redcloak, redis),
        Rule::StreamTimes => stream_times(redcloak, redis),
        Rule::SortTies { group, limit } => sort_ties_compare(redcloak, redis, group, limit),
    }
}

fn sort_groups(r: &mut Reply, group: usize) {
    if let Reply::Array(v) = unwrap_attr(r) {
        if v.len() % group == 0 {
            let mut groups: Vec<Vec<Reply>> = v.chunks(group).map(<[Reply]>::to_vec).collect();
            groups.sort();
            *v = groups.concat();
        }
    }
}

fn sort_ties_compare(a: &mut Reply, b: &mut Reply, group: usize, limit: bool) {
    let (mut sa, mut sb) = (a.clone(), b.clone());
    sort_groups(&mut sa, group);
    sort_groups(&mut sb, group);
    if sa == sb {
        (*a, *b) = (sa, sb);
    } else if limit {
        shape_unless_encrypted(a, b);
    }
}

fn unwrap_attr(r: &mut Reply) -> &mut Reply {
    match r {
        Reply::Attribute(_, inner) => unwrap_attr(inner),
        other => other,
    }
}

/// Replaces every leaf by its type, keeping aggregate lengths.
fn shape(r: &mut Reply) {
    let r = unwrap_attr(r);
    match r {
        Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => v.iter_mut().for_each(shape),
        Reply::Map(v) => {
            // Map contents are statistics keyed by name: keep the count only.
            let n = v.len();
            *r = Reply::Map(vec![Reply::Normalised("entry"); n]);
        }
        Reply::Bulk(_) | Reply::Verbatim(_) | Reply::Simple(_) => *r = Reply::Normalised("text"),
        Reply::Integer(_) | Reply::Double(_) | Reply::BigNumber(_) => {
            *r = Reply::Normalised("number")
        }
        Reply::NullBulk | Reply::NullArray | Reply::Null => *r = Reply::Normalised("nil"),
        _ => {}
    }
}

fn kind(r: &mut Reply) {
    *r = match unwrap_attr(r) {
        Reply::Array(_) => Reply::Normalised("array"),
        Reply::Map(_) => Reply::Normalised("map"),
        Reply::Set(_) => Reply::Normalised("set"),
        Reply::Bulk(_) | Reply::Verbatim(_) | Reply::Simple(_) => Reply::Normalised("text"),
        Reply::Integer(_) => Reply::Normalised("integer"),
        Reply::NullBulk | Reply::NullArray | Reply::Null => Reply::Normalised("nil"),
        other => other.clone(),
    };
}

fn sort_deep(r: &mut Reply) {
    if let Reply::Array(v) | Reply::Set(v) | Reply::Map(v) = unwrap_attr(r) {
        v.iter_mut().for_each(sort_deep);
        v.sort();
    }
}

fn sort_top(r: &mut Reply) {
    match unwrap_attr(r) {
        Reply::Array(v) | Reply::Set(v) => v.sort(),
        Reply::Map(v) => {
            let mut pairs: Vec<(Reply, Reply)> = v
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect();
            pairs.sort();
            *v = pairs.into_iter().flat_map(|(a, b)| [a, b]).collect();
        }
        _ => {}
    }
}

fn scan(a: &mut Reply, b: &mut Reply, pairs: bool) {
    let done = |r: &Reply| match r {
        Reply::Array(v) => v.first() == Some(&Reply::Bulk(b"0".to_vec())),
        _ => false,
    };
    if done(a) && done(b) {
        for r in [a, b] {
            if let Reply::Array(v) = r {
                if let Some(items) = v.get_mut(1) {
                    sort_items(items, pairs);
                }
            }
        }
    } else {
        // Not finished in one call on one side: how far each got depends on the table.
        kind_unless_encrypted(a, b);
    }
}

/// Whether a value on redcloak's side came back still encrypted (a Fernet token).
fn still_encrypted(a: &Reply) -> bool {
    let mut encrypted = false;
    a.for_each_bytes(&mut |bytes| encrypted |= bytes.starts_with(b"gAAAAA"));
    encrypted
}

/// Compares only the kinds, unless a value on redcloak's side (`a`) came back still
/// encrypted: then they are kept different.
fn kind_unless_encrypted(a: &mut Reply, b: &mut Reply) {
    let encrypted = still_encrypted(a);
    kind(a);
    kind(b);
    if encrypted {
        *a = Reply::Normalised("a value came back still encrypted");
    }
}

/// SCAN returns keys; HSCAN/ZSCAN return `[field, value, …]`: pairs stay together.
fn sort_items(r: &mut Reply, pairs: bool) {
    if let Reply::Array(v) = r {
        if pairs && v.len() % 2 == 0 {
            let mut pairs: Vec<(Reply, Reply)> =
                v.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
            pairs.sort();
            *v = pairs.into_iter().flat_map(|(a, b)| [a, b]).collect();
        } else {
            v.sort();
        }
    }
}

fn int(r: &Reply) -> Option<i64> {
    match r {
        Reply::Integer(s) => std::str::from_utf8(s).ok()?.parse().ok(),
        _ => None,
    }
}

/// Where both are integers within `tol` of each other, makes redcloak's equal to Redis's.
fn tolerate(a: &mut Reply, b: &Reply, tol: i64) {
    match (a, b) {
        (x @ Reply::Integer(_), y @ Reply::Integer(_)) => {
            if let (Some(p), Some(q)) = (int(x), int(y)) {
                // Negative values are states (-1 no expiry, -2 no key): exact.
                if p >= 0 && q >= 0 && (p - q).abs() <= tol {
                    *x = y.clone();
                }
            }
        }
        (Reply::Array(x), Reply::Array(y)) if x.len() == y.len() => {
            for (p, q) in x.iter_mut().zip(y) {
                tolerate(p, q, tol);
            }
        }
        _ => {}
    }
}

fn hide_field(r: &mut Reply, name: &[u8]) {
    if let Reply::Map(v) | Reply::Array(v) = unwrap_attr(r) {
        let mut i = 0;
        while i + 1 < v.len() {
            if v[i].text() == Some(name) {
                v[i + 1] = Reply::Normalised("id");
            }
            i += 2;
        }
    }
}

fn sample(a: &mut Reply, b: &mut Reply) {
    let mut sa = a.clone();
    let mut sb = b.clone();
    sort_top(&mut sa);
    sort_top(&mut sb);
    if sa == sb {
        *a = sa;
        *b = sb;
        return;
    }
    shape_unless_encrypted(a, b);
}

/// Compares only the shapes, unless a value on redcloak's side (`a`) came back still
/// encrypted: then they are kept different.
fn shape_unless_encrypted(a: &mut Reply, b: &mut Reply) {
    let encrypted = still_encrypted(a);
    shape(a);
    shape(b);
    if encrypted {
        *a = Reply::Normalised("a value came back still encrypted");
    }
}

const TIME_FIELDS: &[&[u8]] = &[b"idle", b"seen-time", b"active-time", b"inactive"];

fn stream_times(a: &mut Reply, b: &Reply) {
    match (a, b) {
        (Reply::Map(x), Reply::Map(y)) | (Reply::Array(x), Reply::Array(y))
            if x.len() == y.len() =>
        {
            // Named time fields in flat or map form.
            let mut i = 0;
            while i < x.len() {
                let named = x[i].text().is_some_and(|t| TIME_FIELDS.contains(&t)) && x[i] == y[i];
                if named && i + 1 < x.len() {
                    tolerate(&mut x[i + 1], &y[i + 1], 2000);
                    i += 2;
                    continue;
                }
                stream_times(&mut x[i], &y[i]);
                i += 1;
            }
            // Pending entries: [id, consumer, idle, count] (XPENDING), [id, time, count]
            // (consumer PEL of XINFO STREAM FULL), [id, consumer, time, count] (group PEL).
            let is_id = |r: &Reply| {
                r.text()
                    .is_some_and(|t| t.contains(&b'-') && t[0].is_ascii_digit())
            };
            if (x.len() == 3 || x.len() == 4) && is_id(&x[0]) {
                let at = x.len() - 2;
                tolerate(&mut x[at], &y[at], 2000);
            }
        }
        _ => {}
    }
}

/// A bare `UNSUBSCRIBE` (`PUNSUBSCRIBE`, `SUNSUBSCRIBE`) confirms each subscription in the
/// order of Redis's channel dictionary (per-process random seed), with the counts going down:
/// the confirmations are sorted by name and the counts kept in the order they came.
pub fn bare_unsubscribe(events: &mut [super::wire::Event]) {
    use super::wire::Event;
    let counts: Vec<Reply> = events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(Reply::Array(v) | Reply::Push(v)) if v.len() == 3 => Some(v[2].clone()),
            _ => None,
        })
        .collect();
    if counts.len() != events.len() {
        return;
    }
    events.sort_by_key(|e| match e {
        Event::Frame(Reply::Array(v) | Reply::Push(v)) => Some(v[1].clone()),
        _ => None,
    });
    for (e, c) in events.iter_mut().zip(counts) {
        if let Event::Frame(Reply::Array(v) | Reply::Push(v)) = e {
            v[2] = c;
        }
    }
}

/// Whether an error reply is a redcloak refusal (allowed: the command cannot keep values
/// encrypted, or would bypass the secured Redis). Other redcloak errors (a value that does not
/// decrypt, a malformed reply, a lost connection) are not refusals: with Redis healthy and
/// every value written through redcloak they are bugs.
pub fn is_refusal(reply: &Reply) -> bool {
    let Some(text) = reply.error_text() else {
        return false;
    };
    let text = String::from_utf8_lossy(text);
    (text.starts_with("ERR redcloak:") || text.starts_with("TRYAGAIN redcloak:"))
        && (text.contains("is not supported")
            || text.contains("accepts only payloads that DUMP returned")
            // REDCLOAK_VALUE_FORMAT=aes-gcm: moves to where a bound value would not open.
            || text.contains("is refused while REDCLOAK_VALUE_FORMAT=aes-gcm")
            || text.contains("of a payload that DUMP returned for another key or database")
            // A HyperLogLog's raw bytes (GET, GETRANGE, BITCOUNT… of a PFADD key) are Redis's
            // registers, which redcloak never returns (docs/security.md, members).
            || text.contains("whose raw bytes redcloak never returns"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(n: i64) -> Reply {
        Reply::Integer(n.to_string().into_bytes())
    }

    #[test]
    fn tolerance_keeps_states_exact() {
        let mut a = i(99);
        tolerate(&mut a, &i(100), 1);
        assert_eq!(a, i(100));
        let mut a = i(-1);
        tolerate(&mut a, &i(0), 1);
        assert_eq!(a, i(-1));
    }

    #[test]
    fn only_scripts_that_just_return_a_set_are_unordered() {
        assert!(returns_a_set(b"return redis.call('SMEMBERS', KEYS[1])"));
        assert!(returns_a_set(
            b" return redis.pcall('sunion', KEYS[1], KEYS[2]) "
        ));
        assert!(!returns_a_set(
            b"return redis.call('LRANGE', KEYS[1], 0, -1)"
        ));
        assert!(!returns_a_set(b"return redis.call('SMEMBERS', KEYS[1])[1]"));
        assert!(!returns_a_set(
            b"return redis.call('SMEMBERS', KEYS[1]) .. redis.call('GET', KEYS[2])"
        ));
        assert!(!returns_a_set(b"return redis.call('SMEMBERSX', KEYS[1])"));
        assert!(!returns_a_set(b"return redis.call('SMEMBERS', f(KEYS[1]))"));
        assert!(!returns_a_set(
            b"redis.call('SADD', KEYS[1], 'x'); return redis.call('SMEMBERS', KEYS[1])"
        ));
    }

    fn bulks(items: &[&str]) -> Reply {
        Reply::Array(
            items
                .iter()
                .map(|s| Reply::Bulk(s.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// Reconciles `a` (redcloak) and `b` (Redis) for `cmd`; whether they then compare equal.
    fn agree(cmd: &[&str], a: Reply, b: Reply) -> bool {
        let (mut a, mut b) = (a, b);
        reconcile(&Docs::default(), &Cmd::new(cmd), None, &mut a, &mut b);
        a == b
    }

    #[test]
    fn sort_by_a_looked_up_pattern_compares_ties_in_any_order() {
        let sort = ["SORT_RO", "k", "by", "nomatch*", "alpha"];
        let (ab, ba) = (bulks(&["a", "b"]), bulks(&["b", "a"]));
        assert!(agree(&sort, ab.clone(), ba.clone()));
        // Other elements, or a value still encrypted, still differ.
        assert!(!agree(&sort, ab.clone(), bulks(&["a", "c"])));
        // A pattern without `*` (up to a NUL) does not sort: compared exactly.
        assert!(!agree(
            &["SORT", "k", "BY", "nosort"],
            ab.clone(),
            ba.clone()
        ));
        assert!(!agree(&["SORT", "k", "BY", "x\0*"], ab.clone(), ba.clone()));
        // Option words are C strings, compared ignoring case.
        assert!(agree(&["SORT", "k", "BY\0x", "w*"], ab.clone(), ba.clone()));
        assert!(agree(&["sort", "k", "By", "w*"], ab.clone(), ba.clone()));
        // Without BY, the order is the sort's: exact.
        assert!(!agree(&["SORT", "k", "ALPHA"], ab.clone(), ba.clone()));
        // GET: each element's group stays together.
        let get = ["SORT", "k", "BY", "w*", "GET", "#", "GET", "h*"];
        assert!(agree(
            &get,
            bulks(&["a", "1", "b", "2"]),
            bulks(&["b", "2", "a", "1"])
        ));
        assert!(!agree(
            &get,
            bulks(&["a", "2", "b", "1"]),
            bulks(&["b", "2", "a", "1"])
        ));
        // LIMIT: which elements fall inside depends on the ties; the shape must agree, and
        // nothing may come back encrypted.
        let limit = ["SORT", "k", "BY", "w*", "LIMIT", "0", "1"];
        assert!(agree(&limit, bulks(&["a"]), bulks(&["b"])));
        assert!(!agree(&limit, bulks(&["a"]), bulks(&["a", "b"])));
        assert!(!agree(&limit, bulks(&["gAAAAABxyz"]), bulks(&["b"])));
    }

    #[test]
    fn a_scan_from_another_cursor_compares_the_kind_only() {
        let (a, b) = (
            Reply::Array(vec![Reply::Bulk(b"0".to_vec()), bulks(&["x"])]),
            Reply::Array(vec![Reply::Bulk(b"0".to_vec()), bulks(&["x", "y"])]),
        );
        for cmd in [
            &["SCAN", "3"][..],
            &["SSCAN", "k", "1", "COUNT", "10"],
            &["HSCAN", "k", "7"],
            &["ZSCAN", "k", "2"],
        ] {
            assert!(agree(cmd, a.clone(), b.clone()), "{cmd:?}");
        }
        // Where both returned everything (compact encodings ignore the cursor), the items
        // are compared; a value still encrypted differs whatever the cursor.
        assert!(agree(&["HSCAN", "k", "7"], b.clone(), b.clone()));
        let token = Reply::Array(vec![Reply::Bulk(b"0".to_vec()), bulks(&["f", "gAAAAAx"])]);
        let plain = Reply::Array(vec![Reply::Bulk(b"0".to_vec()), bulks(&["f", "v"])]);
        assert!(!agree(&["HSCAN", "k", "7"], token.clone(), plain.clone()));
        assert!(!agree(&["HSCAN", "k", "0", "COUNT", "1"], token, plain));
        // From cursor 0, a finished scan must return the same items.
        assert!(!agree(&["SSCAN", "k", "0"], a.clone(), b.clone()));
        assert!(!agree(&["SCAN", "0"], a, b));
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(is_refusal(&Reply::Error(
            b"ERR redcloak: INCR is not supported: x".to_vec()
        )));
        assert!(!is_refusal(&Reply::Error(
            b"ERR redcloak: GET: the value stored at key 'k' cannot be decrypted".to_vec()
        )));
        assert!(!is_refusal(&Reply::Error(b"ERR unknown command".to_vec())));
    }
}
