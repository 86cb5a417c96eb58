"""The application workloads of docs/performance.md, against one Redis endpoint: redis-py Lock
acquire+release per second (1 client, then 8 client processes, each on its own lock), and
`limits` hits per second for each strategy (1 client; "100/minute" per user, the hits spread
over 1,000 users, so none reaches its limit and each moving-window list stays short).

Usage: apps_workload.py SECONDS HOST PORT [DB [PASSWORD CA CERT KEY]]
  (with PASSWORD…: a direct mutual-TLS connection to Redis; without: plain, to redcloak)
Prints one line per measurement: `<name> <operations per second>`."""
import multiprocessing
import sys
import time
import uuid

import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)

seconds = float(sys.argv[1])
host, port = sys.argv[2], int(sys.argv[3])
db = int(sys.argv[4]) if len(sys.argv) > 4 else 0
tls = {}
if len(sys.argv) > 5:
    password, ca, cert, key = sys.argv[5:9]
    tls = dict(password=password, ssl=True, ssl_ca_certs=ca, ssl_certfile=cert,
               ssl_keyfile=key)


def client():
    return redis.Redis(host=host, port=port, db=db, **tls)


def lock_loop(name):
    r = client()
    lock = r.lock(f"bench:lock:{name}", timeout=30)
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        if not lock.acquire(blocking=False):
            raise SystemExit("an uncontended lock was not acquired")
        lock.release()
        n += 1
    return n


def limits_loop(strategy):
    scheme = "rediss" if tls else "redis"
    options = {k: v for k, v in tls.items() if k != "ssl"}
    storage = RedisStorage(f"{scheme}://{host}:{port}/{db}", **options)
    limiter = strategy(storage)
    item = parse("100/minute")
    run = uuid.uuid4().hex[:8]
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        if not limiter.hit(item, f"{run}-{n % 1000}"):
            raise SystemExit("a hit under the limit was refused")
        n += 1
    return n


if __name__ == "__main__":
    print("lock-1-client", round(lock_loop("one") / seconds))
    with multiprocessing.Pool(8) as pool:
        counts = pool.map(lock_loop, [f"p{i}" for i in range(8)])
    print("lock-8-clients", round(sum(counts) / seconds))
    for name, strategy in [
        ("limits-fixed-window", FixedWindowRateLimiter),
        ("limits-moving-window", MovingWindowRateLimiter),
        ("limits-sliding-window-counter", SlidingWindowCounterRateLimiter),
    ]:
        print(name, round(limits_loop(strategy) / seconds))
