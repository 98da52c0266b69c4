"""Fold BatchNorm into the convolution before it, for inference.

In eval mode BN is an affine map per channel, ``y = s * x + t`` with
``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``, so a conv followed by BN is
the same conv with weights scaled by ``s`` (per output channel) and bias ``s * b + t``.
When BN follows a *sum* of convolutions (LitePose's head: BN(deconv_refined(x) +
deconv_raw(y))), ``s * (a + b) + t = (s * a) + (s * b + t)``: every conv of the sum is
scaled and one of them takes the shift.

The pairs are found structurally from the model's traced graph (``torch.fx``): a BN whose
input is a conv, transposed conv, or a sum of them, each used by nothing else. Models fx
cannot trace fall back to the conv -> BN neighbours inside ``nn.Sequential`` containers.
A fused BN is replaced by ``nn.Identity``; BN with no conv before it stays.
"""

import copy
import operator
import warnings

import torch
import torch.fx as fx
import torch.nn as nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_ADDS = (operator.add, operator.iadd, torch.add)


def batchnorm_names(model):
    """Qualified names of the BatchNorm layers left in ``model``."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def fuse_bn(model):
    """A copy of ``model`` for inference with every foldable BatchNorm folded into the
    convolution(s) before it; ``model`` itself is untouched. Outputs agree with the
    original in eval mode to float rounding. A supernet is fused as its active sub-network.
    The copy is returned in eval mode: its BN statistics are baked into its weights."""
    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    else:
        model = copy.deepcopy(model)
    model.eval()
    for bn_name, conv_names in find_bn_fusions(model):
        fold_bn(model.get_submodule(bn_name), [model.get_submodule(name) for name in conv_names])
        _replace(model, bn_name, nn.Identity())
    return model


def find_bn_fusions(model):
    """``[(bn_name, [conv_name, ...]), ...]``: each BN with the convolutions whose (summed)
    output only it reads."""
    plan = _plan_from_graph(model)
    if plan is None:
        warnings.warn(f"{type(model).__name__} cannot be traced by torch.fx; folding only conv -> BN pairs "
                      "inside nn.Sequential", stacklevel=2)
        plan = _plan_from_sequentials(model)
    return plan


@torch.no_grad()
def fold_bn(bn, convs):
    """Fold ``bn`` (eval statistics) into ``convs``, whose outputs are summed before it."""
    scale64 = 1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale64 = scale64 * bn.weight.double()
    shift64 = -bn.running_mean.double() * scale64
    if bn.bias is not None:
        shift64 = shift64 + bn.bias.double()
    for index, conv in enumerate(convs):
        weight = conv.weight
        conv.weight.copy_(_scale_output_channels(conv, weight.double(), scale64).to(weight.dtype))
        bias = conv.bias.double() * scale64 if conv.bias is not None else torch.zeros_like(scale64)
        if index == 0:
            bias = bias + shift64
        elif conv.bias is None:
            continue
        bias = bias.to(device=weight.device, dtype=weight.dtype)
        if conv.bias is None:
            conv.bias = nn.Parameter(bias)
        else:
            conv.bias.copy_(bias)


def _scale_output_channels(conv, weight, scale):
    """Multiply each output channel of a conv weight by ``scale``. Conv weights are
    ``[out, in/groups, *k]``; transposed conv weights ``[in, out/groups, *k]``."""
    scale = scale.to(weight.device)
    kernel_dims = [1] * (weight.dim() - 2)
    if not isinstance(conv, nn.modules.conv._ConvTransposeNd):
        return weight * scale.view(-1, 1, *kernel_dims)
    groups = conv.groups
    grouped = weight.view(groups, weight.shape[0] // groups, weight.shape[1], *weight.shape[2:])
    return (grouped * scale.view(groups, 1, -1, *kernel_dims)).view_as(weight)


def _is_plain(module, base):
    """A standard layer: subclasses that change ``forward`` (e.g. the supernet's elastic
    layers, which slice their weights) are not folded."""
    return isinstance(module, base) and type(module).forward is base.forward


def _foldable_bn(module):
    return (_is_plain(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
            and module.running_mean is not None)


def _foldable_conv(module, bn):
    return (isinstance(module, _CONVS) and type(module).forward in {c.forward for c in _CONVS}
            and module.out_channels == bn.num_features and module.padding_mode == "zeros")


def _plan_from_graph(model):
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception:  # fx cannot trace data-dependent control flow; anything else is the same case
        return None
    modules = dict(model.named_modules())
    calls = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1

    def producers(node, bn):
        """Names of the convs whose (summed) output is ``node``, or None."""
        if not isinstance(node, fx.Node) or len(node.users) != 1:
            return None
        if node.op == "call_module":
            module = modules.get(node.target)
            if calls[node.target] == 1 and _foldable_conv(module, bn):
                return [node.target]
            return None
        if node.op in ("call_function", "call_method") and node.target in (*_ADDS, "add", "__add__") \
                and not node.kwargs and len(node.args) == 2:
            parts = [producers(arg, bn) for arg in node.args]
            if all(parts):
                return parts[0] + parts[1]
        return None

    plan = []
    for node in graph.nodes:
        if node.op != "call_module" or calls[node.target] != 1:
            continue
        bn = modules[node.target]
        if _foldable_bn(bn) and node.args:
            convs = producers(node.args[0], bn)
            if convs:
                plan.append((node.target, convs))
    return plan


def _plan_from_sequentials(model):
    plan = []
    for name, module in model.named_modules():
        if type(module).forward is not nn.Sequential.forward:
            continue
        children = list(module.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if _foldable_bn(bn) and _foldable_conv(conv, bn):
                prefix = f"{name}." if name else ""
                plan.append((prefix + bn_name, [prefix + conv_name]))
    return plan


def _replace(model, name, new):
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
