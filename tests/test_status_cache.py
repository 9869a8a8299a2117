"""The JSON status is the document every status change publishes, kept in Redis: same shape as
the contract, an ETag and 304 for conditional polls, fresh after every change, and still
answered (computed) when Redis has none or does not answer."""

from __future__ import annotations

import uuid

from redis import Redis

from webapp.services import summary
from webapp.views.schemas import GenerationStatus

from .helpers import bearer
from .test_statement_counts import _add_jobs, counting

GENERATE = "/video-transform/generate-video"
STATUS = "/video-transform/{}/video-generation-status"


def _fresh(app, job_id) -> dict:
    """The status as computed from the database now, dumped by the contract's schema."""
    from webapp.extensions import db
    from webapp.models import VideoJob

    with app.app_context():
        job = db.session.get(VideoJob, uuid.UUID(str(job_id)))
        return GenerationStatus().dump(summary.status(job).as_json())


def test_kept_document_matches_the_contract_and_changes_with_the_job(app, client, factory):
    user = factory.user(courses=["A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("A", lessons=2)
    url = STATUS.format(job.id)
    first = client.get(url, headers=headers)
    assert first.status_code == 200 and first.json == _fresh(app, job.id)
    assert first.headers["Cache-Control"] == "private, no-cache" and first.headers["ETag"]
    # A conditional poll of an unchanged job: 304, no body.
    again = client.get(url, headers={**headers, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    # A change is seen at once: new body, new ETag, the old one no longer matches.
    assert (
        client.post(
            GENERATE, json={"jobId": job.id, "lessonPath": job.lessons[0]}, headers=headers
        ).status_code
        == 202
    )
    changed = client.get(url, headers={**headers, "If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]
    assert changed.json == _fresh(app, job.id)
    assert changed.json["videoGenerationStatus"] == "generating" and len(changed.json["activeRenders"]) == 1


def test_a_rich_job_has_the_same_shape_kept_and_computed(app, client, factory):
    factory.user("m@example.com", courses=["Large"])
    headers = bearer(factory.token("m@example.com"))
    (job_id,) = _add_jobs(app, "Large", jobs=1, lessons=5, renders=3)
    body = client.get(STATUS.format(job_id), headers=headers).json
    assert body == _fresh(app, job_id)
    assert body["generatedVideos"] and body["activeRenders"]


def test_a_kept_document_costs_no_status_queries(app, client, factory):
    factory.user("m@example.com", courses=["Large"])
    headers = bearer(factory.token("m@example.com"))
    (job_id,) = _add_jobs(app, "Large", jobs=1, lessons=20, renders=3)
    url = STATUS.format(job_id)
    client.get(url, headers=headers)  # kept by the commit that wrote the rows, or by this read
    with counting(app) as statements:
        assert client.get(url, headers=headers).status_code == 200
    # The token's user, the user's courses and the job's course are remembered (principals.py),
    # and the document is kept in Redis: a poll asks the database nothing.
    assert statements == []
    # The first poll through another process's memory asks only who and where.
    app.extensions.pop("lvt_principals")
    with counting(app) as statements:
        assert client.get(url, headers=headers).status_code == 200
    assert len(statements) == 3, statements  # the token with its user, the user's courses, the job's course
    assert not any("renders" in s.lower() or "lessons" in s.lower() for s in statements), statements


def test_without_a_kept_document_the_status_is_computed_and_kept(app, client, factory, redis_url):
    user = factory.user(courses=["A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("A", lessons=1)
    Redis.from_url(redis_url).flushdb()  # Redis lost its data
    response = client.get(STATUS.format(job.id), headers=headers)
    assert response.status_code == 200 and response.json == _fresh(app, job.id)
    assert Redis.from_url(redis_url).get(f"lvt:status:{job.id}") is not None


def test_the_last_commit_is_the_last_word_whatever_order_the_publishes_come_in(app, factory, monkeypatch):
    """Two writers commit one after the other (the job's lock orders them) but may publish the
    other way round: the kept document is still the later commit's."""
    from webapp import status_channel
    from webapp.extensions import db
    from webapp.models import VideoGenerationStatus, VideoJob

    job_id = uuid.UUID(str(factory.job("A", lessons=1).id))
    held = []
    publish = status_channel.publish_status
    monkeypatch.setattr(status_channel, "publish_status", lambda *args: held.append(args))
    with app.app_context():
        for status in (VideoGenerationStatus.FAILED, VideoGenerationStatus.COMPLETED):
            row = summary.lock_job(job_id)
            row.video_generation_data = summary.compute(row)[1]
            row.video_generation_status = status
            summary.changed(job_id)
            db.session.commit()
        assert len(held) == 2
        for args in reversed(held):  # the first commit's publish comes last
            publish(*args)
        version, text = status_channel.current_status(job_id)
        assert version == held[1][2] > held[0][2]
        assert '"videoGenerationStatus":"completed"' in text
        assert db.session.get(VideoJob, job_id).video_generation_status == VideoGenerationStatus.COMPLETED


def test_a_document_kept_by_a_read_gives_way_to_the_writer_that_was_committing(app):
    """A read computes and keeps the document while a writer, past taking its version, has not
    committed yet: the read's document lacks the change, and the writer's must replace it."""
    from webapp import status_channel

    job_id = uuid.uuid4()
    with app.app_context():
        version = status_channel.next_status_version(job_id)
        status_channel.keep_status(job_id, '{"seen":"before the commit"}')
        status_channel.publish_status(job_id, '{"seen":"the commit"}', version)
        assert status_channel.current_status(job_id) == (version, '{"seen":"the commit"}')
        # A kept document is never replaced by a read.
        status_channel.keep_status(job_id, '{"seen":"a later read"}')
        assert status_channel.current_status(job_id) == (version, '{"seen":"the commit"}')
