"""The one module of ``litepose.inference`` that runs PyTorch: a model's forward passes on one
image (``run_model``) and ``predict``, which hands their outputs to the NumPy pipeline
(``aggregate.compute_maps``, ``decode.decode``). Loaded on first use of these names, so the
rest of the package stays free of PyTorch."""

import torch

from ..data.normalize import image_to_tensor
from .aggregate import compute_maps
from .decode import decode
from .group import NO_LIMITS
from .transforms import warp_image


def run_model(model, image, geometry, flip, device):
    """Network outputs for ``image`` (RGB uint8) resized by ``geometry``, as NumPy arrays; with
    ``flip`` the batch holds the mirrored input second."""
    batch = image_to_tensor(warp_image(image, geometry))[None].to(device)
    if flip:
        batch = torch.cat([batch, batch.flip(3)], dim=0)
    with torch.inference_mode():
        outputs = model(batch)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [output.float().cpu().numpy() for output in outputs]


def predict(model, image, settings, device=None, keep_maps=False, limits=NO_LIMITS):
    """People in one RGB uint8 image (``[H, W, 3]``) with ``model`` in eval mode: a ``People``.

    Example::

        settings = InferenceSettings.from_config(cfg, model)
        people = predict(model.eval(), read_image(path), settings)
        people.keypoints  # [P, J, 3] x, y, score in image pixels
    """
    if device is None:
        device = next(model.parameters()).device
    image_wh = (image.shape[1], image.shape[0])
    maps = compute_maps(lambda geometry: run_model(model, image, geometry, settings.flip, device), image_wh, settings)
    return decode(maps, settings, limits, keep_maps)
