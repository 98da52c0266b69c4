"""Sub-network extraction from a trained supernet, verified.

The mechanism is the supernet's own ``get_active_subnet()`` (each elastic layer hands
back its static counterpart); this module adds the check that the extracted network
computes what the supernet computes for that architecture.
"""

import torch

from ..errors import ArchError


@torch.no_grad()
def max_output_difference(model_a, model_b, input_size, batch_size=1, seed=0):
    """Largest absolute difference between two models' outputs on one random input."""
    parameter = next(model_a.parameters())
    generator = torch.Generator().manual_seed(seed)
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    x = torch.randn(batch_size, 3, height, width, generator=generator).to(parameter)
    was_training = (model_a.training, model_b.training)
    model_a.eval()
    model_b.eval()
    try:
        outputs_a, outputs_b = model_a(x), model_b(x)
    finally:
        model_a.train(was_training[0])
        model_b.train(was_training[1])
    if len(outputs_a) != len(outputs_b):
        return float("inf")
    return max((a.float() - b.float()).abs().max().item() for a, b in zip(outputs_a, outputs_b))


def extract_subnet(supernet, arch, verify_input_size=None):
    """``(subnet, max_abs_diff)``: ``arch`` cut out of ``supernet`` as a ``LitePose``.

    ``arch`` must lie in the supernet's search space (``ArchError`` naming the field
    otherwise). The difference is measured on a random input at ``verify_input_size``
    (default: the architecture's img_size); ``None`` outputs are never skipped silently.
    """
    if not hasattr(supernet, "set_active_arch"):
        raise ArchError(f"{type(supernet).__name__} is not a supernet: nothing to extract")
    previous = supernet.active_arch
    arch = supernet.set_active_arch(arch)
    try:
        subnet = supernet.get_active_subnet()
        size = verify_input_size or arch["img_size"]
        difference = max_output_difference(supernet, subnet, size)
    finally:
        supernet.set_active_arch(previous)
    return subnet, difference
