"""Device selection: CPU when no GPU is present, CUDA when one is, with no code change."""

import torch

from ..errors import ConfigError


def resolve_device(requested="auto"):
    """``'auto'`` -> the first GPU if any, else CPU; ``'cuda'``/``'cuda:N'`` must exist."""
    requested = (requested or "auto").strip()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ConfigError(f"DEVICE '{requested}' is not a device name (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"DEVICE '{requested}' requested but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"DEVICE '{requested}' requested but only {torch.cuda.device_count()} GPU(s) are present"
            )
    return device
