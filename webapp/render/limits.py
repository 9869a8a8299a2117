"""The limits a lesson is held to, so a hostile lesson cannot tie up a worker or a web request.

Every refusal is a ManifestError that names the limit (see the table in README.md). The
readers look these up as `limits.NAME` when they run, so a benchmark can lift a cap here.
"""

from __future__ import annotations

from .errors import ManifestError

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SEGMENTS = 2000
MAX_TEXT_CHARS = 5000  # one title or text
MAX_TOTAL_TEXT_CHARS = 200_000  # all segment titles and texts together
MAX_CUES = 20_000  # caption cues in the lesson (and in one segment's "captions" list)
MAX_TOTAL_CAPTION_CHARS = 1_000_000  # all caption texts together (captions.py)
DEFAULT_MAX_DURATION = 4 * 3600  # seconds, the whole lesson (load_manifest's max_duration)
MAX_SEGMENT_SECONDS = 24 * 3600  # a segment's `duration`
FRAME_LIMIT = 2**31  # frame numbers must fit a signed 32-bit integer (x264, MP4 sample tables)


class Totals:
    """Running totals over the segments read so far, checked against the whole-lesson limits."""

    def __init__(self, fps: int, max_duration: float):
        self.fps = fps
        self.max_duration = max_duration
        self.seconds = 0.0
        self.text_chars = 0

    def add_seconds(self, seconds: float) -> None:
        # Stop at the segment that crosses a limit: the rest is not even looked at.
        self.seconds += seconds
        limit = self.max_duration
        if self.seconds > limit:
            raise ManifestError(
                "segments", f"the lesson lasts more than {_hms(limit)} (the limit is {limit:.10g} s)"
            )
        if round(self.seconds * self.fps) >= FRAME_LIMIT:
            raise ManifestError(
                "segments", f"the lesson has too many frames (the limit is {FRAME_LIMIT - 1})"
            )

    def add_text(self, chars: int) -> None:
        self.text_chars += chars
        if self.text_chars > MAX_TOTAL_TEXT_CHARS:
            raise ManifestError(
                "segments",
                f"titles and texts total more than {MAX_TOTAL_TEXT_CHARS} characters "
                f"(the limit is {MAX_TOTAL_TEXT_CHARS})",
            )


def _hms(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
