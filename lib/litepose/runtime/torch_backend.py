"""The network run by PyTorch (imported only when this backend is chosen)."""

import numpy as np
import torch

from .network import Network


class TorchNetwork(Network):
    """A LitePose ``torch.nn.Module`` (eval mode) on ``device``; outputs come back as NumPy."""

    name = "pytorch"

    def __init__(self, model, device=None):
        if device is None:
            device = next(model.parameters()).device
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def __call__(self, batch):
        with torch.inference_mode():
            outputs = self.model(torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [o.float().cpu().numpy() for o in outputs]
