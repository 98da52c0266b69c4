#!/usr/bin/env python
"""Exports beside their checkpoint: heatmap and tag agreement on the test images, AP, and latency.

    python -m benchmarks.export_agreement --cfg experiments/synthetic/quickstart.yaml \
        TEST.MODEL_FILE final_state.pth.tar DATASET.ROOT data/synthetic \
        --exports final_state.onnx final_state.tflite [--limit N] [--threads 1] [--rounds 30] [--json OUT.json]

Each export (any format ``litepose.runtime.exported.open_network`` runs: ONNX, OpenVINO, TFLite,
ncnn, TorchScript) is evaluated by ``litepose.evaluation.evaluate``, ``valid.py``'s loop, on
the config's test split; every batch the export receives there (the images as its own pipeline
prepares them: flip pair, letterboxed to a fixed-size export's input) also goes through the
checkpoint in PyTorch, and the largest absolute difference is kept apart for the heatmaps (the
first ``NUM_JOINTS`` channels of every output) and the tags (the channels after them). Printed
per export: those two maxima beside the largest PyTorch value of each, the AP, and the
checkpoint's own AP through the same loop.

Then latency: one ``[1, 3, S, S]`` input (the first test image resized to the config's input
size S, which every export takes: a fixed-size one is made at S), timed for each export and for
PyTorch eager with ``--threads`` intra-op threads, all interleaved round by round
(``litepose.deploy.latency.time_interleaved``): median and p90 ms, and each one's speed-up
over PyTorch eager measured in the same rounds.
"""

import json
import os

import numpy as np

from litepose.cli import POSITIVE, config_parser, int_range, load_cli_config, parse_args, run_cli
from litepose.runtime.network import Network


def main(argv=None):
    import torch

    from litepose.arch import default_input_size
    from litepose.data.coco_format import dataset_files
    from litepose.deploy.formats import check_images
    from litepose.deploy.latency import time_interleaved
    from litepose.evaluation import evaluate
    from litepose.models import load_model
    from litepose.runtime.exported import open_network
    from litepose.runtime.torch_backend import TorchNetwork

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--exports", nargs="+", required=True, metavar="MODEL", help="exported models to compare")
    parser.add_argument("--limit", type=POSITIVE, default=None, metavar="N", help="first N test images only")
    parser.add_argument("--threads", type=int_range(1, 1024), default=1, help="intra-op threads of every runtime")
    parser.add_argument("--rounds", type=int_range(0, 100000), default=30, help="timed rounds (0: no timing)")
    parser.add_argument("--json", metavar="OUT.json", help="write the figures here (refuses an existing file)")
    args = parse_args(parser, argv)
    if args.json:
        from litepose.utils.io import check_output_file

        check_output_file(args.json, what="--json", force_option=None)
    cfg = load_cli_config(args)
    torch.set_num_threads(args.threads)
    model = load_model(cfg, args.superconfig)
    reference = TorchNetwork(model, "cpu")
    joints = cfg.DATASET.NUM_JOINTS
    networks = {os.path.basename(path): open_network(path, threads=args.threads) for path in args.exports}

    checkpoint = evaluate(cfg, model, limit=args.limit, device="cpu", progress=False)
    rows = [{"model": os.path.basename(cfg.TEST.MODEL_FILE), "backend": checkpoint.backend,
             "input": f"dynamic, short side {checkpoint.input_size}", "people": len(checkpoint.results),
             "ap": checkpoint.ap}]
    for name, network in networks.items():
        compared = Compared(network, reference, joints)
        result = evaluate(cfg, compared, limit=args.limit, progress=False)
        fixed = network.fixed_hw
        rows.append({"model": name, "backend": result.backend, "people": len(result.results), "ap": result.ap,
                     "input": f"fixed {fixed[1]}x{fixed[0]} (letterboxed)" if fixed else
                              f"dynamic, short side {result.input_size}",
                     "batches": compared.batches, **compared.worst})
    print(f"{len(checkpoint.image_ids)} images of {os.path.basename(checkpoint.ann_file)}, "
          f"{'flip test' if cfg.TEST.FLIP_TEST else 'no flip'}, threads {args.threads}")
    print("| model | backend | input | max abs diff heatmaps (max PyTorch) | max abs diff tags (max PyTorch) "
          "| people | AP |")
    print("|---|---|---|---|---|---:|---:|")
    for row in rows:
        heat = f"{row['heatmaps']:.3g} ({row['heatmaps_max']:.3g})" if "heatmaps" in row else "-"
        tags = f"{row['tags']:.3g} ({row['tags_max']:.3g})" if "tags" in row else "-"
        print(f"| {row['model']} | {row['backend']} | {row['input']} | {heat} | {tags} | {row['people']} "
              f"| {row['ap']:.6f} |")

    timings = {}
    if args.rounds:
        size = default_input_size(cfg, model)
        image_dir = dataset_files(cfg, "test")[1]
        x = check_images(size, 1, image_dir)[0].numpy()
        runners = {"PyTorch eager": lambda: reference(x)}
        runners.update({name: (lambda network=network: network(x)) for name, network in networks.items()})
        timings = time_interleaved(runners, args.rounds, warmup=3, progress=False)
        eager = timings["PyTorch eager"]
        print(f"\nlatency, 1x3x{size}x{size}, {args.threads} thread(s), {args.rounds} interleaved rounds")
        print("| model | ms median (p90) | x PyTorch eager |")
        print("|---|---:|---:|")
        for name, timing in timings.items():
            print(f"| {name} | {timing.median_ms:.2f} ({timing.p90_ms:.2f}) | "
                  f"{eager.median_ms / timing.median_ms:.2f} |")
    if args.json:
        from litepose.utils.io import atomic_write_text

        latency = {name: {"median_ms": t.median_ms, "p90_ms": t.p90_ms} for name, t in timings.items()}
        atomic_write_text(args.json, json.dumps({"rows": rows, "latency": latency, "threads": args.threads},
                                                indent=1) + "\n")
    return 0


class Compared(Network):
    """A network that runs the export and, on the same batch, the PyTorch reference, keeping the
    largest absolute difference of the heatmap and the tag channels (``worst``) and the largest
    PyTorch value of each (``worst[part + "_max"]``)."""

    def __init__(self, network, reference, joints):
        self.inner, self.reference, self.joints = network, reference, joints
        self.name, self.format = network.name, network.format
        self.fixed_hw, self.metadata = network.fixed_hw, network.metadata
        self.batches = 0
        self.worst = {"heatmaps": 0.0, "heatmaps_max": 0.0, "tags": 0.0, "tags_max": 0.0}

    def __call__(self, batch):
        outputs = self.inner(batch)
        expected = self.reference(batch)
        for got, want in zip(outputs, expected):
            for part, channels in (("heatmaps", slice(0, self.joints)), ("tags", slice(self.joints, None))):
                if want[:, channels].size:
                    diff = np.abs(np.asarray(got[:, channels], np.float64) - want[:, channels]).max()
                    self.worst[part] = max(self.worst[part], float(diff))
                    self.worst[part + "_max"] = max(self.worst[part + "_max"], float(np.abs(want[:, channels]).max()))
        self.batches += 1
        return outputs


if __name__ == "__main__":
    run_cli(main)
