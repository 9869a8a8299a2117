"""Frame sources for segments that are not one still picture: their looks and spans (frames.py).

`Looks` builds each segment's `Look` once, when a piece needs it: a clip or a moving image
(with its title panel as a layer), or, for a segment that only has a transition, its composed
picture. `Looks.shown(i, first, count)` describes frames [first, first + count) of segment i
as the output shows them: inside a transition, blended with the previous segment's last
frames as *those* are shown (so a short segment's own transition carries on into the next
one's, up to MAX_NESTED segments back; further back a segment is taken without its
transition). Files a look reads (a composed picture, a panel layer) are written into the
render's private folder only when a piece that reads them is encoded (`ensure_files`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .cache import SegmentCache
from .compose import compose, picture_input_key, title_panel_layer
from .frames import Blend, ClipBase, LayerFile, Look, MotionBase, Shown, StillBase
from .manifest import Manifest, Segment

MAX_NESTED = 8  # transitions carried on from earlier segments into a blend's previous frames
PANEL_LAYER_VERSION = 1  # bump when title_panel_layer's output changes (guards its memo)


class Looks:
    """The looks of one lesson's segments, built when first needed."""

    def __init__(
        self,
        manifest: Manifest,
        cache: SegmentCache,
        private: Path,
        file_hash: Callable[[Path], str],
        poll: Callable[[], None],
    ):
        self.m, self.cache, self.private, self.file_hash, self.poll = (
            manifest,
            cache,
            private,
            file_hash,
            poll,
        )
        self.frames = [n for _, n in manifest.segment_frames()]
        self._looks: dict[int, Look] = {}
        self._writers: dict[str, Callable[[], None]] = {}  # file path -> writes it

    def transition_frames(self, i: int) -> int:
        """How many of segment i's first frames are its transition (0: none)."""
        trans = self.m.segments[i].transition
        return trans.frames(self.m.fps) if trans is not None else 0

    def look(self, i: int) -> Look:
        found = self._looks.get(i)
        if found is None:
            found = self._looks[i] = self._make_look(self.m.segments[i])
        return found

    def shown(
        self, i: int, first: int, count: int, overlays: tuple[LayerFile, ...] = (), depth: int = 0
    ) -> Shown:
        """Frames [first, first + count) of segment i as the output shows them."""
        seg, t = self.m.segments[i], self.transition_frames(i)
        blend = None
        if t and first < t and depth <= MAX_NESTED:
            before = self.frames[i - 1] - t  # the previous segment's frame under this one's frame 0
            under = min(first + count, t) - first
            previous = self.shown(i - 1, before + first, under, depth=depth + 1)
            blend = Blend(seg.transition.type, t, previous)
        return Shown(self.look(i), first, count, blend, overlays)

    def ensure_files(self, shown: Shown) -> None:
        """Write every file `shown` reads that is not written yet."""
        for path in shown.files():
            writer = self._writers.pop(path, None)
            if writer is not None and not Path(path).exists():
                writer()

    # ----------------------------------------------------------------------------------------

    def _make_look(self, seg: Segment) -> Look:
        n = self.frames[seg.index]
        if seg.video is not None:
            base = ClipBase(seg.video, self.file_hash(seg.video.path), seg.field)
        elif seg.motion is not None and seg.image is not None:
            base = MotionBase(str(seg.image), self.file_hash(seg.image), seg.color, seg.motion, seg.field)
        else:
            return Look(self._still(seg), n)
        return Look(base, n, self._panel(seg))

    def _still(self, seg: Segment) -> StillBase:
        """The segment's composed picture (its title panel drawn in); named by the picture memo
        when it has one, so an unchanged segment is composed only if a piece needs it."""
        input_key = picture_input_key(self.m, seg, self.file_hash)
        digest = self.cache.read_memo(input_key) if input_key else None
        raw = None
        if digest is None:
            raw = compose(self.m, seg).tobytes()
            digest = hashlib.sha256(raw).hexdigest()
            if input_key:
                with contextlib.suppress(OSError):
                    self.cache.write_memo(input_key, digest)
            self.poll()
        path = self.private / f"{digest}.rgb"

        def write() -> None:
            path.write_bytes(raw if raw is not None else compose(self.m, seg).tobytes())

        if raw is not None and not path.exists():
            write()  # composed anyway: written now rather than composed again
        self._writers[str(path)] = write
        return StillBase(str(path), digest)

    def _panel(self, seg: Segment) -> LayerFile | None:
        """The title panel as a layer over a moving picture; None without a title or text."""
        if not (seg.title or seg.text):
            return None
        memo_key = self._panel_memo_key(seg)
        known = self.cache.read_memo(memo_key) if memo_key else None
        if known is not None:
            with contextlib.suppress(ValueError):
                digest, width, height, x, y = known.split(":")
                path = self.private / f"{digest}.rgba"
                self._writers[str(path)] = lambda: self._draw_panel(seg)
                return LayerFile(str(path), digest, int(width), int(height), int(x), int(y))
        layer = self._draw_panel(seg)
        if memo_key:
            value = f"{layer.digest}:{layer.width}:{layer.height}:{layer.x}:{layer.y}"
            with contextlib.suppress(OSError):
                self.cache.write_memo(memo_key, value)
        return layer

    def _draw_panel(self, seg: Segment) -> LayerFile:
        drawn = title_panel_layer(self.m, seg)
        assert drawn is not None  # the segment has a title or text
        self.poll()
        return LayerFile.write(self.private, *drawn)

    def _panel_memo_key(self, seg: Segment) -> str | None:
        """A memo key for everything the panel layer depends on (None: a system font is involved)."""
        alone = replace(seg, image=None, video=None, motion=None, transition=None, color=(0, 0, 0))
        input_key = picture_input_key(self.m, alone, self.file_hash)
        if input_key is None:
            return None
        parts = {"panel": input_key, "version": PANEL_LAYER_VERSION}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
