#!/usr/bin/env python
"""Evaluate a COCO-format keypoint results file and print the standard table.

    python tools/eval_results.py --gt ANN.json --results RESULTS.json --dataset {coco,crowdpose}

coco: pycocotools keypoint AP (COCO sigmas; --sigmas for other joint sets). crowdpose: the
official CrowdPose protocol (AP, AR, AP easy / medium / hard). --output writes the table as
Markdown too (an existing file only with --force).
"""

import argparse

from litepose.cli import number_range, parse_args, run_cli


def main(argv=None):
    from litepose.evaluation import PROTOCOLS, evaluate_keypoints, load_results, metrics_table
    from litepose.utils.io import atomic_write_text, check_output_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, metavar="ANN.json", help="ground-truth annotation file")
    parser.add_argument("--results", required=True, metavar="RESULTS.json", help="results file to evaluate")
    parser.add_argument("--dataset", required=True, choices=PROTOCOLS, help="evaluation protocol")
    parser.add_argument("--sigmas", type=number_range(), nargs="+", metavar="S",
                        help="OKS sigmas, one per joint (default: the dataset's)")
    parser.add_argument("--output", metavar="TABLE.md", help="also write the table here")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    args = parse_args(parser, argv)
    if args.output:  # before the evaluation: a folder, a read-only place or an existing file stop it at once
        check_output_file(args.output, args.force, "--output", inputs=[args.gt, args.results])

    results = load_results(args.results)
    metrics = evaluate_keypoints(args.gt, results, args.dataset, sigmas=args.sigmas, source=args.results)
    table = metrics_table(metrics)
    print(table, end="")
    if args.output:
        atomic_write_text(args.output, table)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    run_cli(main)
