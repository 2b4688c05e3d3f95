"""Reproductions of Gross, Raulf & Räth (arXiv 2311.14120): what the figures share.

One module per figure computes it and returns a :class:`FigureResult`:
:mod:`.gross_fig2` (Fig. 2a/2b), :mod:`.gross_fig3` (Fig. 3a/3b/3c), :mod:`.gross_fig4`
(Fig. 4), :mod:`.gross_fig5` (Fig. 5a, 5c) and :mod:`.gross_fig5b` (Fig. 5b).  The
figures are drawn by :mod:`sgdnoise.report.gross` and its siblings.

The paper's equations are not available to us, only its figure captions
(``shared/seeds/000_*.txt``); every module says what it implements in their place
and cites docs/theory.md.  Data realisations are teacher-student data
(docs/theory.md §1) from the named seed streams ``gross-figX``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgdnoise._spec import rng, stream_seed
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory import stationary_covariance

N, S = 100, 10


@dataclass
class FigureResult:
    """Settings (``config``), the caption's quantities (``data``, into summary.json) and the curves (``arrays``)."""

    config: dict[str, Any]
    data: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    status: str = "completed"

    def to_summary(self) -> dict[str, Any]:
        return {"status": self.status, "config": self.config, **self.data}


def teacher_student(n_features: int, n_examples: int, label_noise: float, seed: int,
                    *stream: str | int) -> tuple[LinearRegression, np.ndarray]:
    """Teacher-student data (docs/theory.md §1) and the teacher u, from the stream ``stream`` of ``seed``."""
    gen = rng(seed, *stream)
    X = gen.normal(0.0, np.sqrt(1.0 / n_features), size=(n_examples, n_features))
    teacher = gen.normal(size=n_features)
    y = X @ teacher + gen.normal(0.0, np.sqrt(label_noise), size=n_examples)
    source = {"kind": "teacher-student", "N": n_features, "P": n_examples, "label_noise": label_noise,
              "outputs": 1, "feature_variance": 1.0 / n_features, "seed": seed, "stream": list(map(str, stream))}
    return LinearRegression(X, y[:, None], source), teacher


def realisation(n_features: int, n_examples: int, label_noise: float, seed: int, *stream: str | int
                ) -> LinearRegression:
    """One data realisation (:meth:`LinearRegression.teacher_student` seeded by a named stream)."""
    return LinearRegression.teacher_student(n_features, n_examples, label_noise,
                                            seed=stream_seed(seed, *stream))


def stationary_start(problem: LinearRegression, lr: float, batch_size: int, replicas: int,
                     generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Starting weights w* + delta with delta ~ N(0, M), M the exact stationary covariance (docs/theory.md §3c).

    Returns the starts (replicas, N) and M.  The second moments of SGD obey a linear
    recursion whose fixed point is M (§3c), so runs started this way have the
    stationary second moments at every step (in expectation) and need no burn-in
    for them; higher moments are not those of the stationary law.
    """
    M = stationary_covariance(problem.X, problem.Y, lr, batch_size, method="exact")
    lam, U = np.linalg.eigh(M)
    root = U * np.sqrt(np.clip(lam, 0, None))
    deltas = generator.normal(size=(replicas, M.shape[0])) @ root.T
    return problem.minimiser[:, 0] + deltas, M


def sweep_status(done: int, total: int, what: str) -> str:
    """``completed``, or how far a sweep got before a stop was requested."""
    signal = stop_requested()
    if signal is None and done == total:
        return "completed"
    return f"interrupted ({signal}) after {done} of {total} {what}; the last may be partial"
