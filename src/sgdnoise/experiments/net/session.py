r"""The problem of a ``net`` run and the helpers every phase trains with.

:func:`open_session` loads the data, builds the model and runs the checks that need them
(device, batch size against P, ``k`` against the number of parameters, ``max_lag`` against
the noise series, the recorded window against the batch-means blocks) before any training;
then it checks the checkpoint folder.  A :class:`Session` holds the data, the model and the
run status, and trains with samplers drawn from named random streams
(:func:`sgdnoise._spec.rng`).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sgdnoise import _spec
from sgdnoise.config import flag_for
from sgdnoise.errors import UsageError
from sgdnoise.experiments.net.config import RECORD_BLOCKS, NetConfig

#: Settings that may differ between a run and the rerun that resumes from its checkpoints
#: (the accuracy runs keep no checkpoints).
RESUME_INDEPENDENT = ("threads", "accuracy_seeds")
#: Models with fewer parameters train on one intra-op thread by default (:func:`default_threads`).
SMALL_MODEL = 1_000_000
#: The most intra-op threads chosen by default for larger models.
MAX_DEFAULT_THREADS = 4


def available_cores() -> int:
    """CPU cores this process may run on, at most ``OMP_NUM_THREADS`` when that is set.

    A sweep worker sets ``OMP_NUM_THREADS`` to its share of the cores (``sgdnoise.sweeps``), so a
    ``net`` cell does not take every core of a machine that runs other cells beside it.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit))) if limit.isdigit() and int(limit) > 0 else cores


def default_threads(n_parameters: int, cores: int | None = None) -> int:
    """Intra-op torch threads when ``threads`` is not set: 1 below :data:`SMALL_MODEL` parameters,
    else ``min(cores, MAX_DEFAULT_THREADS)``.

    Torch's own default (one thread per core) collapses when the machine is shared: its
    threads spin waiting for each other while another process holds a core, and a small
    model's steps are too short to gain from threads at all (benchmarks/threads.py).
    """
    if n_parameters < SMALL_MODEL:
        return 1
    return max(1, min(available_cores() if cores is None else cores, MAX_DEFAULT_THREADS))


def lr_schedule(kind: str, start: float, end: float, steps: int) -> Callable[[int], float]:
    r"""Learning rate of step ``t`` going from ``start`` to ``end`` over ``steps`` steps.

    ``cosine``: :math:`\eta_t = e + (s - e)(1 + \cos(\pi t / T))/2` (Loshchilov & Hutter 2017,
    without restarts); ``linear``: straight line; ``constant``: ``start`` throughout.
    """

    def rate(t: int) -> float:
        x = t / max(steps, 1)
        if kind == "cosine":
            return end + (start - end) * 0.5 * (1 + math.cos(math.pi * x))
        if kind == "linear":
            return start + (end - start) * x
        return start

    return rate


def accuracy(model: Any, X: Any, y: Any, chunk: int = 1024) -> float:
    """Share of examples whose largest logit is the label (eval mode, in chunks)."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(Xc).argmax(1) == yc).sum()) for Xc, yc in zip(X.split(chunk), y.split(chunk)))
    model.train(was_training)
    return correct / len(y)


def _device(config: NetConfig) -> Any:
    import torch

    try:
        device = torch.device(config.device)
    except RuntimeError:
        raise UsageError(f"device must name a torch device such as cpu or cuda; got {config.device!r}",
                         name="device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {config.device}: CUDA is not available on this machine; use --device cpu",
                         name="device")
    return device


def check_checkpoints(config: NetConfig, folder: Path) -> None:
    """Refuse a checkpoint folder written by a run with other settings; else record these.

    A rerun resumes from ``folder``; only the settings in :data:`RESUME_INDEPENDENT` may differ.
    """
    record = folder / "config.json"
    current = {k: v for k, v in config.to_mapping().items() if k not in RESUME_INDEPENDENT}
    if record.is_file():
        previous = json.loads(record.read_text())
        changed = sorted(k for k in current.keys() | previous.keys() if current.get(k) != previous.get(k))
        if changed:
            flags = ", ".join(flag_for(NetConfig, k) or k for k in changed)
            raise UsageError(f"the output folder {folder.parent} holds checkpoints of a run with other settings "
                             f"({flags}); choose another output folder or delete {folder}")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(current, indent=1) + "\n")


class Session:
    """Data, model, loss and status of one ``net`` run; see :func:`open_session`."""

    def __init__(self, config: NetConfig, data: Any, device: Any, checkpoints: Path | None,
                 progress: bool) -> None:
        import torch

        self.config, self.data, self.device = config, data, device
        self.checkpoints, self.progress = checkpoints, progress
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.train_set = (data.x_train.to(device), data.y_train.to(device))
        self.test_set = (data.x_test.to(device), data.y_test.to(device))
        self.P = len(data.y_train)
        self.M = self.P // config.batch
        self.max_lag = config.resolved_max_lag(self.M)
        self.status = "completed"
        #: Where each phase resumed from its checkpoint (``resumed_from`` of the summary).
        self.resumed: dict[str, str] = {}
        self.new_model("init")
        self.n_parameters = sum(p.numel() for p in self.model.parameters())

    def sampler(self, sampling: str, *stream: str | int, replicas: int = 1) -> Any:
        """A sampler of ``sampling`` drawing from the named random stream ``stream``."""
        from sgdnoise.sampling import Sampler

        return Sampler(sampling, self.P, self.config.batch, replicas=replicas,
                       rng=_spec.rng(self.config.seed, *stream))

    def new_model(self, *stream: str | int) -> None:
        """A freshly initialised model, its weights drawn from the named torch stream ``stream``."""
        import torch

        from sgdnoise.problems.networks import build_model

        c = self.config
        torch.manual_seed(_spec.torch_seed(c.seed, *stream))
        model = build_model(c.model, self.data.input_shape, self.data.n_classes, c.width)
        self.model = model.to(device=self.device, dtype=getattr(torch, c.dtype))

    def optimizer(self, lr: float) -> Any:
        import torch

        return torch.optim.SGD(self.model.parameters(), lr=lr, momentum=self.config.momentum,
                               weight_decay=self.config.weight_decay)

    def accuracies(self) -> tuple[float, float]:
        """(train, test) accuracy of the current model."""
        return accuracy(self.model, *self.train_set), accuracy(self.model, *self.test_set)

    def checkpoint(self, name: str | None) -> Path | None:
        """The checkpoint file ``name`` (None without a checkpoint folder or name)."""
        return self.checkpoints / f"{name}.pt" if self.checkpoints is not None and name else None

    def train(self, name: str, sampler: Any, optimizer: Any, epochs: int, checkpoint: str | None,
              schedule: Any = None, recorder: Any = None) -> Any:
        """Train ``epochs`` epochs; on divergence or a stop request set the status and return the log."""
        from sgdnoise.dynamics.training import train

        total = epochs * self.M
        log = train(self.model, self.loss_fn, self.train_set, sampler, total, optimizer,
                    schedule=schedule, recorder=recorder, checkpoint=self.checkpoint(checkpoint),
                    checkpoint_every=self.config.checkpoint_every, progress=self.progress, desc=name)
        if log.resumed_from is not None:
            self.resumed[name] = f"step {log.resumed_from} of {total} (epoch {log.resumed_from // self.M})"
        if log.diverged and self.status == "completed":
            self.status = f"diverged: the loss of {name} became non-finite at step {log.steps + 1}"
        if log.interrupted:
            self.stop(f"during {name} at epoch {log.steps // self.M + 1} of {epochs} (step {log.steps} of {total})")
        return log

    def stop(self, where: str) -> None:
        """Record that the run was asked to stop ``where`` (the first place only)."""
        if self.status == "completed":
            self.status = f"interrupted {where}"

    @property
    def stopped(self) -> bool:
        """The run diverged or was asked to stop: no further phase starts."""
        return self.status != "completed"

    def pretrain(self, sampling: str, stream: tuple[str | int, ...], checkpoint: str | None,
                 prefix: str = "") -> Any:
        """Pre-training with ``sampling``: ``pretrain_epochs`` epochs from ``pretrain_lr`` to ``lr``."""
        c = self.config
        schedule = lr_schedule(c.schedule, c.pretrain_lr, c.lr, c.pretrain_epochs * self.M)
        return self.train(f"{prefix}pre-training ({sampling})", self.sampler(sampling, *stream),
                          self.optimizer(c.pretrain_lr), c.pretrain_epochs, checkpoint, schedule=schedule)

    @contextmanager
    def threads(self) -> Iterator[int]:
        """Within the block torch computes on :func:`default_threads` (or ``threads``) intra-op threads.

        Inter-op parallelism is set to one thread once per process (torch allows no later change);
        the intra-op count is restored at the end.
        """
        import torch

        count = self.config.threads or default_threads(self.n_parameters)
        previous = torch.get_num_threads()
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or inter-op work already started in this process
            pass
        torch.set_num_threads(count)
        try:
            yield count
        finally:
            torch.set_num_threads(previous)


def _check_sizes(config: NetConfig, P: int, d: int) -> None:
    """The checks that need the number of examples P and of parameters d."""
    if config.batch > P // 2:
        raise _spec.fail("batch", f"between 1 and half the training examples ({P // 2})", config.batch)
    if not config.k < d:
        raise _spec.fail("k", f"between 1 and the number of parameters - 1 ({d - 1})", config.k)
    M = P // config.batch
    if config.max_lag is not None and not config.max_lag < config.noise_epochs * M:
        raise _spec.fail("max_lag", f"between 1 and the noise series length noise_epochs * M - 1 "
                         f"({config.noise_epochs * M - 1})", config.max_lag)
    if config.epochs * M < RECORD_BLOCKS:
        raise _spec.fail("epochs", f"at least {math.ceil(RECORD_BLOCKS / M)} so that the recorded late phase "
                         f"has {RECORD_BLOCKS} steps for its {RECORD_BLOCKS} batch-means blocks (M = {M})",
                         config.epochs)


def open_session(config: NetConfig, checkpoints: Path | None, progress: bool) -> Session:
    """Load the data, build the model, check everything that needs them, then the checkpoints.

    Raises :class:`UsageError` naming the setting at fault, before any training.  The data
    split and subset come from the stream ``"data"``, the initial weights from ``"init"``.
    """
    import torch

    from sgdnoise.measure.hessian import check_data
    from sgdnoise.problems.datasets import load_dataset

    device = _device(config)
    data = load_dataset(config.data, config.data_dir, config.test_fraction, config.train_examples,
                        _spec.torch_seed(config.seed, "data"), getattr(torch, config.dtype))
    folder = None if checkpoints is None else Path(checkpoints)
    session = Session(config, data, device, folder, progress)
    check_data(session.model, session.loss_fn, (session.train_set[0][:1], session.train_set[1][:1]))
    _check_sizes(config, session.P, session.n_parameters)
    if folder is not None:
        check_checkpoints(config, folder)
    return session
