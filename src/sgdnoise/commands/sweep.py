"""``sgdnoise sweep``, ``status``, ``collect`` and ``report``: sweeps and their results (docs/sweeps.md)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from sgdnoise.commands import Reproduction
from sgdnoise.errors import UsageError
from sgdnoise.interrupts import exit_status_after_stop, stop_requested
from sgdnoise.report.folder import check_output
from sgdnoise.sweeps import showcase_figures, showcases
from sgdnoise.sweeps.collect import collect, write
from sgdnoise.sweeps.executors import EXECUTORS
from sgdnoise.sweeps.grid import SweepSpec
from sgdnoise.sweeps.runner import run_sweep
from sgdnoise.sweeps.store import SweepStatus, describe_progress, read_lock, status


def _print_status(state: SweepStatus, folder: Path | None = None) -> None:
    """Counts; with ``folder``, every cell (running ones with what their worker last reported)."""
    counts = state.counts()
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + f" (of {sum(counts.values())} cells)")
    if folder is None:
        return
    for kind in ("done", "running", "failed", "remaining"):
        for cell in getattr(state, kind):
            where = ", ".join(f"{k}={v}" for k, v in cell.point.items()) or "base"
            now = f": {describe_progress(read_lock(folder, cell.id))}" if kind == "running" else ""
            print(f"  {kind:9s} {cell.id}  {where}{now}")


def sweep_command(args: argparse.Namespace) -> int:
    spec = SweepSpec.read(args.sweep)
    state = run_sweep(spec, args.out, args.executor, args.workers, args.scheduler, args.retries,
                      not args.no_progress)
    _print_status(state)
    for cell in state.failed:
        from sgdnoise.sweeps.store import read_record

        print(f"  failed {cell.id}: {(read_record(args.out, cell.id) or {}).get('error')}")
    if stop_requested() and state.remaining:
        print(f"stopped ({stop_requested()}): the cells that were running keep no record; rerunning the same "
              f"command continues with the {len(state.remaining)} remaining cells")
    print(f"wrote {args.out}; `sgdnoise collect {args.out}` gathers the results")
    return max(1 if state.failed or state.remaining else 0, exit_status_after_stop())


def status_command(args: argparse.Namespace) -> int:
    _print_status(status(args.dir), args.dir)
    return 0


def _starts_with(magic: bytes) -> Callable[[Path], bool]:
    """Whether a path is a file whose first bytes are ``magic`` (a file sgdnoise may replace)."""
    def check(path: Path) -> bool:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            return handle.read(len(magic)) == magic
    return check


def _is_zarr(path: Path) -> bool:
    """A zarr store (or an empty folder): what ``collect --format zarr`` may replace."""
    return path.is_dir() and ((path / ".zgroup").is_file() or (path / "zarr.json").is_file()
                              or not any(path.iterdir()))


def collect_command(args: argparse.Namespace) -> int:
    if args.format not in ("netcdf", "zarr"):
        raise UsageError(f"--format must be netcdf or zarr; got {args.format!r}", name="--format")
    out = args.out or Path(args.dir) / ("sweep.nc" if args.format == "netcdf" else "sweep.zarr")
    if args.format == "netcdf":
        out = check_output(out, "--out", _starts_with(b"\x89HDF\r\n\x1a\n"), "a netCDF file")
    else:
        out = check_output(out, "--out", _is_zarr, "a zarr store or an empty folder")
    dataset = collect(args.dir)
    write(dataset, out, args.format)
    print(dataset)
    print(f"wrote {out}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    from sgdnoise.sweeps.report import write_report

    if args.out is not None:
        check_output(args.out, "--out", _starts_with(b"<!DOCTYPE html>"), "an HTML page sgdnoise wrote")
    print(f"wrote {write_report(args.dir, args.out)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``sweep``, ``status``, ``collect`` and ``report``."""
    p = sub.add_parser("sweep", help="run a sweep of any experiment over grid and zip axes and seeds",
                       description="Run every cell of SWEEP.toml (docs/sweeps.md) into --out; cells already "
                                   "done there are skipped, so rerunning a killed sweep resumes it.")
    p.add_argument("sweep", type=Path, metavar="SWEEP.toml", help="the sweep file")
    p.add_argument("--out", type=Path, required=True, help="the sweep folder")
    p.add_argument("--executor", default="local", choices=EXECUTORS, help="where the cells run (default: local)")
    p.add_argument("--workers", type=int, default=None, help="workers (default: one per core, at most one a cell)")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler (default: a LocalCluster)")
    p.add_argument("--retries", type=int, default=1, help="retries of a failing cell (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=sweep_command)
    p = sub.add_parser("status", help="done, running, failed and remaining cells of a sweep folder")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.set_defaults(func=status_command)
    p = sub.add_parser("collect", help="gather a sweep folder into one xarray Dataset (netCDF or zarr)")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--format", default="netcdf", help="netcdf or zarr (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="output file (default: DIR/sweep.nc)")
    p.set_defaults(func=collect_command)
    p = sub.add_parser("report", help="one self-contained HTML page of a result folder or a sweep folder")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--out", type=Path, default=None, help="the HTML file (default: DIR/report.html for a sweep, DIR.html for a result folder)")
    p.set_defaults(func=report_command)


#: ``sgdnoise reproduce NAME``: reproductions that run through the sweep machinery (local pool).
REPRODUCTIONS = {
    "sweep-lambda-cross": Reproduction(
        "Kuehn & Rosenow lambda_cross = 3(1-beta)S/(lr P) measured across batch size, lr and momentum "
        "(a sweep: epoch vs with-replacement Var theta ratio crossing 1/2)",
        showcases.lambda_cross, showcase_figures.save_lambda_cross,
        lambda result: 0 if result.status == "completed" else 1),
    "sweep-kuehn-rosenow-net": Reproduction(
        "Kuehn & Rosenow Figs. 20-21, smaller, as a sweep: LeNet-5 on digits, Var theta, Var v and tau against "
        "lambda for several batch sizes, lr and momenta, epoch vs with replacement",
        showcases.kuehn_rosenow_net, showcase_figures.save_kuehn_rosenow_net,
        lambda result: 0 if result.status == "completed" else 1),
    "sweep-gross-fig5": Reproduction(
        "Gross et al. Fig. 5 over P/N as a sweep: tr Var theta measured vs exact, continuum, detailed balance",
        showcases.gross_fig5, showcase_figures.save_gross_fig5,
        lambda result: 0 if result.status == "completed" else 1),
}
