#!/usr/bin/env python
"""Grouping's sparse and dense paths on the same maps: what each costs, by share of pixels
above the detection threshold (the basis of ``group.DENSE_FRACTION``).

    python -m benchmarks.grouping_paths --cfg experiments/synthetic/quickstart.yaml \
        TEST.MODEL_FILE ckpt.pth.tar [DATASET.ROOT DIR] [--images 20] [--random 4] [--repeat 3]

Maps: the first ``--images`` test images of the config's dataset through the checkpoint
(``valid.py``'s settings), and ``--random`` of them through the same architecture with random
weights of a trained network's scale (``litepose.deploy.latency.realistic_weights_``: about
half of every heatmap above the threshold). Per image, the fastest of ``--repeat`` runs of
NMS (``group.find_peaks``, candidate search against whole-map filter) and of refinement
(``group.refine_people``, block search against strongest pixels first) on the people grouping
finds; both paths' results are checked equal. Printed: one row per image, then the sums per
range of the share above the threshold.
"""

import sys
import time

STEPS = (("NMS", "candidates", "whole map"), ("refine", "blocks", "top pixels"))


def _fastest(function, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0, result


def time_paths(maps, params, repeat):
    """``{"share": ..., "NMS": (sparse ms, dense ms), "refine": (block ms, fast ms)}`` for one
    image's ``Maps``; raises if the two paths of a step disagree."""
    import dataclasses

    import numpy as np

    from litepose.inference import group

    grid = group._Maps(maps.heatmaps, maps.tags, params.nms_kernel)
    share = float((grid.det > params.detection_threshold).mean())
    row = {"share": share}
    peaks = {}
    for dense in (False, True):
        ms, peaks[dense] = _fastest(lambda: group.find_peaks(grid, params.detection_threshold,
                                                             params.max_num_people, dense), repeat)
        row.setdefault("NMS", []).append(ms)
    for a, b in zip(peaks[False], peaks[True]):
        if not np.array_equal(a, b):
            raise AssertionError("the NMS paths found different peaks")
    people, _ = group.group_keypoints(maps.heatmaps, maps.tags, dataclasses.replace(params, refine=False))
    refined = {}
    for fast in (False, True):
        def run():
            filled = people.copy()
            group.refine_people(filled, grid, fast=fast)
            return filled
        ms, refined[fast] = _fastest(run, repeat)
        row.setdefault("refine", []).append(ms)
    if not np.array_equal(refined[False], refined[True]):
        raise AssertionError("the refinement paths filled different joints")
    row["people"] = len(people)
    return row


def main(argv=None):
    from litepose.cli import config_parser, int_range, load_cli_config, parse_args

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--images", type=int_range(1, 1_000_000), default=20,
                        help="test images through the checkpoint (default 20)")
    parser.add_argument("--random", type=int_range(0, 1_000_000), default=4,
                        help="of them also through random weights (default 4)")
    parser.add_argument("--repeat", type=int_range(1, 1000), default=3,
                        help="runs per path, the fastest kept (default 3)")
    args = parse_args(parser, argv)
    cfg = load_cli_config(args)

    import torch

    from litepose.data.coco_format import KeypointAnnotations, dataset_files, keypoint_info_from_config, read_image
    from litepose.deploy.latency import realistic_weights_
    from litepose.inference import InferenceSettings, predict
    from litepose.models import build_model, load_checkpoint

    model = build_model(cfg)
    load_checkpoint(model, cfg.TEST.MODEL_FILE)
    model.eval()
    settings = InferenceSettings.from_config(cfg, model)
    ann_file, image_dir = dataset_files(cfg, "test")
    annotations = KeypointAnnotations(ann_file, image_dir, keypoint_info_from_config(cfg, for_test=True))
    paths = [annotations.image_path(i) for i in list(annotations.image_ids)[:args.images]]
    torch.manual_seed(0)
    random_model = realistic_weights_(build_model(cfg).eval(), settings.input_size)
    sources = [("trained", model, p) for p in paths] + [("random", random_model, p) for p in paths[:args.random]]
    print("| weights | image | above threshold | people | NMS candidates / whole map ms | refine blocks / top pixels ms |")
    print("|---|---|---|---|---|---|")
    rows = []
    for weights, network, path in sources:
        maps = predict(network, read_image(path), settings, keep_maps=True).maps
        row = time_paths(maps, settings.grouping, args.repeat)
        rows.append(row)
        print(f"| {weights} | {path.rsplit('/', 1)[-1]} | {100 * row['share']:.1f} % | {row['people']} | "
              f"{row['NMS'][0]:.1f} / {row['NMS'][1]:.1f} | {row['refine'][0]:.1f} / {row['refine'][1]:.1f} |",
              flush=True)
    print("\nsums by share above the threshold:")
    print("| share | images | NMS candidates / whole map ms | refine blocks / top pixels ms |\n|---|---|---|---|")
    for low, high in ((0.0, 0.25), (0.25, 1.01)):  # group.DENSE_FRACTION: 0.25
        chosen = [r for r in rows if low <= r["share"] < high]
        if chosen:
            nms = [sum(r["NMS"][i] for r in chosen) for i in (0, 1)]
            refine = [sum(r["refine"][i] for r in chosen) for i in (0, 1)]
            print(f"| {100 * low:.0f}-{min(100, 100 * high):.0f} % | {len(chosen)} | {nms[0]:.1f} / {nms[1]:.1f} | "
                  f"{refine[0]:.1f} / {refine[1]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
