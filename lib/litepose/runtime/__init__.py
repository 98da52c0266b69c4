"""The PyTorch-free runtime: NumPy / OpenCV pre-processing, aggregation and grouping around a
network run by ONNX Runtime (or, when chosen, by PyTorch).

    from litepose.runtime import compute_maps, decode, open_network
    network = open_network("litepose-xs.onnx", threads=1)   # any export: .onnx, .xml, .ncnn.param, ...
    maps = compute_maps(network.forward_fn(rgb_image, settings.flip), (width, height), settings)
    people = decode(maps, settings, DecodeLimits(max_people=20))

The steps equal ``litepose.inference.pipeline``'s (same geometry, normalisation, flip averaging,
bilinear resizing with ``align_corners=False`` semantics, grouping); tests check the people
against it. Nothing here imports PyTorch: ``litepose.runtime.torch_backend`` does, and is only
loaded for the PyTorch backend.
"""

from .aggregate import Maps, compute_maps, resize_maps
from .decoding import DecodeLimits, Decoded, decode, find_peaks_dense, group_bounded
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, network_input, normalize_image

_LAZY = {"OnnxNetwork": ".onnx_backend", "TorchNetwork": ".torch_backend", "open_network": ".exported",
         "detect_format": ".exported", "ExportMetadata": ".metadata"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DecodeLimits", "Decoded", "ExportMetadata", "IMAGENET_MEAN", "IMAGENET_STD", "Maps", "OnnxNetwork",
           "TorchNetwork", "compute_maps", "decode", "detect_format", "find_peaks_dense", "group_bounded",
           "network_input", "normalize_image", "open_network", "resize_maps"]
