"""The health endpoint and the admin-only queue dashboard."""

import pytest
import sqlalchemy as sa

from webapp.extensions import db

from .helpers import csrf_token


def test_health_reports_database_and_redis(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok", "renderWorkers": 0}


def test_health_counts_the_render_workers(client, processes):
    """With every worker gone it said "ok" all the same: an operator now sees renders would wait
    (the web process stays healthy: a 503 would take it out of the load balancer)."""
    processes.worker("maintenance")  # not a render worker
    assert client.get("/health").json["renderWorkers"] == 0
    processes.worker()
    response = client.get("/health")
    assert response.status_code == 200 and response.json["renderWorkers"] == 1


def test_health_is_503_when_redis_is_down(app, client):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    app.extensions.pop("lvt_redis", None)
    response = client.get("/health")
    assert response.status_code == 503 and response.json["redis"] == "unavailable"


@pytest.mark.parametrize(
    "revision, status", [(None, 503), ("0008_released_videos", 503), ("0099_later", 200)]
)
def test_health_is_503_while_the_database_lacks_the_codes_migrations(app, client, revision, status):
    """A machine whose database was never upgraded (or is behind its code) said "ok" and got
    traffic that failed on missing tables. A database newer than the code (a rolling deploy,
    migrated first) keeps the old machines in the load balancer."""
    with app.app_context():
        (head,) = db.session.execute(sa.text("SELECT version_num FROM alembic_version")).one()
        set_revision(revision)
    try:
        response = client.get("/health")
        assert response.status_code == status
        assert response.json["database"] == ("ok" if status == 200 else "not migrated")
    finally:
        with app.app_context():
            set_revision(head)


def set_revision(revision: str | None) -> None:
    db.session.execute(sa.text("DELETE FROM alembic_version"))
    if revision:
        db.session.execute(sa.text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    db.session.commit()


def test_dashboard_is_for_admins_only(client, auth, factory):
    assert client.get("/rq/").status_code == 302  # to the login page
    staff = factory.user("staff@example.com", courses=["A"])
    admin = factory.user("root@example.com", role="admin")
    auth.login(staff.email)
    refused = client.get("/rq/")
    # Our own 403 page, as it is everywhere: no dashboard bar stacked above the site's header.
    assert refused.status_code == 403 and "The queue dashboard is for administrators." in refused.text
    assert "Queues (RQ dashboard)" not in refused.text and refused.text.count("<body") == 1
    assert client.get("/rq/0/data/queues.json").status_code == 403
    auth.logout()
    auth.login(admin.email)
    page = client.get("/rq/")
    assert page.status_code == 200 and "RQ" in page.get_data(as_text=True)
    assert client.get("/rq/0/data/queues.json").status_code == 200


def test_dashboard_actions_must_come_from_this_site(client, auth, factory):
    admin = factory.user("root@example.com", role="admin")
    auth.login(admin.email)
    cross = {"Origin": "https://evil.example"}
    assert client.post("/rq/queue/renders/queued/empty", headers=cross).status_code == 403
    assert client.post("/rq/requeue/renders", headers={"Referer": "https://evil.example/"}).status_code == 403
    same = {"Origin": "http://localhost"}
    assert client.post("/rq/queue/renders/queued/empty", headers=same).status_code == 200
    assert csrf_token(client, "/jobs")  # the session still works


def test_requeue_all_never_acts_on_a_get(app, client, auth, factory, redis_url):
    """rq-dashboard's "requeue all" also answered GET: a link to /login?next=/rq/requeue/webhooks
    led an administrator, after logging in, into requeueing every failed job of that queue
    (the redirect came from this site, so it passed the same-site check). Its button posts."""
    from redis import Redis
    from rq import Queue

    failing = Queue("webhooks", connection=Redis.from_url(redis_url))
    failed = failing.enqueue("webapp.no_such_task")
    failing.failed_job_registry.add(failed, ttl=600)
    admin = factory.user("root@example.com", role="admin")
    auth.login(admin.email)
    followed = client.get("/rq/requeue/webhooks", headers={"Referer": "http://localhost/login?next=/rq/x"})
    assert followed.status_code == 405
    assert failing.failed_job_registry.count == 1
    done = client.post("/rq/requeue/webhooks", headers={"Origin": "http://localhost"})
    assert done.status_code == 200 and failing.failed_job_registry.count == 0


def test_dashboard_links_back_to_the_app(client, auth, factory):
    from webapp.headers import dashboard_policy

    admin = factory.user("root@example.com", role="admin")
    auth.login(admin.email)
    for path in ("/rq/", "/rq/0/view/jobs", "/rq/0/view/workers"):
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert (
            '<a class="navbar-brand" href="/jobs" title="Back to Lesson videos">&larr; Lesson videos</a>'
            in html
        )
        assert 'href="/static/favicon.svg"' in html and "favicon.ico" not in html
        # The policy still admits exactly the page's own inline script, by its hash.
        assert page.headers["Content-Security-Policy"] == dashboard_policy(html)
