"""Process-wide settings a training script makes before it builds a ``Trainer``.

The library never changes them on its own (a ``Trainer`` built in a notebook leaves the
caller's threads and cuDNN switches alone); ``dist_train.py`` calls ``configure_process``.
"""

import os

import torch

from ..data.build import available_cores, default_workers, single_opencv_thread


def configure_backends(cfg):
    """cuDNN switches of the config; ``CUDNN.DETERMINISTIC`` also asks PyTorch for deterministic
    kernels wherever it has them (a warning names each op that has none)."""
    torch.backends.cudnn.enabled = cfg.CUDNN.ENABLED
    torch.backends.cudnn.deterministic = cfg.CUDNN.DETERMINISTIC
    torch.backends.cudnn.benchmark = cfg.CUDNN.BENCHMARK and not cfg.CUDNN.DETERMINISTIC
    if cfg.CUDNN.DETERMINISTIC:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.use_deterministic_algorithms(True, warn_only=True)


def cpu_threads(cfg):
    """Compute threads for one training process on the CPU: one per core left over by its
    loader workers and the other processes of this machine. OpenMP threads that share a core
    with a busy process spin-wait, which made CPU steps over ten times slower in our
    measurements. None when ``OMP_NUM_THREADS`` decides."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    return max(1, available_cores() // local_processes - default_workers(cfg))


def configure_process(cfg, device_type):
    """What ``dist_train.py`` sets before training: cuDNN switches, on the CPU its compute
    threads, and no OpenCV thread pool when loader workers fork from it."""
    configure_backends(cfg)
    if default_workers(cfg) > 0:
        single_opencv_thread()
    threads = cpu_threads(cfg) if device_type == "cpu" else None
    if threads is not None:
        torch.set_num_threads(threads)
