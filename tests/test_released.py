"""The released models' table and loading a checkpoint by its released name."""

import numpy as np
import pytest
import torch

from helpers import random_state_from_shapes
from litepose import PoseEstimator
from litepose.arch import load_arch
from litepose.config import load_config
from litepose.errors import CheckpointError, LitePoseError
from litepose.models import build_model
from litepose.released import RELEASED, packaged_file, released_model

_SHAPE_KEYS = {"coco": "coco", "crowdpose": "crowd_pose"}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_table_entry_builds_the_released_tensors(name, official_shapes):
    model = RELEASED[name]
    assert load_arch(model.arch_file)["img_size"] == model.input_size
    net = build_model(load_config(model.config_file), model.arch_file)
    shapes = {key: list(value.shape) for key, value in net.state_dict().items()}
    assert shapes == official_shapes[f"{_SHAPE_KEYS[model.dataset]}/{model.arch}"]


def test_released_name_is_the_file_stem_in_any_case():
    assert released_model("weights/LitePose-XS-COCO.pth").name == "litepose-xs-coco"
    assert released_model("litepose-l-crowdpose.pth.tar").arch == "search-L"
    assert released_model("xs.pth") is None


def test_packaged_file_refuses_what_the_package_does_not_ship():
    assert packaged_file("mobile_configs/search-XS.json").endswith("search-XS.json")
    with pytest.raises(LitePoseError, match="not among"):
        packaged_file("mobile_configs/search-XXL.json")


def test_from_checkpoint_finds_a_released_model_by_name(official_shapes, tmp_cwd):
    # From a folder without the repository's configs: the packaged copies are used.
    path = tmp_cwd / "litepose-xs-coco.pth"
    torch.save(random_state_from_shapes(official_shapes["coco/search-XS"]), path)
    estimator = PoseEstimator.from_checkpoint(path, preset="realtime", device="cpu")
    assert estimator.settings.input_size == 256 and estimator.settings.num_joints == 17
    people = estimator(np.zeros((120, 160, 3), np.uint8))
    assert people.keypoints.shape[1:] == (17, 3)


def test_from_checkpoint_refuses_tensors_that_do_not_fit_the_name(official_shapes, tmp_path):
    path = tmp_path / "litepose-xs-coco.pth"  # CrowdPose XS weights (14 joints) under a COCO name
    torch.save(random_state_from_shapes(official_shapes["crowd_pose/search-XS"]), path)
    with pytest.raises(CheckpointError, match="does not fit"):
        PoseEstimator.from_checkpoint(path, device="cpu")


def test_from_checkpoint_without_config_needs_a_released_name(tmp_path):
    with pytest.raises(LitePoseError, match="not named as a released model"):
        PoseEstimator.from_checkpoint(tmp_path / "my-model.pth")
