"""Loss profiles, Feng & Tu's flatness and directional curvature (docs/theory.md §5).

**Definition implemented.** For a centre ``c`` (the window-mean point ``<w>`` of the
trajectory PCA), a unit direction ``p`` and a threshold ``kappa > 1`` (default ``e``):
``L_0 = L(c)`` (the full-data loss at the window mean, *not* the minimum along the line),
``s_l < 0 < s_r`` the nearest points on either side where ``L(c + s p) = kappa L_0``, and the
flatness ``F = s_r - s_l``.  The left and right half-widths are reported too: they differ
when ``c`` is not the minimum along ``p`` (an asymmetric profile).  Feng & Tu define the
flatness as the width of the region around the trajectory's mean where the loss stays below
``e`` times its value there; we take ``L_0`` at ``<w>`` because that is the point the PCA
directions start from, and the threshold relative (``kappa L_0``) so that ``F`` does not
depend on the units of the loss.  For ``L = L_0 + k s^2 / 2`` about its minimum,
``F = 2 sqrt(2 (kappa - 1) L_0 / k)``.

**Search.** Per direction and side, the step doubles from ``initial`` until the loss
exceeds ``kappa L_0`` (bracketing; a side still below after ``max_doublings`` is reported
*unbounded*, width ``inf``), then ``bisections`` bisection steps.  All directions and both
sides are evaluated in one batched call of the loss per iteration.

**Curvature.** ``k = p^T H(c) p`` from batched Hessian-vector products.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sgdnoise.errors import UsageError

#: Batched loss: points (n, d) -> losses (n,).
LossFn = Callable[[np.ndarray], np.ndarray]
#: Batched Hessian-vector product: points (n, d), vectors (n, d) -> (n, d).
HvpFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Flatness:
    """Flatness of m directions (docs/theory.md §5).

    Attributes
    ----------
    width : ndarray (m,)
        ``F = s_r - s_l`` (inf where a side is unbounded).
    left, right : ndarray (m,)
        ``-s_l`` and ``s_r`` (inf where unbounded).
    loss0 : float
        ``L_0``, the loss at the centre.
    kappa : float
    """

    width: np.ndarray
    left: np.ndarray
    right: np.ndarray
    loss0: float
    kappa: float

    @property
    def bounded(self) -> np.ndarray:
        return np.isfinite(self.width)

    @property
    def asymmetry(self) -> np.ndarray:
        """``(s_r + s_l) / F``: 0 for a profile symmetric about the centre."""
        with np.errstate(invalid="ignore"):
            return (self.right - self.left) / self.width


def check_directions(directions: np.ndarray, dim: int) -> np.ndarray:
    """``directions`` as (m, d) rows of length ``dim``, or a one-line refusal."""
    directions = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if directions.ndim != 2 or directions.shape[1] != dim:
        raise UsageError(f"direction must have {dim} entries (one per weight); got shape {directions.shape}",
                         name="direction")
    return directions


def check_kappa(kappa: float) -> float:
    """Refuse a threshold ``kappa <= 1`` (the interval would be empty or everything)."""
    if not (np.isfinite(kappa) and kappa > 1):
        raise UsageError(f"kappa must be a finite number > 1; got {kappa}", name="kappa")
    return float(kappa)


def loss_profiles(loss: LossFn, centre: np.ndarray, directions: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``L(c + s_j p_i)`` for every direction and grid point in one batched call: (m, len(s))."""
    directions = check_directions(directions, centre.shape[-1])
    points = centre + s[None, :, None] * directions[:, None, :]
    return loss(points.reshape(-1, centre.shape[-1])).reshape(len(directions), len(s))


def flatness(loss: LossFn, centre: np.ndarray, directions: np.ndarray, kappa: float = np.e,
             initial: float | np.ndarray = 1e-3, max_doublings: int = 60, bisections: int = 40) -> Flatness:
    """Flatness of each row of ``directions`` (m, d) about ``centre`` (d,); see the module docstring."""
    kappa = check_kappa(kappa)
    directions = check_directions(directions, centre.shape[-1])
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    m = len(directions)
    L0 = float(loss(centre[None])[0])
    if not (np.isfinite(L0) and L0 > 0):
        raise UsageError(f"the loss at the centre must be finite and > 0 for a relative threshold; got {L0}",
                         name="kappa")
    limit = kappa * L0
    sign = np.repeat([-1.0, 1.0], m)
    dirs = np.concatenate([directions, directions])

    def above(step: np.ndarray) -> np.ndarray:
        return loss(centre + (sign * step)[:, None] * dirs) > limit

    lo = np.zeros(2 * m)
    hi = np.broadcast_to(np.asarray(initial, dtype=np.float64), (m,))
    hi = np.concatenate([hi, hi]).copy()
    found = np.zeros(2 * m, dtype=bool)
    for _ in range(max_doublings):
        found = above(hi)
        if found.all():
            break
        lo = np.where(found, lo, hi)
        hi = np.where(found, hi, 2 * hi)
    for _ in range(bisections):
        mid = 0.5 * (lo + hi)
        over = above(mid)
        lo, hi = np.where(over, lo, mid), np.where(over, mid, hi)
    half = np.where(found, 0.5 * (lo + hi), np.inf)
    left, right = half[:m], half[m:]
    return Flatness(left + right, left, right, L0, kappa)


def curvature(hvp: HvpFn, centre: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``k_i = p_i^T H(c) p_i / |p_i|^2`` for the rows of ``directions`` (m, d), one batched call."""
    directions = check_directions(directions, centre.shape[-1])
    points = np.broadcast_to(centre, directions.shape)
    return np.einsum("md,md->m", hvp(points, directions), directions) / np.einsum("md,md->m", directions,
                                                                                  directions)
