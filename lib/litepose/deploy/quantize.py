"""Post-training INT8 quantisation (ONNX Runtime, OpenVINO/NNCF) and float16, and the quantised
models as runtime networks, which ``litepose.evaluation.evaluate`` scores as it scores any export.

    from litepose.deploy.quantize import calibration_images, quantize_onnx
    images = calibration_images(cfg, 128, 300)               # preprocessed training images
    int8 = quantize_onnx(model, images)                        # QDQ ONNX bytes, BN folded first
    ap = evaluate(cfg, onnx_runner(int8), input_size=128).ap   # valid.py's AP with ONNX Runtime

ONNX Runtime: static QDQ quantisation (``quantize_static``) of the folded model exported with
dynamic batch, height and width, activations uint8 and weights int8 per output channel (the
u8s8 kernels that x86 VNNI runs), MinMax calibration on the given images; ``exclude_op_types``
and ``exclude_nodes`` keep layers in float. OpenVINO: ``nncf.quantize`` of the model converted
from PyTorch (dynamic shape too), with ``ignored_types`` / ``ignored_names`` as its ignored
scope. Both calibrate on training images preprocessed as in training (``training_batches``).
"""

import os
import tempfile

import numpy as np
import torch

from .export import ExportError, INPUT_NAME, _as_tuple, _first_line, _TupleOutputs, export_onnx
from .fuse import fuse_bn


def calibration_images(cfg, input_size, count=300, seed=0, augment=True):
    """``[count, 3, S, S]`` float32 training images, preprocessed (and augmented) as for training."""
    from ..data.build import training_batches

    images, total = [], 0
    for batch in training_batches(cfg, input_size, num_batches=None, augment=augment, seed=seed, batch_size=min(16, count),
                                  workers=0, with_targets=False):
        images.append(batch.images.cpu().numpy().astype(np.float32))
        total += len(images[-1])
        if total >= count:
            break
    if not images:
        raise ExportError("no calibration images: the training set is empty")
    return np.concatenate(images)[:count]


def _reader(images, batch_size=1):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.position = 0

        def get_next(self):
            if self.position >= len(images):
                return None
            batch = images[self.position:self.position + batch_size]
            self.position += batch_size
            return {INPUT_NAME: np.ascontiguousarray(batch, np.float32)}

        def rewind(self):
            self.position = 0

    return Reader()


def onnx_float(model, input_size=128, fold=True, dynamic=True):
    """Float ONNX bytes of ``model`` (BN folded) with dynamic batch, height and width."""
    return export_onnx(fuse_bn(model) if fold else model.eval(), input_size, dynamic=dynamic)


def onnx_half(data):
    """The float16 version of float ONNX bytes (float32 inputs and outputs)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.load_from_string(data), keep_io_types=True).SerializeToString()


def onnx_op_types(data):
    """``{op_type: count}`` of ONNX bytes."""
    import onnx

    counts = {}
    for node in onnx.load_from_string(data).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def quantize_onnx(model_or_bytes, images, exclude_op_types=(), exclude_nodes=(), exclude_patterns=(),
                  per_channel=True, calibrate_method="minmax", input_size=None):
    """INT8 QDQ ONNX bytes of a model (``nn.Module``: BN folded and exported first) or of float
    ONNX bytes, calibrated on ``images`` (``[N, 3, H, W]`` float32). Nodes of the op types
    ``exclude_op_types``, named in ``exclude_nodes`` or whose name matches a regular expression of
    ``exclude_patterns`` (``re.search``) stay in float."""
    import re

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if isinstance(model_or_bytes, torch.nn.Module):
        data = onnx_float(model_or_bytes, input_size or int(images.shape[-1]))
    else:
        data = model_or_bytes
    nodes = [n.name for n in onnx.load_from_string(data).graph.node]
    patterns = [re.compile(p) for p in exclude_patterns]
    excluded = list(exclude_nodes) + [n.name for n in onnx.load_from_string(data).graph.node
                                      if n.op_type in set(exclude_op_types) or any(p.search(n.name) for p in patterns)]
    unknown = sorted(set(exclude_nodes) - set(nodes))
    if unknown:
        raise ExportError(f"no such ONNX nodes to keep in float: {', '.join(unknown[:5])}")
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if calibrate_method not in methods:
        raise ExportError(f"calibration method must be one of {', '.join(methods)}, got {calibrate_method!r}")
    with tempfile.TemporaryDirectory(prefix="litepose-int8-") as work:
        source, prepared, target = (os.path.join(work, name) for name in ("float.onnx", "pre.onnx", "int8.onnx"))
        with open(source, "wb") as handle:
            handle.write(data)
        try:
            quant_pre_process(source, prepared, skip_symbolic_shape=True)
        except Exception:  # pre-processing only helps; quantise the plain export then
            prepared = source
        try:
            quantize_static(prepared, target, _reader(images), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=excluded or None, calibrate_method=methods[calibrate_method],
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        except Exception as exc:
            raise ExportError(f"ONNX Runtime quantisation failed: {_first_line(exc)}") from exc
        with open(target, "rb") as handle:
            return handle.read()


def openvino_float(model, input_size=128, fold=True):
    """An ``openvino.Model`` of ``model`` (BN folded) with dynamic batch, height and width."""
    import openvino as ov

    deployed = fuse_bn(model) if fold else model.eval()
    x = torch.zeros(1, 3, input_size, input_size)
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        converted = ov.convert_model(_TupleOutputs(deployed), example_input=x, input=[ov.PartialShape([-1, 3, -1, -1])])
    converted.inputs[0].get_tensor().set_names({INPUT_NAME})
    for index, node in enumerate(converted.outputs):
        node.get_tensor().set_names({f"output{index}"})
    return converted


def quantize_openvino(model_or_ov, images, ignored_types=(), ignored_names=(), ignored_patterns=(),
                      preset="performance", fast_bias_correction=True, input_size=None):
    """An INT8 ``openvino.Model`` (``nncf.quantize``) of a PyTorch model (converted first, BN
    folded) or of an ``openvino.Model``, calibrated on ``images``. NNCF's ignored scope keeps
    ops of ``ignored_types``, named in ``ignored_names`` or matching ``ignored_patterns`` (regular
    expressions over OpenVINO's op names, which carry the PyTorch module path) in float."""
    import nncf

    if isinstance(model_or_ov, torch.nn.Module):
        model_or_ov = openvino_float(model_or_ov, input_size or int(images.shape[-1]))
    scope = None
    if ignored_types or ignored_names or ignored_patterns:
        scope = nncf.IgnoredScope(types=list(ignored_types), names=list(ignored_names),
                                  patterns=list(ignored_patterns), validate=False)
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if preset not in presets:
        raise ExportError(f"NNCF preset must be one of {', '.join(presets)}, got {preset!r}")
    dataset = nncf.Dataset([images[i:i + 1] for i in range(len(images))])
    try:
        return nncf.quantize(model_or_ov, dataset, preset=presets[preset], subset_size=len(images),
                             fast_bias_correction=fast_bias_correction, ignored_scope=scope)
    except Exception as exc:
        raise ExportError(f"NNCF quantisation failed: {_first_line(exc)}") from exc


def openvino_op_types(ov_model):
    """``{type_name: count}`` of an ``openvino.Model``."""
    counts = {}
    for op in ov_model.get_ordered_ops():
        counts[op.get_type_name()] = counts.get(op.get_type_name(), 0) + 1
    return counts


def onnx_runner(data, threads=None):
    """``run(x) -> [np.ndarray]`` for ONNX bytes on ONNX Runtime's CPU provider (the runtime's
    ``OnnxNetwork``; weights unchecked: quantisation reports them itself)."""
    from ..runtime.onnx_backend import OnnxNetwork

    return OnnxNetwork(data, threads=threads, check_weights=False)


def openvino_runner(ov_model, threads=None, precision="f32"):
    """``run(x) -> [np.ndarray]`` for an ``openvino.Model`` (or IR path) compiled for the CPU with
    the inference precision hint ``precision`` (f32, f16, bf16; INT8 layers stay INT8)."""
    from ..runtime.exported import OpenVinoNetwork

    return OpenVinoNetwork(ov_model, threads=threads, precision=precision, check_weights=False)


@torch.no_grad()
def relative_error(model, run, images):
    """Largest ``|run(x) - model(x)| / max |model(x)|`` over outputs and the ``images`` batch."""
    from .formats import relative_difference

    worst = 0.0
    for image in images:
        x = torch.from_numpy(np.ascontiguousarray(image[None], np.float32))
        worst = max(worst, relative_difference(_as_tuple(model.eval()(x)), run(x.numpy())))
    return worst


# ------------------------------------------------------------------------- accuracy and latency

class Variant:
    """One model to compare: ``label``, ``runtime`` (pytorch, onnx, openvino), ``precision``
    (float32, int8, float16, bfloat16) and ``make(threads) -> a runtime network or an nn.Module``."""

    def __init__(self, label, runtime, precision, make):
        self.label, self.runtime, self.precision, self.make = label, runtime, precision, make
        self.ap = None
        self.error = None
        self.timings = {}


# Largest |quantised - PyTorch| / max |PyTorch| with which ``litepose quantize`` writes a model:
# INT8 costs accuracy (measured as AP, not bounded here); beyond this the quantisation is broken.
CHECK_TOLERANCE = 1.0
# What build_variants asks of each quantiser, recorded in the INT8 models' metadata.
ONNX_SETTINGS = {"per_channel": True, "calibrate_method": "minmax"}
OPENVINO_SETTINGS = {"preset": "performance", "fast_bias_correction": True}


def int8_facts(tool, scheme, settings, kept_float, images, calibration=None):
    """The metadata's ``quantization`` (``litepose.runtime.metadata``) of an INT8 model made by
    ``tool`` with ``settings``, ``kept_float`` ({kind: [names]}) in float, calibrated on
    ``images``; ``calibration``: where the images came from (split, augment, seed)."""
    return {"precision": "int8", "tool": tool, "scheme": scheme, "settings": dict(settings),
            "kept_float": {kind: list(names) for kind, names in kept_float.items()},
            "calibration": {"images": int(len(images)), "input_size": int(images.shape[-1]), **(calibration or {})}}


def save_model(artefact, path):
    """Write a model ``build_variants`` made: ONNX bytes to ``path``, an ``openvino.Model`` to
    ``path`` (``.xml``) and the ``.bin`` beside it (the weights as they are)."""
    if isinstance(artefact, (bytes, bytearray)):
        with open(path, "wb") as handle:
            handle.write(artefact)
        return
    import openvino as ov

    ov.save_model(artefact, os.fspath(path), compress_to_fp16=False)


def build_variants(model, images, runtimes=("onnx", "openvino"), half=False, exclude_op_types=(), exclude_nodes=(),
                   ignored_types=(), ignored_names=(), log=print, exclude_patterns=(), ignored_patterns=(),
                   built=None, calibration=None):
    """PyTorch eager, then per runtime float32, INT8 and (``half``) float16 / bfloat16 variants of
    ``model``, quantised on ``images``. Returns ``(variants, artefacts)`` where ``artefacts`` holds
    the float and quantised models (``onnx_float``, ``onnx_int8``, ``onnx_fp16``, ``openvino_float``,
    ``openvino_int8``). ``built(key, artefact, quantization)``, when given, is called as soon as
    each artefact exists, with how it was quantised (``int8_facts``; None for float16):
    ``litepose quantize`` checks and saves the models there, with their metadata, so an
    interruption keeps those already made. ``calibration``: where ``images`` came from."""
    built = built or (lambda key, artefact, quantization: None)
    variants = [Variant("PyTorch eager", "pytorch", "float32", lambda threads: model)]
    artefacts = {}
    if "onnx" in runtimes:
        artefacts["onnx_float"] = onnx_float(model, int(images.shape[-1]))
        log("quantising for ONNX Runtime (QDQ, u8 activations, s8 per-channel weights)")
        artefacts["onnx_int8"] = quantize_onnx(artefacts["onnx_float"], images, exclude_op_types, exclude_nodes,
                                              exclude_patterns, **ONNX_SETTINGS)
        built("onnx_int8", artefacts["onnx_int8"],
              int8_facts("onnxruntime", "static QDQ: uint8 activations (asymmetric), int8 weights (symmetric)",
                         ONNX_SETTINGS, {"op_types": exclude_op_types, "nodes": exclude_nodes,
                                         "patterns": exclude_patterns}, images, calibration))
        variants.append(Variant("ONNX Runtime", "onnx", "float32",
                                lambda t: onnx_runner(artefacts["onnx_float"], t)))
        variants.append(Variant("ONNX Runtime", "onnx", "int8",
                                lambda t: onnx_runner(artefacts["onnx_int8"], t)))
        if half:
            artefacts["onnx_fp16"] = onnx_half(artefacts["onnx_float"])
            built("onnx_fp16", artefacts["onnx_fp16"], None)
            variants.append(Variant("ONNX Runtime", "onnx", "float16",
                                    lambda t: onnx_runner(artefacts["onnx_fp16"], t)))
    if "openvino" in runtimes:
        artefacts["openvino_float"] = openvino_float(model, int(images.shape[-1]))
        log("quantising for OpenVINO (NNCF)")
        artefacts["openvino_int8"] = quantize_openvino(artefacts["openvino_float"], images, ignored_types,
                                                       ignored_names, ignored_patterns, **OPENVINO_SETTINGS)
        built("openvino_int8", artefacts["openvino_int8"],
              int8_facts("nncf", "nncf.quantize: FakeQuantize, int8 weights and activations", OPENVINO_SETTINGS,
                         {"types": ignored_types, "names": ignored_names, "patterns": ignored_patterns}, images,
                         calibration))
        variants.append(Variant("OpenVINO", "openvino", "float32",
                                lambda t: openvino_runner(artefacts["openvino_float"], t, "f32")))
        variants.append(Variant("OpenVINO", "openvino", "int8",
                                lambda t: openvino_runner(artefacts["openvino_int8"], t, "f32")))
        if half:
            for precision, hint in (("float16", "f16"), ("bfloat16", "bf16")):
                if _openvino_supports(hint):
                    variants.append(Variant("OpenVINO", "openvino", precision,
                                            (lambda h: lambda t: openvino_runner(
                                                artefacts["openvino_float"], t, h))(hint)))
    return variants, artefacts


def _openvino_supports(hint):
    import openvino as ov

    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return {"f16": "FP16", "bf16": "BF16"}[hint] in capabilities


def measure_errors(model, variants, images):
    """Each variant's largest relative output difference from ``model`` on ``images``."""
    for variant in variants:
        if variant.runtime == "pytorch":
            variant.error = 0.0
            continue
        module = variant.make(None)
        variant.error = relative_error(model, module, images)


def measure_latency(variants, input_size, threads, repeats, warmup=3, progress=True):
    """Median and p90 network latency (ms) of each variant on a ``[1, 3, S, S]`` input with
    ``threads`` intra-op threads, all variants interleaved round by round."""
    from .latency import time_interleaved

    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, input_size, input_size)).astype(np.float32))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    runners = {}
    try:
        for index, variant in enumerate(variants):
            module = variant.make(threads)
            if not isinstance(module, torch.nn.Module):  # a runtime network
                array = x.numpy()
                runners[index] = (lambda run: lambda: run(array))(module)
            else:
                runners[index] = (lambda net: lambda: _torch_forward(net, x))(module.eval())
        timings = time_interleaved(runners, repeats, warmup=warmup, progress=progress)
    finally:
        torch.set_num_threads(previous)
    for index, variant in enumerate(variants):
        variant.timings[(input_size, threads)] = timings[index]


def _torch_forward(net, x):
    with torch.inference_mode():
        return net(x)


def report_table(variants, keys):
    """Markdown table: runtime, precision, AP (and change against the runtime's float32), error,
    then median / p90 ms and speed-up over PyTorch eager and over the runtime's float32 per
    ``(input_size, threads)`` key."""
    head = ["Runtime", "Precision", "AP", "ΔAP vs float32", "max rel. error"]
    for size, threads in keys:
        head += [f"ms {size}px {threads}T (p90)", "× eager", "× float32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    eager = next((v for v in variants if v.runtime == "pytorch"), None)
    for variant in variants:
        base = next((v for v in variants if v.runtime == variant.runtime and v.precision == "float32"), None)
        ap = f"{variant.ap:.3f}" if variant.ap is not None else "–"
        delta = (f"{100 * (variant.ap - base.ap):+.1f} pt" if variant.ap is not None and base is not None
                 and base.ap is not None and base is not variant else "–")
        error = f"{variant.error:.3g}" if variant.error is not None else "–"
        row = [variant.label, variant.precision, ap, delta, error]
        for key in keys:
            timing = variant.timings.get(key)
            if timing is None:
                row += ["–", "–", "–"]
                continue
            row.append(f"{timing.median_ms:.2f} ({timing.p90_ms:.2f})")
            row.append(f"{eager.timings[key].median_ms / timing.median_ms:.2f}" if eager and key in eager.timings else "–")
            row.append(f"{base.timings[key].median_ms / timing.median_ms:.2f}" if base and key in base.timings else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
