#!/usr/bin/env python
"""Write the embedded synthetic keypoint dataset (COCO format, 17 joints, train and val splits).

    python tools/make_synthetic_dataset.py --out data/synthetic [--train 1500 --val 100 --seed 0]

The same seed always gives the same images and annotations. The quickstart config
(experiments/synthetic/quickstart.yaml, DATASET.SYNTHETIC True) runs this on demand.
"""

import argparse

from litepose.utils.cli import SEED, int_range, parse_args, run_cli


def main(argv=None):
    from litepose.data.synthetic import DEFAULT_COUNTS, DEFAULT_SEED, generate_synthetic_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="dataset root to create")
    parser.add_argument("--train", type=int_range(0, 1_000_000),
                        default=DEFAULT_COUNTS["train"], help="training images")
    parser.add_argument("--val", type=int_range(0, 1_000_000), default=DEFAULT_COUNTS["val"], help="validation images")
    parser.add_argument("--seed", type=SEED, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    args = parse_args(parser, argv)
    manifest = generate_synthetic_dataset(args.out, {"train": args.train, "val": args.val}, seed=args.seed,
                                          overwrite=args.force)
    for split, counts in manifest["splits"].items():
        print(f"{split}: {counts['images']} images, {counts['people_with_keypoints']} people with keypoints")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
