"""The MAC cost of an architecture, counted fast enough for a search loop."""

import json

import torch

from ..arch import IMG_SIZE_DIVISOR
from ..models.litepose import LitePose
from ..models.profile import profile_model


class MacCounter:
    """``counter(arch) -> MACs`` at the architecture's img_size, memoised.

    Every layer's cost is proportional to its output area, and with an input that is a
    multiple of 32 every feature map scales exactly with the input. So the network is run
    once at 32x32 (weights allocated, never initialised) and the count scaled by
    ``(img_size / 32)^2``: exact, and far cheaper than a forward pass at full size.
    """

    def __init__(self, head_config):
        self.head_config = dict(head_config)
        self._cache = {}

    def __call__(self, arch):
        key = json.dumps(arch, sort_keys=True)
        if key not in self._cache:
            with torch.device("meta"):
                model = LitePose(arch, **self.head_config)
            model = model.to_empty(device="cpu")
            macs = profile_model(model, IMG_SIZE_DIVISOR).macs
            self._cache[key] = macs * (arch["img_size"] // IMG_SIZE_DIVISOR) ** 2
        return self._cache[key]
