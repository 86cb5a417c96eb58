"""Django's Redis cache backend, unmodified, through redcloak: counters with incr/decr
(Django stores integers unpickled so that Redis can INCRBY them; redcloak emulates INCRBY on
the encrypted value), plain values, many-key operations, expiry.

Usage: django_cache.py HOST PORT"""
import sys

import django
from django.conf import settings

host, port = sys.argv[1], sys.argv[2]
settings.configure(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://{host}:{port}/0",
        }
    }
)
django.setup()
from django.core.cache import cache  # noqa: E402


def check(got, want, what):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")


cache.set("visits", 10)
check(cache.incr("visits"), 11, "incr")
check(cache.incr("visits", 5), 16, "incr by 5")
check(cache.decr("visits", 6), 10, "decr by 6")
check(cache.decr("visits"), 9, "decr")
check(cache.get("visits"), 9, "get after counting")
try:
    cache.incr("never-set")
    raise SystemExit("incr of a missing key must raise ValueError")
except ValueError:
    pass
cache.set("greeting", {"hello": "world"}, timeout=60)
check(cache.get("greeting"), {"hello": "world"}, "pickled value")
check(0 < cache.ttl("greeting") <= 60 if hasattr(cache, "ttl") else True, True, "ttl")
cache.set_many({"a": 1, "b": "two"})
check(cache.get_many(["a", "b", "c"]), {"a": 1, "b": "two"}, "get_many")
check(cache.incr("a", 41), 42, "incr a value set by set_many")
cache.delete("b")
check(cache.get("b"), None, "deleted")
check(cache.add("a", 0), False, "add does not overwrite")
check(cache.add("fresh", 1), True, "add")
check(cache.touch("fresh", 30), True, "touch")
cache.set("counter-with-ttl", 1, timeout=100)
cache.incr("counter-with-ttl")
check(cache.get("counter-with-ttl"), 2, "incr keeps the value's expiry")
print("ok")
