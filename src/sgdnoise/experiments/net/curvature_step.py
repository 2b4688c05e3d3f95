r"""The measurement at the pre-trained point: Hessian eigenpairs, projected gradient noise, trace, density.

At the current weights (docs/theory.md §9): the top ``k`` eigenpairs
:math:`(\lambda_i, v_i)` of the Hessian of the mean loss, to which the weight decay
:math:`\gamma` is added (the objective is :math:`L + \frac\gamma2|\theta|^2`, §1); the
per-example gradients projected on the eigenvectors, :math:`q_n = V^\top\nabla\ell_n`, and their
covariance :math:`V^\top\Sigma_1 V` (§2); the per-example Hessians in the eigenbasis
:math:`B_n = V^\top\nabla^2\ell_n V` (the weight-dependent noise, §3g); Hutchinson's trace and the stochastic Lanczos
spectral density.  The result is cached in the checkpoint folder (``curvature.pt``), so a
resumed run does not repeat it.  A stop request (Ctrl-C, SIGTERM) between or inside these
measurements discards them (nothing is cached) and the run stops there.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise import _spec
from sgdnoise.experiments.net.result import Curvature, SpectralLines
from sgdnoise.experiments.net.session import Session
from sgdnoise.interrupts import announce_phase, stop_requested
from sgdnoise.stats.streaming import Estimate


@dataclass(frozen=True)
class Eigenbasis:
    r"""The measured :class:`Curvature` with what the later phases need: eigenvectors and projections.

    Attributes
    ----------
    curvature : Curvature
    eigenvectors : torch.Tensor (d, k)
        Orthonormal, in the model's dtype and device.
    projections : ndarray (P, k)
        Per-example gradients projected on the eigenvectors, float64.
    hessian_blocks : ndarray (P, k, k)
        Per-example Hessians in the eigenbasis, :math:`B_n = V^\top\nabla^2\ell_n V`, float64
        (weight decay not included: it adds no noise).
    """

    curvature: Curvature
    eigenvectors: Any
    projections: np.ndarray
    hessian_blocks: np.ndarray


def _measure(session: Session) -> dict[str, Any] | None:
    """The measurements of the module docstring; None when a stop was requested meanwhile."""
    from sgdnoise.measure.hessian import HessianOperator
    from sgdnoise.measure.lanczos import hessian_eigenpairs
    from sgdnoise.measure.network_noise import PerExampleGradients, projected_covariance
    from sgdnoise.measure.spectrum import hutchinson_trace, spectral_density

    c, s = session.config, session
    start = time.perf_counter()
    pairs = hessian_eigenpairs(s.model, s.loss_fn, s.train_set, c.k, method=c.hvp, solver=c.solver, tol=c.tol,
                               seed=_spec.torch_seed(c.seed, "lanczos"), progress=s.progress)
    eigen_seconds = time.perf_counter() - start
    if stop_requested():
        return session.stop("during the curvature measurement (Hessian eigenpairs)")
    start = time.perf_counter()
    projections = PerExampleGradients(s.model, s.loss_fn, s.train_set).project(pairs.eigenvectors, s.progress)
    noise_seconds = time.perf_counter() - start
    if stop_requested():
        return session.stop("during the curvature measurement (per-example gradients)")
    start = time.perf_counter()
    blocks = PerExampleGradients(s.model, s.loss_fn, s.train_set).hessian_blocks(pairs.eigenvectors, s.progress)
    blocks_seconds = time.perf_counter() - start
    operator = HessianOperator(s.model, s.loss_fn, s.train_set, method=c.hvp)
    trace = hutchinson_trace(operator, c.trace_samples, seed=_spec.torch_seed(c.seed, "hutchinson")) \
        if c.trace_samples and not stop_requested() else None
    slq = spectral_density(operator, c.slq_vectors, c.slq_steps, seed=_spec.torch_seed(c.seed, "slq"),
                           progress=s.progress) if c.slq_vectors and not stop_requested() else None
    if stop_requested():
        return session.stop("during the curvature measurement (trace and spectral density)")
    return {
        "eigenvalues": pairs.eigenvalues.double().cpu().numpy() + c.weight_decay,
        "eigenvectors": pairs.eigenvectors,
        "residuals": pairs.residuals.double().cpu().numpy(),
        "products": pairs.n_products,
        "projections": projections.double().cpu().numpy(),
        "noise_covariance": projected_covariance(projections).double().cpu().numpy(),
        "trace": trace,
        "slq": None if slq is None else (slq.nodes, slq.weights),
        "hessian_blocks": blocks.double().cpu().numpy(),
        "seconds": {"eigenpairs": eigen_seconds, "noise_projection": noise_seconds,
                    "hessian_blocks": blocks_seconds},
    }


def measure_curvature(session: Session) -> Eigenbasis | None:
    """Measure (or read back from ``curvature.pt``) the curvature at the current weights.

    None when the run was asked to stop during the measurement (the session's status says so).
    """
    import torch

    announce_phase("curvature")
    cache = session.checkpoint("curvature")
    found = torch.load(cache, weights_only=False) if cache is not None and cache.is_file() else None
    if found is not None and "hessian_blocks" in found:  # older caches lack the blocks: measured again
        session.resumed["curvature"] = "read back from curvature.pt"
    else:
        found = _measure(session)
        if found is None:
            return None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save(found, cache)
    trace = None if found["trace"] is None else Estimate(*found["trace"])
    spectrum = None if found["slq"] is None else SpectralLines(*found["slq"])
    from sgdnoise.theory.net_noise import hessian_spread

    curvature = Curvature(found["eigenvalues"], found["residuals"], found["products"], found["noise_covariance"],
                          trace, spectrum, found["seconds"], hessian_spread(found["hessian_blocks"]))
    return Eigenbasis(curvature, found["eigenvectors"], found["projections"], found["hessian_blocks"])
