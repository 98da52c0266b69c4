"""Deployment: BN folding, ONNX / TorchScript export checked against PyTorch, latency.

    from litepose.deploy import fuse_bn, export_onnx, check_onnx, onnx_session, max_abs_diff_onnx
    fused = fuse_bn(model)                       # a folded copy; model is untouched
    data = export_onnx(fused, 512, dynamic=True)  # ONNX bytes
    check_onnx(data)
    diff = max_abs_diff_onnx(model, onnx_session(data), example_input(512))

Latency: ``time_interleaved`` times runners (``torch_runner``, ``onnx_runner``,
``end_to_end_runner``) round-robin; ``realistic_weights_`` gives random weights a trained
network's statistics. The comparison with the baselines (model zoo, tables, plot) is
``python -m benchmarks.benchmark``.
"""

from .export import (ExportError, check_onnx, example_input, export_onnx, export_torchscript, max_abs_diff_onnx,
                     max_abs_diff_torchscript, onnx_session)
from .fuse import batchnorm_names, find_bn_fusions, fold_bn, fuse_bn
from .latency import Timing, end_to_end_runner, onnx_runner, realistic_weights_, time_interleaved, torch_runner

__all__ = [
    "ExportError",
    "Timing",
    "batchnorm_names",
    "check_onnx",
    "end_to_end_runner",
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
    "realistic_weights_",
    "time_interleaved",
    "torch_runner",
]
