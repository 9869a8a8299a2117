"""A lesson's words page: titles, texts and captions edited in the browser and written back into
lesson.json through the lesson's checked swap; only what was edited changes, nothing typed is
lost on a refusal, and the usual scope, CSRF and render-under-way rules hold."""

from __future__ import annotations

import io
import json
import re
import shutil
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .helpers import bearer
from .test_sidecars_app import captioned_job, rendered


def _page(job, number: int = 1) -> str:
    return f"/jobs/{job.id}/lessons/{number}/words"


def _manifest_path(app, job, number: int = 1) -> Path:
    return Path(app.config["LESSONS_ROOT"]) / job.video_id / f"lesson_{number}" / "lesson.json"


def _manifest(app, job, number: int = 1) -> dict:
    return json.loads(_manifest_path(app, job, number).read_text(encoding="utf-8"))


class _Fields(HTMLParser):
    """The words form's fields as a browser would send them (ticked checkboxes only)."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and "lesson-words" in (attrs.get("class") or ""):
            self._in_form = True
        elif self._in_form and tag == "input" and attrs.get("name"):
            if attrs.get("type") != "checkbox" or "checked" in attrs:
                self.fields[attrs["name"]] = attrs.get("value") or (
                    "on" if attrs.get("type") == "checkbox" else ""
                )
        elif self._in_form and tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea:
            # what the browser sends: the first newline after <textarea> is not content, line ends as CRLF
            value = self.fields[self._textarea].replace("\r\n", "\n").replace("\r", "\n")
            self.fields[self._textarea] = value.removeprefix("\n").replace("\n", "\r\n")
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def fields(html: str) -> dict[str, str]:
    parser = _Fields()
    parser.feed(html)
    return parser.fields


def save(client, job, changes: dict, number: int = 1, drop: tuple = ()):
    """Open the words page, change some fields, press Save; the response."""
    sent = {**fields(client.get(_page(job, number)).text), **changes}
    for name in drop:
        sent.pop(name, None)
    return client.post(_page(job, number), data=sent, content_type="multipart/form-data")


def _after(client, response) -> str:
    assert response.status_code == 302, (response.status_code, response.text[:2000])
    return unescape(client.get(response.headers["Location"]).text)


def test_the_words_are_shown_and_an_edit_changes_only_them(app, client, factory, member):
    job = factory.job("Course A", lessons=1, segments=2)
    before = _manifest(app, job)
    html = unescape(client.get(_page(job)).text)
    assert "Greetings — สวัสดี" in html and "Tones: ปี่ ฟ้า น้ำ ป่า" in html and "images/2.png" in html
    assert f'href="{_page(job)}"' in client.get(f"/jobs/{job.id}").text  # the job's lesson row links it
    assert f'href="{_page(job)}"' in client.get(f"/jobs/{job.id}/lessons/1/files").text

    page = _after(
        client,
        save(
            client,
            job,
            {
                "title": "Greetings, again",
                "s1-title": "สวัสดีค่ะ",
                "s2-caption": "ปี่ ฟ้า น้ำ ป่า\r\nfour words, four tones",
            },
        ),
    )
    assert "Saved. Generate the lesson's video to show the change." in page
    # said beside Save too: the page comes back at the segment edited, the top out of sight
    assert re.search(r'id="saved-note" role="status">Saved\. Generate', page)
    assert f'href="/jobs/{job.id}#lesson-1"' in page  # the breadcrumb leads back to the lesson's row
    after = _manifest(app, job)
    assert after["title"] == "Greetings, again" and after["segments"][0]["title"] == "สวัสดีค่ะ"
    assert after["segments"][1]["caption"] == "ปี่ ฟ้า น้ำ ป่า\nfour words, four tones"
    for key in ("width", "height", "fps"):
        assert after[key] == before[key]
    for old, new in zip(before["segments"], after["segments"], strict=True):
        assert {k: v for k, v in new.items() if k not in ("title", "caption")} == {
            k: v for k, v in old.items() if k not in ("title", "caption")
        }
    assert "Greetings, again" in client.get(f"/jobs/{job.id}").text  # the job knows the new title
    assert "ปี่ ฟ้า น้ำ ป่า\r\nfour words" not in page and "four words, four tones" in page


def test_saving_the_words_unchanged_writes_nothing(app, client, factory, member):
    """Whatever a browser does to line ends and the first line of a field, an untouched page saves
    nothing: lesson.json keeps its bytes (and its formatting)."""
    job = factory.job("Course A", lessons=1, segments=2)
    path = _manifest_path(app, job)
    manifest = _manifest(app, job)
    manifest["segments"][0]["text"] = "\nfirst line after a blank one\r\nsecond line  "
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    raw = path.read_bytes()
    assert "Nothing was changed." in _after(client, save(client, job, {}))
    assert path.read_bytes() == raw


def test_emptied_fields_go_and_cues_are_edited_in_place(app, client, factory, member):
    job = factory.job("Course A", lessons=1, segments=2, seconds=1.0)
    path = _manifest_path(app, job)
    manifest = _manifest(app, job)
    manifest["segments"][1]["captions"] = [
        {"start": 0.0, "end": 0.4, "text": "one"},
        {"start": 0.4, "end": 0.8, "text": "two", "x-note": "kept"},
        {"start": 0.8, "end": 1.0, "text": "three"},
    ]
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    html = client.get(_page(job)).text
    assert "0:00.40–0:00.80" in html and 's2-caption"' not in html  # cues shown with their times
    changes = {
        "s1-text": "",
        "s2-cue0": "",
        "s2-cue1": "two, mended",
        "language": "th",
        "burn_in": "on",
        "s1-caption": "A caption for the first segment.",
    }
    _after(client, save(client, job, changes))
    after = _manifest(app, job)
    assert "text" not in after["segments"][0]
    assert after["segments"][0]["caption"] == "A caption for the first segment."
    assert after["segments"][1]["captions"] == [
        {"start": 0.4, "end": 0.8, "text": "two, mended", "x-note": "kept"},
        {"start": 0.8, "end": 1.0, "text": "three"},
    ]
    assert after["captions"] == {"language": "th", "burnIn": True}
    # every cue emptied: the segment has no captions (an empty list would not be a lesson)
    _after(client, save(client, job, {"s2-cue0": "", "s2-cue1": "", "burn_in": ""}, drop=("burn_in",)))
    after = _manifest(app, job)
    assert "captions" not in after["segments"][1] and after["captions"] == {"language": "th", "burnIn": False}


def _change_meanwhile(app, job, change) -> dict:
    """lesson.json changed by someone else (another tab, a file replaced) after the page was read."""
    manifest = _manifest(app, job)
    change(manifest)
    _manifest_path(app, job).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return manifest


def test_a_save_keeps_what_was_changed_meanwhile_in_other_fields(app, client, factory, member):
    job = factory.job("Course A", lessons=1, segments=2)
    form = fields(client.get(_page(job)).text)
    _change_meanwhile(app, job, lambda m: m["segments"][1].update(text="Saved from another tab"))
    response = client.post(
        _page(job), data={**form, "s1-text": "My careful rewording"}, content_type="multipart/form-data"
    )
    assert "Saved, with the changes made meanwhile elsewhere in lesson.json kept." in _after(client, response)
    after = _manifest(app, job)
    assert after["segments"][0]["text"] == "My careful rewording"
    assert after["segments"][1]["text"] == "Saved from another tab"


def test_a_field_changed_here_and_meanwhile_is_refused_then_saved_on_purpose(app, client, factory, member):
    """Both changed segment 1's text: nothing is saved, the page shows lesson.json as it is now with
    this edit filled in and marked; saving that page again keeps this edit (and the other's elsewhere)."""
    job = factory.job("Course A", lessons=1, segments=2)
    form = fields(client.get(_page(job)).text)

    def theirs(m):
        m["segments"][0]["text"] = "Their text"
        m["segments"][1]["title"] = "Their title"

    other = _change_meanwhile(app, job, theirs)
    response = client.post(
        _page(job), data={**form, "s1-text": "My careful rewording"}, content_type="multipart/form-data"
    )
    assert response.status_code == 409 and _manifest(app, job) == other
    html = unescape(response.text)
    assert "Segment 1's text changed meanwhile here and elsewhere" in html
    again = fields(response.text)
    assert again["s1-text"] == "My careful rewording" and again["s2-title"] == "Their title"
    assert re.search(r'name="s1-text"[^>]*aria-invalid="true"', response.text)
    assert "Saved." in _after(client, client.post(_page(job), data=again, content_type="multipart/form-data"))
    after = _manifest(app, job)
    assert (
        after["segments"][0]["text"] == "My careful rewording"
        and after["segments"][1]["title"] == "Their title"
    )


def test_when_the_segments_changed_meanwhile_the_edits_are_listed_to_copy(app, client, factory, member):
    job = factory.job("Course A", lessons=1, segments=2)
    form = fields(client.get(_page(job)).text)
    other = _change_meanwhile(
        app, job, lambda m: m["segments"].insert(0, {**m["segments"][1], "title": "New first"})
    )
    response = client.post(
        _page(job), data={**form, "s2-text": "My careful rewording"}, content_type="multipart/form-data"
    )
    assert response.status_code == 409 and _manifest(app, job) == other
    html = unescape(response.text)
    assert "The lesson's segments changed since this page was opened" in html
    assert "Your edits, to copy in again" in html and "Segment 2's text" in html
    assert "My careful rewording" in html and fields(response.text)["s1-title"] == "New first"


def test_words_that_would_break_the_lesson_are_refused_and_kept_on_the_page(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    raw = _manifest_path(app, job).read_bytes()
    for changes, status, said in [
        ({"title": "  ", "s1-text": "kept text"}, 422, "The lesson needs a title."),
        (
            {"language": "not a tag!", "s1-text": "kept text"},
            422,
            "The captions' language: must be a language tag",
        ),
        ({"s1-text": "x" * 5001}, 422, "Segment 1's text has 5,001 characters; at most 5,000."),
        ({"s1-title": "kept text \U000f0000"}, 422, "Segment 1's title: no font"),
    ]:
        response = save(client, job, changes)
        html = unescape(response.text)
        assert response.status_code == status and "Nothing was saved" in html and said in html, html[:3000]
        if "kept text" in str(changes):
            assert "kept text" in html
        assert _manifest_path(app, job).read_bytes() == raw


def test_another_course_a_stranger_and_a_forged_post_change_nothing(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    theirs = factory.job("Course B", lessons=1)
    raw = _manifest_path(app, theirs).read_bytes()
    assert client.get(_page(theirs)).status_code == 404
    mine = fields(client.get(_page(job)).text)
    forged = client.post(_page(theirs), data={**mine, "title": "pwned"}, content_type="multipart/form-data")
    assert forged.status_code == 404 and _manifest_path(app, theirs).read_bytes() == raw
    no_token = {k: v for k, v in mine.items() if k != "csrf_token"}
    refused = client.post(_page(job), data={**no_token, "title": "x"}, content_type="multipart/form-data")
    assert refused.status_code == 400 and _manifest(app, job)["title"] != "x"
    assert client.get(f"/jobs/{job.id}/lessons/9/words").status_code == 404
    client.post("/logout", data={"csrf_token": mine["csrf_token"]})
    assert client.get(_page(job)).status_code in (302, 401)
    stranger = client.post(_page(job), data={**mine, "title": "x"}, content_type="multipart/form-data")
    assert stranger.status_code in (302, 400, 401) and _manifest(app, job)["title"] != "x"


def test_what_a_lesson_json_says_is_shown_as_text(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    manifest = _manifest(app, job)
    manifest["segments"][0]["text"] = "</textarea><script>alert(1)</script>"
    manifest["segments"][0]["image"] = '"><img src=x onerror=alert(2)>'
    path.write_text(json.dumps(manifest), encoding="utf-8")
    html = client.get(_page(job)).text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_save_and_generate_says_why_a_render_could_not_start(app, client, factory, member):
    """Saved, then refused by the render's own rules (here, the lesson was broken and still is):
    the page says both, and stays."""
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    manifest = _manifest(app, job)
    manifest["segments"][0]["image"] = "images/missing.png"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    client.post(
        f"/jobs/{job.id}/rescan", data={"csrf_token": fields(client.get(_page(job)).text)["csrf_token"]}
    )
    response = save(client, job, {"s1-title": "Still broken", "then": "generate"})
    page = _after(client, response)
    assert response.headers["Location"] == f"{_page(job)}#segment-1"  # back where the edit was
    assert "Saved. The lesson still has a problem: lesson_1: segment 1, image: file not found" in page
    assert _manifest(app, job)["segments"][0]["title"] == "Still broken"
    assert "render queued" not in client.get(f"/jobs/{job.id}").text


def test_a_lesson_being_rendered_keeps_its_words(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    raw = _manifest_path(app, job).read_bytes()
    headers = bearer(factory.token(member.email))
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": "v.mp4"}
    assert client.post("/video-transform/generate-video", json=body, headers=headers).status_code == 202
    html = client.get(_page(job)).text
    assert "A render of this lesson is queued or running" in html
    assert re.search(r'<button type="submit" disabled>Save</button>', html)
    response = save(client, job, {"s1-text": "typed while it rendered"})
    assert response.status_code == 409 and "typed while it rendered" in response.text
    assert _manifest_path(app, job).read_bytes() == raw


def test_a_lesson_json_that_is_no_lesson_is_mended_as_a_file(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    path.write_text("{ not json", encoding="utf-8")
    html = unescape(client.get(_page(job)).text)
    assert "lesson.json: invalid JSON at line 1 column 3" in html and "mend it as a file" in html
    assert "<textarea" not in html
    path.write_text(json.dumps({"title": "x", "segments": [{"duration": 1}] * 301}), encoding="utf-8")
    html = unescape(client.get(_page(job)).text)
    assert "too long to edit here (at most 300 segments" in html and "<textarea" not in html
    path.unlink()
    html = unescape(client.get(_page(job)).text)
    assert "The lesson has no lesson.json that can be read; add one on its files page" in html
    shutil.rmtree(path.parent)
    with app.app_context():  # a rescan marks a lesson with renders gone from disk as missing
        from webapp.extensions import db
        from webapp.models import Lesson

        db.session.execute(db.update(Lesson).where(Lesson.path == job.lessons[0]).values(missing=True))
        db.session.commit()
    html = unescape(client.get(_page(job)).text)
    assert "The lesson folder is gone: upload the lesson again" in html and "<textarea" not in html


def test_the_longest_lesson_the_page_takes_saves(app, client, factory, member):
    """300 segments with a title, a text and a caption each: a form of ~900 fields, past the
    framework's default limits on a form's parts (1,000 with cues) and size."""
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    segments = [
        {
            "background": "#202040",
            "duration": 0.5,
            "title": f"ส่วนที่ {n}",
            "text": "ข้อความ " * 60,
            "caption": "คำ " * 30,
        }
        for n in range(300)
    ]
    segments[0]["captions"] = [{"start": 0, "end": 0.1, "text": str(j)} for j in range(200)]
    del segments[0]["caption"]
    path.write_text(json.dumps({"title": "Long", "segments": segments}, ensure_ascii=False), encoding="utf-8")
    page = _after(client, save(client, job, {"s300-title": "The last one"}))
    assert "Saved." in page
    assert _manifest(app, job)["segments"][299]["title"] == "The last one"


def test_a_caption_edited_here_is_in_the_next_video_without_encoding_its_pictures(
    app, client, factory, member, work
):
    """The point of the page: a typo in a caption fixed and the lesson generated again; its
    captions say the new words, and no picture was encoded again (the segment cache)."""
    job = captioned_job(app, factory)
    headers = bearer(factory.token(member.email))
    first = rendered(client, headers, job, work, "first.mp4")
    pieces = set(Path(app.config["RENDER_CACHE_DIR"]).rglob("*.mp4"))
    assert pieces
    response = save(client, job, {"s2-cue0": "Hello and welcome, mended", "then": "generate"})
    assert response.headers["Location"] == f"/jobs/{job.id}"  # Save and generate: to the progress
    assert "Saved. Greetings — สวัสดี: render queued." in _after(client, response)
    work()
    status = client.get(f"/video-transform/{job.id}/video-generation-status", headers=headers).json
    entry = status["generatedVideos"][-1]
    assert entry["success"] is True and entry["outputPath"] != first["outputPath"]
    captions = client.get(f"/video-transform/{job.id}/{entry['captionsPath']}", headers=headers).text
    assert "Hello and welcome, mended" in captions and "สวัสดีครับ" in captions
    assert set(Path(app.config["RENDER_CACHE_DIR"]).rglob("*.mp4")) == pieces


def _put_manifest(client, job, text: str):
    """lesson.json replaced through the files page (as a member could): checked like any upload."""
    from .helpers import csrf_token

    page = f"/jobs/{job.id}/lessons/1/files"
    data = {"file": (io.BytesIO(text.encode("utf-8", "surrogatepass")), "lesson.json"), "path": "lesson.json"}
    data["csrf_token"] = csrf_token(client, page)
    return client.post(page, data=data, content_type="multipart/form-data")


def test_text_no_page_can_hold_is_shown_replaced_and_left_alone(app, client, factory, member):
    """A lone surrogate (JSON allows "\\ud800"; the lesson's check lets it through where no glyph is
    drawn) in a caption and in a key the page does not show; a NUL; a title on two lines. The page
    shows them (a browser would send U+FFFD, the title on one line); an edit elsewhere leaves them
    as they were."""
    job = factory.job("Course A", lessons=1, segments=2)
    manifest = _manifest(app, job)
    manifest["title"] = "Lesson 1\nGreetings"
    manifest["x-note"] = "\ud800 kept"
    manifest["segments"][0]["caption"] = "hello \ud800"
    manifest["segments"][1]["text"] = "a\x00b"
    assert _put_manifest(client, job, json.dumps(manifest)).status_code == 302
    before = _manifest(app, job)
    page = client.get(_page(job))
    assert page.status_code == 200 and "hello \ufffd" in page.text
    assert "Saved." in _after(client, save(client, job, {"s2-title": "Only this"}))
    after = _manifest(app, job)
    assert after["segments"][1]["title"] == "Only this"
    after["segments"][1]["title"] = before["segments"][1]["title"]
    assert after == before  # the surrogates, the NUL and the line break as they were


@pytest.mark.parametrize(
    "duration", ["NaN", "Infinity", "1e400", "1" + "0" * 400], ids=["nan", "inf", "overflow", "long-int"]
)
def test_numbers_no_lesson_takes_do_not_break_the_page(app, client, factory, member, duration):
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    text = path.read_text(encoding="utf-8").replace('"audio": "audio/1.wav"', f'"duration": {duration}', 1)
    text = text.replace(
        '"title": "สวัสดีครับ"', f'"title": "x", "captions": [{{"start": {duration}, "end": 1, "text": "t"}}]', 1
    )
    path.write_text(text, encoding="utf-8")
    response = client.get(_page(job))
    assert response.status_code == 200 and 'name="s1-cue0"' in response.text


def test_lesson_json_nested_too_deeply_is_mended_as_a_file(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    path.write_text(
        '{"title": "x", "segments": [], "deep": ' + "[" * 50_000 + "]" * 50_000 + "}", encoding="utf-8"
    )
    html = unescape(client.get(_page(job)).text)
    assert "nested too deeply; mend it as a file" in html


def test_a_field_the_lesson_check_refuses_is_marked(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    response = save(client, job, {"language": "thai language"})
    assert response.status_code == 422
    assert re.search(r'name="language"[^>]*aria-invalid="true"', response.text)
    assert 'class="flash flash-error form-alert"' in response.text  # where the keyboard starts (app.js)
    response = save(client, job, {"s1-caption": "x" * 5001})
    assert re.search(r'name="s1-caption"[^>]*aria-invalid="true"', response.text)


def test_only_a_multipart_words_form_is_let_past_the_usual_body_cap(app, client, factory, member):
    """werkzeug counts no parts of a urlencoded body: 2 MiB of it could be 240,000 fields to parse."""
    job = factory.job("Course A", lessons=1)
    form = fields(client.get(_page(job)).text)
    body = "&".join([f"csrf_token={form['csrf_token']}"] + ["a=b"] * 100_000)
    response = client.post(_page(job), data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_a_cue_time_no_lesson_takes_does_not_break_the_page(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    manifest = _manifest(app, job)
    manifest["segments"][0]["captions"] = [{"start": 1e307, "end": 1e308, "text": "hi"}]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    response = client.get(_page(job))
    assert response.status_code == 200 and "Caption 1" in response.text


def test_words_that_would_make_lesson_json_too_large_are_refused(app, client, factory, member):
    """Control characters are written as six-character escapes: 5,000 of them in each of many fields
    made a lesson.json of 5 MB, which the app then could not read."""
    job = factory.job("Course A", lessons=1)
    path = _manifest_path(app, job)
    manifest = _manifest(app, job)
    manifest["segments"] = [{**manifest["segments"][0], "duration": 0.1} for _ in range(40)]
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    raw = path.read_bytes()
    changes = {f"s{n}-text": "\x01" * 5000 for n in range(1, 41)}
    response = save(client, job, changes)
    assert response.status_code == 422 and "lesson.json would be larger than 1 MB" in unescape(response.text)
    assert path.read_bytes() == raw
