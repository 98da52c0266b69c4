"""How the search scores a supernet member: extract it, recalibrate its BatchNorm on
training images at its own resolution, and measure its AP on a subset of the val set."""

import math

from ..data.build import training_batches
from ..evaluation.runner import evaluate
from ..utils.device import resolve_device
from ..models.bn import recalibrate_bn


def calibrate_network(cfg, model, input_size, images, batch_size=None, device=None, seed=0, progress=False):
    """Recalibrate ``model``'s BN on ``images`` training images (augmented as in training,
    the same images for every call with the same ``seed``). Returns the images seen."""
    device = resolve_device(cfg.DEVICE) if device is None else device
    batch_size = max(1, min(batch_size or cfg.TRAIN.IMAGES_PER_GPU, images))
    count = math.ceil(images / batch_size)
    batches = training_batches(cfg, input_size, device=device, num_batches=count, seed=seed, batch_size=batch_size,
                               workers=0, with_targets=False)
    return recalibrate_bn(model.to(device), batches, num_batches=count, progress=progress)


class SubnetScorer:
    """``scorer(arch) -> AP`` of the supernet member ``arch`` after BN recalibration.

    The supernet itself is never modified: each member is extracted first.
    """

    def __init__(self, cfg, supernet, val_images, calib_images, batch_size=None, device=None, seed=0):
        self.cfg = cfg
        self.supernet = supernet
        self.val_images = val_images
        self.calib_images = calib_images
        self.batch_size = batch_size
        self.device = resolve_device(cfg.DEVICE) if device is None else device
        self.seed = seed
        self.supernet.to(self.device)

    def subnet(self, arch):
        previous = self.supernet.active_arch
        self.supernet.set_active_arch(arch)
        try:
            return self.supernet.get_active_subnet()
        finally:
            self.supernet.set_active_arch(previous)

    def __call__(self, arch):
        subnet = self.subnet(arch)
        calibrate_network(self.cfg, subnet, arch["img_size"], self.calib_images, self.batch_size, self.device,
                          self.seed)
        return evaluate(self.cfg, subnet, limit=self.val_images, device=self.device, progress=False).ap
