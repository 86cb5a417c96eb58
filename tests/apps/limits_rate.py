"""`limits` (the rate-limiting engine behind flask-limiter), unmodified, with its Redis storage:
every strategy runs Lua scripts (INCRBY + EXPIRE; timestamps in a list compared in the script;
two counters shifted with RENAME and weighted by their PTTL) that redcloak runs itself on the
decrypted values.

Prints one JSON line with everything that does not depend on the clock — allow/deny sequences,
remaining counts, key names — then `ok`. The test runs this script through redcloak and against
a plain redis-server and compares the two lines.

Usage: limits_rate.py HOST PORT"""
import json
import sys
import time

import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)

host, port = sys.argv[1], sys.argv[2]
storage = RedisStorage(f"redis://{host}:{port}/0")
r = redis.Redis(host=host, port=int(port))
record = {}


def check(got, want, what):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")


def wait_until(cond, what, limit=20.0):
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting: {what}")
        time.sleep(0.02)


def hits(limiter, item, ident, n, cost=1):
    return [limiter.hit(item, ident, cost=cost) for _ in range(n)]


check(storage.check(), True, "storage check (PING)")
fixed = FixedWindowRateLimiter(storage)
moving = MovingWindowRateLimiter(storage)
sliding = SlidingWindowCounterRateLimiter(storage)

for name, limiter in [("fixed", fixed), ("moving", moving), ("sliding", sliding)]:
    # Each strategy keeps its own kind of value: one set of users each.
    alice, bob, carol = (f"{who}-{name}" for who in ("alice", "bob", "carol"))
    five = parse("5/minute")
    out = {"hits": hits(limiter, five, alice, 7)}
    out["test_after"] = limiter.test(five, alice)
    out["remaining"] = limiter.get_window_stats(five, alice).remaining
    out["other_user"] = hits(limiter, five, bob, 2)
    out["bob_remaining"] = limiter.get_window_stats(five, bob).remaining
    ten = parse("10/hour")
    out["costs"] = [limiter.hit(ten, carol, cost=c) for c in (4, 4, 3, 2, 1, 1)]
    out["cost_test"] = [limiter.test(ten, carol, cost=c) for c in (1, 2)]
    out["carol_remaining"] = limiter.get_window_stats(ten, carol).remaining
    limiter.clear(five, alice)
    out["after_clear"] = hits(limiter, five, alice, 2)
    out["after_clear_remaining"] = limiter.get_window_stats(five, alice).remaining
    record[name] = out

# Windows that pass: the fixed window's key expires, the moving window's entries age out, the
# sliding window's current counter is shifted to the previous one (RENAME in the script).
second = parse("2/second")
record["fixed_expiry"] = hits(fixed, second, "dave", 3)
fixed_key = f"LIMITS:{second.key_for('dave')}"
check(r.exists(fixed_key), 1, "the fixed window's counter")
wait_until(lambda: not r.exists(fixed_key), "the fixed window's counter expires")
record["fixed_expiry"] += hits(fixed, second, "dave", 3)

record["moving_expiry"] = hits(moving, second, "erin", 3)
time.sleep(1.2)
record["moving_expiry"] += hits(moving, second, "erin", 3)

# (5 s windows: the current counter lives 10 s and is shifted once it has less than 5 s left;
# waiting until it has 1–4.5 s left keeps clear of both ends on a loaded machine.)
five_seconds = parse("2 per 5 seconds")
record["sliding_shift"] = hits(sliding, five_seconds, "frank", 3)
current = f"LIMITS:{{{five_seconds.key_for('frank')}}}"
wait_until(lambda: 1000 < r.pttl(current) < 4500, "the sliding window's current counter ages")
prev_count, _, cur_count, _ = storage.get_sliding_window(five_seconds.key_for("frank"), 5)
record["sliding_shift_counts"] = [prev_count, cur_count]
check(r.exists(current + "/-1"), 1, "the previous window's counter after the shift")

record["keys"] = sorted(k.decode() for k in r.keys("LIMITS:*"))
# reset(): a script that lists the keys (KEYS) and deletes them.
record["reset"] = storage.reset()
record["keys_after_reset"] = sorted(k.decode() for k in r.keys("LIMITS:*"))
# State left behind for the audit.
record["final"] = [
    fixed.hit(parse("3/hour"), "zoe-fixed"),
    moving.hit(parse("3/hour"), "zoe-moving"),
    sliding.hit(parse("3/hour"), "zoe-sliding"),
]
print(json.dumps(record, sort_keys=True))
print("ok")
