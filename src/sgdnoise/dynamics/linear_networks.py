"""Linear networks ``y = W_L ... W_2 W_1 x`` trained by SGD, vectorised over replicas (docs/theory.md §4).

The weights of R replicas are one array ``w`` of shape (R, d): the layers
``W_1`` (h_1 x N), ..., ``W_L`` (K x h_{L-1}) flattened row-major and
concatenated, first layer first.  The per-example loss is
``l_mu = 1/2 |W_L ... W_1 x_mu - y_mu|^2`` and the full-data loss its mean over
the P examples (the convention of ``sgdnoise linear``).  Every operation is a
batched matrix product over the leading replica (or point) axis; there is no
loop over replicas.

- :class:`LinearNetwork`: shapes, forward pass, exact gradients, Hessian-vector products;
- :func:`balanced_minimum`: a balanced global minimum (reduced-rank regression factorised
  with the square roots, or L-th roots, of its singular values on every layer);
- :func:`simulate`: heavy-ball SGD with any sampler, snapshots of all weights every k steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.dynamics.checkpoint import Checkpoint
from sgdnoise.errors import UsageError
from sgdnoise.interrupts import stop_requested
from sgdnoise.progress import progress_bar
from sgdnoise.sampling import Sampler

#: Largest snapshot buffer (R x n_snapshots x d float64) a run may hold, in bytes.
MAX_SNAPSHOT_BYTES = 1 << 30


@dataclass(frozen=True)
class LinearNetwork:
    """A deep linear network: ``shapes[l] = (out, in)`` of layer ``l + 1``, input layer first."""

    shapes: tuple[tuple[int, int], ...]

    @classmethod
    def build(cls, n_inputs: int, n_outputs: int, hidden: int = 0, layers: int = 1) -> "LinearNetwork":
        """N inputs, K outputs, ``layers`` weight matrices with ``hidden`` units between them."""
        if layers < 1:
            raise UsageError(f"layers must be an integer >= 1; got {layers}", name="layers")
        if layers > 1 and hidden < 1:
            raise UsageError(f"hidden must be an integer >= 1; got {hidden}", name="hidden")
        sizes = [n_inputs] + [hidden] * (layers - 1) + [n_outputs]
        return cls(tuple((sizes[i + 1], sizes[i]) for i in range(layers)))

    @property
    def depth(self) -> int:
        return len(self.shapes)

    @property
    def layer_names(self) -> list[str]:
        return [f"W{i + 1}" for i in range(self.depth)]

    @property
    def offsets(self) -> list[int]:
        sizes = [o * i for o, i in self.shapes]
        return [int(x) for x in np.concatenate([[0], np.cumsum(sizes)])]

    @property
    def dim(self) -> int:
        return self.offsets[-1]

    def layer_slice(self, layer: int) -> slice:
        """Where layer ``layer`` (0-based) sits in the flat weight vector."""
        return slice(self.offsets[layer], self.offsets[layer + 1])

    def unflatten(self, w: np.ndarray) -> list[np.ndarray]:
        """Views ``(..., out, in)`` of the layers of ``w`` (..., d)."""
        return [w[..., self.layer_slice(l)].reshape(*w.shape[:-1], *shape)
                for l, shape in enumerate(self.shapes)]

    def flatten(self, layers: list[np.ndarray]) -> np.ndarray:
        """The inverse of :meth:`unflatten`."""
        return np.concatenate([W.reshape(*W.shape[:-2], -1) for W in layers], axis=-1)

    def product(self, w: np.ndarray) -> np.ndarray:
        """The end-to-end matrix ``W_L ... W_1``, shape (..., K, N)."""
        layers = self.unflatten(w)
        out = layers[0]
        for W in layers[1:]:
            out = W @ out
        return out

    def _forward(self, w: np.ndarray, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Layers and activations ``a_0 = x, a_l = a_{l-1} W_l^T``; X is (R, S, N) or shared (S, N)."""
        layers = self.unflatten(w)
        acts = [np.broadcast_to(X, (w.shape[0], *X.shape)) if X.ndim == 2 else X]
        for W in layers:
            acts.append(acts[-1] @ np.swapaxes(W, -1, -2))
        return layers, acts

    def loss(self, w: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Mean loss ``(1/2S) sum_mu |f(x_mu) - y_mu|^2`` per row of ``w`` (n, d); X, Y shared or batched."""
        _, acts = self._forward(w, X)
        return 0.5 * np.mean(np.sum((acts[-1] - Y) ** 2, axis=-1), axis=-1)

    def gradient(self, w: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Exact gradient of :meth:`loss` by back-propagation, shape (n, d)."""
        layers, acts = self._forward(w, X)
        delta = (acts[-1] - Y) / acts[0].shape[-2]
        grads = [np.empty(0)] * self.depth
        for l in range(self.depth - 1, -1, -1):
            grads[l] = np.swapaxes(delta, -1, -2) @ acts[l]
            if l:
                delta = delta @ layers[l]
        return self.flatten(grads)

    def per_example_gradients(self, w: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Gradients of each ``l_mu`` at one point ``w`` (d,), shape (P, d)."""
        layers, acts = self._forward(w[None], X)
        delta = acts[-1][0] - Y  # (P, K)
        grads = [np.empty(0)] * self.depth
        for l in range(self.depth - 1, -1, -1):
            grads[l] = np.einsum("po,pi->poi", delta, acts[l][0])
            if l:
                delta = delta @ layers[l][0]
        return self.flatten(grads)

    def hvp(self, w: np.ndarray, v: np.ndarray, X: np.ndarray, Y: np.ndarray,
            step: float = 1e-4) -> np.ndarray:
        """Hessian-vector products ``H(w_n) v_n`` for rows of ``w``, ``v`` (n, d).

        Fourth-order central differences of the exact gradient along ``v / |v|``
        (the gradient of a linear network is a polynomial in the weights, so the error
        is of order ``step^4`` times its fifth derivative: negligible in float64).
        """
        norm = np.linalg.norm(v, axis=-1, keepdims=True)
        u = v / np.where(norm > 0, norm, 1.0)
        g = [self.gradient(w + c * step * u, X, Y) for c in (-2, -1, 1, 2)]
        return (g[0] - 8 * g[1] + 8 * g[2] - g[3]) / (12 * step) * norm

    def hessian(self, w: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """The full Hessian (d, d) of the loss at one point ``w`` (d,), symmetrised."""
        eye = np.eye(self.dim)
        H = self.hvp(np.broadcast_to(w, (self.dim, self.dim)), eye, X, Y)
        return 0.5 * (H + H.T)

    def symmetry_generators(self, w: np.ndarray) -> np.ndarray:
        """Tangents of the rescaling orbits ``W_l -> A W_l, W_{l+1} -> W_{l+1} A^-1`` at ``w`` (d,).

        One column ``(.., B W_l, -W_{l+1} B, ..)`` per hidden layer and per unit matrix
        ``B = e_a e_b^T``: shape (d, sum_l h_l^2).  The loss and every per-example loss are
        constant along them (docs/theory.md §6a).
        """
        layers = self.unflatten(w)
        columns = []
        for l in range(self.depth - 1):
            h = self.shapes[l][0]
            for a in range(h):
                for b in range(h):
                    t = [np.zeros_like(W) for W in layers]
                    t[l][a] = layers[l][b]
                    t[l + 1][:, b] = -layers[l + 1][:, a]
                    columns.append(self.flatten(t))
        return np.array(columns).T if columns else np.zeros((self.dim, 0))


def reduced_rank_minimum(X: np.ndarray, Y: np.ndarray, rank: int) -> np.ndarray:
    """argmin over K x N matrices W of rank <= ``rank`` of ``(1/2P) |X W^T - Y|^2``.

    With ``H = X^T X / P`` and the least-squares ``W*``: the truncated SVD of
    ``W* H^(1/2)`` times ``H^(-1/2)`` (reduced-rank regression; pseudo-inverse roots
    when H is singular).
    """
    P = X.shape[0]
    W_ls = np.linalg.lstsq(X, Y, rcond=None)[0].T
    lam, V = np.linalg.eigh(X.T @ X / P)
    keep = lam > lam.max() * 1e-12
    root = (V[:, keep] * np.sqrt(lam[keep])) @ V[:, keep].T
    inv_root = (V[:, keep] / np.sqrt(lam[keep])) @ V[:, keep].T
    U, s, Vt = np.linalg.svd(W_ls @ root, full_matrices=False)
    r = min(rank, len(s))
    return (U[:, :r] * s[:r]) @ Vt[:r] @ inv_root


def balanced_minimum(net: LinearNetwork, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """A balanced global minimum of ``net`` (d,): ``W_{l+1}^T W_{l+1} = W_l W_l^T`` for every l.

    The end-to-end map is the reduced-rank regression of rank ``r = min(widths)``
    (:func:`reduced_rank_minimum`); with its SVD ``U s V^T``, ``W_1 = s^(1/L) V^T``,
    ``W_l = s^(1/L)`` (r x r) in between and ``W_L = U s^(1/L)`` (the square roots for
    two layers).  Hidden units beyond ``r`` get zero weights (then the point is degenerate).
    """
    rank = min(min(shape) for shape in net.shapes)
    U, s, Vt = np.linalg.svd(reduced_rank_minimum(X, Y, rank), full_matrices=False)
    r = min(rank, len(s))
    root = s[:r] ** (1.0 / net.depth)
    layers = [np.zeros(shape) for shape in net.shapes]
    if net.depth == 1:
        return net.flatten([U[:, :r] * s[:r] @ Vt[:r]])
    layers[0][:r] = root[:, None] * Vt[:r]
    for l in range(1, net.depth - 1):
        layers[l][np.arange(r), np.arange(r)] = root
    layers[-1][:, :r] = U[:, :r] * root
    return net.flatten(layers)


@dataclass
class SnapshotRun:
    """Weights of R replicas every ``every`` steps after the burn-in.

    Attributes
    ----------
    snapshots : ndarray (R, n, d)
        The snapshots taken (fewer than asked when the run stopped early).
    every : int
        Steps between snapshots.
    steps_done : int
        Steps completed after the burn-in.
    diverged_at, interrupted_at : int or None
        Step (counted from the start, burn-in included) by which the weights were non-finite,
        or at which a stop was requested.
    """

    snapshots: np.ndarray
    every: int
    steps_done: int
    diverged_at: int | None = None
    interrupted_at: int | None = None


def check_buffer(replicas: int, n_snapshots: int, dim: int, name: str = "snapshot_every") -> None:
    """Refuse a snapshot buffer above :data:`MAX_SNAPSHOT_BYTES`, naming ``name``."""
    size = 8 * replicas * n_snapshots * dim
    if size > MAX_SNAPSHOT_BYTES:
        raise UsageError(f"{name}: {replicas} replicas x {n_snapshots} snapshots x {dim} weights would "
                         f"need {size / 2**30:.1f} GiB (limit {MAX_SNAPSHOT_BYTES / 2**30:.0f} GiB); take "
                         f"snapshots less often, or fewer steps or replicas", name=name)


def simulate(net: LinearNetwork, X: np.ndarray, Y: np.ndarray, w0: np.ndarray, lr: float, momentum: float,
             sampler: Sampler, burn_in: int, steps: int, every: int, progress: bool = False,
             chunk: int = 500, checkpoint: Checkpoint | None = None) -> SnapshotRun:
    """Heavy-ball SGD ``v <- beta v - lr g_B(w)``, ``w <- w + v`` on R replicas at once.

    ``w0`` (R, d) starts the replicas; batches come from ``sampler.draw`` ((n, R, S)
    indices).  After ``burn_in`` steps the weights are kept every ``every`` steps
    (``steps // every`` snapshots).  Divergence (non-finite weights) and stop requests
    are checked between chunks of ``chunk`` steps; the snapshots taken before are kept.
    With ``checkpoint`` the state between chunks (weights, velocities, the sampler with its
    generator, the snapshots) is saved every ``checkpoint.every`` seconds and when stopped, a
    run resumes from it bit-identically, and it is deleted once the run completes.
    """
    R, d = w0.shape
    n_snap = steps // every
    check_buffer(R, n_snap, d)
    saved = checkpoint.load() if checkpoint is not None else None
    snaps = np.empty((R, n_snap, d))
    if saved is None:
        w, v = w0.astype(np.float64).copy(), np.zeros_like(w0, dtype=np.float64)
        t, taken = 0, 0
    else:
        w, v, t, taken, sampler = saved["w"], saved["v"], saved["t"], saved["taken"], saved["sampler"]
        snaps[:, :taken] = saved["snapshots"]
    total = burn_in + steps
    run = SnapshotRun(snaps, every, 0)
    bar = progress_bar(progress, total=total, initial=t, desc="sgd", unit="step")

    def state() -> dict:
        return {"w": w, "v": v, "t": t, "taken": taken, "sampler": sampler, "snapshots": snaps[:, :taken]}

    try:
        while t < total:
            if stop_requested():
                run.interrupted_at = t
                if checkpoint is not None:
                    checkpoint.save(state())
                break
            idx = sampler.draw(min(chunk, total - t))
            for batch in idx:
                xb, yb = X[batch], Y[batch]
                v = momentum * v - lr * net.gradient(w, xb, yb)
                w = w + v
                t += 1
                if t > burn_in and (t - burn_in) % every == 0:
                    snaps[:, taken] = w
                    taken += 1
            bar.update(len(idx))
            if not np.isfinite(w).all():
                run.diverged_at = t
                taken = min(taken, max(0, (t - len(idx) - burn_in) // every))
                break
            if checkpoint is not None and checkpoint.due() and t < total:
                checkpoint.save(state())
    finally:
        bar.close()
    if checkpoint is not None and t == total and run.diverged_at is None:
        checkpoint.remove()
    run.snapshots = snaps[:, :taken]
    run.steps_done = max(0, min(t, total) - burn_in) if run.diverged_at is None else taken * every
    return run
