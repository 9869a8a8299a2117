"""The files a render writes beside its video (poster, chapters, captions) in the app: listed
in the status, served with the video's course scope, shown by the player, deleted with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import PASSWORD, bearer, wait_in_page


@pytest.fixture
def alice(factory):
    user = factory.user("alice@example.com", courses=["Course A"])
    return bearer(factory.token(user.email))


def captioned_job(app, factory):
    """A job whose one lesson has Thai captions and titled segments."""
    job = factory.job("Course A", lessons=1, segments=2, seconds=1.0)
    manifest_path = Path(app.config["LESSONS_ROOT"]) / job.lessons[0] / "lesson.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["captions"] = {"language": "th"}
    manifest["segments"][0]["caption"] = "สวัสดีครับ ยินดีต้อนรับ"
    manifest["segments"][1]["captions"] = [{"start": 0.1, "end": 0.8, "text": "Hello <b>&</b> welcome"}]
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False))
    return job


def rendered(client, headers, job, work, name: str = "final.mp4") -> dict:
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": name}
    assert client.post("/video-transform/generate-video", json=body, headers=headers).status_code == 202
    work()
    status = client.get(f"/video-transform/{job.id}/video-generation-status", headers=headers).json
    (entry,) = status["generatedVideos"]
    assert entry["success"] is True
    return entry


def test_sidecars_are_listed_served_and_scoped(app, client, factory, alice, work):
    job = captioned_job(app, factory)
    entry = rendered(client, alice, job, work)
    base = f"videos/{job.lessons[0]}/final"
    assert entry["outputPath"] == f"{base}.mp4"
    assert entry["captionsPath"] == f"{base}.vtt" and entry["posterPath"] == f"{base}.jpg"

    url = f"/video-transform/{job.id}/{entry['captionsPath']}"
    captions = client.get(url, headers=alice)
    assert captions.status_code == 200 and captions.mimetype == "text/vtt"
    text = captions.get_data(as_text=True)
    assert (
        text.startswith("WEBVTT") and "สวัสดีครับ" in text and "Hello &lt;b&gt;&amp;&lt;/b&gt; welcome" in text
    )
    poster = client.get(f"/video-transform/{job.id}/{entry['posterPath']}", headers=alice)
    assert poster.status_code == 200 and poster.mimetype == "image/jpeg" and poster.data[:2] == b"\xff\xd8"
    chapters = client.get(f"/video-transform/{job.id}/{base}.chapters.vtt", headers=alice)
    assert chapters.status_code == 200 and chapters.get_data(as_text=True).startswith("WEBVTT")

    stranger = bearer(factory.token(factory.user(courses=["Course B"]).email))
    assert client.get(url, headers=stranger).status_code == 404
    assert client.get(url).status_code == 401
    # Only the files the render wrote: not any .vtt or .jpg name beside the video.
    for other in (f"{base}x.vtt", f"videos/{job.lessons[0]}/lesson.json", f"{base}.mp4.jpg"):
        assert client.get(f"/video-transform/{job.id}/{other}", headers=alice).status_code == 404


def test_sidecars_of_a_video_named_in_capitals_are_served(app, client, factory, alice, work):
    """outputFileName accepts ".MP4" (any case): its sidecars are found by the name it was given."""
    job = captioned_job(app, factory)
    entry = rendered(client, alice, job, work, name="Intro.MP4")
    base = f"videos/{job.lessons[0]}/Intro"
    assert entry["outputPath"] == f"{base}.MP4" and entry["posterPath"] == f"{base}.jpg"
    for path in (entry["outputPath"], entry["posterPath"], entry["captionsPath"], f"{base}.chapters.vtt"):
        assert client.get(f"/video-transform/{job.id}/{path}", headers=alice).status_code == 200, path


def test_the_player_shows_poster_captions_and_chapters(app, client, auth, factory, alice, work):
    job = captioned_job(app, factory)
    entry = rendered(client, alice, job, work)
    auth.login("alice@example.com")
    html = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f'poster="/video-transform/{job.id}/{entry["posterPath"]}"' in html
    assert (
        f'<track kind="captions" src="/video-transform/{job.id}/{entry["captionsPath"]}" srclang="th"' in html
    )
    assert 'kind="chapters"' in html and "Captions (.vtt)" in html


def test_a_lesson_without_captions_has_a_poster_only(app, client, factory, alice, work):
    job = factory.job("Course A", lessons=1, segments=1, seconds=0.5, title="")
    entry = rendered(client, alice, job, work)
    assert "captionsPath" not in entry and entry["posterPath"].endswith("final.jpg")


def test_deleting_with_videos_removes_the_sidecars(app, client, factory, alice, work):
    job = captioned_job(app, factory)
    entry = rendered(client, alice, job, work)
    root = Path(app.config["VIDEOS_ROOT"])
    files = [
        root / entry[key].removeprefix("videos/") for key in ("outputPath", "captionsPath", "posterPath")
    ]
    files.append(files[0].with_suffix(".chapters.vtt"))
    assert all(path.is_file() for path in files)
    assert client.delete(f"/api/jobs/{job.id}?deleteVideos=true", headers=alice).status_code == 204
    assert not any(path.exists() for path in files)


def open_player(browser, live_server, job):
    """A new page: alice logs in and sees the job page with its player's captions track."""
    page = browser.new_page()
    page.goto(f"{live_server}/login?next=/jobs/{job.id}")
    page.fill("input[name=email]", "alice@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action^='/login'] button[type=submit]")
    page.wait_for_selector("video track[kind=captions]", state="attached")
    return page


@pytest.mark.browser
@pytest.mark.slow
def test_captions_show_in_the_browser(app, client, factory, alice, work, browser, live_server):
    job = captioned_job(app, factory)
    rendered(client, alice, job, work)
    page = open_player(browser, live_server, job)
    state = wait_in_page(
        page,
        """() => { const v = document.querySelector('video');
          const t = [...v.textTracks].find(t => t.kind === 'captions');
          return t && t.cues && t.cues.length ? {mode: t.mode, cues: t.cues.length, lang: t.language,
                                                 first: t.cues[0].text, poster: v.poster} : null; }""",
        timeout=10,
        what="the captions track's cues",
    )
    assert state["mode"] == "showing" and state["lang"] == "th" and state["cues"] >= 2
    assert state["first"].startswith("สวัสดี") and state["poster"].endswith("final.jpg")
    # The browser draws cues in its own font unless told: Thai cues were empty boxes on a machine
    # without a Thai font. They are drawn in the page's, which carries Noto Sans Thai.
    cue_font = page.evaluate(
        """() => [...document.styleSheets].flatMap(s => [...s.cssRules])
                 .filter(r => r.selectorText === 'video::cue').map(r => r.style.fontFamily).join(',')"""
    )
    assert "Noto Sans Thai" in cue_font, cue_font

    # The chapters (one per titled segment) are listed under the player; one press seeks there.
    chapters = page.locator("nav.chapters button")
    chapters.first.wait_for(timeout=10_000)
    assert chapters.count() == 2
    titles = chapters.all_inner_texts()
    assert titles[0].startswith("0:00") and titles[1].startswith("0:01")
    cues = page.evaluate(
        """() => [...[...document.querySelector('video').textTracks].find(t => t.kind === 'chapters').cues]
                 .map(c => ({start: c.startTime, text: c.text}))"""
    )
    assert [t.split(" ", 1)[1] for t in titles] == [c["text"] for c in cues]
    chapters.nth(1).click()
    at = wait_in_page(
        page, "() => document.querySelector('video').currentTime || null", timeout=5, what="the seek"
    )
    assert abs(at - cues[1]["start"]) < 0.3
    page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_a_lesson_using_every_key_plays_with_its_captions(
    app, client, factory, alice, work, browser, live_server
):
    """The showcase lesson (clips of the video folder's source, motion, transitions, captions,
    music, loudness) is generated through the API, and plays in the browser with captions on."""
    from webapp.render.sample import write_showcase_lesson

    video_id = "showcase001"
    write_showcase_lesson(
        Path(app.config["LESSONS_ROOT"]) / video_id / "lesson_1", width=320, height=180, seconds=1.5
    )
    job = factory.job("Course A", video_id=video_id, lessons=0)
    assert job.lessons == [f"{video_id}/lesson_1"]
    entry = rendered(client, alice, job, work)
    assert entry["captionsPath"].endswith("final.vtt")
    page = open_player(browser, live_server, job)
    state = wait_in_page(
        page,
        """() => { const v = document.querySelector('video');
          const t = [...v.textTracks].find(t => t.kind === 'captions');
          return v.readyState >= 1 && t && t.cues && t.cues.length >= 5
            ? {mode: t.mode, cues: t.cues.length, duration: v.duration} : null; }""",
        timeout=15,
        what="the video and its captions track",
    )
    assert state["mode"] == "showing" and state["cues"] >= 5 and abs(state["duration"] - 7.5) < 0.1
    # Seek into the clip of the second segment: the cue of that moment is the one showing.
    page.evaluate("() => { document.querySelector('video').currentTime = 2.0; }")
    active = wait_in_page(
        page,
        """() => { const t = [...document.querySelector('video').textTracks].find(t => t.kind === 'captions');
          return t.activeCues && t.activeCues.length ? t.activeCues[0].text : null; }""",
        timeout=10,
        what="an active cue after seeking",
    )
    assert active.startswith("Watch how the greeting")
    page.close()
