"""Anti-PGD against PGD, GD and SGD (Orvieto et al. 2022; Kühn & Rosenow Fig. 25; docs/antipgd.md).

- :mod:`.valley`: replicas in the widening valley against the regularised-objective theory
  (docs/theory.md §7a);
- :mod:`.lenet`: LeNet-5 on the digits, trace of the Hessian and test accuracy after training;
- :mod:`.reproductions`: the two ``sgdnoise reproduce`` entries.
"""
from sgdnoise.experiments.antipgd.lenet import LenetResult, LenetSettings, run_lenet
from sgdnoise.experiments.antipgd.valley import ValleyResult, ValleySettings, run_valley

__all__ = ["LenetResult", "LenetSettings", "ValleyResult", "ValleySettings", "run_lenet", "run_valley"]
