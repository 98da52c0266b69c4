"""Architecture search, the workflow beyond training: cost models (MACs, a latency table),
evolution, and the scoring of candidates by validation AP.

The search space itself and BN recalibration are the models' (``litepose.models.space``,
``litepose.models.bn``): the models and deployment use them, and nothing below this package
imports it."""

from .cost import MacCounter
from .evolution import Candidate, EvolutionSearch
from .latency import LatencyTable

__all__ = ["Candidate", "EvolutionSearch", "LatencyTable", "MacCounter"]
