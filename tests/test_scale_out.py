"""Scale-out, simulated on one host: two "machines" render one *Generate all*, and one of them
is SIGKILLed half way. Each machine is `flask worker` + `flask cron` started as real processes
with its own instance folder, RENDER_CACHE_DIR, working directory and TMPDIR; they share only
the database, Redis, LESSONS_ROOT and VIDEOS_ROOT (the shared storage of the README).

With the media in an object store (STORAGE_URL=s3://… on the test's SeaweedFS) the machines
share no folder at all: each has its own LESSONS_ROOT and VIDEOS_ROOT too, left empty, and they
share only the database, Redis and the store (issue 13).

On SQLite the two machines share one database file on one host, which is all SQLite can honestly
offer (it must not be shared over a network filesystem); CI runs this test on PostgreSQL and the
Redis server too, where the machines share what real machines would. The full-size run with
timings is bench/scaleout_bench.py (`--store` for the object store).
"""

from __future__ import annotations

import uuid

import pytest
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimitRegistry

from webapp.models import RenderState

from .helpers import bearer, to_store, wait_for
from .scaleout import Cluster, busy_half_way, check_outcome, renders, sweep_leftovers

pytestmark = pytest.mark.slow

LESSONS = 5
SECONDS = 6.0  # per lesson: long enough that a render is still running when machine A is killed
FPS = 30


@pytest.fixture
def media(request) -> str:
    """Where the media is: "shared disk" (LESSONS_ROOT, VIDEOS_ROOT) unless a test asks for
    "store" (indirect parametrization)."""
    return getattr(request, "param", "shared disk")


@pytest.fixture
def config(config, media, request):
    """A silent render is declared lost after 5 s (a heartbeat every second, the reaper every
    second) instead of 30 s and a 10 s reaper tick: the same mechanism, sooner."""
    fast = {"LOST_RENDER_SECONDS": 5, "RENDER_HEARTBEAT_SECONDS": 1, "REAP_INTERVAL_SECONDS": 1}
    if media == "store":  # the test bucket, under a prefix of this test's own
        bucket = request.getfixturevalue("s3_bucket")
        fast |= {"STORAGE_URL": f"s3://{bucket}/t-{uuid.uuid4().hex[:10]}"}
    return {**config, **fast}


def distinct_lessons(factory, video_id: str, count: int) -> None:
    """Lessons a frame apart in length, so no machine's cache can serve one lesson for another."""
    for number in range(1, count + 1):
        half = (SECONDS + number / FPS) / 2
        factory.lessons(video_id, 1, start=number, segments=2, seconds=half, width=640, height=360, fps=FPS)


def generate_all_and_kill_a_half_way(
    app, client, factory, processes, redis_url, done_at_least=1, store=None, **env
):
    """Two machines (one render worker each, `env` added to their settings) take a Generate all;
    machine A is SIGKILLed once it has finished `done_at_least` renders and is running another.
    With `store`, the lessons are in the store only and the machines share no folder.
    Returns the cluster, the job, the ids of the renders killed, and a function that waits
    for the job to finish and returns its status JSON."""
    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))
    distinct_lessons(factory, "scaleout01a", LESSONS)
    if store is not None:
        to_store(app, store, "scaleout01a")
    job = factory.job("Course A", video_id="scaleout01a", lessons=0)
    assert len(job.lessons) == LESSONS
    cluster = Cluster(processes, redis_url, store=store)
    cluster.start(**env)
    response = client.post(f"/api/jobs/{job.id}/generate-all", headers=headers)
    assert response.status_code == 202 and len(response.json["renders"]) == LESSONS

    running = wait_for(
        lambda: busy_half_way(app, cluster, "a", done_at_least), 90, "machine A half way", 0.05
    )
    cluster.kill("a")
    ids = {r.id for r in running}
    killed = {r.id for r in renders(app) if r.id in ids and r.state == RenderState.RENDERING}
    assert killed, "machine A finished its render before it was killed"

    def finished():
        status = client.get(f"/video-transform/{job.id}/video-generation-status", headers=headers).json
        return status["videoGenerationStatus"] != "generating" and status

    return cluster, job, killed, lambda timeout: wait_for(finished, timeout, "the job to finish")


def test_two_machines_share_a_generate_all_and_one_killed_loses_nothing(
    app, client, factory, processes, redis_url
):
    app.config["COURSE_RENDER_CONCURRENCY"] = 2  # both machines render the course at once
    cluster, job, killed, wait_finished = generate_all_and_kill_a_half_way(
        app, client, factory, processes, redis_url
    )
    status = wait_finished(90)
    per_machine = check_outcome(app, cluster, status, job.lessons, killed)
    assert set(per_machine) == {"a", "b"} and sum(per_machine.values()) == LESSONS


@pytest.mark.parametrize("media", ["store"], indirect=True)
def test_machines_sharing_only_the_database_redis_and_the_store_lose_nothing_when_one_is_killed(
    app, client, factory, processes, redis_url, media
):
    """Each machine fetches the lessons from the store into its own cache, renders locally and
    uploads: every video is in the store once, the machines' and the web's own folders stay
    empty, and the sweep of unfinished uploads leaves none (of a render killed mid-upload)."""
    store = app.extensions["store"]
    app.config["COURSE_RENDER_CONCURRENCY"] = 2
    cluster, job, killed, wait_finished = generate_all_and_kill_a_half_way(
        app, client, factory, processes, redis_url, store=store
    )
    status = wait_finished(90)
    per_machine = check_outcome(app, cluster, status, job.lessons, killed)
    assert set(per_machine) == {"a", "b"} and sum(per_machine.values()) == LESSONS
    sweep_leftovers(app, store)


def test_a_lost_render_frees_its_course_slot_when_declared_lost(app, client, factory, processes, redis_url):
    """One render of the course at a time, held by machine A when it dies: machine B must not
    wait for RQ to notice the dead worker (its heartbeat runs out after up to 90 s) before it
    renders the rest of the course: the slot is freed when the reaper declares the render lost."""
    app.config["COURSE_RENDER_CONCURRENCY"] = 1
    # With one slot the machines take turns, and which gets a second turn is chance: kill
    # machine A in its first render.
    cluster, job, killed, wait_finished = generate_all_and_kill_a_half_way(
        app, client, factory, processes, redis_url, done_at_least=0, COURSE_RENDER_CONCURRENCY=1
    )
    [lost_id] = killed
    lost = wait_for(
        lambda: (r := next(r for r in renders(app) if r.id == lost_id)).state != RenderState.RENDERING and r,
        30,
        "the reaper to declare the render lost",
    )
    assert lost.error_kind == "worker_lost"
    [slots] = RateLimitRegistry.all(cluster.redis)  # the course's
    assert slots.key.startswith("course-")

    def freed():
        return (
            lost.rq_job_id not in slots.get_allowed_job_ids()
            and Job.fetch(lost.rq_job_id, connection=cluster.redis).get_status() == JobStatus.FAILED
        )

    wait_for(freed, 5, "RQ to let go of the dead render's job")
    # Well within the 90 s RQ alone would take: machine B renders the rest at once.
    status = wait_finished(60)
    per_machine = check_outcome(app, cluster, status, job.lessons, killed)
    assert sum(per_machine.values()) == LESSONS
