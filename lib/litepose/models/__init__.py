"""Models: LitePose, its supernet, the HigherHRNet and EfficientHRNet baselines, and the
registry that builds them from a config.

    from litepose.models import load_model, build_model, load_checkpoint
    model = load_model(cfg, arch, path)  # built, loaded, finite, a supernet's active sub-network
    model = build_model(cfg, arch)       # arch: dict, JSON path, or None; untrained
    load_checkpoint(model, path)         # the release's format or ours, into a built model
"""

from . import builders  # noqa: F401  (registers the LitePose family)
from . import efficient_hrnet, higher_hrnet  # noqa: F401  (register the baselines)
from .checkpoint import NonFiniteWeightsError, load_checkpoint, load_model, read_checkpoint
from .efficient_hrnet import EfficientHRNet
from .higher_hrnet import HigherHRNet
from .litepose import LitePose, SuperLitePose
from .profile import profile_model
from .registry import build_model, model_names, register_model

__all__ = [
    "EfficientHRNet",
    "HigherHRNet",
    "NonFiniteWeightsError",
    "LitePose",
    "SuperLitePose",
    "build_model",
    "load_checkpoint",
    "load_model",
    "model_names",
    "profile_model",
    "read_checkpoint",
    "register_model",
]
