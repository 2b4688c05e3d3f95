"""Progress bars: shown on a terminal, silent in logs, pipes and CI."""
from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


def progress_bar(progress: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar that is shown only when ``progress`` is true and stderr is a terminal."""
    kwargs.setdefault("leave", False)
    return tqdm(disable=None if progress else True, **kwargs)
