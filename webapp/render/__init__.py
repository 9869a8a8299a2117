"""The renderer: lesson.json to a verified MP4. Imports nothing from Flask, the database or RQ.

Public API:
    load_manifest(lesson_dir, *, max_duration=DEFAULT_MAX_DURATION) -> Manifest
    render_lesson(lesson_dir, output_path, *, on_progress=None, should_cancel=None,
                  cache_dir=None, settings=None) -> RenderResult
    partial_outputs(output_path) -> list[Path]
    RenderSettings, RenderResult, Manifest, Segment
    RenderError > ManifestError (permanent), TransientRenderError (may retry),
                  RenderEnvironmentError (fix the machine), Cancelled
"""

from .errors import Cancelled, ManifestError, RenderEnvironmentError, RenderError, TransientRenderError
from .fonts import raqm_problem
from .manifest import DEFAULT_MAX_DURATION, Manifest, Segment, load_manifest
from .pipeline import RenderResult, partial_outputs, render_lesson
from .settings import CACHE_ENV, RenderSettings, default_cache_dir

__all__ = [
    "CACHE_ENV",
    "DEFAULT_MAX_DURATION",
    "Cancelled",
    "Manifest",
    "ManifestError",
    "RenderEnvironmentError",
    "RenderError",
    "RenderResult",
    "RenderSettings",
    "Segment",
    "TransientRenderError",
    "default_cache_dir",
    "load_manifest",
    "partial_outputs",
    "raqm_problem",
    "render_lesson",
]
