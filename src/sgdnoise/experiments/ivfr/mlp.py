"""Feng & Tu's measurement on an MLP with two hidden layers: the hidden-to-hidden weights.

The network is :class:`~sgdnoise.problems.networks.MLP` (``in -> 50 -> 50 -> classes`` with
``width = 50/64``; Feng & Tu use 784-50-50-10 on MNIST, the default here is 64-50-50-10 on
scikit-learn's digits, ``--data FILE.npz`` takes a local MNIST), trained in float64 with
cross-entropy by :func:`sgdnoise.dynamics.training.train` (heavy-ball SGD, any sampler),
one replica after the other.  After the burn-in all weights are kept every
``snapshot_every`` steps; the layer analysed is the 50 x 50 hidden-to-hidden weight matrix.
Loss profiles and Hessian-vector products use ``torch.func`` (``vmap`` over the points,
``jvp`` of ``grad``) on the full training set.  There is no linearised theory here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp, vmap

from sgdnoise._spec import rng, torch_seed
from sgdnoise.dynamics.checkpoint import Checkpoint
from sgdnoise.dynamics.linear_networks import check_buffer
from sgdnoise.dynamics.training import train
from sgdnoise.experiments.ivfr.analysis import analyse_layer
from sgdnoise.experiments.ivfr.config import IvfrConfig
from sgdnoise.experiments.ivfr.results import IvfrResult, profiles_of
from sgdnoise.interrupts import announce_phase, stop_requested
from sgdnoise.problems.datasets import load_dataset
from sgdnoise.problems.networks import MLP
from sgdnoise.sampling import Sampler

#: Points per batched loss / Hessian-vector call (bounds the memory of ``vmap``).
CHUNK = 64
#: Principal directions of the hidden-to-hidden layer given a flatness and a curvature.
MLP_DIRECTIONS = 30
#: Steps between checkpoints of a replica (the batches are drawn per stretch of this many steps).
CHECKPOINT_STEPS = 2000


class Snapshots:
    """Recorder for :func:`train`: the flat weights every ``every`` steps."""

    def __init__(self, every: int) -> None:
        self.every, self.count, self.rows = every, 0, []

    def update(self, theta: torch.Tensor) -> None:
        self.count += 1
        if self.count % self.every == 0:
            self.rows.append(theta.cpu().numpy().copy())

    def state_dict(self) -> dict:
        return {"count": self.count, "rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.rows = state["count"], state["rows"]


def batched(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor):
    """(loss, hvp) of the full-data cross-entropy as NumPy functions of flat weights (n, D)."""
    names = [(n, p.shape, p.numel()) for n, p in model.named_parameters()]

    def loss_flat(theta: torch.Tensor) -> torch.Tensor:
        params, start = {}, 0
        for name, shape, size in names:
            params[name] = theta[start:start + size].reshape(shape)
            start += size
        return F.cross_entropy(functional_call(model, params, (X,)), y)

    def loss(points: np.ndarray) -> np.ndarray:
        t = torch.tensor(points, dtype=torch.float64)
        return np.concatenate([vmap(loss_flat)(c).numpy() for c in torch.split(t, CHUNK)])

    def hvp(points: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        tp, tv = (torch.tensor(a, dtype=torch.float64) for a in (points, vectors))
        f = vmap(lambda a, b: jvp(grad(loss_flat), (a,), (b,))[1])
        return np.concatenate([f(a, b).numpy() for a, b in zip(torch.split(tp, CHUNK), torch.split(tv, CHUNK))])

    return loss, hvp


def settings_checkpoint(folder: Path | None, config: IvfrConfig) -> Checkpoint | None:
    """The settings the replicas' checkpoints in ``folder`` belong to: another config's are refused."""
    if folder is None:
        return None
    keeper = Checkpoint(Path(folder) / "mlp-settings.pkl", config.to_mapping())
    if keeper.load() is None:
        keeper.save({})
    return keeper


def remove_checkpoints(folder: Path, replicas: int) -> None:
    """Delete the replicas' checkpoint files and the settings, and the folder when that is left empty."""
    (folder / "mlp-settings.pkl").unlink(missing_ok=True)
    for r in range(replicas):
        for part in ("burn-in", "window"):
            (folder / f"mlp-{r}-{part}.pt").unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def run_mlp(config: IvfrConfig, progress: bool, checkpoints: Path | None = None) -> IvfrResult:
    """Train ``config.replicas`` MLPs, keep the window, analyse the hidden-to-hidden layer.

    Torch runs single-threaded meanwhile (ten times faster for this small network on shared
    cores); the previous thread count is restored.  With ``checkpoints`` (a folder) each
    replica's burn-in and window are checkpointed every :data:`CHECKPOINT_STEPS` steps
    (``mlp-<r>-burn-in.pt``, ``mlp-<r>-window.pt``, and ``mlp-settings.pkl``, which refuses another
    config's checkpoints; removed when the run completes); the batches
    are drawn per stretch of that many steps with or without checkpoints, so the numbers agree.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_mlp(config, progress, checkpoints)
    finally:
        torch.set_num_threads(threads)


def _run_mlp(config: IvfrConfig, progress: bool, checkpoints: Path | None) -> IvfrResult:
    data = load_dataset(config.data or "digits", seed=config.seed, dtype=torch.float64)
    X, y = data.train
    make = lambda: MLP(int(np.prod(data.input_shape)), data.n_classes, config.width).double()  # noqa: E731
    dim = sum(p.numel() for p in make().parameters())
    check_buffer(config.replicas, config.steps // config.snapshot_every, dim)
    settings_checkpoint(checkpoints, config)
    runs, status = [], "completed"
    for r in range(config.replicas):
        if stop_requested():
            status = f"interrupted before replica {r}; {r} replicas analysed"
            break
        torch.manual_seed(torch_seed(config.seed, "init", r))
        model = make()
        sampler = Sampler(config.sampling, len(X), config.batch_size, 1, rng(config.seed, "sampler", r))
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        announce_phase(f"mlp replica {r}")
        files = [None if checkpoints is None else Path(checkpoints) / f"mlp-{r}-{part}.pt"
                 for part in ("burn-in", "window")]
        log = train(model, F.cross_entropy, (X, y), sampler, config.burn_in, opt, progress=progress,
                    checkpoint=files[0], checkpoint_every=CHECKPOINT_STEPS)
        rec = Snapshots(config.snapshot_every)
        log2 = train(model, F.cross_entropy, (X, y), sampler, config.steps, opt, recorder=rec, progress=progress,
                     checkpoint=files[1], checkpoint_every=CHECKPOINT_STEPS)
        if log.diverged or log2.diverged:
            status = f"replica {r} diverged"
            break
        runs.append(np.array(rec.rows))
    info = {"model": "mlp", "problem": {"data": config.data or "digits", "P": len(X),
                                        "shape": [int(np.prod(data.input_shape)), *[p.shape[0] for p in
                                                  make().parameters() if p.ndim == 2]]},
            "window": {"snapshots": config.steps // config.snapshot_every, "every": config.snapshot_every,
                       "steps": config.steps, "burn_in": config.burn_in},
            "layer": "W2: the hidden-to-hidden weight matrix (biases not included)"}
    if not runs:
        return IvfrResult(status, {}, {}, {}, info, config.to_mapping())
    if checkpoints is not None and status == "completed":
        remove_checkpoints(Path(checkpoints), config.replicas)
    snaps = np.stack(runs)
    shapes = [p.shape for p in make().parameters()]
    start = int(np.prod(shapes[0]) + np.prod(shapes[1]))
    layer = slice(start, start + int(np.prod(shapes[2])))
    loss, hvp = batched(make(), X, y)
    announce_phase("analysis")
    a = analyse_layer("W2", snaps, layer, loss, hvp, config.kappa, seed=config.seed, max_directions=MLP_DIRECTIONS)
    directions = np.linalg.svd(snaps[0][:, layer] - snaps[0][:, layer].mean(0), full_matrices=False)[2]
    return IvfrResult(status, {"W2": a}, {}, {"W2": profiles_of(a, snaps, layer, directions, loss)},
                      info, config.to_mapping())
