r"""Gradient noise of a network: per-example gradient covariance, its projections, lag correlations.

Notation of docs/theory.md §2: per-example losses :math:`\ell_n`, mean gradient
:math:`\bar g = \nabla L`, per-example covariance

.. math:: \Sigma_1 = \frac1P \sum_{n=1}^P (\nabla\ell_n - \bar g)(\nabla\ell_n - \bar g)^\top .

The one-step covariance of a batch gradient is :math:`C = f \Sigma_1` with the factor
:math:`f` of the sampler (:func:`sgdnoise.theory.noise.batch_noise_factor`; this module
measures, the factor is theory).

Per-example gradients come from ``torch.func.vmap(torch.func.grad(...))`` over chunks of
examples, so memory is bounded by ``chunk_size * d`` numbers.  Projected onto ``k``
directions :math:`V` (e.g. Hessian eigenvectors) they give the rows
:math:`q_n = V^\top \nabla \ell_n`, from which follow :math:`V^\top \Sigma_1 V` and its diagonal
:math:`\sigma^2_{1,i} = v_i^\top \Sigma_1 v_i`.  Because a batch gradient is a mean of rows,
:func:`sgdnoise.measure.gradient_noise.noise_autocorrelation` turns the rows and a sampler into
the projected noise autocorrelation by lag at fixed weights, which shows the anti-correlations
of epoch-based sampling (Kühn & Rosenow, arXiv 2306.05300, eq. 2).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from scipy.sparse.linalg import LinearOperator
from torch import nn
from torch.func import functional_call, grad, vmap

from sgdnoise.errors import UsageError
from sgdnoise.measure.hessian import Data, LossFn, ParameterVector, check_data, data_chunks, scipy_operator
from sgdnoise.progress import progress_bar


class PerExampleGradients:
    r"""Per-example gradients :math:`\nabla_\theta \ell_n` of a model, chunk by chunk.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated at its current parameters, in eval mode.
    loss_fn : callable
        ``loss_fn(output, target)`` -> mean loss of a batch (applied to one example at a time).
    data : DataLoader or (X, y)
    chunk_size : int
        Examples whose gradients are held at once (memory ``chunk_size * d``).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data, chunk_size: int = 256) -> None:
        if chunk_size < 1:
            raise UsageError(f"chunk_size must be at least 1; got {chunk_size}")
        self.model, self.loss_fn, self.data, self.chunk_size = model, loss_fn, data, chunk_size
        self.n_examples = check_data(model, loss_fn, data)
        self.space = ParameterVector(model)
        self.dim = self.space.dim
        self.dtype = self.space.params[0].dtype
        self.device = self.space.params[0].device

    def chunks(self, progress: bool = False) -> Iterator[torch.Tensor]:
        """Yield per-example gradients, tensors of shape ``(chunk, d)``, in data order."""
        params = {n: p.detach() for n, p in zip(self.space.names, self.space.params)}
        buffers = dict(self.model.named_buffers())

        def example_loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.loss_fn(functional_call(self.model, {**p, **buffers}, (x[None],)), y[None])

        per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))
        was_training = self.model.training
        self.model.eval()
        bar = progress_bar(progress, total=self.n_examples, desc="per-example gradients", unit="example")
        try:
            for X, y in data_chunks(self.data, self.chunk_size):
                for Xc, yc in zip(X.split(self.chunk_size), y.split(self.chunk_size)):
                    grads = per_example(params, Xc.to(self.device), yc.to(self.device))
                    bar.update(len(Xc))
                    yield self.space.flatten([grads[n] for n in self.space.names], batch=len(Xc)).T
        finally:
            bar.close()
            self.model.train(was_training)

    def hessian_blocks(self, V: torch.Tensor, progress: bool = False) -> torch.Tensor:
        r"""Per-example Hessians in the subspace of ``V``: :math:`B_n = V^\top \nabla^2\ell_n V`, ``(P, k, k)``.

        Forward-over-reverse per-example Hessian-vector products
        (``vmap`` over the examples of a chunk of ``jvp(grad(ell_n))``), one column of ``V`` at a
        time, each product projected on ``V`` at once (memory ``chunk_size * d``).  Their mean is
        :math:`V^\top H V`; their spread is the weight-dependent part of the gradient noise in
        that subspace, :math:`q_n(\theta) \approx q_n + B_n V^\top(\theta - \theta_0)`
        (docs/theory.md §3g, network form in :mod:`sgdnoise.theory.net_noise`).
        """
        from torch.func import jvp

        V = V.to(dtype=self.dtype, device=self.device)
        params = {n: p.detach() for n, p in zip(self.space.names, self.space.params)}
        buffers = dict(self.model.named_buffers())

        def example_loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.loss_fn(functional_call(self.model, {**p, **buffers}, (x[None],)), y[None])

        def example_hvp(x: torch.Tensor, y: torch.Tensor, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return jvp(lambda p: grad(example_loss)(p, x, y), (params,), (v,))[1]

        per_example = vmap(example_hvp, in_dims=(0, 0, None))
        was_training = self.model.training
        self.model.eval()
        blocks = []
        bar = progress_bar(progress, total=self.n_examples, desc="per-example Hessian blocks", unit="example")
        try:
            for X, y in data_chunks(self.data, self.chunk_size):
                for Xc, yc in zip(X.split(self.chunk_size), y.split(self.chunk_size)):
                    Xc, yc = Xc.to(self.device), yc.to(self.device)
                    columns = []
                    for j in range(V.shape[1]):
                        tangent = dict(zip(self.space.names, self.space.unflatten(V[:, j])))
                        out = per_example(Xc, yc, tangent)
                        columns.append(self.space.flatten([out[n] for n in self.space.names], batch=len(Xc)).T @ V)
                    blocks.append(torch.stack(columns, dim=2))
                    bar.update(len(Xc))
        finally:
            bar.close()
            self.model.train(was_training)
        return torch.cat(blocks)

    def project(self, V: torch.Tensor, progress: bool = False) -> torch.Tensor:
        r"""Rows :math:`q_n = V^\top \nabla\ell_n`: a ``(P, k)`` tensor for ``V`` of shape ``(d, k)``."""
        V = V.to(dtype=self.dtype, device=self.device)
        return torch.cat([G @ V for G in self.chunks(progress)])


class NoiseCovarianceOperator:
    r"""The per-example gradient covariance :math:`\Sigma_1` as an operator, :math:`U \mapsto \Sigma_1 U`.

    :math:`\Sigma_1 U = \frac1P \sum_n \nabla\ell_n (\nabla\ell_n^\top U) - \bar g (\bar g^\top U)`,
    one pass of per-example gradients per product (``U`` of shape ``(d, m)`` is multiplied
    for all its columns in the same pass).  Arguments as :class:`PerExampleGradients`.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data, chunk_size: int = 256) -> None:
        self.gradients = PerExampleGradients(model, loss_fn, data, chunk_size)
        self.dim = self.gradients.dim

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    def matmat(self, U: torch.Tensor) -> torch.Tensor:
        """``Sigma_1 U`` for ``U`` of shape ``(d, m)`` or ``(d,)``."""
        squeeze = U.ndim == 1
        U = (U[:, None] if squeeze else U).to(dtype=self.gradients.dtype, device=self.gradients.device)
        second = torch.zeros_like(U)
        first = torch.zeros(self.dim, dtype=U.dtype, device=U.device)
        for G in self.gradients.chunks():
            second += G.T @ (G @ U)
            first += G.sum(0)
        P = self.gradients.n_examples
        mean = first / P
        out = second / P - mean[:, None] * (mean @ U)[None, :]
        return out[:, 0] if squeeze else out

    def to_scipy(self) -> LinearOperator:
        """As a float64 :class:`scipy.sparse.linalg.LinearOperator`."""
        return scipy_operator(self.matmat, self.dim)


def projected_covariance(projections: torch.Tensor) -> torch.Tensor:
    r""":math:`V^\top \Sigma_1 V = \frac1P \sum_n (q_n - \bar q)(q_n - \bar q)^\top` from rows ``(P, k)``."""
    centred = projections - projections.mean(0)
    return centred.T @ centred / projections.shape[0]
