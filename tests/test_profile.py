import pytest

from conftest import arch_path
from helpers import run_script_in_process
from litepose.arch import load_arch
from litepose.config import load_config
from litepose.models import build_model, profile_model

# litepose_facts.md: GMACs at the architecture's own input size, CrowdPose / COCO; params (CrowdPose).
FACTS = {
    "XS": (1.220, 1.223, 1.676),
    "S": (5.041, 5.051, 2.731),
    "M": (7.918, 7.930, 3.534),
    "L": (13.834, 13.851, 5.738),
}


@pytest.mark.parametrize("name", list(FACTS))
def test_macs_and_params_agree_with_the_paper(name):
    arch = load_arch(arch_path(name))
    crowd, coco, params = FACTS[name]
    for dataset, expected in (("crowd_pose", crowd), ("coco", coco)):
        cfg = load_config(f"experiments/{dataset}/mobilenet/mobile.yaml")
        profile = profile_model(build_model(cfg, arch), arch["img_size"])
        # The facts give three decimals: equal to within half the last one.
        assert profile.macs / 1e9 == pytest.approx(expected, abs=5e-4), dataset
        if dataset == "crowd_pose":
            assert profile.params / 1e6 == pytest.approx(params, abs=5e-4)


@pytest.fixture
def run(capsys):
    """``python SCRIPT ARGS`` in the repository, run in this process (tests/helpers.py)."""
    return lambda script, *args: run_script_in_process(script, args, capsys)


def test_profile_tool_prints_macs_params_and_shapes(run):
    result = run("tools/profile_model.py", "--cfg", "experiments/crowd_pose/mobilenet/mobile.yaml",
                 "--superconfig", "mobile_configs/search-S.json")
    assert result.returncode == 0, result.stderr
    assert "MACs: 5.041 G" in result.stdout and "params: 2.731 M" in result.stdout
    assert "output 0: [1, 28, 112, 112]" in result.stdout and "output 1: [1, 14, 224, 224]" in result.stdout


def test_profile_tool_input_size_override(run):
    result = run("tools/profile_model.py", "--cfg", "experiments/coco/mobilenet/mobile.yaml",
                 "--superconfig", "mobile_configs/search-XS.json", "--input-size", "512")
    assert result.returncode == 0, result.stderr
    assert "output 1: [1, 17, 256, 256]" in result.stdout


def test_arch_manager_samples_with_macs(run):
    result = run("arch_manager.py", "--sample", "3", "--seed", "0")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 3 and all("GMACs" in line for line in lines)


def test_bad_inputs_exit_with_one_line(run):
    result = run("tools/profile_model.py", "--cfg", "experiments/crowd_pose/mobilenet/mobile.yaml",
                 "--superconfig", "mobile_configs/absent.json")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: architecture file not found: mobile_configs/absent.json"
    result = run("arch_manager.py", "--cfg", "experiments/crowd_pose/mobilenet/supermobile.yaml", "--sample", "1",
                 "TRAIN.LRR", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
