r"""Trace and spectral density of the Hessian of a network's loss, from products alone.

* :func:`hutchinson_trace` -- :math:`\operatorname{tr} H \approx \frac1m \sum_j z_j^\top H z_j`
  with Rademacher :math:`z_j` (Hutchinson 1990), with its standard error.
* :func:`spectral_density` -- stochastic Lanczos quadrature (Golub & Meurant 2010;
  Ghorbani, Krishnan & Xiao, ICML 2019): the spectral density
  :math:`\phi(t) = \frac1d \sum_i \delta(t - \lambda_i)` from Gauss quadrature nodes and
  weights of Lanczos runs started at random unit vectors (docs/theory.md §9).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sgdnoise.errors import UsageError
from sgdnoise.measure.hessian import HessianOperator
from sgdnoise.progress import progress_bar


def _rademacher(dim: int, m: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.randint(0, 2, (dim, m), generator=generator, device=device).to(dtype) * 2 - 1


def hutchinson_trace(operator: HessianOperator, n_samples: int = 32, block_size: int = 8,
                     seed: int = 0) -> tuple[float, float]:
    r"""Hutchinson's estimate of :math:`\operatorname{tr} H` and its standard error.

    :math:`\widehat{\operatorname{tr}} = \frac1m \sum_{j=1}^m z_j^\top H z_j` with i.i.d.
    Rademacher vectors :math:`z_j` (Hutchinson, Commun. Stat. Simul. Comput. 19, 433, 1990);
    the standard error is the sample standard deviation of :math:`z_j^\top H z_j` over
    :math:`\sqrt m`.
    """
    if n_samples < 2:
        raise UsageError(f"n_samples must be at least 2; got {n_samples}")
    generator = torch.Generator(device=operator.device).manual_seed(seed)
    samples = []
    for start in range(0, n_samples, block_size):
        Z = _rademacher(operator.dim, min(block_size, n_samples - start), generator, operator.dtype, operator.device)
        samples.append((Z * operator.matmat(Z)).sum(0).double())
    values = torch.cat(samples)
    return float(values.mean()), float(values.std() / math.sqrt(n_samples))


@dataclass(frozen=True)
class SpectralDensity:
    r"""Gauss quadrature nodes and weights of stochastic Lanczos quadrature.

    ``nodes`` and ``weights`` have shape ``(n_vectors, n_steps)``; for each starting vector the
    weights sum to 1, and :math:`\frac1d \sum_i f(\lambda_i) \approx` the mean over vectors of
    ``sum(weights * f(nodes))``.
    """

    nodes: np.ndarray
    weights: np.ndarray

    def density(self, grid: np.ndarray, width: float) -> np.ndarray:
        """The density smoothed by a Gaussian of standard deviation ``width``, on ``grid``."""
        t = np.asarray(grid, dtype=np.float64)[:, None, None]
        kernel = np.exp(-0.5 * ((t - self.nodes) / width) ** 2) / (width * math.sqrt(2 * math.pi))
        return (kernel * self.weights).sum(axis=2).mean(axis=1)


def spectral_density(operator: HessianOperator, n_vectors: int = 8, n_steps: int = 64, seed: int = 0,
                     progress: bool = False) -> SpectralDensity:
    r"""Spectral density of ``operator`` by stochastic Lanczos quadrature.

    Runs ``n_vectors`` independent single-vector Lanczos recurrences (full
    reorthogonalisation) side by side, so that each product is one batched ``matmat``; the
    eigen-decomposition :math:`T = U \operatorname{diag}(\vartheta) U^\top` of each
    tridiagonal matrix gives nodes :math:`\vartheta_l` and weights :math:`U_{1l}^2`
    (Golub & Meurant, *Matrices, Moments and Quadrature*, 2010; Ghorbani et al. 2019).
    """
    if n_vectors < 1 or n_steps < 1:
        raise UsageError(f"n_vectors and n_steps must be at least 1; got {n_vectors}, {n_steps}")
    n_steps = min(n_steps, operator.dim)
    generator = torch.Generator(device=operator.device).manual_seed(seed)
    q = _rademacher(operator.dim, n_vectors, generator, operator.dtype, operator.device)
    q = q / torch.linalg.norm(q, dim=0)
    basis = torch.empty(n_steps, operator.dim, n_vectors, dtype=operator.dtype, device=operator.device)
    alpha = torch.zeros(n_steps, n_vectors, dtype=torch.float64)
    beta = torch.zeros(n_steps, n_vectors, dtype=torch.float64)
    for j in progress_bar(progress, iterable=range(n_steps), desc="SLQ", unit="step"):
        basis[j] = q
        w = operator.matmat(q)
        alpha[j] = (q * w).sum(0).double().cpu()
        for _ in range(2):  # full reorthogonalisation, per vector
            w = w - torch.einsum("jdv,jv->dv", basis[: j + 1], torch.einsum("jdv,dv->jv", basis[: j + 1], w))
        norm = torch.linalg.norm(w, dim=0)
        if j + 1 < n_steps:
            beta[j] = norm.double().cpu()
            q = w / norm.clamp_min(torch.finfo(w.dtype).tiny)
    T = torch.diag_embed(alpha.T) + torch.diag_embed(beta.T[:, :-1], 1) + torch.diag_embed(beta.T[:, :-1], -1)
    nodes, U = torch.linalg.eigh(T)
    return SpectralDensity(nodes.numpy(), (U[:, 0, :] ** 2).numpy())
