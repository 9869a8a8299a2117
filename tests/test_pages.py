"""The browser pages: jobs list, job page with lessons, new job, rescan."""

import json
import re
import shutil
import uuid

import pytest

from .helpers import csrf_token


@pytest.fixture
def staff(auth, factory):
    user = factory.user("staff@example.com", courses=["Course A", "Course C"])
    auth.login(user.email)
    return user


def titles(html):
    return re.findall(r'<td><a href="/jobs/[^"]+"[^>]*>([^<]+)</a></td>', html)


def test_jobs_list_newest_first(client, factory, staff):
    for name in ("First", "Second", "Third"):
        factory.job("Course A", title=name, lessons=0)
    assert titles(client.get("/jobs").get_data(as_text=True)) == ["Third", "Second", "First"]


def test_jobs_list_filters_and_search(app, client, factory, staff):
    factory.job("Course A", title="Thai greetings", video_id="henIVlCPVIY", lessons=0)
    factory.job("Course C", title="Counting", video_id="dQw4w9WgXcQ", lessons=0)
    from webapp.services import jobs

    with app.app_context():
        course_c = jobs.find_course("Course C").id
    assert titles(client.get(f"/jobs?course={course_c}").get_data(as_text=True)) == ["Counting"]
    assert titles(client.get("/jobs?q=greet").get_data(as_text=True)) == ["Thai greetings"]
    assert titles(client.get("/jobs?q=dQw4w9").get_data(as_text=True)) == ["Counting"]
    assert titles(client.get("/jobs?q=100%25").get_data(as_text=True)) == []  # % is literal
    assert titles(client.get("/jobs?status=not_started").get_data(as_text=True)) == [
        "Counting",
        "Thai greetings",
    ]
    assert titles(client.get("/jobs?status=completed").get_data(as_text=True)) == []
    # Empty parameters are no filter; an unknown status or a number that is not one answers 400
    # naming the parameter (as the API does).
    assert client.get("/jobs?status=&course=&page=").status_code == 200
    assert client.get("/jobs?status=bogus").status_code == 400
    for query, name in (("course=x", "course"), ("page=-3", "page")):
        response = client.get(f"/jobs?{query}")
        assert response.status_code == 400 and f"&#39;{name}&#39; must be a whole number" in response.text


def test_search_finds_any_part_of_a_title_or_video_id_whatever_its_case_and_follows_changes(
    app, client, factory, staff
):
    """On both databases: any substring, in any (ASCII) case, quotes and wildcards taken
    literally; a renamed job is found by its new title only, a deleted one no more; another
    course's jobs never."""
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import jobs

    factory.job("Course A", title='The "Photosynthesis" lab, 100% done', video_id="henIVlCPVIY", lessons=0)
    renamed = factory.job("Course A", title="Cell division", video_id="dQw4w9WgXcQ", lessons=0)
    factory.job("Course B", title="Photosynthesis elsewhere", lessons=0)  # not one of staff's courses
    lab = ['The "Photosynthesis" lab, 100% done']
    urls = ("https://youtu.be/henIVlCPVIY", "https://www.youtube.com/watch?v=henIVlCPVIY&t=42")
    for query in ("photosynth", "PHOTOSYNTHESIS", "lab, 100%", '"Photosynthesis"', "IVlcpv", "he", *urls):
        assert titles(client.get("/jobs", query_string={"q": query}).text) == [
            t.replace('"', "&#34;") for t in lab
        ], query
    for query in ("100_", "Photosynthesis lab", "0%d", "%x", "zzz"):
        assert titles(client.get("/jobs", query_string={"q": query}).text) == [], query
    with app.app_context():
        jobs.rename_job(db.session.get(VideoJob, uuid.UUID(str(renamed.id))), "Mitosis and meiosis")
        db.session.commit()
    assert titles(client.get("/jobs?q=meiosis").text) == ["Mitosis and meiosis"]
    assert titles(client.get("/jobs?q=division").text) == []
    assert client.get("/api/jobs?q=meiosis").json["total"] == 1
    with app.app_context():
        jobs.delete_job(db.session.get(VideoJob, uuid.UUID(str(renamed.id))))
        db.session.commit()
    assert titles(client.get("/jobs?q=meiosis").text) == []


def test_jobs_list_is_paginated(app, client, factory, staff):
    app.config["JOBS_PER_PAGE"] = 2
    for i in range(5):
        factory.job("Course A", title=f"Job {i}", lessons=0)
    first = client.get("/jobs").get_data(as_text=True)
    assert titles(first) == ["Job 4", "Job 3"] and "Page 1 of 3" in first
    assert titles(client.get("/jobs?page=3").get_data(as_text=True)) == ["Job 0"]
    assert titles(client.get("/jobs?page=99").get_data(as_text=True)) == []


def test_job_page_lists_lessons_in_order(client, factory, staff):
    job = factory.job("Course A", lessons=0, title="Ordered")
    factory.lessons(job.video_id, count=1, start=10)
    factory.lessons(job.video_id, count=2, start=1)
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    html = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    order = re.findall(r'data-lesson="([^"]+)"', html)
    assert order == [f"{job.video_id}/lesson_1", f"{job.video_id}/lesson_2", f"{job.video_id}/lesson_10"]
    assert "0:01" in html or "0:00" in html  # durations shown
    assert "not generated" in html
    assert "0 of 3 lessons generated" in html


def test_job_page_explains_a_missing_lesson_folder(client, factory, staff):
    job = factory.job("Course A", lessons=0)
    response = client.get(f"/jobs/{job.id}")
    assert response.status_code == 200
    assert "No lesson folder for this video yet" in response.get_data(as_text=True)


def test_create_job_from_a_url(client, staff, factory):
    factory.lessons("henIVlCPVIY", count=2, course="Course A")
    page = client.get("/jobs/new").get_data(as_text=True)
    course_id = re.search(r'<option value="(\d+)"[^>]*>Course A</option>', page).group(1)
    response = client.post(
        "/jobs",
        data={
            "course": course_id,
            "video": "https://youtu.be/henIVlCPVIY?t=3",
            "title": "",
            "csrf_token": csrf_token(client, "/jobs/new"),
        },
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Job created with 2 lessons" in html
    assert "Video henIVlCPVIY" in html and "henIVlCPVIY/lesson_2" in html


def test_create_job_with_a_bad_video_shows_the_form_again(client, staff):
    page = client.get("/jobs/new").get_data(as_text=True)
    course_id = re.search(r'<option value="(\d+)"', page).group(1)
    response = client.post(
        "/jobs",
        data={
            "course": course_id,
            "video": "https://vimeo.com/123",
            "title": "Keep me",
            "csrf_token": csrf_token(client, "/jobs/new"),
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Enter a YouTube video id" in html and 'value="Keep me"' in html


def test_rescan_adds_updates_and_removes_lessons(client, factory, staff):
    job = factory.job("Course A", lessons=2)
    factory.lessons(job.video_id, count=1, start=3)
    shutil.rmtree(factory.lessons_root / job.video_id / "lesson_1")
    response = client.post(
        f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")}, follow_redirects=True
    )
    html = response.get_data(as_text=True)
    assert "1 new, 0 changed, 1 gone" in html
    assert re.findall(r'data-lesson="([^"]+)"', html) == [
        f"{job.video_id}/lesson_2",
        f"{job.video_id}/lesson_3",
    ]


def test_status_fragment_for_htmx_and_json_for_api(client, factory, staff):
    job = factory.job("Course A", lessons=2)
    url = f"/video-transform/{job.id}/video-generation-status"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.mimetype == "text/html"
    assert '<section id="status-panel"' in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"] and "Accept" in fragment.headers["Vary"]
    as_html = client.get(url, headers={"Accept": "text/html"})
    assert as_html.mimetype == "text/html"
    as_json = client.get(url)
    assert as_json.mimetype == "application/json"
    assert as_json.json["totalLessons"] == 2
    assert "HX-Request" in as_json.headers["Vary"]


def test_html_error_pages_for_browsers(client, staff):
    response = client.get("/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.mimetype == "text/html" and "No such video job" in response.get_data(as_text=True)


def test_a_broken_lesson_says_what_is_wrong_once(client, factory, staff):
    """A lesson.json that does not parse read "lesson.json: lesson.json: invalid JSON at …"; a
    field's problem still names the file first."""
    job = factory.job("Course A", lessons=2)
    (factory.lessons_root / job.video_id / "lesson_1" / "lesson.json").write_text('{"title": "x",}')
    (factory.lessons_root / job.video_id / "lesson_2" / "lesson.json").write_text('{"segments": []}')
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    problems = re.findall(r'<small class="error">([^<]*)</small>', client.get(f"/jobs/{job.id}").text)
    assert problems[0].startswith("lesson.json: invalid JSON at line 1")
    assert problems[0].count("lesson.json") == 1
    assert problems[1] == "lesson.json: title: required"


def test_a_lesson_row_names_every_problem_of_its_lesson_json(client, factory, staff):
    job = factory.job("Course A", lessons=1)
    path = factory.lessons_root / job.video_id / "lesson_1" / "lesson.json"
    manifest = json.loads(path.read_text())
    manifest["segments"] = [{**manifest["segments"][0], "duration": d} for d in (1, 1, -1)]
    manifest["segments"][0]["background"] = "blurple"
    path.write_text(json.dumps(manifest))
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    problems = re.findall(r'<small class="error">([^<]*)</small>', client.get(f"/jobs/{job.id}").text)
    assert problems == [
        "segment 1, background: not a colour: &#39;blurple&#39; (use e.g. &#34;#1a1a2e&#34;); "
        "segment 3, duration: must be a positive number of seconds, got -1"
    ]


def test_a_job_created_without_lessons_is_a_warning_not_news(client, staff):
    """ "Job created with 0 lessons." came as a blue note, like a success: nothing can be
    generated until lessons come, which the page says below it."""
    data = {"course": "", "video": "zzzzzzzzzzz", "csrf_token": csrf_token(client, "/jobs/new")}
    data["course"] = re.search(r'<option[^>]*value="(\d+)"', client.get("/jobs/new").text).group(1)
    page = client.post("/jobs", data=data, follow_redirects=True).text
    assert re.search(r'class="flash flash-warning"[^>]*>Job created with 0 lessons', page)


def test_a_broken_lesson_keeps_its_own_title_and_its_problem_counts_from_one(client, factory, staff):
    """The list said "lesson_1 · —" for a lesson whose lesson.json gives a title but names a missing
    picture; a refused Generate said "segments[0].image" while the row said "segment 1"."""
    job = factory.job("Course A", lessons=2)
    first = factory.lessons_root / job.video_id / "lesson_1" / "lesson.json"
    manifest = json.loads(first.read_text())
    manifest["segments"][0]["image"] = "images/gone.png"
    first.write_text(json.dumps(manifest))
    token = csrf_token(client, f"/jobs/{job.id}")
    refused = client.post(
        f"/jobs/{job.id}/generate", data={"lessonPath": job.lessons[0], "csrf_token": token}
    )
    page = client.get(refused.headers["Location"]).text
    assert "segment 1, image: file not found" in page and "segments[0]" not in page
    second = factory.lessons_root / job.video_id / "lesson_2" / "lesson.json"
    second.write_text(json.dumps({"title": "Saying goodbye\u0000 \ud800", "segments": "not a list"}))
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": token})
    rows = client.get(f"/jobs/{job.id}").text
    titles = re.findall(r'<td class="lesson-title">\s*<strong>([^<]*)</strong>', rows)
    assert titles == ["Greetings — สวัสดี", "Saying goodbye"]
    assert "segment 1, image: file not found" in rows
