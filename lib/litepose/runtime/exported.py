"""The network run by the runtime of an edge export (OpenVINO, LiteRT / TFLite, ncnn,
TorchScript), through ``litepose.deploy.formats.load_runner``: what ``tools/export.py`` wrote
and checked, in ``PoseEstimator.from_exported``."""

import os

from ..errors import LitePoseError
from .network import Network


class ExportedNetwork(Network):
    """``format``'s runtime on the CPU (``threads`` intra-op threads; None: its default)."""

    def __init__(self, format, path, threads=None):
        from ..deploy.formats import load_runner

        if not os.path.isfile(path):
            raise LitePoseError(f"{format} model not found: {path}")
        self.name = format
        self._run = load_runner(format, os.fspath(path), threads=threads)

    def __call__(self, batch):
        return list(self._run(batch))
