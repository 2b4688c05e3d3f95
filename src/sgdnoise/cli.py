"""Command line: ``sgdnoise COMMAND ...``.

Thin on purpose.  Each experiment command is built from its config class
(:data:`sgdnoise.commands.registry.EXPERIMENTS`): one flag per config field,
defaults shown in ``--help``; ``sgdnoise run CONFIG.toml`` runs the same
experiments from a config file.  Bad input (argparse errors and
:class:`~sgdnoise.errors.UsageError`) prints one line naming the flag (or the
config key) and exits with status 2, before any work starts.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgdnoise import __version__
from sgdnoise.config import add_arguments, config_from_args, flag_for, read_toml
from sgdnoise.errors import UsageError
from sgdnoise.interrupts import graceful_stop


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _add_experiment(sub: argparse._SubParsersAction, experiment) -> None:
    from sgdnoise.commands import execute

    p = sub.add_parser(experiment.name, help=experiment.help, description=experiment.help)
    add_arguments(p, experiment.config_class)
    p.add_argument("--out", type=Path, default=Path(experiment.default_out),
                   help="output folder (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress bars (default: shown on a terminal)")

    def run(args: argparse.Namespace) -> int:
        config = config_from_args(experiment.config_class, args)
        return execute(experiment, config, args.out, not args.no_progress)

    p.set_defaults(func=run, config_class=experiment.config_class)


def _add_run(sub: argparse._SubParsersAction) -> None:
    from sgdnoise.commands import execute
    from sgdnoise.commands.registry import EXPERIMENTS

    names = ", ".join(e.name for e in EXPERIMENTS)
    p = sub.add_parser("run", help="run any experiment from a TOML config file",
                       description=f"Run the experiment a TOML file describes: `experiment = NAME` ({names}) "
                                   "and any of that experiment's options as keys (the names of `sgdnoise "
                                   "NAME --help` without the dashes, - as _).  summary.json records the config "
                                   "in this form, so any run can be rerun from it.")
    p.add_argument("config", type=Path, metavar="CONFIG.toml", help="the config file")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: results/NAME)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    def run(args: argparse.Namespace) -> int:
        table = read_toml(args.config)
        by_name = {e.name: e for e in EXPERIMENTS}
        name = table.pop("experiment", None)
        if name not in by_name:
            raise UsageError(f"key 'experiment' in {args.config} must be one of {names}; got {name!r}",
                             name="experiment")
        experiment = by_name[name]
        config = experiment.config_class.from_mapping(table)
        return execute(experiment, config, args.out or Path(experiment.default_out), not args.no_progress)

    p.set_defaults(func=run, config_class=None)


def build_parser() -> argparse.ArgumentParser:
    """The ``sgdnoise`` parser with every command registered."""
    from sgdnoise.commands.registry import EXPERIMENTS, OTHER_COMMANDS

    parser = _Parser(prog="sgdnoise", description="Simulate, measure and predict the gradient noise "
                     "and the weight fluctuations of SGD; every command writes a result folder.")
    parser.add_argument("--version", action="version", version=f"sgdnoise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for experiment in EXPERIMENTS:
        _add_experiment(sub, experiment)
    for module in OTHER_COMMANDS:
        module.add_parser(sub)
    _add_run(sub)
    return parser


def _message(exc: UsageError, args: argparse.Namespace) -> str:
    """The error's message with the config field replaced by its command-line flag, where there is one."""
    text = str(exc)
    config_class = getattr(args, "config_class", None)
    if config_class is None or exc.name is None:
        if args.command == "run" and exc.name and not text.startswith(("key ", "CONFIG", "unknown key")):
            return f"key {text}"
        return text
    flag = flag_for(config_class, exc.name)
    if flag and text.startswith(exc.name):
        return flag + text[len(exc.name):]
    return text


def _quit_before_start(signum: int, frame: object) -> None:
    os.write(2, b"interrupted before the run started; nothing was written\n")
    os._exit(130)


def _quit_on_sigint_while_starting() -> Any:
    """Until the run starts, Ctrl-C ends the process with one line and status 130.

    Building the parser imports every command (numba, scipy, torch: seconds); a
    KeyboardInterrupt there would surface as a traceback (or as an ImportError of a
    half-initialised extension). Returns the previous handler (None off the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _quit_before_start)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status.

    For ``net``, unless set, ``OMP_WAIT_POLICY=PASSIVE`` (before torch is imported): torch's OpenMP
    threads that wait sleep instead of spinning, which on a shared machine takes cores from the
    threads doing work (docs/net.md, "Threads").
    """
    before = _quit_on_sigint_while_starting()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)
    if args.command == "net" and "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        with graceful_stop():
            return int(args.func(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"sgdnoise {args.command}: error: {_message(exc, args)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
