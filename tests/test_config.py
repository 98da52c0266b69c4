from pathlib import Path

import pytest

from litepose.config import load_config
from litepose.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO / "experiments").rglob("*.yaml"))

# The release's quirks: tuples as strings, '4e-3' (a string to YAML), keys HigherHRNet kept.
RELEASE_STYLE_YAML = """
AUTO_RESUME: True
MULTIPROCESSING_DISTRIBUTED: False
GPUS: (0,)
DATASET:
  DATASET: crowd_pose_kpt
  DATASET_TEST: crowd_pose
  NUM_JOINTS: 14
  OUTPUT_SIZE: [64, 128]
  SCALE_TYPE: 'short'
LOSS:
  NUM_STAGES: 2
  AE_LOSS_TYPE: exp
  WITH_AE_LOSS: [True, False]
  PUSH_LOSS_FACTOR: [0.001, 0.001]
  PULL_LOSS_FACTOR: [0.001, 0.001]
  WITH_HEATMAPS_LOSS: [True, True]
  HEATMAPS_LOSS_FACTOR: [1.0, 1.0]
MODEL:
  EXTRA:
    FINAL_CONV_KERNEL: 1
    PRETRAINED_LAYERS: ['*']
    NUM_DECONV_LAYERS: 3
    NUM_DECONV_FILTERS:
      - 64
      - 48
      - 32
    NUM_DECONV_KERNELS: [4, 4, 4]
  NAME: pose_mobilenet
  NUM_JOINTS: 14
TEST:
  WITH_HEATMAPS: (True, True)
  WITH_AE: (True, False)
  MODEL_FILE: ''
TRAIN:
  LR: 4e-3
  WD: 1e-4
  LR_STEP: [350, 480]
"""


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_experiment_yaml_loads(path):
    cfg = load_config(str(path))
    assert cfg.is_frozen()
    assert cfg.MODEL.NUM_JOINTS == cfg.DATASET.NUM_JOINTS


def test_release_style_yaml_loads_with_release_values(tmp_path):
    cfg = load_config(write(tmp_path, RELEASE_STYLE_YAML))
    assert cfg.TRAIN.LR == pytest.approx(0.004)
    assert cfg.TRAIN.WD == pytest.approx(1e-4)
    assert tuple(cfg.TEST.WITH_HEATMAPS) == (True, True)
    assert tuple(cfg.TEST.WITH_AE) == (True, False)
    assert tuple(cfg.GPUS) == (0,)
    assert list(cfg.MODEL.EXTRA.NUM_DECONV_FILTERS) == [64, 48, 32]


def test_paper_settings_in_crowdpose_configs():
    mobile = load_config(str(REPO / "experiments/crowd_pose/mobilenet/mobile.yaml"))
    supernet = load_config(str(REPO / "experiments/crowd_pose/mobilenet/supermobile.yaml"))
    for cfg in (mobile, supernet):
        assert cfg.TRAIN.OPTIMIZER == "adam" and cfg.TRAIN.LR == pytest.approx(4e-3)
        assert cfg.TRAIN.WD == pytest.approx(1e-4) and cfg.TRAIN.IMAGES_PER_GPU == 16
        assert cfg.LOSS.AE_LOSS_TYPE == "exp" and tuple(cfg.LOSS.WITH_AE_LOSS) == (True, False)
        assert cfg.TEST.NMS_KERNEL == 5 and cfg.TEST.DETECTION_THRESHOLD == pytest.approx(0.1)
        assert cfg.DATASET.MAX_ROTATION == 30 and cfg.DATASET.MAX_TRANSLATE == 40
        assert (cfg.DATASET.MIN_SCALE, cfg.DATASET.MAX_SCALE) == (0.75, 1.5)
    assert mobile.TRAIN.END_EPOCH == 500 and list(mobile.TRAIN.LR_STEP) == [350, 480]
    assert supernet.TRAIN.END_EPOCH == 2400 and supernet.DATASET.INPUT_SIZE == 512
    coco_supernet = load_config(str(REPO / "experiments/coco/mobilenet/supermobile.yaml"))
    assert coco_supernet.DATASET.INPUT_SIZE == 448 and coco_supernet.MODEL.NUM_JOINTS == 17


def test_overrides_follow_the_options():
    cfg = load_config(str(EXPERIMENTS[0]), ["TEST.MODEL_FILE", "some/ckpt.pth", "TRAIN.LR", "1e-3"])
    assert cfg.TEST.MODEL_FILE == "some/ckpt.pth"
    assert cfg.TRAIN.LR == pytest.approx(1e-3)


def test_int_where_float_expected_is_accepted(tmp_path):
    cfg = load_config(write(tmp_path, "TEST:\n  TAG_THRESHOLD: 2\n"))
    assert cfg.TEST.TAG_THRESHOLD == 2.0 and isinstance(cfg.TEST.TAG_THRESHOLD, float)


def test_misspelt_key_in_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "TRAIN:\n  LRR: 0.1\n"))
    message = str(info.value)
    assert "TRAIN.LRR" in message and "TRAIN.LR" in message.split("did you mean")[1]
    assert "\n" not in message


def test_misspelt_override_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"unknown config key TEST\.MODEL_FIEL"):
        load_config(None, ["TEST.MODEL_FIEL", "x.pth"])


def test_unknown_model_extra_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"MODEL\.EXTRA\.NUM_DECONV_FILTER\b"):
        load_config(write(tmp_path, "MODEL:\n  EXTRA:\n    NUM_DECONV_FILTER: [1]\n"))


def test_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"TRAIN\.END_EPOCH must be int"):
        load_config(write(tmp_path, "TRAIN:\n  END_EPOCH: many\n"))
    with pytest.raises(ConfigError, match=r"TRAIN\.IMAGES_PER_GPU must be int"):
        load_config(None, ["TRAIN.IMAGES_PER_GPU", "2.5"])


def test_unknown_model_name_lists_known_models(tmp_path):
    with pytest.raises(ConfigError, match=r"pose_ddrnet.*pose_mobilenet"):
        load_config(write(tmp_path, "MODEL:\n  NAME: pose_ddrnet\n"))


def test_inconsistent_per_output_lists_are_rejected():
    with pytest.raises(ConfigError, match=r"LOSS\.WITH_AE_LOSS has 1 entries but LOSS\.NUM_STAGES is 2"):
        load_config(None, ["LOSS.WITH_AE_LOSS", "(True,)"])


def test_odd_override_list_is_rejected():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["TRAIN.LR"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_config(write(tmp_path, "TRAIN:\n  LR: [1,\n"))


def test_a_key_given_twice_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid YAML at line 4: key 'LR' is given twice"):
        load_config(write(tmp_path, "TRAIN:\n  LR: 0.1\n  WD: 0.0\n  LR: 0.2\n"))


def test_keys_kept_for_the_release_warn_when_set_and_say_they_do_nothing():
    import warnings

    from litepose.config import CompatibilityKeyWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config("experiments/crowd_pose/mobilenet/mobile.yaml")          # the release's own values
        assert not [w for w in caught if issubclass(w.category, CompatibilityKeyWarning)]
        load_config("experiments/crowd_pose/mobilenet/mobile.yaml", ["VERBOSE", "False", "DEBUG.SAVE_HEATMAPS_GT", "False"])
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, CompatibilityKeyWarning))
    assert messages == [
        "config key DEBUG.SAVE_HEATMAPS_GT (False) is accepted for compatibility with the release's files and has no effect",
        "config key VERBOSE (False) is accepted for compatibility with the release's files and has no effect",
    ]


def test_relative_architecture_path_resolves_from_another_folder(tmp_path, monkeypatch):
    from conftest import REPO

    monkeypatch.chdir(tmp_path)
    cfg = load_config(str(REPO / "experiments" / "synthetic" / "quickstart.yaml"))
    assert cfg.MODEL.ARCH == str(REPO / "mobile_configs" / "quickstart.json")
    with pytest.raises(ConfigError, match=r"^config key MODEL.ARCH: nope.json not found in the current folder "
                                          rf"\({tmp_path}\) nor beside the config or above it"):
        load_config(str(REPO / "experiments" / "synthetic" / "quickstart.yaml"), ["MODEL.ARCH", "nope.json"])
