"""An unmodified redis-py application, run through redcloak by tests/tests/clients.rs.

Usage: python3 redis_py_client.py HOST PORT PROTOCOL(2|3)
Exercises strings, hashes, lists, pipelines, transactions and pub/sub; exits non-zero with
a message on the first mismatch.
"""
import sys
import time

import redis


def check(got, want, what):
    if got != want:
        raise SystemExit(f"redis-py RESP{proto}: {what}: got {got!r}, want {want!r}")


host, port, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = redis.Redis(host=host, port=port, protocol=proto, decode_responses=True)
p = f"py{proto}:"

# strings
check(r.set(p + "s", "hello"), True, "SET")
check(r.get(p + "s"), "hello", "GET")
check(r.set(p + "s", "world", get=True), "hello", "SET GET")
check(r.mget([p + "s", p + "missing"]), ["world", None], "MGET")
check(r.getex(p + "s", ex=100), "world", "GETEX")
check(0 < r.ttl(p + "s") <= 100, True, "TTL")

# hashes
r.hset(p + "h", mapping={"name": "Ada", "lang": "en"})
check(r.hgetall(p + "h"), {"name": "Ada", "lang": "en"}, "HGETALL")
check(r.hget(p + "h", "name"), "Ada", "HGET")
check(sorted(r.hvals(p + "h")), ["Ada", "en"], "HVALS")

# lists
r.rpush(p + "l", "a", "b", "c")
check(r.lrange(p + "l", 0, -1), ["a", "b", "c"], "LRANGE")
check(r.lpop(p + "l"), "a", "LPOP")
check(r.blpop([p + "l"], timeout=1), (p + "l", "b") if proto == 2 else [p + "l", "b"], "BLPOP")

# pipeline (not transactional) and transaction
pipe = r.pipeline(transaction=False)
for i in range(100):
    pipe.set(f"{p}k{i}", f"v{i}")
    pipe.get(f"{p}k{i}")
out = pipe.execute()
check(out[1::2], [f"v{i}" for i in range(100)], "pipeline GETs")
tx = r.pipeline(transaction=True)
tx.set(p + "t", "in-tx").get(p + "t").hgetall(p + "h")
check(tx.execute(), [True, "in-tx", {"name": "Ada", "lang": "en"}], "MULTI/EXEC")

# pub/sub
ps = r.pubsub()
ps.subscribe(p + "chan")
deadline = time.time() + 5
while time.time() < deadline:
    m = ps.get_message(timeout=0.2)
    if m and m["type"] == "subscribe":
        break
check(r.publish(p + "chan", "news!"), 1, "PUBLISH receivers")
msg = None
while time.time() < deadline and msg is None:
    m = ps.get_message(timeout=0.2)
    if m and m["type"] == "message":
        msg = m
check(msg and msg["data"], "news!", "pub/sub message")
ps.close()

# a command computed on the value is emulated by redcloak; a refused one is a clean error
check(r.incr(p + "counter"), 1, "INCR emulated")
try:
    r.object("encoding", p + "counter")
    raise SystemExit("OBJECT ENCODING should be refused")
except redis.ResponseError as e:
    check("redcloak" in str(e), True, "the refusal names redcloak")
print("ok")
