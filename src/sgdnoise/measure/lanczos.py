r"""Top eigenpairs of a symmetric operator (the Hessian of a network's loss) by block Lanczos.

* :func:`lanczos` -- block Lanczos with full reorthogonalisation for the largest
  eigenpairs of any symmetric operator (Golub & Van Loan, *Matrix Computations*, 4th ed.,
  section 10.3.6);
* :func:`hessian_eigenpairs` -- applies it (or ARPACK's ``eigsh``) to the
  :class:`~sgdnoise.measure.hessian.HessianOperator` of a model, loss and data set
  (docs/theory.md §9; the eigenbasis of §3d in which the fluctuations are measured).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import eigsh
from torch import nn

from sgdnoise.errors import UsageError
from sgdnoise.interrupts import stop_requested
from sgdnoise.measure.hessian import Data, HessianOperator, LossFn
from sgdnoise.progress import progress_bar

SOLVERS = ("lanczos", "eigsh")


@dataclass(frozen=True)
class Eigenpairs:
    """Top eigenpairs; unpacks as ``eigenvalues, eigenvectors = result``.

    Attributes
    ----------
    eigenvalues : torch.Tensor (k,)
        In descending order.
    eigenvectors : torch.Tensor (d, k)
        Orthonormal columns.
    residuals : torch.Tensor (k,)
        Relative residuals ``||H v_i - lambda_i v_i|| / |lambda_i|`` (the solver's estimates).
    n_products : int
        Operator-vector products used.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    residuals: torch.Tensor
    n_products: int

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.eigenvalues, self.eigenvectors))


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative-residual tolerance: 1e-4 in single precision, 1e-8 in double precision."""
    return 1e-8 if dtype == torch.float64 else 1e-4


def _orthogonalise(W: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Remove from ``W`` its components in the span of the orthonormal columns of ``Q``
    (classical Gram-Schmidt applied twice, which keeps orthogonality at round-off level)."""
    for _ in range(2):
        W = W - Q @ (Q.T @ W)
    return W


def _orthonormal_block(W: torch.Tensor, Q: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """QR of ``W`` (already orthogonal to ``Q``): ``W = Qn R``; columns that vanished (an invariant
    subspace was found) are replaced by random vectors orthogonal to ``Q`` and ``Qn``."""
    Qn, R = torch.linalg.qr(W)
    scale = torch.linalg.norm(W) + torch.finfo(W.dtype).tiny
    lost = torch.diagonal(R).abs() <= 100 * torch.finfo(W.dtype).eps * scale
    if lost.any():
        fresh = torch.randn(W.shape[0], int(lost.sum()), dtype=W.dtype, device=W.device, generator=generator)
        basis = torch.cat([Q, Qn[:, ~lost]], dim=1)
        Qn = Qn.clone()
        Qn[:, lost] = torch.linalg.qr(_orthogonalise(fresh, basis))[0]
        R = R.clone()
        R[lost, :] = 0.0
    return Qn, R


def lanczos(
    matmat: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    k: int,
    *,
    block_size: int = 1,
    tol: float | None = None,
    max_dim: int | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> Eigenpairs:
    r"""Largest ``k`` eigenpairs of a symmetric operator by block Lanczos.

    Builds an orthonormal basis :math:`Q = [Q_0, Q_1, \dots]` of the block Krylov space of
    ``matmat`` from a random block :math:`Q_0`, with the three-term recurrence
    :math:`A Q_j = Q_{j-1} B_{j-1}^\top + Q_j A_j + Q_{j+1} B_j` and full
    reorthogonalisation, and takes Ritz pairs of the block-tridiagonal :math:`T = Q^\top A Q`.
    A Ritz pair :math:`(\vartheta, Q s)` has residual norm :math:`\|B_j s_{\rm last}\|`
    (:math:`s_{\rm last}`: the last block of :math:`s`); the iteration stops when the top
    ``k`` satisfy ``residual <= tol * max(|theta_i|, eps**(2/3) |theta_1|)`` (ARPACK's rule),
    or when the basis reaches ``max_dim`` columns or spans the whole space, or when the run is
    asked to stop (:func:`sgdnoise.interrupts.stop_requested`; the pairs are then unconverged).

    Parameters
    ----------
    matmat : callable
        ``matmat(V)`` returns ``A V`` for ``V`` of shape ``(dim, m)``.
    dim : int
        Size of the operator.
    k : int
        Number of eigenpairs, ``1 <= k <= dim``.
    block_size : int
        Columns per Lanczos block (batched products).
    tol : float, optional
        Relative residual tolerance; default :func:`default_tolerance` of ``dtype``.
    max_dim : int, optional
        Largest basis (memory ``max_dim * dim``); default ``min(dim, max(10 k, 200))``.
    dtype, device
        Of the basis vectors (the products use the operator's own).
    seed : int
        Seed of the starting block.
    progress : bool
        Show a progress bar of the products.

    Returns
    -------
    Eigenpairs
        Eigenvalues descending, orthonormal eigenvectors, residual estimates; when the
        iteration stopped at ``max_dim`` without convergence, some residuals exceed ``tol``.
    """
    if not 1 <= k <= dim:
        raise UsageError(f"k must be between 1 and the number of parameters ({dim}); got {k}")
    if block_size < 1:
        raise UsageError(f"block_size must be at least 1; got {block_size}")
    tol = default_tolerance(dtype) if tol is None else tol
    max_dim = min(dim, max(10 * k, 200)) if max_dim is None else min(dim, max_dim)
    if max_dim < k:
        raise UsageError(f"max_dim must be at least k = {k}; got {max_dim}")
    block_size = min(block_size, dim)
    generator = torch.Generator(device=device).manual_seed(seed)
    eps23 = torch.finfo(dtype).eps ** (2 / 3)
    basis = torch.empty(dim, max_dim, dtype=dtype, device=device)
    T = torch.zeros(max_dim, max_dim, dtype=torch.float64)
    start = torch.randn(dim, block_size, dtype=dtype, device=device, generator=generator)
    block, _ = torch.linalg.qr(start)
    n = 0
    bar = progress_bar(progress, total=max_dim, desc="Lanczos", unit="product")
    try:
        while True:
            b = block.shape[1]
            basis[:, n : n + b] = block
            W = matmat(block).to(dtype=dtype, device=device)
            bar.update(b)
            T[n : n + b, n : n + b] = (block.T @ W).double().cpu()
            n += b
            W = _orthogonalise(W, basis[:, :n])
            theta, S = torch.linalg.eigh((T[:n, :n] + T[:n, :n].T) / 2)
            theta, S = theta.flip(0)[:k], S.flip(1)[:, :k]
            next_b = min(block_size, dim - n)  # a smaller block only where it completes the space
            if n >= dim:  # the basis spans the whole space: exact up to round-off
                residual = torch.zeros(len(theta), dtype=torch.float64)
            else:
                new_block, R = _orthonormal_block(W, basis[:, :n], generator)
                residual = torch.linalg.norm(R.double().cpu() @ S[n - b : n], dim=0)
            scale = torch.maximum(theta.abs(), eps23 * theta.abs().max()).clamp_min(torch.finfo(dtype).tiny)
            converged = int((residual <= tol * scale).sum()) if len(theta) == k else 0
            bar.set_postfix(converged=f"{converged}/{k}")
            if converged == k or n >= dim or n + next_b > max_dim or stop_requested():
                break
            block = new_block[:, :next_b]
            T[n : n + next_b, n - b : n] = R[:next_b].double().cpu()
            T[n - b : n, n : n + next_b] = R[:next_b].T.double().cpu()
    finally:
        bar.close()
    vectors = basis[:, :n] @ S.to(dtype=dtype, device=device)
    return Eigenpairs(theta.to(dtype=dtype, device=device), vectors,
                      (residual / theta.abs()).to(dtype=dtype, device=device), n)


def _eigsh(operator: HessianOperator, k: int, tol: float, seed: int) -> Eigenpairs:
    """Top-``k`` eigenpairs by ARPACK (``scipy.sparse.linalg.eigsh``, which="LA")."""
    v0 = np.random.default_rng(seed).standard_normal(operator.dim)
    start = operator.n_products
    values, vectors = eigsh(operator.to_scipy(), k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(values)[::-1].copy()
    values, vectors = values[order], vectors[:, order]
    V = torch.as_tensor(vectors, dtype=operator.dtype, device=operator.device)
    lam = torch.as_tensor(values.copy(), dtype=operator.dtype, device=operator.device)
    residual = torch.linalg.norm(operator.matmat(V) - V * lam, dim=0) / lam.abs()
    return Eigenpairs(lam, V, residual, operator.n_products - start)


def hessian_eigenpairs(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    k: int,
    *,
    method: str = "double-backward",
    solver: str = "lanczos",
    tol: float | None = None,
    block_size: int = 1,
    max_dim: int | None = None,
    chunk_size: int = 1024,
    seed: int = 0,
    progress: bool = False,
) -> Eigenpairs:
    r"""Largest ``k`` eigenpairs of the Hessian of the mean loss over ``data``.

    Parameters
    ----------
    model : torch.nn.Module
        At the weights where the Hessian is wanted (eval mode is used for the products).
    loss_fn : callable
        ``loss_fn(output, target)`` -> mean loss of a batch.
    data : DataLoader or (X, y)
        The data set (all of it enters :math:`L`).
    k : int
        Number of eigenpairs, ``1 <= k <= d`` (the number of trainable parameters).
    method : {"double-backward", "forward-over-reverse"}
        Hessian-vector products (:class:`HessianOperator`).
    solver : {"lanczos", "eigsh"}
        Block Lanczos in torch (:func:`lanczos`) or ARPACK via ``scipy.sparse.linalg.eigsh``.
    tol : float, optional
        Relative residual :math:`\|Hv - \lambda v\| / |\lambda|`; default 1e-4 for float32
        models, 1e-8 for float64.
    block_size, max_dim : int
        Of the Lanczos solver.
    chunk_size : int
        Examples per forward pass for tensor data.
    seed : int
        Seed of the starting vectors.
    progress : bool
        Progress bar of the solver.

    Returns
    -------
    Eigenpairs
        Unpacks as ``(eigenvalues, eigenvectors)``: eigenvalues descending, shape ``(k,)``,
        eigenvectors a ``(d, k)`` tensor with orthonormal columns, in the model's dtype.

    Examples
    --------
    >>> import torch, sgdnoise
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> X, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    >>> lam, V = sgdnoise.hessian_eigenpairs(model, torch.nn.CrossEntropyLoss(), (X, y), k=3)
    >>> V.shape
    torch.Size([26, 3])
    """
    if solver not in SOLVERS:
        raise UsageError(f"solver must be one of {', '.join(SOLVERS)}; got {solver!r}")
    operator = HessianOperator(model, loss_fn, data, method=method, chunk_size=chunk_size)
    if not (isinstance(k, int) and 1 <= k <= operator.dim):
        raise UsageError(f"k must be between 1 and the number of parameters ({operator.dim}); got {k}")
    tol = default_tolerance(operator.dtype) if tol is None else tol
    if solver == "eigsh":
        if k >= operator.dim:
            raise UsageError(f"solver 'eigsh' needs k < the number of parameters ({operator.dim}); got {k}")
        return _eigsh(operator, k, tol, seed)
    return lanczos(operator.matmat, operator.dim, k, block_size=block_size, tol=tol, max_dim=max_dim,
                   dtype=operator.dtype, device=operator.device, seed=seed, progress=progress)
