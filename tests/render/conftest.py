"""Fixtures for the renderer tests: small real lessons, a private cache, output probes.

Self-contained: nothing here needs the app, the database or Redis.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.render import RenderSettings
from webapp.render.sample import write_sample_lesson


@pytest.fixture(autouse=True)
def _private_cache_env(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: RENDER_CACHE_DIR points into the test's temp folder."""
    monkeypatch.setenv("RENDER_CACHE_DIR", str(tmp_path_factory.mktemp("env-cache")))
    monkeypatch.delenv("RENDER_PROCESSES", raising=False)


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def make_lesson(tmp_path):
    """make_lesson(name="lesson", **write_sample_lesson kwargs) -> lesson folder (320x180)."""

    def make(name: str = "lesson", **kwargs) -> Path:
        kwargs.setdefault("width", 320)
        kwargs.setdefault("height", 180)
        kwargs.setdefault("segments", 3)
        kwargs.setdefault("seconds", 1.0)
        d = tmp_path / name
        write_sample_lesson(d, **kwargs)
        return d

    return make


@pytest.fixture
def serial() -> RenderSettings:
    """Encode in the calling process (fast for tiny lessons)."""
    return RenderSettings(processes=1)


@pytest.fixture
def parallel() -> RenderSettings:
    """Always use two encoder processes, however small the lesson."""
    return RenderSettings(processes=2, parallel_min_work=0)
