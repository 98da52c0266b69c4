"""The network run by ONNX Runtime (no PyTorch): an exported LitePose (``tools/export_onnx.py``,
``litepose.deploy.export_onnx``)."""

import os

import numpy as np

from ..errors import LitePoseError
from .network import Network


class OnnxNetwork(Network):
    """An ONNX Runtime session on CPU (``threads`` intra-op threads; None = ONNX Runtime's
    default) or CUDA (``device="cuda"`` with onnxruntime-gpu).

    A model exported with a fixed batch of 1 runs a flip-test batch of 2 as two calls; a model
    exported with a fixed input size accepts only that size (export with ``--dynamic`` for
    frames of any aspect ratio)."""

    name = "onnxruntime"

    def __init__(self, model, threads=None, device="cpu"):
        import onnxruntime as ort

        from ..utils.args import check_number

        check_number("threads", threads, 1, 1024, integer=True, allow_none=True)
        if isinstance(model, (str, os.PathLike)) and not os.path.isfile(model):
            raise LitePoseError(f"ONNX model not found: {model}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise LitePoseError("ONNX Runtime has no CUDA provider here (install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as exc:  # ONNX Runtime raises its own exception types; one line
            text = str(exc).strip().splitlines()
            raise LitePoseError(f"cannot load ONNX model {model if isinstance(model, str) else '(bytes)'}: "
                                f"{text[0] if text else type(exc).__name__}") from None
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        shape = list(first.shape)
        if len(shape) != 4:
            raise LitePoseError(f"ONNX model input {first.name} has shape {shape}, expected [B, 3, H, W]")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.fixed_hw = tuple(shape[2:]) if all(isinstance(v, int) for v in shape[2:]) else None
        self.output_count = len(self.session.get_outputs())
        # Channels of each output (None: not a fixed [B, C, H, W] output): what the estimator
        # checks against the joints it was told, before the first frame.
        self.output_channels = tuple(o.shape[1] if len(o.shape) == 4 and isinstance(o.shape[1], int) else None
                                     for o in self.session.get_outputs())

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, np.float32)
        if self.fixed_hw is not None and tuple(batch.shape[2:]) != self.fixed_hw:
            raise LitePoseError(
                f"this ONNX model takes {self.fixed_hw[1]}x{self.fixed_hw[0]} inputs only, the frame needs "
                f"{batch.shape[3]}x{batch.shape[2]}: export with --dynamic (tools/export_onnx.py) for frames "
                f"of any aspect ratio")
        if self.fixed_batch is not None and batch.shape[0] != self.fixed_batch:
            parts = [self.session.run(None, {self.input_name: batch[i:i + 1]}) for i in range(batch.shape[0])]
            return [np.concatenate([p[k] for p in parts]) for k in range(self.output_count)]
        return self.session.run(None, {self.input_name: batch})
