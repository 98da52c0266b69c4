"""What the training and reliability tests share: a tiny architecture and supernet, config
overrides that keep runs to seconds on a CPU, and script runners."""

import os
import subprocess
import sys

from conftest import REPO, SHARED
from litepose.config import load_config

QUICKSTART = "experiments/synthetic/quickstart.yaml"
COCO_MINI = SHARED / "data" / "coco_mini"
TINY_ARCH = {"img_size": 64, "input_channel": 8, "deconv_setting": [8, 8, 8], "backbone_setting": [
    {"num_blocks": 1, "stride": s, "channel": c, "block_setting": [[2, 3]]} for s, c in zip((2, 2, 2, 1), (8, 8, 16, 16))]}
# A supernet small enough for CPU tests, with every elastic dimension switched on.
TINY_SPACE = ["MODEL.NAME", "pose_supermobilenet", "SEARCH_SPACE.IMG_SIZES", "[64, 96]",
              "SEARCH_SPACE.INPUT_CHANNEL", "16", "SEARCH_SPACE.STAGE_CHANNELS", "[16, 16, 24, 32]",
              "SEARCH_SPACE.STAGE_BLOCKS", "[[1, 2], [1, 2], [1, 2], [1, 2]]", "SEARCH_SPACE.KERNEL_SIZES", "[3, 5, 7]",
              "SEARCH_SPACE.EXPANSIONS", "[2, 3]", "MODEL.EXTRA.NUM_DECONV_FILTERS", "[16, 16, 16]"]
NO_AUGMENT = ["DATASET.MAX_ROTATION", "0", "DATASET.MIN_SCALE", "1.0", "DATASET.MAX_SCALE", "1.0",
              "DATASET.MAX_TRANSLATE", "0", "DATASET.FLIP", "0.0"]


def tiny_opts(tmp_path, data_root, arch, *extra):
    return ["DATASET.ROOT", str(data_root), "MODEL.ARCH", str(arch), "OUTPUT_DIR", str(tmp_path / "output"),
            "LOG_DIR", str(tmp_path / "log"), "WORKERS", "0", "TRAIN.IMAGES_PER_GPU", "4", "TRAIN.END_EPOCH", "1",
            "TRAIN.VAL_FREQ", "1", "TRAIN.LR_STEP", "[100]", "DEVICE", "cpu", *extra]


def tiny_cfg(tmp_path, data_root, arch, *extra):
    return load_config(QUICKSTART, tiny_opts(tmp_path, data_root, arch, *extra))


def run_script(args, timeout=300, env=None):
    environment = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=environment)


def one_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]
