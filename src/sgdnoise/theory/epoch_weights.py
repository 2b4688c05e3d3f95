"""Position-dependent scalar weights of the usage-correlation closure's step (docs/theory.md §3g).

Sampling without replacement: after j batches of an epoch jS of the P examples are used; the
next batch is uniform among the S-subsets of the R = P - jS remaining ones.  These are the
hypergeometric moments of the usage indicators and the pair law of the next batch that the
closures (:mod:`sgdnoise.theory.epoch_closure`, :mod:`sgdnoise.theory.epoch_compact`) weight
their terms with.
"""
from __future__ import annotations


def _hyper(P: int, k: int) -> dict[str, float]:
    """Central moments of the indicators of a uniform k-subset of P (pairs, triples; docs/theory.md §3g)."""
    p = k / P
    pi2 = k * (k - 1) / (P * (P - 1))
    pi3 = k * (k - 1) * (k - 2) / (P * (P - 1) * (P - 2)) if P > 2 else 0.0
    c2aa = p * (1 - p)
    c2ab = pi2 - p * p
    c3aab = (1 - 2 * p) * c2ab
    c3abc = pi3 - 3 * p * pi2 + 2 * p ** 3
    return {"p": p, "v2": c2aa - c2ab, "c2ab": c2ab, "c2aa": c2aa, "t1": c3aab - c3abc,
            "t3": p * (1 - p) * (1 - 2 * p) - 3 * c3aab + 2 * c3abc}


def batch_law(R: int, S: int) -> tuple[float, ...]:
    """Pair weights of an S-batch drawn from R remaining examples (docs/theory.md §3g).

    ``a_R = S(R-S)/(R(R-1))``, ``b_R = S(S-1)/(R(R-1))`` (distinct / same batch pairs), ``w = 1 - S/R``,
    ``q = (S-1)/(R-1)`` and ``a_1, b_1``: the same for the other S - 1 members of a batch containing mu.
    """
    bR = S * (S - 1) / (R * (R - 1)) if R > 1 else 0.0  # P(two given examples in the batch)
    aR = S / R - bR  # = S(R-S)/(R(R-1)); 1 when the one remaining example is the batch
    q = (S - 1) / (R - 1) if R > 1 else 0.0
    if S == 1:  # a batch of one has no other members
        a1, b1 = 0.0, 0.0
    elif R == S:
        a1, b1 = 0.0, 1.0
    else:
        a1 = (S - 1) * (R - S) / ((R - 1) * (R - 2))
        b1 = (S - 1) * (S - 2) / ((R - 1) * (R - 2))
    return aR, bR, 1 - S / R, q, a1, b1


def step_weights(P: int, S: int, j: int) -> dict[str, float]:
    """Scalar weights of one step j of the closure: the batch law given |U| = jS and the closure.

    ``f1, f2``: weights of ``m rho z^T`` and ``D K^T`` in the first-order kick ``E[(n' - p') x G^T]``;
    ``gT, gm, gd, gs``: weights of ``T(D)``, ``K m K^T``, ``K D K^T`` and ``z k^T + k z^T`` in its
    second-order part; ``w = 1 - S/R`` the decay of the indicators; ``alpha``, ``gamma``: weights of
    ``T(m)`` and ``sum_mu K_mu D_mu K_mu^T`` in ``E[G G^T]`` (docs/theory.md §3g).
    """
    R = P - j * S
    h = _hyper(P, j * S)
    p, v2, t1, t3 = h["p"], h["v2"], h["t1"], h["t3"]
    al = 1.0 / v2 if v2 > 0 else 0.0
    aR, bR, w, q, a1, b1 = batch_law(R, S)
    k1, k2, k3, k4 = 1 - 2 * q - a1 + b1, b1 - q, a1 - aR, b1 - bR
    sr, dc, used = S / R, h["c2aa"] - h["c2ab"], (1 - p) - al * t1
    return {
        "w": w, "p": p, "aR": aR, "bR": bR, "sr": sr, "v2": v2, "al": al, "t3": t3,
        "f1": -w * sr * v2 + aR * (1 - p) - aR * v2 / R,
        "f2": -w * sr * al * t3 - aR - aR * al * t3 / R,
        "gT": used * (w * aR - sr * k3),
        "gm": w * (-aR * dc + bR * t3) + sr * (k1 * (1 - p) - 2 * k2 * v2 + k3 * dc - k4 * t3),
        "gd": -w * aR * al * t3 + sr * (-k1 - 2 * k2 * al * t3 + k3 * al * t3),
        "gs": sr * k2 * used,
        "alpha": aR * (1 - p) + bR * v2, "gamma": bR * al * t3 - aR,
    }
