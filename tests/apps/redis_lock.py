"""redis-py's `Lock`, unmodified, through redcloak: SET NX PX to acquire, and Lua scripts
(EVALSHA, EVAL after NOSCRIPT) that compare the stored token with the caller's to extend,
reacquire and release. redcloak runs those scripts itself on the decrypted token.

Checks: acquire / owned / extend / reacquire / release; a second client is kept out while the
lock is held and gets it once released; a counter updated with a non-atomic GET then SET in
THREADS threads, each through its own connection, ends exact only if the lock excludes; a lock
whose timeout passed is taken by another client and its first owner can neither extend nor
release it.

Usage: redis_lock.py HOST PORT"""
import sys
import threading
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

host, port = sys.argv[1], int(sys.argv[2])
THREADS, ROUNDS = 6, 25


def client():
    return redis.Redis(host=host, port=port, socket_timeout=20)


def check(got, want, what):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")


r = client()

# --- acquire, extend, reacquire, release --------------------------------------------------
lock = r.lock("lock:resource", timeout=10)
check(lock.acquire(blocking=False), True, "acquire a free lock")
check(lock.locked(), True, "locked")
check(lock.owned(), True, "owned by its holder")
token = lock.local.token
check(r.get("lock:resource"), token, "the token, read back decrypted")
check(0 < r.pttl("lock:resource") <= 10_000, True, "acquired with its timeout")
check(lock.extend(20), True, "extend by 20 s")
check(10_000 < r.pttl("lock:resource") <= 30_000, True, "extend adds to the TTL")
check(lock.extend(5, replace_ttl=True), True, "extend with replace_ttl")
check(0 < r.pttl("lock:resource") <= 5_000, True, "replace_ttl sets the TTL")
check(lock.reacquire(), True, "reacquire")
check(5_000 < r.pttl("lock:resource") <= 10_000, True, "reacquire resets the timeout")
lock.release()
check(lock.locked(), False, "released")
check(r.exists("lock:resource"), 0, "release deletes the key")
try:
    lock.release()
    raise SystemExit("releasing an unlocked lock must raise")
except LockError:
    pass

# --- contention between two clients -------------------------------------------------------
a, b = client(), client()
held = a.lock("lock:shared", timeout=30, thread_local=False)
check(held.acquire(blocking=False), True, "client A acquires")
other = b.lock("lock:shared", timeout=30)
check(other.acquire(blocking=True, blocking_timeout=0.3), False, "B is kept out")
check(other.owned(), False, "B does not own it")
try:
    # B's token is not the stored one: the release script must refuse.
    other.local.token = b"not-the-token"
    other.release()
    raise SystemExit("B released A's lock")
except LockNotOwnedError:
    pass
other.local.token = b"not-the-token"
try:
    other.extend(10)
    raise SystemExit("B extended A's lock")
except LockNotOwnedError:
    pass
check(held.owned(), True, "A still owns it")
other.local.token = None
released = threading.Event()


def release_later():
    time.sleep(0.2)
    held.release()
    released.set()


t = threading.Thread(target=release_later)
t.start()
check(other.acquire(blocking=True, blocking_timeout=20), True, "B gets it once A releases")
t.join()
check(released.is_set(), True, "A released before B got it")
check(other.owned(), True, "B owns it")
other.release()

# --- mutual exclusion: a non-atomic read-increment-write under the lock -------------------
r.set("lock:counter", 0)
inside = [0]
overlaps = [0]
guard = threading.Lock()
errors = []


def worker():
    c = client()
    try:
        for _ in range(ROUNDS):
            with c.lock("lock:mutex", timeout=30, sleep=0.005, blocking_timeout=60):
                with guard:
                    inside[0] += 1
                    if inside[0] != 1:
                        overlaps[0] += 1
                value = int(c.get("lock:counter"))
                c.set("lock:counter", value + 1)
                with guard:
                    inside[0] -= 1
    except Exception as e:  # reported below, the test fails
        errors.append(repr(e))


threads = [threading.Thread(target=worker) for _ in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check(errors, [], "errors in the lock threads")
check(overlaps[0], 0, "two holders at once")
check(int(r.get("lock:counter")), THREADS * ROUNDS, "the counter protected by the lock")
check(r.exists("lock:mutex"), 0, "the last holder released it")

# --- expiry -------------------------------------------------------------------------------
first = a.lock("lock:expiring", timeout=0.3)
check(first.acquire(blocking=False), True, "acquire with a 300 ms timeout")
deadline = time.monotonic() + 20
while r.exists("lock:expiring") and time.monotonic() < deadline:
    time.sleep(0.05)
check(r.exists("lock:expiring"), 0, "the lock expired")
second = b.lock("lock:expiring", timeout=30)
check(second.acquire(blocking=False), True, "another client takes the expired lock")
check(first.owned(), False, "the first owner lost it")
try:
    first.extend(10)
    raise SystemExit("the first owner extended a lock it lost")
except LockNotOwnedError:
    pass
try:
    first.reacquire()
    raise SystemExit("the first owner reacquired a lock it lost")
except LockNotOwnedError:
    pass
try:
    first.release()
    raise SystemExit("the first owner released a lock it lost")
except LockNotOwnedError:
    pass
check(second.owned(), True, "the second owner keeps it")
check(r.get("lock:expiring"), second.local.token, "the second owner's token")
# The value stays behind for the audit (a token, stored encrypted).
second.extend(60)
r.set("lock:kept", second.local.token)
print("ok")
