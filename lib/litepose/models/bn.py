"""BatchNorm recalibration: statistics shared across a supernet's members are wrong for
any one of them, so a sub-network's are re-estimated on training images before it is
evaluated (once-for-all's practice, used by the release's search)."""

import torch
import torch.nn as nn
from tqdm import tqdm


@torch.no_grad()
def recalibrate_bn(model, batches, num_batches=None, progress=False):
    """Reset every BatchNorm's running statistics and re-estimate them on ``batches``.

    ``batches`` yields image tensors ``[B, 3, H, W]`` (or tuples whose first item is one),
    already normalised as for training. The estimate is the exact average over the batches
    (momentum ``None``), not an exponential one. Weights are left untouched. For a supernet,
    the active architecture is calibrated and the statistics of inactive channels are reset.
    Returns the number of images seen.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    parameter = next(model.parameters())
    was_training = model.training
    model.train()
    seen = 0
    try:
        iterator = tqdm(batches, total=num_batches, desc="BN recalibration", leave=False, disable=not progress)
        for index, batch in enumerate(iterator):
            if num_batches is not None and index >= num_batches:
                break
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(images.to(device=parameter.device, dtype=parameter.dtype))
            seen += images.shape[0]
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        model.train(was_training)
    if seen == 0:
        raise ValueError("BN recalibration saw no images")
    return seen
