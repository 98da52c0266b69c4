import json
import os
from pathlib import Path

import pytest
import torch

from litepose.data.synthetic import generate_synthetic_dataset

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


# Training fixtures (tests/training_support.py has the matching configs).
@pytest.fixture
def one_thread(monkeypatch):
    # Steps of tiny models are dominated by thread synchronisation on a busy 2-core machine.
    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synthetic"
    generate_synthetic_dataset(root, {"train": 12, "val": 4}, seed=1, show_progress=False)
    return root


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory):
    from training_support import TINY_ARCH

    path = tmp_path_factory.mktemp("arch") / "tiny.json"
    path.write_text(json.dumps(TINY_ARCH))
    return path
