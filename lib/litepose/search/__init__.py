"""The supernet workflow beyond training: BN recalibration, cost models and architecture search."""

from .bn import recalibrate_bn
from .cost import MacCounter
from .evolution import Candidate, EvolutionSearch
from .latency import LatencyTable

__all__ = ["Candidate", "EvolutionSearch", "LatencyTable", "MacCounter", "recalibrate_bn"]
