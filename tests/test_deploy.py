"""BN folding, the ONNX and TorchScript exports of a full-size LitePose, and the export tool
(``tools/export.py``; every format on a tiny model: tests/test_export_formats.py)."""

import json
import runpy
import sys

import pytest
import torch
import torch.nn as nn

from conftest import REPO, arch_path
from helpers import max_abs_diff, randomize_, run_script_in_process
from litepose.config import load_config
from litepose.deploy import batchnorm_names, example_input, fuse_bn
from litepose.deploy.formats import export_checked
from litepose.errors import ModelFileError
from litepose.models import build_model


def litepose(name="XS", dataset="crowd_pose", supernet=False):
    kind = "supermobile" if supernet else "mobile"
    cfg = load_config(f"experiments/{dataset}/mobilenet/{kind}.yaml")
    return randomize_(build_model(cfg, str(arch_path(name)))).eval()


def baseline(config):
    return randomize_(build_model(load_config(f"experiments/crowd_pose/{config}"))).eval()


def relative_diff(a_outputs, b_outputs):
    return max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(a_outputs, b_outputs))


@pytest.fixture(scope="module")
def xs_and_fused():
    model = litepose("XS")
    return model, fuse_bn(model)


def test_fused_xs_agrees_and_has_no_batchnorm_left(xs_and_fused):
    model, fused = xs_and_fused
    assert batchnorm_names(fused) == []
    x = example_input((256, 192), batch_size=2)
    with torch.no_grad():
        assert max_abs_diff(model(x), fused(x)) < 1e-4


def test_fusion_leaves_the_input_model_untouched(xs_and_fused):
    model, fused = xs_and_fused
    assert len(batchnorm_names(model)) == 112
    assert model.deconv_refined[0].bias is None and fused.deconv_refined[0].bias is not None
    assert not torch.equal(model.deconv_raw[0].weight, fused.deconv_raw[0].weight)


def test_head_sum_is_folded_into_both_deconvs(xs_and_fused):
    _, fused = xs_and_fused
    for i in range(3):
        assert isinstance(fused.deconv_bnrelu[i][0], nn.Identity)
        # The shift goes to one branch only, so the sum carries it once.
        assert fused.deconv_refined[i].bias is not None and fused.deconv_raw[i].bias is None


class _SumThenBN(nn.Module):
    """BN after a sum of a grouped transposed conv and a biased one (weights [in, out/g, k, k])."""

    def __init__(self):
        super().__init__()
        self.a = nn.ConvTranspose2d(8, 6, 4, 2, 1, groups=2, bias=False)
        self.b = nn.ConvTranspose2d(4, 6, 4, 2, 1, bias=True)
        self.bn = nn.BatchNorm2d(6)
        self.conv = nn.Conv2d(6, 6, 3, padding=1, groups=3)
        self.bn2 = nn.BatchNorm2d(6, affine=False)

    def forward(self, x):
        return self.bn2(self.conv(self.bn(self.a(x) + self.b(x[:, :4]))))


def test_grouped_transposed_conv_and_unaffine_bn_fold_exactly():
    model = _SumThenBN()
    randomize_(model.bn)
    with torch.no_grad():
        model.bn2.running_mean.uniform_(-1, 1)
        model.bn2.running_var.uniform_(0.5, 2)
    model.eval()
    fused = fuse_bn(model)
    x = torch.randn(2, 8, 5, 7)
    assert batchnorm_names(fused) == []
    with torch.no_grad():
        assert (model(x) - fused(x)).abs().max() < 1e-5


class _Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.conv = nn.Conv2d(4, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.body(x)
        return self.bn(self.conv(x)) if x.sum() > 0 else x


def test_untraceable_model_falls_back_to_sequential_pairs():
    model = randomize_(_Untraceable()).eval()
    with pytest.warns(UserWarning, match="cannot be traced"):
        fused = fuse_bn(model)
    # The Sequential's pair is folded; the pair wired in forward() is left alone.
    assert batchnorm_names(fused) == ["bn"]
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert (model(x) - fused(x)).abs().max() < 1e-5


def test_supernet_is_fused_as_its_active_subnet():
    supernet = litepose("XS", supernet=True)
    fused = fuse_bn(supernet)
    x = example_input(128)
    assert batchnorm_names(fused) == [] and type(fused).__name__ == "LitePose"
    with torch.no_grad():
        assert max_abs_diff(supernet(x), fused(x)) < 1e-4


@pytest.mark.parametrize("config", ["higher_hrnet/w24_512_adam_lr1e-3.yaml", "efficient_hrnet/H-1.yaml"])
def test_baselines_fold_every_batchnorm(config):
    model = baseline(config)
    fused = fuse_bn(model)
    assert batchnorm_names(fused) == []
    x = example_input(128)
    with torch.no_grad():
        assert relative_diff(model(x), fused(x)) < 1e-4


def _agree(model, network, x):
    with torch.no_grad():
        expected = model(x)
    return relative_diff(expected, [torch.from_numpy(o) for o in network(x.numpy())])


def test_onnx_export_agrees_with_pytorch_through_onnxruntime(xs_and_fused, tmp_path):
    import onnx

    from litepose.runtime.exported import open_network

    model, _ = xs_and_fused
    out = tmp_path / "xs.onnx"
    report = export_checked("onnx", model, out, 256)  # dynamic by default
    assert report.dynamic and report.sizes == [(256, 256), (224, 320)] and report.difference < 1e-4
    proto = onnx.load(str(out))
    assert [o.name for o in proto.graph.output] == ["output0", "output1"]
    assert not any(node.op_type == "BatchNormalization" for node in proto.graph.node)
    network = open_network(out, threads=1)
    assert network.fixed_hw is None and network.metadata is None  # no cfg given: no metadata
    assert _agree(model, network, example_input(256)) < 1e-4
    # Dynamic axes: another batch size and a non-square input run and agree as well.
    assert _agree(model, network, example_input((192, 320), batch_size=2)) < 1e-4


def test_fixed_size_onnx_export_refuses_other_sizes_in_one_line(xs_and_fused, tmp_path):
    from litepose.runtime.exported import open_network

    model, _ = xs_and_fused
    out = tmp_path / "xs128.onnx"
    export_checked("onnx", model, out, 128, dynamic=False)
    network = open_network(out)
    assert network.fixed_hw == (128, 128)
    assert network(example_input(128).numpy())[1].shape == (1, 14, 64, 64)
    with pytest.raises(ModelFileError, match=r"^this onnx model takes 128x128 inputs only, got 160x160 "):
        network(example_input(160).numpy())


def test_torchscript_export_agrees_with_pytorch_at_any_size(xs_and_fused, tmp_path):
    from litepose.runtime.exported import open_network

    model, _ = xs_and_fused
    out = tmp_path / "xs.torchscript.pt"
    report = export_checked("torchscript", model, out, 128)
    assert report.dynamic and report.difference < 1e-4
    network = open_network(out)
    assert _agree(model, network, example_input(128)) < 1e-4
    assert _agree(model, network, example_input((96, 160))) < 1e-4


# ------------------------------------------------------------------ tools/export.py

@pytest.fixture(scope="module")
def xs_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "xs.pth"
    torch.save(litepose("XS").state_dict(), path)
    return path


@pytest.fixture
def export_cli(capsys):
    """``python tools/export.py --format onnx --cfg mobile.yaml ARGS`` in the repository, run in
    this process (tests/helpers.py)."""
    return lambda *args: run_script_in_process(
        "tools/export.py", ["--format", "onnx", "--cfg", "experiments/crowd_pose/mobilenet/mobile.yaml", *args], capsys)


def test_export_tool_writes_a_checked_onnx_model_with_its_metadata(xs_checkpoint, tmp_path, export_cli):
    import hashlib

    from litepose.runtime.exported import open_network

    out = tmp_path / "xs.onnx"
    result = export_cli("--superconfig", "mobile_configs/search-XS.json", "TEST.MODEL_FILE", str(xs_checkpoint),
                        "--output", str(out), "--input-size", "128")
    assert result.returncode == 0, result.stderr
    assert "folded 112 BatchNorm layers" in result.stdout
    assert "input: dynamic (checked at 128x128 and 192x96)" in result.stdout
    assert out.stat().st_size > 1e6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xs.onnx"]  # no temporary files left
    meta = open_network(out).metadata
    assert meta.dataset["name"] == "crowdpose" and meta.dataset["num_joints"] == 14
    assert meta.input_size == 128 and meta.dynamic
    digest = hashlib.sha256(xs_checkpoint.read_bytes()).hexdigest()
    assert meta.checkpoint == {"path": str(xs_checkpoint), "sha256": digest}
    assert meta.architecture == json.loads((REPO / "mobile_configs" / "search-XS.json").read_text())

    again = export_cli("--superconfig", "mobile_configs/search-XS.json", "TEST.MODEL_FILE", str(xs_checkpoint),
                       "--output", str(out))
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: --output {out} already exists (pass --force to overwrite it)"


def test_export_tool_names_its_output_after_the_checkpoint(xs_checkpoint, tmp_path, export_cli):
    checkpoint = tmp_path / "xs.pth.tar"
    checkpoint.write_bytes(xs_checkpoint.read_bytes())
    result = export_cli("--superconfig", "mobile_configs/search-XS.json", "TEST.MODEL_FILE", str(checkpoint),
                        "--input-size", "64", "--fixed")
    assert result.returncode == 0, result.stderr
    assert "input: fixed 64x64" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xs.onnx", "xs.pth.tar"]


def test_export_tool_refuses_a_huge_input_size_before_any_work(tmp_path, export_cli):
    result = export_cli("TEST.MODEL_FILE", str(tmp_path / "none.pth"), "--output", str(tmp_path / "m.onnx"),
                        "--input-size", "8192")
    assert result.returncode == 2  # argparse's usage line, then its one error line
    assert result.stderr.splitlines()[-1].endswith(
        "error: argument --input-size: must be a multiple of 32 between 32 and 2048, got 8192")
    assert list(tmp_path.iterdir()) == []


def test_export_tool_rejects_a_checkpoint_of_another_architecture(xs_checkpoint, tmp_path, export_cli):
    out = tmp_path / "s.onnx"
    result = export_cli("--superconfig", "mobile_configs/search-S.json", "TEST.MODEL_FILE", str(xs_checkpoint),
                        "--output", str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {xs_checkpoint} does not fit LitePose")
    assert not out.exists()


def test_export_tool_fails_and_writes_nothing_above_tolerance(xs_checkpoint, tmp_path, monkeypatch, capsys):
    # Run as __main__ (runpy), the way `python tools/export.py` starts it: the script's entry point.
    from litepose.deploy import formats

    monkeypatch.setattr(formats, "relative_difference", lambda *args: 0.5)
    monkeypatch.setattr(sys, "argv", ["export.py", "--format", "onnx", "--cfg",
                                      "experiments/crowd_pose/mobilenet/mobile.yaml",
                                      "--superconfig", str(arch_path("XS")), "TEST.MODEL_FILE", str(xs_checkpoint),
                                      "--output", str(tmp_path / "xs.onnx"), "--input-size", "64"])
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "tools" / "export.py"), run_name="__main__")
    assert exit_info.value.code == 2
    assert "differs from PyTorch by 0.5 relative to its largest output (tolerance 0.001); nothing written" in \
        capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ tools/quantize.py
def _installed(*modules):
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(not _installed("onnx", "onnxruntime"), reason="onnxruntime absent")
def test_quantize_writes_its_models_with_the_exports_metadata_and_an_interrupt_keeps_them(tmp_path, synthetic_root,
                                                                                           monkeypatch, capsys):
    """INT8 (ONNX Runtime; OpenVINO where nncf is installed) and float16 models, each written as
    soon as it is made with the metadata ``litepose export`` gives the checkpoint plus how it was
    quantised, so that ``from_exported(path)`` needs nothing else; Ctrl-C after they are made
    (before AP and latency) keeps them."""
    import numpy as np

    import litepose.deploy.quantize
    from litepose import PoseEstimator
    from litepose.arch import default_input_size
    from litepose.deploy.formats import export_metadata
    from litepose.runtime.exported import open_network

    torch.manual_seed(0)
    cfg = load_config("experiments/synthetic/quickstart.yaml")
    model = build_model(cfg, "mobile_configs/quickstart.json").eval()
    checkpoint = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), checkpoint)
    size = default_input_size(cfg, model)
    with torch.no_grad():
        outputs = len(model(torch.zeros(1, 3, size, size)))

    def interrupt(*args, **kwargs):  # Ctrl-C after the models are made, before AP and latency
        raise KeyboardInterrupt

    monkeypatch.setattr(litepose.deploy.quantize, "measure_errors", interrupt)
    runtimes = ["onnx"] + (["openvino"] if _installed("openvino", "nncf") else [])
    out = tmp_path / "int8"
    done = run_script_in_process("tools/quantize.py", [
        "--cfg", "experiments/synthetic/quickstart.yaml", "--superconfig", "mobile_configs/quickstart.json",
        "DATASET.ROOT", str(synthetic_root), "TEST.MODEL_FILE", str(checkpoint), "--output-dir", str(out),
        "--runtime", *runtimes, "--fp16", "--calibration-images", "4", "--exclude-op-types", "ConvTranspose"], capsys)
    assert done.returncode == 130 and done.stderr.strip().splitlines()[-1] == "interrupted", done.stderr
    made = {"litepose-int8.onnx": ("onnx", "int8", "onnxruntime", {"op_types": ["ConvTranspose"], "nodes": [],
                                                                     "patterns": []}),
            "litepose-fp16.onnx": ("onnx", "float16", None, None)}
    if "openvino" in runtimes:
        made["litepose-int8.xml"] = ("openvino", "int8", "nncf", {"types": [], "names": [], "patterns": []})
    assert sorted(p.name for p in out.iterdir()) == sorted(list(made) + (["litepose-int8.bin"] if len(made) > 2 else []))
    frame = np.full((96, 160, 3), 128, np.uint8)
    for name, (fmt, precision, tool, kept_float) in made.items():
        meta = open_network(out / name).metadata
        assert meta is not None and meta.format == fmt and meta.precision == precision, name
        quantization = meta.quantization
        if tool is None:
            assert quantization is None and meta.half
        else:
            assert quantization["tool"] == tool and quantization["kept_float"] == kept_float
            assert quantization["calibration"] == {"images": 4, "input_size": size, "split": cfg.DATASET.TRAIN,
                                                   "augment": True, "seed": 0}
            assert tool in meta.producer
        # What litepose export writes for this checkpoint (dataset, joints, input, test settings,
        # architecture, checkpoint and its sha256), plus how the model was quantised.
        assert meta == export_metadata(cfg, fmt, (size, size), True, precision == "float16", outputs, model,
                                       checkpoint, quantization)
        estimator = PoseEstimator.from_exported(out / name, threads=1)
        assert estimator.settings.input_size == size and estimator(frame).keypoints.shape[1:] == (17, 3)
        assert estimator.network.metadata == meta
