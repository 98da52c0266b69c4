"""LitePose architecture descriptions (the release's ``mobile_configs/*.json`` schema).

An architecture is a plain dict::

    {"img_size": 448, "input_channel": 16, "deconv_setting": [32, 24, 32],
     "backbone_setting": [{"num_blocks": 6, "stride": 2, "channel": 16,
                           "block_setting": [[6, 7], ...]}, ...]}

``block_setting`` holds ``[expansion, kernel]`` per block. ``load_arch`` validates a
file and rejects anything a LitePose model cannot be built from with one line naming
the field; whether the architecture also lies in a supernet's search space is the
search space's question (``litepose.models.space``).

Upper limits keep a hostile file from exhausting memory when the model is built: ``img_size``
at most ``MAX_IMG_SIZE`` (2048; the released architectures use 256 to 512), widths at most
``MAX_CHANNELS`` (512; they use at most 160) and at most ``MAX_BLOCKS`` (20; they use 10)
blocks per stage.
"""

import json
import math

from .errors import ArchError
from .utils.io import atomic_write_text, check_output_file, load_json

NUM_STAGES = 4
NUM_DECONVS = 3
# The fusion head needs features at 1/4, 1/8, 1/16, 1/16 after the stride-2 stem.
STAGE_STRIDES = (2, 2, 2, 1)
KERNEL_SIZES = (3, 5, 7)
MAX_EXPANSION = 6
MIN_EXPANSION = 1
CHANNEL_DIVISOR = 8
IMG_SIZE_DIVISOR = 32
MAX_IMG_SIZE = 2048
MAX_CHANNELS = 512
MAX_BLOCKS = 20
MAX_ARCH_FILE_BYTES = 2**20

_KEYS = ("img_size", "input_channel", "deconv_setting", "backbone_setting")
_STAGE_KEYS = ("num_blocks", "stride", "channel", "block_setting")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_channel(value, field, source):
    if not _is_int(value) or value <= 0 or value % CHANNEL_DIVISOR:
        raise ArchError(f"{source}: {field} must be a positive multiple of {CHANNEL_DIVISOR}, got {value!r}")
    if value > MAX_CHANNELS:
        raise ArchError(f"{source}: {field} must be at most {MAX_CHANNELS}, got {value!r}")


def validate_arch(arch, source="architecture"):
    """Check ``arch`` and return a clean deep copy (known keys only, in schema order)."""
    if not isinstance(arch, dict):
        raise ArchError(f"{source}: an architecture must be a JSON object, got {type(arch).__name__}")
    for key in _KEYS:
        if key not in arch:
            raise ArchError(f"{source}: missing field '{key}'")

    img_size = arch["img_size"]
    if not _is_int(img_size) or img_size <= 0 or img_size % IMG_SIZE_DIVISOR:
        raise ArchError(f"{source}: img_size must be a positive multiple of {IMG_SIZE_DIVISOR}, got {img_size!r}")
    if img_size > MAX_IMG_SIZE:
        raise ArchError(f"{source}: img_size must be at most {MAX_IMG_SIZE}, got {img_size!r}")
    _check_channel(arch["input_channel"], "input_channel", source)

    deconv = arch["deconv_setting"]
    if not isinstance(deconv, list) or len(deconv) != NUM_DECONVS:
        raise ArchError(f"{source}: deconv_setting must list {NUM_DECONVS} widths, got {deconv!r}")
    for i, width in enumerate(deconv):
        _check_channel(width, f"deconv_setting[{i}]", source)

    stages = arch["backbone_setting"]
    if not isinstance(stages, list) or len(stages) != NUM_STAGES:
        count = len(stages) if isinstance(stages, list) else type(stages).__name__
        raise ArchError(f"{source}: backbone_setting must list {NUM_STAGES} stages, got {count}")
    clean_stages = []
    for s, stage in enumerate(stages):
        where = f"backbone_setting[{s}]"
        if not isinstance(stage, dict):
            raise ArchError(f"{source}: {where} must be an object, got {type(stage).__name__}")
        for key in _STAGE_KEYS:
            if key not in stage:
                raise ArchError(f"{source}: {where} is missing field '{key}'")
        if not _is_int(stage["stride"]) or stage["stride"] != STAGE_STRIDES[s]:
            raise ArchError(
                f"{source}: {where}.stride must be {STAGE_STRIDES[s]} (strides are {list(STAGE_STRIDES)}), got {stage['stride']!r}"
            )
        _check_channel(stage["channel"], f"{where}.channel", source)
        num_blocks = stage["num_blocks"]
        if not _is_int(num_blocks) or num_blocks <= 0:
            raise ArchError(f"{source}: {where}.num_blocks must be a positive integer, got {num_blocks!r}")
        if num_blocks > MAX_BLOCKS:
            raise ArchError(f"{source}: {where}.num_blocks must be at most {MAX_BLOCKS}, got {num_blocks!r}")
        blocks = stage["block_setting"]
        if not isinstance(blocks, list) or len(blocks) != num_blocks:
            count = len(blocks) if isinstance(blocks, list) else type(blocks).__name__
            raise ArchError(f"{source}: {where}.block_setting has {count} entries but num_blocks is {num_blocks}")
        clean_blocks = []
        for b, block in enumerate(blocks):
            field = f"{where}.block_setting[{b}]"
            if not isinstance(block, list) or len(block) != 2:
                raise ArchError(f"{source}: {field} must be [expansion, kernel], got {block!r}")
            expansion, kernel = block
            if not _is_number(expansion) or not MIN_EXPANSION <= expansion <= MAX_EXPANSION:
                raise ArchError(
                    f"{source}: {field} expansion must be between {MIN_EXPANSION} and {MAX_EXPANSION}, got {expansion!r}"
                )
            if not _is_int(kernel) or kernel not in KERNEL_SIZES:
                raise ArchError(f"{source}: {field} kernel must be one of 3, 5, 7, got {kernel!r}")
            clean_blocks.append([expansion, kernel])
        clean_stages.append(
            {"num_blocks": num_blocks, "stride": stage["stride"], "channel": stage["channel"],
             "block_setting": clean_blocks}
        )
    return {
        "img_size": img_size,
        "input_channel": arch["input_channel"],
        "deconv_setting": list(deconv),
        "backbone_setting": clean_stages,
    }


def load_arch(path):
    """Read and validate an architecture JSON file."""
    data = load_json(path, ArchError, "architecture file", max_bytes=MAX_ARCH_FILE_BYTES)
    return validate_arch(data, source=path)


def save_arch(arch, path, overwrite=False):
    """Write ``arch`` as JSON in the release's schema, atomically."""
    arch = validate_arch(arch)
    check_output_file(path, force=overwrite, what="architecture file", error=ArchError)
    atomic_write_text(path, json.dumps(arch) + "\n")


def stage_channels(arch):
    """Widths of the stem output and of each stage: ``[input_channel, c1, c2, c3, c4]``."""
    return [arch["input_channel"]] + [stage["channel"] for stage in arch["backbone_setting"]]


def describe_arch(arch):
    """One line for logs: resolution, widths, depths, kernels and expansions."""
    blocks = [b for stage in arch["backbone_setting"] for b in stage["block_setting"]]
    kernels = sorted({k for _, k in blocks})
    expansions = sorted({e for e, _ in blocks})
    return (
        f"img {arch['img_size']}, stem {arch['input_channel']}, "
        f"stages {'/'.join(str(c) for c in stage_channels(arch)[1:])} "
        f"x {'/'.join(str(s['num_blocks']) for s in arch['backbone_setting'])} blocks, "
        f"deconv {'/'.join(str(d) for d in arch['deconv_setting'])}, "
        f"kernel {'/'.join(map(str, kernels))}, expansion {'/'.join(str(e) for e in expansions)}"
    )


def model_arch(model):
    """The architecture a model runs: a supernet's active one, a LitePose model's own, else None."""
    arch = getattr(model, "active_arch", None) or getattr(model, "arch", None)
    return arch if isinstance(arch, dict) else None


def default_input_size(cfg, model=None, input_size=None):
    """The input size of a model at test time, export and calibration (the one rule): an
    explicit ``input_size``, else the architecture's ``img_size`` (``model`` a LitePose model,
    a supernet with an active architecture, or an architecture dict), else the config's
    ``DATASET.INPUT_SIZE`` (the baselines, and networks without an architecture)."""
    if input_size:
        return int(input_size)
    arch = model if isinstance(model, dict) else model_arch(model)
    if arch is not None and "img_size" in arch:
        return int(arch["img_size"])
    return int(cfg.DATASET.INPUT_SIZE)
