#!/usr/bin/env python
"""AP and decoding time of PoseEstimator's presets and decoding caps on a test set.

    python tools/estimator_ap.py --cfg experiments/synthetic/quickstart.yaml \
        TEST.MODEL_FILE output/coco_kpt/pose_mobilenet/quickstart/final_state.pth.tar [--superconfig ARCH.json] \
        [--limit N] [--input-size N] [--json OUT.json]

Runs the checkpoint through ``litepose.PoseEstimator`` (PyTorch backend) over the config's test
split, once per variant, and evaluates each with the dataset's protocol (as ``valid.py``):

- ``accurate``: the release's settings (``valid.py``'s), no cap: its AP is ``valid.py``'s;
- ``accurate, max_people 20`` and ``accurate, max_people 20, max_detections 20``: the caps;
- ``realtime, no caps`` and ``realtime`` (its caps: max_people 20, max_detections 20).

Printed per variant: AP, AP .5, AR, the number of people returned, and the grouping time per
image (mean and maximum), so the cost of each cap in AP and its saving in time sit side by side.
"""

import json

from litepose.utils.cli import config_parser, load_cli_config, parse_args, run_cli

VARIANTS = (
    ("accurate", "accurate", {"max_people": None, "max_detections": None}),
    ("accurate, max_people 20", "accurate", {"max_people": 20, "max_detections": None}),
    ("accurate, max_people 20, max_detections 20", "accurate", {"max_people": 20, "max_detections": 20}),
    ("realtime, no caps", "realtime", {"max_people": None, "max_detections": None}),
    ("realtime (max_people 20, max_detections 20)", "realtime", {}),
)


def main(argv=None):
    import os

    import numpy as np
    from tqdm import tqdm

    from litepose import PoseEstimator
    from litepose.data.coco_format import KeypointAnnotations, dataset_files, keypoint_info_from_config, read_image
    from litepose.errors import CheckpointError, DataError
    from litepose.evaluation.keypoint_eval import evaluate_keypoints, protocol_for_dataset
    from litepose.evaluation.results import image_results
    from litepose.evaluation.runner import select_image_ids
    from litepose.models import build_model, load_checkpoint
    from litepose.utils.device import resolve_device

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    parser.add_argument("--input-size", type=int, default=None, help="test input size (default: the architecture's)")
    parser.add_argument("--json", metavar="OUT.json", help="write the figures here (refuses an existing file)")
    args = parse_args(parser, argv)
    if args.json and os.path.exists(args.json):
        raise DataError(f"{args.json} exists: give a new file")
    cfg = load_cli_config(args)
    if not cfg.TEST.MODEL_FILE:
        raise CheckpointError("no checkpoint: give TEST.MODEL_FILE path/to/model.pth")
    info = keypoint_info_from_config(cfg, for_test=True)
    ann_file, image_dir = dataset_files(cfg, "test")
    annotations = KeypointAnnotations(ann_file, image_dir, info)
    ids = select_image_ids(annotations, None, args.limit)
    protocol = protocol_for_dataset(cfg.DATASET.DATASET_TEST)
    device = resolve_device(cfg.DEVICE)
    model = build_model(cfg, args.superconfig)
    load_checkpoint(model, cfg.TEST.MODEL_FILE)
    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    images = {}
    for image_id in ids:
        try:
            images[image_id] = read_image(annotations.image_path(image_id))
        except DataError as exc:
            print(f"warning: {exc} (evaluated without detections)")
    category = (annotations.data.get("categories") or [{"id": 1}])[0]["id"]
    rows = []
    print(f"{'variant':46} {'AP':>6} {'AP .5':>6} {'AR':>6} {'people':>7} {'grouping ms mean / max':>24}")
    for name, preset, overrides in VARIANTS:
        estimator = PoseEstimator.from_model(model, cfg, preset=preset, device=device, input_size=args.input_size,
                                             **overrides)
        results, grouping, people = [], [], 0
        for image_id, image in tqdm(images.items(), desc=name, unit="img", leave=False, dynamic_ncols=True):
            found = estimator(image, color="rgb")
            results.extend(image_results(image_id, found.keypoints, found.scores, category))
            grouping.append(found.times["grouping"])
            people += len(found.scores)
        metrics = evaluate_keypoints(annotations.data, results, protocol, sigmas=info.sigmas_array(), image_ids=ids,
                                     source="predictions")
        row = {"variant": name, "preset": preset, "max_people": estimator.limits.max_people,
               "max_detections": estimator.limits.max_detections, "images": len(ids), "people": people,
               "metrics": dict(metrics), "grouping_ms_mean": 1000 * float(np.mean(grouping)),
               "grouping_ms_max": 1000 * float(np.max(grouping))}
        rows.append(row)
        print(f"{name:46} {metrics['AP']:6.3f} {metrics['Ap .5']:6.3f} {metrics['AR']:6.3f} {people:7d} "
              f"{row['grouping_ms_mean']:11.1f} / {row['grouping_ms_max']:6.1f}", flush=True)
    print(f"({len(ids)} images of {os.path.basename(ann_file)}, {protocol} protocol, input size "
          f"{estimator.settings.input_size})")
    if args.json:
        from litepose.utils.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main)
