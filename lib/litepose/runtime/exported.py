"""Any export as a runtime network: ``open_network(path)`` picks the runtime from the file
(suffix, else content) and returns a ``Network`` (``__call__(batch [B, 3, H, W] float32) ->
list of [B, C, h, w] arrays``, ``fixed_hw``, ``metadata``).

    from litepose.runtime.exported import open_network
    network = open_network("litepose-xs.onnx", threads=1)   # or .xml, .tflite, .ncnn.param, .pt

========== ======================== ============================ ===========================
format     file (suffix or content) runtime                      input size
========== ======================== ============================ ===========================
onnx       M.onnx (protobuf)        ONNX Runtime (no PyTorch)    dynamic or fixed
openvino   M.xml + M.bin            OpenVINO CPU (f32 hint)      dynamic or fixed
tflite     M.tflite ("TFL3")        LiteRT interpreter           fixed (the converter's)
ncnn       M.ncnn.param + .bin      ncnn's Python binding        dynamic (ncnn takes any)
torchscript M.pt (zip with code/)   torch.jit.load (PyTorch)     dynamic (traced convolutions)
coreml     M.mlpackage              none on Linux                refused with a line
========== ======================== ============================ ===========================

Every backend refuses non-finite weights when it opens the model (``litepose.runtime.weights``)
and an input of the wrong size with one ``ModelFileError`` line instead of its runtime's error.
Only the TorchScript backend imports PyTorch.
"""

import os
import re
import zipfile

import numpy as np

from ..errors import LitePoseError, ModelFileError
from ..utils.args import check_choice, check_number
from .metadata import EXTRA_FILE, KEY, ExportMetadata, read_sidecar
from .network import Network

FORMATS = ("onnx", "openvino", "tflite", "ncnn", "torchscript", "coreml")
# What an export of each format can be (``litepose export``'s --dynamic and --fp16): any input
# size, and float16. Here, beside the list, so that the command's help imports no PyTorch.
DYNAMIC_FORMATS = ("onnx", "openvino", "ncnn", "torchscript")
HALF_FORMATS = ("onnx", "openvino", "ncnn", "coreml")
# Packages each runtime needs (import name, PyPI name).
RUNTIME_PACKAGES = {"onnx": [("onnxruntime", "onnxruntime")], "openvino": [("openvino", "openvino")],
                    "tflite": [("ai_edge_litert", "ai-edge-litert")], "ncnn": [("ncnn", "ncnn")],
                    "torchscript": [("torch", "torch")], "coreml": []}
NCNN_MAGIC = "7767517"


def export_option_problem(fmt, half=False, dynamic=False):
    """What is wrong with exporting to ``fmt`` in float16 (``half``) or with any input size
    (``dynamic``), in one line, or None."""
    if half and fmt not in HALF_FORMATS:
        return f"--fp16 is not available for {fmt} (only {', '.join(HALF_FORMATS)})"
    if dynamic and fmt not in DYNAMIC_FORMATS:
        return f"--dynamic is not available for {fmt} (its input size is fixed; dynamic: {', '.join(DYNAMIC_FORMATS)})"
    return None


def detect_format(path):
    """The export format of the file or folder at ``path`` (by suffix, else by its first bytes),
    or None when it is none of them (a PyTorch checkpoint, for one)."""
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(".mlpackage") or lower.endswith(".mlmodel"):
        return "coreml"
    if os.path.isdir(path):
        return None
    by_suffix = {".onnx": "onnx", ".xml": "openvino", ".tflite": "tflite", ".param": "ncnn",
                 ".torchscript": "torchscript"}
    for suffix, fmt in by_suffix.items():
        if lower.endswith(suffix):
            return fmt
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.startswith(NCNN_MAGIC.encode()):
        return "ncnn"
    text = head.lstrip().lower()
    if text.startswith(b"<?xml") or text.startswith(b"<net"):
        return "openvino"
    if head.startswith(b"PK\x03\x04"):
        return "torchscript" if _is_torchscript(path) else None
    if head[:1] == b"\x08" and b"\x12" in head[:16]:  # ModelProto: ir_version (field 1), then field 2+
        return "onnx"
    return None


def _is_torchscript(path):
    """A TorchScript archive holds ``<name>/code/`` (a ``torch.save`` checkpoint does not)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist()[:10000])
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def require_runtime(fmt):
    """Import the runtime package of ``fmt``; one ``ModelFileError`` line naming it otherwise."""
    modules = []
    for module, package in RUNTIME_PACKAGES[fmt]:
        try:
            modules.append(__import__(module))
        except Exception as exc:  # ImportError, or a broken install raising anything at import
            text = str(exc).strip().splitlines()
            raise ModelFileError(f"running a {fmt} model needs the {package} package "
                                 f"({text[0] if text else type(exc).__name__}): pip install {package}") from None
    return modules


def open_network(path, format=None, threads=None, device="cpu", precision=None, half=None, check_weights=True):
    """The runtime network of the export at ``path`` (format from ``format`` or the file).

    ``threads``: intra-op threads (None: the runtime's default). ``device``: cpu, or cuda for
    ONNX Runtime with its CUDA provider. ``precision``: OpenVINO's inference precision hint
    (default f32: OpenVINO otherwise picks bfloat16 on CPUs that have it). ``half``: run a
    float16 export in float16 where the runtime chooses (ncnn's fp16 storage and arithmetic,
    OpenVINO's f16 hint; default: what the export's metadata says). ``check_weights``: refuse
    non-finite weights (only quantisation's intermediate models turn it off). ``ModelFileError``
    for a missing or unknown file."""
    check_number("threads", threads, 1, 1024, integer=True, allow_none=True)
    if isinstance(path, (bytes, bytearray)):
        if format not in (None, "onnx"):
            raise LitePoseError(f"model bytes are read as ONNX only, not {format}")
        from .onnx_backend import OnnxNetwork

        return OnnxNetwork(bytes(path), threads=threads, device=device, check_weights=check_weights)
    if not isinstance(path, (str, os.PathLike)):
        raise LitePoseError(f"expected a path to an exported model, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model not found: {path}")
    if format is not None:
        check_choice("format", format, FORMATS)
    fmt = format or detect_format(path)
    if fmt is None:
        raise ModelFileError(f"{path} is not an exported model (onnx, openvino .xml, tflite, ncnn .param, "
                             f"torchscript .pt); export one with tools/export.py")
    if fmt != "onnx" and str(device) != "cpu":
        raise LitePoseError(f"the {fmt} backend runs on the CPU only, not {device!r}")
    if fmt == "coreml":
        raise ModelFileError("Core ML models run only on macOS (coremltools cannot run them on Linux)")
    if os.path.isdir(path):
        raise ModelFileError(f"{path} is a folder, not a {fmt} model")
    require_runtime(fmt)
    if fmt == "onnx":
        from .onnx_backend import OnnxNetwork

        return OnnxNetwork(path, threads=threads, device=device, check_weights=check_weights)
    cls = {"openvino": OpenVinoNetwork, "tflite": TfliteNetwork, "ncnn": NcnnNetwork,
           "torchscript": TorchScriptNetwork}[fmt]
    kwargs = {"precision": precision, "half": half} if fmt == "openvino" else {"half": half} if fmt == "ncnn" else {}
    return cls(path, threads=threads, check_weights=check_weights, **kwargs)


def _one_at_a_time(run, batch):
    parts = [run(item[None]) for item in batch]
    return [np.concatenate(outputs) for outputs in zip(*parts)]


def _runtime_error(fmt, exc):
    text = str(exc).strip().splitlines()
    return ModelFileError(f"the {fmt} runtime failed on the input: {text[0][:300] if text else type(exc).__name__}")


_OPENVINO_CORE = []


def openvino_core():
    """The one ``openvino.Core`` of the process, kept for its lifetime. OpenVINO's CPU plugin
    points the thread's alternate signal stack at memory it frees when the last Core that loaded
    it goes away (OpenVINO 2026.4): any later signal with an ``SA_ONSTACK`` handler (a Python
    one, e.g. SIGCHLD while PyTorch's DataLoader watches its workers) then crashes the process
    with SIGSEGV. Keeping the plugin loaded keeps that stack valid."""
    if not _OPENVINO_CORE:
        import openvino as ov

        _OPENVINO_CORE.append(ov.Core())
    return _OPENVINO_CORE[0]


class OpenVinoNetwork(Network):
    """An OpenVINO IR (``.xml`` + ``.bin``, or an ``openvino.Model``) compiled for the CPU with
    the inference precision hint ``precision`` (f32, f16, bf16; INT8 layers stay INT8)."""

    name = "openvino"
    format = "openvino"

    def __init__(self, model, threads=None, precision=None, half=None, check_weights=True):
        core = openvino_core()
        label = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "OpenVINO model"
        if isinstance(model, (str, os.PathLike)):
            try:
                model = core.read_model(os.fspath(model))
            except Exception as exc:
                text = str(exc).strip().splitlines()
                raise ModelFileError(f"OpenVINO cannot read {label}: {text[0][:300] if text else exc!r}") from None
        if check_weights:
            from .weights import check_openvino_weights

            check_openvino_weights(model, label)
        self.metadata = None
        if model.has_rt_info(KEY):
            self.metadata = ExportMetadata.from_json(model.get_rt_info(KEY).astype(str), label)
        partial = model.inputs[0].get_partial_shape()
        if partial.rank.is_dynamic or partial.rank.get_length() != 4:
            raise ModelFileError(f"{label}: input shape {partial} is not [B, 3, H, W]")
        self.fixed_batch = partial[0].get_length() if partial[0].is_static else None
        self.fixed_hw = (partial[2].get_length(), partial[3].get_length()) \
            if partial[2].is_static and partial[3].is_static else None
        if half is None:
            half = bool(self.metadata and self.metadata.half)
        config = {"INFERENCE_PRECISION_HINT": precision or ("f16" if half else "f32")}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise ModelFileError(f"OpenVINO cannot compile {label}: {text[0][:300] if text else exc!r}") from None
        self.request = self.compiled.create_infer_request()
        self.outputs = list(self.compiled.outputs)

    def _run(self, batch):
        try:
            self.request.infer({0: batch})
        except Exception as exc:
            raise _runtime_error(self.format, exc) from None
        return [self.request.get_tensor(o).data.copy() for o in self.outputs]

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, np.float32)
        self.check_input(batch)
        if self.fixed_batch is not None and batch.shape[0] != self.fixed_batch:
            return _one_at_a_time(self._run, batch)
        return self._run(batch)


class TfliteNetwork(Network):
    """A LiteRT / TFLite flatbuffer on the LiteRT interpreter (``threads`` threads); its input
    size is the converter's (fixed), one image per call. A fully quantised model (integer input
    or outputs, as litert-torch's PT2E quantisation with a ``quant_config`` gives) takes and
    returns float32 all the same: the input is quantised and the outputs dequantised here with
    the tensors' own scale and zero point."""

    name = "tflite"
    format = "tflite"

    def __init__(self, path, threads=None, check_weights=True):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise ModelFileError(f"LiteRT cannot load {path}: {text[0][:300] if text else exc!r}") from None
        if check_weights:
            from .weights import check_tflite_weights

            check_tflite_weights(self.interpreter, os.fspath(path))
        detail = self.interpreter.get_input_details()[0]
        shape = [int(v) for v in detail["shape"]]
        if len(shape) != 4 or shape[1] != 3:
            raise ModelFileError(f"{path}: input shape {shape} is not [1, 3, H, W]")
        self.input_index = detail["index"]
        self.input_quantization = _tflite_quantization(detail, path)
        self.fixed_hw = (shape[2], shape[3])
        outputs = _ordered_outputs(self.interpreter.get_output_details())
        self.output_indices = [d["index"] for d in outputs]
        self.output_quantization = [_tflite_quantization(d, path) for d in outputs]
        self.metadata = read_sidecar(path)

    def _run(self, batch):
        if self.input_quantization is not None:
            scale, zero, dtype = self.input_quantization
            limits = np.iinfo(dtype)
            batch = np.clip(np.round(batch / scale) + zero, limits.min, limits.max).astype(dtype)
        try:
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
        except Exception as exc:
            raise _runtime_error(self.format, exc) from None
        outputs = []
        for index, quantization in zip(self.output_indices, self.output_quantization):
            value = self.interpreter.get_tensor(index)
            if quantization is None:
                outputs.append(value.copy())
            else:
                scale, zero, _ = quantization
                outputs.append(((value.astype(np.float32) - zero) * np.float32(scale)).astype(np.float32))
        return outputs

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, np.float32)
        self.check_input(batch)
        return _one_at_a_time(self._run, batch)


def _tflite_quantization(detail, path):
    """``(scale, zero_point, dtype)`` of a quantised (integer) TFLite input or output, None for
    a float one; one ``ModelFileError`` line for an integer tensor without a scale."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return None
    scale, zero = detail.get("quantization", (0.0, 0))
    if dtype.kind not in "iu" or not scale or not np.isfinite(scale):
        raise ModelFileError(f"{path}: tensor {detail['name']} is {dtype.name} without a quantisation scale; "
                             f"LitePose feeds and reads float32 or quantised integer tensors")
    return float(scale), int(zero), dtype


def _ordered_outputs(details):
    """TFLite output details in the model's output order (``output0``, ``output1``, ...): by the
    last number in each name, as converters number them (litert-torch
    ``serving_default_output_0_output``, TensorFlow ``Identity``, ``Identity_1``,
    ``StatefulPartitionedCall:1``; a name without a number first), numerically (10 after 9)."""
    def key(detail):
        numbers = re.findall(r"\d+", detail["name"])
        return (int(numbers[-1]) if numbers else -1, detail["name"])

    return sorted(details, key=key)


def ncnn_bin_path(param_path):
    """The weights beside an ncnn ``.param``: ``m.ncnn.param`` -> ``m.ncnn.bin``."""
    return os.path.splitext(os.fspath(param_path))[0] + ".bin"


class NcnnNetwork(Network):
    """An ncnn model (``M.ncnn.param`` + ``M.ncnn.bin``) on ncnn's CPU path (``threads``
    threads; float16 storage and arithmetic with ``half``), one image per call, any size."""

    name = "ncnn"
    format = "ncnn"

    def __init__(self, path, threads=None, half=None, check_weights=True):
        import ncnn

        path = os.fspath(path)
        weights = ncnn_bin_path(path)
        self.metadata = read_sidecar(path)
        if half is None:
            half = bool(self.metadata and self.metadata.half)
        with open(path, "rb") as handle:
            if not handle.read(16).startswith(NCNN_MAGIC.encode()):
                raise ModelFileError(f"{path} is not an ncnn .param file (no {NCNN_MAGIC} magic)")
        if not os.path.isfile(weights):
            raise ModelFileError(f"the ncnn weights {weights} of {path} are missing")
        if check_weights:
            from .weights import check_ncnn_weights

            check_ncnn_weights(path, weights, path)
        self.net = ncnn.Net()
        self.net.opt.use_fp16_packed = self.net.opt.use_fp16_storage = self.net.opt.use_fp16_arithmetic = bool(half)
        self.net.opt.use_bf16_storage = False
        if threads:
            self.net.opt.num_threads = int(threads)
        if self.net.load_param(path) or self.net.load_model(weights):
            raise ModelFileError(f"ncnn cannot load {path} with {weights}")
        self.input_name = self.net.input_names()[0]
        self.output_names = list(self.net.output_names())
        self._ncnn = ncnn
        if self.metadata is not None:
            self.fixed_hw = self.metadata.fixed_hw

    def _run(self, batch):
        try:
            with self.net.create_extractor() as extractor:
                extractor.input(self.input_name, self._ncnn.Mat(batch[0]).clone())
                outputs = []
                for name in self.output_names:
                    code, mat = extractor.extract(name)
                    if code:
                        raise RuntimeError(f"extracting {name} returned {code}")
                    outputs.append(np.array(mat)[None])
        except Exception as exc:
            raise _runtime_error(self.format, exc) from None
        return outputs

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, np.float32)
        self.check_input(batch)
        return _one_at_a_time(self._run, batch)


class TorchScriptNetwork(Network):
    """A traced TorchScript module (``M.pt``) on the CPU with PyTorch. ``threads``: PyTorch's
    intra-op threads during each call (PyTorch has only a process-wide setting: it is set for
    the call and restored after)."""

    name = "torchscript"
    format = "torchscript"

    def __init__(self, path, threads=None, check_weights=True):
        import warnings

        import torch

        extra = {EXTRA_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.module = torch.jit.load(os.fspath(path), map_location="cpu", _extra_files=extra).eval()
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise ModelFileError(f"PyTorch cannot load the TorchScript model {path}: "
                                 f"{text[0][:300] if text else exc!r}") from None
        if check_weights:
            from .weights import check_torchscript_weights

            check_torchscript_weights(self.module, os.fspath(path))
        text = extra[EXTRA_FILE]
        self.metadata = ExportMetadata.from_json(text, os.fspath(path)) if text else None
        if self.metadata is not None:
            self.fixed_hw = self.metadata.fixed_hw
        self.threads = threads
        self._torch = torch

    def __call__(self, batch):
        torch = self._torch
        batch = np.ascontiguousarray(batch, np.float32)
        self.check_input(batch)
        previous = torch.get_num_threads()
        try:
            if self.threads:
                torch.set_num_threads(int(self.threads))
            with torch.inference_mode():
                outputs = self.module(torch.from_numpy(batch))
        except Exception as exc:
            raise _runtime_error(self.format, exc) from None
        finally:
            if self.threads:
                torch.set_num_threads(previous)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [o.float().numpy() for o in outputs]
