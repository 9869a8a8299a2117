"""HDR clips (a phone's "HDR video", HLG; HDR10's PQ) shown in the SDR lesson as players show
them: tone mapped, with their colours, not flat and pale. Real 10-bit HEVC files (lossless
x265) decoded by the renderer and in a rendered MP4."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from webapp.render import hdr, render_lesson
from webapp.render.assets import probe_clip
from webapp.render.clips import clip_frames, clip_pictures
from webapp.render.effects import Clip

W, H = 320, 180
PATCH = W // 5
# What each patch should look like in the lesson (linear BT.709, relative to reference white):
# white, BT.2408's 18 % grey, a red, a green, a blue, all within BT.709.
SCENE = [(1.0, 1.0, 1.0), (0.18, 0.18, 0.18), (0.6, 0.05, 0.05), (0.05, 0.4, 0.05), (0.1, 0.1, 0.7)]


def hdr_signal(rgb709: tuple[float, float, float], trc: int, bt709_primaries: bool = False) -> np.ndarray:
    """The HDR signal (HLG or PQ R'G'B', 0-1; BT.2020 primaries unless `bt709_primaries`) of a
    BT.709 colour at reference white (203 cd/m²) scale: the inverse of what hdr.py undoes, by the
    standards' own formulas."""
    linear = np.asarray(rgb709, float)
    if not bt709_primaries:
        linear = np.linalg.solve(hdr.BT2020_TO_BT709, linear)
    nits = linear * hdr.REFERENCE_WHITE
    if trc == hdr.PQ:
        m1, m2 = 2610 / 16384, 2523 / 4096 * 128
        c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
        y = (nits / 10000) ** m1
        return ((c1 + c2 * y) / (1 + c3 * y)) ** m2
    luma = hdr.LUMA_709 if bt709_primaries else hdr.LUMA_2020
    ys = (nits @ luma / hdr.HLG_PEAK) ** (1 / 1.2)  # the OOTF undone (BT.2100)
    e = nits / (hdr.HLG_PEAK * ys**0.2)
    a = 0.17883277
    b, c = 1 - 4 * a, 0.5 - a * np.log(4 * a)
    return np.where(e <= 1 / 12, np.sqrt(3 * e), a * np.log(np.maximum(12 * e - b, 1e-9)) + c)


def write_hdr_clip(path: Path, trc: int, frames: int = 3, colours=SCENE, bt709_primaries=False) -> Path:
    """A 10-bit HEVC clip (lossless) tagged BT.2020 (or BT.709 primaries) + `trc`: the colours
    (SCENE's) as patches side by side."""
    signal = np.zeros((H, W, 3))
    for i, colour in enumerate(colours):
        signal[:, i * PATCH : (i + 1) * PATCH] = hdr_signal(colour, trc, bt709_primaries)
    luma = signal @ hdr.LUMA_2020  # BT.2020 non-constant luminance, 10-bit limited range
    planes = (
        64 + 876 * luma,
        (512 + 896 * (signal[..., 2] - luma) / 1.8814)[::2, ::2],
        (512 + 896 * (signal[..., 0] - luma) / 1.4746)[::2, ::2],
    )
    frame = av.VideoFrame(W, H, "yuv420p10le")
    for plane, values in zip(frame.planes, planes, strict=True):
        rows = np.frombuffer(plane, np.uint16).reshape(plane.height, plane.line_size // 2)
        rows[:, : plane.width] = np.rint(values)
    return write_hevc(path, frame, (1 if bt709_primaries else 9, 9, trc), frames)


def write_hevc(path: Path, frame: av.VideoFrame, tags: tuple[int, int, int], frames: int = 3) -> Path:
    """`frame` (yuv420p10le) `frames` times as lossless 10-bit HEVC, tagged with `tags`
    (primaries, matrix, transfer; limited range)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p10le"
        ctx = stream.codec_context
        ctx.color_primaries, ctx.colorspace, ctx.color_trc = tags
        ctx.color_range = 1
        ctx.options = {"x265-params": "lossless=1:log-level=error"}
        for n in range(frames):
            frame.pts = n
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def patches(rgb: np.ndarray) -> np.ndarray:
    """Each patch's middle colour (5 x 3)."""
    rows = rgb[H // 2 - 8 : H // 2 + 8]
    return np.array([rows[:, i * PATCH + 16 : i * PATCH + 48].mean(axis=(0, 1)) for i in range(5)])


def expected() -> np.ndarray:
    """The SCENE in 8-bit SDR, as hdr.py maps it (white rolled off a little by the knee)."""
    linear = np.array(SCENE)
    luma = linear @ hdr.LUMA_709
    over = np.maximum(luma - hdr.KNEE, 0) / (1 - hdr.KNEE)
    rolled = np.where(luma > hdr.KNEE, hdr.KNEE + (1 - hdr.KNEE) * over / (1 + over), luma)
    return 255 * (linear * (rolled / luma)[:, None]) ** (1 / 2.4)


@pytest.fixture(scope="module", params=[hdr.HLG, hdr.PQ], ids=["HLG", "PQ"])
def hdr_clip(request, tmp_path_factory) -> Path:
    return write_hdr_clip(tmp_path_factory.mktemp("hdr") / "phone.mov", request.param)


def test_the_standards_reference_points():
    """HLG at 75 % and PQ at 58 % are both reference white (203 cd/m², BT.2408): the same SDR
    white; BT.2408's 18 % grey card (HLG 38 %, shown at 26 cd/m²) is shown at 26/203 of white on
    an SDR screen (gamma 2.4), as an SDR camera's would be (~0.41 signal); black stays black;
    brighter highlights stay brighter (no flat white above a level) up to the signals' peaks."""
    white_hlg = hdr.sdr_signal(np.full(3, 0.75), hdr.HLG)
    white_pq = hdr.sdr_signal(np.full(3, 0.5807), hdr.PQ)
    assert 0.975 < white_hlg[0] < 0.985 and abs(white_pq[0] - white_hlg[0]) < 0.005  # 95 % of the light
    grey = hdr.sdr_signal(np.full(3, 0.38), hdr.HLG)[0]
    assert abs(grey**2.4 - 26.2 / 203) < 0.003 and abs(grey - 0.41) < 0.02
    assert hdr.sdr_signal(np.zeros(3), hdr.PQ).tolist() == [0, 0, 0]
    for trc in (hdr.HLG, hdr.PQ):
        ramp = hdr.sdr_signal(np.repeat(np.linspace(0, 1, 101)[:, None], 3, axis=1), trc)[:, 0]
        assert (np.diff(ramp) > 0).all() and ramp[-1] <= 1.0


def test_a_bt709_colour_carried_in_bt2020_comes_back_as_itself():
    """Below the knee, a colour any SDR screen can show keeps its hue and saturation exactly (it
    looked pale when BT.2020 was read as BT.709); one outside BT.709 is moved towards grey until it
    fits, as bright as it was (a channel clipped on its own would change its hue)."""
    for colour in SCENE[1:]:
        for trc in (hdr.HLG, hdr.PQ):
            back = hdr.sdr_signal(hdr_signal(colour, trc), trc) ** 2.4
            assert np.allclose(back, colour, atol=0.005), (colour, trc, back)
    pure_green = hdr.sdr_signal(np.array([0.0, 0.6, 0.0]), hdr.HLG)  # BT.2020's green: no SDR has it
    linear = pure_green**2.4
    assert (pure_green >= 0).all() and pure_green.argmax() == 1 and pure_green[1] > 0.6
    nits = hdr.display_light(np.array([0.0, 0.6, 0.0]), hdr.HLG)
    in_709 = nits / hdr.REFERENCE_WHITE @ hdr.BT2020_TO_BT709.T
    assert abs(linear @ hdr.LUMA_709 - in_709 @ hdr.LUMA_709) < 0.005  # as bright, only less saturated


@pytest.mark.parametrize("fmt", ["rgb24", "yuv420p"])
def test_an_hdr_clip_is_shown_tone_mapped(hdr_clip, fmt):
    """The clip's white is white and its colours are as saturated as they are meant to be, as a
    player shows them on an SDR screen (they were flat and pale: white ~189, red 158/76/63)."""
    clip = Clip(hdr_clip, 0, 0.1, 1.0, probe_clip(hdr_clip, "segments[0].video"))
    if fmt == "rgb24":
        (picture,) = clip_pictures(clip, 30, W, H, 1, 1)
        shown = patches(np.asarray(picture, dtype=float))
    else:
        (frame,) = clip_frames(clip, 30, W, H, 1, 1)
        shown = patches(frame.to_ndarray(format="rgb24").astype(float))
    assert np.abs(shown - expected()).max() <= (4 if fmt == "rgb24" else 5), shown.round()  # 4:2:0 rounds
    assert shown[0].min() > 240  # white
    assert shown[2][0] - shown[2][1] > 120  # the red is red


def test_a_rendered_lesson_shows_the_hdr_clip_in_sdr(tmp_path, hdr_clip):
    """The whole render: the MP4 (tagged BT.709, 8-bit) shows the HDR clip's colours."""
    folder = tmp_path / "lesson"
    (folder / "clips").mkdir(parents=True)
    (folder / "clips" / "phone.mov").write_bytes(hdr_clip.read_bytes())
    manifest = {"title": "HDR", "width": W, "height": H, "fps": 30}
    manifest["segments"] = [{"video": "clips/phone.mov", "duration": 0.1}]
    (folder / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    render_lesson(folder, tmp_path / "out.mp4", cache_dir=tmp_path / "cache")
    with av.open(str(tmp_path / "out.mp4")) as c:
        stream = c.streams.video[0]
        frames = [f for f in c.decode(stream)]
    assert stream.format.name == "yuv420p" and frames[0].color_trc == 1 and frames[0].colorspace == 1
    for frame in frames:
        assert np.abs(patches(frame.to_ndarray(format="rgb24").astype(float)) - expected()).max() <= 6


def test_an_sdr_10_bit_clip_is_not_tone_mapped(tmp_path):
    """Only HLG and PQ are tone mapped: a 10-bit BT.709 clip (a camera's log-free SDR) keeps its
    levels."""
    grey = av.VideoFrame.from_ndarray(np.full((H, W, 3), 128, np.uint8), format="rgb24").reformat(
        format="yuv420p10le", dst_colorspace=1, dst_color_range=1
    )
    path = write_hevc(tmp_path / "sdr10.mp4", grey, (1, 1, 1))
    (picture,) = clip_pictures(Clip(path, 0, 0.1, 1.0, probe_clip(path, "v")), 30, W, H, 0, 1)
    assert np.abs(np.asarray(picture, dtype=float) - 128).max() <= 2


SATURATED = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1), (1, 0, 1)]  # at reference white


@pytest.mark.parametrize("trc", [hdr.HLG, hdr.PQ], ids=["HLG", "PQ"])
def test_bright_saturated_colours_keep_their_saturation(tmp_path, trc):
    """BT.709's primaries and secondaries at reference white, the brightest saturated colours an
    SDR screen has: they came out pastel (green 75/251/66 for 28/253/15, cyan 113/248/247 for
    0/253/252) when a 3D table interpolated by FFmpeg stood for hdr.py's formulas."""
    path = write_hdr_clip(tmp_path / "bars.mov", trc, colours=SATURATED)
    clip = Clip(path, 0, 0.1, 1.0, probe_clip(path, "segments[0].video"))
    (picture,) = clip_pictures(clip, 30, W, H, 1, 1)
    shown = patches(np.asarray(picture, dtype=float))
    exact = 255 * hdr.sdr_signal(np.array([hdr_signal(colour, trc) for colour in SATURATED]), trc)
    # The strong channels within 4 levels; the weak ones compared in light, not in levels: near
    # zero, the gamma turns the 10-bit codes' own rounding (~0.1 % of white) into ~15 levels.
    strong = exact > 128
    assert np.abs(shown - exact)[strong].max() <= 4, (shown.round(), exact.round())
    light = np.abs((shown / 255) ** 2.4 - (exact / 255) ** 2.4)
    assert light[~strong].max() < 0.01, (shown.round(), exact.round())
    assert (shown.min(axis=1) < 40).all() and (shown.max(axis=1) > 245).all()  # saturated, bright


def test_hlg_with_bt709_primaries_is_not_converted_from_bt2020(tmp_path):
    """Cameras record HLG with BT.709 primaries too: those colours were converted as BT.2020
    ones, over-saturated (a red 175/54/60 shown as 190/0/64)."""
    path = write_hdr_clip(tmp_path / "camera.mov", hdr.HLG, bt709_primaries=True)
    clip = Clip(path, 0, 0.1, 1.0, probe_clip(path, "segments[0].video"))
    (picture,) = clip_pictures(clip, 30, W, H, 1, 1)
    assert np.abs(patches(np.asarray(picture, dtype=float)) - expected()).max() <= 4


def test_hdr_said_by_the_container_alone_is_tone_mapped(hdr_clip):
    """A clip whose pictures carry no colour tags, its container's (a MOV's colr atom) saying
    HLG or PQ, was read as BT.601 SDR (white 184)."""
    from webapp.render.clips import _Cover

    with av.open(str(hdr_clip)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        tags = (ctx.color_trc, ctx.color_primaries, ctx.colorspace)
        frame = next(container.decode(stream))
    frame.color_trc = frame.color_primaries = frame.colorspace = 2  # unspecified
    shown = _Cover(W, H, 1, "rgb24", tags).picture(frame)
    assert np.abs(patches(np.asarray(shown, dtype=float)) - expected()).max() <= 4


@pytest.mark.parametrize("bt709_primaries", [False, True], ids=["BT.2020", "BT.709"])
@pytest.mark.parametrize("trc", [hdr.HLG, hdr.PQ], ids=["HLG", "PQ"])
def test_the_fast_tone_mapping_is_the_definition_within_a_rounding(trc, bt709_primaries):
    """to_sdr (OpenCV, float32, bands of rows) against sdr_signal (float64) on every combination of
    33 levels per channel, near-black ones and random signals: within one level of the rounded
    definition everywhere (the earlier tables were up to 4 levels off near black)."""
    levels = np.linspace(0, 65535, 33).round()
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    rng = np.random.default_rng(7)
    dark = rng.integers(0, 2048, (4096, 3))
    signals = np.concatenate([grid, dark, rng.integers(0, 65536, (20000, 3))]).astype(np.uint16)
    signals = np.resize(signals, (73, 701, 3))  # more rows than a band, an odd width
    planes = [np.ascontiguousarray(signals[..., i]) for i in range(3)]
    fast = np.stack(hdr.to_sdr(*planes, trc, bt709_primaries), axis=-1).astype(int)
    exact = np.round(255 * hdr.sdr_signal(signals / 65535, trc, bt709_primaries)).astype(int)
    assert np.abs(fast - exact).max() <= 1
