"""tools/search.py and tools/calibrate_bn.py end to end on a small synthetic dataset."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from litepose.arch import load_arch
from litepose.config import load_config
from litepose.data.synthetic import generate_synthetic_dataset
from litepose.models import build_model, load_checkpoint
from litepose.models.builders import litepose_head_config
from litepose.search import MacCounter
from litepose.search.space import SearchSpace

SUPERNET_CFG = "experiments/synthetic/supernet.yaml"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    generate_synthetic_dataset(root / "data", {"train": 12, "val": 3}, seed=1, show_progress=False)
    cfg = load_config(SUPERNET_CFG)
    torch.manual_seed(0)
    torch.save(build_model(cfg).state_dict(), root / "supernet.pth")
    return root


def run(script, workspace, *args):
    overrides = ["DATASET.ROOT", str(workspace / "data"), "DATASET.SYNTHETIC", "False", "WORKERS", "0",
                 "TEST.MODEL_FILE", str(workspace / "supernet.pth")]
    return subprocess.run([sys.executable, script, "--cfg", SUPERNET_CFG, *args, *overrides], cwd=REPO,
                          capture_output=True, text=True, timeout=900)


def test_tiny_search_returns_an_architecture_within_its_mac_budget(workspace):
    output = workspace / "found.json"
    budget = 0.12e9
    result = run("tools/search.py", workspace, "--max-macs", "0.12G", "--population", "4", "--generations", "2",
                 "--val-images", "2", "--calib-images", "4", "--batch-size", "4", "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "generation 2/2: best so far AP" in result.stdout
    cfg = load_config(SUPERNET_CFG)
    arch = load_arch(output)
    SearchSpace.from_config(cfg).check(arch)
    assert MacCounter(litepose_head_config(cfg))(arch) <= budget
    state = json.loads((workspace / "found.json.state.json").read_text())
    assert state["generation"] == 3 and len(state["scores"]) >= 4
    again = run("tools/search.py", workspace, "--max-macs", "0.12G", "--output", str(output))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_search_refuses_an_unreachable_budget_and_a_bad_one(workspace):
    result = run("tools/search.py", workspace, "--max-macs", "1M", "--population", "2", "--generations", "1",
                 "--val-images", "1", "--calib-images", "1", "--output", str(workspace / "none.json"))
    assert result.returncode == 2 and "below what the search space can reach" in result.stderr
    result = run("tools/search.py", workspace, "--max-macs", "lots", "--output", str(workspace / "none.json"))
    assert result.returncode == 2 and "--max-macs must be a number" in result.stderr
    assert not (workspace / "none.json").exists()


def test_calibrate_bn_tool_changes_statistics_only(workspace):
    cfg = load_config(SUPERNET_CFG)
    arch = SearchSpace.from_config(cfg).smallest()
    arch_file = workspace / "small.json"
    arch_file.write_text(json.dumps(arch))
    output = workspace / "small_bn.pth"
    result = run("tools/calibrate_bn.py", workspace, "--superconfig", str(arch_file), "--images", "4",
                 "--batch-size", "2", "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "recalibrated BatchNorm statistics on 4 training images at 128x128" in result.stdout
    supernet = build_model(cfg, arch)
    load_checkpoint(supernet, workspace / "supernet.pth")
    before = supernet.get_active_subnet().state_dict()
    after = torch.load(output, weights_only=True)
    fixed = build_model(load_config(SUPERNET_CFG, ["MODEL.NAME", "pose_mobilenet"]), arch)
    load_checkpoint(fixed, output)  # the fixed network's format
    stats = [k for k in before if k.endswith("running_mean")]
    weights = [k for k in before if k.endswith("weight")]
    assert all(torch.equal(before[k], after[k]) for k in weights)
    assert all(not torch.equal(before[k], after[k]) for k in stats)
