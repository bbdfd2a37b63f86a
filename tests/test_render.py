"""Stick-figure rendering: frame sizes, orientation, files that players can read back."""

from __future__ import annotations

import dataclasses
import os

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from eai.cli import app
from eai.converters.pipeline import ConvertConfig, run_convert
from eai.toolkit import render, stick_raster
from eai.toolkit.dataset import iter_clips, load_clip
from eai.toolkit.plots import plot_dataset_overview
from eai.toolkit.sample_data import write_sample_data
from eai.toolkit.skeleton import JOINT_INDEX

WALK = "bvh/sample_happy_walk_s01_01"


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    write_sample_data(root / "sd", clips_per_emotion=1, formats=("bvh",))
    run_convert(ConvertConfig(inputs=[str(root / "sd")], out_dir=root / "ds", workers=1))
    return root / "ds"


@pytest.fixture(scope="module")
def walk(dataset_dir):
    return load_clip(dataset_dir, WALK)


def _near(frame: np.ndarray, hex_colour: str, tol: int = 40) -> np.ndarray:
    """Pixels within tol of a colour, below the title band (where the title text lives)."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    hit = (np.abs(frame.astype(int) - rgb) <= tol).all(-1)
    hit[:render.TITLE_PX + 2] = False
    return hit


def _limbs(frame: np.ndarray) -> np.ndarray:
    return _near(frame, render.COLOURS["left"]) | _near(frame, render.COLOURS["right"])


def test_frames_have_the_size_asked_and_show_a_figure(walk):
    frames = list(render.render_frames(walk, size=(160, 120)))
    assert len(frames) == walk.num_frames
    assert frames[0].shape == (120, 320, 3) and frames[0].dtype == np.uint8
    ink = (frames[0] < 200).any(-1).mean()
    assert 0.005 < ink < 0.3  # a stick figure: some pixels, far from all of them
    assert _limbs(frames[0]).sum() > 50


def test_front_view_shows_the_subjects_left_on_the_viewers_right(walk):
    frame = next(render.render_frames(walk, views=("front",)))
    left = np.nonzero(_near(frame, render.COLOURS["left"]))[1]
    right = np.nonzero(_near(frame, render.COLOURS["right"]))[1]
    assert left.size > 30 and right.size > 30
    assert left.mean() > right.mean() + 5


def test_side_view_shows_a_walk_moving_left_to_right(walk):
    frames = list(render.render_frames(walk, views=("side",)))
    first, last = (np.nonzero(_limbs(f))[1].mean() for f in (frames[0], frames[-1]))
    assert last - first > 40  # pixels: the camera does not hide the travel
    tops = [np.nonzero(_limbs(f))[0].min() for f in frames[::10]]
    assert np.ptp(tops) < 15  # the vertical limits stay fixed: no zooming or jumping


def test_fps_resamples_in_time(walk):
    n = sum(1 for _ in render.render_frames(walk, fps=10, size=(64, 64)))
    assert n == int((walk.num_frames - 1) / walk.fps * 10) + 1


def test_mp4_reads_back_with_the_clips_frames_and_rate(walk, tmp_path):
    path = render.write_animation(walk, tmp_path / "walk.mp4", size=(161, 121))
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["fps"] == pytest.approx(walk.fps)
    assert meta["size"] == (322, 122)  # padded to even sizes for yuv420p
    assert "yuv420p" in meta["pix_fmt"] and meta["codec"] == "h264"
    assert sum(1 for _ in reader) == walk.num_frames
    assert os.listdir(tmp_path) == ["walk.mp4"]  # no temporary file left behind


def test_mp4_frames_match_the_drawn_frames(walk, tmp_path):
    """MP4 frames are drawn in Y'CbCr, not converted: each must equal a conversion of the RGB
    drawing up to rounding (each overlapping stroke rounds, in either space), chroma the mean of
    each 2x2 block; and the video must look like the drawing."""
    anim = render._Animation(walk, ("front", "side"), (160, 120), None)
    h, w = anim.h, anim.W
    drawn = list(render.render_frames(walk, size=(160, 120)))
    for yuv, rgb in zip(anim.yuv420p(), drawn):
        ycc = stick_raster.rgb_to_ycbcr(rgb).astype(float)
        chroma = ycc[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean((1, 3))
        planes = (yuv[:h * w].reshape(h, w), yuv[h * w:h * w * 5 // 4].reshape(h // 2, w // 2),
                  yuv[h * w * 5 // 4:].reshape(h // 2, w // 2))
        for plane, want in zip(planes, (ycc[..., 0], chroma[..., 0], chroma[..., 1])):
            off = np.abs(plane - want)  # in levels of 219 (luma) and 224 (chroma)
            assert np.quantile(off, 0.999) <= 2 and off.max() <= 6
    path = render.write_animation(walk, tmp_path / "walk.mp4", size=(160, 120))
    reader = imageio_ffmpeg.read_frames(str(path))
    size = next(reader)["size"]
    video = [np.frombuffer(f, np.uint8).reshape(size[1], size[0], 3) for f in reader]
    assert len(video) == len(drawn) == walk.num_frames
    mse = np.mean([((a.astype(float) - b) ** 2).mean() for a, b in zip(drawn, video)])
    assert 10 * np.log10(255 ** 2 / mse) > 30  # dB; 4:2:0 chroma alone caps it near 38


def test_video_range_colours_and_chroma_of_2x2_means():
    white, black = stick_raster.rgb_to_ycbcr(np.array([[255, 255, 255], [0, 0, 0]], np.uint8))
    assert white.tolist() == [235, 128, 128] and black.tolist() == [16, 128, 128]
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[:, 0::2] = (100, 50, 200)  # columns alternate: a top-left sample would see one only
    frame[:, 1::2] = (102, 60, 100)
    out = np.empty(4 * 6 * 3 // 2, np.uint8)
    planes = (out[:24].reshape(4, 6), out[24:30].reshape(2, 3), out[30:].reshape(2, 3))
    stick_raster.to_yuv420p(frame, *planes)
    assert (planes[0] == frame[..., 0]).all()
    assert (planes[1] == 55).all() and (planes[2] == 150).all()


def test_bones_are_drawn_about_as_wide_as_asked():
    """stroke_width: what OpenCV's anti-aliased lines really cover, so widths are chosen right."""
    for thickness in (1, 2, 3):
        view = np.zeros((40, 40, 3), np.uint8)
        ends = np.array([[[[20.3, 5.0], [20.3, 35.0]]]])  # (T, S, 2 ends, x y)
        sprite = stick_raster.ViewSprite(
            (slice(0, 40), slice(0, 40)), [("#ffffff", ends)], np.full((1, 2), np.nan), 5.0,
            floor_y=50.0, ticks=np.full((1, 0), np.nan), ticks_move=False,
            line_px=stick_raster.stroke_width(thickness), head_colour="#ffffff",
            floor_colour="#ffffff", band_colour="#ffffff")
        sprite.draw(view, 0, stick_raster.palette(sorted(sprite.colours()), "rgb"))
        across = view[20, :, 0].sum() / 255
        assert abs(across - stick_raster.stroke_width(thickness)) < 0.15, thickness


def test_the_clock_of_a_long_clip_is_whole_and_beside_the_colour_key(walk):
    reps = int(np.ceil(101 * walk.fps / walk.num_frames))
    long = dataclasses.replace(walk, positions=np.tile(walk.positions, (reps, 1, 1)))
    anim = render._Animation(long, ("front", "side"), (160, 120), fps=0.25)
    *_, last = (f.copy() for f in anim.frames())  # "10x.00 s"
    rows, cols = anim.clock.corner
    assert cols.start < anim.W - render.CLOCK_W  # widened for the longer text
    clock = np.nonzero((last[rows, cols] < 128).all(-1).any(0))[0]  # dark ink in the corner
    blue = stick_raster.hex_rgb(render.COLOURS["left"])  # the colour key's "left"
    key = np.nonzero((np.abs(last[rows].astype(int) - blue) <= 80).all(-1).any(0))[0]
    assert clock.size and clock.min() >= 2 and clock.max() < cols.stop - cols.start - 1
    assert key.size and key.max() < cols.start


def test_gif_loops_and_keeps_real_time(walk, tmp_path):
    path = render.write_animation(walk, tmp_path / "walk.gif", size=(100, 80))
    meta = iio.immeta(path, index=None)
    assert meta["loop"] == 0 and meta["duration"] == 40  # 30 fps snapped to 25 fps
    n = iio.improps(path).shape[0]
    assert abs(n * 0.040 - walk.duration_s) < 0.1


def test_filmstrip_and_overview_pngs(walk, dataset_dir, tmp_path):
    strip = iio.imread(render.plot_filmstrip(walk, tmp_path / "strip.png", n=6))
    assert strip.shape[:2] == (2 * 240 + 34, 6 * 150)
    assert _limbs(strip[..., :3]).sum() > 500
    overview = iio.imread(plot_dataset_overview(dataset_dir, tmp_path / "o.png"))
    assert 400 < overview.shape[0] < 800 and 1200 < overview.shape[1] < 1800


def test_masked_joints_and_missing_frames_do_not_crash(walk, tmp_path):
    mask = walk.joint_mask.copy()
    mask[[JOINT_INDEX["chest"], JOINT_INDEX["head"], JOINT_INDEX["l_foot"]]] = False
    pos = walk.positions.copy()
    pos[:, ~mask] = np.nan
    pos[10:20] = np.nan  # a stretch where nothing was tracked
    clip = dataclasses.replace(walk, positions=pos, joint_mask=mask)
    frames = list(render.render_frames(clip, size=(120, 100)))
    assert len(frames) == clip.num_frames
    assert _limbs(frames[0]).any() and not _limbs(frames[15]).any()
    blank = dataclasses.replace(walk, positions=np.full_like(pos, np.nan))
    assert not any(_limbs(f).any() for f in render.render_frames(blank, size=(64, 64)))
    render.plot_filmstrip(blank, tmp_path / "blank.png", n=3)


def test_bad_arguments_fail_with_a_clear_message(walk, dataset_dir, tmp_path):
    with pytest.raises(ValueError, match="views"):
        render.render_frames(walk, views=("top",))
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        render.write_animation(walk, tmp_path / "walk.avi")
    with pytest.raises(ValueError, match="matches several|not in the dataset"):
        load_clip(dataset_dir, "walk")


def test_cli_show_and_info_plot(dataset_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "clip.png"
    result = runner.invoke(app, ["dataset", "show", str(dataset_dir), "sample_sad_walk_s01_01",
                                 "-o", str(out), "--poses", "4"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    result = runner.invoke(app, ["dataset", "show", str(dataset_dir), "nope", "-o", str(out)])
    assert result.exit_code == 1 and "not in the dataset" in " ".join(result.output.split())
    plot = tmp_path / "overview.png"
    result = runner.invoke(app, ["dataset", "info", str(dataset_dir), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert plot.stat().st_size > 1000


def test_every_sample_clip_renders(dataset_dir):
    for clip in iter_clips(dataset_dir):
        frame = next(render.render_frames(clip, size=(80, 80)))
        assert _limbs(frame).any(), clip.clip_id
