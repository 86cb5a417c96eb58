"""huey (RedisHuey), unmodified, with a consumer started in-process, through redcloak: tasks
are pickled messages in a list (LPUSH / BRPOP), results live in a hash, and delayed or
scheduled tasks are members of a sorted set scored by their time, popped by a Lua script
(ZRANGEBYSCORE + ZREMRANGEBYSCORE) that redcloak runs itself on encrypted members.

Checks: immediate tasks and their results; a task delayed by a second and one scheduled at an
absolute time (both wait in the sorted set, encrypted, until the scheduler pops them); a task
that fails once and is retried after a delay (through the schedule too); a revoked task that
never runs; a task lock (HSETNX) that keeps a second run out.

Usage: huey_app.py HOST PORT"""
import datetime
import sys
import time

import redis
from huey import RedisHuey
from huey.exceptions import TaskException, TaskLockedException

host, port = sys.argv[1], int(sys.argv[2])
huey = RedisHuey("redcloak-test", host=host, port=port, read_timeout=1)
r = redis.Redis(host=host, port=port)
runs = {}


def check(got, want, what):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")


@huey.task()
def add(a, b):
    return a + b


@huey.task()
def stamp(label):
    runs[label] = time.time()
    return label.upper()


@huey.task(retries=1, retry_delay=1)
def fails_once(label):
    runs[label] = runs.get(label, 0) + 1
    if runs[label] == 1:
        raise RuntimeError("first attempt fails")
    return runs[label]


@huey.task()
def locked(label):
    with huey.lock_task("the-one-lock"):
        return label


consumer = huey.create_consumer(
    workers=2, worker_type="thread", periodic=False, initial_delay=0.05,
    max_delay=0.5, check_worker_health=False,
)
consumer.start()
try:
    check(add(2, 3).get(blocking=True, timeout=30), 5, "an immediate task")
    many = [add(i, i) for i in range(10)]
    check([m.get(blocking=True, timeout=30) for m in many], [2 * i for i in range(10)],
          "ten immediate tasks")

    sent = time.time()
    delayed = stamp.schedule(("delayed",), delay=1)
    at = datetime.datetime.now() + datetime.timedelta(seconds=1)
    scheduled = stamp.schedule(("scheduled",), eta=at)
    revoked = stamp.schedule(("revoked",), delay=1)
    revoked.revoke()
    # A worker takes each from the queue and, as it is not due yet, adds it to the schedule
    # (a sorted set of encrypted messages) until the scheduler pops it.
    check(delayed.get(blocking=True, timeout=30), "DELAYED", "the delayed task")
    check(scheduled.get(blocking=True, timeout=30), "SCHEDULED", "the scheduled task")
    # They waited (huey's scheduler pops them on its 1 s tick, so not to the millisecond).
    check(runs["delayed"] >= sent + 0.5, True, "the delayed task waited")
    check(runs["scheduled"] >= sent + 0.5, True, "the scheduled task waited")

    retried = fails_once("flaky")
    # The first attempt's error is stored as its result; the retry's result replaces it.
    try:
        value = retried.get(blocking=True, timeout=30)
    except TaskException:
        deadline = time.monotonic() + 20
        while runs.get("flaky") != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        retried.reset()
        value = retried.get(blocking=True, timeout=30)
    check(value, 2, "the retried task's second attempt")

    with huey.lock_task("the-one-lock"):
        try:
            locked("kept out").get(blocking=True, timeout=30)
            raise SystemExit("a locked task ran")
        except TaskException as e:
            check(e.metadata.get("error", "").startswith("TaskLockedException"), True,
                  f"the task lock: {e.metadata}")
    check(locked("free").get(blocking=True, timeout=30), "free", "the lock was released")

    # The revoked task came due with the others and was skipped.
    deadline = time.monotonic() + 20
    while huey.storage.schedule_size() and time.monotonic() < deadline:
        time.sleep(0.1)
    check(huey.storage.schedule_size(), 0, "the schedule is empty")
    check("revoked" in runs, False, "the revoked task never ran")
    # A result kept in the results hash for the audit.
    check(add(20, 22).get(blocking=True, timeout=30, preserve=True), 42, "a preserved result")
    # A delayed task left in the schedule for the audit (its member is the pickled task).
    stamp.schedule(("left-for-the-audit",), delay=3600)
    deadline = time.monotonic() + 20
    while not huey.storage.schedule_size() and time.monotonic() < deadline:
        time.sleep(0.05)
    check(huey.scheduled()[0].args, ("left-for-the-audit",), "the task waiting")
    check(r.zcard("huey.schedule.redcloaktest"), 1, "the schedule's sorted set")
finally:
    consumer.stop(graceful=True)
print("ok")
