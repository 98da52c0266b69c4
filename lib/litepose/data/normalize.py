"""The network's input normalisation, shared by training and inference.

Images are RGB, scaled to [0, 1], then normalised with the ImageNet mean and standard
deviation: HigherHRNet's and the release's ``ToTensor`` + ``Normalize``. Training
augmentation, evaluation, the demo and deployment all use these constants, defined here once;
the PyTorch-free runtime (``litepose.runtime.preprocess``) imports them too, so this module
imports PyTorch only inside the functions that need it.
"""

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "image_to_tensor", "normalize_tensor", "tensor_to_image"]


def image_to_tensor(image):
    """An ``[H, W, 3]`` RGB uint8 image as a normalised ``[3, H, W]`` float32 tensor."""
    import torch

    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] RGB image, got shape {image.shape}")
    tensor = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
    return normalize_tensor(tensor)


def normalize_tensor(tensor):
    """Normalise ``[..., 3, H, W]`` RGB values in [0, 1] (returns a new tensor)."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN, dtype=tensor.dtype, device=tensor.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=tensor.dtype, device=tensor.device).view(3, 1, 1)
    return (tensor - mean) / std


def tensor_to_image(tensor):
    """Undo the normalisation of a ``[3, H, W]`` tensor: an ``[H, W, 3]`` RGB uint8 array
    (for drawing network inputs and debug images)."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN, dtype=tensor.dtype, device=tensor.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=tensor.dtype, device=tensor.device).view(3, 1, 1)
    rgb = (tensor.detach() * std + mean).clamp(0, 1).mul(255.0).round().byte()
    return rgb.permute(1, 2, 0).cpu().numpy()
