"""The supernet's search space and the sampler that draws architectures from it.

One place defines what the supernet can be: input resolutions, width multipliers
(applied independently to the stem, each stage and each deconv, then rounded with
``make_divisible``), blocks per stage, kernel sizes and expansions. The supernet is
built as the widest member; training samples members; the search mutates members;
weight transfer accepts only members.
"""

import random
from dataclasses import dataclass

from ..arch import KERNEL_SIZES, MAX_EXPANSION, NUM_DECONVS, NUM_STAGES, STAGE_STRIDES, validate_arch
from ..errors import ArchError, ConfigError
from ..utils.common import make_divisible, rng_state_from_lists, rng_state_to_lists


@dataclass(frozen=True)
class SearchSpace:
    img_sizes: tuple = (256, 320, 384, 448, 512)
    width_mults: tuple = (1.0, 0.75, 0.5, 0.25)
    input_channel: int = 24
    stage_channels: tuple = (32, 64, 96, 160)
    stage_strides: tuple = STAGE_STRIDES
    stage_blocks: tuple = ((6,), (8,), (10,), (10,))
    deconv_channels: tuple = (64, 48, 32)
    kernel_sizes: tuple = (7,)
    expansions: tuple = (6,)

    def __post_init__(self):
        def fail(message):
            raise ConfigError(f"search space: {message}")

        if not self.img_sizes or any(s <= 0 or s % 32 for s in self.img_sizes):
            fail(f"IMG_SIZES must be positive multiples of 32, got {list(self.img_sizes)}")
        if not self.width_mults or any(not 0 < m <= 1 for m in self.width_mults):
            fail(f"WIDTH_MULTS must lie in (0, 1], got {list(self.width_mults)}")
        if len(self.stage_channels) != NUM_STAGES or len(self.stage_blocks) != NUM_STAGES:
            fail(f"STAGE_CHANNELS and STAGE_BLOCKS need {NUM_STAGES} entries")
        if tuple(self.stage_strides) != STAGE_STRIDES:
            fail(f"STAGE_STRIDES must be {list(STAGE_STRIDES)}, got {list(self.stage_strides)}")
        if any(not choices or min(choices) <= 0 for choices in self.stage_blocks):
            fail(f"STAGE_BLOCKS must give positive block counts per stage, got {[list(c) for c in self.stage_blocks]}")
        if len(self.deconv_channels) != NUM_DECONVS:
            fail(f"MODEL.EXTRA.NUM_DECONV_FILTERS needs {NUM_DECONVS} widths, got {list(self.deconv_channels)}")
        if not self.kernel_sizes or any(k not in KERNEL_SIZES for k in self.kernel_sizes):
            fail(f"KERNEL_SIZES must be chosen from {list(KERNEL_SIZES)}, got {list(self.kernel_sizes)}")
        if not self.expansions or any(not 1 <= e <= MAX_EXPANSION for e in self.expansions):
            fail(f"EXPANSIONS must lie in [1, {MAX_EXPANSION}], got {list(self.expansions)}")

    @classmethod
    def from_config(cls, cfg):
        space = cfg.SEARCH_SPACE
        return cls(
            img_sizes=tuple(space.IMG_SIZES),
            width_mults=tuple(space.WIDTH_MULTS),
            input_channel=space.INPUT_CHANNEL,
            stage_channels=tuple(space.STAGE_CHANNELS),
            stage_strides=tuple(space.STAGE_STRIDES),
            stage_blocks=tuple(tuple(choices) for choices in space.STAGE_BLOCKS),
            deconv_channels=tuple(cfg.MODEL.EXTRA.NUM_DECONV_FILTERS),
            kernel_sizes=tuple(space.KERNEL_SIZES),
            expansions=tuple(space.EXPANSIONS),
        )

    def width_choices(self, max_width):
        """Widths a layer of maximum ``max_width`` may take, widest first."""
        return tuple(sorted({make_divisible(max_width * m) for m in self.width_mults}, reverse=True))

    def _build(self, img_size, input_channel, stage_channels, depths, deconv, block):
        stages = []
        for s, (channel, depth) in enumerate(zip(stage_channels, depths)):
            stages.append({
                "num_blocks": depth,
                "stride": self.stage_strides[s],
                "channel": channel,
                "block_setting": [list(block(s, b)) for b in range(depth)],
            })
        return {"img_size": img_size, "input_channel": input_channel,
                "deconv_setting": list(deconv), "backbone_setting": stages}

    def widest(self):
        """The largest member: the supernet's own shape."""
        return self._build(
            max(self.img_sizes), self.input_channel, self.stage_channels,
            [max(c) for c in self.stage_blocks], self.deconv_channels,
            lambda s, b: (max(self.expansions), max(self.kernel_sizes)),
        )

    def smallest(self):
        return self._build(
            min(self.img_sizes), min(self.width_choices(self.input_channel)),
            [min(self.width_choices(c)) for c in self.stage_channels],
            [min(c) for c in self.stage_blocks],
            [min(self.width_choices(d)) for d in self.deconv_channels],
            lambda s, b: (min(self.expansions), min(self.kernel_sizes)),
        )

    def sample(self, rng):
        """A uniformly random member, drawn with ``rng`` (a ``random.Random``)."""
        return self._build(
            rng.choice(self.img_sizes),
            rng.choice(self.width_choices(self.input_channel)),
            [rng.choice(self.width_choices(c)) for c in self.stage_channels],
            [rng.choice(c) for c in self.stage_blocks],
            [rng.choice(self.width_choices(d)) for d in self.deconv_channels],
            lambda s, b: (rng.choice(self.expansions), rng.choice(self.kernel_sizes)),
        )

    def scaled(self, img_size, ratio):
        """Every width scaled by ``ratio`` (the release's ``fixed_sample``), full depth."""
        return self._build(
            img_size, make_divisible(self.input_channel * ratio),
            [make_divisible(c * ratio) for c in self.stage_channels],
            [max(c) for c in self.stage_blocks],
            [make_divisible(d * ratio) for d in self.deconv_channels],
            lambda s, b: (max(self.expansions), max(self.kernel_sizes)),
        )

    def mutate(self, arch, probability, rng):
        """A copy of ``arch`` with each gene redrawn from its choices with ``probability``:
        resolution, stem, every deconv and stage width, every stage depth, every block's
        kernel and expansion (blocks a deeper stage gains are drawn fresh)."""
        arch = validate_arch(arch)

        def maybe(current, choices):
            return rng.choice(choices) if rng.random() < probability else current

        arch["img_size"] = maybe(arch["img_size"], self.img_sizes)
        arch["input_channel"] = maybe(arch["input_channel"], self.width_choices(self.input_channel))
        arch["deconv_setting"] = [maybe(w, self.width_choices(self.deconv_channels[i]))
                                  for i, w in enumerate(arch["deconv_setting"])]
        for s, stage in enumerate(arch["backbone_setting"]):
            stage["channel"] = maybe(stage["channel"], self.width_choices(self.stage_channels[s]))
            depth = maybe(stage["num_blocks"], self.stage_blocks[s])
            blocks = stage["block_setting"][:depth]
            blocks += [[rng.choice(self.expansions), rng.choice(self.kernel_sizes)]
                       for _ in range(depth - len(blocks))]
            stage["num_blocks"] = depth
            stage["block_setting"] = [[maybe(e, self.expansions), maybe(k, self.kernel_sizes)] for e, k in blocks]
        return arch

    def crossover(self, first, second, rng):
        """A child taking each gene from one parent or the other at random."""
        first, second = validate_arch(first), validate_arch(second)
        pick = lambda a, b: a if rng.random() < 0.5 else b  # noqa: E731
        child = {
            "img_size": pick(first["img_size"], second["img_size"]),
            "input_channel": pick(first["input_channel"], second["input_channel"]),
            "deconv_setting": [pick(a, b) for a, b in zip(first["deconv_setting"], second["deconv_setting"])],
            "backbone_setting": [],
        }
        for stage_a, stage_b in zip(first["backbone_setting"], second["backbone_setting"]):
            depth = pick(stage_a["num_blocks"], stage_b["num_blocks"])
            blocks = []
            for b in range(depth):
                options = [s["block_setting"][b] for s in (stage_a, stage_b) if b < s["num_blocks"]]
                blocks.append(list(pick(options[0], options[-1])))
            child["backbone_setting"].append({
                "num_blocks": depth, "stride": stage_a["stride"],
                "channel": pick(stage_a["channel"], stage_b["channel"]), "block_setting": blocks,
            })
        return child

    def check(self, arch, source="architecture"):
        """Raise ``ArchError`` naming the first field of ``arch`` outside this space."""
        arch = validate_arch(arch, source)

        def require(ok, field, value, allowed):
            if not ok:
                raise ArchError(
                    f"{source}: {field} = {value!r} is outside the search space (allowed: {', '.join(map(str, allowed))})"
                )

        require(arch["img_size"] in self.img_sizes, "img_size", arch["img_size"], self.img_sizes)
        allowed = self.width_choices(self.input_channel)
        require(arch["input_channel"] in allowed, "input_channel", arch["input_channel"], allowed)
        for i, width in enumerate(arch["deconv_setting"]):
            allowed = self.width_choices(self.deconv_channels[i])
            require(width in allowed, f"deconv_setting[{i}]", width, allowed)
        for s, stage in enumerate(arch["backbone_setting"]):
            allowed = self.width_choices(self.stage_channels[s])
            require(stage["channel"] in allowed, f"backbone_setting[{s}].channel", stage["channel"], allowed)
            require(stage["num_blocks"] in self.stage_blocks[s], f"backbone_setting[{s}].num_blocks",
                    stage["num_blocks"], self.stage_blocks[s])
            for b, (expansion, kernel) in enumerate(stage["block_setting"]):
                field = f"backbone_setting[{s}].block_setting[{b}]"
                require(expansion in self.expansions, f"{field} expansion", expansion, self.expansions)
                require(kernel in self.kernel_sizes, f"{field} kernel", kernel, self.kernel_sizes)
        return arch

    def contains(self, arch):
        try:
            self.check(arch)
        except ArchError:
            return False
        return True


class ArchManager:
    """Draws architectures from a ``SearchSpace`` for supernet training.

    ``random_sample()`` returns a new member each call, or always the same one after
    ``fix(arch)`` (the release's ``is_search`` mode, used by ``--superconfig``).
    The random state is the manager's own, so a seed reproduces the sequence.
    """

    def __init__(self, space=None, seed=None):
        self.space = space or SearchSpace()
        self.rng = random.Random(seed)
        self.fixed_arch = None

    @classmethod
    def from_config(cls, cfg, seed=None):
        return cls(SearchSpace.from_config(cfg), seed=seed)

    def fix(self, arch):
        self.fixed_arch = None if arch is None else self.space.check(arch)

    def random_sample(self):
        if self.fixed_arch is not None:
            return validate_arch(self.fixed_arch)
        return self.space.sample(self.rng)

    def fixed_sample(self, reso=256, ratio=0.5):
        return self.space.scaled(reso, ratio)

    def widest(self):
        return self.space.widest()

    def smallest(self):
        return self.space.smallest()

    def state_dict(self):
        return {"rng": rng_state_to_lists(self.rng.getstate())}

    def load_state_dict(self, state):
        self.rng.setstate(rng_state_from_lists(state["rng"]))
