"""The one place that speaks to Redis and RQ: connections, queues, and every RQ operation
on render and webhook jobs (enqueue, cancel, stop, status, registry clean-up). On the same
connection: the few keys web processes share (logins logged out, uploads in flight, secrets
shown once) in shared_state.py, and the status documents pushed to event streams in
status_channel.py.

Services speak of renders; this module turns that into RQ calls. Tasks are named by their
dotted path, as RQ documents, so nothing here (or in services) imports `webapp.tasks`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue, Retry, Worker
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit, RateLimitRegistry
from rq.registry import StartedJobRegistry

from . import embedded_redis

log = logging.getLogger(__name__)

RENDER_QUEUE = "renders"
# Short housekeeping jobs (the lost-render reaper) run from their own queue so a
# worker kept for them is never stuck behind long renders.
MAINTENANCE_QUEUE = "maintenance"
# Webhook deliveries: the housekeeping worker takes them after MAINTENANCE_QUEUE (listed first),
# so however many wait, the reaper is never behind more than the one being delivered.
WEBHOOK_QUEUE = "webhooks"
# ... and, only when that one is empty, those of courses whose endpoints are not keeping up
# (webhooks.slow_course): a course cannot hold up the others' deliveries with endpoints that
# never answer.
WEBHOOK_SLOW_QUEUE = "webhooks-slow"
# A worker's default queues, in this order:
ALL_QUEUES = (MAINTENANCE_QUEUE, WEBHOOK_QUEUE, WEBHOOK_SLOW_QUEUE, RENDER_QUEUE)

RENDER_TASK = "webapp.tasks.render_lesson"
ON_RENDER_FAILED = "webapp.tasks.on_render_failed"
ON_RENDER_STOPPED = "webapp.tasks.on_render_stopped"
DELIVER_WEBHOOK = "webapp.tasks.deliver_webhook"

# RQ's verdicts on a job that will not run (again).
OVER = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)
DROPPED = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


class Unavailable(Exception):
    """Redis refused or did not answer: nothing was queued."""


def redis_url(app: Flask | None = None) -> str:
    """REDIS_URL, or the URL of the embedded Redis (started on first use)."""
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if url:
        return url
    state = app.extensions.setdefault("lvt_redis", {})
    if "embedded_url" not in state:
        state["embedded_url"] = embedded_redis.ensure_running(app.instance_path)
    return state["embedded_url"]


def connection(app: Flask | None = None) -> Redis:
    """The app's Redis client. Its pool reconnects by itself when Redis comes back."""
    app = app or current_app
    state = app.extensions.setdefault("lvt_redis", {})
    if "client" not in state:
        state["client"] = Redis.from_url(
            redis_url(app),
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
            # Each open event stream holds a subscription; redis-py's default pool stops at 100.
            max_connections=10_000,
        )
    return state["client"]


def worker_connection(app: Flask | None = None) -> Redis:
    """A fresh client for a worker or scheduler; RQ sets the timeouts it needs."""
    return Redis.from_url(redis_url(app or current_app))


def render_queue(conn: Redis | None = None) -> Queue:
    return Queue(RENDER_QUEUE, connection=conn or connection())


def limits_storage_uri(app: Flask) -> str:
    """The same Redis for the login throttle, in the URI form the `limits` package reads."""
    url = app.config.get("REDIS_URL") or embedded_redis.url(app.instance_path)
    return "redis+unix://" + url[len("unix://") :] if url.startswith("unix://") else url


# --- render jobs ---------------------------------------------------------------------------


def render_job_id(render_id: uuid.UUID | str) -> str:
    """The RQ job id of a render's first attempt (later automatic attempts may share it)."""
    return f"render-{render_id}"


def job_timeout(duration: float | None) -> int:
    """RQ's hard limit for one render: generous for the lesson's length, never unbounded."""
    return int(300 + 4 * (duration or 600))


def enqueue_render(
    render_id: uuid.UUID,
    rq_job_id: str,
    *,
    attempt: int,
    job_id: uuid.UUID,
    course_id: int,
    duration: float | None,
) -> str:
    """Enqueue one render attempt; raises Unavailable when Redis refuses."""
    try:
        rq_job = _enqueue(render_id, rq_job_id, attempt, job_id, course_id, duration)
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc
    return rq_job.id


def _enqueue(render_id, rq_job_id, attempt, job_id, course_id, duration) -> Job:
    return render_queue().enqueue(
        RENDER_TASK,
        kwargs={"render_id": str(render_id)},
        job_id=rq_job_id,
        # Shown by the RQ dashboard, which does not escape it: ids only, nothing anyone typed.
        description=f"render {render_id} (attempt {attempt})",
        job_timeout=job_timeout(duration),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        meta={"render_id": str(render_id), "job_id": str(job_id), "course_id": course_id},
        # Fair share: at most N renders of one course are queued or running at once.
        rate_limit=RateLimit(f"course-{course_id}", current_app.config["COURSE_RENDER_CONCURRENCY"]),
        on_failure=Callback(ON_RENDER_FAILED),
        on_stopped=Callback(ON_RENDER_STOPPED),
    )


class SendInFlight(Exception):
    """An attempt of this webhook message is on its way to the endpoint right now."""


# One chain of delivery attempts per message: which RQ job is the message's chain, and, while
# an attempt is being sent, which job sends it. A worker claims the send and a redelivery
# replaces the chain each in one atomic step, so whichever comes second gives way: a replaced
# chain's attempt sends nothing, and nothing replaces a chain while its attempt is on its way.
_CHAIN, _SENDING = "lvt:webhook-chain:{}", "lvt:webhook-sending:{}"
_REPLACE_CHAIN = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, false} end
local earlier = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {1, earlier}
"""
_CLAIM_SEND = """
local chain = redis.call('GET', KEYS[1])
if chain and chain ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""
_END_SEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""


def _chain_keys(message_id: str) -> list[str]:
    return [_CHAIN.format(message_id), _SENDING.format(message_id)]


def _webhook_job_timeout() -> int:
    return current_app.config["WEBHOOK_TIMEOUT"] + 30


def enqueue_webhook(message_id: str, first_attempt: int = 1, slow: bool = False) -> None:
    """Deliver one message from a worker, retried with backoff (in the slow lane when `slow`);
    raises Unavailable. This chain of attempts replaces the message's earlier one (its retry
    still waiting is taken out of RQ, and sends nothing should a worker have it already), and
    is refused (SendInFlight) while an attempt of the message is being sent. Ids only: the
    message (and whatever a user typed into it) stays in the database."""
    intervals = list(current_app.config["WEBHOOK_RETRY_INTERVALS"])
    # The chain is remembered while it may still run: every wait and every attempt, and an hour.
    remembered = sum(intervals) + (len(intervals) + 1) * _webhook_job_timeout() + 3600
    rq_job_id = f"webhook-{uuid.uuid4().hex}"
    conn = connection()
    try:
        replaced, earlier = conn.eval(_REPLACE_CHAIN, 2, *_chain_keys(message_id), rq_job_id, remembered)
        if not replaced:
            raise SendInFlight(message_id)
        Queue(WEBHOOK_SLOW_QUEUE if slow else WEBHOOK_QUEUE, connection=conn).enqueue(
            DELIVER_WEBHOOK,
            kwargs={"message_id": message_id, "first_attempt": first_attempt},
            job_id=rq_job_id,
            description=f"webhook message {message_id}",
            job_timeout=_webhook_job_timeout(),
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        )
        if earlier is not None:
            _take_out_waiting(earlier.decode())
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc


def _take_out_waiting(rq_job_id: str) -> None:
    """Take a replaced chain's waiting retry out of RQ (tidiness: it would send nothing)."""
    with contextlib.suppress(NoSuchJobError, InvalidJobOperation):
        job = Job.fetch(rq_job_id, connection=connection())
        if job.get_status() in (JobStatus.QUEUED, JobStatus.SCHEDULED):
            job.cancel()


def webhook_in_flight(message_id: str) -> bool:
    """Whether an attempt of the message is on its way to the endpoint right now."""
    try:
        return bool(connection().exists(_SENDING.format(message_id)))
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc


def claim_webhook_send(message_id: str) -> bool:
    """Inside a worker: claim the message's send for the running job, unless a redelivery
    replaced its chain (False: send nothing). True when Redis cannot say."""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        return True
    try:
        keys = _chain_keys(message_id)
        return bool(connection().eval(_CLAIM_SEND, 2, *keys, job.id, _webhook_job_timeout()))
    except RedisError:
        return True


def end_webhook_send(message_id: str) -> None:
    """Inside a worker, once the attempt is logged: the send is over. (The chain stays
    remembered until it expires: a replaced attempt that runs late still finds itself replaced.)"""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        return
    with contextlib.suppress(RedisError):
        connection().eval(_END_SEND, 1, _SENDING.format(message_id), job.id)


def webhook_attempt() -> int:
    """Inside a worker: 1 for a job's first run, 2 for its first retry, and so on."""
    from rq import get_current_job

    job = get_current_job()
    if job is None or job.retries_left is None:
        return 1
    return len(current_app.config["WEBHOOK_RETRY_INTERVALS"]) - job.retries_left + 1


def cancel_job(rq_job_id: str | None) -> None:
    """Take a queued job out of RQ (queue, schedule and rate-limit slot); best effort."""
    if not rq_job_id:
        return
    try:
        Job.fetch(rq_job_id, connection=connection()).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass
    except RedisError as exc:
        # The worker also checks the row before it starts, so the render stays cancelled.
        log.warning("could not remove job from queue rq_job_id=%s error=%s", rq_job_id, exc)


def stop_job(rq_job_id: str | None) -> bool:
    """Ask the worker running this job to kill it (RQ's stop command); False if it could not."""
    try:
        send_stop_job_command(connection(), rq_job_id)
    except (InvalidJobOperation, NoSuchJobError, RedisError) as exc:
        log.warning("stop command failed rq_job_id=%s error=%s", rq_job_id, exc)
        return False
    return True


def job_status(rq_job_id: str | None) -> JobStatus | None:
    """RQ's status of a job; None when RQ no longer has it."""
    if not rq_job_id:
        return None
    try:
        return Job.fetch(rq_job_id, connection=connection()).get_status()
    except NoSuchJobError:
        return None


def abandon_job(rq_job_id: str | None) -> None:
    """The worker running this job is gone (the reaper found its render silent): let RQ fail
    the job as abandoned now, as its own clean-up would once the worker's heartbeat ran out (up
    to 90 s later), so the course's rate-limit slot it holds is freed and the next render of
    the course starts at once. Best effort: RQ's own clean-up remains."""
    if not rq_job_id:
        return
    try:
        conn = connection()
        registry = StartedJobRegistry(RENDER_QUEUE, connection=conn)
        # Entries are "<job id>:<execution id>"; expire this job's executions, and clean up
        # only what expired by then (score 0), so no other job is touched.
        mine = [e for e in conn.zrange(registry.key, 0, -1) if registry.parse_job_id(e) == rq_job_id]
        if mine:
            conn.zadd(registry.key, dict.fromkeys(mine, 0), xx=True)
            registry.cleanup(timestamp=0)
    except RedisError as exc:
        log.warning("could not release abandoned job rq_job_id=%s error=%s", rq_job_id, exc)


def release_abandoned_jobs() -> None:
    """Let RQ fail its own abandoned render jobs now (it otherwise waits for a worker's
    10-minute maintenance), which also frees their rate-limit slots."""
    conn = connection()
    StartedJobRegistry(RENDER_QUEUE, connection=conn).cleanup()
    for registry in RateLimitRegistry.all(conn):
        registry.cleanup()


def depths() -> dict[str, tuple[int, float]]:
    """Per queue: jobs waiting, and the age in seconds of the oldest one (0 when none)."""
    now = time.time()
    found = {}
    for name in ALL_QUEUES:
        waiting = Queue(name, connection=connection())
        first = waiting.get_jobs(0, 0)
        enqueued = first[0].enqueued_at if first and first[0].enqueued_at else None
        found[name] = (waiting.count, max(0.0, now - enqueued.timestamp()) if enqueued else 0.0)
    return found


def workers_alive(queue_name: str | None = None) -> int:
    """Workers registered (alive: each renews its key every few seconds), all or those of a queue."""
    if queue_name is None:
        return Worker.count(connection=connection())
    return Worker.count(queue=Queue(queue_name, connection=connection()))
