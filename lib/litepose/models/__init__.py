"""Models: LitePose, its supernet, the HigherHRNet and EfficientHRNet baselines, and the
registry that builds them from a config.

    from litepose.models import build_model, load_checkpoint
    model = build_model(cfg, arch)   # arch: dict, JSON path, or None
    load_checkpoint(model, path)     # the release's format or ours
"""

from . import builders  # noqa: F401  (registers the LitePose family)
from . import efficient_hrnet, higher_hrnet  # noqa: F401  (register the baselines)
from .checkpoint import load_checkpoint, read_checkpoint
from .efficient_hrnet import EfficientHRNet
from .higher_hrnet import HigherHRNet
from .litepose import LitePose, SuperLitePose
from .profile import profile_model
from .registry import build_model, model_names, register_model

__all__ = [
    "EfficientHRNet",
    "HigherHRNet",
    "LitePose",
    "SuperLitePose",
    "build_model",
    "load_checkpoint",
    "model_names",
    "profile_model",
    "read_checkpoint",
    "register_model",
]
