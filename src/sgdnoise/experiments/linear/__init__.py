"""``sgdnoise linear`` and ``sgdnoise demo``: SGD on quadratic problems, measured and predicted.

- :mod:`.config`: :class:`LinearConfig`, :class:`DemoConfig`;
- :mod:`.run`: ``run(config) -> LinearResult`` and :func:`run_problem` for any quadratic problem;
- :mod:`.comparison`: every applicable theory next to the measurement;
- :mod:`.demo`: several samplers on one problem;
- :mod:`.reproductions`, :mod:`.gross`: the computations of the seed-paper reproductions.
"""
