#!/usr/bin/env python
"""The LitePose search space: sample architectures, check membership, count MACs.

    python arch_manager.py --sample 3
    python arch_manager.py --check mobile_configs/search-S.json
    python arch_manager.py --cfg experiments/coco/mobilenet/supermobile.yaml --sample 5 --seed 1

The search space itself lives in ``litepose.models.space`` (``SearchSpace``, ``ArchManager``)
and is configured by ``SEARCH_SPACE.*`` in the experiment YAML.
"""

import argparse
import json

from litepose.models.space import ArchManager, SearchSpace  # noqa: F401  (re-exported for users)


def main(argv=None):
    from litepose.arch import describe_arch, load_arch
    from litepose.config import load_config
    from litepose.models import build_model, profile_model
    from litepose.cli import SEED, int_range, parse_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default="experiments/crowd_pose/mobilenet/supermobile.yaml",
                        help="config whose SEARCH_SPACE and joint count to use")
    parser.add_argument("--sample", type=int_range(0, 100_000),
                        default=0, metavar="N", help="print N random architectures")
    parser.add_argument("--seed", type=SEED, default=None, help="random seed for --sample")
    parser.add_argument("--check", metavar="ARCH.json", help="check that an architecture lies in the search space")
    parser.add_argument("--json", action="store_true", help="also print each sampled architecture as JSON")
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE", help="config overrides")
    args = parse_args(parser, argv)
    if args.sample < 0:
        parser.error("--sample must be >= 0")
    if not args.sample and not args.check:
        parser.error("nothing to do: give --sample N and/or --check ARCH.json")

    cfg = load_config(args.cfg, list(args.opts) + ["MODEL.NAME", "pose_mobilenet"])
    manager = ArchManager.from_config(cfg, seed=args.seed)
    space = manager.space
    if args.check:
        arch = space.check(load_arch(args.check), source=args.check)
        macs = profile_model(build_model(cfg, arch), arch["img_size"]).macs
        print(f"{args.check}: in the search space; {describe_arch(arch)}; {macs / 1e9:.3f} GMACs")
    for index in range(args.sample):
        arch = manager.random_sample()
        profile = profile_model(build_model(cfg, arch), arch["img_size"])
        print(f"[{index}] {profile.macs / 1e9:.3f} GMACs, {profile.params / 1e6:.3f} M params | {describe_arch(arch)}")
        if args.json:
            print(json.dumps(arch))
    return 0


if __name__ == "__main__":
    from litepose.cli import run_cli

    run_cli(main)
