"""celery, unmodified, with the Redis broker (kombu's transport: queues are lists, bindings are
sets, unacked messages a hash plus a sorted set, binding deadlines refreshed by Lua scripts)
and the Redis result backend (results are strings; chords count their parts with Lua scripts
over sets, lists and counters) — a worker started in-process, through redcloak.

Checks: a task's result; many tasks at once; a task that raises (its failure is stored and
re-raised); a task that retries twice (ETA messages held unacked) before it succeeds; a group
and a chord (whose parts are counted by CHORD_PART_RETURN_LUA).

Usage: celery_app.py HOST PORT"""
import sys
import time

from celery import Celery, chord, group
from celery.contrib.testing.worker import start_worker

host, port = sys.argv[1], sys.argv[2]
url = f"redis://{host}:{port}/0"
app = Celery("redcloak_test", broker=url, backend=url, set_as_current=True)
app.conf.update(
    task_default_queue="redcloak-celery",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    result_expires=3600,
    broker_transport_options={"visibility_timeout": 3600},
)


def check(got, want, what):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")


@app.task
def add(x, y):
    return x + y


@app.task
def total(numbers):
    return sum(numbers)


@app.task
def boom(message):
    raise ValueError(message)


@app.task(bind=True, max_retries=5)
def flaky(self, word):
    if self.request.retries < 2:
        raise self.retry(countdown=0.2)
    return {"word": word, "retries": self.request.retries}


started = time.monotonic()
with start_worker(
    app,
    pool="threads",
    concurrency=2,
    perform_ping_check=False,
    loglevel="WARNING",
    shutdown_timeout=15,
):
    check(add.delay(2, 3).get(timeout=30), 5, "add")
    results = [add.delay(i, i) for i in range(10)]
    check([r.get(timeout=30) for r in results], [2 * i for i in range(10)], "ten tasks")
    failing = boom.delay("secret failure text")
    try:
        failing.get(timeout=30)
        raise SystemExit("the failing task did not raise")
    except ValueError as e:
        check(str(e), "secret failure text", "the stored exception")
    check(failing.state, "FAILURE", "the failed task's state")
    retried = flaky.delay("persistence")
    check(retried.get(timeout=30), {"word": "persistence", "retries": 2}, "retried task")
    check(group(add.s(i, 1) for i in range(4))().get(timeout=30), [1, 2, 3, 4], "group")
    check(chord(add.s(i, i) for i in range(5))(total.s()).get(timeout=30), 20, "chord")
print("ok")
