"""Datasets and loaders from a config: the one way training, validation loss, benchmarks and the
supernet's BN recalibration get their batches.

    from litepose.data.build import training_batches
    for batch in training_batches(cfg, input_size=256, device="cuda", num_batches=50):
        model(batch.images)            # batch is a TrainBatch; batch[0] is the images
"""

import os
import signal

import cv2
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import ConfigError, DataError
from .coco_format import CROWDPOSE_NAMES, KeypointAnnotations, dataset_files, keypoint_info_from_config
from .dataset import KeypointDataset, check_batch, collate_samples
from .index_cache import cached_annotation_index
from .synthetic import ensure_synthetic_dataset
from .targets import TargetConfig, WorkerTargets, prepare_batch
from .transforms import AugmentConfig


def ensure_dataset(cfg, show_progress=True):
    """Generate the synthetic dataset under ``DATASET.ROOT`` when ``DATASET.SYNTHETIC`` asks for
    it and it is absent. In distributed runs call it on one process, then wait for it."""
    if cfg.DATASET.SYNTHETIC:
        if not cfg.DATASET.ROOT:
            raise ConfigError("DATASET.SYNTHETIC needs DATASET.ROOT: the folder to generate the dataset in")
        return ensure_synthetic_dataset(cfg.DATASET.ROOT, show_progress=show_progress)
    return False


def build_dataset(cfg, input_size, split="train", augment=True, seed=None, index_cache=None, log=None, warn=None):
    """A ``KeypointDataset`` of the configured training (``split='train'``) or test set.

    ``augment`` applies the configured random affine and flip; without it every image is its
    centred square (validation loss). ``seed`` defaults to ``TRAIN.SEED``. ``index_cache``: a
    folder where the annotation index is built once and memory-mapped by every process that
    passes the same folder (``index_cache.cached_annotation_index``, whose ``log`` and ``warn``
    these are); None parses the annotation file here.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    ann_file, image_dir = dataset_files(cfg, split)
    info = keypoint_info_from_config(cfg, for_test=split == "test")
    if info.num_joints != cfg.DATASET.NUM_JOINTS:
        raise DataError(f"dataset '{info.name}' has {info.num_joints} joints but DATASET.NUM_JOINTS is "
                        f"{cfg.DATASET.NUM_JOINTS}")
    if index_cache:
        annotations = cached_annotation_index(ann_file, image_dir, info, index_cache, log=log, warn=warn)
    else:
        annotations = KeypointAnnotations(ann_file, image_dir, info)
    dataset = KeypointDataset(
        annotations, input_size, cfg.DATASET.MAX_NUM_PEOPLE,
        augment=AugmentConfig.from_config(cfg) if augment else None,
        seed=cfg.TRAIN.SEED if seed is None else seed,
        require_people=split == "train",
        max_unreadable=cfg.DATASET.MAX_UNREADABLE_IMAGES,
        # The release masks crowds and people without keypoints for COCO, nothing for CrowdPose.
        ignore_regions=(cfg.DATASET.DATASET if split == "train" else cfg.DATASET.DATASET_TEST) not in CROWDPOSE_NAMES,
        pad_as_background=cfg.DATASET.PAD_AS_BACKGROUND,
    )
    if len(dataset) == 0:
        raise DataError(f"{ann_file}: no images with annotations")
    return dataset


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start an epoch part-way: ``set_start(n)`` skips the first
    ``n`` indices of this process's share for the coming epoch only, so a run resumed from a
    mid-epoch checkpoint sees exactly the samples an uninterrupted run would."""

    start = 0

    def set_start(self, count):
        self.start = int(count)

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.start = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self):
        return max(0, super().__len__() - self.start)


def _init_worker(worker_id):
    # Ctrl-C and SIGTERM reach the whole process group; the main process turns them into a
    # clean stop with a checkpoint, which needs its loader workers alive until then.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_loader(dataset, batch_size, workers=0, shuffle=True, seed=0, rank=0, world_size=1,
                 drop_last=True, pin_memory=False, worker_targets=None):
    """A ``DataLoader`` whose sampler splits the data between processes (``rank`` of
    ``world_size``) and shuffles by ``seed`` and the epoch: call ``loader.sampler.set_epoch(e)``
    and ``loader.dataset.set_epoch(e)`` before each epoch (``set_loader_epoch``).

    With ``workers`` > 0, a process that has run OpenCV should call ``single_opencv_thread()``
    first (the scripts do): OpenCV's thread pool does not survive fork, and a worker forked
    from a process whose pool had run hung in its first OpenCV call.

    ``worker_targets``, a ``TargetConfig``: batches also carry their targets at the dataset's
    input size, rendered on the CPU by the loader (``targets.WorkerTargets``)."""
    if batch_size <= 0:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    per_rank = -(-len(dataset) // world_size)
    if drop_last and per_rank < batch_size:
        raise DataError(f"the dataset has {len(dataset)} images: fewer than one batch of {batch_size} "
                        f"per process ({world_size} process(es)); lower TRAIN.IMAGES_PER_GPU")
    sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                               drop_last=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate_samples if worker_targets is None
                      else WorkerTargets(collate_samples, worker_targets, dataset.input_size),
                      pin_memory=pin_memory, drop_last=drop_last,
                      worker_init_fn=_init_worker if workers > 0 else None,
                      persistent_workers=False)  # workers must see each epoch's set_epoch


def single_opencv_thread():
    """For scripts whose loaders fork workers: no OpenCV thread pool in this process (the
    workers are the parallelism), so none is inherited half-alive by a forked worker."""
    cv2.setNumThreads(1)


def set_loader_epoch(loader, epoch, start_step=0):
    """Select the epoch's order and augmentation; ``start_step`` skips that many batches (a
    run resumed from a mid-epoch checkpoint)."""
    loader.sampler.set_epoch(epoch)
    loader.sampler.set_start(start_step * loader.batch_size)
    loader.dataset.set_epoch(epoch)


def iterate_loader(loader):
    """The loader's batches, raising the one-line ``DataError`` a worker reported."""
    for batch in loader:
        yield check_batch(batch)


def available_cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(cfg):
    """``WORKERS``, but never more than the CPU cores this process may use."""
    return max(0, min(cfg.WORKERS, available_cores()))


def training_batches(cfg, input_size, device="cpu", num_batches=None, augment=True, seed=None,
                     batch_size=None, workers=None, epoch=0, split="train", with_targets=True):
    """Preprocessed training batches (``TrainBatch``) at ``input_size`` on ``device``.

    What the trainer feeds the network, for code that needs it outside training: the BN
    recalibration of sub-networks in the architecture search, benchmarks, tests. Stops after
    ``num_batches`` (default: one pass over the data).
    """
    ensure_dataset(cfg, show_progress=False)
    dataset = build_dataset(cfg, input_size, split=split, augment=augment, seed=seed)
    loader = build_loader(dataset, batch_size or cfg.TRAIN.IMAGES_PER_GPU,
                          default_workers(cfg) if workers is None else workers,
                          shuffle=True, seed=cfg.TRAIN.SEED if seed is None else seed,
                          pin_memory=torch.device(device).type == "cuda")
    set_loader_epoch(loader, epoch)
    sigma = TargetConfig.from_config(cfg)
    for index, batch in enumerate(iterate_loader(loader)):
        if num_batches is not None and index >= num_batches:
            break
        yield prepare_batch(batch, sigma, input_size, device, with_targets=with_targets)
