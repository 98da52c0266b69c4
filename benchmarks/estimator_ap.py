#!/usr/bin/env python
"""AP and decoding time of PoseEstimator's presets and decoding caps on a test set.

    python -m benchmarks.estimator_ap --cfg experiments/synthetic/quickstart.yaml \
        TEST.MODEL_FILE output/coco_kpt/pose_mobilenet/quickstart/final_state.pth.tar [--superconfig ARCH.json] \
        [--limit N] [--input-size N] [--json OUT.json]

Runs the checkpoint through ``litepose.PoseEstimator`` (PyTorch backend) over the config's test
split, once per variant, and evaluates each with ``litepose.evaluation.evaluate`` (``valid.py``'s
evaluation, given the estimator):

- ``accurate``: the release's settings (``valid.py``'s), no cap: its AP is ``valid.py``'s;
- ``accurate, max_people 20`` and ``accurate, max_people 20, max_detections 20``: the caps;
- ``realtime, no caps``, ``realtime, release's assignment ties`` (its caps, the release's
  Munkres) and ``realtime`` (its caps: max_people 20, max_detections 20; SciPy's assignment);
- the two presets as ``PoseEstimator`` gives them, person filter included (the rows above
  have it off).

Printed per variant: AP, AP .5, AR, the number of people returned, and the grouping time per
image (mean and maximum), so the cost of each cap in AP and its saving in time sit side by side.

``--sweep-filter`` measures the person filter instead (``litepose.runtime.people.PersonFilter``):
each preset (with its caps) runs once with no filter, then every pair of person-score threshold
(``--min-scores``) and OKS-NMS threshold (``--nms-oks``; "none" = off) filters those people and
is evaluated: AP, AP .5, AR and people per image against the annotated people per image.
"""

import json

from litepose.cli import POSITIVE, config_parser, input_size, load_cli_config, parse_args, run_cli

_NO_FILTER = {"min_person_score": None, "person_nms": None}
VARIANTS = (
    ("accurate", "accurate", {"max_people": None, "max_detections": None, **_NO_FILTER}),
    ("accurate, max_people 20", "accurate", {"max_people": 20, "max_detections": None, **_NO_FILTER}),
    ("accurate, max_people 20, max_detections 20", "accurate", {"max_people": 20, "max_detections": 20, **_NO_FILTER}),
    ("realtime, no caps", "realtime", {"max_people": None, "max_detections": None, **_NO_FILTER}),
    ("realtime, release's assignment ties", "realtime", {"fast_assignment": False, **_NO_FILTER}),
    ("realtime (max_people 20, max_detections 20)", "realtime", dict(_NO_FILTER)),
    ("accurate preset (person filter)", "accurate", {}),
    ("realtime preset (caps, person filter)", "realtime", {}),
)


def main(argv=None):
    import os

    import numpy as np

    from litepose import PoseEstimator
    from litepose.data.coco_format import keypoint_info_from_config
    from litepose.evaluation import evaluate
    from litepose.models import load_model
    from litepose.utils.device import resolve_device

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--limit", type=POSITIVE, default=None, help="first N test images only")
    parser.add_argument("--input-size", type=input_size,
                        default=None, help="test input size (default: the architecture's)")
    parser.add_argument("--json", metavar="OUT.json", help="write the figures here (refuses an existing file)")
    parser.add_argument("--sweep-filter", action="store_true", help="AP of person-filter settings instead of caps")
    parser.add_argument("--min-scores", default="none,0.05,0.1,0.15,0.2,0.3",
                        help="--sweep-filter: person-score thresholds, comma-separated ('none' = off)")
    parser.add_argument("--nms-oks", default="none,0.9,0.8,0.7,0.6,0.5",
                        help="--sweep-filter: OKS-NMS thresholds, comma-separated ('none' = off)")
    args = parse_args(parser, argv)
    min_scores = _thresholds(args.min_scores, "--min-scores")
    nms_values = _thresholds(args.nms_oks, "--nms-oks")
    from litepose.runtime.people import PersonFilter

    for value in min_scores:  # out-of-range thresholds fail now, not after decoding every image
        PersonFilter(min_score=value)
    for value in nms_values:
        PersonFilter(nms_oks=value)
    if args.json:
        from litepose.utils.io import check_output_file

        check_output_file(args.json, what="--json", force_option=None)
    cfg = load_cli_config(args)
    info = keypoint_info_from_config(cfg, for_test=True)
    device = resolve_device(cfg.DEVICE)
    model = load_model(cfg, args.superconfig)
    if args.sweep_filter:
        rows = _sweep_filter(model, cfg, device, args, info, min_scores, nms_values)
        _write_json(args.json, rows)
        return 0
    rows = []
    print(f"{'variant':46} {'AP':>6} {'AP .5':>6} {'AR':>6} {'people':>7} {'grouping ms mean / max':>24}")
    for name, preset, overrides in VARIANTS:
        estimator = PoseEstimator.from_model(model, cfg, preset=preset, device=device, input_size=args.input_size,
                                             **overrides)
        result = evaluate(cfg, estimator, limit=args.limit)
        _warn_unreadable(result)
        metrics, people = result.metrics, len(result.results)
        grouping = [times["grouping"] for times in result.image_times] or [float("nan")]
        row = {"variant": name, "preset": preset, "max_people": estimator.limits.max_people,
               "max_detections": estimator.limits.max_detections,
               "fast_assignment": estimator.limits.fast_assignment, "min_person_score": estimator.person_filter.min_score,
               "person_nms": estimator.person_filter.nms_oks, "images": len(result.image_ids), "people": people,
               "metrics": dict(metrics), "grouping_ms_mean": 1000 * float(np.mean(grouping)),
               "grouping_ms_max": 1000 * float(np.max(grouping))}
        rows.append(row)
        print(f"{name:46} {metrics['AP']:6.3f} {metrics['Ap .5']:6.3f} {metrics['AR']:6.3f} {people:7d} "
              f"{row['grouping_ms_mean']:11.1f} / {row['grouping_ms_max']:6.1f}", flush=True)
    print(f"({len(result.image_ids)} images of {os.path.basename(result.ann_file)}, {result.protocol} protocol, "
          f"input size {estimator.settings.input_size})")
    _write_json(args.json, rows)
    return 0


def _warn_unreadable(result):
    for _, reason in result.unreadable:
        print(f"warning: {reason} (evaluated without detections)")


def _thresholds(text, option):
    from litepose.errors import ConfigError

    values = []
    for word in str(text).split(","):
        word = word.strip().lower()
        if word == "none":
            values.append(None)
            continue
        try:
            values.append(float(word))
        except ValueError:
            raise ConfigError(f"{option}: {word!r} is neither a number nor 'none'") from None
    return values


def _write_json(path, rows):
    if path:
        from litepose.utils.io import atomic_write_text

        atomic_write_text(path, json.dumps(rows, indent=1) + "\n")


def _sweep_filter(model, cfg, device, args, info, min_scores, nms_values):
    """Each preset once, unfiltered; then every filter setting on its people (module doc)."""
    import numpy as np

    from litepose import PoseEstimator
    from litepose.evaluation import evaluate, evaluate_keypoints, image_results, load_ground_truth
    from litepose.runtime.people import PersonFilter

    rows = []
    print(f"{'preset':9} {'min score':>9} {'NMS OKS':>8} {'AP':>6} {'AP .5':>6} {'AR':>6} {'people/img':>10} "
          f"{'annotated/img':>13}")
    for preset in ("accurate", "realtime"):
        estimator = PoseEstimator.from_model(model, cfg, preset=preset, device=device, input_size=args.input_size,
                                             min_person_score=None, person_nms=None)
        result = evaluate(cfg, estimator, limit=args.limit, keep_people=True)
        _warn_unreadable(result)
        ground_truth = load_ground_truth(result.ann_file)
        ids, found = result.image_ids, result.people
        category = (ground_truth.get("categories") or [{"id": 1}])[0]["id"]
        annotated = {image_id: sum(1 for a in ground_truth["annotations"]
                                   if a["image_id"] == image_id and a.get("num_keypoints", 0) > 0) for image_id in ids}
        for min_score in min_scores:
            for nms in nms_values:
                people_filter = PersonFilter(min_score=min_score, nms_oks=nms)
                results, counts = [], []
                for image_id, people in found.items():
                    keep = people_filter.keep(people.keypoints, people.scores, info.sigmas)
                    results.extend(image_results(image_id, people.keypoints[keep], people.scores[keep], category))
                    counts.append(len(keep))
                metrics = evaluate_keypoints(ground_truth, results, result.protocol, sigmas=info.sigmas_array(),
                                             image_ids=ids, source="predictions") if results else \
                    {"AP": 0.0, "Ap .5": 0.0, "AR": 0.0}
                row = {"preset": preset, "min_person_score": min_score, "person_nms": nms,
                       "metrics": dict(metrics), "people_per_image": float(np.mean(counts)),
                       "annotated_per_image": float(np.mean([annotated[i] for i in found]))}
                rows.append(row)
                print(f"{preset:9} {str(min_score):>9} {str(nms):>8} {metrics['AP']:6.3f} {metrics['Ap .5']:6.3f} "
                      f"{metrics['AR']:6.3f} {row['people_per_image']:10.1f} {row['annotated_per_image']:13.1f}",
                      flush=True)
    return rows


if __name__ == "__main__":
    run_cli(main)
