"""The supernet's search space and the workflow beyond training: BN recalibration, cost models
and architecture search.

``litepose.search.space`` (the search space and its sampler) is imported by the models, so this
package imports its other modules only when one of their names is first used."""

import importlib

_EXPORTS = {
    "SearchSpace": "space", "ArchManager": "space",
    "recalibrate_bn": "bn", "MacCounter": "cost", "Candidate": "evolution", "EvolutionSearch": "evolution",
    "LatencyTable": "latency",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'litepose.search' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
