"""Copies a plaintext Redis's keys into the secure Redis *through* redcloak, so that every value
is stored encrypted. Run by `scripts/migrate-to-secure-redis.sh --copy-data` (see its --help).

Connection URLs come from the environment, never from argv (which `ps` shows):
  MIGRATE_FROM_URL       the plaintext Redis, redis://[[user]:password@]host:port[/db]
  MIGRATE_FROM_PASSWORD  its password, when the URL has none (optional)
  MIGRATE_VIA_URL        redcloak, redis://127.0.0.1:port[/db] (optional with --dry-run)

Per type: string -> SET (PX = the remaining PTTL), hash -> HSET, list -> RPUSH, stream -> XADD
with the same IDs, set -> SADD, sorted set (and GEO) -> ZADD with the same scores; hashes, lists,
streams, sets and sorted sets are written in one MULTI/EXEC each, with PEXPIRE for the TTL.
HyperLogLogs and module types are skipped with the reason. Values are bytes end to end (binary-safe, any size redcloak accepts). The source is only
read. Exit status: 0 when every key was copied or skipped for a stated reason, 1 when a key
failed to copy, 2 when a Redis cannot be reached.
"""

import argparse
import os
import re
import sys
import time

try:
    import redis
except ImportError:  # checked by the shell script first; kept for direct runs
    sys.exit(
        "error: the Python redis package is not installed\n"
        "  required: redis-py to read the plaintext Redis and write through redcloak\n"
        "  fix: python3 -m pip install redis   (or: apt-get install python3-redis)"
    )

DOCS = "docs/migration.md#what-is-not-copied"
SKIP_REASONS = {
    "hll": "a HyperLogLog holds hashes of the plaintext elements, which cannot be re-encrypted; rebuild it through redcloak with PFADD from the source data",
    "empty-stream": "stream without entries (only consumer groups): nothing to encrypt; recreate the groups with XGROUP CREATE … MKSTREAM",
    "gone": "expired or deleted while the copy ran",
    "exists": "already in the secure Redis (re-run with --replace to overwrite)",
}
TYPES = ["string", "hash", "list", "stream", "set", "zset", "other"]
INTEGER = re.compile(rb"^-?[0-9]{1,19}$")


def show(key):
    """A key name for the terminal: UTF-8 where it is, escapes for the rest."""
    return key.decode("utf-8", "backslashreplace")


def say(text):
    print(f"==> {text}", flush=True)


class Stats:
    def __init__(self):
        self.found = {t: 0 for t in TYPES}
        self.copied = {t: 0 for t in TYPES}
        self.skipped = {t: 0 for t in TYPES}
        self.failed = {t: 0 for t in TYPES}
        self.skips = []  # (type, key, reason)
        self.failures = []  # (type, key, error)
        self.integers = []  # string keys that hold integers (INCR will be refused)
        self.stream_groups = []  # (key, count)
        self.bytes = 0

    def total(self, table):
        return sum(table.values())


def bucket(kind):
    return kind if kind in TYPES else "other"


def connect(url, what, password=None, raw_streams=False):
    try:
        client = redis.Redis.from_url(
            url,
            password=password or None,
            decode_responses=False,
            socket_timeout=120,
            socket_connect_timeout=10,
        )
        client.ping()
    except redis.exceptions.RedisError as e:
        where = re.sub(r"//[^@/]*@", "//", url)
        print(
            f"error: cannot use the {what} at {where}: {e}\n"
            f"  required: a reachable {what}\n"
            f"  fix: check the URL (and password) of the {what}",
            file=sys.stderr,
        )
        sys.exit(2)
    if raw_streams:
        # Entries as [id, [field, value, ...]]: a dict would merge repeated field names.
        client.set_response_callback("XRANGE", lambda r, **kw: r)
    return client


class Copier:
    def __init__(self, src, dst, args, stats):
        self.src = src
        self.dst = dst
        self.args = args
        self.stats = stats

    def skip(self, kind, key, reason):
        self.stats.skipped[bucket(kind)] += 1
        self.stats.skips.append((kind, key, reason))

    def fail(self, kind, key, error):
        self.stats.failed[bucket(kind)] += 1
        self.stats.failures.append((kind, key, str(error)))

    def done(self, kind, size):
        self.stats.copied[bucket(kind)] += 1
        self.stats.bytes += size

    def batch(self, keys):
        """Copies one SCAN batch."""
        pipe = self.src.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
            pipe.pttl(key)
        meta = pipe.execute()
        kinds = [k.decode() if isinstance(k, bytes) else str(k) for k in meta[0::2]]
        ttls = meta[1::2]
        exists = [False] * len(keys)
        if self.dst is not None and not self.args.replace:
            pipe = self.dst.pipeline(transaction=False)
            for key in keys:
                pipe.exists(key)
            exists = [bool(n) for n in pipe.execute()]

        strings = []
        for key, kind, ttl, present in zip(keys, kinds, ttls, exists):
            if kind != "none":
                self.stats.found[bucket(kind)] += 1
            if kind == "none" or ttl == -2:
                self.skip("none" if kind == "none" else kind, key, SKIP_REASONS["gone"])
            elif present:
                self.skip(kind, key, SKIP_REASONS["exists"])
            elif kind == "string":
                strings.append((key, ttl))
            elif kind == "hash":
                self.guarded(kind, key, self.copy_hash, key, ttl)
            elif kind == "list":
                self.guarded(kind, key, self.copy_list, key, ttl)
            elif kind == "stream":
                self.guarded(kind, key, self.copy_stream, key, ttl)
            elif kind == "set":
                self.guarded(kind, key, self.copy_set, key, ttl)
            elif kind == "zset":
                self.guarded(kind, key, self.copy_zset, key, ttl)
            else:
                self.skip(kind, key, f"type {kind!r} (a module type?) has no redcloak rule to encrypt it")
        if strings:
            self.copy_strings(strings)

    def guarded(self, kind, key, copy, *args):
        try:
            size = copy(*args)
        except redis.exceptions.RedisError as e:
            self.fail(kind, key, e)
            return
        if size is not None:
            self.done(kind, size)

    def copy_strings(self, items):
        pipe = self.src.pipeline(transaction=False)
        for key, _ in items:
            pipe.get(key)
        values = pipe.execute()
        todo = []
        for (key, ttl), value in zip(items, values):
            if value is None:
                self.skip("string", key, SKIP_REASONS["gone"])
            elif value.startswith(b"HYLL"):
                self.skip("string", key, SKIP_REASONS["hll"])
            else:
                if INTEGER.match(value):
                    self.stats.integers.append(key)
                todo.append((key, ttl, value))
        if self.args.dry_run:
            for key, _, value in todo:
                self.done("string", len(value))
            return
        pipe = self.dst.pipeline(transaction=False)
        for key, ttl, value in todo:
            pipe.set(key, value, px=max(ttl, 1) if ttl >= 0 else None)
        for (key, _, value), reply in zip(todo, pipe.execute(raise_on_error=False)):
            if isinstance(reply, Exception):
                self.fail("string", key, reply)
            else:
                self.done("string", len(value))

    def write(self, key, ttl, commands):
        """Runs commands (each a list of arguments) for one key in one MULTI/EXEC, after DEL
        (with --replace) and followed by PEXPIRE for a TTL."""
        if self.args.dry_run:
            return
        tx = self.dst.pipeline(transaction=True)
        if self.args.replace:
            tx.delete(key)
        for args in commands:
            tx.execute_command(*args)
        if ttl >= 0:  # PTTL: -1 = no expiry; 0 = about to expire
            tx.pexpire(key, max(ttl, 1))
        tx.execute()

    def copy_hash(self, key, ttl):
        commands, size, chunk = [], 0, []
        for field, value in self.src.hscan_iter(key, count=self.args.chunk):
            chunk += [field, value]
            size += len(value)
            if len(chunk) >= 2 * self.args.chunk:
                commands.append([b"HSET", key, *chunk])
                chunk = []
        if chunk:
            commands.append([b"HSET", key, *chunk])
        if not commands:
            self.skip("hash", key, SKIP_REASONS["gone"])
            return None
        self.write(key, ttl, commands)
        return size

    def copy_list(self, key, ttl):
        commands, size, start, n = [], 0, 0, self.args.chunk
        while True:
            items = self.src.lrange(key, start, start + n - 1)
            if items:
                commands.append([b"RPUSH", key, *items])
                size += sum(len(i) for i in items)
            if len(items) < n:
                break
            start += n
        if not commands:
            self.skip("list", key, SKIP_REASONS["gone"])
            return None
        self.write(key, ttl, commands)
        return size

    def copy_set(self, key, ttl):
        commands, size, chunk = [], 0, []
        for member in self.src.sscan_iter(key, count=self.args.chunk):
            chunk.append(member)
            size += len(member)
            if len(chunk) >= self.args.chunk:
                commands.append([b"SADD", key, *chunk])
                chunk = []
        if chunk:
            commands.append([b"SADD", key, *chunk])
        if not commands:
            self.skip("set", key, SKIP_REASONS["gone"])
            return None
        self.write(key, ttl, commands)
        return size

    def copy_zset(self, key, ttl):
        """Scores as Redis prints them (17 significant digits: the same double)."""
        commands, size, chunk = [], 0, []
        for member, score in self.src.zscan_iter(key, count=self.args.chunk, score_cast_func=bytes):
            chunk += [score, member]
            size += len(member)
            if len(chunk) >= 2 * self.args.chunk:
                commands.append([b"ZADD", key, *chunk])
                chunk = []
        if chunk:
            commands.append([b"ZADD", key, *chunk])
        if not commands:
            self.skip("zset", key, SKIP_REASONS["gone"])
            return None
        self.write(key, ttl, commands)
        return size

    def copy_stream(self, key, ttl):
        commands, size, start = [], 0, b"-"
        while True:
            entries = self.src.execute_command("XRANGE", key, start, "+", "COUNT", self.args.chunk)
            for entry_id, fields in entries:
                commands.append([b"XADD", key, entry_id, *fields])
                size += sum(len(v) for v in fields[1::2])
            if len(entries) < self.args.chunk:
                break
            start = b"(" + entries[-1][0]
        groups = len(self.src.xinfo_groups(key))
        if not commands:
            self.skip("stream", key, SKIP_REASONS["empty-stream"])
            return None
        if groups:
            self.stats.stream_groups.append((key, groups))
        self.write(key, ttl, commands)
        return size


def table(stats):
    rows = [("type", "found", "copied", "skipped", "failed")]
    for t in TYPES:
        if stats.found[t] or stats.skipped[t] or stats.failed[t]:
            rows.append((t, stats.found[t], stats.copied[t], stats.skipped[t], stats.failed[t]))
    rows.append(
        (
            "total",
            stats.total(stats.found),
            stats.total(stats.copied),
            stats.total(stats.skipped),
            stats.total(stats.failed),
        )
    )
    for row in rows:
        print(f"  {row[0]:<8} {row[1]:>9} {row[2]:>9} {row[3]:>9} {row[4]:>9}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replace", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--match", default="*")
    parser.add_argument("--progress-every", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--report")
    parser.add_argument("--list-limit", type=int, default=10)
    args = parser.parse_args()

    from_url = os.environ.get("MIGRATE_FROM_URL", "")
    via_url = os.environ.get("MIGRATE_VIA_URL", "")
    if not from_url or (not via_url and not args.dry_run):
        sys.exit("error: MIGRATE_FROM_URL and MIGRATE_VIA_URL must be set (run scripts/migrate-to-secure-redis.sh)")
    src = connect(from_url, "plaintext Redis", os.environ.get("MIGRATE_FROM_PASSWORD"), raw_streams=True)
    dst = connect(via_url, "redcloak") if via_url else None

    stats = Stats()
    copier = Copier(src, dst, args, stats)
    try:
        approx = src.dbsize()
    except redis.exceptions.RedisError:
        approx = None
    what = f"keys matching {args.match!r}" if args.match != "*" else "every key"
    total = f" (the database holds about {approx})" if approx is not None else ""
    if args.dry_run:
        say(f"dry run: reading {what}{total}; nothing is written")
        if dst is None:
            say("keys already in the secure Redis are not checked (add --via to check them)")
    else:
        say(f"copying {what}{total} through redcloak")
    started = time.monotonic()
    scanned = 0
    next_report = args.progress_every
    cursor = 0
    scan_count = min(args.chunk, args.progress_every) if args.progress_every > 0 else args.chunk
    while True:
        cursor, keys = src.scan(cursor=cursor, match=args.match, count=scan_count)
        if keys:
            copier.batch(keys)
            scanned += len(keys)
        if args.progress_every > 0 and scanned >= next_report:
            rate = scanned / max(time.monotonic() - started, 1e-6)
            of = f"/~{approx}" if approx else ""
            say(
                f"progress: {scanned}{of} keys scanned, {stats.total(stats.copied)} copied, "
                f"{stats.total(stats.skipped)} skipped, {stats.total(stats.failed)} failed "
                f"({rate:.0f} keys/s)"
            )
            next_report = (scanned // args.progress_every + 1) * args.progress_every
        if cursor == 0:
            break
    elapsed = time.monotonic() - started

    say(
        f"summary: {scanned} keys scanned in {elapsed:.1f} s; "
        f"{stats.total(stats.copied)} {'would be ' if args.dry_run else ''}copied "
        f"({stats.bytes} bytes of values), {stats.total(stats.skipped)} skipped, "
        f"{stats.total(stats.failed)} failed"
    )
    table(stats)
    if stats.skips:
        print(f"skipped ({len(stats.skips)}; why: {DOCS}):")
        by_reason = {}
        for kind, key, reason in stats.skips:
            by_reason.setdefault(reason, []).append((kind, key))
        for reason, keys in by_reason.items():
            shown = ", ".join(f"{show(key)} ({kind})" for kind, key in keys[: args.list_limit])
            more = f", … {len(keys) - args.list_limit} more" if len(keys) > args.list_limit else ""
            print(f"  {len(keys)} × {reason}: {shown}{more}")
    if stats.failures:
        print(f"failed ({len(stats.failures)}):")
        for kind, key, error in stats.failures[: args.list_limit]:
            print(f"  {kind:<8} {show(key)}: {error}")
    if stats.integers:
        example = show(stats.integers[0])
        print(
            f"warning: {len(stats.integers)} string key(s) hold integers (e.g. {example}): they are copied, "
            "but INCR/DECR/INCRBY on them are refused through redcloak (docs/migration.md#what-breaks)"
        )
    for key, groups in stats.stream_groups:
        print(
            f"warning: stream {show(key)} has {groups} consumer group(s): entries were copied, groups were not "
            "(recreate them with XGROUP CREATE)"
        )
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write("status\ttype\tkey\treason\n")
            for kind, key, reason in stats.skips:
                f.write(f"skipped\t{kind}\t{show(key)}\t{reason}\n")
            for kind, key, error in stats.failures:
                f.write(f"failed\t{kind}\t{show(key)}\t{error}\n")
        say(f"report: {args.report}")
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
