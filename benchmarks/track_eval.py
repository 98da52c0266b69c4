#!/usr/bin/env python
"""Identity switches and fragmentations of litepose.tracking.PoseTracker on generated people.

    python -m benchmarks.track_eval [--frames 300] [--people 6] [--seeds 0 1 2] [--scenario easy|hard|both]
        [--max-lost 30] [--min-similarity 0.3] [--association oks|box] [--json OUT.json]

The sequences come from ``litepose.tracking.synthetic_sequence``: synthetic figures (17 COCO
joints) walking across a 640 x 480 frame, half of them in pairs that cross, with Gaussian noise
on every joint, joints and whole people missed for runs of frames (the detector's dropouts), and
false detections; the identity of every detection is known. Per scenario and seed, the tracker
with the given settings runs beside variants with one feature off (no lost-track memory, no
velocity, box association) and with One-Euro smoothing. Printed per 100 frames: identity
switches (a person's id changes to one seen before) and fragmentations (to a new id), the
mean joint error against the noise-free joints, and the tracker's time per frame.
"""

import argparse
import time

from litepose.tracking import MAX_LOST
from litepose.cli import SCORE, SEED, int_range
from benchmarks.rows import kept_on_interrupt, write_rows

SCENARIOS = {
    "easy": dict(noise_px=2.0, joint_dropout=0.1, person_dropout=0.03, dropout_frames=(2, 8), false_positives=0.05),
    "hard": dict(noise_px=4.0, joint_dropout=0.2, person_dropout=0.08, dropout_frames=(3, 20), false_positives=0.1),
}


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int_range(1, 100_000), default=300, help="frames per sequence (at most 100000)")
    parser.add_argument("--people", type=int_range(1, 100), default=None,
                        help="people per sequence (default: 6 easy, 12 hard; at most 100)")
    parser.add_argument("--seeds", type=SEED, nargs="+", default=[0, 1, 2], help="one sequence per seed")
    parser.add_argument("--scenario", choices=("easy", "hard", "both"), default="both")
    parser.add_argument("--max-lost", type=int_range(0, MAX_LOST), default=30, help="frames a lost track is remembered")
    parser.add_argument("--min-similarity", type=SCORE, default=0.3, help="least OKS / IoU to continue a track (0 to 1)")
    parser.add_argument("--association", choices=("oks", "box"), default="oks")
    parser.add_argument("--json", metavar="OUT.json", help="also write the figures here (refuses an existing file)")
    return parser


def main(argv=None):
    from litepose.cli import parse_args
    from litepose.utils.io import check_output_file

    parser = _parser()
    args = parse_args(parser, argv)
    if args.json:
        check_output_file(args.json, what="--json file", force_option=None)  # the tool never overwrites
    base = dict(max_lost=args.max_lost, min_similarity=args.min_similarity, association=args.association)
    variants = {
        "tracker": base,
        "no lost-track memory": dict(base, max_lost=0),
        "no velocity": dict(base, use_velocity=False),
        "box association": dict(base, association="box"),
        "tracker + One-Euro": dict(base, smoothing=True),
    }
    scenarios = ("easy", "hard") if args.scenario == "both" else (args.scenario,)
    print(f"{'scenario':8} {'tracker':22} {'switches/100':>12} {'frags/100':>10} {'joint err px':>12} "
          f"{'ms/frame':>8}")
    with kept_on_interrupt([], args.json) as report:  # Ctrl-C: the finished rows are kept
        _measure(args, scenarios, variants, report)
    write_rows(args.json, report)
    return report


def _measure(args, scenarios, variants, report):
    """Every scenario and tracker variant, appending each finished row to ``report``."""
    from litepose.tracking import PoseTracker, identity_metrics, joint_error, synthetic_sequence, track_sequence

    for scenario in scenarios:
        people = args.people or (6 if scenario == "easy" else 12)
        sequences = [synthetic_sequence(frames=args.frames, people=people, seed=seed, **SCENARIOS[scenario])
                     for seed in args.seeds]
        raw_error = sum(joint_error(s, [f.keypoints for f in s]) for s in sequences) / len(sequences)
        for name, settings in variants.items():
            switches = fragmentations = frames = 0
            error = seconds = 0.0
            for sequence in sequences:
                start = time.perf_counter()
                ids, keypoints = track_sequence(PoseTracker(**settings), sequence, with_keypoints=True)
                seconds += time.perf_counter() - start
                m = identity_metrics(sequence, ids)
                switches, fragmentations, frames = switches + m["switches"], fragmentations + m["fragmentations"], \
                    frames + m["frames"]
                error += joint_error(sequence, keypoints) / len(sequences)
            row = {"scenario": scenario, "people": people, "tracker": name, "frames": frames, "switches": switches,
                   "fragmentations": fragmentations, "switches_per_100": 100.0 * switches / frames,
                   "fragmentations_per_100": 100.0 * fragmentations / frames, "joint_error_px": error,
                   "detector_joint_error_px": raw_error, "ms_per_frame": 1000.0 * seconds / frames,
                   "settings": settings}
            report.append(row)
            print(f"{scenario:8} {name:22} {row['switches_per_100']:12.2f} {row['fragmentations_per_100']:10.2f} "
                  f"{error:12.2f} {row['ms_per_frame']:8.2f}")
        print(f"{scenario:8} {'(detections, raw)':22} {'':12} {'':10} {raw_error:12.2f}   "
              f"[{people} people, {len(sequences)} x {args.frames} frames]")


if __name__ == "__main__":
    from litepose.cli import run_cli

    run_cli(lambda argv: main(argv) and 0)  # main returns the figures; the command exits 0
