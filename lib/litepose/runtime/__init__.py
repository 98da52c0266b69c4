"""The PyTorch-free runtime: NumPy / OpenCV pre-processing and the networks (ONNX Runtime,
edge exports, or, when chosen, PyTorch) whose outputs ``litepose.inference`` turns into people.

    from litepose.inference import DecodeLimits, compute_maps, decode
    from litepose.runtime import open_network
    network = open_network("litepose-xs.onnx", threads=1)   # any export: .onnx, .xml, .ncnn.param, ...
    maps = compute_maps(network.forward_fn(rgb_image, settings.flip), (width, height), settings)
    people = decode(maps, settings, DecodeLimits(max_people=20))

Nothing here imports PyTorch: ``litepose.runtime.torch_backend`` does, and is only loaded for
the PyTorch backend.
"""

from .preprocess import IMAGENET_MEAN, IMAGENET_STD, network_input, normalize_image

_LAZY = {"OnnxNetwork": ".onnx_backend", "TorchNetwork": ".torch_backend", "open_network": ".exported",
         "detect_format": ".exported", "ExportMetadata": ".metadata"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ExportMetadata", "IMAGENET_MEAN", "IMAGENET_STD", "OnnxNetwork", "TorchNetwork", "detect_format",
           "network_input", "normalize_image", "open_network"]
