"""Elastic layers of the weight-sharing supernet (once-for-all style).

Each elastic layer holds the widest weights and runs at an *active* size: the first
output channels and the centre of the kernel given by the active architecture, and
as many input channels as arrive (the previous layer's active width, as in the release
and in once-for-all). ``to_static(in_channels)`` hands back the static counterpart
with the sliced weights; ``load_static_weights`` uses it to fill a whole sub-network.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import InvertedResidual, SepConv, hidden_width


class ElasticModule:
    """Mixin for supernet layers that can hand back their static counterpart."""

    def to_static(self, in_channels):
        """A static layer with the active weights, for ``in_channels`` input channels."""
        raise NotImplementedError


def _factory(tensor):
    return {"device": tensor.device, "dtype": tensor.dtype}


def _check_width(name, active, maximum):
    if not 0 < active <= maximum:
        raise ValueError(f"{name}: width {active} is outside the supernet's 1..{maximum}")


class ElasticConv2d(nn.Conv2d, ElasticModule):
    """Dense convolution (groups 1) using the first in/out channels of its weight."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=False):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.active_out_channels = out_channels

    def set_active(self, out_channels):
        _check_width("conv out_channels", out_channels, self.out_channels)
        self.active_out_channels = out_channels

    def active_weight(self, in_channels):
        return self.weight[: self.active_out_channels, :in_channels]

    def active_bias(self):
        return None if self.bias is None else self.bias[: self.active_out_channels]

    def forward(self, x):
        return F.conv2d(x, self.active_weight(x.size(1)), self.active_bias(), self.stride, self.padding,
                        self.dilation)

    def to_static(self, in_channels):
        conv = nn.Conv2d(in_channels, self.active_out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, bias=self.bias is not None, **_factory(self.weight))
        with torch.no_grad():
            conv.weight.copy_(self.active_weight(in_channels))
            if self.bias is not None:
                conv.bias.copy_(self.active_bias())
        return conv


class ElasticDepthwiseConv2d(nn.Conv2d, ElasticModule):
    """Depthwise convolution over the channels that arrive, with the centre of its kernel."""

    def __init__(self, channels, kernel_size, stride=1):
        super().__init__(channels, channels, kernel_size, stride, kernel_size // 2, groups=channels, bias=False)
        self.active_kernel_size = kernel_size

    def set_active(self, kernel_size):
        if kernel_size > self.kernel_size[0] or kernel_size % 2 == 0:
            raise ValueError(f"depthwise kernel {kernel_size} cannot be cut from {self.kernel_size[0]}")
        self.active_kernel_size = kernel_size

    def active_weight(self, channels):
        start = (self.kernel_size[0] - self.active_kernel_size) // 2
        end = start + self.active_kernel_size
        return self.weight[:channels, :, start:end, start:end]

    def conv(self, x, weight):
        return F.conv2d(x, weight, None, self.stride, self.active_kernel_size // 2, self.dilation, x.size(1))

    def forward(self, x):
        return self.conv(x, self.active_weight(x.size(1)))

    def to_static(self, in_channels, weight=None):
        weight = self.active_weight(in_channels) if weight is None else weight
        k = self.active_kernel_size
        conv = nn.Conv2d(in_channels, in_channels, k, self.stride, k // 2, groups=in_channels, bias=False,
                         **_factory(self.weight))
        with torch.no_grad():
            conv.weight.copy_(weight)
        return conv


class ElasticBatchNorm2d(nn.BatchNorm2d, ElasticModule):
    """BatchNorm over the channels that arrive; training updates only their statistics."""

    def forward(self, x):
        c = x.size(1)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average, as nn.BatchNorm2d
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        # Slices are views: F.batch_norm updates the shared running statistics in place.
        running_mean = self.running_mean[:c] if track and self.running_mean is not None else None
        running_var = self.running_var[:c] if track and self.running_var is not None else None
        return F.batch_norm(x, running_mean, running_var, self.weight[:c], self.bias[:c],
                            use_batch_stats, factor, self.eps)

    def to_static(self, in_channels):
        c = in_channels
        bn = nn.BatchNorm2d(c, self.eps, self.momentum, **_factory(self.weight))
        with torch.no_grad():
            bn.weight.copy_(self.weight[:c])
            bn.bias.copy_(self.bias[:c])
            bn.running_mean.copy_(self.running_mean[:c])
            bn.running_var.copy_(self.running_var[:c])
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn


class ElasticConvTranspose2d(nn.ConvTranspose2d, ElasticModule):
    """Transposed convolution using the first in/out channels of its ``[in, out, k, k]`` weight."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, bias=False):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, bias=bias)
        self.active_out_channels = out_channels

    def set_active(self, out_channels):
        _check_width("deconv out_channels", out_channels, self.out_channels)
        self.active_out_channels = out_channels

    def active_weight(self, in_channels):
        return self.weight[:in_channels, : self.active_out_channels]

    def active_bias(self):
        return None if self.bias is None else self.bias[: self.active_out_channels]

    def forward(self, x):
        # Output padding is fixed at construction: no private PyTorch helper is needed.
        return F.conv_transpose2d(x, self.active_weight(x.size(1)), self.active_bias(), self.stride,
                                  self.padding, self.output_padding, 1, self.dilation)

    def to_static(self, in_channels):
        deconv = nn.ConvTranspose2d(in_channels, self.active_out_channels, self.kernel_size, self.stride,
                                    self.padding, self.output_padding, bias=self.bias is not None,
                                    dilation=self.dilation, **_factory(self.weight))
        with torch.no_grad():
            deconv.weight.copy_(self.active_weight(in_channels))
            if self.bias is not None:
                deconv.bias.copy_(self.active_bias())
        return deconv


class ElasticSepConv(nn.Module, ElasticModule):
    """``SepConv`` with an elastic input width (its output width is fixed: 2J or J maps)."""

    def __init__(self, in_channels, out_channels, kernel_size=5):
        super().__init__()
        self.conv = nn.Sequential(
            ElasticDepthwiseConv2d(in_channels, kernel_size),
            ElasticBatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            ElasticConv2d(in_channels, out_channels, 1),
        )

    def forward(self, x):
        return self.conv(x)

    def to_static(self, in_channels):
        static = SepConv(in_channels, self.conv[3].out_channels, self.conv[0].active_kernel_size)
        return load_static_weights(static.to(**_factory(self.conv[0].weight)), self)


class ElasticInvertedResidual(nn.Module, ElasticModule):
    """Inverted residual block with elastic output width, expansion and kernel size.

    A 5x5 or 3x3 kernel is the centre of the 7x7 kernel passed through the block's own
    linear kernel transform (``Linear5x5``, ``Linear3x3``: the release's names and
    behaviour, each transform acting on the centre of the 7x7 kernel).
    """

    def __init__(self, in_channels, out_channels, stride=1, kernel_size=7, expansion=6):
        super().__init__()
        hidden = hidden_width(in_channels, expansion)
        self.stride = stride
        self.inv = nn.Sequential(
            ElasticConv2d(in_channels, hidden, 1),
            ElasticBatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        )
        self.depth_conv = nn.Sequential(
            ElasticDepthwiseConv2d(hidden, kernel_size, stride),
            ElasticBatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        )
        self.point_conv = nn.Sequential(
            ElasticConv2d(hidden, out_channels, 1),
            ElasticBatchNorm2d(out_channels),
        )
        self.Linear5x5 = nn.Linear(25, 25)
        self.Linear3x3 = nn.Linear(9, 9)
        with torch.no_grad():  # a new supernet starts from the plain centre crop (once-for-all's choice)
            for linear in (self.Linear5x5, self.Linear3x3):
                linear.weight.copy_(torch.eye(linear.in_features))
                linear.bias.zero_()
        self.active_expansion = expansion

    def set_active(self, out_channels, kernel_size, expansion):
        self.active_expansion = expansion
        self.depth_conv[0].set_active(kernel_size)
        self.point_conv[0].set_active(out_channels)

    def _set_hidden(self, in_channels):
        hidden = hidden_width(in_channels, self.active_expansion)
        self.inv[0].set_active(hidden)
        return hidden

    def depthwise_weight(self, hidden):
        weight = self.depth_conv[0].active_weight(hidden)
        kernel = self.depth_conv[0].active_kernel_size
        transform = {5: self.Linear5x5, 3: self.Linear3x3}.get(kernel)
        if transform is None:
            return weight
        return transform(weight.reshape(hidden, 1, kernel * kernel)).reshape(hidden, 1, kernel, kernel)

    def forward(self, x):
        hidden = self._set_hidden(x.size(1))
        out = self.inv(x)
        out = self.depth_conv[0].conv(out, self.depthwise_weight(hidden))
        out = self.depth_conv[2](self.depth_conv[1](out))
        out = self.point_conv(out)
        # Decided by the active widths, exactly as the static block decides.
        if self.stride == 1 and x.size(1) == out.size(1):
            out = out + x
        return out

    def to_static(self, in_channels):
        hidden = self._set_hidden(in_channels)
        static = InvertedResidual(in_channels, self.point_conv[0].active_out_channels, self.stride,
                                  self.depth_conv[0].active_kernel_size, self.active_expansion)
        static = static.to(**_factory(self.inv[0].weight))
        load_static_weights(static.inv, self.inv)
        load_static_weights(static.point_conv, self.point_conv)
        static.depth_conv[0] = self.depth_conv[0].to_static(hidden, self.depthwise_weight(hidden))
        static.depth_conv[1] = self.depth_conv[1].to_static(hidden)
        return static


def _in_channels(static):
    """Input width of a static layer (what its elastic counterpart must be sliced to)."""
    if isinstance(static, nn.BatchNorm2d):
        return static.num_features
    if isinstance(static, SepConv):
        return static.conv[0].in_channels
    return static.in_channels


def _own_state(module):
    """Parameters and persistent buffers of ``module`` itself, not of its children."""
    return {key: value for key, value in module.state_dict().items() if "." not in key}


def _collect_static_state(static, source, prefix, state, is_root=False):
    if isinstance(source, ElasticModule) and not is_root:
        for key, value in source.to_static(_in_channels(static)).state_dict().items():
            state[prefix + key] = value
        return
    for key, value in _own_state(source).items():
        state[prefix + key] = value
    for name, child in static.named_children():
        _collect_static_state(child, source.get_submodule(name), f"{prefix}{name}.", state)


def load_static_weights(static, source):
    """Fill the static network ``static`` from ``source`` (a supernet or any part of one)
    at the same module paths: elastic layers give their ``to_static()`` weights, the others
    their own. Layers ``source`` has beyond ``static`` (deeper stages) are ignored. The
    load is strict, so a shape disagreement is an error, never a silent skip."""
    state = {}
    _collect_static_state(static, source, "", state, is_root=True)
    with torch.no_grad():
        static.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
    return static
