"""MAC and parameter counting, layer by layer, with forward hooks.

The convention is the one behind the paper's figures (the thop counter): a convolution
or transposed convolution costs ``output elements x input channels per group x kernel
area``; BatchNorm four operations per element (subtract mean, divide, scale, shift);
activations, additions and pooling nothing. It reproduces the released architectures'
MACs of ``litepose_facts.md`` to within 0.02 %.
"""

from dataclasses import dataclass, field

import torch
import torch.nn as nn

BN_OPS_PER_ELEMENT = 4


@dataclass
class ModelProfile:
    macs: int
    params: int
    input_shape: tuple
    output_shapes: list
    macs_by_type: dict = field(default_factory=dict)

    def summary(self):
        outputs = ", ".join(str(list(s)) for s in self.output_shapes)
        return (f"input {list(self.input_shape)}: {self.macs / 1e9:.3f} GMACs, "
                f"{self.params / 1e6:.3f} M params, outputs {outputs}")


def _layer_macs(module, inputs, output):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        kernel_area = module.weight.shape[2] * module.weight.shape[3]
        in_per_group = inputs[0].shape[1] // module.groups
        return output.numel() * in_per_group * kernel_area
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return BN_OPS_PER_ELEMENT * output.numel()
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _flatten(outputs):
    if torch.is_tensor(outputs):
        return [outputs]
    flat = []
    for item in outputs:
        flat.extend(_flatten(item))
    return flat


@torch.no_grad()
def profile_model(model, input_size, batch_size=1, channels=3):
    """Count MACs (per image) and parameters of ``model`` on a square or ``(h, w)`` input.

    A supernet is profiled as its active sub-network (the weights it would hand over).
    """
    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    parameter = next(model.parameters())
    x = torch.zeros(batch_size, channels, height, width, device=parameter.device, dtype=parameter.dtype)
    totals = {}

    def hook(module, inputs, output):
        macs = _layer_macs(module, inputs, output)
        if macs:
            name = type(module).__name__
            totals[name] = totals.get(name, 0) + macs // batch_size

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    model.eval()
    try:
        outputs = _flatten(model(x))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return ModelProfile(
        macs=sum(totals.values()),
        params=sum(p.numel() for p in model.parameters()),
        input_shape=tuple(x.shape),
        output_shapes=[tuple(o.shape) for o in outputs],
        macs_by_type=totals,
    )
