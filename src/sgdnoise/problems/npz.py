"""Reading user data from ``.npz`` files: one convention for every command.

An ``.npz`` archive holds the inputs as ``x`` and the targets as ``y``
(``X`` and ``Y`` are accepted too).  Pickled object arrays are never loaded.
Every failure is one :class:`UsageError` naming the argument (``data``) and the
file, before any work starts.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from sgdnoise.errors import UsageError

#: Accepted spellings of each array, the documented one first.
SPELLINGS = {"x": ("x", "X"), "y": ("y", "Y")}


def read_npz(path: str | Path, name: str = "data") -> dict[str, np.ndarray]:
    """Every array of the archive ``path``, refusing missing, empty, corrupt and pickled files."""
    path = Path(path)
    shown = repr(str(path))
    if not path.is_file():
        raise UsageError(f"{name}: file {shown} does not exist", name=name)
    if path.stat().st_size == 0:
        raise UsageError(f"{name}: file {shown} is empty", name=name)
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise UsageError(f"{name}: cannot read {shown} as .npz (not a zip archive of arrays; "
                             "write it with numpy.savez)", name=name)
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickled" in str(exc):
            raise UsageError(f"{name}: {shown} holds pickled Python objects, which are never loaded; "
                             "save plain numeric arrays (np.savez with numbers)", name=name) from None
        raise UsageError(f"{name}: cannot read {shown} as .npz ({_one_line(exc)})", name=name) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UsageError(f"{name}: cannot read {shown} as .npz ({_one_line(exc)})", name=name) from None
    if not stored:
        raise UsageError(f"{name}: cannot read {shown} as .npz (no arrays)", name=name)
    return stored


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def check_numbers(name: str, key: str, arr: np.ndarray) -> np.ndarray:
    """``arr`` if it is numeric (or boolean), non-empty and finite; else :class:`UsageError` naming ``name``."""
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise UsageError(f"{name}: {key} must be numeric; got dtype {arr.dtype}", name=name)
    if arr.size == 0:
        raise UsageError(f"{name}: {key} is empty", name=name)
    if not np.all(np.isfinite(arr)):
        raise UsageError(f"{name}: {key} contains NaN or inf; all entries must be finite", name=name)
    return arr


def load_xy(path: str | Path, name: str = "data", x_ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from the archive ``path``: numeric, finite, the same number of rows.

    Parameters
    ----------
    path : path
        An ``.npz`` file with arrays ``x`` (P, ...) and ``y`` (P, ...).
    name : str
        The argument that named the file, for messages.
    x_ndim : int, optional
        The number of dimensions ``x`` must have (2: a (P, N) matrix).

    Returns
    -------
    x, y : ndarray
        As stored (no dtype conversion).
    """
    shown = repr(str(path))
    stored = read_npz(path, name)
    arrays = {}
    for key, spellings in SPELLINGS.items():
        found = [s for s in spellings if s in stored]
        if not found:
            raise UsageError(f"{name}: {shown} must hold arrays 'x' and 'y'; missing {key!r} "
                             f"(it holds {', '.join(sorted(stored))})", name=name)
        arrays[key] = stored[found[0]]
    x, y = arrays["x"], arrays["y"]
    for key, arr in (("x", x), ("y", y)):
        check_numbers(name, key, arr)
    if x_ndim is not None and x.ndim != x_ndim:
        raise UsageError(f"{name}: x must have {x_ndim} dimensions (P, ...); got shape {x.shape}", name=name)
    if y.ndim == 0 or x.ndim == 0 or y.shape[0] != x.shape[0]:
        raise UsageError(f"{name}: x and y must have the same number of rows P; "
                         f"got x {x.shape}, y {y.shape}", name=name)
    return x, y
