#!/usr/bin/env python
"""Training throughput: images/s of the data pipeline alone and of the training step alone.

    python tools/benchmark_train.py [--archs XS S] [--batches 20] [--steps 10] [--amp] [KEY VALUE ...]

The data pipeline (read, augment, warp, ignore masks, then targets on the device) runs with the
config's WORKERS (at most the CPU cores); the step (forward, loss, backward, Adam) repeats on one
batch kept on the device. When the step is faster than the pipeline, data loading starves the
network. Data: the embedded synthetic dataset (generated under DATASET.ROOT if absent) unless
the overrides point elsewhere; inputs at each architecture's img_size.
"""


from litepose.utils.cli import config_parser, load_cli_config, parse_args, run_cli

DEFAULT_CFG = "experiments/coco/mobilenet/mobile.yaml"
SYNTHETIC = ["DATASET.ROOT", "data/synthetic", "DATASET.SYNTHETIC", "True", "DATASET.TRAIN", "train",
             "DATASET.TEST", "val"]


def main(argv=None):
    import platform

    import torch

    from litepose.arch import load_arch
    from litepose.train.benchmark import measure_data_pipeline, measure_train_step
    from litepose.utils.device import resolve_device

    parser = config_parser(__doc__.splitlines()[0], require_cfg=False)
    parser.add_argument("--archs", nargs="+", default=["XS", "S"], metavar="NAME",
                        help="released architectures (mobile_configs/search-NAME.json) or JSON paths")
    parser.add_argument("--batches", type=int, default=20, help="batches timed for the data pipeline")
    parser.add_argument("--steps", type=int, default=10, help="training steps timed")
    parser.add_argument("--batch-size", type=int, default=None, help="images per batch (TRAIN.IMAGES_PER_GPU)")
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: WORKERS, at most the cores)")
    parser.add_argument("--amp", action="store_true", help="time the step with mixed precision")
    args = parse_args(parser, argv)
    if args.batches <= 0 or args.steps <= 0:
        parser.error("--batches and --steps must be positive")
    args.opts = SYNTHETIC + list(args.opts) if args.cfg is None else list(args.opts)
    args.cfg = args.cfg or DEFAULT_CFG
    cfg = load_cli_config(args)
    device = resolve_device(cfg.DEVICE)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}, " \
        f"{torch.get_num_threads()} threads"
    print(f"device: {device} ({where}); batch {args.batch_size or cfg.TRAIN.IMAGES_PER_GPU}")
    print("| arch | input | data pipeline (img/s, workers) | training step (img/s) | bound by |")
    print("|---|---|---|---|---|")
    for name in args.archs:
        path = name if name.endswith(".json") else f"mobile_configs/search-{name}.json"
        arch = load_arch(path)
        size = arch["img_size"]
        data = measure_data_pipeline(cfg, size, device, args.batches, args.batch_size, args.workers)
        step = measure_train_step(cfg, arch, device, args.steps, args.batch_size, args.amp)
        bound = "data" if data["images_per_s"] < step["images_per_s"] else "step"
        print(f"| {name} | {size} | {data['images_per_s']:.1f} ({data['workers']}) | "
              f"{step['images_per_s']:.1f}{' (AMP)' if args.amp else ''} | {bound} |", flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
