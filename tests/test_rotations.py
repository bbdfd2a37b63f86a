"""Rotation math: Euler round trips for all 12 orders, agreement with scipy, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eai.toolkit.rotations import (
    ORDERS,
    axis_angle_to_matrix,
    euler_to_matrix,
    frame_from_two_vectors,
    matrix_between_vectors,
    matrix_to_euler,
)

TAIT_BRYAN = [o for o in ORDERS if len(set(o)) == 3]
PROPER = [o for o in ORDERS if o[0] == o[2]]


def random_angles(order: str, n: int = 500, seed: int = 0) -> np.ndarray:
    """Angles inside the canonical ranges that matrix_to_euler returns, away from gimbal lock."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-175, 175, (n, 3))
    a[:, 1] = rng.uniform(5, 175, n) if order in PROPER else rng.uniform(-85, 85, n)
    return a


def test_orders_are_the_twelve():
    assert len(ORDERS) == 12 and len(TAIT_BRYAN) == 6 and len(PROPER) == 6


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip(order):
    angles = random_angles(order)
    back = matrix_to_euler(euler_to_matrix(angles, order), order)
    np.testing.assert_allclose(back, angles, atol=1e-9)


@pytest.mark.parametrize("order", ORDERS)
def test_matrices_are_proper_rotations(order):
    R = euler_to_matrix(random_angles(order, seed=1), order)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


@pytest.mark.parametrize("order", TAIT_BRYAN + PROPER)
def test_matches_scipy_intrinsic(order):
    angles = random_angles(order, seed=2)
    expected = Rotation.from_euler(order.upper(), angles, degrees=True).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(angles, order), expected, atol=1e-12)


def test_bvh_convention_is_first_channel_outermost():
    """"Zrotation Xrotation Yrotation" means R = Rz @ Rx @ Ry acting on column vectors."""
    z, x, y = 30.0, -20.0, 50.0
    rz, rx, ry = (Rotation.from_euler(a, d, degrees=True).as_matrix()
                  for a, d in (("z", z), ("x", x), ("y", y)))
    np.testing.assert_allclose(euler_to_matrix(np.array([z, x, y]), "ZXY"), rz @ rx @ ry,
                               atol=1e-12)
    # Right-hand rule: +90 about X takes +Y to +Z.
    np.testing.assert_allclose(euler_to_matrix(np.array([90.0, 0, 0]), "XYZ") @ [0, 1, 0],
                               [0, 0, 1], atol=1e-12)


def test_batch_shapes_and_lower_case_order():
    a = random_angles("ZXY", n=24).reshape(2, 3, 4, 3)
    R = euler_to_matrix(a, "zxy")
    assert R.shape == (2, 3, 4, 3, 3)
    assert matrix_to_euler(R, "ZXY").shape == (2, 3, 4, 3)
    assert euler_to_matrix(np.zeros(3), "XYZ").shape == (3, 3)


def test_unknown_order_is_named():
    with pytest.raises(ValueError, match="XXY"):
        euler_to_matrix(np.zeros(3), "XXY")


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("middle_sign", [-1, 1])
def test_gimbal_lock_still_reproduces_the_matrix(order, middle_sign):
    angles = random_angles(order, n=50, seed=3)
    if order in PROPER:
        angles[:, 1] = 0.0 if middle_sign < 0 else 180.0
    else:
        angles[:, 1] = 90.0 * middle_sign
    R = euler_to_matrix(angles, order)
    back = matrix_to_euler(R, order)
    assert np.isfinite(back).all()
    np.testing.assert_allclose(euler_to_matrix(back, order), R, atol=1e-9)


def test_axis_angle_matches_scipy_including_tiny_and_zero_angles():
    rng = np.random.default_rng(4)
    v = rng.normal(size=(200, 3)) * 2.0
    v[0] = 0.0
    v[1] *= 1e-9
    v[2] *= 1e-5
    np.testing.assert_allclose(axis_angle_to_matrix(v), Rotation.from_rotvec(v).as_matrix(),
                               atol=1e-12)


def test_matrix_between_vectors_general_parallel_antiparallel_zero():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 300, 3))
    b[0] = 3.0 * a[0]  # parallel: identity
    b[1] = -2.0 * a[1]  # antiparallel: a half turn
    b[2] = -a[2] + 1e-12  # nearly antiparallel
    a[3] = [0.0, 0.0, 1.0]
    b[3] = [0.0, 0.0, -1.0]
    R = matrix_between_vectors(a, b)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, unit(a)), unit(b), atol=1e-9)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(R[0], np.eye(3), atol=1e-12)
    # Minimal: the rotation angle equals the angle between the vectors.
    cos = np.sum(unit(a) * unit(b), axis=-1)
    angle = np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    np.testing.assert_allclose(angle, np.arccos(np.clip(cos, -1, 1)), atol=1e-6)
    # Broadcasting one vector against many, and a zero vector gives the identity.
    assert matrix_between_vectors(np.array([0, 1.0, 0]), b).shape == (300, 3, 3)
    np.testing.assert_allclose(matrix_between_vectors(np.zeros(3), b[4]), np.eye(3))


@pytest.mark.parametrize("axes", ["yx", "xy", "zx", "xz", "yz", "zy"])
def test_frame_from_two_vectors(axes):
    rng = np.random.default_rng(6)
    p, s = rng.normal(size=(2, 100, 3))
    s[0] = 2.0 * p[0]  # degenerate secondary: still a proper frame
    F = frame_from_two_vectors(p, s, axes)
    np.testing.assert_allclose(F @ np.swapaxes(F, -1, -2), np.broadcast_to(np.eye(3), F.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(F), 1.0, atol=1e-12)
    i, k = "xyz".index(axes[0]), "xyz".index(axes[1])
    np.testing.assert_allclose(F[..., i], p / np.linalg.norm(p, axis=-1, keepdims=True),
                               atol=1e-12)
    # The secondary lies in the plane of the two named columns, on the positive side.
    s_in_frame = np.einsum("nji,nj->ni", F[1:], s[1:])
    np.testing.assert_allclose(s_in_frame[:, 3 - i - k], 0.0, atol=1e-9)
    assert (s_in_frame[:, k] > 0).all()


def test_euler_to_matrix_is_fast_enough_for_the_bvh_reader():
    """30,000 frames of a 22-joint skeleton convert in well under a second (vectorised)."""
    import time

    angles = random_angles("ZXY", n=30_000 * 22)
    start = time.perf_counter()
    euler_to_matrix(angles, "ZXY")
    assert time.perf_counter() - start < 1.5
