import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHAPES_FILE = SHARED / "reference" / "official_state_shapes.json"
ARCH_NAMES = ("XS", "S", "M", "L")
JOINTS = {"crowd_pose": 14, "coco": 17}


def arch_path(name):
    return REPO / "mobile_configs" / f"search-{name}.json"


@pytest.fixture(scope="session")
def official_shapes():
    if not SHAPES_FILE.is_file():
        pytest.skip(f"{SHAPES_FILE} not present (../shared is absent)")
    return json.loads(SHAPES_FILE.read_text())


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    os.environ.setdefault("PYTHONHASHSEED", "0")
