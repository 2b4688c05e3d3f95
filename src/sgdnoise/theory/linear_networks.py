"""Linearised stationary covariance of all weights of a (deep) linear network (docs/theory.md §4, §5).

**Derived for sgdnoise.**  Gross, Raulf & Räth (Phys. Rev. Research 6, 033103, 2024) derive
a layer-wise stochastic gradient flow of ``W_2 W_1 x`` linearised around a quasi-stationary
state and an inverse variance-flatness relation (IVFR) for the second layer; their equations
are not available to us (only the summaries in ``shared/seeds``), so what follows is ours.
Near a minimum ``w*`` of all the weights, SGD is linearised as in docs/theory.md §3:

- ``H``: the Hessian of the full-data loss with respect to *all* weights at ``w*``
  (the caller computes it exactly, e.g. :meth:`sgdnoise.dynamics.linear_networks.LinearNetwork.hessian`);
- ``C = f Sigma_1``: the one-step noise covariance, ``Sigma_1`` the covariance of the
  per-example gradients at ``w*`` and ``f`` of :func:`~sgdnoise.theory.noise.batch_noise_factor`
  (docs/theory.md §2); its dependence on the weights is dropped (it is evaluated at ``w*``);
- the continuum Lyapunov equation ``H Sigma + Sigma H = lr C`` (§3a) and, beside it, the
  discrete white-noise form (§3b), both with momentum, solved by
  :func:`~sgdnoise.theory.lyapunov.quadratic_stationary_covariance`.

**Zero modes.** The rescaling symmetry ``W_l -> A W_l``, ``W_{l+1} -> W_{l+1} A^-1``
(``A`` in GL(h)) leaves the loss and every per-example loss unchanged, so its ``h^2``
tangents span null directions of ``H`` and carry no noise at linear order.  They are
projected out explicitly (the equation is solved on their orthogonal complement, where ``H``
is positive definite at a non-degenerate minimum), and ``Sigma`` is zero along them.  Their
actual variance is not set by this linear theory: the symmetric part of ``A`` (which changes
the balance ``W_l W_l^T - W_{l+1}^T W_{l+1}``) is restored by the noise at second order, the
law of balance of docs/theory.md §6a; the rotations ``A`` in O(h) are not restored at all and
diffuse, so in a finite window their variance is set by the window length.  In the
measurement they are the drift modes (:mod:`sgdnoise.measure.pca`).

**Per layer.** The PCA variances of layer ``l`` predicted are the eigenvalues of the block
``Sigma_ll``, the curvatures ``k_i = p_i^T H_ll p_i`` along its eigenvectors, and for a
loss quadratic along ``p_i`` (exact for one layer of a linear network moved alone)
``F_i = 2 sqrt(2 (kappa - 1) L_0 / k_i)``, so ``sigma^2 ~ F^-psi`` with ``psi = 2 gamma``
where ``sigma^2 ~ k^gamma``.

**What this reproduces of Gross et al. and under which assumptions.** For one layer ``C``
is close to ``f (2 L*) H`` when ``P >> N`` (label noise only), so ``Sigma`` is close to
isotropic and ``gamma ~ 0``: no IVFR ("effectively an isotropic loss").  For two layers the
coupling between the layers enters through the off-diagonal blocks of ``H`` and ``C``, and
the rank deficiency through the zero modes; whether layer 2 shows ``gamma > 0`` is then a
prediction of the linearised theory that the experiment compares with simulation.
:func:`two_layer_structure` says where it comes from (docs/theory.md §5a): with no hidden
bottleneck the projection off the orbit alone gives ``0 < gamma < 1`` in layer 2 and the
finite-P structure of the noise the rest; a bottleneck (h below the teacher's rank) scrambles it.
Assumptions: a non-degenerate minimum up to the symmetry (hidden width not above the rank of
the teacher map), small learning rate (continuum) or white noise (discrete), the noise
evaluated at ``w*``, and fluctuations small against the distance to other minima.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.stats.fits import loglog_fit
from sgdnoise.theory.lyapunov import quadratic_stationary_covariance
from sgdnoise.theory.noise import batch_noise_factor, per_example_covariance

METHODS = ("continuum", "discrete")


@dataclass
class LinearisedCovariance:
    """Stationary covariance of all weights at ``w*`` (docs/theory.md §3a, §3b, §4).

    Attributes
    ----------
    covariance : dict
        ``{method: (d, d)}`` for ``continuum`` and ``discrete``; zero along the zero modes.
    hessian : ndarray (d, d)
    noise : ndarray (d, d)
        ``C = f Sigma_1`` at ``w*``.
    zero_modes : int
        Dimension of the symmetry orbit's tangent space (projected out).
    """

    covariance: dict[str, np.ndarray]
    hessian: np.ndarray
    noise: np.ndarray
    zero_modes: int


def complement_basis(generators: np.ndarray, dim: int) -> np.ndarray:
    """Orthonormal basis (dim, dim - z) of the complement of the columns of ``generators``."""
    if generators.size == 0:
        return np.eye(dim)
    U, s, _ = np.linalg.svd(generators, full_matrices=True)
    z = int(np.sum(s > s.max() * 1e-10)) if s.size else 0
    return U[:, z:]


def linearised_covariance(hessian: np.ndarray, per_example_gradients: np.ndarray, lr: float,
                          momentum: float, sampling: str, batch_size: int,
                          generators: np.ndarray | None = None) -> LinearisedCovariance:
    """Solve the linearised stationary covariance on the complement of the symmetry zero modes.

    Parameters
    ----------
    hessian : ndarray (d, d)
        Hessian of the full-data loss at the minimum.
    per_example_gradients : ndarray (P, d)
        Gradients of each per-example loss at the minimum.
    lr, momentum : float
    sampling : str
        Sets ``f`` in ``C = f Sigma_1`` (docs/theory.md §2).
    batch_size : int
    generators : ndarray (d, z), optional
        Tangents of the symmetry orbit at the minimum (projected out).

    Raises
    ------
    UsageError
        When ``H`` is not positive definite on the complement (a degenerate minimum or a
        saddle, e.g. more hidden units than the rank of the end-to-end map) or ``lr`` is
        beyond the stability limit.
    """
    d = hessian.shape[0]
    P = per_example_gradients.shape[0]
    C = batch_noise_factor(sampling, P, batch_size) * per_example_covariance(per_example_gradients)
    B = complement_basis(np.zeros((d, 0)) if generators is None else generators, d)
    H_r = B.T @ hessian @ B
    C_r = B.T @ C @ B
    covs = {}
    for method in METHODS:
        S_r = quadratic_stationary_covariance(0.5 * (H_r + H_r.T), 0.5 * (C_r + C_r.T), lr, momentum, method)
        covs[method] = B @ S_r @ B.T
    return LinearisedCovariance(covs, hessian, C, d - B.shape[1])


def layer_prediction(covariance: np.ndarray, hessian: np.ndarray, layer: slice, loss0: float,
                     kappa: float, seed: int = 0) -> dict[str, object]:
    """Predicted PCA variances, curvatures, flatness and exponents of one layer's block.

    Variances are the eigenvalues of ``Sigma_ll`` (descending; those below ``1e-10`` of the
    largest, the projected zero modes, are dropped), ``k_i = p_i^T H_ll p_i``,
    ``F_i = 2 sqrt(2 (kappa - 1) L_0 / k_i)``; ``gamma`` and ``psi`` are log-log least-squares
    exponents with a bootstrap interval over directions (:func:`~sgdnoise.stats.fits.loglog_fit`).
    """
    lam, V = np.linalg.eigh(covariance[layer, layer])
    order = np.argsort(lam)[::-1]
    lam, V = lam[order], V[:, order]
    keep = lam > lam[0] * 1e-10 if lam.size and lam[0] > 0 else np.zeros(lam.size, bool)
    lam, V = lam[keep], V[:, keep]
    k = np.einsum("di,de,ei->i", V, hessian[layer, layer], V)
    F = 2 * np.sqrt(2 * (kappa - 1) * loss0 / np.where(k > 0, k, np.nan))
    return {"pca_variances": lam, "curvature": k, "flatness": F, **layer_fits(lam, k, F, seed)}


def layer_fits(variances: np.ndarray, curvature: np.ndarray, flatness: np.ndarray, seed: int = 0
               ) -> dict[str, object]:
    """``gamma`` (sigma^2 ~ k^gamma) and ``psi`` (sigma^2 ~ F^-psi) with bootstrap intervals over directions."""
    gamma = loglog_fit(curvature[None], variances[None], seed=seed)
    psi = loglog_fit(flatness[None], variances[None], seed=seed)
    return {"gamma": gamma["exponent"], "gamma_ci": gamma["ci"],
            "psi": None if psi["exponent"] is None else -psi["exponent"],
            "psi_ci": None if psi["ci"] is None else sorted(-c for c in psi["ci"])}


def balance(W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
    """The balance ``D = W_1 W_1^T - W_2^T W_2`` (h x h), conserved by gradient flow (docs/theory.md §6a)."""
    return W1 @ W1.T - W2.T @ W2


def rebalanced_minimum(W1: np.ndarray, W2: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The point ``(A W_1, W_2 A^-1)`` of the minimum's orbit whose balance is ``target`` (h x h).

    ``(W_1, W_2)`` is a minimum of rank h.  SGD moves along the orbit until the noise balances
    (the law of balance, docs/theory.md §6a); that balance is taken from the measurement (the
    window mean) rather than predicted, and the linearised theory is evaluated there.  Solved
    by least squares over ``A`` from ``A = I``; the rotation left free (``A -> Q A``) does not
    change the eigenvalues of the layer blocks.
    """
    from scipy.optimize import least_squares

    h = W1.shape[0]
    iu = np.triu_indices(h)

    def residual(a: np.ndarray) -> np.ndarray:
        A = a.reshape(h, h)
        return (balance(A @ W1, W2 @ np.linalg.inv(A)) - target)[iu]

    A = least_squares(residual, np.eye(h).ravel(), xtol=1e-14, ftol=1e-14, gtol=1e-14).x.reshape(h, h)
    return A @ W1, W2 @ np.linalg.inv(A)


def two_layer_structure(W1: np.ndarray, W2: np.ndarray, hessian: np.ndarray, noise: np.ndarray,
                        covariance: np.ndarray, generators: np.ndarray, rank: int, seed: int = 0
                        ) -> dict[str, object]:
    """Where layer 2's exponent comes from in the linearised theory (docs/theory.md §5a).

    Parameters
    ----------
    W1, W2 : ndarray
        The layers at the minimum (h x N, K x h).
    hessian, noise, covariance : ndarray (d, d)
        ``H``, ``C`` and the predicted stationary covariance there.
    generators : ndarray (d, z)
        Tangents of the symmetry orbit.
    rank : int
        Rank of the least-squares map (a hidden width below it is a bottleneck).

    Returns
    -------
    dict
        ``bottleneck`` (h < rank); ``curvature_span``: largest over smallest eigenvalue of layer 2's
        Hessian block ``I_K (x) W1 H_x W1^T`` (so F_i spans its square root at most);
        ``noise_hessian_deviation``: ``|C - c H| / |C|`` (Frobenius, best c) on the complement of
        the zero modes (0 when the noise is Hessian-like); ``orbit_only_gamma``: layer 2's gamma if
        it were 0, ``Sigma ~ Pi_perp``, the symmetry orbit's geometry alone; with a bottleneck,
        ``outside_column_space``: the mean predicted variance of layer-2 directions whose output
        lies outside the column space of W2 (outputs the network cannot produce, driven by the
        teacher's discarded components) over the mean inside it.
    """
    K, h = W2.shape
    layer = slice(W1.size, W1.size + W2.size)
    B = complement_basis(generators, hessian.shape[0])
    Hr, Cr = B.T @ hessian @ B, B.T @ noise @ B
    c = np.sum(Cr * Hr) / np.sum(Hr * Hr)
    lam_h = np.linalg.eigvalsh(hessian[layer, layer])
    lam_h = lam_h[lam_h > lam_h.max() * 1e-10]
    iso = layer_prediction(B @ B.T, hessian, layer, 1.0, np.e, seed)
    out = {"bottleneck": bool(h < rank), "curvature_span": float(lam_h.max() / lam_h.min()),
           "noise_hessian_deviation": float(np.linalg.norm(Cr - c * Hr) / np.linalg.norm(Cr)),
           "orbit_only_gamma": iso["gamma"], "orbit_only_gamma_ci": iso["gamma_ci"]}
    if h < K:
        U = np.linalg.svd(W2)[0]
        inside, outside = (np.kron(U[:, part], np.eye(h)) for part in (slice(0, h), slice(h, K)))
        S = covariance[layer, layer]
        out["outside_column_space"] = float(np.trace(outside.T @ S @ outside) / outside.shape[1]
                                            / (np.trace(inside.T @ S @ inside) / inside.shape[1]))
    out["reading"] = structure_reading(out)
    return out


def structure_reading(s: dict[str, object]) -> str:
    """One sentence on layer 2 from :func:`two_layer_structure`'s numbers."""
    orbit = "n/a" if s["orbit_only_gamma"] is None else f"{s['orbit_only_gamma']:.2f}"
    common = (f"layer 2's curvatures span a factor {s['curvature_span']:.2g}; the noise deviates from the "
              f"Hessian by {s['noise_hessian_deviation']:.0%}; the orbit's geometry alone gives gamma = {orbit}")
    if s["bottleneck"]:
        return (f"hidden layer narrower than the teacher's rank: layer-2 directions whose outputs lie outside "
                f"the column space of W2 carry {s.get('outside_column_space', float('nan')):.3g} times the "
                f"variance of those inside at the same curvatures (the teacher's discarded components act as "
                f"input-dependent label noise there), which scrambles any power law; {common}")
    return f"no bottleneck (hidden width >= the teacher's rank): {common}, the noise's structure the rest"
