"""An unmodified rq application (rq from PyPI), run through redcloak by tests/tests/rq.rs.

Usage: python3 rq_app.py HOST PORT [enqueue|full]
Enqueues jobs (immediate, failing, scheduled, with a dependency) and checks rq's queues and
registries; with `full` (the default) it also runs a worker in burst mode in this process and
checks the results and the registries the worker fills. Prints one line per step and
"ok" at the end; on the first failure it prints the traceback (whose last line names the Redis
error) and exits non-zero.
"""
import sys
import traceback
from datetime import datetime, timedelta, timezone

import redis
import rq
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

import jobs

host, port = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "full"
conn = redis.Redis(host=host, port=port)
step = "connect"


def check(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


try:
    step = "enqueue"
    q = Queue("redcloak-test", connection=conn)
    j1 = q.enqueue(jobs.add, 2, 3, job_id="job-add")
    j2 = q.enqueue(jobs.greet, "Ada", job_id="job-greet")
    j3 = q.enqueue(jobs.fail, "on purpose", job_id="job-fail")
    j4 = q.enqueue(jobs.add, 40, 2, job_id="job-after", depends_on=j1)
    check(q.count, 3, "queued jobs (the dependent one waits)")
    check(sorted(q.job_ids), ["job-add", "job-fail", "job-greet"], "queue job ids")
    check(
        [x.name for x in Queue.all(connection=conn)], ["redcloak-test"], "Queue.all (a set)"
    )
    print("enqueued", flush=True)

    step = "schedule"
    when = datetime.now(timezone.utc) + timedelta(hours=1)
    j5 = q.enqueue_at(when, jobs.greet, "later", job_id="job-later")
    check(ScheduledJobRegistry(queue=q).get_job_ids(), ["job-later"], "scheduled registry")
    print("scheduled", flush=True)

    if mode == "enqueue":
        step = "registries before work"
        check(FinishedJobRegistry(queue=q).get_job_ids(), [], "finished registry")
        check(StartedJobRegistry(queue=q).get_job_ids(), [], "started registry")
        check(Job.fetch("job-greet", connection=conn).args, ("Ada",), "job data")
        check(j4.get_status(), JobStatus.DEFERRED, "dependent job deferred")
        ScheduledJobRegistry(queue=q).remove(j5)
        check(ScheduledJobRegistry(queue=q).get_job_ids(), [], "scheduled job unscheduled")
        print("ok")
        sys.exit(0)

    step = "work"
    w = Worker([q], connection=conn, name="redcloak-worker")
    w.work(burst=True)
    print("worked", flush=True)

    step = "results"
    for job, want in [(j1, 5), (j2, "hello Ada"), (j4, 42)]:
        job.refresh()
        check(job.get_status(), JobStatus.FINISHED, f"{job.id} status")
        check(job.return_value(), want, f"{job.id} result")
    j3.refresh()
    check(j3.get_status(), JobStatus.FAILED, "job-fail status")
    check("on purpose" in (j3.latest_result().exc_string or ""), True, "failure recorded")
    print("results", flush=True)

    step = "registries"
    check(
        sorted(FinishedJobRegistry(queue=q).get_job_ids()),
        ["job-add", "job-after", "job-greet"],
        "finished registry",
    )
    check(FailedJobRegistry(queue=q).get_job_ids(), ["job-fail"], "failed registry")
    check(StartedJobRegistry(queue=q).get_job_ids(), [], "started registry")
    check(ScheduledJobRegistry(queue=q).get_job_ids(), ["job-later"], "scheduled registry")
    check(q.count, 0, "queue drained")
    print("registries", flush=True)

    step = "requeue and cancel"
    FailedJobRegistry(queue=q).requeue("job-fail")
    check(q.job_ids, ["job-fail"], "requeued")
    ScheduledJobRegistry(queue=q).remove(j5, delete_job=True)
    check(ScheduledJobRegistry(queue=q).get_job_ids(), [], "scheduled job removed")
    print("requeued", flush=True)
except Exception:
    print(f"rq step '{step}' failed:", flush=True)
    traceback.print_exc(file=sys.stdout)
    sys.exit(1)

print("ok")
