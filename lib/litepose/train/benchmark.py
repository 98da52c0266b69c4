"""Training throughput, measured separately for the data pipeline and for the training step, so a
user can see whether data loading starves the network (``tools/benchmark_train.py``)."""

import time

import torch

from ..data.build import build_dataset, build_loader, default_workers, ensure_dataset, iterate_loader, set_loader_epoch
from ..data.targets import TargetConfig, prepare_batch
from ..loss import PoseLoss, total
from ..models import build_model
from .trainer import build_optimizer


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_data_pipeline(cfg, input_size, device, batches=20, batch_size=None, workers=None, warmup=2):
    """Images/s of loading, augmenting and preparing batches (targets built on ``device``), with
    ``workers`` loader processes (default: ``WORKERS``, at most the cores). Returns a dict."""
    ensure_dataset(cfg, show_progress=False)
    workers = default_workers(cfg) if workers is None else workers
    batch_size = batch_size or cfg.TRAIN.IMAGES_PER_GPU
    dataset = build_dataset(cfg, input_size, "train", augment=True)
    loader = build_loader(dataset, batch_size, workers, shuffle=True, seed=cfg.TRAIN.SEED,
                          pin_memory=device.type == "cuda")
    sigma = TargetConfig.from_config(cfg)
    images, start, epoch = 0, None, 0
    while True:
        set_loader_epoch(loader, epoch)
        for raw in iterate_loader(loader):
            prepare_batch(raw, sigma, input_size, device)
            _sync(device)
            if warmup > 0:
                warmup -= 1
                if warmup == 0:
                    start = time.perf_counter()
                continue
            images += raw["images"].shape[0]
            batches -= 1
            if batches == 0:
                elapsed = time.perf_counter() - start
                return {"images_per_s": images / elapsed, "workers": workers, "batch_size": batch_size,
                        "input_size": input_size}
        epoch += 1


def measure_train_step(cfg, arch, device, steps=10, batch_size=None, amp=False, warmup=2):
    """Images/s of the training step alone (forward, loss, backward, optimiser) of a fixed LitePose
    ``arch`` on one batch that stays on ``device``. Returns a dict."""
    batch_size = batch_size or cfg.TRAIN.IMAGES_PER_GPU
    size = arch["img_size"]
    ensure_dataset(cfg, show_progress=False)
    dataset = build_dataset(cfg, size, "train", augment=True)
    loader = build_loader(dataset, batch_size, 0, shuffle=True, seed=cfg.TRAIN.SEED)
    set_loader_epoch(loader, 0)
    batch = prepare_batch(next(iterate_loader(loader)), TargetConfig.from_config(cfg), size, device)
    model = build_model(cfg, arch).to(device).train()
    criterion = PoseLoss.from_config(cfg)
    optimizer = build_optimizer(cfg, model.parameters())
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            outputs = model(batch.images)
        loss = total(criterion(outputs, batch.heatmaps, batch.masks, batch.joints))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    _sync(device)
    elapsed = time.perf_counter() - start
    return {"images_per_s": steps * batch_size / elapsed, "batch_size": batch_size, "input_size": size, "amp": amp}
