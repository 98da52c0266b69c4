import json

import pytest
import torch

from conftest import ARCH_NAMES, arch_path
from helpers import random_state_from_shapes, run_script_in_process
from litepose.arch import load_arch
from litepose.config import load_config
from litepose.errors import ArchError
from litepose.models import build_model, load_checkpoint
from litepose.models.transfer import extract_subnet

SUPER_CFG = "experiments/crowd_pose/mobilenet/supermobile.yaml"
MOBILE_CFG = "experiments/crowd_pose/mobilenet/mobile.yaml"


@pytest.fixture(scope="module")
def supernet_checkpoint(official_shapes, tmp_path_factory):
    path = tmp_path_factory.mktemp("super") / "supernet.pth"
    torch.save(random_state_from_shapes(official_shapes["crowd_pose/supernet"], seed=4), path)
    return path


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_transfer_of_release_supernet_verifies_and_loads_in_the_fixed_model(supernet_checkpoint, name):
    supernet = build_model(load_config(SUPER_CFG))
    load_checkpoint(supernet, supernet_checkpoint)
    arch = load_arch(arch_path(name))
    subnet, difference = extract_subnet(supernet, arch, verify_input_size=64)
    assert difference < 1e-5
    fixed = build_model(load_config(MOBILE_CFG), arch)
    load_checkpoint(fixed, subnet.state_dict())  # strict: the format valid.py loads
    # The supernet keeps the architecture it had before the extraction.
    assert supernet.active_arch == supernet.space.widest()


@pytest.fixture
def run(capsys):
    """``python weight_transfer.py ARGS`` in the repository, run in this process (tests/helpers.py)."""
    return lambda *args: run_script_in_process("weight_transfer.py", args, capsys)


def test_cli_writes_a_state_dict_and_never_overwrites_silently(supernet_checkpoint, tmp_path, run):
    output = tmp_path / "xs.pth"
    args = ["--cfg", SUPER_CFG, "--superconfig", str(arch_path("XS")), "TEST.MODEL_FILE",
            str(supernet_checkpoint), "--output", str(output)]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert "max abs difference" in result.stdout
    fixed = build_model(load_config(MOBILE_CFG), str(arch_path("XS")))
    load_checkpoint(fixed, output)
    before = output.read_bytes()
    again = run(*args)
    assert again.returncode == 2 and "already exists (pass --force" in again.stderr
    assert output.read_bytes() == before


def test_cli_rejects_an_architecture_outside_the_search_space(supernet_checkpoint, tmp_path, run):
    arch = json.loads(arch_path("XS").read_text())
    arch["backbone_setting"][2]["channel"] = 56
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(arch))
    result = run("--cfg", SUPER_CFG, "--superconfig", str(bad), "TEST.MODEL_FILE", str(supernet_checkpoint),
                 "--output", str(tmp_path / "out.pth"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("backbone_setting[2].channel = 56 is outside the search space "
                                          "(allowed: 96, 72, 48, 24)")
    assert not (tmp_path / "out.pth").exists()


def test_cli_needs_a_supernet_config(supernet_checkpoint, tmp_path, run):
    result = run("--cfg", MOBILE_CFG, "--superconfig", str(arch_path("XS")), "TEST.MODEL_FILE",
                 str(supernet_checkpoint), "--output", str(tmp_path / "out.pth"))
    assert result.returncode == 2 and "needs a supernet config" in result.stderr


def test_extracting_from_a_fixed_network_is_an_error():
    fixed = build_model(load_config(MOBILE_CFG), str(arch_path("XS")))
    with pytest.raises(ArchError, match="not a supernet"):
        extract_subnet(fixed, load_arch(arch_path("XS")))
