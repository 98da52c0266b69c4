"""The HigherHRNet and EfficientHRNet baselines: configs, outputs, MACs against their authors."""

import pytest
import torch

from conftest import JOINTS
from helpers import run_script_in_process
from litepose.config import load_config
from litepose.errors import ConfigError
from litepose.models import EfficientHRNet, HigherHRNet, build_model, load_checkpoint, profile_model
from litepose.utils.io import atomic_torch_save

HRNET_CONFIGS = ("w24_512", "w32_512", "w32_640", "w48_640")


def config_path(dataset, name):
    if name == "H-1":
        return f"experiments/{dataset}/efficient_hrnet/H-1.yaml"
    return f"experiments/{dataset}/higher_hrnet/{name}_adam_lr1e-3.yaml"


def baseline(dataset, name, *opts):
    return build_model(load_config(config_path(dataset, name), list(opts)))


def conv_macs(profile):
    """HigherHRNet's convention (its get_model_summary): convolutions only, no BatchNorm."""
    return sum(macs for kind, macs in profile.macs_by_type.items() if "BatchNorm" not in kind)


@pytest.mark.parametrize("dataset", ["crowd_pose", "coco"])
@pytest.mark.parametrize("name", ["w24_512", "w32_512", "H-1"])
def test_outputs_have_the_shapes_training_and_testing_expect(dataset, name):
    joints = JOINTS[dataset]
    model = baseline(dataset, name).eval()
    with torch.no_grad():
        outputs = model(torch.zeros(2, 3, 128, 192))
    assert [tuple(o.shape) for o in outputs] == [(2, 2 * joints, 32, 48), (2, joints, 64, 96)]


@pytest.mark.parametrize("name", ["w32_640", "w48_640"])
def test_640_configs_build_with_the_same_outputs(name):
    model = baseline("coco", name).eval()
    cfg = load_config(config_path("coco", name))
    assert cfg.DATASET.INPUT_SIZE == 640 and list(cfg.DATASET.OUTPUT_SIZE) == [160, 320]
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outputs] == [(1, 34, 16, 16), (1, 17, 32, 32)]


def test_loss_switches_set_output_channels_as_in_higher_hrnet():
    model = baseline("crowd_pose", "w24_512", "LOSS.WITH_AE_LOSS", "[False, False]").eval()
    with torch.no_grad():
        assert [o.shape[1] for o in model(torch.zeros(1, 3, 64, 64))] == [14, 14]
    model = baseline("coco", "H-1", "MODEL.TAG_PER_JOINT", "False").eval()
    with torch.no_grad():
        assert [o.shape[1] for o in model(torch.zeros(1, 3, 64, 64))] == [18, 17]


@pytest.mark.parametrize("name", ["w24_512", "H-1"])
def test_baselines_train_one_step(name):
    model = baseline("crowd_pose", name).train()
    outputs = model(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in outputs).backward()
    assert all(p.grad is not None for p in model.parameters())


# HigherHRNet paper (COCO, 17 joints): W32 at 512: 28.6 M params, 47.9 GFLOPs as counted by its
# get_model_summary (multiply-adds of convolutions; BatchNorm not counted): equal to within half
# the last digit given. LitePose paper (CrowdPose, 14 joints, thop's convention = profile_model's
# default): HigherHRNet-W24 25.3 G, EfficientHRNet-H-1 14.2 G; facts file: H-1 with 17 joints
# 14.4 G. Those three count 0.4 % to 0.8 % above the papers' figures (25.41, 14.31, 14.46 G), more
# than their rounding: the papers' counters and profile_model differ by under 1 % there.
def test_higher_hrnet_w32_macs_match_the_higher_hrnet_paper():
    profile = profile_model(baseline("coco", "w32_512"), 512)
    assert conv_macs(profile) / 1e9 == pytest.approx(47.9, abs=0.05)
    assert profile.macs / conv_macs(profile) == pytest.approx(1.010, abs=5e-4)  # BatchNorm adds 1.0 %
    assert profile.params / 1e6 == pytest.approx(28.6, abs=0.05)


def test_higher_hrnet_w24_macs_match_the_litepose_paper():
    assert profile_model(baseline("crowd_pose", "w24_512"), 512).macs / 1e9 == pytest.approx(25.3, rel=0.01)


@pytest.mark.parametrize("dataset, expected", [("crowd_pose", 14.2), ("coco", 14.4)])
def test_efficient_hrnet_h1_macs_match_the_litepose_paper(dataset, expected):
    cfg = load_config(config_path(dataset, "H-1"))
    assert cfg.DATASET.INPUT_SIZE == 480
    assert profile_model(build_model(cfg), 480).macs / 1e9 == pytest.approx(expected, rel=0.01)


def test_efficient_hrnet_h1_structure():
    model = EfficientHRNet(num_joints=14)  # the constructor's defaults are H-1
    # B0 widths x 0.909 rounded to multiples of 8, B0 depth; HRNet widths ceil(w / 1.2455).
    assert model.features[0][1].weight.shape == (32, 3, 3, 3)
    assert len(model.features) == 17 and model.taps == [3, 5, 11, 16]
    assert [model.features[i].conv[-1].num_features for i in model.taps] == [24, 40, 104, 288]
    assert model.trans3_branch4[0].weight.shape == (206, 288, 3, 3)
    assert model.deconv_layers[0][0][0].weight.shape == (26 + 28, 26, 4, 4)


def test_state_dict_keys_follow_higher_hrnet():
    shapes = {k: tuple(v.shape) for k, v in baseline("coco", "w32_512").state_dict().items()}
    assert shapes["conv1.weight"] == (64, 3, 3, 3)
    assert shapes["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert shapes["transition1.0.0.weight"] == (32, 256, 3, 3)
    assert shapes["transition1.1.0.0.weight"] == (64, 256, 3, 3)
    assert shapes["transition3.3.0.0.weight"] == (256, 128, 3, 3)
    assert shapes["stage2.0.fuse_layers.0.1.0.weight"] == (32, 64, 1, 1)
    assert shapes["stage4.2.fuse_layers.0.3.0.weight"] == (32, 256, 1, 1)  # 1x1 conv, then upsample x8
    assert shapes["stage4.0.fuse_layers.3.0.0.0.weight"] == (32, 32, 3, 3)  # stride-2 chain 1/4 -> 1/32
    assert shapes["stage4.0.fuse_layers.3.0.2.0.weight"] == (256, 32, 3, 3)
    assert "stage4.2.fuse_layers.1.0.0.0.weight" not in shapes  # the last module keeps 1/4 only
    assert shapes["deconv_layers.0.0.0.weight"] == (32 + 34, 32, 4, 4)
    assert shapes["deconv_layers.0.4.0.conv2.weight"] == (32, 32, 3, 3)
    assert shapes["final_layers.0.weight"] == (34, 32, 1, 1) and shapes["final_layers.1.weight"] == (17, 32, 1, 1)


def test_checkpoints_round_trip_and_mismatches_are_one_line(tmp_path):
    model = baseline("crowd_pose", "w24_512")
    path = tmp_path / "w24.pth"
    atomic_torch_save({"state_dict": model.state_dict(), "epoch": 3}, path)
    fresh = baseline("crowd_pose", "w24_512")
    assert load_checkpoint(fresh, path)["epoch"] == 3
    assert torch.equal(fresh.final_layers[1].weight, model.final_layers[1].weight)
    from litepose.errors import CheckpointError

    with pytest.raises(CheckpointError) as error:
        load_checkpoint(baseline("coco", "w24_512"), path)
    assert "does not fit HigherHRNet" in str(error.value) and "\n" not in str(error.value)


HIGHER_HRNET_STYLE_YAML = """\
AUTO_RESUME: True
DATA_DIR: ''
GPUS: (0,)
MULTIPROCESSING_DISTRIBUTED: False
FP16:
  ENABLED: True
  DYNAMIC_LOSS_SCALE: True
DATASET:
  DATASET: crowd_pose_kpt
  DATASET_TEST: crowd_pose
  ROOT: 'data/crowd_pose'
  INPUT_SIZE: 512
  OUTPUT_SIZE: [128, 256]
  NUM_JOINTS: 14
  TEST: val
  TRAIN: train
LOSS:
  NUM_STAGES: 2
  WITH_AE_LOSS: [True, False]
  WITH_HEATMAPS_LOSS: [True, True]
MODEL:
  EXTRA:
    FINAL_CONV_KERNEL: 1
    PRETRAINED_LAYERS: ['*']
    STEM_INPLANES: 64
    STAGE2:
      NUM_MODULES: 1
      NUM_BRANCHES: 2
      BLOCK: BASIC
      NUM_BLOCKS:
      - 4
      - 4
      NUM_CHANNELS:
      - 32
      - 64
      FUSE_METHOD: SUM
    STAGE3:
      NUM_MODULES: 4
      NUM_BRANCHES: 3
      BLOCK: BASIC
      NUM_BLOCKS: [4, 4, 4]
      NUM_CHANNELS: [32, 64, 128]
      FUSE_METHOD: SUM
    STAGE4:
      NUM_MODULES: 3
      NUM_BRANCHES: 4
      BLOCK: BASIC
      NUM_BLOCKS: [4, 4, 4, 4]
      NUM_CHANNELS: [32, 64, 128, 256]
      FUSE_METHOD: SUM
    DECONV:
      NUM_DECONVS: 1
      NUM_CHANNELS:
      - 32
      KERNEL_SIZE:
      - 4
      NUM_BASIC_BLOCKS: 4
      CAT_OUTPUT:
      - True
  INIT_WEIGHTS: True
  NAME: pose_higher_hrnet
  NUM_JOINTS: 14
  PRETRAINED: 'models/pytorch/imagenet/hrnet_w32-36af842e.pth'
  TAG_PER_JOINT: True
TEST:
  MODEL_FILE: ''
  NMS_KERNEL: 5
  NMS_PADDING: 2
"""


def test_a_config_in_higher_hrnet_layout_loads_unchanged(tmp_path):
    path = tmp_path / "w32_512_adam_lr1e-3.yaml"
    path.write_text(HIGHER_HRNET_STYLE_YAML)
    theirs = build_model(load_config(str(path))).state_dict()
    ours = baseline("crowd_pose", "w32_512").state_dict()
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in ours.items()}


def test_release_lightened_branches_build():
    """The LitePose release's w16 recipe: branches with 0 blocks are one conv + BN + ReLU6."""
    cfg = load_config(config_path("crowd_pose", "w24_512"),
                      ["MODEL.EXTRA.STAGE4.NUM_BLOCKS", "[0, 0, 0, 4]", "MODEL.EXTRA.STEM_INPLANES", "36"])
    model = build_model(cfg).eval()
    assert isinstance(model.stage4[0].branches[0][2], torch.nn.ReLU6)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64))[1].shape == (1, 14, 32, 32)


@pytest.mark.parametrize("override, message", [
    (["MODEL.EXTRA.STAGE3.NUM_BRANCHES", "4"], "MODEL.EXTRA.STAGE3: NUM_BLOCKS and NUM_CHANNELS need NUM_BRANCHES (4)"),
    (["MODEL.EXTRA.STAGE2.BLOCK", "WIDE"], "MODEL.EXTRA.STAGE2.BLOCK must be one of BASIC, BOTTLENECK"),
    (["MODEL.EXTRA.STAGE4.FUSE_METHOD", "CAT"], "MODEL.EXTRA.STAGE4.FUSE_METHOD must be SUM"),
    (["MODEL.EXTRA.DECONV.KERNEL_SIZE", "[5]"], "MODEL.EXTRA.DECONV.KERNEL_SIZE must be 2, 3 or 4"),
    (["LOSS.NUM_STAGES", "3", "LOSS.WITH_AE_LOSS", "[True, False, False]", "LOSS.WITH_HEATMAPS_LOSS",
      "[True, True, True]", "LOSS.HEATMAPS_LOSS_FACTOR", "[1.0, 1.0, 1.0]", "LOSS.PUSH_LOSS_FACTOR",
      "[0.001, 0.001, 0.001]", "LOSS.PULL_LOSS_FACTOR", "[0.001, 0.001, 0.001]", "TEST.WITH_HEATMAPS",
      "[True, True, True]", "TEST.WITH_AE", "[True, False, False]"],
     "LOSS.NUM_STAGES (3) must be MODEL.EXTRA.DECONV.NUM_DECONVS + 1 (2)"),
])
def test_bad_structure_keys_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as error:
        baseline("crowd_pose", "w24_512", *override)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unknown_extra_key_and_architecture_file_are_rejected():
    with pytest.raises(ConfigError, match="unknown config key MODEL.EXTRA.NUM_DECONV_LAYERS"):
        load_config(config_path("crowd_pose", "w32_512"), ["MODEL.EXTRA.NUM_DECONV_LAYERS", "3"])
    cfg = load_config(config_path("crowd_pose", "H-1"))
    with pytest.raises(ConfigError, match="pose_efficient_hrnet takes no architecture file"):
        build_model(cfg, "mobile_configs/search-S.json")


def test_profile_tool_counts_a_baseline(capsys):
    result = run_script_in_process("tools/profile_model.py", ["--cfg", config_path("crowd_pose", "H-1")], capsys)
    assert result.returncode == 0, result.stderr
    assert "input: 1x3x480x480" in result.stdout and "MACs: 14.306 G" in result.stdout
    assert "output 0: [1, 28, 120, 120]" in result.stdout


def test_constructors_take_plain_arguments():
    from litepose.models.higher_hrnet import DeconvSpec, hrnet_stages

    model = HigherHRNet(num_joints=5, stages=hrnet_stages(8, num_blocks=1, modules=(1, 1, 1)),
                        deconv=DeconvSpec([8], [4], 0, [False])).eval()
    with torch.no_grad():
        assert [tuple(o.shape) for o in model(torch.zeros(1, 3, 64, 64))] == [(1, 10, 16, 16), (1, 5, 32, 32)]
