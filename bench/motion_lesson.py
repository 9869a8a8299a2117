"""The `--motion` benchmark: a 60 s 1080p30 lesson with motion, clips, transitions, burned-in
captions and a music bed, and the hand-tuned ffmpeg command that renders the same.

Layout (generated once, deterministic, under bench/out/motion/):

    motion/source.mp4          40 s 1080p30 H.264 + stereo AAC tone; every frame differs (a
                               scrolling textured gradient, a moving disc and bar) and carries
                               its frame number as 12 black/white blocks (`read_frame_index`)
    motion/lesson_1/           the lesson (lesson.json, images/1.jpg, images/2.jpg, audio/*.wav,
                               audio/bed.mp3); captions burned in
    motion/lesson_2/           a copy with `burnIn: false`, for the caption-change re-render
    motion/ffmpeg/captions.ass the same captions for ffmpeg's `subtitles` filter (libass)

Segments (10 s each; narration 9 s on the image segments; captions on all):
1 zoom-in on image 1; 2 clip 5-15 s; 3 pan-left on image 2 (crossfade 0.5 s); 4 clip 20-30 s
(crossfade 0.5 s); 5 image 1 still with a title; 6 image 2 still (slide-left 0.5 s).
"""

from __future__ import annotations

import json
import math
import shutil
from fractions import Fraction
from pathlib import Path

WIDTH, HEIGHT, FPS = 1920, 1080, 30
SEGMENT = 10.0  # seconds per segment
SEGMENTS = 6
LESSON_SECONDS = SEGMENT * SEGMENTS
TRANSITION = 0.5
NARRATION = 9.0  # seconds of narration in each image segment
SOURCE_SECONDS = 40
CLIP_STARTS = (5, 20)  # videoStart of the two clip segments (seconds into source.mp4)
IMAGE_SIZE = (2400, 1600)
MUSIC_SECONDS = 15.0
RATE = 48_000
ZOOM_IN_TO = 1.2  # what the ffmpeg command zooms to (the renderer's preset may differ)
PAN_ZOOM = 1.2  # the ffmpeg command's pan: at this zoom, from the right edge to the left
TITLE = "A still picture with a title"
CAPTION_SEGMENT, CAPTION_CUE = 2, 1  # the caption ours-caption changes (segment 3, second cue)

BITS = 12  # frame number blocks in the source video
BLOCK = 48
BITS_Y = 24

CAPTIONS = [
    ["We start wide and move in slowly.", "Notice the detail in the middle.", "Keep watching the centre."],
    ["Now a clip from the recording.", "It plays its own sound.", "The music stays underneath."],
    ["The camera pans across the picture.", "From right to left, eased.", "Slow at both ends."],
    ["Back to the recording.", "A crossfade brought us here.", "Ten seconds of video."],
    ["A still picture with a title.", "Nothing moves here.", "Only the captions change."],
    ["The last picture slides in.", "That was the whole lesson.", "Thank you for watching."],
]


# --------------------------------------------------------------------------------------------
# The lesson


def cues(texts: list[str]) -> list[dict]:
    """Three cues spread over a segment: 0-3.2, 3.4-6.6, 6.8-9.8 s."""
    spans = [(0.0, 3.2), (3.4, 6.6), (6.8, 9.8)]
    return [{"start": s, "end": e, "text": t} for (s, e), t in zip(spans, texts, strict=True)]


def lesson_manifest(burn_in: bool = True) -> dict:
    """lesson.json of the motion lesson (the keys the renderer is gaining, written to their spec)."""
    fade = {"type": "crossfade", "duration": TRANSITION}
    segs = [
        {"image": "images/1.jpg", "motion": "zoom-in", "audio": "audio/1.wav", "duration": SEGMENT},
        {"video": "../source.mp4", "videoStart": CLIP_STARTS[0], "videoEnd": CLIP_STARTS[0] + SEGMENT},
        {"image": "images/2.jpg", "motion": "pan-left", "audio": "audio/3.wav", "duration": SEGMENT},
        {"video": "../source.mp4", "videoStart": CLIP_STARTS[1], "duration": SEGMENT},
        {"image": "images/1.jpg", "title": TITLE, "audio": "audio/5.wav", "duration": SEGMENT},
        {"image": "images/2.jpg", "audio": "audio/6.wav", "duration": SEGMENT},
    ]
    segs[2]["transition"] = dict(fade)
    segs[3]["transition"] = dict(fade)
    segs[5]["transition"] = {"type": "slide-left", "duration": TRANSITION}
    for seg, texts in zip(segs, CAPTIONS, strict=True):
        seg["captions"] = cues(texts)
    return {
        "title": "Motion benchmark lesson",
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "captions": {"language": "en", "burnIn": burn_in},
        "music": {"src": "audio/bed.mp3", "volume": 0.2, "duck": 0.3, "fade": 1.0},
        "loudness": -16,
        "segments": segs,
    }


def write_json(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def ensure_motion_lesson(video_dir: Path) -> Path:
    """Generate the video folder once (source.mp4, lesson_1, lesson_2); return lesson_1."""
    lesson = video_dir / "lesson_1"
    if (lesson / "lesson.json").exists() and (video_dir / "lesson_2" / "lesson.json").exists():
        write_json(lesson / "lesson.json", lesson_manifest(burn_in=True))  # as this code writes it
        set_caption(video_dir / "lesson_2", None)
        return lesson
    print(f"generating the motion lesson in {video_dir} ...", flush=True)
    tmp = video_dir.with_name(video_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "lesson_1" / "images").mkdir(parents=True)
    (tmp / "lesson_1" / "audio").mkdir()
    write_source(tmp / "source.mp4")
    write_images(tmp / "lesson_1" / "images")
    write_narration(tmp / "lesson_1" / "audio")
    write_music(tmp / "lesson_1" / "audio" / "bed.mp3")
    write_json(tmp / "lesson_1" / "lesson.json", lesson_manifest(burn_in=True))
    shutil.copytree(tmp / "lesson_1", tmp / "lesson_2")
    set_caption(tmp / "lesson_2", None)
    shutil.rmtree(video_dir, ignore_errors=True)
    tmp.rename(video_dir)
    return lesson


def set_caption(lesson: Path, suffix: str | None) -> None:
    """Rewrite lesson_2/lesson.json: burnIn false, the changed cue's text + `suffix` (if any)."""
    manifest = lesson_manifest(burn_in=False)
    if suffix:
        manifest["segments"][CAPTION_SEGMENT]["captions"][CAPTION_CUE]["text"] += suffix
    write_json(lesson / "lesson.json", manifest)


def write_images(folder: Path) -> None:
    """Two 2400x1600 photo-like JPEGs (texture, shapes, a grid so motion shows everywhere)."""
    from PIL import Image, ImageDraw

    from webapp.render.sample import segment_color, write_background

    for k in (1, 2):
        png = folder / f"{k}.png"
        write_background(png, *IMAGE_SIZE, segment_color(k + 1), k - 1, detail=True)
        with Image.open(png) as img:
            img = img.convert("RGB")
        draw = ImageDraw.Draw(img)
        for x in range(0, IMAGE_SIZE[0], 160):
            draw.line((x, 0, x, IMAGE_SIZE[1]), fill=(255, 255, 255), width=3)
        for y in range(0, IMAGE_SIZE[1], 160):
            draw.line((0, y, IMAGE_SIZE[0], y), fill=(0, 0, 0), width=3)
        img.save(folder / f"{k}.jpg", "JPEG", quality=90)
        png.unlink()


def write_narration(folder: Path) -> None:
    from webapp.render.sample import tone_frequency, write_tone

    for k in (1, 3, 5, 6):
        write_tone(folder / f"{k}.wav", NARRATION, tone_frequency(k))


def write_music(path: Path) -> None:
    """A 15 s stereo MP3 bed: a soft chord pulsing twice a second (loops in a 60 s lesson)."""
    import numpy as np

    t = np.arange(int(MUSIC_SECONDS * RATE)) / RATE
    pulse = 0.6 + 0.4 * np.cos(2 * math.pi * 2 * t) ** 2
    left = sum(np.sin(2 * math.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    right = sum(np.sin(2 * math.pi * f * t) for f in (164.81, 246.94, 329.63)) / 3
    pcm = (0.4 * pulse * np.stack([left, right])).astype(np.float32)
    _write_audio(path, pcm, "libmp3lame", "mp3")


def _write_audio(path: Path, pcm, codec: str, fmt: str) -> None:
    import av

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=RATE, layout="stereo")
        for start in range(0, pcm.shape[1], 4800):
            for packet in stream.encode(_audio_frame(pcm[:, start : start + 4800], start)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _audio_frame(chunk, pts: int):
    import av
    import numpy as np

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = Fraction(1, RATE)
    return frame


# --------------------------------------------------------------------------------------------
# The source video


def _source_texture(width: int):
    """A textured diagonal gradient `width` wide (scrolled through, 6 px per frame)."""
    import numpy as np

    rng = np.random.default_rng(20240120)
    y, x = np.mgrid[0:HEIGHT, 0:width].astype(np.float32)
    r = 128 + 90 * np.sin(x / 370.0) * np.cos(y / 290.0)
    g = 128 + 90 * np.sin((x + y) / 510.0)
    b = 128 + 90 * np.cos(x / 230.0 - y / 410.0)
    grain = rng.normal(0, 9, (HEIGHT, width, 1)).astype(np.float32)
    return np.clip(np.stack([r, g, b], axis=2) + grain, 0, 255).astype(np.uint8)


def _source_frame(texture, n: int, disc):
    """Frame `n`: the texture scrolled, a disc on a Lissajous path, a sweeping bar, the number."""
    frame = texture[:, 6 * n : 6 * n + WIDTH].copy()
    radius = disc.shape[0] // 2
    cx = int(WIDTH / 2 + 700 * math.sin(n / 37.0)) - radius
    cy = int(HEIGHT / 2 + 350 * math.sin(n / 23.0)) - radius
    patch = frame[cy : cy + 2 * radius, cx : cx + 2 * radius]
    patch[disc] = (250, 230, 40)
    bar = (17 * n) % WIDTH
    frame[:, bar : bar + 40] = (30, 30, 200)
    frame[BITS_Y - 8 : BITS_Y + BLOCK + 8, 16 : 24 + BITS * BLOCK + 8] = (255, 0, 0)
    for k in range(BITS):
        x = 24 + k * BLOCK
        frame[BITS_Y : BITS_Y + BLOCK, x : x + BLOCK] = 255 if n >> (BITS - 1 - k) & 1 else 0
    return frame


def read_frame_index(rgb) -> int:
    """The source frame number drawn into a 1920x1080 RGB frame (numpy array) of source.mp4."""
    n = 0
    for k in range(BITS):
        x = 24 + k * BLOCK + BLOCK // 2
        y = BITS_Y + BLOCK // 2
        n = n << 1 | int(rgb[y - 8 : y + 8, x - 8 : x + 8].mean() > 128)
    return n


def write_source(path: Path) -> None:
    """source.mp4: 40 s 1920x1080 30 fps H.264 (CRF 20, 2 s GOPs) + a stereo AAC tone."""
    import av
    import numpy as np

    frames = SOURCE_SECONDS * FPS
    texture = _source_texture(WIDTH + 6 * frames)
    yy, xx = np.mgrid[-120:120, -120:120]
    disc = xx**2 + yy**2 < 120**2
    t = np.arange(SOURCE_SECONDS * RATE) / RATE
    tone = 0.3 * np.sin(2 * math.pi * 330 * t) * (0.6 + 0.4 * np.sin(2 * math.pi * 0.5 * t))
    pcm = np.stack([tone, tone]).astype(np.float32)
    per_frame = RATE // FPS
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "20", "g": "60", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        for n in range(frames):
            picture = av.VideoFrame.from_ndarray(_source_frame(texture, n, disc), format="rgb24")
            picture.pts = n
            out.mux(video.encode(picture.reformat(format="yuv420p")))
            start = n * per_frame
            out.mux(audio.encode(_audio_frame(pcm[:, start : start + per_frame], start)))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


# --------------------------------------------------------------------------------------------
# The hand-tuned ffmpeg command


def ass_path(video_dir: Path) -> Path:
    return video_dir / "ffmpeg" / "captions.ass"


def ass_time(seconds: float) -> str:
    cs = round(seconds * 100)
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def write_ass(path: Path) -> Path:
    """The lesson's captions at lesson times, white on a dark outline, bottom centre, Noto Sans."""
    lines = [
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {WIDTH}",
        f"PlayResY: {HEIGHT}",
        "WrapStyle: 0",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, OutlineColour, BackColour, Bold, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV",
        "Style: Default,Noto Sans,54,&H00FFFFFF,&H00000000,&H80000000,0,1,3,0,2,80,80,60",
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Text",
    ]
    for i, seg in enumerate(lesson_manifest()["segments"]):
        for cue in seg["captions"]:
            start, end = i * SEGMENT + cue["start"], i * SEGMENT + cue["end"]
            lines.append(f"Dialogue: 0,{ass_time(start)},{ass_time(end)},Default,{cue['text']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ease(p: str) -> str:
    """ffmpeg expression: ease-in-out (half cosine) of progress `p`, clamped to 0..1."""
    return f"(0.5-0.5*cos(PI*clip({p},0,1)))"


def video_graph(fonts: Path, ass: Path) -> str:
    """The video half of the -filter_complex graph (inputs 0, 1: the images; 2, 3: the clips).

    Hand-tuned: each picture is scaled, converted to limited-range yuv420p and (for the still)
    titled once, then repeated by `loop` (references, no copies); the pan is a moving crop (no
    scaling per frame); zoompan gets the picture at 2x the output so its whole-pixel crop steps
    are half output pixels. xfade only works in 4:4:4, so only the 15 overlapping frames of each
    transition go through it (xfade over whole segments would convert all 1800 frames twice),
    and everything is joined by one concat in yuv420p before libass draws the captions.
    """
    n, t = round(SEGMENT * FPS), round(TRANSITION * FPS)  # frames per segment, per transition
    zoom = f"1+{ZOOM_IN_TO - 1:g}*{_ease(f'on/{n - 1}')}"
    pan_w, pan_h = round(WIDTH * PAN_ZOOM), round(HEIGHT * PAN_ZOOM)
    title = (
        f"drawtext=fontfile={fonts / 'NotoSans-Bold.ttf'}:text='{TITLE}':fontsize=72:fontcolor=white"
        ":x=(w-tw)/2:y=h-300:box=1:boxcolor=black@0.75:boxborderw=36"
    )
    clip = (
        f"scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=increase,crop={WIDTH}:{HEIGHT},"
        f"fps={FPS},format=yuv420p"
    )
    still = f"scale={WIDTH}:-2:out_range=tv,crop={WIDTH}:{HEIGHT},setsar=1"  # a 3:2 image covering 16:9

    def hold(frames: int) -> str:  # one picture -> `frames` frames at FPS
        return f"loop=loop={frames - 1}:size=1:start=0,settb=1/{FPS},setpts=N,fps={FPS}"

    def pan(first: int) -> str:  # the pan's crop for frames first, first + 1, ...
        x = f"{pan_w - WIDTH}*(1-{_ease(f'(n+{first})/{n - 1}')})"
        return f"crop={WIDTH}:{HEIGHT}:x='{x}':y={(pan_h - HEIGHT) // 2}:exact=1"

    def xfade(kind: str) -> str:
        return f"xfade=transition={kind}:duration={TRANSITION}:offset=0,format=yuv420p"

    return ";".join(
        [
            "[0:v]split=2[i1a][i1b]",
            "[1:v]split=2[i2a][i2b]",
            f"[i1a]scale={2 * WIDTH}:-2:out_range=tv,crop={2 * WIDTH}:{2 * HEIGHT},format=yuv420p,"
            f"zoompan=z='{zoom}':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d={n}:s={WIDTH}x{HEIGHT}"
            f":fps={FPS},setsar=1[v1]",
            # Clip A is cut to 10.5 s by -ss/-t: 10 s of segment 2, then 0.5 s under the crossfade.
            f"[2:v]{clip},setpts=PTS-STARTPTS,setsar=1,split=2[a1][a2]",
            f"[a1]trim=end_frame={n}[v2]",
            f"[a2]trim=start_frame={n},setpts=PTS-STARTPTS[v2x]",
            f"[i2a]scale={pan_w}:-2:out_range=tv,crop={pan_w}:{pan_h},format=yuv420p,setsar=1,"
            "split=3[p1][p2][p3]",
            f"[p1]{hold(t)},{pan(0)}[v3h]",
            f"[p2]{hold(n - t)},{pan(t)}[v3]",
            f"[p3]{hold(t)},{pan(n)}[v3x]",
            f"[3:v]{clip},setpts=PTS-STARTPTS,setsar=1,split=2[b1][b2]",
            f"[b1]trim=end_frame={t}[v4h]",
            f"[b2]trim=start_frame={t},setpts=PTS-STARTPTS[v4]",
            f"[i1b]{still},{title},format=yuv420p,split=2[s1][s2]",
            f"[s1]{hold(n)}[v5]",
            f"[s2]{hold(t)}[v5x]",
            f"[i2b]{still},format=yuv420p,split=2[s3][s4]",
            f"[s3]{hold(t)}[v6h]",
            f"[s4]{hold(n - t)}[v6]",
            f"[v2x][v3h]{xfade('fade')}[x3]",
            f"[v3x][v4h]{xfade('fade')}[x4]",
            f"[v5x][v6h]{xfade('slideleft')}[x6]",
            "[v1][v2][x3][v3][x4][v4][v5][x6][v6]concat=n=9:v=1:a=0,"
            f"subtitles=filename={ass}:fontsdir={fonts}[vout]",
        ]
    )


def audio_graph() -> str:
    """The audio half (inputs 4, 5: the clips' sound; 6-9: narration; 10: the music, looped).

    Narration padded to its segment and the clips' own sound are concatenated (the foreground);
    the music bed is cut to the lesson, faded in and out, and ducked under the foreground by
    sidechaincompress; then one loudnorm pass (dynamic mode) to -16 LUFS.
    """
    seg = f"{SEGMENT:g}"
    return ";".join(
        [
            f"[6:a]apad=whole_dur={seg}[n1]",
            f"[4:a]atrim=0:{seg},asetpts=PTS-STARTPTS[n2]",
            f"[7:a]apad=whole_dur={seg}[n3]",
            f"[5:a]atrim=0:{seg},asetpts=PTS-STARTPTS[n4]",
            f"[8:a]apad=whole_dur={seg}[n5]",
            f"[9:a]apad=whole_dur={seg}[n6]",
            "[n1][n2][n3][n4][n5][n6]concat=n=6:v=0:a=1,asplit=2[fg][key]",
            f"[10:a]atrim=0:{LESSON_SECONDS:g},volume=0.2,afade=t=in:d=1,"
            f"afade=t=out:st={LESSON_SECONDS - 1:g}:d=1[bed]",
            "[bed][key]sidechaincompress=threshold=0.02:ratio=4:attack=20:release=300[ducked]",
            "[fg][ducked]amix=inputs=2:duration=first:normalize=0,"
            f"loudnorm=I=-16:TP=-2:LRA=11,aresample={RATE}[aout]",
        ]
    )


def ffmpeg_command(ffmpeg: str, lesson: Path, ass: Path, output: Path) -> list[str]:
    """The whole render in one ffmpeg process, at our renderer's default x264 and AAC settings.

    The clips are cut by input seeking (-ss/-t before -i: decoding starts at the keyframe
    before the cut, where `trim` would decode from the file's start); each clip's sound is a
    separate audio-only input, so the audio graph never makes the video inputs decode ahead.
    """
    from webapp.render.fonts import FONT_DIR
    from webapp.render.settings import RenderSettings

    s = RenderSettings()
    source = str(lesson.parent / "source.mp4")
    tail = f"{SEGMENT + TRANSITION:g}"
    seg = f"{SEGMENT:g}"
    a, b = str(CLIP_STARTS[0]), str(CLIP_STARTS[1])
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
           "-i", str(lesson / "images/1.jpg"), "-i", str(lesson / "images/2.jpg"),
           "-an", "-ss", a, "-t", tail, "-i", source, "-an", "-ss", b, "-t", seg, "-i", source,
           "-vn", "-ss", a, "-t", seg, "-i", source, "-vn", "-ss", b, "-t", seg, "-i", source]  # fmt: skip
    for k in (1, 3, 5, 6):
        cmd += ["-i", str(lesson / f"audio/{k}.wav")]
    cmd += ["-stream_loop", "-1", "-i", str(lesson / "audio/bed.mp3")]
    graph = video_graph(FONT_DIR, ass) + ";" + audio_graph()
    cmd += ["-filter_complex", graph, "-map", "[vout]", "-map", "[aout]"]
    cmd += ["-c:v", "libx264", "-preset", s.preset, "-crf", str(s.crf), "-g", str(s.keyint)]
    if s.tune:
        cmd += ["-tune", s.tune]
    if s.x264_params:
        cmd += ["-x264-params", ":".join(f"{k}={v}" for k, v in sorted(s.x264_params.items()))]
    cmd += ["-pix_fmt", "yuv420p", "-c:a", s.audio_codec, "-b:a", str(s.audio_bitrate), "-ac", "2"]
    cmd += ["-movflags", "+faststart", str(output)]
    return cmd


def probe(path: Path) -> dict:
    """Video frames (packets), video and audio seconds of an MP4, without decoding the pictures."""
    import av

    with av.open(str(path)) as f:
        v, a = f.streams.video[0], f.streams.audio[0]
        frames = sum(1 for p in f.demux(v) if p.size)
        video_s = float(v.duration * v.time_base) if v.duration else None
        audio_s = float(a.duration * a.time_base) if a.duration else None
    return {"frames": frames, "video_s": video_s, "audio_s": audio_s}


# --------------------------------------------------------------------------------------------
# The --motion driver


def _describe(r: dict) -> str:
    video = f"{r['video_s']:.2f}" if r.get("video_s") else "?"
    audio = f"{r['audio_s']:.2f}" if r.get("audio_s") else "?"
    return f"{r['frames']} frames, {video} s video, {audio} s audio, peak RSS {r['rss_mb']:.0f} MB"


def measure_motion(variants: list[str], runs: int, out: Path, run_child, processes: int | None) -> dict:
    """Per run: ours-cold (empty cache); ours-caption (lesson_2, burnIn false: a warm-up render,
    then one caption's text changed and re-rendered, timed); ffmpeg. A variant that fails prints
    one line and is not tried again; the others carry on."""
    video_dir = out / "motion"
    ensure_motion_lesson(video_dir)
    write_ass(ass_path(video_dir))
    copy = video_dir / "lesson_2"
    samples: dict[str, list[dict]] = {v: [] for v in variants}
    failed: set[str] = set()

    def measure(name: str, run: int, lesson: Path | None = None, label: str | None = None) -> dict | None:
        if name in failed:
            return None
        try:
            r = run_child(name, "motion", run, processes, lesson)
        except Exception as exc:  # VariantFailed from the driver, or anything else: one line
            failed.add(name)
            message = exc.args[0] if exc.args else repr(exc)
            print(f"  run {run + 1}: {message} (not tried again)", flush=True)
            return None
        print(f"  run {run + 1}: {label or name:18s} {r['wall']:7.2f} s  ({_describe(r)})", flush=True)
        return r

    for run in range(runs):
        cache = out / f"cache-motion-{run}"
        shutil.rmtree(cache, ignore_errors=True)
        if "ours-cold" in variants and (r := measure("ours-cold", run)):
            samples["ours-cold"].append(r)
        if "ours-caption" in variants:
            set_caption(copy, None)
            if measure("ours-caption", run, copy, "(warm-up: burnIn false)"):
                set_caption(copy, f" (changed {run + 1})")
                if r := measure("ours-caption", run, copy):
                    samples["ours-caption"].append(r)
            set_caption(copy, None)
        shutil.rmtree(cache, ignore_errors=True)
        if "ffmpeg" in variants and (r := measure("ffmpeg", run)):
            samples["ffmpeg"].append(r)
    return samples


if __name__ == "__main__":  # generate the lesson and print the ffmpeg command, shell-quoted
    import shlex
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from render_bench import OUT, find_ffmpeg

    folder = OUT / "motion"
    lesson_1 = ensure_motion_lesson(folder)
    ass = write_ass(ass_path(folder))
    print(shlex.join(ffmpeg_command(find_ffmpeg(), lesson_1, ass, OUT / "motion.mp4")))
