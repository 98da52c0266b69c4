"""Exports as runtime networks (litepose.runtime.exported): the format found from the file, the
metadata read back without PyTorch, non-finite weights refused in every format, and fixed-size
networks letterboxed so that people land where they are in the frame."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import REPO
from litepose.config import load_config
from litepose.deploy import formats
from litepose.deploy.formats import SUFFIXES, export_checked
from litepose.errors import LitePoseError, ModelFileError
from litepose.runtime.exported import detect_format, open_network
from litepose.runtime.metadata import ExportMetadata, build_metadata
from litepose.runtime.network import Network

CFG = REPO / "experiments" / "synthetic" / "quickstart.yaml"
ARCH = REPO / "mobile_configs" / "quickstart.json"
SIZE = 64
# Formats whose conversion takes long (LiteRT: litert-torch's import and conversion): their tests
# are marked slow (python -m pytest -m slow runs them), as in tests/test_export_formats.py.
SLOW = {"tflite"}


def param(*values):
    """A parametrize case, marked slow when its format (the first value) is in ``SLOW``."""
    return pytest.param(*values, marks=[pytest.mark.slow] if values[0] in SLOW else [])


@pytest.fixture(scope="module")
def tiny():
    from helpers import randomize_
    from litepose.models import build_model

    torch.manual_seed(0)
    cfg = load_config(str(CFG))
    return cfg, randomize_(build_model(cfg, str(ARCH)), 0).eval()


class Exports(dict):
    """``{format: path}`` of the tiny model's exports (with metadata): the default run's formats
    made at once where their packages are installed; a slow one (TFLite: its conversion takes
    long) made the first time a test asks for it (``of``)."""

    def __init__(self, cfg, model, folder):
        super().__init__()
        self.cfg, self.model, self.folder = cfg, model, folder
        for fmt in ("onnx", "openvino", "ncnn", "torchscript"):
            if installed(fmt):
                self.make(fmt)

    def make(self, fmt):
        self[fmt] = self.folder / f"tiny{SUFFIXES[fmt]}"
        export_checked(fmt, self.model, self[fmt], SIZE, cfg=self.cfg)

    def of(self, fmt):
        if fmt not in self and fmt in SLOW and installed(fmt):
            self.make(fmt)
        if fmt not in self:
            pytest.skip(f"no {fmt} export here (its packages are not installed: pip install -e '.[export]')")
        return self[fmt]


def installed(fmt):
    import importlib.util

    return all(importlib.util.find_spec(module) for module, _ in formats.PACKAGES[fmt])


@pytest.fixture(scope="module")
def exports(tiny, tmp_path_factory):
    cfg, model = tiny
    return Exports(cfg, model, tmp_path_factory.mktemp("exports"))


def export_of(exports, fmt):
    return exports.of(fmt)


# ----------------------------------------------------------------------------------- format

def test_the_format_comes_from_the_suffix_or_else_the_content(exports, tmp_path):
    for fmt, path in exports.items():
        assert detect_format(path) == fmt
        renamed = tmp_path / f"model_{fmt}"  # no telling suffix: the first bytes decide
        renamed.write_bytes(path.read_bytes())
        assert detect_format(renamed) == fmt
    checkpoint = tmp_path / "model.pt"
    torch.save({"state_dict": {}}, checkpoint)
    assert detect_format(checkpoint) is None  # a torch.save archive is no TorchScript
    (tmp_path / "notes.txt").write_text("hello")
    assert detect_format(tmp_path / "notes.txt") is None
    with pytest.raises(ModelFileError, match=r"notes.txt is not an exported model \(onnx, openvino"):
        open_network(tmp_path / "notes.txt")
    with pytest.raises(ModelFileError, match="model not found: "):
        open_network(tmp_path / "missing.onnx")
    with pytest.raises(LitePoseError, match="format must be one of onnx, openvino, tflite, ncnn, torchscript, coreml, got 'keras'"):
        open_network(checkpoint, format="keras")
    with pytest.raises(LitePoseError, match="threads must be between 1 and 1024, got -3"):
        open_network(checkpoint, threads=-3)


# --------------------------------------------------------------------------------- metadata

def test_metadata_round_trips_and_rejects_what_is_not_its_schema(tiny):
    cfg, model = tiny
    meta = build_metadata(cfg, "onnx", (SIZE, SIZE), True, output_names=["output0", "output1"],
                          architecture=model.arch, checkpoint={"path": "/m.pth", "sha256": "0" * 64})
    data = json.loads(meta.to_json())
    assert data["litepose_metadata_version"] == 1
    assert ExportMetadata.from_json(meta.to_json()) == meta
    # It rebuilds the test-time settings and joints of the config it came from.
    from litepose.data.coco_format import keypoint_info_from_config
    from litepose.inference import InferenceSettings

    assert InferenceSettings.from_config(meta.to_config(), None, SIZE) == InferenceSettings.from_config(cfg, None, SIZE)
    assert meta.keypoint_info() == keypoint_info_from_config(cfg, for_test=True)
    for broken, message in [({**data, "litepose_metadata_version": 2}, "version 2 is not supported"),
                            ({k: v for k, v in data.items() if k != "dataset"}, "lacks dataset"),
                            ({**data, "input": {"size": "big"}}, "malformed"),
                            ({**data, "test": {"TEST.EVAL": True}}, "unknown test key TEST.EVAL")]:
        with pytest.raises(ModelFileError, match=message):
            ExportMetadata.from_json(json.dumps(broken), "m.onnx")
    with pytest.raises(ModelFileError, match="m.onnx: its LitePose metadata is not JSON"):
        ExportMetadata.from_json("{", "m.onnx")


def test_quantised_metadata_says_how_and_version_1_without_it_reads_as_float(tiny):
    cfg, model = tiny
    quantization = {"precision": "int8", "tool": "onnxruntime", "settings": {"per_channel": True},
                    "kept_float": {"op_types": ["ConvTranspose"]}, "calibration": {"images": 4, "input_size": SIZE}}
    meta = build_metadata(cfg, "onnx", (SIZE, SIZE), True, output_names=["output0"], quantization=quantization)
    data = json.loads(meta.to_json())
    assert data["litepose_metadata_version"] == 1 and data["quantization"] == quantization
    assert ExportMetadata.from_json(meta.to_json()) == meta and meta.precision == "int8"
    # Exports written before the field (version 1 without it) read as the float exports they are.
    older = {k: v for k, v in data.items() if k != "quantization"}
    assert ExportMetadata.from_json(json.dumps(older)).precision == "float32"
    assert ExportMetadata.from_json(json.dumps({**older, "half": True})).precision == "float16"
    for broken in ({"tool": "onnxruntime"}, ["int8"], "int8"):
        with pytest.raises(ModelFileError, match="m.onnx: LitePose metadata is malformed"):
            ExportMetadata.from_json(json.dumps({**data, "quantization": broken}), "m.onnx")


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "ncnn", param("tflite")])
def test_metadata_and_people_need_no_pytorch(exports, fmt, tmp_path):
    """In an interpreter where importing torch fails: the export opens, its metadata reads, and
    ``from_exported(path)`` finds people (TorchScript is the one runtime that is PyTorch)."""
    path = export_of(exports, fmt)
    script = textwrap.dedent(f"""
        import sys, importlib.abc

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from litepose import PoseEstimator

        estimator = PoseEstimator.from_exported({str(path)!r}, threads=1)
        people = estimator(np.full((48, 80, 3), 128, np.uint8))
        meta = estimator.network.metadata
        print(meta.format, meta.input_size, meta.dataset["name"], estimator.settings.input_size, len(people) >= 0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [fmt, str(SIZE), "coco", str(SIZE), "True"]


# --------------------------------------------------------------------------- non-finite weights

def _poison_onnx(path):
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    for index, tensor in enumerate(proto.graph.initializer):
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.float32 and array.size > 1:
            array = array.copy()
            array.flat[0] = np.nan
            proto.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, tensor.name))
            onnx.save(proto, str(path))
            return tensor.name


def _poison_openvino(path):
    text = path.with_suffix(".xml").read_text()
    for layer in re.finditer(r'<layer id="\d+" name="([^"]+)" type="Const"[^>]*>\s*<data ([^>]*)/>', text):
        data = dict(re.findall(r'(\w+)="([^"]*)"', layer.group(2)))
        if data.get("element_type") == "f32" and int(data["size"]) > 4:
            with open(path.with_suffix(".bin"), "r+b") as handle:
                handle.seek(int(data["offset"]))
                handle.write(np.float32(np.inf).tobytes())
            return layer.group(1)


def _poison_ncnn(path):
    weights = path.with_name(path.name.replace(".param", ".bin"))
    with open(weights, "r+b") as handle:  # the first layer's weights, after its 4-byte float32 tag
        handle.seek(4)
        handle.write(np.float32(np.nan).tobytes())
    for line in path.read_text().splitlines()[2:]:
        if line.split()[0] in ("Convolution", "ConvolutionDepthWise"):
            return line.split()[1]


def _poison_torchscript(path):
    extra = {"litepose.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    name, parameter = next(iter(module.named_parameters()))
    with torch.no_grad():
        parameter.view(-1)[0] = float("nan")
    torch.jit.save(module, str(path), _extra_files=extra)
    return name


def _poison_tflite(path):
    """NaN into the first float32 constant tensor (no operator writes it) whose bytes occur once
    in the flatbuffer, found through the LiteRT interpreter's tensor table."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    written = {int(i) for op in interpreter._get_ops_details() for i in op["outputs"]}
    written |= {d["index"] for d in interpreter.get_input_details()}
    content = bytearray(path.read_bytes())
    for detail in interpreter.get_tensor_details():
        if detail["index"] in written or detail["dtype"] != np.float32 or int(np.prod(detail["shape"])) < 2:
            continue
        data = interpreter.get_tensor(detail["index"]).tobytes()
        if content.count(data) == 1:
            start = content.index(data)
            content[start:start + 4] = np.float32(np.nan).tobytes()
            path.write_bytes(bytes(content))
            return detail["name"]


@pytest.mark.parametrize("fmt,kind", [("onnx", "initializers"), ("openvino", "constants"), ("ncnn", "layers"),
                                      ("torchscript", "parameters"), param("tflite", "tensors")])
def test_every_runtime_refuses_non_finite_weights_naming_them(exports, fmt, kind, tmp_path):
    import shutil

    from litepose import PoseEstimator

    source = export_of(exports, fmt)
    for path in formats.output_files(fmt, source):
        shutil.copy(path, tmp_path)
    path = tmp_path / source.name
    name = globals()[f"_poison_{fmt}"](path)
    assert name
    pattern = (rf"^{re.escape(str(path))} holds NaN or infinite weights in 1 of \d+ {kind} "
               rf"\(first: {re.escape(name)}\); ")
    with pytest.raises(ModelFileError, match=pattern):
        open_network(path)
    with pytest.raises(ModelFileError, match=pattern):
        PoseEstimator.from_exported(path)


# -------------------------------------------------------------------------------- letterbox

class MarkerNetwork(Network):
    """A stand-in network that "sees" the one bright square in its input and puts every joint's
    heatmap peak there (tags all zero: one person): where the estimator reports that person in
    the frame tells whether the frame reached the network, and came back, in the right place."""

    name = format = "marker"

    def __init__(self, fixed_hw=None):
        self.fixed_hw = fixed_hw

    def __call__(self, batch):
        self.check_input(batch)
        count, _, height, width = batch.shape
        outputs = [np.zeros((count, 34, height // 4, width // 4), np.float32),
                   np.zeros((count, 17, height // 2, width // 2), np.float32)]
        for b in range(count):
            ys, xs = np.nonzero(batch[b].mean(0) > 0)
            cx, cy = xs.mean(), ys.mean()
            for output, stride in zip(outputs, (4, 2)):
                gy, gx = np.mgrid[:output.shape[2], :output.shape[3]]
                mx, my = (cx + 0.5) / stride - 0.5, (cy + 0.5) / stride - 0.5
                output[b, :17] = np.exp(-((gx - mx) ** 2 + (gy - my) ** 2) / 2.0)
        return outputs


@pytest.mark.parametrize("fixed_hw", [None, (96, 96), (128, 128)], ids=["dynamic", "fixed96", "fixed128"])
@pytest.mark.parametrize("preset", ["accurate", "realtime"])
def test_people_land_where_they_are_in_the_frame_whatever_the_input_size(tiny, fixed_hw, preset):
    from litepose.estimator import PoseEstimator, preset_settings
    from litepose.inference import InferenceSettings
    from litepose.runtime.people import NO_FILTER

    cfg, _ = tiny
    settings = InferenceSettings.from_config(cfg, None, 96 if fixed_hw is None else fixed_hw[0])
    settings, limits, _ = preset_settings(settings, preset, flip=False)
    estimator = PoseEstimator(MarkerNetwork(fixed_hw), settings, limits, None, preset, NO_FILTER)
    for (x, y), (width, height) in [((560, 420), (640, 480)), ((60, 600), (360, 640)), ((40, 30), (640, 480))]:
        frame = np.zeros((height, width, 3), np.uint8)
        frame[y - 15:y + 15, x - 15:x + 15] = 255  # centre (x - 0.5, y - 0.5) in pixel indices
        people = estimator(frame)
        assert len(people) == 1
        # One map pixel of the finest output (stride 2), in frame pixels, is the resolution.
        side = min(fixed_hw) if fixed_hw else 96
        tolerance = 2 * max(width, height) / side if fixed_hw else 2 * min(width, height) / 128
        found = people.keypoints[0, :, :2]
        assert np.abs(found - (x - 0.5, y - 0.5)).max() < tolerance, (found[0], (x, y), tolerance)


def test_tflite_constant_tensors_are_checked_and_written_ones_are_not():
    """LiteRT is not installed here: the check runs on an interpreter's interface (the tensors no
    operator writes and that are not inputs are the weights; the others hold no data yet)."""
    from litepose.runtime.weights import check_tflite_weights

    class Interpreter:
        tensors = {0: np.zeros((1, 3, 4, 4), np.float32), 1: np.ones((8, 3, 3, 3), np.float32),
                   2: np.full((8,), np.nan, np.float32), 3: np.full((1, 8, 4, 4), np.nan, np.float32)}
        names = {0: "input", 1: "conv/weights", 2: "conv/bias", 3: "Identity"}

        def get_input_details(self):
            return [{"index": 0}]

        def _get_ops_details(self):
            return [{"outputs": [3]}]

        def get_tensor_details(self):
            return [{"index": i, "name": self.names[i], "dtype": t.dtype.type} for i, t in self.tensors.items()]

        def get_tensor(self, index):
            return self.tensors[index]

    with pytest.raises(ModelFileError, match=r"^m.tflite holds NaN or infinite weights in 1 of 2 tensors "
                                             r"\(first: conv/bias\); "):
        check_tflite_weights(Interpreter(), "m.tflite")
    Interpreter.tensors[2] = np.zeros(8, np.float32)
    check_tflite_weights(Interpreter(), "m.tflite")  # the NaN output tensor (written by an operator) is no weight


def test_tflite_outputs_come_in_the_models_order_by_the_number_in_their_names():
    """LiteRT lists output tensors in its own order: the network's outputs are put back in the
    model's order from the converters' names (litert-torch, TensorFlow), 10 after 9."""
    import random

    from litepose.runtime.exported import _ordered_outputs

    for names in ([f"serving_default_output_{i}_output" for i in range(12)],
                  ["Identity"] + [f"Identity_{i}" for i in range(1, 12)],
                  [f"StatefulPartitionedCall:{i}" for i in range(12)]):
        shuffled = [{"name": name, "index": 100 - i} for i, name in enumerate(names)]
        random.Random(0).shuffle(shuffled)
        assert [d["name"] for d in _ordered_outputs(shuffled)] == names


@pytest.mark.slow
@pytest.mark.skipif(not installed("tflite"), reason="litert-torch, ai-edge-litert not installed (pip install -e '.[tflite]')")
def test_a_fully_quantised_tflite_model_takes_and_gives_float32(tiny, tmp_path):
    """litert-torch's PT2E INT8 quantisation with a quant_config gives an int8 input: the LiteRT
    network quantises the float32 batch with the input's scale and zero point (and dequantises
    integer outputs), so the pipeline runs it as any export, close to PyTorch."""
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    from litepose.deploy.export import _TupleOutputs
    from litepose.deploy.formats import check_images, relative_difference
    from litepose.deploy.fuse import fuse_bn
    from litepose.estimator import PoseEstimator

    cfg, model = tiny
    x = check_images(SIZE, 4)[0]
    program = torch.export.export(_TupleOutputs(fuse_bn(model)).eval(), (x[:1],)).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    program = quantize_pt2e.prepare_pt2e(program, quantizer)
    with torch.no_grad():
        for image in x:
            program(image[None])  # calibration
    program = quantize_pt2e.convert_pt2e(program, fold_quantize=False)
    path = tmp_path / "int8.tflite"
    litert_torch.convert(program, (x[:1],), quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)).export(
        str(path))
    network = open_network(path, threads=1)
    assert network.input_quantization is not None and network.input_quantization[2] == np.int8
    outputs = network(x.numpy())
    assert all(o.dtype == np.float32 for o in outputs)
    with torch.no_grad():
        expected = model(x)
    assert relative_difference(expected, outputs) < 0.3  # INT8 noise, not garbage (a wrong scale gives ~1)
    people = PoseEstimator.from_exported(path, cfg=cfg)(np.full((SIZE, SIZE, 3), 128, np.uint8))
    assert people.keypoints.shape[1:] == (17, 3)
