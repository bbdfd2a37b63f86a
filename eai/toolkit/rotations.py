"""Rotation math as pure, vectorised numpy functions (in the style of pytorch3d's
rotation_conversions).

Conventions
-----------
- Rotation matrices act on column vectors: ``v_world = R @ v_local``. A matrix's columns are the
  rotated frame's axes written in the outer frame. Shapes: (..., 3, 3); any leading batch shape.
- Euler angles are in **degrees** and **intrinsic**, applied in the written order, as in BVH:
  for ``order="ZXY"`` and angles ``(a, b, c)``, ``R = Rz(a) @ Rx(b) @ Ry(c)``. ``angles[..., k]``
  belongs to axis ``order[k]`` (the k-th rotation CHANNEL of a BVH joint). This equals scipy's
  ``Rotation.from_euler(order.upper(), angles, degrees=True)`` (upper case = intrinsic).
- All 12 orders are supported: Tait-Bryan XYZ XZY YXZ YZX ZXY ZYX and proper Euler XYX XZX YXY
  YZY ZXZ ZYZ. `matrix_to_euler` returns the middle angle in [-90, 90] (Tait-Bryan) or
  [0, 180] (proper Euler); the others in (-180, 180]. At gimbal lock the third angle is set to 0
  and the first absorbs the whole rotation about the locked axis.
- Axis-angle is a rotation vector in **radians**: direction = axis, norm = angle.
- Quaternions are (w, x, y, z).
- Elementary rotations by +angle turn counter-clockwise when looking down the axis toward the
  origin (right-hand rule): Rx takes +Y toward +Z, Ry takes +Z toward +X, Rz takes +X toward +Y.
"""

from __future__ import annotations

import numpy as np

_AXIS = {"X": 0, "Y": 1, "Z": 2}
# For a rotation about axis k, the two axes (i, j) it turns, in right-hand order: i -> j.
_PLANE = {0: (1, 2), 1: (2, 0), 2: (0, 1)}
ORDERS: tuple[str, ...] = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX",
                           "XYX", "XZX", "YXY", "YZY", "ZXZ", "ZYZ")


def _check_order(order: str) -> tuple[int, int, int]:
    key = order.upper() if isinstance(order, str) else order
    if key not in ORDERS:
        raise ValueError(f"unknown Euler order {order!r}; use one of {', '.join(ORDERS)}")
    return tuple(_AXIS[c] for c in key)  # type: ignore[return-value]


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles (degrees) -> rotation matrices.

    angles_deg: (..., 3), ``angles_deg[..., k]`` about axis ``order[k]``.
    order: one of the 12 orders, e.g. "ZXY" (BVH channel order).
    Returns (..., 3, 3) float64, ``R = R_order[0] @ R_order[1] @ R_order[2]``.
    """
    axes = _check_order(order)
    angles = np.radians(np.asarray(angles_deg, dtype=np.float64))
    if angles.shape[-1:] != (3,):
        raise ValueError(f"angles must have shape (..., 3), got {angles.shape}")
    # Component-major layout (3, 3, ...): every update below is a contiguous elementwise op,
    # which is several times faster than matmul-ing (..., 3, 3) stacks of tiny matrices.
    by_axis = np.ascontiguousarray(np.moveaxis(angles, -1, 0))
    c, s = np.cos(by_axis), np.sin(by_axis)
    out = np.zeros((3, 3) + angles.shape[:-1])
    k = axes[0]
    i, j = _PLANE[k]
    out[k, k] = 1.0
    out[i, i], out[j, j], out[j, i], out[i, j] = c[0], c[0], s[0], -s[0]
    for n in (1, 2):
        # Right-multiplying by an elementary rotation about axis k only mixes columns i and j.
        i, j = _PLANE[axes[n]]
        col_i = out[:, i].copy()
        col_j = out[:, j]
        out[:, i] = col_i * c[n] + col_j * s[n]
        out[:, j] = col_j * c[n] - col_i * s[n]
    return np.ascontiguousarray(np.moveaxis(out, (0, 1), (-2, -1)))


def _elementary(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """(...,) angles -> (..., 3, 3) rotations about one axis."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    out = np.zeros(np.shape(angle_rad) + (3, 3))
    i, j = _PLANE[axis]
    out[..., axis, axis] = 1.0
    out[..., i, i], out[..., j, j], out[..., j, i], out[..., i, j] = c, c, s, -s
    return out


def matrix_to_euler(matrix: np.ndarray, order: str, eps: float = 1e-9) -> np.ndarray:
    """Rotation matrices -> intrinsic Euler angles in degrees, the inverse of `euler_to_matrix`.

    matrix: (..., 3, 3) proper rotations. order: one of the 12 orders.
    Returns (..., 3) degrees with ``euler_to_matrix(result, order) == matrix``.
    eps: below this, cos(middle) (Tait-Bryan) or sin(middle) (proper Euler) counts as gimbal lock.
    """
    a0, a1, a2 = _check_order(order)
    R = np.asarray(matrix, dtype=np.float64)
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"matrix must have shape (..., 3, 3), got {R.shape}")
    if a0 != a2:  # Tait-Bryan: R[a0, a2] = +-sin(middle)
        sign = 1.0 if (a1 - a0) % 3 == 1 else -1.0  # +1 for the cyclic orders XYZ, YZX, ZXY
        cos_mid = np.hypot(R[..., a0, a0], R[..., a0, a1])
        mid = np.arctan2(sign * R[..., a0, a2], cos_mid)
        first = np.arctan2(-sign * R[..., a1, a2], R[..., a2, a2])
        third = np.arctan2(-sign * R[..., a0, a1], R[..., a0, a0])
        locked = cos_mid < eps
    else:  # proper Euler: R[a0, a0] = cos(middle); k is the axis the order never names
        k = 3 - a0 - a1
        sign = 1.0 if (a1 - a0) % 3 == 1 else -1.0
        sin_mid = np.hypot(R[..., a0, a1], R[..., a0, k])
        mid = np.arctan2(sin_mid, R[..., a0, a0])
        first = np.arctan2(R[..., a1, a0], -sign * R[..., k, a0])
        third = np.arctan2(R[..., a0, a1], sign * R[..., a0, k])
        locked = sin_mid < eps
    if np.any(locked):
        # Only the sum (or difference) of first and third is defined: put it all in the first.
        # R @ R_a1(mid)^T is then a pure rotation about a0; read its angle from the (i, j) plane.
        M = R[locked] @ np.swapaxes(_elementary(a1, mid[locked]), -1, -2)
        i, j = _PLANE[a0]
        first = first.copy()
        third = third.copy()
        first[locked] = np.arctan2(M[..., j, i], M[..., i, i])
        third[locked] = 0.0
    return np.degrees(np.stack([first, mid, third], axis=-1))


def quaternion_to_matrix(quaternions: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) as (w, x, y, z), any norm > 0 -> rotation matrices (..., 3, 3)."""
    q = np.asarray(quaternions, dtype=np.float64)
    w, x, y, z = np.moveaxis(q, -1, 0)
    two_s = 2.0 / np.sum(q * q, axis=-1)
    out = np.stack([
        1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
        two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
        two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
    ], axis=-1)
    return out.reshape(q.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3), radians, -> rotation matrices (..., 3, 3) (Rodrigues)."""
    v = np.asarray(axis_angle, dtype=np.float64)
    theta2 = np.sum(v * v, axis=-1)
    theta = np.sqrt(theta2)
    small = theta < 1e-4
    safe = np.where(small, 1.0, theta)
    # sin(t)/t and (1 - cos(t))/t^2, with Taylor series near 0 where the quotients lose digits.
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    K = _skew(v)
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = np.moveaxis(v, -1, 0)
    zero = np.zeros_like(x)
    return np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(v.shape + (3,))


def _normalize(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0), norm[..., 0]


def _any_perpendicular(v: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to each unit vector v (...,3): v x (its least-used axis)."""
    basis = np.eye(3)[np.argmin(np.abs(v), axis=-1)]
    return _normalize(np.cross(v, basis))[0]


def matrix_between_vectors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b: ``R @ a_hat = b_hat``.

    a, b: (..., 3), broadcastable, any non-zero length. Returns (..., 3, 3).
    Antiparallel vectors give a half turn about an axis perpendicular to a (the choice is
    arbitrary but deterministic). A zero-length a or b gives the identity; NaN stays NaN.
    """
    a_hat, a_norm = _normalize(np.asarray(a, dtype=np.float64))
    b_hat, b_norm = _normalize(np.asarray(b, dtype=np.float64))
    a_hat, b_hat = np.broadcast_arrays(a_hat, b_hat)
    # The half-way quaternion (1 + a.b, a x b) stays well conditioned up to near-antiparallel.
    w = 1.0 + np.sum(a_hat * b_hat, axis=-1)
    xyz = np.cross(a_hat, b_hat)
    q = np.concatenate([w[..., None], xyz], axis=-1)
    q_norm = np.linalg.norm(q, axis=-1)
    flip = q_norm < 1e-9
    if np.any(flip):
        q = q.copy()
        q[flip] = np.concatenate([np.zeros((int(flip.sum()), 1)),
                                  _any_perpendicular(a_hat[flip])], axis=-1)
    degenerate = np.broadcast_to((a_norm == 0) | (b_norm == 0), q.shape[:-1])
    if np.any(degenerate):
        q = q.copy()
        q[degenerate] = (1.0, 0.0, 0.0, 0.0)
    return quaternion_to_matrix(q)


def frame_from_two_vectors(primary: np.ndarray, secondary: np.ndarray,
                           axes: str = "yx") -> np.ndarray:
    """A right-handed orthonormal frame from two directions (Gram-Schmidt).

    primary, secondary: (..., 3). axes: which local axes they become, e.g. "yx" (default):
    column Y of the result is the primary direction, column X the part of the secondary
    perpendicular to it, column Z = X x Y. Returns (..., 3, 3) rotations (columns = frame axes).
    A secondary parallel to the primary is replaced by an arbitrary perpendicular direction;
    the primary must be non-zero.
    """
    if len(axes) != 2 or axes[0] == axes[1] or not set(axes.upper()) <= set("XYZ"):
        raise ValueError(f"axes must name two different axes, e.g. 'yx', got {axes!r}")
    p, s = _AXIS[axes[0].upper()], _AXIS[axes[1].upper()]
    t = 3 - p - s
    e_p, _ = _normalize(np.asarray(primary, dtype=np.float64))
    sec = np.asarray(secondary, dtype=np.float64)
    e_p, sec = np.broadcast_arrays(e_p, sec)
    e_s, s_norm = _normalize(sec - np.sum(sec * e_p, axis=-1, keepdims=True) * e_p)
    bad = s_norm < 1e-9 * np.maximum(np.linalg.norm(sec, axis=-1), 1e-300)
    if np.any(bad):
        e_s = e_s.copy()
        e_s[bad] = _any_perpendicular(e_p[bad])
    # Right-handed completion: for cyclic (p, s, t) e_t = e_p x e_s, otherwise e_s x e_p.
    e_t = np.cross(e_p, e_s) if (s - p) % 3 == 1 else np.cross(e_s, e_p)
    cols = [None, None, None]
    cols[p], cols[s], cols[t] = e_p, e_s, e_t
    return np.stack(cols, axis=-1)
