"""``sgdnoise reproduce NAME``: the key figures of the seed papers.

Each experiment module that reproduces a figure exposes a dict
``REPRODUCTIONS = {name: Reproduction(...)}``; ``SOURCES`` lists those modules.
A reproduction writes figures and a ``summary.json`` with the numbers shown
into its output folder and returns that summary.
"""
from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgdnoise.errors import UsageError

#: Modules with a ``REPRODUCTIONS`` dict, or ``module:function`` returning one (converted commands).
SOURCES: list[str] = ["sgdnoise.experiments.gross", "sgdnoise.experiments.kuehn_rosenow",
                     "sgdnoise.experiments.balance", "sgdnoise.commands.net:legacy_reproductions"]


@dataclass(frozen=True)
class Reproduction:
    """A named figure reproduction.

    Attributes
    ----------
    description : str
        One line: paper, figure, what is shown.
    run : callable
        ``run(out_dir: Path, seed: int) -> dict``; writes figures and summary.json.
    """

    description: str
    run: Callable[[Path, int], dict[str, Any]]


def registry() -> dict[str, Reproduction]:
    """All reproductions of the modules in ``SOURCES``, by name."""
    found: dict[str, Reproduction] = {}
    for source in SOURCES:
        module_name, _, function = source.partition(":")
        module = importlib.import_module(module_name)
        found.update(getattr(module, function)() if function else module.REPRODUCTIONS)
    return dict(sorted(found.items()))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reproduce", help="reproduce a figure of the seed papers")
    p.add_argument("name", nargs="?", help="which figure (see --list)")
    p.add_argument("--list", action="store_true", help="list the reproductions and exit")
    p.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    entries = registry()
    if args.list or args.name is None:
        for name, entry in entries.items():
            print(f"{name:28s} {entry.description}")
        return 0
    if args.name not in entries:
        raise UsageError(f"NAME must be one of {', '.join(entries)}; got {args.name!r}")
    out = args.out or Path("results") / args.name
    start = time.perf_counter()
    entries[args.name].run(out, args.seed)
    print(f"{args.name}: wrote {out}/summary.json and figures in {time.perf_counter() - start:.0f} s")
    return 0
