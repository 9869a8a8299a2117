"""Write a small but real lesson folder: used by the tests, the benchmark and `flask demo`.

The lesson has one background PNG per segment (a distinct solid colour with a few shapes in
the middle, so the corners show the colour), narration-like audio (tone bursts at a
different pitch per segment), Thai and Latin titles/text, and a `lesson.json`.

    from webapp.render.sample import write_sample_lesson
    write_sample_lesson(Path("lessons/demo/lesson_1"), segments=3, seconds=2.0)

Only the standard library, Pillow and (for non-WAV audio) PyAV are used.
"""

from __future__ import annotations

import json
import math
import struct
import wave
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

from PIL import Image, ImageDraw

# Distinct, saturated-enough colours; tests read them back from a corner of each segment.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (200, 40, 40),
    (40, 160, 60),
    (40, 70, 200),
    (220, 180, 30),
    (150, 40, 170),
    (30, 170, 180),
    (230, 110, 30),
    (90, 90, 90),
    (240, 240, 240),
    (20, 20, 20),
)

TITLES: tuple[str, ...] = (
    "สวัสดีครับ",
    "Tones: ปี่ ฟ้า น้ำ ป่า",
    "Thank you — ขอบคุณครับ",
    "Numbers 1, 2, 3",
    "ไปไหนมา",
)
TEXTS: tuple[str, ...] = (
    "Hello (polite, male speaker)",
    "ปี่ ฟ้า น้ำ ป่า — four words, four tones, stacked marks must sit right.",
    "ขอบคุณมากครับ means thank you very much. Say it with a small bow.",
    "หนึ่ง สอง สาม: one, two, three.",
    "Where are you going? A friendly greeting, not a real question.",
)

SAMPLE_RATE = 48_000
AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg", "opus", "m4a")


def segment_color(index: int) -> tuple[int, int, int]:
    """The background colour segment `index` of a sample lesson uses."""
    return PALETTE[index % len(PALETTE)]


def hex_color(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def tone_frequency(index: int) -> float:
    # Integer number of samples per period at 48 kHz keeps the generated bursts clean.
    return SAMPLE_RATE / (160 - 8 * (index % 12))


def write_background(
    path: Path, width: int, height: int, color: Sequence[int], index: int = 0, detail: bool = False
) -> None:
    """A PNG in `color` with lighter shapes in the middle (corners stay close to `color`).

    `detail` adds photo-like texture (soft gradient and grain) for realistic encoding costs.
    """
    img = Image.new("RGB", (width, height), tuple(color))
    if detail:
        noise = Image.effect_noise((width, height), 40).convert("RGB")
        glow = Image.radial_gradient("L").resize((width, height)).convert("RGB")
        img = Image.blend(img, Image.blend(noise, glow, 0.5), 0.18)
        img.paste(tuple(color), (0, 0, max(1, width // 16), max(1, height // 16)))
    draw = ImageDraw.Draw(img)
    light = tuple(min(255, c + 60) for c in color)
    dark = tuple(max(0, c - 60) for c in color)
    cx, cy = width // 2, height // 2
    r = max(2, min(width, height) // 5)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=light)
    s = r // 2
    draw.rectangle((cx - s - r, cy - s, cx - r + s, cy + s), fill=dark)
    draw.polygon([(cx + r, cy - s), (cx + r + s, cy + s), (cx + r - s, cy + s)], fill=dark)
    # A thin label so different segments differ in more than colour.
    draw.text((width // 10, height // 10), f"{index + 1}", fill=light)
    img.save(path, "PNG", optimize=False, compress_level=1)


def _burst_pcm(freq: float, seconds: float, amplitude: float = 0.5) -> bytes:
    """Speech-like tone bursts (0.25 s on, 0.1 s off) as 16-bit mono PCM."""
    on = int(0.25 * SAMPLE_RATE)
    off = int(0.10 * SAMPLE_RATE)
    ramp = int(0.01 * SAMPLE_RATE)
    samples = []
    for n in range(on):
        env = min(1.0, n / ramp, (on - 1 - n) / ramp)
        samples.append(int(32767 * amplitude * env * math.sin(2 * math.pi * freq * n / SAMPLE_RATE)))
    burst = struct.pack(f"<{on}h", *samples) + b"\x00\x00" * off
    total = round(seconds * SAMPLE_RATE)
    reps = total // (on + off) + 1
    return (burst * reps)[: total * 2]


def write_wav(path: Path, pcm: bytes, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)


def write_tone(path: Path, seconds: float, freq: float, fmt: str = "wav", amplitude: float = 0.5) -> Path:
    """Write tone bursts of `seconds` to `path` (suffix replaced by the format's)."""
    pcm = _burst_pcm(freq, seconds, amplitude)
    suffix = {"ogg": ".ogg", "opus": ".opus", "m4a": ".m4a", "mp3": ".mp3", "flac": ".flac", "wav": ".wav"}
    if fmt not in suffix:
        raise ValueError(f"unknown audio format {fmt!r}; use one of {AUDIO_FORMATS}")
    path = path.with_suffix(suffix[fmt])
    if fmt == "wav":
        write_wav(path, pcm)
        return path
    _encode_with_av(path, pcm, fmt)
    return path


def _encode_with_av(path: Path, pcm: bytes, fmt: str) -> None:
    import av  # only needed for compressed formats

    codec, rate, container_fmt = {
        "mp3": ("libmp3lame", 48_000, "mp3"),
        "flac": ("flac", 48_000, "flac"),
        "ogg": ("vorbis", 48_000, "ogg"),
        "opus": ("libopus", 48_000, "ogg"),
        "m4a": ("aac", 48_000, "ipod"),
    }[fmt]
    with av.open(str(path), "w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
            stream.layout = "stereo"  # FFmpeg's native vorbis encoder only does stereo
        resampler = av.AudioResampler(format=stream.format.name, layout=stream.layout.name, rate=rate)
        step = 4800
        n = len(pcm) // 2
        pts = 0
        for start in range(0, n, step):
            chunk = pcm[start * 2 : min(n, start + step) * 2]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
            frame.planes[0].update(chunk)
            frame.sample_rate = SAMPLE_RATE
            frame.pts = pts
            frame.time_base = Fraction(1, SAMPLE_RATE)
            pts += len(chunk) // 2
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def clip_frame_color(n: int) -> tuple[int, int, int]:
    """The background colour of frame `n` of a `write_clip` clip (tests read it back)."""
    return (40 + (n * 7) % 180, 40 + (n * 13) % 180, 40 + (n * 29) % 180)


def write_clip(
    path: Path,
    seconds: float,
    fps: int = 30,
    size: tuple[int, int] = (640, 360),
    freq: float | None = 660.0,
) -> Path:
    """Write an H.264 MP4 whose frame `n` has colour `clip_frame_color(n)` and a white bar at
    x = n pixels (so every frame differs), with tone bursts at `freq` (None: no sound)."""
    import av

    width, height = size
    frames = round(seconds * fps)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "crf": "12"}
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if freq is not None else None
        for n in range(frames):
            img = Image.new("RGB", size, clip_frame_color(n))
            ImageDraw.Draw(img).rectangle((n % width, 0, n % width + 7, height - 1), fill=(255, 255, 255))
            frame = av.VideoFrame.from_image(img)
            frame.pts = n
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            _mux_pcm(out, audio, _burst_pcm(freq, seconds))
    return path


def _mux_pcm(out, stream, pcm: bytes) -> None:
    """Encode 16-bit mono PCM at SAMPLE_RATE into `stream` of the open container `out`."""
    import av

    resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=SAMPLE_RATE)
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, 0, Fraction(1, SAMPLE_RATE)
    for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
        for packet in stream.encode(resampled):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def _as_list(value, n: int) -> list:
    if isinstance(value, str) or not isinstance(value, Iterable):
        return [value] * n
    items = list(value)
    if not items:
        raise ValueError("empty sequence")
    return [items[i % len(items)] for i in range(n)]


def write_sample_lesson(
    lesson_dir: Path,
    *,
    segments: int = 3,
    seconds: float | Sequence[float] = 2.0,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    audio: bool | Sequence[bool] = True,
    audio_format: str | Sequence[str] = "wav",
    images: bool | Sequence[bool] = True,
    thai: bool = True,
    title: str = "Greetings — สวัสดี",
    duration_with_audio: bool = False,
    detail: bool = False,
    extra: dict | None = None,
) -> Path:
    """Create `lesson_dir` with images/, audio/ and lesson.json; return the lesson.json path.

    - `seconds`: each segment's length (a number, or one per segment, cycled).
    - `audio`: whether segments have narration (bool or per segment). Segments without audio
      get an explicit `duration`; segments with audio last as long as their audio unless
      `duration_with_audio` also writes `duration`.
    - `audio_format`: "wav" (default), "mp3", "flac", "ogg", "opus", "m4a", or one per segment.
    - `images`: background PNG per segment (bool or per segment); without one, the segment uses
      its solid `background` colour. Either way `segment_color(i)` is what fills the corners.
    - `thai`: include Thai titles/text (otherwise Latin only).
    - `detail`: photo-like texture in the background images (the benchmark uses it).
    - `extra`: extra top-level keys merged into lesson.json (e.g. {"font": "fonts/x.ttf"}).
    """
    if segments < 1:
        raise ValueError("segments must be >= 1")
    lesson_dir = Path(lesson_dir)
    (lesson_dir / "images").mkdir(parents=True, exist_ok=True)
    (lesson_dir / "audio").mkdir(parents=True, exist_ok=True)
    secs = [float(s) for s in _as_list(seconds, segments)]
    has_audio = [bool(a) for a in _as_list(audio, segments)]
    fmts = _as_list(audio_format, segments)
    has_image = [bool(v) for v in _as_list(images, segments)]
    segs = []
    for i in range(segments):
        color = segment_color(i)
        seg: dict = {"background": hex_color(color)}
        if has_image[i]:
            rel = f"images/{i + 1}.png"
            write_background(lesson_dir / rel, width, height, color, i, detail)
            seg["image"] = rel
        if has_audio[i]:
            path = write_tone(lesson_dir / "audio" / f"{i + 1}.wav", secs[i], tone_frequency(i), fmts[i])
            seg["audio"] = path.relative_to(lesson_dir).as_posix()
            if duration_with_audio:
                seg["duration"] = secs[i]
        else:
            seg["duration"] = secs[i]
        if thai:
            seg["title"] = TITLES[i % len(TITLES)]
            seg["text"] = TEXTS[i % len(TEXTS)]
        else:
            seg["title"] = f"Part {i + 1}"
            seg["text"] = f"Latin-only sample text for segment {i + 1}, long enough to wrap onto two lines."
        segs.append(seg)
    manifest = {"title": title, "width": width, "height": height, "fps": fps, "segments": segs}
    if extra:
        manifest.update(extra)
    path = lesson_dir / "lesson.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


SHOWCASE_CAPTIONS = (
    "สวัสดีครับ ยินดีต้อนรับสู่บทเรียน",
    "Watch how the greeting is made: hands together, a small bow.",
    "ขอบคุณครับ — thank you.",
    "Now try it yourself, slowly.",
    "ลาก่อน — see you next time.",
)


def write_showcase_lesson(
    lesson_dir: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    seconds: float = 3.0,
    burn_in: bool = False,
) -> Path:
    """A lesson using every lesson.json key: a moving image, clips of ../source.mp4 (written in
    the video folder, beside the lesson, with ../bed.wav the music bed), every transition,
    captions (cues and whole-segment text), titles, music and loudness. Returns lesson.json."""
    lesson_dir = Path(lesson_dir)
    video_dir = lesson_dir.parent
    (lesson_dir / "images").mkdir(parents=True, exist_ok=True)
    (lesson_dir / "audio").mkdir(parents=True, exist_ok=True)
    if not (video_dir / "source.mp4").is_file():
        write_clip(video_dir / "source.mp4", 4 * seconds, fps=fps, size=(width, height), freq=440.0)
    if not (video_dir / "bed.wav").is_file():
        write_wav(video_dir / "bed.wav", _burst_pcm(220.0, 2.5, amplitude=0.4))
    segments: list[dict] = []
    for i in range(5):
        seg: dict = {"title": TITLES[i % len(TITLES)]}
        if i in (1, 3):  # clips: the second under narration, the fourth with its own sound
            seg.update(video="../source.mp4", videoStart=seconds * (i - 1) / 2, duration=seconds)
        else:
            write_background(
                lesson_dir / f"images/{i + 1}.png", width * 3 // 2, height * 3 // 2, segment_color(i), i, True
            )
            seg["image"] = f"images/{i + 1}.png"
            seg["motion"] = {0: "zoom-in", 2: "pan-left"}.get(
                i, {"from": [0.4, 0.5, 1.2], "to": [0.6, 0.45, 1.1]}
            )
        if i != 3:
            tone = write_tone(lesson_dir / f"audio/{i + 1}.wav", seconds, tone_frequency(i))
            seg["audio"] = tone.relative_to(lesson_dir).as_posix()
        if i == 1:
            seg["videoVolume"] = 0.3
        if i:
            kind = ("crossfade", "slide-left", "wipe-left", "fade")[i - 1]
            seg["transition"] = {"type": kind, "duration": 0.5}
        if i % 2:
            seg["captions"] = [{"start": 0.2, "end": seconds - 0.2, "text": SHOWCASE_CAPTIONS[i]}]
        else:
            seg["caption"] = SHOWCASE_CAPTIONS[i]
        segments.append(seg)
    manifest = {
        "title": "Every key — ทุกอย่าง",
        "width": width,
        "height": height,
        "fps": fps,
        "captions": {"language": "th", "burnIn": burn_in},
        "music": {"src": "../bed.wav", "volume": 0.25, "duck": 0.3, "fade": 1.0},
        "loudness": -16,
        "segments": segments,
    }
    path = lesson_dir / "lesson.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
