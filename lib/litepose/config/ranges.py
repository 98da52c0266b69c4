"""The range of every numeric config key where a wrong sign or zero is meaningless: one table,
checked when a config is loaded (``load_config``), so that ``TRAIN.LR_FACTOR -1`` or
``DATASET.MAX_NUM_PEOPLE 0`` is one line naming the key instead of a silently wrong run.

Each entry is ``key: (low, high, what)``: ``low`` and ``high`` are inclusive bounds (None: no
bound); ``what`` is ``"int"`` or ``"number"``; a key whose default is a list has the range
checked for each of its entries. ``gt0`` marks a strict lower bound of 0 (``> 0``). Upper bounds
are limits of sanity and memory (an input of 2048 pixels is four times the release's largest),
far above anything the release's configs use.
"""

import math

from ..errors import ConfigError
from ..utils.args import range_text
from ..utils.limits import MAX_INPUT_SIZE, input_size_problem

GT0 = "gt0"  # a strict lower bound: > 0
MAX_PEOPLE = 1000
MAX_EPOCHS = 100_000
MAX_SEED = 2**63 - 1  # torch.manual_seed's range

RANGES = {
    "WORKERS": (0, 1024, "int"),
    "PRINT_FREQ": (0, None, "int"),
    "RANK": (0, None, "int"),
    "GPUS": (0, None, "int"),
    "DIST_TIMEOUT": (GT0, None, "number"),
    "FP16.STATIC_LOSS_SCALE": (GT0, None, "number"),
    "MODEL.NUM_JOINTS": (1, 1000, "int"),
    "MODEL.WIDTH_MULT": (GT0, 16, "number"),
    "MODEL.DEPTH_MULT": (GT0, 16, "number"),
    "MODEL.EXTRA.FINAL_CONV_KERNEL": (1, 15, "int"),
    "MODEL.EXTRA.NUM_DECONV_LAYERS": (0, 16, "int"),
    "MODEL.EXTRA.NUM_DECONV_FILTERS": (1, 4096, "int"),
    "MODEL.EXTRA.NUM_DECONV_KERNELS": (1, 16, "int"),
    "MODEL.EXTRA.STEM_INPLANES": (1, 4096, "int"),
    "SEARCH_SPACE.IMG_SIZES": (32, MAX_INPUT_SIZE, "int"),
    "SEARCH_SPACE.WIDTH_MULTS": (GT0, 4, "number"),
    "SEARCH_SPACE.INPUT_CHANNEL": (1, 512, "int"),
    "SEARCH_SPACE.STAGE_CHANNELS": (1, 512, "int"),
    "SEARCH_SPACE.STAGE_BLOCKS": (1, 20, "int"),
    "SEARCH_SPACE.STAGE_STRIDES": (1, 2, "int"),
    "SEARCH_SPACE.KERNEL_SIZES": (1, 15, "int"),
    "SEARCH_SPACE.EXPANSIONS": (GT0, 16, "number"),
    "LOSS.NUM_STAGES": (1, 8, "int"),
    "LOSS.HEATMAPS_LOSS_FACTOR": (0, None, "number"),
    "LOSS.PUSH_LOSS_FACTOR": (0, None, "number"),
    "LOSS.PULL_LOSS_FACTOR": (0, None, "number"),
    "DATASET.NUM_JOINTS": (1, 1000, "int"),
    # 0 people per image would zero the associative-embedding loss without a word.
    "DATASET.MAX_NUM_PEOPLE": (1, MAX_PEOPLE, "int"),
    "DATASET.MAX_ROTATION": (0, 180, "number"),
    "DATASET.MIN_SCALE": (GT0, 100, "number"),
    "DATASET.MAX_SCALE": (GT0, 100, "number"),
    "DATASET.MAX_TRANSLATE": (0, None, "number"),
    "DATASET.INPUT_SIZE": (32, MAX_INPUT_SIZE, "int"),
    "DATASET.OUTPUT_SIZE": (1, MAX_INPUT_SIZE, "int"),
    "DATASET.FLIP": (0, 1, "number"),
    "DATASET.BASE_SIZE": (GT0, None, "number"),
    "DATASET.BASE_SIGMA": (GT0, None, "number"),
    "DATASET.SIGMAS": (GT0, None, "number"),
    "DATASET.FLIP_PAIRS": (0, None, "int"),
    "DATASET.SKELETON": (0, None, "int"),
    "DATASET.MAX_UNREADABLE_IMAGES": (0, None, "int"),
    # A factor of 0 or less would stop or reverse learning at the first LR_STEP.
    "TRAIN.LR_FACTOR": (GT0, None, "number"),
    "TRAIN.LR_STEP": (0, None, "int"),
    "TRAIN.LR": (GT0, None, "number"),
    "TRAIN.MOMENTUM": (0, 1, "number"),
    "TRAIN.WD": (0, None, "number"),
    "TRAIN.GAMMA1": (0, 1, "number"),
    "TRAIN.GAMMA2": (0, 1, "number"),
    "TRAIN.BEGIN_EPOCH": (0, MAX_EPOCHS, "int"),
    "TRAIN.END_EPOCH": (1, MAX_EPOCHS, "int"),
    "TRAIN.IMAGES_PER_GPU": (1, 4096, "int"),
    "TRAIN.SEED": (0, MAX_SEED, "int"),
    "TRAIN.CLIP_GRAD_NORM": (0, None, "number"),
    "TRAIN.INPUT_SIZE": (0, MAX_INPUT_SIZE, "int"),
    "TRAIN.VAL_FREQ": (0, None, "int"),
    "TRAIN.VAL_AP_IMAGES": (0, None, "int"),
    "TRAIN.DISTILL_FACTOR": (0, None, "number"),
    "TRAIN.CHECKPOINT_STEPS": (0, None, "int"),
    "TEST.IMAGES_PER_GPU": (1, 4096, "int"),
    "TEST.SCALE_FACTOR": (GT0, 8, "number"),
    # A heatmap value is a probability-like score: a threshold above 1 keeps no joint at all.
    "TEST.DETECTION_THRESHOLD": (0, 1, "number"),
    "TEST.TAG_THRESHOLD": (GT0, None, "number"),
    "TEST.NMS_KERNEL": (1, 63, "int"),
    "TEST.NMS_PADDING": (0, 31, "int"),
}

INPUT_SIZE_KEYS = ("DATASET.INPUT_SIZE", "TRAIN.INPUT_SIZE", "SEARCH_SPACE.IMG_SIZES")


def _lookup(cfg, key):
    node = cfg
    for part in key.split("."):
        if part not in node:
            return None, False
        node = node[part]
    return node, True


def _flatten(value):
    """The numbers of a scalar, a list, or a list of lists (pairs, blocks)."""
    if isinstance(value, (list, tuple)):
        return [number for item in value for number in _flatten(item)]
    return [value]


def _bounds_text(low, high):
    return range_text(high=high, above=0) if low == GT0 else range_text(low, high)


def check_ranges(cfg, ranges=RANGES):
    """``ConfigError`` naming the first key of ``ranges`` whose value (or an entry of it) is not
    a number of the right kind within its bounds."""
    for key, (low, high, kind) in ranges.items():
        value, present = _lookup(cfg, key)
        if not present or value is None:
            continue
        for number in _flatten(value):
            ok_type = isinstance(number, (int, float)) and not isinstance(number, bool)
            if kind == "int":
                ok_type = ok_type and (isinstance(number, int) or float(number).is_integer())
            if not ok_type or not math.isfinite(number):
                expected = "integers" if kind == "int" else "finite numbers"
                raise ConfigError(f"config key {key} must hold {expected}, got {value!r}")
            too_low = (number <= 0) if low == GT0 else (low is not None and number < low)
            too_high = high is not None and number > high
            if too_low or too_high:
                if isinstance(value, (list, tuple)):
                    raise ConfigError(f"config key {key} entries must be {_bounds_text(low, high)}, "
                                      f"got {list(value)!r}")
                raise ConfigError(f"config key {key} must be {_bounds_text(low, high)}, got {value!r}")
    # Input sizes follow the one input-size rule (litepose.utils.limits) wherever they appear.
    for key in INPUT_SIZE_KEYS:
        value, present = _lookup(cfg, key)
        for size in (_flatten(value) if present and value is not None else []):
            if key == "TRAIN.INPUT_SIZE" and size == 0:
                continue  # 0: DATASET.INPUT_SIZE
            problem = input_size_problem(int(size), f"config key {key}")
            if problem:
                raise ConfigError(problem)
    d = cfg.DATASET
    if d.MIN_SCALE > d.MAX_SCALE:
        raise ConfigError(f"DATASET.MIN_SCALE ({d.MIN_SCALE}) must not exceed DATASET.MAX_SCALE ({d.MAX_SCALE})")
    if d.SIGMA == 0:
        raise ConfigError("config key DATASET.SIGMA must not be 0 (the release uses 2; negative means output size / 64)")
    if cfg.TRAIN.END_EPOCH <= cfg.TRAIN.BEGIN_EPOCH:
        raise ConfigError(f"TRAIN.END_EPOCH ({cfg.TRAIN.END_EPOCH}) must exceed TRAIN.BEGIN_EPOCH ({cfg.TRAIN.BEGIN_EPOCH})")
