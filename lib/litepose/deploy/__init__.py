"""Deployment: BN folding, ONNX / TorchScript export checked against PyTorch, latency.

    from litepose.deploy import fuse_bn, export_onnx, check_onnx, onnx_session, max_abs_diff_onnx
    fused = fuse_bn(model)                       # a folded copy; model is untouched
    data = export_onnx(fused, 512, dynamic=True)  # ONNX bytes
    check_onnx(data)
    diff = max_abs_diff_onnx(model, onnx_session(data), example_input(512))

``litepose.deploy.benchmark`` times LitePose against its baselines (``tools/benchmark.py``).
"""

from .export import (ExportError, check_onnx, example_input, export_onnx, export_torchscript, max_abs_diff_onnx,
                     max_abs_diff_torchscript, onnx_session)
from .fuse import batchnorm_names, find_bn_fusions, fold_bn, fuse_bn
from .latency import Timing, onnx_runner, time_interleaved, torch_runner

__all__ = [
    "ExportError",
    "Timing",
    "batchnorm_names",
    "check_onnx",
    "example_input",
    "export_onnx",
    "export_torchscript",
    "find_bn_fusions",
    "fold_bn",
    "fuse_bn",
    "max_abs_diff_onnx",
    "max_abs_diff_torchscript",
    "onnx_runner",
    "onnx_session",
    "time_interleaved",
    "torch_runner",
]
