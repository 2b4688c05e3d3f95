"""The settings of ``sgdnoise net``: one frozen, checked :class:`NetConfig`.

Every field is a command-line option (``--`` + the field name with ``-`` for ``_``) and a
key of a ``sgdnoise run`` TOML file.  :meth:`NetConfig.check` holds the checks that need
nothing but the settings; those that need the data or the model (the batch size against
the number of examples P, ``k`` against the number of parameters, ``max_lag`` against the
noise series, the device) run at the start of :func:`sgdnoise.experiments.net.run` before
any training.
"""
from __future__ import annotations

from dataclasses import dataclass

from sgdnoise._spec import check_choice, check_int, check_positive, check_real, distinct, fail
from sgdnoise.config import ExperimentConfig, option

#: Late-phase samplers (docs/theory.md §1); fixed-order has no stationary noise to compare.
NET_SAMPLINGS = ("epoch", "with-replacement", "random-batch")
#: Built-in models (:data:`sgdnoise.problems.networks.MODELS`; torch is not imported to list them).
MODELS = ("mlp", "lenet", "resnet20")
#: Built-in data sets (:data:`sgdnoise.problems.datasets.DATASETS`), besides ``.npz`` paths.
DATASETS = ("digits", "cifar10")
SCHEDULES = ("cosine", "linear", "constant")
#: Hessian-vector products (:data:`sgdnoise.measure.hessian.HVP_METHODS`).
HVP_METHODS = ("double-backward", "forward-over-reverse")
#: Eigen-solvers (:data:`sgdnoise.measure.lanczos.SOLVERS`).
SOLVERS = ("lanczos", "eigsh")
DTYPES = ("float32", "float64")
#: Blocks of the recorded late phase whose spread gives the standard errors (docs/theory.md §8).
RECORD_BLOCKS = 20
#: Fine segments per block: the batch-means blocks are chosen per direction afterwards (docs/net.md).
RECORD_RESOLUTION = 8


@dataclass(frozen=True)
class NetConfig(ExperimentConfig):
    """Every setting of a ``net`` run (docs/net.md, "Options")."""

    experiment = "net"

    model: str = option("lenet", "built-in model", choices=MODELS)
    width: float = option(1.0, "layer-size factor")
    data: str = option("digits", "digits (built in), cifar10 (with --data-dir) or a path ending in .npz")
    data_dir: str | None = option(None, "folder of the CIFAR-10 python batches")
    train_examples: int | None = option(None, "use a random subset of this many training examples (None: all)")
    test_fraction: float = option(0.2, "held-out share when the data have no test split")
    sampling: tuple[str, ...] = option(("epoch", "with-replacement"),
                                       f"comma-separated samplers of the late phase, from {', '.join(NET_SAMPLINGS)}")
    batch: int = option(64, "batch size S")
    lr: float = option(0.005, "late-phase learning rate (end of the pre-training schedule)")
    momentum: float = option(0.9, "heavy-ball momentum beta in [0, 1)")
    weight_decay: float = option(5e-3, "L2 coefficient gamma of every phase; the Hessian eigenvalues include it")
    pretrain_epochs: int = option(60, "pre-training epochs")
    pretrain_lr: float = option(0.05, "learning rate at the start of pre-training")
    schedule: str = option("cosine", "pre-training lr from --pretrain-lr to --lr", choices=SCHEDULES)
    burn_in_epochs: int = option(150, "late-phase epochs before recording")
    epochs: int = option(250, "recorded late-phase epochs (a window of at least 20 relaxation times)")
    k: int = option(40, "Hessian eigenpairs")
    hvp: str = option("double-backward", "Hessian-vector products", choices=HVP_METHODS)
    solver: str = option("lanczos", "eigen-solver", choices=SOLVERS)
    tol: float | None = option(None, "eigenpair relative residual (None: 1e-4 in float32, 1e-8 in float64)")
    noise_epochs: int = option(20, "epochs of batches per replica for the noise autocorrelation")
    noise_replicas: int = option(8, "replicas of the noise autocorrelation")
    max_lag: int | None = option(None, "largest lag of the noise autocorrelation (None: 2 M)")
    slq_vectors: int = option(4, "random vectors of the spectral density, 0 to skip")
    slq_steps: int = option(48, "Lanczos steps per vector of the spectral density")
    trace_samples: int = option(16, "Hutchinson samples of tr H, 0 to skip")
    accuracy_seeds: int = option(3, "complete trainings per sampler for the test accuracy, 0 to skip")
    dtype: str = option("float32", "floating-point type", choices=DTYPES)
    device: str = option("cpu", "torch device, e.g. cpu or cuda")
    threads: int | None = option(None, "torch CPU threads (None: 1 below 1M parameters, else min(cores, 4); "
                                       "torch's own one-per-core collapses on a shared machine)")
    checkpoint_every: int = option(2000, "steps between checkpoints, 0 for phase ends only")
    seed: int = option(0, "random seed: every random choice derives from it (named streams)")

    def check(self) -> None:
        """Raise :class:`~sgdnoise.errors.UsageError` naming the field of any invalid setting."""
        check_choice("model", self.model, MODELS)
        check_positive("width", self.width)
        if not (self.data in DATASETS or self.data.endswith(".npz")):
            raise fail("data", f"one of {', '.join(DATASETS)} or a path ending in .npz", self.data)
        if self.train_examples is not None:
            check_int("train_examples", self.train_examples, 1)
        check_real("test_fraction", self.test_fraction, 0.0, 1.0, low_open=True, high_open=True)
        if not self.sampling or not distinct(self.sampling) or set(self.sampling) - set(NET_SAMPLINGS):
            raise fail("sampling", "a comma-separated list of distinct samplers from "
                       + ", ".join(NET_SAMPLINGS), ",".join(self.sampling))
        if self.batch < 1:
            raise fail("batch", "between 1 and half the training examples", self.batch)
        self._check_rates()
        self._check_measurement()
        check_choice("dtype", self.dtype, DTYPES)
        if self.threads is not None:
            check_int("threads", self.threads, 1)
        check_int("checkpoint_every", self.checkpoint_every, 0)
        check_int("seed", self.seed, 0)

    def _check_rates(self) -> None:
        check_positive("lr", self.lr)
        check_positive("pretrain_lr", self.pretrain_lr)
        if not 0 <= self.momentum < 1:
            raise fail("momentum", "in [0, 1)", self.momentum)
        check_real("weight_decay", self.weight_decay, 0.0)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_int("pretrain_epochs", self.pretrain_epochs, 0)
        check_int("burn_in_epochs", self.burn_in_epochs, 0)
        check_int("epochs", self.epochs, 1)

    def _check_measurement(self) -> None:
        check_int("k", self.k, 1)
        check_choice("hvp", self.hvp, HVP_METHODS)
        check_choice("solver", self.solver, SOLVERS)
        if self.tol is not None:
            check_real("tol", self.tol, 0.0, 1.0, low_open=True, high_open=True)
        check_int("noise_replicas", self.noise_replicas, 2)
        if self.max_lag is None:
            if self.noise_epochs < 3:
                raise fail("noise_epochs", "an integer >= 3: the noise series of noise_epochs x M steps (M batches "
                           "per epoch) must be longer than the largest lag, by default 2 M", self.noise_epochs)
        else:
            check_int("max_lag", self.max_lag, 1)
            check_int("noise_epochs", self.noise_epochs, 1)
        check_int("slq_vectors", self.slq_vectors, 0)
        check_int("slq_steps", self.slq_steps, 1)
        if self.trace_samples != 0 and check_int("trace_samples", self.trace_samples, 0) < 2:
            raise fail("trace_samples", "0 or at least 2", self.trace_samples)
        check_int("accuracy_seeds", self.accuracy_seeds, 0)

    def resolved_max_lag(self, batches_per_epoch: int) -> int:
        """``max_lag``, or its default ``2 M`` with ``M`` batches per epoch."""
        return 2 * batches_per_epoch if self.max_lag is None else self.max_lag
