"""Static building blocks of LitePose. Module and attribute names follow the release so
that its checkpoints load unchanged (``inv``, ``depth_conv``, ``point_conv``, ``conv``)."""

import torch.nn as nn

from ..utils.common import make_divisible


def hidden_width(in_channels, expansion):
    """Width inside an inverted residual block: input width times expansion, multiple of 8."""
    return make_divisible(round(in_channels * expansion))


def conv_bn_relu6(in_channels, out_channels, kernel_size=3, stride=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, kxk depthwise, 1x1 project, residual when shapes allow."""

    def __init__(self, in_channels, out_channels, stride=1, kernel_size=7, expansion=6):
        super().__init__()
        hidden = hidden_width(in_channels, expansion)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.kernel_size = kernel_size
        self.expansion = expansion
        self.inv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        )
        self.depth_conv = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size, stride, kernel_size // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        )
        self.point_conv = nn.Sequential(
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = self.point_conv(self.depth_conv(self.inv(x)))
        return out + x if self.use_residual else out


class SepConv(nn.Module):
    """Depthwise kxk + BN + ReLU, then a bias-free 1x1: the head's output layer."""

    def __init__(self, in_channels, out_channels, kernel_size=5):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size, 1, kernel_size // 2, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        )

    def forward(self, x):
        return self.conv(x)
