"""``sgdnoise balance``: noise balance and stationary distributions of diagonal linear networks.

Ziyin, Li, Ueda, arXiv 2308.06671 (docs/theory.md §6; user guide docs/balance.md).

- :mod:`.config`: :class:`BalanceConfig`, the settings and their checks;
- :mod:`.run`: :func:`run` ``(config) -> BalanceResult``;
- :mod:`.results`: the typed results and their ``summary.json`` form;
- :mod:`.problem`, :mod:`.analysis`: the problem, and measured against predicted;
- :mod:`.reproductions`, :mod:`.inversion`, :mod:`.ergodicity`: the paper's figures as computations;
- :mod:`.resume`: checkpoints of a run.
"""
from sgdnoise.experiments.balance.config import BalanceConfig
from sgdnoise.experiments.balance.ergodicity import ErgodicityResult, ergodicity
from sgdnoise.experiments.balance.inversion import InversionResult, inversion
from sgdnoise.experiments.balance.reproductions import (
    FIGURE_DATA,
    TAIL_DATA,
    DensitiesResult,
    TailResult,
    densities,
    law_of_balance,
    tail,
)
from sgdnoise.experiments.balance.results import BalanceRates, BalanceResult, PairRates, SampleComparison
from sgdnoise.experiments.balance.run import run, status

__all__ = [
    "FIGURE_DATA", "TAIL_DATA", "BalanceConfig", "BalanceRates", "BalanceResult", "DensitiesResult", "ErgodicityResult",
    "InversionResult", "PairRates", "SampleComparison", "TailResult", "densities", "ergodicity", "inversion",
    "law_of_balance", "run", "status", "tail",
]
