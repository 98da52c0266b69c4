"""The one exporter: every format from one place, with its metadata, a numerical check in its
own runtime, and an atomic write (``tools/export.py`` is its command line).

    from litepose.deploy.formats import export_checked
    report = export_checked("openvino", model, "litepose.xml", 448, cfg=cfg)   # folded, checked, written

Formats (``FORMATS``) and what checks them here (the runtime is ``litepose.runtime.exported.
open_network``, the one that runs the export afterwards):

=========== ============================ ============================== ========== ================
format      files (default suffixes)     converter (package)            input      metadata
=========== ============================ ============================== ========== ================
onnx        M.onnx                       torch.onnx (TorchScript-based) dynamic    metadata_props
openvino    M.xml + M.bin                openvino.convert_model         dynamic    rt_info
tflite      M.tflite                     litert_torch.convert           fixed      sidecar JSON
ncnn        M.ncnn.param + M.ncnn.bin    pnnx (TorchScript -> ncnn)     dynamic    sidecar JSON
coreml      M.mlpackage (folder)         coremltools (ML program)       fixed      user_defined
torchscript M.torchscript.pt             torch.jit.trace                dynamic    _extra_files
=========== ============================ ============================== ========== ================

"dynamic": any input size (a second, non-square size is checked too); ``dynamic=False`` fixes
the size (``PoseEstimator`` then letterboxes frames to it). TFLite (the converter fixes the
shape) and Core ML (not runnable here) are fixed-size only. The metadata
(``litepose.runtime.metadata``) is written when ``cfg`` is given, and read back from the
written files by the check.

Every export folds BatchNorm first (``fuse_bn``), is written into a temporary folder beside
the output, runs there on real images against the *unfolded* PyTorch model, and only when the
largest difference, relative to the largest PyTorch output value, is within the tolerance is
it moved into place (``os.replace``, one file at a time; an existing output is only replaced
with ``force``). A failed check leaves nothing behind.

``litepose quantize`` writes its INT8 and float16 models through ``export_checked`` too
(``write=``: the model made beforehand, ``quantization=``: how), so that they carry the same
metadata and pass the same check and atomic write as any export.

``half=True`` asks for a float16 model where the format has one: ONNX (float16 weights and
arithmetic, float32 inputs and outputs), OpenVINO (float16 weights, run with the f16
precision hint), ncnn (float16 weights; ncnn computes in float16 where the CPU can), Core ML
(float16 compute precision). TFLite and TorchScript have no float16 export here.
"""

import contextlib
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import LitePoseError

from ..runtime.exported import (DYNAMIC_FORMATS, FORMATS, HALF_FORMATS, export_option_problem, ncnn_bin_path,
                                open_network, openvino_core)
from ..runtime.metadata import EXTRA_FILE, KEY, build_metadata, sidecar_path
from .export import ExportError, INPUT_NAME, _as_tuple, _first_line, _TupleOutputs, export_onnx
from .fuse import batchnorm_names, fuse_bn

# Packages each format needs (import name, PyPI name); pyproject's ``export`` extra installs them.
PACKAGES = {
    "onnx": [("onnx", "onnx"), ("onnxruntime", "onnxruntime")],
    "openvino": [("openvino", "openvino")],
    "tflite": [("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")],
    "ncnn": [("pnnx", "pnnx"), ("ncnn", "ncnn")],
    "coreml": [("coremltools", "coremltools")],
    "torchscript": [],
}
# Default suffixes: no two formats write the same file name (OpenVINO's M.bin, ncnn's M.ncnn.bin).
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "tflite": ".tflite", "ncnn": ".ncnn.param", "coreml": ".mlpackage",
            "torchscript": ".torchscript.pt"}
# Largest |runtime - PyTorch| / max |PyTorch| accepted by default: float32 runtimes agree to
# ~1e-6 (reordered sums); float16 and bfloat16 to ~1e-3 to 1e-2.
DEFAULT_TOLERANCE = {False: 1e-3, True: 3e-2}


def require(fmt, purpose="export"):
    """Import the packages of ``fmt``; one ``ExportError`` line naming the missing one otherwise."""
    modules = []
    for module, package in PACKAGES[fmt]:
        try:
            modules.append(__import__(module))
        except Exception as exc:  # ImportError, or a broken install raising anything at import
            raise ExportError(f"{fmt} {purpose} needs the {package} package ({_first_line(exc)}): "
                              f"pip install {package}, or pip install -e '.[export]'") from None
    return modules


def available(fmt):
    """Whether the packages of ``fmt`` import here."""
    try:
        require(fmt)
        return True
    except ExportError:
        return False


def output_files(fmt, output):
    """The paths an export of ``fmt`` to ``output`` writes (the main file first; ncnn and
    TFLite keep their metadata in a sidecar JSON)."""
    output = os.fspath(output)
    if fmt == "openvino":
        return [output, os.path.splitext(output)[0] + ".bin"]
    if fmt == "ncnn":
        return [output, ncnn_bin_path(output), sidecar_path(output)]
    if fmt == "tflite":
        return [output, sidecar_path(output)]
    return [output]


def default_output(fmt, checkpoint):
    """``M<suffix>`` beside the checkpoint ``M.pth`` / ``M.pth.tar`` / ``M.pt``."""
    checkpoint = os.fspath(checkpoint)
    stem = checkpoint
    for ending in (".tar", ".pth", ".pt", ".ckpt"):
        if stem.lower().endswith(ending):
            stem = stem[:-len(ending)]
    return stem + SUFFIXES[fmt]


def check_outputs(fmt, output, force=False, metadata=True, inputs=()):
    """Before any work: every file an export of ``fmt`` to ``output`` writes can be written
    (``check_output_file``: none exists unless ``force``), and none is another model's
    (``.bin`` shared by ``M.xml`` and ``M.param``). Returns the files (without the sidecar when
    there is no ``metadata``). ``inputs``: the files the run reads, which no output may be,
    even with ``force``."""
    from ..utils.io import check_output_file

    files = output_files(fmt, output)
    if not metadata:
        files = [p for p in files if not p.endswith(sidecar_path(""))]
    for index, path in enumerate(files):  # an .mlpackage is a folder
        check_output_file(path, force=force, what="--output" if index == 0 else f"{fmt} output",
                          folder=fmt == "coreml", inputs=inputs)
    _check_no_collision(fmt, files)
    return files


def _check_no_collision(fmt, files):
    """An ncnn export must not take the ``.bin`` of an OpenVINO IR beside it, nor the reverse
    (``M.param`` and ``M.xml`` would share ``M.bin``): one line naming the other model."""
    other = {"ncnn": ".xml", "openvino": ".param"}.get(fmt)
    if other is None:
        return
    weights = files[1]
    owner = os.path.splitext(weights)[0] + other
    if os.path.exists(owner):
        raise ExportError(f"{weights} holds the weights of {owner}; exporting {fmt} there would break it: "
                          f"name the output {os.path.splitext(weights)[0]}{SUFFIXES[fmt]}")


# ---------------------------------------------------------------------------------- check inputs

def _image_files(directory):
    names = sorted(os.listdir(directory))
    return [os.path.join(directory, n) for n in names if n.lower().endswith((".jpg", ".jpeg", ".png"))]


def check_images(input_size, count=2, image_dir=None, seed=0):
    """``[count, 3, H, W]`` normalised inputs from the real images of ``image_dir`` (the tools
    pass ``../shared/data/coco_mini/images``), each resized to ``input_size``; synthetic images
    (``litepose.data.synthetic.make_image``) without one or for what it lacks. Returns
    ``(tensor, source)`` where ``source`` says which images were used."""
    import cv2

    from ..data.normalize import image_to_tensor

    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    images, source = [], None
    if image_dir is not None and not os.path.isdir(image_dir):
        from ..errors import DataError

        raise DataError(f"image folder not found: {image_dir}")
    directory = image_dir
    if directory:
        from ..data.coco_format import read_image

        for path in _image_files(directory)[:count]:
            images.append(read_image(path))
        source = f"{len(images)} images of {directory}"
    if len(images) < count:
        from ..data.synthetic import make_image

        rng = np.random.default_rng(seed)
        while len(images) < count:
            images.append(make_image(rng)[0])
        source = (source + " + " if source else "") + "synthetic images (litepose.data.synthetic)"
    batch = [image_to_tensor(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)) for image in images]
    return torch.stack(batch), source


# ------------------------------------------------------------------------------------- exporters

def _quiet():
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _export_onnx(model, x, path, half, dynamic, opset):
    import onnx

    proto = onnx.load_from_string(export_onnx(model, tuple(x.shape[2:]), dynamic=dynamic, opset=opset))
    try:  # the converter's graph (the float16 rewrite leaves its casts unsorted, which ONNX Runtime takes)
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ExportError(f"the exported ONNX model is invalid: {_first_line(exc)}") from exc
    if half:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with _quiet():
            proto = convert_float_to_float16(proto, keep_io_types=True)
    with open(path, "wb") as handle:
        handle.write(proto.SerializeToString())


def _export_openvino(model, x, path, half, dynamic, opset):
    import openvino as ov

    shape = [-1, 3, -1, -1] if dynamic else list(x[:1].shape)
    with _quiet():
        converted = ov.convert_model(_TupleOutputs(model), example_input=x[:1], input=[ov.PartialShape(shape)])
    converted.inputs[0].get_tensor().set_names({INPUT_NAME})
    for index, node in enumerate(converted.outputs):
        node.get_tensor().set_names({f"output{index}"})
    ov.save_model(converted, path, compress_to_fp16=half)


def _export_tflite(model, x, path, half, dynamic, opset):
    import litert_torch

    with _quiet():
        edge = litert_torch.convert(_TupleOutputs(model).eval(), (x[:1],))
        edge.export(path)


def _export_ncnn(model, x, path, half, dynamic, opset):
    import pnnx

    work = os.path.dirname(path)
    stem = os.path.join(work, "pnnx_work")
    with _quiet():
        pnnx.export(_TupleOutputs(model).eval(), stem + ".pt", (x[:1],), check_trace=False, fp16=half,
                    ncnnparam=path, ncnnbin=ncnn_bin_path(path), ncnnpy=stem + "_ncnn.py",
                    pnnxparam=stem + ".pnnx.param", pnnxbin=stem + ".pnnx.bin", pnnxpy=stem + "_pnnx.py",
                    pnnxonnx=stem + ".pnnx.onnx")
    if not os.path.isfile(path):
        raise ExportError("pnnx wrote no ncnn model")
    param = open(path).read()
    if "pnnx." in param:  # an operator ncnn has no layer for, left as a pnnx node
        bad = sorted({line.split()[0] for line in param.splitlines() if line.startswith("pnnx.")})
        raise ExportError(f"pnnx left operators ncnn cannot run: {', '.join(bad)}")


def _export_coreml(model, x, path, half, dynamic, opset):
    import coremltools as ct

    with _quiet():
        traced = torch.jit.trace(_TupleOutputs(model).eval(), (x[:1],), check_trace=False)
        count = len(_as_tuple(model(x[:1])))
        converted = ct.convert(traced, inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(x[:1].shape))],
                               outputs=[ct.TensorType(name=f"output{i}") for i in range(count)],
                               convert_to="mlprogram",
                               compute_precision=ct.precision.FLOAT16 if half else ct.precision.FLOAT32)
        converted.save(path)


def _export_torchscript(model, x, path, half, dynamic, opset):
    with _quiet():
        traced = torch.jit.trace(_TupleOutputs(model).eval(), (x[:1],), check_trace=False)
        torch.jit.save(traced, path)


def embed_metadata(fmt, path, meta):
    """Write ``meta`` (an ``ExportMetadata``) into the export of ``fmt`` at ``path``, where the
    format keeps it (module doc): the one place metadata is written, by ``export_checked`` (for
    ``litepose export`` and for ``litepose quantize``'s INT8 and float16 models). ``path`` is
    rewritten in place: call it on files not yet moved into place."""
    text = meta.to_json()
    path = os.fspath(path)
    with _quiet():
        if fmt == "onnx":
            import onnx

            proto = onnx.load(path)
            onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, KEY: text})
            onnx.save(proto, path)
        elif fmt == "openvino":
            import openvino as ov

            model = openvino_core().read_model(path)
            model.set_rt_info(text, KEY)
            stem = os.path.splitext(path)[0]
            ov.save_model(model, stem + ".meta.xml", compress_to_fp16=False)  # the weights as they are
            del model
            os.replace(stem + ".meta.bin", stem + ".bin")
            os.replace(stem + ".meta.xml", path)
        elif fmt == "torchscript":
            module = torch.jit.load(path, map_location="cpu")
            torch.jit.save(module, path, _extra_files={EXTRA_FILE: text})
        elif fmt == "coreml":
            import coremltools as ct

            model = ct.models.MLModel(path, skip_model_load=True)
            model.user_defined_metadata[KEY] = text
            model.save(path + ".meta.mlpackage")  # the package's weights are read while it is saved
            shutil.rmtree(path)
            os.replace(path + ".meta.mlpackage", path)
        elif fmt in ("ncnn", "tflite"):
            with open(sidecar_path(path), "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            raise ExportError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


_EXPORTERS = {"onnx": _export_onnx, "openvino": _export_openvino, "tflite": _export_tflite, "ncnn": _export_ncnn,
              "coreml": _export_coreml, "torchscript": _export_torchscript}


@contextlib.contextmanager
def _silence_fd():
    """Send what converters print on stdout and stderr (pnnx's pass log, progress bars, native
    logs) to /dev/null; their errors arrive as exceptions."""
    import sys

    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


# --------------------------------------------------------------------------------------- runners

# ---------------------------------------------------------------------------------------- checks

def relative_difference(expected, actual):
    """Largest ``|actual - expected| / max |expected|`` over the outputs (inf where either is
    NaN or infinite: a NaN never passes a tolerance); a wrong count or shape raises
    ``ExportError``."""
    if len(actual) != len(expected):
        raise ExportError(f"the exported model has {len(actual)} outputs, PyTorch {len(expected)}")
    worst = 0.0
    for e, a in zip(expected, actual):
        e = np.asarray(e.detach().cpu() if torch.is_tensor(e) else e, np.float64)
        a = np.asarray(a.detach().cpu() if torch.is_tensor(a) else a, np.float64)
        if e.shape != a.shape:
            raise ExportError(f"exported output shape {list(a.shape)} differs from PyTorch {list(e.shape)}")
        if not e.size:
            continue
        diff = float(np.abs(e - a).max() / max(float(np.abs(e).max()), 1e-12))
        worst = max(worst, diff if np.isfinite(diff) else float("inf"))
    return worst


def nonfinite_weights(model):
    """Names of the parameters and floating-point buffers of ``model`` holding NaN or inf."""
    return [name for name, tensor in list(model.named_parameters()) + list(model.named_buffers())
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def check_coreml(path, model, x, half):
    """Core ML cannot run on Linux: check the saved ML program's structure instead (loads
    without compiling, input name and shape, one output per PyTorch output, as many
    convolutions as the folded PyTorch model, and no BatchNorm left). Returns a description."""
    import coremltools as ct

    with _quiet():
        loaded = ct.models.MLModel(path, skip_model_load=True)
    spec = loaded.get_spec()
    inputs = [(i.name, list(i.type.multiArrayType.shape)) for i in spec.description.input]
    if inputs != [(INPUT_NAME, list(x[:1].shape))]:
        raise ExportError(f"Core ML input {inputs} is not [{INPUT_NAME!r}, {list(x[:1].shape)}]")
    outputs = [o.name for o in spec.description.output]
    expected = len(_as_tuple(model(x[:1])))
    if len(outputs) != expected:
        raise ExportError(f"Core ML model has {len(outputs)} outputs, PyTorch {expected}")
    ops = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                ops[op.type] = ops.get(op.type, 0) + 1
    convs = sum(1 for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    found = ops.get("conv", 0) + ops.get("conv_transpose", 0)
    if found != convs:
        raise ExportError(f"Core ML program has {found} convolutions, the folded PyTorch model {convs}")
    if ops.get("batch_norm", 0):
        raise ExportError(f"Core ML program kept {ops['batch_norm']} batch_norm ops")
    return (f"structure only: input {INPUT_NAME} {list(x[:1].shape)}, {len(outputs)} outputs, {found} convolutions, "
            f"{sum(ops.values())} ops, no batch_norm")


@dataclass
class ExportReport:
    """What ``export_checked`` did: ``difference`` is the largest |runtime - PyTorch| relative to
    the largest PyTorch output value (None for Core ML, checked structurally: ``check``)."""
    fmt: str
    files: list
    difference: float = None
    tolerance: float = None
    check: str = ""
    inputs: str = ""
    folded: int = 0
    sizes: list = field(default_factory=list)
    metadata: object = None
    dynamic: bool = False

    def lines(self):
        text = [f"folded {self.folded} BatchNorm layers"]
        if self.difference is not None:
            text.append(f"max |{self.fmt} - PyTorch| / max |PyTorch| on {self.inputs}: {self.difference:.3g} "
                        f"(tolerance {self.tolerance:g})")
        else:
            text.append(f"checked: {self.check}")
        checked = " and ".join(f"{w}x{h}" for h, w in self.sizes)
        text.append(f"input: {'dynamic (checked at ' + checked + ')' if self.dynamic else 'fixed ' + checked}")
        if self.metadata is not None:
            meta = self.metadata
            source = f", from {meta.checkpoint['path']} (sha256 {meta.checkpoint['sha256'][:12]})" \
                if meta.checkpoint else ""
            text.append(f"metadata: {meta.dataset['name']} ({meta.dataset['num_joints']} joints), {meta.precision}, "
                        f"input size {meta.input_size}{' dynamic' if meta.dynamic else ' fixed'}{source}")
        else:
            text.append("metadata: none (no config given)")
        sizes = ", ".join(f"{os.path.getsize(p) / 1e6:.2f} MB" if os.path.isfile(p) else "folder" for p in self.files)
        text.append(f"wrote {', '.join(self.files)} ({sizes})")
        return text


def export_checked(fmt, model, output, input_size, *, cfg=None, checkpoint=None, half=False, dynamic=None, opset=17,
                   tolerance=None, force=False, image_dir=None, num_images=2, fold=True, checker=None, inputs=(),
                   write=None, quantization=None):
    """Export ``model`` (a LitePose in eval mode, BN unfolded) to ``fmt`` at ``output``, checked.

    ``cfg``: the model's config; with it the export carries its metadata
    (``litepose.runtime.metadata``: dataset, joints, input size, test settings, architecture,
    and ``checkpoint`` (path) with its sha256). ``dynamic``: any input size (default where the
    format has it, ``DYNAMIC_FORMATS``); False fixes the input to ``input_size``. ``inputs``:
    the files the run reads, which no output may be (``check_output_file``).

    Non-finite weights are refused first, naming them. BN is folded (``fold``); the export is
    written into a temporary folder beside ``output``, opened by its runtime
    (``open_network``: the weights it holds checked finite, the metadata read back), run on
    ``num_images`` real images against ``model``, and moved into place only if the relative
    difference is within ``tolerance`` (``DEFAULT_TOLERANCE``); a dynamic export is checked at
    a second, non-square size too. ``checker(fmt, path, model, x, half) -> difference``
    replaces the runtime check (tests). ``inputs``: the files the run reads, which no output
    may be (``check_output_file``). Returns an ``ExportReport``; raises ``ExportError``
    (nothing written) otherwise.

    ``write(path)`` writes a model made beforehand in place of the format's converter
    (``litepose quantize``'s INT8 and float16 models, ``litepose.deploy.quantize.save_model``);
    it is then given its metadata, checked and moved into place as any export.
    ``quantization``: how it was made (the metadata's ``quantization``).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if dynamic is None:
        dynamic = fmt in DYNAMIC_FORMATS
    problem = export_option_problem(fmt, half, dynamic)
    if problem:
        raise ExportError(problem)
    files = check_outputs(fmt, output, force, metadata=cfg is not None, inputs=inputs)
    require(fmt)
    tolerance = DEFAULT_TOLERANCE[bool(half)] if tolerance is None else tolerance
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    model = model.cpu().eval()
    broken = nonfinite_weights(model)
    if broken:
        source = os.fspath(checkpoint) if checkpoint else "the model"
        raise ExportError(f"{source} holds NaN or infinite values in {len(broken)} tensors (first: {broken[0]}); "
                          f"nothing written")
    deployed = fuse_bn(model) if fold else model
    folded = len(batchnorm_names(model)) - len(batchnorm_names(deployed))
    x, source = check_images((height, width), num_images, image_dir)
    sizes = [(height, width)]
    if dynamic and height > 32:
        sizes.append((height - 32, width + 64))
    with torch.no_grad():
        count = len(_as_tuple(model(x[:1])))
    meta = None
    if cfg is not None:
        meta = export_metadata(cfg, fmt, (height, width), dynamic, half, count, model, checkpoint, quantization)

    final_dir = os.path.dirname(os.path.abspath(files[0]))
    os.makedirs(final_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(files[0])}.", suffix=".tmp", dir=final_dir)
    try:
        temp_files = [os.path.join(work, os.path.basename(p)) for p in files]
        try:
            with torch.no_grad(), _silence_fd():
                if write is not None:
                    write(temp_files[0])
                else:
                    _EXPORTERS[fmt](deployed, x, temp_files[0], half, dynamic, opset)
                if meta is not None:
                    embed_metadata(fmt, temp_files[0], meta)
        except ExportError:
            raise
        except Exception as exc:  # converters raise anything; report one line
            raise ExportError(f"{fmt} export failed: {_first_line(exc)}") from exc
        missing = [p for p in temp_files if not os.path.exists(p)]
        if missing:
            raise ExportError(f"{fmt} export wrote no {os.path.basename(missing[0])}")
        report = ExportReport(fmt, files, tolerance=tolerance, inputs=source, folded=folded, sizes=sizes,
                              metadata=meta, dynamic=dynamic)
        if checker is not None:
            report.difference = checker(fmt, temp_files[0], model, x, half)
        elif fmt == "coreml":
            with torch.no_grad():
                report.check = check_coreml(temp_files[0], deployed, x, half)
        else:
            report.difference = _check_runtime(fmt, temp_files[0], model, x, half, sizes, image_dir, meta)
        if report.difference is not None and not report.difference <= tolerance:
            raise ExportError(f"{fmt} differs from PyTorch by {report.difference:.3g} relative to its largest output "
                              f"(tolerance {tolerance:g}); nothing written")
        for temp, final in zip(temp_files, files):
            _move_into_place(temp, final)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_metadata(cfg, fmt, input_hw, dynamic, half, output_count, model=None, checkpoint=None, quantization=None):
    """The ``ExportMetadata`` an export of ``model`` (of ``cfg``, from ``checkpoint``; quantised
    as ``quantization`` says) carries."""
    import hashlib

    from .. import __version__
    from .export import output_names

    source = None
    if checkpoint:
        digest = hashlib.sha256()
        with open(checkpoint, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        source = {"path": os.path.abspath(os.fspath(checkpoint)), "sha256": digest.hexdigest()}
    arch = getattr(model, "active_arch", None) or getattr(model, "arch", None)
    producer = {"litepose": __version__}
    tools = {"torch", *dict(PACKAGES[fmt]).values(), *([quantization["tool"]] if quantization else [])}
    producer.update({k: v for k, v in versions().items() if k in tools})
    return build_metadata(cfg, fmt, input_hw, dynamic, half, output_names(output_count),
                          architecture=dict(arch) if isinstance(arch, dict) else None, checkpoint=source,
                          producer=producer, quantization=quantization)


def _check_runtime(fmt, path, model, x, half, sizes, image_dir, meta):
    try:
        network = open_network(path, fmt, half=half)
    except ExportError:
        raise
    except LitePoseError as exc:  # non-finite weights in the export (a float16 overflow), unreadable metadata
        raise ExportError(f"the {fmt} export cannot be used: {exc}; nothing written") from None
    except Exception as exc:
        raise ExportError(f"the {fmt} runtime cannot load the export: {_first_line(exc)}") from exc
    if meta is not None and network.metadata != meta:
        raise ExportError(f"the {fmt} export does not give back the metadata written into it; nothing written")
    worst = 0.0
    for index, size in enumerate(sizes):
        batch = x if index == 0 else check_images(size, len(x), image_dir)[0]
        with torch.no_grad():
            expected = _as_tuple(model(batch))
        if not all(bool(torch.isfinite(e).all()) for e in expected):
            raise ExportError(f"the model's own outputs are NaN or infinite on the check images ({source_of(x)}); "
                              f"nothing written")
        try:  # one image at a time: static exports have batch 1
            actual = [np.concatenate(outputs) for outputs in zip(*[network(image[None]) for image in batch.numpy()])]
        except Exception as exc:
            raise ExportError(f"the {fmt} runtime failed on the export: {_first_line(exc)}") from exc
        if not all(np.isfinite(a).all() for a in actual):
            raise ExportError(f"the {fmt} export gives NaN or infinite outputs where PyTorch does not"
                              f"{' (a float16 overflow?)' if half else ''}; nothing written")
        worst = max(worst, relative_difference(expected, actual))
    return worst


def source_of(x):
    return f"{len(x)} images of {x.shape[3]}x{x.shape[2]}"


def _move_into_place(temp, final):
    """``os.replace`` for a file; for a folder (Core ML's .mlpackage), the old one is moved aside
    first and removed once the new one is in place."""
    if os.path.isdir(temp):
        old = None
        if os.path.lexists(final):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old.", dir=os.path.dirname(os.path.abspath(final)))
            os.rmdir(old)
            os.replace(final, old)
        os.replace(temp, final)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return
    os.chmod(temp, 0o644)
    os.replace(temp, final)


def versions():
    """``{package: version}`` of the export packages installed here."""
    from importlib import metadata

    names = ["torch", "onnx", "onnxruntime", "openvino", "nncf", "litert-torch", "ai-edge-litert", "pnnx", "ncnn",
             "coremltools"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def time_export(fmt, path, model, input_size, threads=(1, 2), repeats=50, half=False, warmup=3):
    """Median / p90 latency of the export at ``path`` against PyTorch eager (``model``, BN
    unfolded) on one ``[1, 3, S, S]`` image, interleaved round by round, for each thread count.
    Returns ``{threads: {"pytorch": Timing, fmt: Timing}}``."""
    from .latency import time_interleaved

    x = check_images(input_size, 1)[0]
    array = x.numpy()
    results = {}
    previous = torch.get_num_threads()
    try:
        for count in threads:
            torch.set_num_threads(count)
            run = open_network(path, fmt, threads=count, half=half)

            def eager():
                with torch.inference_mode():
                    return model(x)

            results[count] = time_interleaved({"pytorch": eager, fmt: lambda: run(array)}, repeats, warmup=warmup,
                                              progress=False)
    finally:
        torch.set_num_threads(previous)
    return results
