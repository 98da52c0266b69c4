"""LitePose (Wang et al., CVPR 2022): the fixed network and its weight-sharing supernet.

One constructor defines the architecture. ``LitePose`` builds it from static layers;
``SuperLitePose`` builds the search space's widest member from elastic layers, runs any
member after ``set_active_arch(arch)`` and hands it back as a ``LitePose`` with the
sliced weights (``get_active_subnet()``). Module names follow the release, so its
checkpoints load as they are.

Structure: a MobileNetV2 stem and four stages of inverted residual blocks (features at
1/2, 1/4, 1/8, 1/16, 1/16), then a fusion deconv head. Each of its three steps upsamples
the running ("refined") feature and the backbone feature of the same stride ("raw")
with 4x4 transposed convolutions, sums them, and applies BN + ReLU. After steps 2 and 3
separable 5x5 convolutions on both refined and raw features give the outputs:
``[B, 2J, H/4, W/4]`` (heatmaps then tags) and ``[B, J, H/2, W/2]`` (heatmaps).
"""

import torch
import torch.nn as nn

from ..arch import stage_channels, validate_arch
from ..errors import ArchError
from .space import SearchSpace
from .elastic import (ElasticBatchNorm2d, ElasticConv2d, ElasticConvTranspose2d, ElasticInvertedResidual,
                      ElasticSepConv, load_static_weights)
from .layers import InvertedResidual, SepConv, conv_bn_relu6

STEM_WIDTH = 32
FINAL_KERNEL = 5
# Transposed-conv kernel -> (padding, output_padding) doubling the resolution.
DECONV_GEOMETRY = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


class _StaticLayers:
    conv = nn.Conv2d
    bn = nn.BatchNorm2d
    block = InvertedResidual
    deconv = nn.ConvTranspose2d
    sep_conv = SepConv


class _ElasticLayers:
    conv = ElasticConv2d
    bn = ElasticBatchNorm2d
    block = ElasticInvertedResidual
    deconv = ElasticConvTranspose2d
    sep_conv = ElasticSepConv


def output_channels(num_joints, tag_per_joint, with_heatmaps, with_tags):
    """Channels of each output: J heatmaps if enabled, then J (or 1) tag maps if enabled."""
    tag_dim = num_joints if tag_per_joint else 1
    return [(num_joints if heat else 0) + (tag_dim if tag else 0) for heat, tag in zip(with_heatmaps, with_tags)]


class LitePose(nn.Module):
    """The fixed LitePose network for one architecture (``MODEL.NAME: pose_mobilenet``).

    Args:
        arch: architecture dict (``litepose.arch`` schema).
        num_joints: J, keypoints per person (17 for COCO, 14 for CrowdPose).
        tag_per_joint: one tag map per joint (True) or one shared tag map.
        with_heatmaps, with_tags: per output (1/4, 1/2), whether it carries heatmaps / tags.
        deconv_kernels: kernel size of each transposed convolution (4, 3 or 2).
    """

    _layers = _StaticLayers

    def __init__(self, arch, num_joints=17, tag_per_joint=True, with_heatmaps=(True, True),
                 with_tags=(True, False), deconv_kernels=(4, 4, 4)):
        super().__init__()
        arch = validate_arch(arch)
        if len(with_heatmaps) != 2 or len(with_tags) != 2:
            raise ArchError("LitePose has two outputs: with_heatmaps and with_tags need 2 entries each")
        if len(deconv_kernels) != 3 or any(k not in DECONV_GEOMETRY for k in deconv_kernels):
            raise ArchError(f"deconv kernels must be 3 values from 2, 3, 4, got {list(deconv_kernels)}")
        self.arch = arch
        self.num_joints = num_joints
        self.head_config = dict(num_joints=num_joints, tag_per_joint=tag_per_joint,
                                with_heatmaps=tuple(with_heatmaps), with_tags=tuple(with_tags),
                                deconv_kernels=tuple(deconv_kernels))
        self.final_channel = output_channels(num_joints, tag_per_joint, with_heatmaps, with_tags)
        if min(self.final_channel) <= 0:
            raise ArchError("each LitePose output needs heatmaps or tags enabled")
        layers = self._layers
        channels = stage_channels(arch)

        self.first = nn.Sequential(
            conv_bn_relu6(3, STEM_WIDTH, 3, stride=2),
            conv_bn_relu6(STEM_WIDTH, STEM_WIDTH, 3, groups=STEM_WIDTH),
            layers.conv(STEM_WIDTH, channels[0], 1, bias=False),
            layers.bn(channels[0]),
        )

        stages = []
        in_channels = channels[0]
        for stage in arch["backbone_setting"]:
            blocks = []
            for index, (expansion, kernel) in enumerate(stage["block_setting"]):
                stride = stage["stride"] if index == 0 else 1
                blocks.append(layers.block(in_channels, stage["channel"], stride, kernel, expansion))
                in_channels = stage["channel"]
            stages.append(nn.Sequential(*blocks))
        self.stage = nn.ModuleList(stages)

        # Fusion head: refined features start from the last stage, raw ones from the stage before.
        self.deconv_refined = nn.ModuleList()
        self.deconv_raw = nn.ModuleList()
        self.deconv_bnrelu = nn.ModuleList()
        refined_channels = channels[-1]
        for i, (width, kernel) in enumerate(zip(arch["deconv_setting"], deconv_kernels)):
            padding, output_padding = DECONV_GEOMETRY[kernel]
            self.deconv_refined.append(
                layers.deconv(refined_channels, width, kernel, 2, padding, output_padding, bias=False))
            self.deconv_raw.append(
                layers.deconv(channels[-i - 2], width, kernel, 2, padding, output_padding, bias=False))
            self.deconv_bnrelu.append(nn.Sequential(layers.bn(width), nn.ReLU(inplace=True)))
            refined_channels = width

        # Outputs after deconv steps 2 and 3 (1/4 and 1/2), from refined and raw features.
        self.final_refined = nn.ModuleList()
        self.final_raw = nn.ModuleList()
        for i, out_channels in enumerate(self.final_channel, start=1):
            self.final_refined.append(layers.sep_conv(arch["deconv_setting"][i], out_channels, FINAL_KERNEL))
            self.final_raw.append(layers.sep_conv(channels[-i - 3], out_channels, FINAL_KERNEL))

    def run_stage(self, index, x):
        return self.stage[index](x)

    def forward(self, x):
        x = self.first(x)
        features = [x]
        for index in range(len(self.stage)):
            features.append(self.run_stage(index, features[-1]))
        outputs = []
        refined, raw = features[-1], features[-2]
        for i in range(len(self.deconv_refined)):
            refined = self.deconv_bnrelu[i](self.deconv_refined[i](refined) + self.deconv_raw[i](raw))
            raw = features[-i - 3]
            if i > 0:
                outputs.append(self.final_refined[i - 1](refined) + self.final_raw[i - 1](raw))
        return outputs


class SuperLitePose(LitePose):
    """The weight-sharing supernet (``MODEL.NAME: pose_supermobilenet``).

    Built as the widest member of ``space``. ``set_active_arch(arch)`` selects a member:
    its resolution, every width, each block's kernel and expansion, and the number of
    blocks run per stage (the first n). ``get_active_subnet()`` returns that member as a
    ``LitePose`` whose outputs equal the supernet's.
    """

    _layers = _ElasticLayers

    def __init__(self, space=None, num_joints=17, tag_per_joint=True, with_heatmaps=(True, True),
                 with_tags=(True, False), deconv_kernels=(4, 4, 4)):
        space = space or SearchSpace()
        super().__init__(space.widest(), num_joints, tag_per_joint, with_heatmaps, with_tags, deconv_kernels)
        self.space = space
        self.active_depths = [len(stage) for stage in self.stage]
        self.active_arch = self.arch

    def set_active_arch(self, arch):
        """Run ``arch`` from now on; it must be a member of the search space.

        Each field of the architecture goes to the layers it names; input widths follow
        from the tensors that arrive, so no wiring is repeated here.
        """
        arch = self.space.check(arch)
        self.first[2].set_active(arch["input_channel"])
        for stage_layers, stage in zip(self.stage, arch["backbone_setting"]):
            for block, (expansion, kernel) in zip(stage_layers, stage["block_setting"]):
                block.set_active(stage["channel"], kernel, expansion)
        for refined, raw, width in zip(self.deconv_refined, self.deconv_raw, arch["deconv_setting"]):
            refined.set_active(width)
            raw.set_active(width)
        self.active_depths = [stage["num_blocks"] for stage in arch["backbone_setting"]]
        self.active_arch = arch
        return arch

    def run_stage(self, index, x):
        for block in self.stage[index][: self.active_depths[index]]:
            x = block(x)
        return x

    def get_active_subnet(self):
        """The active architecture as a ``LitePose`` holding the sliced weights."""
        weight = self.first[0][0].weight
        subnet = LitePose(self.active_arch, **self.head_config).to(device=weight.device, dtype=weight.dtype)
        load_static_weights(subnet, self)
        return subnet.train(self.training)

    def reorganize_channels(self):
        """Sort channels by importance so narrow sub-networks keep the most important ones.

        A channel's importance is the L1 norm of the next stage's input weights for it (the
        release's criterion, used after loading pretrained weights). The stem output and the
        outputs of stages 1-3 are sorted, as in the release; every layer reading a sorted
        feature is permuted to match, so the widest network computes exactly the same thing.
        """
        channels = [[(self.first[2], self.first[3])]]
        channels += [[(block.point_conv[0], block.point_conv[1]) for block in stage] for stage in self.stage]
        readers = {index: [] for index in range(len(channels))}
        for s, stage in enumerate(self.stage):
            readers[s].append(stage[0].inv[0])
            readers[s + 1].extend(block.inv[0] for block in list(stage)[1:])
        for i, deconv in enumerate(self.deconv_raw):
            readers[len(channels) - 2 - i].append(deconv)
        readers[len(channels) - 1].append(self.deconv_refined[0])
        for i, final in enumerate(self.final_raw, start=1):
            readers[len(channels) - 3 - i].append(final)
        with torch.no_grad():
            for index in range(len(self.stage)):  # not the last stage, as the release
                rank_by = self.stage[index][0].inv[0].weight
                order = torch.argsort(rank_by.abs().sum(dim=(0, 2, 3)), descending=True)
                for conv, bn in channels[index]:
                    _permute(conv.weight, order, dim=0)
                    _permute_bn(bn, order)
                for reader in readers[index]:
                    _permute_input(reader, order)


def _permute(tensor, order, dim):
    tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))


def _permute_bn(bn, order):
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        _permute(tensor, order, dim=0)


def _permute_input(layer, order):
    """Permute the input channels of a layer reading a reordered feature."""
    if isinstance(layer, nn.ConvTranspose2d):  # weight is [in, out, k, k]
        _permute(layer.weight, order, dim=0)
    elif isinstance(layer, (SepConv, ElasticSepConv)):  # depthwise + BN keep the order, 1x1 reads it
        _permute(layer.conv[0].weight, order, dim=0)
        _permute_bn(layer.conv[1], order)
        _permute(layer.conv[3].weight, order, dim=1)
    else:
        _permute(layer.weight, order, dim=1)
