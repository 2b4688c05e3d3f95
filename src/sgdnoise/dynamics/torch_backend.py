"""PyTorch backend of the simulator: batched replicas on CPU or CUDA, float64.

Same dynamics and the same chunk interface as the numba kernel
(:func:`sgdnoise.dynamics.kernels.advance`): one Python iteration per step, each
a handful of batched tensor operations over all replicas, so it pays off for
many replicas or large N on a GPU.  Divergence is flagged per step without a
host synchronisation and located at the end of the chunk.
"""
from __future__ import annotations

import numpy as np
import torch

from sgdnoise.dynamics.engine import ChunkOutput
from sgdnoise.errors import UsageError


def check_device(device: str) -> torch.device:
    """The torch device named ``device``, or :class:`UsageError` if it cannot be used here."""
    try:
        dev = torch.device(device)
        torch.zeros(1, device=dev)
    except (RuntimeError, AssertionError) as exc:
        raise UsageError(f"device {device!r} is not available here ({exc}); use cpu", name="device") from None
    return dev


class TorchEngine:
    """Advances (R, K, N) replicas through chunks of batches; see :mod:`sgdnoise.dynamics.kernels`."""

    def __init__(self, kind: int, Z: np.ndarray, resid: np.ndarray, lam: np.ndarray,
                 offsets: np.ndarray, lr: float, momentum: float, device: str) -> None:
        self.device = check_device(device)
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=self.device)  # noqa: E731
        self.kind, self.lr, self.beta = kind, lr, momentum
        self.Z, self.resid, self.lam, self.offsets = as_t(Z), as_t(resid), as_t(lam), as_t(offsets)

    def _gradient(self, batch: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        if self.kind == 0:
            zb = self.Z[batch]                                              # (R, S, N)
            residual = torch.einsum("rsn,rkn->rsk", zb, theta) + self.resid[batch]
            return torch.einsum("rsn,rsk->rkn", zb, residual) / batch.shape[1]
        return self.lam * (theta - self.offsets[batch].mean(dim=1))

    def __call__(self, idx: np.ndarray, theta: np.ndarray, vel: np.ndarray, record: bool,
                 theta_rows: int, every: int, phase: int, store_vel: bool) -> ChunkOutput:
        steps, R, _ = idx.shape
        batches = torch.as_tensor(idx, device=self.device)
        th = torch.as_tensor(theta, device=self.device)
        v = torch.as_tensor(vel, device=self.device)
        sums = [torch.zeros_like(th) for _ in range(4)]
        finite = torch.ones((steps, R), dtype=torch.bool, device=self.device)
        theta_buf = torch.empty((theta_rows, *th.shape), dtype=th.dtype, device=self.device)
        vel_buf = torch.empty((steps if store_vel else 0, *th.shape), dtype=th.dtype, device=self.device)
        for t in range(steps):
            v = self.beta * v - self.lr * self._gradient(batches[t], th)
            th = th + v
            finite[t] = torch.isfinite(th).flatten(1).all(dim=1)
            if record:
                sums[0] += th
                sums[1] += th * th
                sums[2] += v
                sums[3] += v * v
            if theta_rows and t >= phase and (t - phase) % every == 0:
                theta_buf[(t - phase) // every] = th
            if store_vel:
                vel_buf[t] = v
        theta[:] = th.cpu().numpy()
        vel[:] = v.cpu().numpy()
        bad_rows = torch.nonzero(~finite)
        bad_step = int(bad_rows[:, 0].min()) if bad_rows.numel() else None
        to_np = lambda x: x.cpu().numpy()  # noqa: E731
        return ChunkOutput(bad_step, *map(to_np, sums), to_np(theta_buf), to_np(vel_buf))
