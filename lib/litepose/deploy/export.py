"""The ONNX converter and what every exporter shares (``ExportError``, input and output names).

``export_onnx`` gives ONNX bytes; the checked export, with metadata, a numerical check in ONNX
Runtime and an atomic write, is ``litepose.deploy.formats.export_checked`` (``tools/export.py``).
ONNX uses PyTorch's TorchScript-based exporter (``dynamo=False``): it needs no extra package and
handles every model here, including dynamic input sizes.
"""

import io
import warnings

import torch

from ..errors import LitePoseError

DEFAULT_OPSET = 17
INPUT_NAME = "input"
# The opsets the TorchScript-based exporter writes (PyTorch's own bounds when it has them).
try:
    from torch.onnx import _constants as _onnx_constants

    MIN_OPSET = int(_onnx_constants.ONNX_MIN_OPSET)
    MAX_OPSET = int(getattr(_onnx_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _onnx_constants.ONNX_MAX_OPSET))
except (ImportError, AttributeError):
    MIN_OPSET, MAX_OPSET = 7, 20


class ExportError(LitePoseError):
    """An export that failed or whose outputs disagree with PyTorch."""


def output_names(count):
    """``output0`` (1/4: heatmaps then tags), ``output1`` (1/2: heatmaps), ..."""
    return [f"output{i}" for i in range(count)]


def _as_tuple(outputs):
    return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)


class _TupleOutputs(torch.nn.Module):
    """Traced exports want a fixed output container: the model's list as a tuple."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return _as_tuple(self.model(x))


def example_input(input_size, batch_size=1, device="cpu", seed=0):
    """A reproducible random image batch ``[B, 3, H, W]`` (square when ``input_size`` is an int)."""
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, 3, height, width, generator=generator).to(device)


def check_opset(opset):
    """``ExportError`` (one line) unless ``opset`` is one this PyTorch's exporter writes."""
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"--opset must be between {MIN_OPSET} and {MAX_OPSET} (the opsets this PyTorch exports), "
                          f"got {opset}")


@torch.no_grad()
def export_onnx(model, input_size, dynamic=False, opset=DEFAULT_OPSET):
    """The ONNX bytes of ``model`` (eval mode, CPU) for a ``[1, 3, H, W]`` input.

    ``dynamic``: batch, height and width are dynamic axes (any multiple of 32 then works).
    """
    check_opset(opset)
    model = model.eval()
    x = example_input(input_size, device=next(model.parameters()).device)
    names = output_names(len(_as_tuple(model(x))))
    axes = None
    if dynamic:
        axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in names})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation; it is chosen on purpose (module doc).
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(_TupleOutputs(model), (x,), buffer, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=names, dynamic_axes=axes,
                              do_constant_folding=True)
        except Exception as exc:  # the exporter raises many types; report one line
            raise ExportError(f"ONNX export of {type(model).__name__} failed: {_first_line(exc)}") from exc
    return buffer.getvalue()


def _first_line(exc):
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
