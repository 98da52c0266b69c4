#!/usr/bin/env python
"""Write the embedded synthetic keypoint dataset (COCO format, 17 joints, train and val splits).

    python tools/make_synthetic_dataset.py --out data/synthetic [--train 1500 --val 100 --seed 0]
    python tools/make_synthetic_dataset.py --out data/coco_scale --coco-scale [--pool 300]

--coco-scale writes a rehearsal of COCO's size instead (118,287 training and 5,000 validation
images by default, COCO's people per image, keypoints per person and crowd regions, COCO's
encodings) whose images are --pool real-size JPEGs referenced many times: for measuring the data
pipeline, evaluation and resume at full size (python -m benchmarks.data_scale), not for learning.

The same seed always gives the same images and annotations. The quickstart config
(experiments/synthetic/quickstart.yaml, DATASET.SYNTHETIC True) runs this on demand.
"""

import argparse

from litepose.cli import SEED, int_range, parse_args, run_cli


def main(argv=None):
    from litepose.data.synthetic import (COCO_STATISTICS, DEFAULT_COUNTS, DEFAULT_POOL_IMAGES, DEFAULT_SEED,
                                         generate_synthetic_dataset)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="dataset root to create")
    parser.add_argument("--train", type=int_range(0, 1_000_000),
                        help=f"training images (default {DEFAULT_COUNTS['train']}; "
                        f"{COCO_STATISTICS['train']['images']} with --coco-scale)")
    parser.add_argument("--val", type=int_range(0, 1_000_000),
                        help=f"validation images (default {DEFAULT_COUNTS['val']}; "
                        f"{COCO_STATISTICS['val']['images']} with --coco-scale)")
    parser.add_argument("--coco-scale", action="store_true",
                        help="write the COCO-sized rehearsal (real-size JPEGs reused, COCO's statistics)")
    parser.add_argument("--pool", type=int_range(1, 1_000_000), default=DEFAULT_POOL_IMAGES,
                        help="distinct JPEGs per split of the COCO-scale rehearsal")
    parser.add_argument("--seed", type=SEED, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    args = parse_args(parser, argv)
    defaults = {split: COCO_STATISTICS[split]["images"] for split in ("train", "val")} if args.coco_scale \
        else DEFAULT_COUNTS
    counts = {"train": defaults["train"] if args.train is None else args.train,
              "val": defaults["val"] if args.val is None else args.val}
    manifest = generate_synthetic_dataset(args.out, counts, seed=args.seed, overwrite=args.force,
                                          coco_scale=args.coco_scale, pool_images=args.pool)
    for split, counts in manifest["splits"].items():
        print(f"{split}: {counts['images']} images, {counts['people_with_keypoints']} people with keypoints")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
