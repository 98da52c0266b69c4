"""One full epoch of the training loader in each torchrun process, with its memory along the way.

    torchrun --standalone --nproc_per_node 2 -m benchmarks.loader_epoch --root /tmp/coco_scale \\
        --workers 4 --input-size 512 [--points 16] [--annotation-only]

``python -m benchmarks.data_scale --only memory`` launches it that way. Each process joins the
process group as the trainer does (``setup_distributed``), builds the training set and its
share of the loader as the trainer does (``build_dataset``, ``build_loader`` with its rank),
with targets left to the training device as on a GPU (the loader renders none), then iterates
one whole epoch with no training step. At ``--points`` evenly spaced batches it records the
RSS, USS and PSS of itself and of each loader worker. The first process prints one JSON line
with every process's curve and, per point, the node's total PSS (each shared page divided among
its sharers, so the sum is what the node holds).

``--annotation-only``: each worker reads every annotation of its samples as a sample does but
decodes no image: the copy-on-write growth of the annotation index alone, in minutes.

What this leaves out of the trainer's main process: the model, optimizer and CUDA context.
"""

import argparse
import json
import time

from litepose.cli import input_size, int_range, parse_args, run_cli


class AnnotationOnly:
    """A ``KeypointDataset`` read as a sample reads its annotations, without decoding images."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        import numpy as np

        from litepose.data.coco_format import keypoint_count

        anns, keypoints, sizes = self.dataset.people(self.dataset.image_ids[index])
        # What ignore_mask reads of the masked ones (their segmentation), short of decoding it.
        masked = sum(len(str(a.get("segmentation"))) for a in anns if a.get("iscrowd", 0) or keypoint_count(a) == 0)
        return {"annotations_read": np.float64(keypoints.sum() + sizes.sum() + masked)}

    def set_epoch(self, epoch):
        self.dataset.set_epoch(epoch)


def run_epoch(root, workers, size, batch_size, points, annotation_only=False, index_cache=None):
    """This process's share of one epoch: ``{"rank", "images", "seconds", "curve"}``."""
    from benchmarks.data_scale import dataset_config, sample_loader
    from litepose.data.build import build_dataset, build_loader, set_loader_epoch, single_opencv_thread
    from litepose.train.distributed import setup_distributed

    cfg = dataset_config(root, ["DEVICE", "cpu", "TRAIN.IMAGES_PER_GPU", str(batch_size)])
    ctx = setup_distributed(cfg)
    single_opencv_thread()
    start = time.perf_counter()
    dataset = build_dataset(cfg, size, "train", augment=True, index_cache=index_cache, log=lambda _line: None)
    built = time.perf_counter() - start
    if annotation_only:
        dataset = AnnotationOnly(dataset)
    loader = build_loader(dataset, batch_size, workers, cfg.TRAIN.SHUFFLE, cfg.TRAIN.SEED, ctx.rank,
                          ctx.world_size, drop_last=True)
    set_loader_epoch(loader, 0)
    if ctx.is_main:
        print(f"{ctx.world_size} process(es) x {workers} workers, {len(loader)} batches of {batch_size} each "
              f"at {size}px{' (annotations only)' if annotation_only else ''}; index built in {built:.1f} s",
              flush=True)
    start = time.perf_counter()
    curve = sample_loader(loader, points, progress=ctx.is_main)
    row = {"rank": ctx.rank, "images": len(loader) * batch_size, "seconds": round(time.perf_counter() - start, 1),
           "index_seconds": round(built, 1), "curve": curve}
    if ctx.local_rank == 0:
        row["agent"] = agent_memory()
    rows = [row]
    if ctx.distributed:
        import torch.distributed as dist

        rows = [None] * ctx.world_size
        dist.all_gather_object(rows, row)
    ctx.close()
    return rows if ctx.is_main else None


def agent_memory():
    """RSS and PSS (MiB) of the torchrun agent that started this process: one per node."""
    import psutil

    from benchmarks.data_scale import memory_of

    parent = psutil.Process().parent()
    command = " ".join(parent.cmdline()) if parent is not None else ""
    if "torch.distributed.run" not in command and "torchrun" not in command:
        return None
    rss, _uss, pss = memory_of(parent)
    return {"rss_mb": round(rss / 2**20), "pss_mb": round((pss or 0) / 2**20)}


def summarize(rows, workers, size, batch_size, annotation_only):
    """The node's figures from every process's rows."""
    points = min(len(r["curve"]) for r in rows)
    agents = sum((r.get("agent") or {}).get("pss_mb", 0) for r in rows)
    node = [agents + sum(r["curve"][k]["total_pss_mb"] for r in rows) for k in range(points)]
    return {"part": "memory", "processes": len(rows), "workers": workers, "input_size": size,
            "batch_size": batch_size, "annotation_only": annotation_only,
            "images": sum(r["images"] for r in rows), "seconds": max(r["seconds"] for r in rows),
            "node_total_pss_mb": node, "processes_rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a dataset in COCO layout (make_synthetic_dataset --coco-scale)")
    parser.add_argument("--workers", type=int_range(0, 64), default=4, help="loader workers per process")
    parser.add_argument("--input-size", type=input_size, default=512, help="training input size")
    parser.add_argument("--batch-size", type=int_range(1, 4096), default=16, help="images per batch")
    parser.add_argument("--points", type=int_range(1, 1000), default=16, help="memory samples across the epoch")
    parser.add_argument("--annotation-only", action="store_true", help="read annotations, decode no image")
    parser.add_argument("--index-cache", help="folder of the annotation index the processes share (the trainer's: "
                        "OUTPUT_DIR/.../annotation_index); without it each process parses the file")
    args = parse_args(parser, argv)
    rows = run_epoch(args.root, args.workers, args.input_size, args.batch_size, args.points, args.annotation_only,
                     args.index_cache)
    if rows is not None:
        print(json.dumps(summarize(rows, args.workers, args.input_size, args.batch_size, args.annotation_only)),
              flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
