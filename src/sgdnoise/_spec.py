"""Shared vocabulary and checks: the bottom layer every other module may import.

Names that several layers use (the sampling schemes, the stability limit of
heavy-ball SGD) are defined here once, and so are the argument checks.  Every
check names the *Python* parameter; the command line maps parameter names to
its flags (:func:`sgdnoise.errors.UsageError` carries the name).

Random numbers come from named streams (:func:`rng`): the same seed and name
give the same numbers, and adding a stream does not shift the others.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sgdnoise.errors import UsageError

#: The sampling schemes (docs/theory.md §1), in the order the command line lists them.
SAMPLINGS = ("with-replacement", "random-batch", "epoch", "fixed-order")
#: Samplers whose steps are independent of each other (no epoch structure).
INDEPENDENT_SAMPLINGS = ("with-replacement", "random-batch")


def fail(name: str, requirement: str, value: Any) -> UsageError:
    """The error for argument ``name``: ``"<name> must be <requirement>; got <value>"``."""
    shown = repr(value) if isinstance(value, str) else value
    return UsageError(f"{name} must be {requirement}; got {shown}", name=name)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise naming ``name``."""
    if value not in choices:
        raise fail(name, f"one of {', '.join(map(str, choices))}", value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` if it is an integer in ``[low, high]`` (either bound optional)."""
    bounds = " ".join(filter(None, [f">= {low}" if low is not None else "",
                                    f"<= {high}" if high is not None else ""]))
    requirement = f"an integer {bounds.replace(' <', ' and <')}".strip()
    if not _is_number(value) or not math.isfinite(value) or int(value) != value:
        raise fail(name, requirement, value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise fail(name, requirement, value)
    return int(value)


def check_real(name: str, value: Any, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as float if finite and inside the interval (closed unless ``*_open``)."""
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    requirement = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if not _is_number(value) or not math.isfinite(value):
        raise fail(name, requirement, value)
    if low is not None and (value < low or (low_open and value == low)):
        raise fail(name, requirement, value)
    if high is not None and (value > high or (high_open and value == high)):
        raise fail(name, requirement, value)
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` if it is a finite number > 0."""
    return check_real(name, value, 0.0, low_open=True)


def check_momentum(value: Any, name: str = "momentum") -> float:
    """Return ``value`` if it lies in [0, 1)."""
    if not _is_number(value) or not math.isfinite(value) or not 0 <= value < 1:
        raise fail(name, "in [0, 1)", value)
    return float(value)


def check_sampling(value: Any, name: str = "sampling", allowed: Sequence[str] = SAMPLINGS) -> str:
    """Return ``value`` if it names one of the ``allowed`` sampling schemes."""
    return check_choice(name, value, allowed)


def stability_limit(max_eigenvalue: float, momentum: float) -> float:
    """Largest stable learning rate of heavy-ball SGD on a quadratic: ``2 (1 + beta) / lambda_max``.

    Beyond it the deterministic part of the recursion diverges along the sharpest
    direction (docs/theory.md §3b).
    """
    return 2.0 * (1.0 + momentum) / max_eigenvalue


def check_stable(lr: float, max_eigenvalue: float, momentum: float, name: str = "lr") -> None:
    """Raise unless ``lr * lambda_max < 2 (1 + momentum)``, saying the limit."""
    limit = stability_limit(max_eigenvalue, momentum)
    if lr >= limit:
        raise UsageError(
            f"{name} = {lr:g} is at or beyond the stability limit lr * lambda_max < 2(1 + momentum): "
            f"with lambda_max = {max_eigenvalue:.6g} and momentum = {momentum:g}, {name} must be < {limit:.6g}",
            name=name)


def stream_seed(seed: int | np.random.SeedSequence, *names: str | int) -> np.random.SeedSequence:
    """The seed sequence of the stream ``names`` under ``seed``.

    The stream is keyed by a stable hash of its names, so streams are
    independent, reproducible across runs and Python versions, and adding a new
    stream never changes the numbers of an existing one.  ``seed`` may itself be
    a stream (a ``SeedSequence``): the names then extend its key (nested streams).
    """
    key = tuple(int.from_bytes(hashlib.sha256(str(n).encode()).digest()[:4], "little") for n in names)
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(entropy=seed.entropy, spawn_key=tuple(seed.spawn_key) + key)
    return np.random.SeedSequence(entropy=int(seed), spawn_key=key)


def rng(seed: int | np.random.SeedSequence, *names: str | int) -> np.random.Generator:
    """A NumPy generator for the named stream (see :func:`stream_seed`)."""
    return np.random.default_rng(stream_seed(seed, *names))


def torch_seed(seed: int, *names: str | int) -> int:
    """A 63-bit integer seed for ``torch.Generator.manual_seed`` from the named stream."""
    return int(stream_seed(seed, *names).generate_state(1, np.uint64)[0] >> np.uint64(1))


def distinct(values: Iterable[Any]) -> bool:
    """True when no value repeats."""
    values = list(values)
    return len(set(values)) == len(values)
