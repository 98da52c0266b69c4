"""Edge-runtime exports (litepose.deploy.formats, tools/export.py) and INT8 quantisation
(litepose.deploy.quantize): a tiny LitePose (mobile_configs/quickstart.json) at 64 px, each
format checked in its own runtime where its package is installed (skipped with the reason
otherwise)."""

import json
import os
import re
import runpy
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from helpers import randomize_
from litepose.config import load_config
from litepose.deploy import formats
from litepose.deploy.export import ExportError
from litepose.deploy.formats import FORMATS, export_checked, output_files
from litepose.errors import LitePoseError
from litepose.models import build_model

SIZE = 64
CFG = REPO / "experiments" / "synthetic" / "quickstart.yaml"
ARCH = REPO / "mobile_configs" / "quickstart.json"
# Formats whose conversion takes long here (LiteRT: about 9 s for the tiny model, litert-torch's
# import with JAX and its conversion): excluded from the default run (python -m pytest -m slow).
SLOW_FORMATS = {"tflite"}
# Dynamic input (the default where the runtime has it) is checked at a second, non-square size.
DYNAMIC = set(formats.DYNAMIC_FORMATS)


def tiny_config():
    return load_config(str(CFG), [])


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return randomize_(build_model(tiny_config(), str(ARCH)), seed).eval()


def missing(fmt):
    """Why ``fmt`` cannot be tested here (a package that is not installed), or None. Looked up
    without importing: TensorFlow, OpenVINO and coremltools take seconds to import."""
    import importlib.util

    for module, package in formats.PACKAGES[fmt]:
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -e '.[export]')"
    return None


def needs(fmt):
    reason = missing(fmt)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def suffix(fmt):
    return formats.SUFFIXES[fmt]


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=[needs(f)] + ([pytest.mark.slow] if f in SLOW_FORMATS else []))
                                 for f in FORMATS])
def test_each_format_exports_checked_against_pytorch_with_its_metadata(model, fmt, tmp_path):
    from litepose.runtime.exported import detect_format, open_network

    checkpoint = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), checkpoint)
    out = tmp_path / "out" / f"tiny{suffix(fmt)}"
    report = export_checked(fmt, model, out, SIZE, cfg=tiny_config(), checkpoint=checkpoint)
    assert report.folded == 31 and report.dynamic == (fmt in DYNAMIC)
    assert report.sizes == ([(64, 64), (32, 128)] if fmt in DYNAMIC else [(64, 64)])
    for path in output_files(fmt, out):
        assert os.path.exists(path)
    # Nothing else left in the folder: the temporary export folder is gone.
    assert sorted(os.listdir(out.parent)) == sorted(os.path.basename(p) for p in output_files(fmt, out))
    assert detect_format(out) == fmt
    if fmt == "coreml":  # no Core ML runtime on Linux: the ML program's structure is checked
        import coremltools as ct

        from litepose.runtime.metadata import KEY, ExportMetadata

        assert "no batch_norm" in report.check and "2 outputs" in report.check
        stored = ct.models.MLModel(str(out), skip_model_load=True).user_defined_metadata[KEY]
        assert ExportMetadata.from_json(stored) == report.metadata and not report.metadata.dynamic
        return
    assert report.difference <= 1e-4, report.difference
    # The runtime gives back what was written: dataset, joints, input, test settings, source.
    meta = open_network(out).metadata
    assert meta == report.metadata and meta.format == fmt
    assert meta.dataset["joint_names"][:2] == ["nose", "left_eye"] and meta.dataset["flip_index"][:3] == [0, 2, 1]
    assert meta.input_size == SIZE and meta.dynamic == (fmt in DYNAMIC)
    assert meta.fixed_hw == (None if fmt in DYNAMIC else (SIZE, SIZE))
    assert meta.test["TEST.SCALE_FACTOR"] == [1] and meta.outputs[0] == {"name": "output0", "heatmaps": True,
                                                                          "tags": True}
    assert meta.architecture == json.loads(ARCH.read_text())
    assert meta.checkpoint["path"] == str(checkpoint) and len(meta.checkpoint["sha256"]) == 64


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=needs(f)) for f in ("onnx", "openvino", "ncnn")])
def test_float16_exports_agree_within_the_float16_tolerance(model, fmt, tmp_path):
    from litepose.runtime.exported import open_network

    out = tmp_path / f"tiny16{suffix(fmt)}"
    report = export_checked(fmt, model, out, SIZE, half=True, cfg=tiny_config())
    assert report.tolerance == formats.DEFAULT_TOLERANCE[True]
    assert 0 < report.difference <= report.tolerance
    assert open_network(out).metadata.half  # ncnn and OpenVINO then run it in float16 by themselves


@needs("onnx")
def test_failed_check_writes_nothing(model, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "relative_difference", lambda expected, actual: 0.5)
    with pytest.raises(ExportError, match=r"onnx differs from PyTorch by 0.5 .*nothing written"):
        export_checked("onnx", model, tmp_path / "bad.onnx", SIZE)
    assert os.listdir(tmp_path) == []


@needs("openvino")
def test_failed_check_of_a_two_file_format_writes_neither_file(model, tmp_path):
    with pytest.raises(ExportError, match="nothing written"):
        export_checked("openvino", model, tmp_path / "bad.xml", SIZE, checker=lambda *args: 1.0)
    assert os.listdir(tmp_path) == []


@needs("onnx")
def test_existing_output_is_kept_without_force(model, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous")
    with pytest.raises(LitePoseError, match="already exists"):
        export_checked("onnx", model, out, SIZE)
    assert out.read_bytes() == b"previous"
    export_checked("onnx", model, out, SIZE, force=True, checker=lambda *args: 0.0)
    assert out.read_bytes() != b"previous"


def test_unsupported_options_are_one_line(model, tmp_path):
    with pytest.raises(ExportError, match="--fp16 is not available for torchscript"):
        export_checked("torchscript", model, tmp_path / "m.pt", SIZE, half=True)
    with pytest.raises(ExportError, match="--dynamic is not available for tflite .its input size is fixed"):
        export_checked("tflite", model, tmp_path / "m.tflite", SIZE, dynamic=True)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_non_finite_weights_are_named_before_any_export(fmt, tmp_path):
    """Not "differs by inf": the checkpoint and the tensor are named, nothing is written."""
    broken = tiny_model()
    with torch.no_grad():
        broken.get_parameter("first.0.0.weight").view(-1)[3] = float("inf")
    checkpoint = tmp_path / "broken.pth"
    with pytest.raises(ExportError, match=rf"^{re.escape(str(checkpoint))} holds NaN or infinite values in 1 tensors "
                                          rf"\(first: first.0.0.weight\); nothing written$"):
        export_checked(fmt, broken, tmp_path / f"m{suffix(fmt)}", SIZE, checkpoint=checkpoint)
    assert os.listdir(tmp_path) == []


def test_default_output_names_never_collide_between_formats():
    names = [path for fmt in FORMATS for path in output_files(fmt, formats.default_output(fmt, "/m/xs.pth.tar"))]
    assert len(names) == len(set(names)), names
    assert formats.default_output("ncnn", "/m/xs.pth.tar") == "/m/xs.ncnn.param"
    assert output_files("ncnn", "/m/xs.ncnn.param")[1] == "/m/xs.ncnn.bin"
    assert output_files("openvino", "/m/xs.xml")[1] == "/m/xs.bin"


@pytest.mark.parametrize("fmt,other", [("ncnn", "m.xml"), ("openvino", "m.param")])
def test_an_export_never_takes_the_weights_file_of_another_format(model, tmp_path, fmt, other):
    (tmp_path / other).write_text("another model")
    (tmp_path / "m.bin").write_bytes(b"its weights")
    main = tmp_path / ("m.param" if fmt == "ncnn" else "m.xml")
    with pytest.raises(ExportError, match=rf"m.bin holds the weights of .*{other}; exporting {fmt} there would break "
                                          rf"it: name the output .*m{re.escape(suffix(fmt))}$"):
        export_checked(fmt, model, main, SIZE, force=True)
    assert (tmp_path / "m.bin").read_bytes() == b"its weights" and not main.exists()


def test_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(formats.PACKAGES, "ncnn", [("no_such_module_here", "no-such-package")])
    with pytest.raises(ExportError, match=r"^ncnn export needs the no-such-package package .*pip install") as info:
        formats.require("ncnn")
    assert "\n" not in str(info.value)


def test_check_images_fall_back_to_synthetic_images(tmp_path):
    x, source = formats.check_images(SIZE, 2, image_dir=str(tmp_path))  # an empty folder
    assert x.shape == (2, 3, SIZE, SIZE) and "synthetic" in source
    assert -3 < float(x.min()) < float(x.max()) < 3  # normalised


# ------------------------------------------------------------------------------- tools/export.py

@needs("onnx")
def test_export_tool_writes_and_refuses_to_overwrite(model, tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), checkpoint)
    out = tmp_path / "out" / "tiny.onnx"
    argv = ["export.py", "--format", "onnx", "--cfg", str(CFG), "TEST.MODEL_FILE", str(checkpoint),
            "--output", str(out), "--input-size", str(SIZE)]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "tools" / "export.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert exit_info.value.code == 0, printed
    assert "folded 31 BatchNorm layers" in printed and f"wrote {out}" in printed
    assert "metadata: coco (17 joints), float32, input size 64 dynamic, from " in printed
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "tools" / "export.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "pass --force" in err


# ------------------------------------------------------------------------------------------ INT8

INT8_TOLERANCE = 0.25  # largest |INT8 - float| / max |float| accepted for the random tiny model


def calibration(count=16):
    import tempfile

    with tempfile.TemporaryDirectory() as empty:  # no real images there: synthetic ones
        x, _ = formats.check_images(SIZE, count, image_dir=empty)
    return x.numpy()


@needs("onnx")
def test_onnx_int8_runs_and_stays_close_to_float(model):
    from litepose.deploy.quantize import onnx_op_types, onnx_runner, quantize_onnx, relative_error

    images = calibration()
    data = quantize_onnx(model, images)
    ops = onnx_op_types(data)
    assert ops.get("QuantizeLinear", 0) > 10 and ops.get("DequantizeLinear", 0) > 30
    error = relative_error(model, onnx_runner(data), images[:4])
    assert 0 < error < INT8_TOLERANCE


@needs("onnx")
def test_onnx_int8_keeps_excluded_op_types_in_float(model):
    import onnx

    from litepose.deploy.quantize import quantize_onnx

    data = quantize_onnx(model, calibration(4), exclude_op_types=["ConvTranspose"])
    graph = onnx.load_from_string(data).graph
    produced = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type == "ConvTranspose":  # its weight is a float initializer, not a DequantizeLinear output
            assert node.input[1] not in produced or produced[node.input[1]].op_type != "DequantizeLinear"


@needs("onnx")
def test_a_quantisation_variant_is_a_runtime_network_with_the_torch_outputs(model):
    from litepose.deploy.quantize import onnx_float, onnx_runner
    from litepose.runtime.network import Network

    network = onnx_runner(onnx_float(model, SIZE))
    x = calibration(2)
    outputs = network(x)
    with torch.no_grad():
        expected = model(torch.from_numpy(x))
    assert isinstance(network, Network)  # what evaluate() and PoseEstimator run
    assert all(isinstance(o, np.ndarray) for o in outputs)
    assert max(float(np.abs(a - b.numpy()).max()) for a, b in zip(outputs, expected)) < 1e-4


@needs("openvino")
def test_openvino_int8_runs_and_stays_close_to_float(model):
    pytest.importorskip("nncf", reason="nncf is not installed")
    from litepose.deploy.quantize import openvino_op_types, openvino_runner, quantize_openvino, relative_error

    images = calibration()
    quantized = quantize_openvino(model, images)
    assert openvino_op_types(quantized).get("FakeQuantize", 0) > 10
    error = relative_error(model, openvino_runner(quantized), images[:4])
    assert 0 < error < INT8_TOLERANCE


def test_measuring_ap_and_latency_puts_the_callers_thread_count_back(model, monkeypatch):
    import types

    from litepose import evaluation
    from litepose.commands.quantize import measure_ap
    from litepose.deploy.quantize import Variant, measure_latency

    seen = []

    def fake_evaluate(cfg, module, **kwargs):
        seen.append(torch.get_num_threads())
        return types.SimpleNamespace(ap=0.5)

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    previous = torch.get_num_threads()
    target = 1 if previous != 1 else 2
    variants = [Variant("PyTorch", "pytorch", "float32", lambda threads: model)]
    measure_ap(None, variants, 64, threads=target, log=lambda *_: None, progress=False)
    assert seen == [target] and variants[0].ap == 0.5
    assert torch.get_num_threads() == previous
    measure_latency(variants, 64, target, repeats=1, warmup=0, progress=False)
    assert torch.get_num_threads() == previous
    assert (64, target) in variants[0].timings
