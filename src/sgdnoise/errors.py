"""The one exception type for bad user input.

Raised at the boundary (command line, configuration file, public API) before
any work starts.  The message names the argument in its Python spelling and
says what is allowed; ``name`` carries that argument so the command line can
name its own flag instead (:mod:`sgdnoise.cli`).  The command line prints it as
one line and exits with status 2.
"""
from __future__ import annotations


class UsageError(ValueError):
    """Invalid argument: the message names it and says what is allowed.

    Parameters
    ----------
    message : str
        One line; when ``name`` is given it starts with ``name``.
    name : str, optional
        The Python name of the argument at fault (a config field).
    """

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name
