//! SORT and SORT_RO (Redis 7.0 `sort.c`).
//!
//! Reads: the collection ([`Read::Collection`]); then, when BY or GET patterns name other
//! keys, one more batch of reads ([`Step::Read`]): the BY keys of every element and the GET
//! keys of every element when a BY pattern sorts, otherwise the GET keys of the elements in
//! the LIMIT range only. STORE writes the result list with [`Ttl::Clear`] (`setKey`), or
//! deletes the destination when the result is empty.
//!
//! # Where the result can differ from Redis
//! - A set's order without sorting (`BY nosort`, no STORE) is its iteration order inside
//!   Redis, which is unspecified: an intset (every member an integer, at most
//!   `set-max-intset-entries` = 512) iterates in ascending order, which is reproduced;
//!   otherwise the order read from Redis is used.
//! - `ALPHA` with a `BY` pattern does not order elements whose BY values are equal: Redis
//!   leaves them where its sort puts them: glibc's `qsort` (a stable merge sort in glibc
//!   2.36, as here), or Redis's own `pqsort` when a LIMIT leaves elements out (ported here
//!   step for step). Both start from the collection's order: exact for lists, and for sets
//!   when the executor reads members in Redis's order; a sorted set starts from its hash
//!   table's order, which cannot be known, so ties among its members may come out in
//!   another order. (A Redis built on glibc ≥ 2.37 or musl has an unstable `qsort`.)
//!   Numeric sorting breaks ties by the element, so it is exact everywhere.
//! - Redis 7.0 checks `errno` after `strtod` without clearing it first: once any command has
//!   left `errno` at ERANGE in the server process (a SORT on a score like `1e-400` does),
//!   later numeric SORTs answer "One or more scores can't be converted into double" until
//!   something clears it. That is a Redis bug that depends on server history; redcloak
//!   answers as a Redis with a clean `errno` does.
//! - Called from a script, Redis sorts a set even with `BY nosort`; this module does not know
//!   its caller (see the open point in the crate's notes).

use std::cmp::Ordering;
use std::collections::HashMap;

use bytes::Bytes;

use super::cfloat::sort_score;
use super::{
    bulk, done, done_with, error, executor_bug, is, parse_ll, Call, Found, ListItem, Read, Step,
    Ttl, Write, NOT_INTEGER, SYNTAX, WRONGTYPE,
};
use crate::resp::Frame;

/// `set-max-intset-entries` default.
const MAX_INTSET_ENTRIES: usize = 512;

struct Spec {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<Bytes>,
    by: Option<Bytes>,
    dontsort: bool,
    gets: Vec<Bytes>,
}

/// The part of a C string before its first NUL (`strchr`, `strstr` and `strcoll` stop there).
fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(nul) => &s[..nul],
        None => s,
    }
}

fn parse(args: &[Bytes], readonly: bool) -> Result<Spec, Frame> {
    let mut spec = Spec {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let leftargs = args.len() - j - 1;
        let arg = &args[j];
        if is(arg, "ASC") {
            spec.desc = false;
        } else if is(arg, "DESC") {
            spec.desc = true;
        } else if is(arg, "ALPHA") {
            spec.alpha = true;
        } else if is(arg, "LIMIT") && leftargs >= 2 {
            spec.limit_start = parse_ll(&args[j + 1]).ok_or_else(|| error(NOT_INTEGER))?;
            spec.limit_count = parse_ll(&args[j + 2]).ok_or_else(|| error(NOT_INTEGER))?;
            j += 2;
        } else if !readonly && is(arg, "STORE") && leftargs >= 1 {
            spec.store = Some(args[j + 1].clone());
            j += 1;
        } else if is(arg, "BY") && leftargs >= 1 {
            let pattern = args[j + 1].clone();
            // No '*': nothing to look up, so nothing to sort by ("nosort" by convention).
            spec.dontsort = !c_str(&pattern).contains(&b'*');
            spec.by = Some(pattern);
            j += 1;
        } else if is(arg, "GET") && leftargs >= 1 {
            spec.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(error(SYNTAX));
        }
        j += 1;
    }
    Ok(spec)
}

pub(super) fn plan_sort(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    parse(args, false)?;
    Ok(vec![Read::Collection {
        key: args[1].clone(),
    }])
}

pub(super) fn plan_sort_ro(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    parse(args, true)?;
    Ok(vec![Read::Collection {
        key: args[1].clone(),
    }])
}

/// What `lookupKeyByPattern` does for one element.
enum Lookup {
    /// `#`: the element itself.
    Itself,
    /// No `*` in the pattern: nothing (nil).
    Nothing,
    /// Read this key or hash field.
    Key(Read),
}

fn lookup(pattern: &Bytes, element: &[u8]) -> Lookup {
    let cpat = c_str(pattern);
    if cpat == b"#" {
        return Lookup::Itself;
    }
    let Some(star) = cpat.iter().position(|&b| b == b'*') else {
        return Lookup::Nothing;
    };
    // "->" after the '*' with something after it: a hash field.
    let arrow = cpat[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|at| star + 1 + at)
        .filter(|&at| at + 2 < cpat.len());
    let fieldlen = arrow.map_or(0, |at| pattern.len() - at - 2);
    let postfix_end = if arrow.is_some() {
        pattern.len() - fieldlen - 2
    } else {
        pattern.len()
    };
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..postfix_end]);
    let key = Bytes::from(key);
    Lookup::Key(match arrow {
        Some(at) => Read::HashField {
            key,
            field: pattern.slice(at + 2..),
        },
        None => Read::String { key },
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// Reads asked for in the second step, deduplicated, in a fixed order.
#[derive(Default)]
struct Reads {
    list: Vec<Read>,
    index: HashMap<Read, usize>,
}

impl Reads {
    fn add(&mut self, read: Read) {
        if !self.index.contains_key(&read) {
            self.index.insert(read.clone(), self.list.len());
            self.list.push(read);
        }
    }
}

/// The value a pattern yields for an element, once the reads are done.
fn value_of<'a>(
    pattern: &Bytes,
    element: &'a [u8],
    reads: &Reads,
    found: &'a [Found],
) -> Option<&'a [u8]> {
    match lookup(pattern, element) {
        Lookup::Itself => Some(element),
        Lookup::Nothing => None,
        Lookup::Key(read) => match reads.index.get(&read).and_then(|&i| found.get(i)) {
            Some(Found::String(v)) | Some(Found::Field(v)) => Some(v),
            _ => None,
        },
    }
}

/// The elements `start..=end` (none if `end < start`).
fn in_range<'v, 'a>(vector: &'v [&'a [u8]], start: i64, end: i64) -> &'v [&'a [u8]] {
    if end >= start && start >= 0 && (end as usize) < vector.len() {
        &vector[start as usize..=end as usize]
    } else {
        &[]
    }
}

/// `sortCompare` over the elements, with `byval` giving each element's BY value (the element
/// itself without a BY pattern; `None` for a missing key). Numeric scores are read with
/// `strtod`; any that cannot be is the error reply.
fn sort_vector<'a>(
    spec: &Spec,
    vector: Vec<&'a [u8]>,
    byval: impl Fn(&'a [u8]) -> Option<&'a [u8]>,
    partial: Option<(usize, usize)>,
) -> Result<Vec<&'a [u8]>, Frame> {
    struct Item<'a> {
        element: &'a [u8],
        score: f64,
        cmp: Option<&'a [u8]>,
    }
    let by = spec.by.is_some();
    let mut items = Vec::with_capacity(vector.len());
    for element in vector {
        let mut item = Item {
            element,
            score: 0.0,
            cmp: None,
        };
        if let Some(value) = byval(element) {
            if spec.alpha {
                if by {
                    item.cmp = Some(value);
                }
            } else {
                item.score = sort_score(value).ok_or_else(|| {
                    error("ERR One or more scores can't be converted into double")
                })?;
            }
        }
        items.push(item);
    }
    let store = spec.store.is_some();
    let compare = |a: &Item<'_>, b: &Item<'_>| {
        let cmp = if !spec.alpha {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.element.cmp(b.element))
        } else if by {
            match (a.cmp, b.cmp) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) if store => x.cmp(y),
                (Some(x), Some(y)) => collate(x, y),
            }
        } else if store {
            a.element.cmp(b.element)
        } else {
            collate(a.element, b.element)
        };
        if spec.desc {
            cmp.reverse()
        } else {
            cmp
        }
    };
    match partial {
        // glibc's qsort is a merge sort: stable.
        None => items.sort_by(compare),
        Some((lrange, rrange)) => pqsort(&mut items, &compare, lrange, rrange),
    }
    Ok(items.into_iter().map(|item| item.element).collect())
}

/// Redis's `pqsort` (`pqsort.c`: Bentley & McIlroy's quicksort that only recurses into
/// partitions overlapping `lrange..=rrange`), step for step, so that elements that compare
/// equal end up where Redis puts them.
fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: usize, rrange: usize) {
    // A partition [base, base + n) is skipped when the range lies entirely on one side.
    let overlaps = |base: usize, n: usize| {
        !((lrange < base && rrange < base) || (lrange >= base + n && rrange >= base + n))
    };
    let med3 = |v: &[T], a: usize, b: usize, c: usize| -> usize {
        if cmp(&v[a], &v[b]).is_lt() {
            if cmp(&v[b], &v[c]).is_lt() {
                b
            } else if cmp(&v[a], &v[c]).is_lt() {
                c
            } else {
                a
            }
        } else if cmp(&v[b], &v[c]).is_gt() {
            b
        } else if cmp(&v[a], &v[c]).is_lt() {
            a
        } else {
            c
        }
    };
    let insertion = |v: &mut [T], a: usize, n: usize| {
        for pm in a + 1..a + n {
            let mut pl = pm;
            while pl > a && cmp(&v[pl - 1], &v[pl]).is_gt() {
                v.swap(pl, pl - 1);
                pl -= 1;
            }
        }
    };
    let vecswap = |v: &mut [T], a: usize, b: usize, n: usize| {
        for i in 0..n {
            v.swap(a + i, b + i);
        }
    };
    // (start, length) of the partitions still to sort; the C recursion's first call is
    // made before its loop continues with the second, which this stack reproduces.
    let mut stack = vec![(0usize, v.len())];
    while let Some((mut a, mut n)) = stack.pop() {
        loop {
            if n < 7 {
                insertion(v, a, n);
                break;
            }
            let mut pm = a + n / 2;
            if n > 7 {
                let mut pl = a;
                let mut pn = a + n - 1;
                if n > 40 {
                    let d = n / 8;
                    pl = med3(v, pl, pl + d, pl + 2 * d);
                    pm = med3(v, pm - d, pm, pm + d);
                    pn = med3(v, pn - 2 * d, pn - d, pn);
                }
                pm = med3(v, pl, pm, pn);
            }
            v.swap(a, pm);
            let (mut pa, mut pb) = (a + 1, a + 1);
            // pc and pd may go one below `a + 1`; kept as isize.
            let (mut pc, mut pd) = ((a + n - 1) as isize, (a + n - 1) as isize);
            let mut swapped = false;
            loop {
                while pb as isize <= pc {
                    let c = cmp(&v[pb], &v[a]);
                    if c.is_gt() {
                        break;
                    }
                    if c.is_eq() {
                        swapped = true;
                        v.swap(pa, pb);
                        pa += 1;
                    }
                    pb += 1;
                }
                while pb as isize <= pc {
                    let c = cmp(&v[pc as usize], &v[a]);
                    if c.is_lt() {
                        break;
                    }
                    if c.is_eq() {
                        swapped = true;
                        v.swap(pc as usize, pd as usize);
                        pd -= 1;
                    }
                    pc -= 1;
                }
                if pb as isize > pc {
                    break;
                }
                v.swap(pb, pc as usize);
                swapped = true;
                pb += 1;
                pc -= 1;
            }
            if !swapped {
                insertion(v, a, n);
                break;
            }
            let pn = a + n;
            let r = (pa - a).min(pb - pa);
            vecswap(v, a, pb - r, r);
            let r = ((pd - pc) as usize).min(pn - pd as usize - 1);
            vecswap(v, pb, pn - r, r);
            let left = pb - pa;
            let right = (pd - pc) as usize;
            let right_start = pn - right;
            let go_right = right > 1 && overlaps(right_start, right);
            if left > 1 && overlaps(a, left) {
                // C recurses into the left part first, then loops on the right part.
                if go_right {
                    stack.push((right_start, right));
                }
                n = left;
                continue;
            }
            if go_right {
                a = right_start;
                n = right;
                continue;
            }
            break;
        }
    }
}

/// `strcoll` in the C / C.UTF-8 locale: `strcmp` on the C strings.
fn collate(a: &[u8], b: &[u8]) -> Ordering {
    c_str(a).cmp(c_str(b))
}

pub(super) fn sort(call: &Call<'_>) -> Step {
    let readonly = is(call.arg(0), "SORT_RO");
    let Ok(mut spec) = parse(call.args, readonly) else {
        return executor_bug();
    };
    // === the collection ===
    let (kind, mut vector): (Kind, Vec<&[u8]>) = match call.found(0) {
        Some(Found::Missing) => (Kind::List, Vec::new()),
        Some(Found::WrongType) => return done(error(WRONGTYPE)),
        Some(Found::List(items)) => (Kind::List, items.iter().map(Vec::as_slice).collect()),
        Some(Found::Set(members)) => (Kind::Set, members.iter().map(Vec::as_slice).collect()),
        Some(Found::ZSet(pairs)) => {
            let mut pairs: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
            pairs.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            (Kind::ZSet, pairs.iter().map(|p| p.0.as_slice()).collect())
        }
        _ => return executor_bug(),
    };
    // A set is sorted when stored, so that the result does not depend on hash order.
    if spec.dontsort && kind == Kind::Set && spec.store.is_some() {
        spec.dontsort = false;
        spec.alpha = true;
        spec.by = None;
    }
    if spec.dontsort && kind == Kind::Set {
        let intset =
            vector.len() <= MAX_INTSET_ENTRIES && vector.iter().all(|m| parse_ll(m).is_some());
        if intset {
            vector.sort_by_key(|m| parse_ll(m).unwrap_or(0));
        }
    }
    // === LIMIT: inputs bounded by the collection's size first (no overflow) ===
    let vectorlen = vector.len() as i64;
    let mut start = spec.limit_start.clamp(0, vectorlen);
    let limit_count = spec.limit_count.clamp(-1, vectorlen);
    let mut end = if limit_count < 0 {
        vectorlen - 1
    } else {
        start + limit_count - 1
    };
    if start >= vectorlen {
        start = vectorlen - 1;
        end = vectorlen - 2;
    }
    if end >= vectorlen {
        end = vectorlen - 1;
    }
    // Lists and sorted sets that are not sorted are read in their own order (reversed by
    // DESC), from the LIMIT offset.
    if (kind == Kind::List || kind == Kind::ZSet) && spec.dontsort {
        if end >= start {
            if spec.desc {
                vector.reverse();
            }
            vector = vector
                .into_iter()
                .skip(start as usize)
                .take((end - start + 1) as usize)
                .collect();
            end -= start;
            start = 0;
        } else {
            vector.clear();
        }
    }
    // === sort and read ===
    // Without a BY pattern the order needs no reads: sort first, then read the GET keys of
    // the LIMIT range only. With one, read the BY keys and the GET keys of every element in
    // one batch, then sort.
    let sorting_by = !spec.dontsort && spec.by.is_some();
    if !spec.dontsort && !sorting_by {
        match sort_vector(&spec, vector, Some, None) {
            Ok(sorted) => vector = sorted,
            Err(reply) => return done(reply),
        }
    }
    let mut reads = Reads::default();
    if let (true, Some(by)) = (sorting_by, &spec.by) {
        for element in &vector {
            if let Lookup::Key(read) = lookup(by, element) {
                reads.add(read);
            }
        }
    }
    let get_targets: &[&[u8]] = if sorting_by {
        &vector
    } else {
        in_range(&vector, start, end)
    };
    for pattern in &spec.gets {
        for element in get_targets {
            if let Lookup::Key(read) = lookup(pattern, element) {
                reads.add(read);
            }
        }
    }
    let found = match call.found.len() {
        1 if !reads.list.is_empty() => return Step::Read(reads.list),
        n if n == 1 + reads.list.len() => &call.found[1..],
        _ => return executor_bug(),
    };
    if let (true, Some(by)) = (sorting_by, &spec.by) {
        // With BY and a LIMIT that leaves elements out, Redis sorts partially (pqsort).
        let partial = (start != 0 || end != vector.len() as i64 - 1)
            .then_some((start.max(0) as usize, end.max(0) as usize));
        let byval = |element| value_of(by, element, &reads, found);
        match sort_vector(&spec, vector, byval, partial) {
            Ok(sorted) => vector = sorted,
            Err(reply) => return done(reply),
        }
    }
    // === output ===
    let range = in_range(&vector, start, end);
    match &spec.store {
        None => {
            let mut out = Vec::new();
            for &element in range {
                if spec.gets.is_empty() {
                    out.push(bulk(element.to_vec()));
                }
                for pattern in &spec.gets {
                    out.push(match value_of(pattern, element, &reads, found) {
                        Some(v) => bulk(v.to_vec()),
                        None => call.null(),
                    });
                }
            }
            done(Frame::Array(out))
        }
        Some(dest) => {
            let mut items = Vec::new();
            for &element in range {
                if spec.gets.is_empty() {
                    items.push(ListItem::New(element.to_vec()));
                }
                for pattern in &spec.gets {
                    let v = value_of(pattern, element, &reads, found).unwrap_or(&[]);
                    items.push(ListItem::New(v.to_vec()));
                }
            }
            let n = items.len() as i64;
            let write = if items.is_empty() {
                Write::Delete { key: dest.clone() }
            } else {
                Write::ReplaceList {
                    key: dest.clone(),
                    items,
                    ttl: Ttl::Clear,
                }
            };
            done_with(Frame::Integer(n), vec![write])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::super::*;

    fn list(items: &[&str]) -> Found {
        Found::List(items.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    fn bulks(items: &[&str]) -> Frame {
        Frame::Array(
            items
                .iter()
                .map(|s| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes())))
                .collect(),
        )
    }

    #[test]
    fn numeric_alpha_limit() {
        let a = args(&["SORT", "k"]);
        assert_eq!(
            compute(&a, &[list(&["3", "1", "2", "1.5"])], false),
            done(bulks(&["1", "1.5", "2", "3"]))
        );
        let a = args(&["SORT", "k", "ALPHA", "DESC", "LIMIT", "1", "2"]);
        assert_eq!(
            compute(&a, &[list(&["b", "a", "c", "d"])], false),
            done(bulks(&["c", "b"]))
        );
        let a = args(&["SORT", "k"]);
        assert_eq!(
            compute(&a, &[list(&["a"])], false),
            done(error(
                "ERR One or more scores can't be converted into double"
            ))
        );
        let a = args(&["SORT", "k", "BY", "nosort", "DESC", "LIMIT", "1", "2"]);
        assert_eq!(
            compute(&a, &[list(&["a", "b", "c", "d"])], false),
            done(bulks(&["c", "b"]))
        );
    }

    #[test]
    fn patterns_need_a_second_step() {
        let a = args(&["SORT", "k", "BY", "w_*", "GET", "#", "GET", "h_*->f"]);
        let first = [list(&["x", "y"])];
        let Step::Read(reads) = compute(&a, &first, true) else {
            panic!()
        };
        assert_eq!(
            reads,
            vec![
                Read::String {
                    key: Bytes::from_static(b"w_x")
                },
                Read::String {
                    key: Bytes::from_static(b"w_y")
                },
                Read::HashField {
                    key: Bytes::from_static(b"h_x"),
                    field: Bytes::from_static(b"f")
                },
                Read::HashField {
                    key: Bytes::from_static(b"h_y"),
                    field: Bytes::from_static(b"f")
                },
            ]
        );
        let found = [
            list(&["x", "y"]),
            Found::String(b"2".to_vec()),
            Found::String(b"1".to_vec()),
            Found::Field(b"X".to_vec()),
            Found::Missing,
        ];
        assert_eq!(
            compute(&a, &found, true),
            done(Frame::Array(vec![
                Frame::Bulk(Bytes::from_static(b"y")),
                Frame::Null,
                Frame::Bulk(Bytes::from_static(b"x")),
                Frame::Bulk(Bytes::from_static(b"X")),
            ]))
        );
    }

    #[test]
    fn store_and_syntax() {
        let a = args(&["SORT", "k", "STORE", "d"]);
        assert_eq!(
            compute(&a, &[Found::Missing], false),
            done_with(
                Frame::Integer(0),
                vec![Write::Delete {
                    key: Bytes::from_static(b"d")
                }]
            )
        );
        assert_eq!(
            start(&args(&["SORT_RO", "k", "STORE", "d"])),
            Err(error(SYNTAX))
        );
        assert_eq!(
            start(&args(&["SORT", "k", "LIMIT", "x", "1"])),
            Err(error(NOT_INTEGER))
        );
        assert_eq!(
            start(&args(&["SORT", "k", "LIMIT", "1"])),
            Err(error(SYNTAX))
        );
    }
}
