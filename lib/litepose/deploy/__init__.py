"""Deployment: BN folding, the checked export to every format, latency.

    from litepose.deploy import fuse_bn, export_onnx
    from litepose.deploy.formats import export_checked
    fused = fuse_bn(model)                       # a folded copy; model is untouched
    data = export_onnx(fused, 512, dynamic=True)  # ONNX bytes, unchecked
    report = export_checked("onnx", model, "m.onnx", 512, cfg=cfg)   # folded, checked, with metadata

Latency: ``time_interleaved`` times runners (``torch_runner``, ``onnx_runner``,
``end_to_end_runner``) round-robin; ``realistic_weights_`` gives random weights a trained
network's statistics. The comparison with the baselines (model zoo, tables, plot) is
``python -m benchmarks.benchmark``.
"""

from ..runtime.onnx_backend import onnx_session
from .export import ExportError, example_input, export_onnx
from .fuse import batchnorm_names, find_bn_fusions, fold_bn, fuse_bn
from .latency import Timing, end_to_end_runner, onnx_runner, realistic_weights_, time_interleaved, torch_runner

__all__ = [
    "ExportError",
    "Timing",
    "batchnorm_names",
    "end_to_end_runner",
    "example_input",
    "export_onnx",
    "find_bn_fusions",
    "fold_bn",
    "fuse_bn",
    "onnx_runner",
    "onnx_session",
    "realistic_weights_",
    "time_interleaved",
    "torch_runner",
]
