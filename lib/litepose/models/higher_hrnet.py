"""HigherHRNet (Cheng et al., CVPR 2020): the bottom-up baseline LitePose is compared with.

An HRNet backbone keeps a 1/4-resolution branch alive through the whole network and adds
1/8, 1/16 and 1/32 branches stage by stage; each "high-resolution module" runs its
branches (residual blocks) and then fuses them, every output branch receiving the sum of
all inputs resampled to its resolution. The head predicts at 1/4 (heatmaps + tags), then
concatenates that prediction to the feature, upsamples it with a transposed convolution
and predicts heatmaps again at 1/2: the same two outputs as LitePose,
``[B, 2J, H/4, W/4]`` and ``[B, J, H/2, W/2]``.

Module names follow HigherHRNet's code (``conv1``, ``layer1``, ``transition1``,
``stage2`` ... ``final_layers``, ``deconv_layers``), so its checkpoints and ImageNet HRNet
backbones load by name. As in the LitePose release, ``stem_inplanes`` sets the width of
the stem's bottleneck blocks and a branch with 0 blocks is a single 3x3 conv + BN + ReLU6.

The pieces shared with EfficientHRNet (blocks, high-resolution module, head) live here.
"""

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from .litepose import DECONV_GEOMETRY, output_channels
from .registry import register_model

BN_MOMENTUM = 0.1
STEM_WIDTH = 64  # HRNet's two stride-2 stem convolutions


def conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv + BN, residual add, ReLU."""

    expansion = 1

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce, 3x3, 1x1 expand (x4), residual add, ReLU."""

    expansion = 4

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def conv_bn(in_channels, out_channels, kernel_size=3, stride=1, activation=None, bias=False):
    """``Sequential(conv, BN[, activation])`` with 'same' padding for odd kernels."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=bias),
              nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)]
    if activation is not None:
        layers.append(activation)
    return nn.Sequential(*layers)


def residual_layer(block, in_channels, channels, num_blocks, stride=1):
    """``num_blocks`` residual blocks; the first projects the input when shapes differ."""
    downsample = None
    if stride != 1 or in_channels != channels * block.expansion:
        downsample = conv_bn(in_channels, channels * block.expansion, 1, stride)
    layers = [block(in_channels, channels, stride, downsample)]
    layers += [block(channels * block.expansion, channels) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class StageSpec(NamedTuple):
    """One HRNet stage: ``num_modules`` high-resolution modules with one entry per branch."""

    num_modules: int
    block: str
    num_blocks: Sequence[int]
    num_channels: Sequence[int]


class HighResolutionModule(nn.Module):
    """Parallel branches (1/4, 1/8, ...) then a fusion: output branch i is the ReLU of the
    sum of every branch resampled to branch i's resolution (1x1 conv + nearest upsampling
    from lower resolutions, chains of stride-2 3x3 convs from higher ones)."""

    def __init__(self, in_channels, block, num_blocks, channels, multi_scale_output=True):
        super().__init__()
        block = BLOCKS[block]
        self.branches = nn.ModuleList()
        out_channels = []
        for branch_in, count, width in zip(in_channels, num_blocks, channels):
            if count == 0:  # the LitePose release's lightened branch: one conv, no residual blocks
                self.branches.append(conv_bn(branch_in, width, 3, activation=nn.ReLU6(inplace=True)))
                out_channels.append(width)
            else:
                self.branches.append(residual_layer(block, branch_in, width, count))
                out_channels.append(width * block.expansion)
        self.out_channels = out_channels if multi_scale_output else out_channels[:1]
        self.fuse_layers = None
        if len(out_channels) > 1:
            self.fuse_layers = nn.ModuleList(
                nn.ModuleList(self._resample(out_channels, j, i) for j in range(len(out_channels)))
                for i in range(len(self.out_channels)))
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _resample(channels, source, target):
        if source == target:
            return nn.Identity()
        if source > target:
            return nn.Sequential(
                nn.Conv2d(channels[source], channels[target], 1, bias=False),
                nn.BatchNorm2d(channels[target]),
                nn.Upsample(scale_factor=2 ** (source - target), mode="nearest"))
        steps = []
        for step in range(target - source):
            last = step == target - source - 1
            steps.append(conv_bn(channels[source], channels[target] if last else channels[source], 3, 2,
                                 activation=None if last else nn.ReLU(inplace=True)))
        return nn.Sequential(*steps)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        outputs = []
        for fuse in self.fuse_layers:
            y = fuse[0](xs[0])
            for j in range(1, len(xs)):
                y = y + fuse[j](xs[j])
            outputs.append(self.relu(y))
        return outputs


def make_stage(spec, in_channels, multi_scale_output=True):
    """An HRNet stage; only its last module may drop the low-resolution outputs."""
    modules = []
    for index in range(spec.num_modules):
        last = index == spec.num_modules - 1
        module = HighResolutionModule(in_channels, spec.block, spec.num_blocks, spec.num_channels,
                                      multi_scale_output or not last)
        modules.append(module)
        in_channels = module.out_channels
    return nn.Sequential(*modules), in_channels


def branch_widths(spec):
    """Output width of each branch of a stage: its channels times the block's expansion
    (a branch without blocks keeps its channels)."""
    expansion = BLOCKS[spec.block].expansion
    return [c * (expansion if n else 1) for c, n in zip(spec.num_channels, spec.num_blocks)]


def make_transition(previous, current):
    """Adapt the previous stage's branches to the next: 3x3 conv where widths differ, and
    new lower-resolution branches made from the lowest one by stride-2 3x3 convs."""
    layers = nn.ModuleList()
    for i, width in enumerate(current):
        if i < len(previous):
            layers.append(nn.Identity() if previous[i] == width
                          else conv_bn(previous[i], width, 3, activation=nn.ReLU(inplace=True)))
        else:
            steps = i + 1 - len(previous)
            layers.append(nn.Sequential(*[
                conv_bn(previous[-1], width if step == steps - 1 else previous[-1], 3, 2,
                        activation=nn.ReLU(inplace=True))
                for step in range(steps)]))
    return layers


def apply_transition(transition, ys):
    """Existing branches go through their layer; new ones start from the lowest resolution."""
    return [layer(ys[i] if i < len(ys) else ys[-1]) for i, layer in enumerate(transition)]


class DeconvSpec(NamedTuple):
    """HigherHRNet's upsampling head: one entry per transposed convolution."""

    num_channels: Sequence[int]
    kernel_sizes: Sequence[int]
    num_basic_blocks: int
    cat_output: Sequence[bool]


class HigherResolutionHead(nn.Module):
    """Mixin building and running HigherHRNet's head on the highest-resolution feature:
    a prediction at 1/4, then per deconv step (concatenate the previous prediction if
    ``cat_output``) transposed conv + BN + ReLU, basic blocks, and a prediction at 2x."""

    def _build_head(self, in_channels, out_channels, deconv, final_kernel):
        self.cat_output = tuple(deconv.cat_output)
        self.final_layers = nn.ModuleList([self._final_conv(in_channels, out_channels[0], final_kernel)])
        self.deconv_layers = nn.ModuleList()
        for i, (width, kernel) in enumerate(zip(deconv.num_channels, deconv.kernel_sizes)):
            if self.cat_output[i]:
                in_channels += out_channels[i]
            padding, output_padding = DECONV_GEOMETRY[kernel]
            layers = [nn.Sequential(
                nn.ConvTranspose2d(in_channels, width, kernel, 2, padding, output_padding, bias=False),
                nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True))]
            layers += [nn.Sequential(BasicBlock(width, width)) for _ in range(deconv.num_basic_blocks)]
            self.deconv_layers.append(nn.Sequential(*layers))
            self.final_layers.append(self._final_conv(width, out_channels[i + 1], final_kernel))
            in_channels = width

    @staticmethod
    def _final_conv(in_channels, out_channels, kernel_size):
        return nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2)

    def head(self, x):
        y = self.final_layers[0](x)
        outputs = [y]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                x = torch.cat((x, y), 1)
            x = deconv(x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return outputs


def init_weights(model):
    """HigherHRNet's initialisation: conv and deconv weights N(0, 0.001), zero biases, unit BN."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, std=0.001)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def check_head(num_outputs, deconv):
    """The head has one output per deconv plus one; its specs must agree."""
    count = len(deconv.num_channels)
    if len(deconv.kernel_sizes) != count or len(deconv.cat_output) != count:
        raise ConfigError(f"MODEL.EXTRA.DECONV: NUM_CHANNELS, KERNEL_SIZE and CAT_OUTPUT need {count} entries each")
    bad = [k for k in deconv.kernel_sizes if k not in DECONV_GEOMETRY]
    if bad:
        raise ConfigError(f"MODEL.EXTRA.DECONV.KERNEL_SIZE must be 2, 3 or 4, got {list(deconv.kernel_sizes)}")
    if num_outputs != count + 1:
        raise ConfigError(f"LOSS.NUM_STAGES ({num_outputs}) must be MODEL.EXTRA.DECONV.NUM_DECONVS + 1 ({count + 1})")


class HigherHRNet(HigherResolutionHead):
    """HigherHRNet (``MODEL.NAME: pose_higher_hrnet``).

    Args:
        num_joints, tag_per_joint, with_heatmaps, with_tags: as for ``LitePose``; one
            ``with_*`` entry per output (1/4, then one per deconv).
        stem_inplanes: width of the stem's four bottleneck blocks (their output is 4x).
        stages: three ``StageSpec`` (HRNet stages 2, 3, 4).
        deconv: ``DeconvSpec`` of the head.
        final_conv_kernel: kernel of the prediction convolutions (1 or 3).
    """

    def __init__(self, num_joints=17, tag_per_joint=True, with_heatmaps=(True, True), with_tags=(True, False),
                 stem_inplanes=64, stages=(), deconv=None, final_conv_kernel=1):
        super().__init__()
        stages = [StageSpec(*s) for s in stages] or hrnet_stages(32)
        deconv = DeconvSpec(*deconv) if deconv is not None else DeconvSpec([32], [4], 4, [True])
        check_head(len(with_heatmaps), deconv)
        self.num_joints = num_joints
        self.final_channel = output_channels(num_joints, tag_per_joint, with_heatmaps, with_tags)

        self.conv1 = nn.Conv2d(3, STEM_WIDTH, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(STEM_WIDTH, STEM_WIDTH, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(STEM_WIDTH, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = residual_layer(Bottleneck, STEM_WIDTH, stem_inplanes, 4)

        channels = [stem_inplanes * Bottleneck.expansion]
        for index, spec in enumerate(stages):
            widths = branch_widths(spec)
            self.add_module(f"transition{index + 1}", make_transition(channels, widths))
            stage, channels = make_stage(spec, widths, multi_scale_output=index < len(stages) - 1)
            self.add_module(f"stage{index + 2}", stage)
        self.num_stages = len(stages)
        self._build_head(channels[0], self.final_channel, deconv, final_conv_kernel)
        init_weights(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for index in range(self.num_stages):
            xs = apply_transition(getattr(self, f"transition{index + 1}"), ys)
            ys = getattr(self, f"stage{index + 2}")(xs)
        return self.head(ys[0])


def hrnet_stages(width, num_blocks=4, modules=(1, 4, 3)):
    """HRNet-W``width``'s stages 2-4: branches of width w, 2w, 4w, 8w of basic blocks."""
    return [StageSpec(count, "BASIC", [num_blocks] * (i + 2), [width * 2 ** b for b in range(i + 2)])
            for i, count in enumerate(modules)]


# ---------------------------------------------------------------- config -> arguments

def reject_arch(cfg, arch):
    if arch is not None:
        raise ConfigError(f"{cfg.MODEL.NAME} takes no architecture file (--superconfig / MODEL.ARCH are for LitePose)")


def stage_specs(extra):
    """``MODEL.EXTRA.STAGE2..4`` as checked ``StageSpec``s."""
    specs = []
    for index in (2, 3, 4):
        name = f"STAGE{index}"
        stage = extra[name]
        branches = stage.NUM_BRANCHES
        if len(stage.NUM_BLOCKS) != branches or len(stage.NUM_CHANNELS) != branches:
            raise ConfigError(f"MODEL.EXTRA.{name}: NUM_BLOCKS and NUM_CHANNELS need NUM_BRANCHES ({branches}) entries")
        if stage.BLOCK not in BLOCKS:
            raise ConfigError(f"MODEL.EXTRA.{name}.BLOCK must be one of {', '.join(BLOCKS)}, got {stage.BLOCK!r}")
        if stage.FUSE_METHOD != "SUM":
            raise ConfigError(f"MODEL.EXTRA.{name}.FUSE_METHOD must be SUM, got {stage.FUSE_METHOD!r}")
        if stage.NUM_MODULES < 1 or any(n < 0 for n in stage.NUM_BLOCKS) or any(c < 1 for c in stage.NUM_CHANNELS):
            raise ConfigError(f"MODEL.EXTRA.{name}: NUM_MODULES, NUM_BLOCKS and NUM_CHANNELS must be positive")
        specs.append(StageSpec(stage.NUM_MODULES, stage.BLOCK, list(stage.NUM_BLOCKS), list(stage.NUM_CHANNELS)))
    return specs


def deconv_spec(extra):
    deconv = extra.DECONV
    count = deconv.NUM_DECONVS
    spec = DeconvSpec(list(deconv.NUM_CHANNELS)[:count], list(deconv.KERNEL_SIZE)[:count],
                      deconv.NUM_BASIC_BLOCKS, [bool(c) for c in deconv.CAT_OUTPUT][:count])
    if min(len(spec.num_channels), len(spec.kernel_sizes), len(spec.cat_output)) < count:
        raise ConfigError(f"MODEL.EXTRA.DECONV: NUM_CHANNELS, KERNEL_SIZE and CAT_OUTPUT need NUM_DECONVS ({count}) entries")
    return spec


def head_arguments(cfg):
    return dict(num_joints=cfg.MODEL.NUM_JOINTS, tag_per_joint=cfg.MODEL.TAG_PER_JOINT,
                with_heatmaps=tuple(cfg.LOSS.WITH_HEATMAPS_LOSS), with_tags=tuple(cfg.LOSS.WITH_AE_LOSS),
                deconv=deconv_spec(cfg.MODEL.EXTRA), final_conv_kernel=cfg.MODEL.EXTRA.FINAL_CONV_KERNEL)


@register_model("pose_higher_hrnet")
def build_higher_hrnet(cfg, arch=None):
    reject_arch(cfg, arch)
    extra = cfg.MODEL.EXTRA
    return HigherHRNet(stem_inplanes=extra.STEM_INPLANES, stages=stage_specs(extra), **head_arguments(cfg))
