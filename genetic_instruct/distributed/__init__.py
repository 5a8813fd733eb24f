"""Run the evolution on a Ray cluster: one actor per colony, backend and sandbox pool.

Ray is optional (``pip install -e '.[ray]'``) and imported only when asked for. Layout:

- ``colony.py``: ``ColonyActor``, a one-colony ``Evolution`` that keeps its sub-population;
- ``workers.py``: ``BackendActor`` and ``ExecutorActor``, and the proxies colonies call
  them through (they follow the Backend and Executor protocols);
- ``merge.py``: what the driver does between generations: dedup across colonies,
  migration, the logbook row;
- ``driver.py``: ``RayEvolution`` (the generation loop, commits, recovery) and
  ``run_with_ray``, which the CLI calls for ``evolve --ray-address``.
"""

from __future__ import annotations

from ..config import ConfigError

INSTALL_HINT = "Ray is not installed: pip install -e '.[ray]'"


class RayUnavailable(ConfigError):
    """Ray is missing or the cluster cannot be reached; one line saying what to do."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None
    return ray


def run_with_ray(cfg, store, seeds, address, reporter=None, resume=False, **options):
    """Run ``cfg`` with its colonies as Ray actors; see ``driver.run_with_ray``."""
    import_ray()
    from .driver import run_with_ray as run

    return run(cfg, store, seeds, address, reporter, resume, **options)


__all__ = ["INSTALL_HINT", "RayUnavailable", "import_ray", "run_with_ray"]
