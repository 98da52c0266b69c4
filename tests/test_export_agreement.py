"""benchmarks/export_agreement.py: an export's heatmap and tag differences from its checkpoint
on the test images, its AP through valid.py's loop, and its latency beside PyTorch."""

import json

import numpy as np
import pytest
import torch

from benchmarks.export_agreement import Compared
from conftest import SHARED, arch_path
from helpers import run_script_in_process
from litepose.runtime.network import Network

CROWD = SHARED / "data" / "crowdpose_mini"


class Fixed(Network):
    """Maps of 2 heatmap + 2 tag channels, then 2 heatmap channels, of a fixed 8x8 network."""

    name = format = "fixed"
    fixed_hw = (8, 8)

    def __init__(self, shift_tags=0.0):
        self.shift_tags = shift_tags

    def __call__(self, batch):
        first = np.full((len(batch), 4, 2, 2), 1.0, np.float32)
        first[:, 2:] += self.shift_tags
        return [first, np.full((len(batch), 2, 4, 4), -3.0, np.float32)]


def test_compared_keeps_the_largest_heatmap_and_tag_differences_apart():
    compared = Compared(Fixed(shift_tags=0.25), Fixed(), joints=2)
    assert compared.fixed_hw == (8, 8) and compared.format == "fixed"  # the pipeline letterboxes as for the export
    outputs = compared(np.zeros((2, 3, 8, 8), np.float32))
    assert outputs[0][0, 2, 0, 0] == 1.25  # the export's outputs go on to decoding
    assert compared.batches == 1
    assert compared.worst == {"heatmaps": 0.0, "heatmaps_max": 3.0, "tags": 0.25, "tags_max": 1.0}


@pytest.mark.skipif(not CROWD.is_dir(), reason="../shared/data fixtures absent")
@pytest.mark.skipif(__import__("importlib").util.find_spec("onnxruntime") is None, reason="onnxruntime absent")
def test_an_onnx_export_agrees_with_its_checkpoint_and_gives_its_ap(tmp_path, capsys):
    from litepose.config import load_config
    from litepose.deploy import export_onnx, fuse_bn
    from litepose.deploy.latency import realistic_weights_
    from litepose.models import build_model

    cfg_file = "experiments/crowd_pose/mobilenet/mobile.yaml"
    data = ["DATASET.TEST_ANN_FILE", CROWD / "crowdpose_mini.json", "DATASET.TEST_IMAGE_DIR", CROWD / "images"]
    model = realistic_weights_(build_model(load_config(cfg_file), str(arch_path("XS"))), 128, seed=3)
    checkpoint = tmp_path / "xs.pth"
    torch.save(model.state_dict(), checkpoint)
    export = tmp_path / "xs.onnx"
    export.write_bytes(export_onnx(fuse_bn(model), 128, dynamic=True))
    done = run_script_in_process(
        "benchmarks.export_agreement",
        ["--cfg", cfg_file, "--superconfig", arch_path("XS"), "TEST.MODEL_FILE", checkpoint, *data,
         "TEST.DETECTION_THRESHOLD", "0.05", "DATASET.INPUT_SIZE", "128", "--exports", export, "--limit", "2",
         "--rounds", "2", "--threads", "1", "--json", tmp_path / "out.json"], capsys)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "out.json").read_text())
    checkpoint_row, export_row = rows["rows"]
    assert export_row["model"] == "xs.onnx" and export_row["backend"] == "onnxruntime"
    assert export_row["batches"] == 2  # one flip pair per image
    assert 0 < export_row["heatmaps"] < 1e-4 and 0 < export_row["tags"] < 1e-4  # BN folded: float rounding only
    assert export_row["heatmaps_max"] > 0.1 and checkpoint_row["people"] > 0
    assert export_row["ap"] == pytest.approx(checkpoint_row["ap"], abs=1e-3)
    assert set(rows["latency"]) == {"PyTorch eager", "xs.onnx"}
    assert "| xs.onnx | onnxruntime | dynamic, short side 128 |" in done.stdout
