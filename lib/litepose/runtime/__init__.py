"""The PyTorch-free runtime: NumPy / OpenCV pre-processing and the networks (ONNX Runtime,
edge exports, or, when chosen, PyTorch) whose outputs ``litepose.inference`` turns into people.

    from litepose.inference import DecodeLimits, compute_maps, decode
    from litepose.runtime import OnnxNetwork
    network = OnnxNetwork("litepose-xs.onnx", threads=1)
    maps = compute_maps(network.forward_fn(rgb_image, settings.flip), (width, height), settings)
    people = decode(maps, settings, DecodeLimits(max_people=20))

Nothing here imports PyTorch: ``litepose.runtime.torch_backend`` does, and is only loaded for
the PyTorch backend.
"""

from .preprocess import IMAGENET_MEAN, IMAGENET_STD, network_input, normalize_image

_LAZY = {"OnnxNetwork": ".onnx_backend", "TorchNetwork": ".torch_backend"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "OnnxNetwork", "TorchNetwork", "network_input", "normalize_image"]
