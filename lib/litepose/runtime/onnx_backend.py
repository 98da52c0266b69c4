"""The network run by ONNX Runtime (no PyTorch): an exported LitePose (``tools/export.py
--format onnx``). ``onnx_session`` is the one place an ONNX Runtime session is built."""

import os

import numpy as np

from ..errors import LitePoseError, ModelFileError
from ..utils.args import check_number
from .network import Network


def _first_line(exc):
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def onnx_session(model, threads=None, device="cpu", providers=None):
    """An ONNX Runtime session for ``model`` (a path or ONNX bytes) on CPU (``threads`` intra-op
    threads; None: ONNX Runtime's default) or CUDA (``device="cuda"``, with onnxruntime-gpu).
    ``providers`` replaces the provider list (``tools/device_check.py`` asks for TensorRT).
    ``ModelFileError`` (one line) when ONNX Runtime cannot load it."""
    import onnxruntime as ort

    if isinstance(model, (str, os.PathLike)) and not os.path.isfile(model):
        raise ModelFileError(f"ONNX model not found: {model}")
    check_number("threads", threads, 1, 1024, integer=True, allow_none=True)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if providers is None:
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise LitePoseError("ONNX Runtime has no CUDA provider here (install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # ONNX Runtime raises its own exception types; one line
        name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "(bytes)"
        raise ModelFileError(f"ONNX Runtime cannot load the model {name}: {_first_line(exc)}") from None


def onnx_metadata(session, source="ONNX model"):
    """The ``ExportMetadata`` in the session's model (``metadata_props``), or None."""
    from .metadata import KEY, ExportMetadata

    text = session.get_modelmeta().custom_metadata_map.get(KEY)
    return None if text is None else ExportMetadata.from_json(text, source)


class OnnxNetwork(Network):
    """An ONNX Runtime session on CPU (``threads`` intra-op threads; None = ONNX Runtime's
    default) or CUDA (``device="cuda"`` with onnxruntime-gpu).

    A model exported with a fixed batch of 1 runs a flip-test batch of 2 as two calls; a model
    exported with a fixed input size accepts only that size (``PoseEstimator`` letterboxes frames
    to it)."""

    name = "onnxruntime"
    format = "onnx"

    def __init__(self, model, threads=None, device="cpu", check_weights=True):
        from ..utils.args import check_number

        check_number("threads", threads, 1, 1024, integer=True, allow_none=True)
        label = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "ONNX model (bytes)"
        if check_weights:
            from .weights import check_onnx_weights

            check_onnx_weights(model, label)
        self.session = onnx_session(model, threads=threads, device=device)
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        shape = list(first.shape)
        if len(shape) != 4:
            raise ModelFileError(f"ONNX model input {first.name} has shape {shape}, expected [B, 3, H, W]")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.fixed_hw = tuple(shape[2:]) if all(isinstance(v, int) for v in shape[2:]) else None
        self.output_count = len(self.session.get_outputs())
        self.metadata = onnx_metadata(self.session, label)
        # Channels of each output (None: not a fixed [B, C, H, W] output): what the estimator
        # checks against the joints it was told, before the first frame.
        self.output_channels = tuple(o.shape[1] if len(o.shape) == 4 and isinstance(o.shape[1], int) else None
                                     for o in self.session.get_outputs())

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, np.float32)
        self.check_input(batch)
        if self.fixed_batch is not None and batch.shape[0] != self.fixed_batch:
            parts = [self.session.run(None, {self.input_name: batch[i:i + 1]}) for i in range(batch.shape[0])]
            return [np.concatenate([p[k] for p in parts]) for k in range(self.output_count)]
        return self.session.run(None, {self.input_name: batch})

