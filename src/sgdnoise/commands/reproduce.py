"""``sgdnoise reproduce NAME``: the figures of the seed papers.

Each command module lists its reproductions in ``REPRODUCTIONS``
(:class:`~sgdnoise.commands.Reproduction`); :data:`SOURCES` names those modules.
A reproduction writes its figures and a ``summary.json`` with the numbers shown.
"""
from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from sgdnoise._spec import check_int
from sgdnoise.commands import Reproduction
from sgdnoise.errors import UsageError
from sgdnoise.interrupts import announce_phase, exit_status_after_stop
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.terminal import print_written

SOURCES = ["sgdnoise.commands.linear", "sgdnoise.commands.balance", "sgdnoise.commands.net",
           "sgdnoise.commands.ivfr", "sgdnoise.commands.sweep", "sgdnoise.commands.antipgd"]


def registry() -> dict[str, Reproduction]:
    """All reproductions, by name."""
    found: dict[str, Reproduction] = {}
    for module_name in SOURCES:
        found.update(importlib.import_module(module_name).REPRODUCTIONS)
    return dict(sorted(found.items()))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    names = ", ".join(registry())
    p = subparsers.add_parser("reproduce", help="reproduce a figure of the seed papers",
                              description=f"Reproduce a figure of the seed papers. NAME is one of: {names}. "
                                          "`--list` says what each shows.")
    p.add_argument("name", nargs="?", metavar="NAME", help="which figure (see --list)")
    p.add_argument("--list", action="store_true", help="list the reproductions and exit")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: results/NAME)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    entries = registry()
    if args.list or args.name is None:
        for name, entry in entries.items():
            print(f"{name:28s} {entry.description}")
        return 0
    if args.name not in entries:
        raise UsageError(f"NAME must be one of {', '.join(entries)}; got {args.name!r}")
    check_int("--seed", args.seed, 0)
    entry = entries[args.name]
    folder = ResultFolder(args.out or Path("results") / args.name, "--out").prepare()
    start = time.perf_counter()
    result = entry.run(args.seed, not args.no_progress)
    announce_phase("writing")
    entry.save(result, folder)
    status = getattr(result, "status", "completed")
    print(f"{args.name}: {'done' if status == 'completed' else 'stopped'} in {time.perf_counter() - start:.0f} s")
    print_written(folder, status)
    return max(entry.status(result), exit_status_after_stop())
