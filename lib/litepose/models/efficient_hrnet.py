"""EfficientHRNet (Neff et al., 2020): the second baseline of the LitePose paper.

An EfficientNet backbone (scaled by ``width_mult`` / ``depth_mult``) provides features at
1/4, 1/8, 1/16 and 1/32; HRNet stages (as in HigherHRNet, widths scaled by
``1.2455 ** scale_factor``) fuse them, each stage taking one more backbone feature as its
new lowest-resolution branch; HigherHRNet's head predicts at 1/4 and 1/2. H-1 is B0
depth at width 0.909 with HRNet widths scaled by 1/1.2455, at 480 input.

Module names follow the LitePose release's ``pose_efficient_hrnet`` (``features``,
``trans{stage}_branch{i}``, ``stage2``..``stage4``, ``final_layers``, ``deconv_layers``),
so checkpoints trained with it load by name.
"""

import math

import torch
import torch.nn as nn

from ..utils.common import make_divisible
from ..errors import ConfigError
from .higher_hrnet import (BN_MOMENTUM, DeconvSpec, HigherResolutionHead, StageSpec, branch_widths, check_head,
                           head_arguments, hrnet_stages, init_weights, make_stage, reject_arch, stage_specs)
from .litepose import output_channels
from .registry import register_model

# EfficientNet-B0 (Tan & Le, 2019): expansion, channels, repeats, stride, kernel per stage.
EFFICIENTNET_B0 = (
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
)
STEM_CHANNELS = 32
HRNET_WIDTH_BASE = 1.2455  # EfficientHRNet's compound scaling of the HRNet widths
SE_REDUCTION = 4
DROP_CONNECT_RATE = 0.2
FEATURE_STRIDES = (4, 8, 16, 32)  # backbone features feeding HRNet branches 1-4


def round_filters(channels, width_mult):
    return make_divisible(channels * width_mult)


def round_repeats(repeats, depth_mult):
    return int(math.ceil(depth_mult * repeats))


def scale_hrnet_width(channels, scale_factor):
    return int(math.ceil(channels * HRNET_WIDTH_BASE ** scale_factor))


class ConvBNSwish(nn.Sequential):
    """TensorFlow-style 'same' padding (asymmetric for stride 2), conv, BN, swish."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1):
        pad = max(kernel_size - stride, 0)
        super().__init__(
            nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, 0, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.SiLU(),
        )


class SqueezeExcitation(nn.Module):
    """Channel attention: global pool, bottleneck of two 1x1 convs, sigmoid gate."""

    def __init__(self, channels, reduced):
        super().__init__()
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, reduced, 1),
            nn.SiLU(),
            nn.Conv2d(reduced, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.se(x)


class MBConv(nn.Module):
    """EfficientNet block: [1x1 expand], kxk depthwise, squeeze-excitation, 1x1 project;
    residual with drop-connect (training only) when shapes allow."""

    def __init__(self, in_channels, out_channels, expansion, kernel_size, stride, drop_connect_rate=DROP_CONNECT_RATE):
        super().__init__()
        hidden = in_channels * expansion
        layers = [ConvBNSwish(in_channels, hidden, 1)] if expansion != 1 else []
        layers += [
            ConvBNSwish(hidden, hidden, kernel_size, stride, groups=hidden),
            SqueezeExcitation(hidden, max(1, in_channels // SE_REDUCTION)),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = in_channels == out_channels and stride == 1
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x):
        out = self.conv(x)
        if not self.use_residual:
            return out
        if self.training and self.drop_connect_rate > 0:
            keep = 1.0 - self.drop_connect_rate
            mask = torch.floor(keep + torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device))
            out = out / keep * mask
        return x + out


def efficientnet_features(width_mult, depth_mult):
    """The scaled EfficientNet-B0 trunk as a flat list of layers (stem first), the output
    width of each, and the index of the last layer at each of ``FEATURE_STRIDES``."""
    in_channels = round_filters(STEM_CHANNELS, width_mult)
    layers, widths, strides = [ConvBNSwish(3, in_channels, 3, stride=2)], [in_channels], [2]
    for expansion, channels, repeats, stride, kernel in EFFICIENTNET_B0:
        out_channels = round_filters(channels, width_mult)
        for index in range(round_repeats(repeats, depth_mult)):
            block_stride = stride if index == 0 else 1
            layers.append(MBConv(in_channels, out_channels, expansion, kernel, block_stride))
            widths.append(out_channels)
            strides.append(strides[-1] * block_stride)
            in_channels = out_channels
    taps = [max(i for i, s in enumerate(strides) if s == stride) for stride in FEATURE_STRIDES]
    return layers, widths, taps


def transition(in_channels, out_channels):
    """EfficientHRNet's branch adapter: 3x3 conv (with bias, as in the release) + BN + ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 1, 1),
                         nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))


class EfficientHRNet(HigherResolutionHead):
    """EfficientHRNet (``MODEL.NAME: pose_efficient_hrnet``).

    Args:
        num_joints, tag_per_joint, with_heatmaps, with_tags: as for ``HigherHRNet``.
        width_mult, depth_mult: EfficientNet-B0 scaling of the backbone (H-1: 0.909, 0.833).
        scale_factor: HRNet widths (stages and deconv) are multiplied by 1.2455 ** scale_factor
            and rounded up (H-1: -1).
        stages: three ``StageSpec`` (HRNet stages 2, 3, 4 with 2, 3, 4 branches).
        deconv: ``DeconvSpec`` of the head; final_conv_kernel: as for ``HigherHRNet``.
    """

    def __init__(self, num_joints=17, tag_per_joint=True, with_heatmaps=(True, True), with_tags=(True, False),
                 width_mult=0.909, depth_mult=0.833, scale_factor=-1, stages=(), deconv=None, final_conv_kernel=1):
        super().__init__()
        stages = [StageSpec(*s) for s in stages] or hrnet_stages(32, num_blocks=2, modules=(1, 3, 3))
        deconv = DeconvSpec(*deconv) if deconv is not None else DeconvSpec([32], [4], 2, [True])
        stages = [s._replace(num_channels=[scale_hrnet_width(c, scale_factor) for c in s.num_channels])
                  for s in stages]
        deconv = deconv._replace(num_channels=[scale_hrnet_width(c, scale_factor) for c in deconv.num_channels])
        check_head(len(with_heatmaps), deconv)
        for index, spec in enumerate(stages):
            if len(spec.num_blocks) != index + 2:
                raise ConfigError(f"MODEL.EXTRA.STAGE{index + 2}.NUM_BRANCHES must be {index + 2} for EfficientHRNet "
                                  f"(one new backbone feature per stage), got {len(spec.num_blocks)}")
        self.num_joints = num_joints
        self.final_channel = output_channels(num_joints, tag_per_joint, with_heatmaps, with_tags)

        layers, widths, self.taps = efficientnet_features(width_mult, depth_mult)
        self.features = nn.Sequential(*layers)
        feature_widths = [widths[i] for i in self.taps]

        # Each stage adapts the previous stage's branches and the next backbone feature.
        previous = feature_widths[:1]
        self.num_stages = len(stages)
        for index, spec in enumerate(stages):
            current = branch_widths(spec)
            sources = previous + [feature_widths[index + 1]]
            for branch, (source, target) in enumerate(zip(sources, current), start=1):
                self.add_module(f"trans{index + 1}_branch{branch}", transition(source, target))
            stage, previous = make_stage(spec, current, multi_scale_output=index < len(stages) - 1)
            self.add_module(f"stage{index + 2}", stage)
        self._build_head(previous[0], self.final_channel, deconv, final_conv_kernel)
        init_weights(self)

    def backbone(self, x):
        """Backbone features at 1/4, 1/8, 1/16, 1/32."""
        features = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                features.append(x)
        return features

    def forward(self, x):
        features = self.backbone(x)
        ys = features[:1]
        for index in range(self.num_stages):
            inputs = ys + [features[index + 1]]
            xs = [getattr(self, f"trans{index + 1}_branch{b + 1}")(t) for b, t in enumerate(inputs)]
            ys = getattr(self, f"stage{index + 2}")(xs)
        return self.head(ys[0])


@register_model("pose_efficient_hrnet")
def build_efficient_hrnet(cfg, arch=None):
    reject_arch(cfg, arch)
    return EfficientHRNet(width_mult=cfg.MODEL.WIDTH_MULT, depth_mult=cfg.MODEL.DEPTH_MULT,
                          scale_factor=cfg.MODEL.SCALE_FACTOR, stages=stage_specs(cfg.MODEL.EXTRA),
                          **head_arguments(cfg))
