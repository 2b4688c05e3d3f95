"""``sgdnoise net``: Hessian eigenbasis, gradient noise and weight fluctuations of a network (docs/net.md).

:class:`NetConfig` (settings), :func:`run` (the computation, returning a :class:`NetResult`),
:mod:`.reproductions` (the figures of Kühn & Rosenow and Orvieto et al. it reproduces).
"""
from sgdnoise.experiments.net.config import NetConfig
from sgdnoise.experiments.net.result import NetResult
from sgdnoise.experiments.net.run import run

__all__ = ["NetConfig", "NetResult", "run"]
