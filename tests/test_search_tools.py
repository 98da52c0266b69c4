"""tools/search.py and tools/calibrate_bn.py end to end on a small synthetic dataset."""

import json

import pytest
import torch

from conftest import REPO
from helpers import run_script_in_process
from litepose.arch import load_arch
from litepose.config import load_config
from litepose.data.synthetic import generate_synthetic_dataset
from litepose.models import build_model, load_checkpoint
from litepose.models.builders import litepose_head_config
from litepose.models.space import SearchSpace
from litepose.search import MacCounter

SUPERNET_CFG = "experiments/synthetic/supernet.yaml"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    generate_synthetic_dataset(root / "data", {"train": 12, "val": 3}, seed=1, show_progress=False)
    cfg = load_config(SUPERNET_CFG)
    torch.manual_seed(0)
    torch.save(build_model(cfg).state_dict(), root / "supernet.pth")
    return root


@pytest.fixture
def run(capsys, monkeypatch):
    monkeypatch.chdir(REPO)

    def run_tool(script, workspace, *args, supernet="supernet.pth"):
        overrides = ["DATASET.ROOT", str(workspace / "data"), "DATASET.SYNTHETIC", "False", "WORKERS", "0",
                     "TEST.MODEL_FILE", str(workspace / supernet)]
        return run_script_in_process(script, ["--cfg", SUPERNET_CFG, *args, *overrides], capsys)

    return run_tool


def test_tiny_search_returns_an_architecture_within_its_mac_budget(workspace, run):
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
    all_equal = len(set(state["scores"].values())) == 1
    assert ("every architecture scored the same" in result.stderr) == all_equal
    again = run("tools/search.py", workspace, "--max-macs", "0.12G", "--output", str(output))
    assert again.returncode == 2 and "already exists" in again.stderr

    search = ["--max-macs", "0.12G", "--population", "4", "--generations", "2", "--val-images", "2",
              "--calib-images", "4", "--batch-size", "4", "--output", str(output), "--force"]
    resumed = run("tools/search.py", workspace, *search)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming the search from" in resumed.stdout and "generation 3" in resumed.stdout
    # A retrained supernet: the state's scores are stale, and the search says so instead of reusing them.
    retrained = build_model(load_config(SUPERNET_CFG))
    torch.save(retrained.state_dict(), workspace / "retrained.pth")
    stale = run("tools/search.py", workspace, *search, supernet="retrained.pth")
    assert stale.returncode == 2 and "differing: supernet_sha256" in stale.stderr
    assert "its scores would be stale" in stale.stderr and len(stale.stderr.strip().splitlines()) == 1


def test_search_refuses_an_unreachable_budget_and_a_bad_one(workspace, run):
    result = run("tools/search.py", workspace, "--max-macs", "1M", "--population", "2", "--generations", "1",
                 "--val-images", "1", "--calib-images", "1", "--output", str(workspace / "none.json"))
    assert result.returncode == 2 and "below what the search space can reach" in result.stderr
    assert "GMACs, above --max-macs 0.001 GMACs" in result.stderr
    result = run("tools/search.py", workspace, "--max-macs", "lots", "--output", str(workspace / "none.json"))
    assert result.returncode == 2 and "--max-macs must be a number" in result.stderr
    assert not (workspace / "none.json").exists()


def test_calibrate_bn_tool_changes_statistics_only(workspace, run):
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
