"""C3D reader, marker profiles and writer, on the real fixtures in ../shared when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eai.converters import c3d as c3d_reader
from eai.converters.c3d_writer import write_c3d, write_clip_c3d
from eai.converters.errors import ConvertError
from eai.converters.marker_profiles import MARKER_PROFILES
from eai.converters.profiles import detect_profile
from eai.converters.recipes import normalize_name
from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import JOINT_INDEX as J

SHARED = Path(__file__).resolve().parents[2] / "shared"
C3D_DIR = SHARED / "fixtures" / "c3d"
FIXTURES = sorted(C3D_DIR.glob("*.c3d")) if C3D_DIR.is_dir() else []
SAMPLE02 = [C3D_DIR / f"c3dorg_sample02_{enc}.c3d"
            for enc in ("pc_real", "pc_int", "dec_real", "dec_int")]
TENNIS = C3D_DIR / "ktk_tennis_serve_nan.c3d"
QUALISYS = C3D_DIR / "ezc3d_qualisys_gait.c3d"
EXPECTED_PROFILE = {"c3dorg_sample02": "cluster-markers", "ktk_tennis": "plug-in-gait",
                    "ezc3d_qualisys": "qualisys-gait"}


def need_fixtures() -> None:
    if not FIXTURES:
        pytest.skip(f"real C3D fixtures not found in {C3D_DIR}")


def expected_profile(path: Path) -> str:
    return next(v for k, v in EXPECTED_PROFILE.items() if path.name.startswith(k))


@pytest.mark.parametrize("path", FIXTURES or [None], ids=lambda p: p.name if p else "none")
def test_every_fixture_converts(path):
    need_fixtures()
    clip = c3d_reader.read(path)
    assert isinstance(clip, Clip) and clip.source.format == "c3d"
    assert clip.positions.shape[1:] == (19, 3) and clip.fps == 30
    assert clip.source.profile == expected_profile(path)
    p = clip.positions
    feet = p[:, [J["l_ankle"], J["r_ankle"], J["l_foot"], J["r_foot"]], 1]
    assert abs(np.nanmin(feet)) < 0.03  # floor at y = 0
    assert 0.6 < np.nanmedian(p[:, J["pelvis"], 1]) < 1.2
    assert p[0, J["l_hip"], 0] > p[0, J["r_hip"], 0]  # facing +Z: the subject's left is +X
    if clip.joint_mask[J["head"]]:
        above = p[:, J["head"], 1] - p[:, J["pelvis"], 1]
        assert np.nanmin(above) > 0.1 and np.nanmedian(above) > 0.4  # tennis: bends to serve
    else:  # a marker set without head markers: masked, never invented
        assert clip.source.profile == "cluster-markers"
        assert np.isnan(p[:, J["head"]]).all()
    assert any(n.startswith("joint centres estimated") for n in clip.source.notes)


@pytest.mark.parametrize("path", FIXTURES or [None], ids=lambda p: p.name if p else "none")
def test_marker_profiles_detected_without_stealing(path):
    need_fixtures()
    names = c3d_reader.read_raw(path).names
    assert detect_profile(names, kind="markers").name == expected_profile(path)
    have = {normalize_name(n) for n in names}
    others = [p for p in MARKER_PROFILES if p.name != expected_profile(path)]
    assert all(p.match_score(have) < 0.5 for p in others)


def test_sample02_encodings_agree():
    need_fixtures()
    raws = [c3d_reader.read_raw(p) for p in SAMPLE02]
    ref = raws[0]
    assert len(ref.names) == 36 and ref.names[:3] == ["RFT1", "RFT2", "RFT3"]  # USED 36 of 75
    assert ref.units == "mm" and ref.fps == 50
    assert 0.05 < np.isnan(ref.positions[..., 0]).mean() < 0.1  # ~7% of samples missing
    for raw in raws[1:]:
        assert raw.names == ref.names
        assert np.array_equal(np.isnan(raw.positions), np.isnan(ref.positions))
        assert np.nanmax(np.abs(raw.positions - ref.positions)) < 1.0  # mm
    clips = [c3d_reader.read(p).positions for p in SAMPLE02]
    for clip in clips[1:]:
        assert np.nanmax(np.abs(clip - clips[0])) < 0.001  # metres


def test_tennis_plug_in_gait_metres_prefix_and_gap():
    need_fixtures()
    raw = c3d_reader.read_raw(TENNIS)
    assert raw.units == "m" and all(n.startswith("Derrick:") for n in raw.names)
    rsho = raw.names.index("Derrick:RSHO")
    assert np.isnan(raw.positions[:, rsho, 0]).sum() == 145
    clip = c3d_reader.read(TENNIS)
    assert clip.source.profile == "plug-in-gait" and clip.joint_mask.all()
    p = clip.positions
    for side in "lr":
        thigh = np.linalg.norm(p[:, J[f"{side}_knee"]] - p[:, J[f"{side}_hip"]], axis=-1)
        shin = np.linalg.norm(p[:, J[f"{side}_ankle"]] - p[:, J[f"{side}_knee"]], axis=-1)
        assert 0.3 < np.nanmedian(thigh) < 0.55 and 0.3 < np.nanmedian(shin) < 0.55
        assert np.nanstd(thigh) < 0.03  # estimated centres: a few cm of skin motion at most
    assert 1.0 < np.nanmedian(p[:, J["head"], 1] - p[:, J["l_ankle"], 1]) < 2.0


def test_qualisys_landmarks():
    need_fixtures()
    clip = c3d_reader.read(QUALISYS)
    assert clip.source.profile == "qualisys-gait" and clip.source.fps == 200
    assert clip.joint_mask.all()
    # Walking: the pelvis travels over 2 m in 1.7 s.
    assert np.linalg.norm(clip.positions[-1, J["pelvis"], [0, 2]]) > 2.0


def _points(seed: int = 0) -> np.ndarray:
    pts = np.random.default_rng(seed).normal(size=(20, 5, 3)) * 400.0
    pts[3, 1] = np.nan
    pts[10:14, 4] = np.nan
    return pts


@pytest.mark.parametrize("processor", ["intel", "dec", "sgi"])
def test_written_file_reads_back(tmp_path, monkeypatch, processor):
    pts, labels = _points(), ["A", "B", "Subj:C", "LongerLabel", "E"]
    path = tmp_path / f"{processor}.c3d"
    write_c3d(path, pts, labels, fps=120.0, units="mm", processor=processor)
    assert path.read_bytes()[512 + 3] == {"intel": 84, "dec": 85, "sgi": 86}[processor]

    used = []
    for name in ("_read_ezc3d", "_read_c3dpkg"):
        real = getattr(c3d_reader, name)
        monkeypatch.setattr(c3d_reader, name, lambda p, real=real, name=name: (
            used.append(name), real(p))[1])
    raw = c3d_reader.read_raw(path)
    assert used == (["_read_c3dpkg"] if processor == "sgi" else ["_read_ezc3d"])
    assert raw.names == labels and raw.fps == 120 and raw.units == "mm"
    assert np.array_equal(np.isnan(raw.positions), np.isnan(pts))
    np.testing.assert_allclose(raw.positions, pts, atol=1e-3)


@pytest.mark.filterwarnings("ignore:No analog data")
def test_sgi_needs_the_fallback(tmp_path):
    import c3d
    import ezc3d

    path = tmp_path / "sgi.c3d"
    write_c3d(path, _points(), list("ABCDE"), fps=60.0, processor="sgi")
    with pytest.raises(Exception, match="MIPS"):
        ezc3d.c3d(str(path))  # why SGI files go to the c3d package
    with open(path, "rb") as f:
        reader = c3d.Reader(f)
        frames = np.stack([p for _, p, _ in reader.read_frames()])
    assert reader.proc_type == "MIPS"
    xyz = np.where(frames[..., 3:4] < 0, np.nan, frames[..., :3])
    np.testing.assert_allclose(xyz, _points(), atol=1e-3)


def test_zero_samples_and_duplicate_labels(tmp_path):
    pts = _points()
    pts[5, 0] = 0.0  # some writers mark gaps as (0, 0, 0)
    path = tmp_path / "dup.c3d"
    write_c3d(path, pts, ["A", "B", "a", "C", "Subj:B"], fps=30.0)
    raw = c3d_reader.read_raw(path)
    assert np.isnan(raw.positions[5, 0]).all()
    assert any("duplicate point labels a, b" in n for n in raw.notes)


def test_clip_export_reads_back_as_canonical(tmp_path):
    need_fixtures()
    clip = c3d_reader.read(QUALISYS)
    path = tmp_path / "clip.c3d"
    write_clip_c3d(path, clip, processor="sgi")
    again = c3d_reader.read(path)
    assert again.source.profile == "canonical-19"
    np.testing.assert_allclose(again.positions, clip.positions, atol=1e-3)


def test_random_bytes_named_c3d(tmp_path):
    path = tmp_path / "noise.c3d"
    path.write_bytes(np.random.default_rng(1).bytes(4000).replace(b"P", b"Q"))
    with pytest.raises(ConvertError) as e:
        c3d_reader.read(path)
    assert e.value.position == "byte 2" and "must be 0x50" in str(e.value)


@pytest.mark.parametrize("keep, where", [(300, "byte 300"), (700, "byte"), (None, "byte")])
def test_truncated_c3d(tmp_path, keep, where):
    src = tmp_path / "whole.c3d"
    write_c3d(src, _points(), list("ABCDE"), fps=30.0)
    data = src.read_bytes()
    path = tmp_path / "cut.c3d"
    path.write_bytes(data[:keep] if keep else data[:len(data) - 512])  # None: cut the data
    with pytest.raises(ConvertError) as e:
        c3d_reader.read(path)
    assert e.value.position.startswith(where) and "expected" in e.value.reason


def test_bad_processor_byte(tmp_path):
    path = tmp_path / "proc.c3d"
    write_c3d(path, _points(), list("ABCDE"), fps=30.0)
    data = bytearray(path.read_bytes())
    data[512 + 3] = 99
    path.write_bytes(bytes(data))
    with pytest.raises(ConvertError, match="processor type 84"):
        c3d_reader.read_raw(path)


def _after_name(data: bytes, group: str, name: str) -> int:
    """Index just past a parameter's name in a file we wrote: its offset word, then the type,
    the dimension count, the dimensions and the value follow."""
    return data.index(name.encode(), data.index(group.encode(), 512)) + len(name)


# ezc3d segfaults on these (found by fuzzing): the reader must refuse them before it gets there.
# If the check regressed, this test kills the pytest process instead of failing quietly.
@pytest.mark.parametrize("corrupt", ["ndim", "analog_used"])
def test_corrupt_parameters_raise_instead_of_crashing(tmp_path, corrupt):
    path = tmp_path / "corrupt.c3d"
    write_c3d(path, _points(), list("ABCDE"), fps=30.0)
    data = bytearray(path.read_bytes())
    if corrupt == "ndim":
        at = _after_name(data, "POINT", "Y_SCREEN") + 3
        assert data[at] == 1
        data[at] = 157
    else:
        at = _after_name(data, "ANALOG", "USED") + 4
        assert data[at:at + 2] == b"\0\0"
        data[at] = 147
    path.write_bytes(bytes(data))
    with pytest.raises(ConvertError) as e:
        c3d_reader.read_raw(path)
    assert e.value.position.startswith("byte") and "expected" in e.value.reason


@pytest.mark.filterwarnings("ignore:No analog data")
def test_long_description_goes_to_the_c3d_package(tmp_path, monkeypatch):
    import c3d

    w = c3d.Writer(point_rate=30.0, point_scale=-1.0)
    w.analog_rate = 30.0
    w.set_point_labels(list("ABCDE"))
    w.add_group(9, "NOTES", "x" * 200)  # legal, but ezc3d reads the length byte as -56
    pts = np.nan_to_num(_points(), nan=1.0)
    w.add_frames([(np.c_[p, np.zeros((5, 2))].astype(np.float32), np.zeros((0, 0))) for p in pts])
    path = tmp_path / "long.c3d"
    with open(path, "wb") as f:
        w.write(f)
    monkeypatch.setattr(c3d_reader, "_read_ezc3d", lambda p: pytest.fail("ezc3d was called"))
    np.testing.assert_allclose(c3d_reader.read_raw(path).positions, pts, atol=1e-3)
