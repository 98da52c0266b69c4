#!/usr/bin/env python
"""The decoding ceiling: AP of the test-time pipeline and grouping on perfect maps.

    python -m benchmarks.oracle_eval --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --gt ANN.json [--input-size 512] [--limit N] [--baseline] [--repeat R]

Renders ground-truth heatmaps and perfect tags for every image of ANN.json (only image sizes
are read, not pixels), decodes them with the real test-time transforms and grouping, and
evaluates: the best AP this decoding reaches at that input size, and grouping ms/image
(grouping plus mapping back to the image). --baseline also runs a loop-by-loop restatement of
the release's grouping (tests/reference_grouping.py) on the same maps, side by side. --repeat
decodes every image R times and keeps each image's fastest time (steadier on a busy machine).
"""

import os

from litepose.cli import (POSITIVE, THREADS, config_parser, input_size, int_range, load_cli_config, parse_args,
                                run_cli)


def main(argv=None):
    import platform
    import time

    import torch

    from litepose.arch import default_input_size
    from litepose.evaluation import metrics_table
    from litepose.evaluation.oracle import oracle_evaluate

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, metavar="ANN.json", help="annotation file (COCO format)")
    parser.add_argument("--input-size", type=input_size, default=None, metavar="N",
                        help="test input size (default DATASET.INPUT_SIZE)")
    parser.add_argument("--limit", type=POSITIVE, default=None, metavar="N", help="first N images only")
    parser.add_argument("--baseline", action="store_true", help="also time the release-style grouping")
    parser.add_argument("--repeat", type=int_range(1, 1000),
                        default=1, metavar="R", help="decode each image R times, keep the fastest")
    parser.add_argument("--threads", type=THREADS, default=None, metavar="N",
                        help="threads for torch and OpenCV (default: theirs); 1 steadies timings on a busy machine")
    args = parse_args(parser, argv)
    for name in ("input_size", "limit"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.repeat <= 0:
        parser.error(f"--repeat must be positive, got {args.repeat}")
    if args.threads is not None:
        if args.threads <= 0:
            parser.error(f"--threads must be positive, got {args.threads}")
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    cfg = load_cli_config(args)
    baseline = None
    if args.baseline:
        from tests.reference_grouping import reference_group  # the release restatement the tests check against

        baseline = reference_group

    started = time.time()
    result = oracle_evaluate(cfg, args.gt, args.input_size, args.limit, baseline=baseline, repeat=args.repeat)
    size = default_input_size(cfg, input_size=args.input_size)
    print(f"decoding ceiling of {os.path.basename(args.cfg)} on {args.gt}: {len(result.image_ids)} images, "
          f"input {size}, flip {bool(cfg.TEST.FLIP_TEST)}, project to image {bool(cfg.TEST.PROJECT2IMAGE)}")
    print(metrics_table(result.metrics, "ours"), end="")
    print(f"grouping + mapping back: {result.grouping_ms:.1f} ms/image "
          f"(flip/scale aggregation and upsampling before it: {result.aggregate_ms:.1f} ms/image)")
    if baseline is not None:
        base = result.baseline
        print(metrics_table(base["metrics"], "release-style"), end="")
        print(f"release-style grouping + mapping back: {base['grouping_ms']:.1f} ms/image; "
              f"ours is {base['grouping_ms'] / result.grouping_ms:.1f}x faster; "
              f"identical predictions on {base['identical_images']}/{len(result.image_ids)} images")
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{load}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    run_cli(main)
