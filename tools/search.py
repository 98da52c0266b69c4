#!/usr/bin/env python
"""Search a trained supernet for the most accurate architecture within a MAC or latency budget.

    python tools/search.py --cfg experiments/crowd_pose/mobilenet/supermobile.yaml \
        TEST.MODEL_FILE supernet.pth --max-macs 5.0G --output search-5G.json
    # latency on the target device instead of MACs: build the table there, then search with it
    python tools/search.py --cfg experiments/crowd_pose/mobilenet/supermobile.yaml \
        --build-latency-table --output latency-pi.json
    python tools/search.py --cfg ... TEST.MODEL_FILE supernet.pth --max-latency-ms 100 \
        --latency-table latency-pi.json --output search-100ms.json

Evolution as in the release (population 40, 40 generations, parent ratio 0.25, mutation
ratio 0.5, mutation probability 0.1); each candidate is scored by its val AP on
--val-images images after recalibrating its BatchNorm on --calib-images training images.
The search state is kept in --state (default: OUTPUT.state.json): rerun the same command
to resume after an interruption. The result is an architecture JSON that dist_train.py
--superconfig and weight_transfer.py accept.
"""

import os
import sys

from litepose.cli import (SEED, THREADS, config_parser, int_range, load_cli_config, number_range, parse_args,
                                run_cli, run_inputs)

UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_macs(text):
    """'5.0G', '500M', '5e9' -> MACs."""
    text = text.strip().upper()
    unit = text[-1] if text and text[-1] in UNITS else ""
    try:
        value = float(text[: len(text) - len(unit)]) * UNITS[unit]
    except ValueError:
        raise ValueError(f"--max-macs must be a number with an optional K/M/G suffix, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"--max-macs must be positive, got {text!r}")
    return value


def dataset_fingerprint(cfg):
    """The annotation files the scorer reads (calibration: train, AP: test), by content."""
    from litepose.data.coco_format import dataset_files
    from litepose.utils.io import file_sha256

    fingerprint = {}
    for split in ("train", "test"):
        ann_file, image_dir = dataset_files(cfg, split)
        fingerprint[split] = {"annotations": file_sha256(ann_file) if os.path.isfile(ann_file) else ann_file,
                              "images": os.path.abspath(image_dir)}
    return fingerprint


def main(argv=None):
    from litepose.arch import describe_arch, save_arch
    from litepose.errors import ConfigError
    from litepose.models import load_model
    from litepose.models.builders import litepose_head_config
    from litepose.search import EvolutionSearch, LatencyTable, MacCounter
    from litepose.search.evolution import SearchError
    from litepose.utils.io import check_output_file, file_sha256
    from litepose.search.scoring import SubnetScorer
    from litepose.models.space import SearchSpace
    from litepose.utils.device import resolve_device

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="architecture JSON to write (or the latency table)")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    budget = parser.add_argument_group("budget")
    budget.add_argument("--max-macs", help="MAC budget, e.g. 5.0G")
    budget.add_argument("--max-latency-ms", type=number_range(above=0),
                        help="latency budget in ms (needs --latency-table)")
    budget.add_argument("--latency-table", help="table from --build-latency-table on the target device")
    scoring = parser.add_argument_group("scoring")
    scoring.add_argument("--val-images", type=int_range(1, 1_000_000),
                         default=200, help="val images per candidate (default 200)")
    scoring.add_argument("--calib-images", type=int_range(1, 1_000_000), default=500,
                         help="training images for BN recalibration (default 500)")
    scoring.add_argument("--batch-size", type=int_range(1, 4096),
                         default=None, help="calibration batch (TRAIN.IMAGES_PER_GPU)")
    evolution = parser.add_argument_group("evolution")
    evolution.add_argument("--population", type=int_range(1, 10_000),
                           default=40, help="architectures per generation (default 40)")
    evolution.add_argument("--generations", type=int_range(0, 10_000),
                           default=40, help="generations after the first (default 40)")
    evolution.add_argument("--parent-ratio", type=number_range(0, 1), default=0.25,
                           help="share of the population kept as parents (default 0.25)")
    evolution.add_argument("--mutation-ratio", type=number_range(0, 1), default=0.5,
                           help="share of children made by mutation, the rest by crossover (default 0.5)")
    evolution.add_argument("--mutate-prob", type=number_range(0, 1), default=0.1,
                           help="probability that a mutation resamples each choice (default 0.1)")
    evolution.add_argument("--seed", type=SEED,
                           default=0, help="seeds the draws and the calibration images (default 0)")
    evolution.add_argument("--state", help="search state file to resume from (default OUTPUT.state.json)")
    table = parser.add_argument_group("latency table")
    table.add_argument("--build-latency-table", action="store_true", help="time the search space's layers here")
    table.add_argument("--latency-samples", type=int_range(1, 1_000_000),
                       default=300, help="random members whose layers are timed")
    table.add_argument("--repeats", type=int_range(1, 100_000), default=10, help="timed runs per layer (median)")
    table.add_argument("--threads", type=THREADS, default=None, help="CPU threads while timing")
    args = parse_args(parser, argv)

    cfg = load_cli_config(args)
    from litepose.data.build import single_opencv_thread

    single_opencv_thread()  # BN recalibration's loader forks workers (process-wide: the script's call)
    if cfg.MODEL.NAME != "pose_supermobilenet":
        raise ConfigError(f"{args.cfg}: MODEL.NAME is {cfg.MODEL.NAME}; the search needs a supernet config")
    check_output_file(args.output, args.force, "--output", inputs=run_inputs(args, cfg, args.latency_table, args.state))
    space = SearchSpace.from_config(cfg)
    head = litepose_head_config(cfg)
    device = resolve_device(cfg.DEVICE)

    if args.build_latency_table:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        table = LatencyTable.build(space, head, device, samples=args.latency_samples, repeats=args.repeats)
        table.save(args.output, overwrite=args.force)
        print(f"timed {len(table.entries)} layer configurations on {table.meta['device']} "
              f"({table.meta['threads']} threads); wrote {args.output}")
        return 0

    if not args.max_macs and args.max_latency_ms is None:
        parser.error("give a budget: --max-macs and/or --max-latency-ms")
    if args.max_latency_ms is not None and not args.latency_table:
        parser.error("--max-latency-ms needs --latency-table (build it with --build-latency-table)")
    try:
        max_macs = parse_macs(args.max_macs) if args.max_macs else None
    except ValueError as exc:
        parser.error(str(exc))
    if not cfg.TEST.MODEL_FILE:
        raise ConfigError("no supernet checkpoint: give TEST.MODEL_FILE path/to/supernet.pth")
    latency = LatencyTable.load(args.latency_table) if args.latency_table else None

    macs_of = MacCounter(head)

    def cost(arch):
        """Fraction of the tightest budget used (<= 1 fits every budget)."""
        fractions = []
        if max_macs:
            fractions.append(macs_of(arch) / max_macs)
        if args.max_latency_ms is not None:
            fractions.append(latency.predict(arch) / args.max_latency_ms)
        return max(fractions)

    smallest = space.smallest()
    if max_macs and macs_of(smallest) > max_macs:
        raise SearchError(f"even the smallest architecture has {macs_of(smallest) / 1e9:.3f} GMACs, above "
                          f"--max-macs {max_macs / 1e9:.3f} GMACs: the budget is below what the search space can reach")
    if args.max_latency_ms is not None and latency.predict(smallest) > args.max_latency_ms:
        raise SearchError(f"even the smallest architecture is predicted at {latency.predict(smallest):.1f} ms, above "
                          f"--max-latency-ms {args.max_latency_ms:g} ms: the budget is below what the search space can reach")
    supernet = load_model(cfg, subnet=False)
    scorer = SubnetScorer(cfg, supernet, args.val_images, args.calib_images, args.batch_size, device, args.seed)

    def describe(candidate):
        text = f"AP {candidate.score:.4f}, {macs_of(candidate.arch) / 1e9:.3f} GMACs"
        if latency:
            text += f", {latency.predict(candidate.arch):.1f} ms predicted"
        return text

    def report(generation, best):
        label = "initial population" if generation == 0 else f"generation {generation}/{args.generations}"
        print(f"{label}: best so far {describe(best)} | {describe_arch(best.arch)}", flush=True)

    # What the scores depend on: a state file of another supernet, data or scorer is refused.
    scored = {"supernet_sha256": file_sha256(cfg.TEST.MODEL_FILE),
              "data": dataset_fingerprint(cfg), "val_images": args.val_images, "calib_images": args.calib_images,
              "batch_size": args.batch_size, "max_macs": max_macs, "max_latency_ms": args.max_latency_ms,
              "latency_table": file_sha256(args.latency_table) if args.latency_table else None}
    state_path = args.state or f"{args.output}.state.json"
    search = EvolutionSearch(space, scorer, cost, 1.0, population_size=args.population,
                             generations=args.generations, parent_ratio=args.parent_ratio,
                             mutation_ratio=args.mutation_ratio, mutate_prob=args.mutate_prob, seed=args.seed,
                             state_path=state_path, on_generation=report, scored=scored)
    if search.resumed:
        print(f"resuming the search from {state_path}: generation {search.generation}, "
              f"{len(search.scores)} architectures already scored", flush=True)
    best = search.run()
    scores = set(search.scores.values())
    if len(scores) == 1:
        print(f"warning: every architecture scored the same (AP {scores.pop():.4f}): the supernet is probably "
              "undertrained, and the 'best' architecture is an arbitrary one", file=sys.stderr)
    save_arch(best.arch, args.output, overwrite=args.force)
    print(f"best architecture: {describe(best)}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    run_cli(main)
