"""Command line: ``sgdnoise COMMAND ...``.

Thin on purpose: each command lives in an experiment module that provides
``add_parser(subparsers)``; the parser's ``func`` default runs it.  Bad input
(argparse errors and :class:`~sgdnoise.errors.UsageError`) prints one line and
exits with status 2, before any work starts.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sgdnoise import __version__
from sgdnoise.errors import UsageError


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``sgdnoise`` parser with every command registered."""
    from sgdnoise.experiments import COMMAND_MODULES

    parser = _Parser(prog="sgdnoise", description="Simulate, measure and predict the gradient noise "
                     "and the weight fluctuations of SGD; every command writes a result folder.")
    parser.add_argument("--version", action="version", version=f"sgdnoise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"sgdnoise {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
