"""sgdnoise: simulate, measure and predict the gradient noise and weight fluctuations of SGD.

The package follows one pipeline, one sub-package per step::

    problems -> dynamics -> measure -> theory -> experiments / report

See the README for the command line and the ``summary.json`` schema.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sgdnoise")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["__version__", "hessian_eigenpairs"]


def __getattr__(name: str):
    """Lazy exports, so that ``import sgdnoise`` does not import torch."""
    if name == "hessian_eigenpairs":
        from sgdnoise.measure.lanczos import hessian_eigenpairs

        return hessian_eigenpairs
    raise AttributeError(f"module 'sgdnoise' has no attribute {name!r}")
