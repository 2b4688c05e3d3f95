"""``sgdnoise ivfr``: the inverse variance-flatness relation (Feng & Tu; Gross, Raulf & Räth), docs/ivfr.md.

- :mod:`.config`: :class:`IvfrConfig`;
- :mod:`.run`: ``run(config) -> IvfrResult`` (linear networks simulated vectorised over replicas);
- :mod:`.results`: :class:`IvfrResult` and its summary;
- :mod:`.analysis`: one layer's PCA, flatness, curvature and fits;
- :mod:`.mlp`: Feng & Tu's MLP on digits or MNIST;
- :mod:`.reproductions`: the three reproductions.
"""
from sgdnoise.experiments.ivfr.config import IvfrConfig
from sgdnoise.experiments.ivfr.results import IvfrResult, status
from sgdnoise.experiments.ivfr.run import run

__all__ = ["IvfrConfig", "IvfrResult", "run", "status"]
