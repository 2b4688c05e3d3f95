"""Image-classification data sets read from local files; nothing is downloaded.

``digits``
    scikit-learn's 1797 handwritten digits (8 x 8 grey images, 10 classes), shipped
    with scikit-learn: real images, no download.
``cifar10``
    CIFAR-10 (Krizhevsky 2009) in its standard python-pickle format: a folder holding
    ``data_batch_1`` ... ``data_batch_5`` and ``test_batch`` (each a pickled dict with
    ``b"data"``, uint8 of shape (n, 3072), and ``b"labels"``), as unpacked from
    ``cifar-10-python.tar.gz``; the folder may also be the parent of ``cifar-10-batches-py``.
``*.npz``
    a NumPy archive with arrays ``x`` and ``y`` (split here into train and test), or
    ``x_train``, ``y_train``, ``x_test``, ``y_test``.  ``x`` has one example per row in
    any shape (``(P, C, H, W)`` for the convolutional models), ``y`` holds integer labels.

Inputs are standardised per channel (images) or per feature (other shapes) with the
mean and standard deviation of the training examples.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sgdnoise.errors import UsageError

DATASETS = ("digits", "cifar10")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@dataclass(frozen=True)
class DataSet:
    """Train and test tensors of a classification problem.

    Attributes
    ----------
    name : str
    x_train, x_test : torch.Tensor
        Inputs, one example per row (first axis).
    y_train, y_test : torch.Tensor
        Integer labels (int64).
    n_classes : int
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example."""
        return tuple(self.x_train.shape[1:])

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_train, y_train)``."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_test, y_test)``."""
        return self.x_test, self.y_test


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, rng: np.random.Generator):
    """Random train/test split with ``round(test_fraction P)`` test examples."""
    order = rng.permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _read_cifar10(data_dir: Path) -> tuple[np.ndarray, ...]:
    folder = data_dir / "cifar-10-batches-py" if (data_dir / "cifar-10-batches-py").is_dir() else data_dir
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise UsageError(
            f"--data cifar10: no CIFAR-10 batches in {folder} (missing {', '.join(missing)}); download "
            f"{CIFAR10_URL}, unpack it and pass the folder holding data_batch_1..5 and test_batch "
            "as --data-dir"
        )

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return x, np.asarray(batch[b"labels"], dtype=np.int64)

    parts = [load(n) for n in names[:5]]
    x_test, y_test = load(names[5])
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test


SPLIT = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: Path, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The arrays of an ``.npz`` (:mod:`sgdnoise.problems.npz`: never pickled, numeric, finite)."""
    from sgdnoise.problems.npz import SPELLINGS, check_numbers, load_xy, read_npz

    stored = read_npz(path, "data")
    if set(SPLIT) <= set(stored):
        return tuple(check_numbers("data", key, stored[key]) for key in SPLIT)
    if not all(any(k in stored for k in SPELLINGS[key]) for key in ("x", "y")):
        raise UsageError(f"data {str(path)!r}: the archive must hold arrays x and y (X, Y accepted), or "
                         f"{', '.join(SPLIT)}; it holds {', '.join(sorted(stored))}", name="data")
    return _split(*load_xy(path, "data"), test_fraction, rng)


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero mean, unit variance per channel (axis 1 of images) or per feature, from training data."""
    axes = (0, 2, 3) if x_train.ndim == 4 else (0,)
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True)
    std[std == 0] = 1.0
    return (x_train - mean) / std, (x_test - mean) / std


def load_dataset(
    name: str,
    data_dir: Path | str | None = None,
    test_fraction: float = 0.2,
    train_examples: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> DataSet:
    """Read a data set from local files (see the module docstring).

    Parameters
    ----------
    name : str
        ``"digits"``, ``"cifar10"`` (with ``data_dir``) or the path of an ``.npz`` file.
    data_dir : path, optional
        Folder of the CIFAR-10 python batches.
    test_fraction : float
        Share of the examples held out for testing when the source has no test split
        (digits; npz with ``x``, ``y``).
    train_examples : int, optional
        Keep only this many training examples (a random subset); default all.
    seed : int
        Seed of the split and of the subset.
    dtype : torch.dtype
        Floating type of the inputs.

    Raises
    ------
    UsageError
        Unknown name, missing files, malformed arrays, bad fractions or sizes.
    """
    if not 0 < test_fraction < 1:
        raise UsageError(f"--test-fraction must be between 0 and 1 (exclusive); got {test_fraction}")
    rng = np.random.default_rng(seed)
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = bunch.images[:, None, :, :].astype(np.float64)
        x_train, y_train, x_test, y_test = _split(x, bunch.target.astype(np.int64), test_fraction, rng)
    elif name == "cifar10":
        if data_dir is None:
            raise UsageError(f"--data cifar10 needs --data-dir, the folder holding the python batches of "
                             f"{CIFAR10_URL} (data_batch_1..5, test_batch)")
        x_train, y_train, x_test, y_test = _read_cifar10(Path(data_dir))
    elif name.endswith(".npz"):
        x_train, y_train, x_test, y_test = _read_npz(Path(name), test_fraction, rng)
    else:
        raise UsageError(f"--data must be one of {', '.join(DATASETS)} or a path ending in .npz; got {name!r}")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test) or y_train.ndim != 1 or y_test.ndim != 1:
        raise UsageError(f"--data {name}: x and y must have the same number of rows and y one label per "
                         f"row; got x {np.shape(x_train)}, y {np.shape(y_train)}")
    if not (np.issubdtype(y_train.dtype, np.integer) and y_train.min(initial=0) >= 0):
        raise UsageError(f"--data {name}: labels must be non-negative integers; got {y_train.dtype}")
    if train_examples is not None:
        if not 1 <= train_examples <= len(y_train):
            raise UsageError(f"--train-examples must be between 1 and {len(y_train)}; got {train_examples}")
        keep = np.sort(rng.permutation(len(y_train))[:train_examples])
        x_train, y_train = x_train[keep], y_train[keep]
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    x_train, x_test = _standardise(np.asarray(x_train, np_dtype), np.asarray(x_test, np_dtype))
    n_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return DataSet(
        name=name,
        x_train=torch.as_tensor(x_train, dtype=dtype),
        y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_test=torch.as_tensor(x_test, dtype=dtype),
        y_test=torch.as_tensor(y_test, dtype=torch.int64),
        n_classes=n_classes,
    )
