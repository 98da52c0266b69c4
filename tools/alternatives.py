"""LitePose beside the alternatives: YOLO11n-pose and YOLOv8n-pose timed in the same runtimes.

The YOLO networks are built from the model definitions shipped in ``ultralytics`` (random
weights: latency does not depend on them), with Ultralytics kept offline (``YOLO_OFFLINE``) so
it never downloads anything; ``ultralytics`` is an optional benchmark dependency. LitePose's
released architectures are built the same way (random weights, BN folded). Every network is
exported to ONNX once and run by ONNX Runtime and OpenVINO on the CPU, all of them interleaved
round by round (``latency.time_interleaved``).

Published accuracy (COCO val2017 keypoint AP) beside the measured times:
``PUBLISHED_AP`` with its source; no figure is measured here.
"""

import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from litepose.deploy.export import ExportError, _first_line

YOLO_MODELS = ("yolo11n-pose", "yolov8n-pose")
LITEPOSE_MODELS = ("XS", "S", "M", "L")
# COCO val2017 keypoint AP (%). YOLO: mAP^pose 50-95 at 640 px, Ultralytics docs (Pose task page,
# YOLO11 and YOLOv8 pose model tables). LitePose: the authors' released COCO checkpoints
# (../shared/reference/litepose_facts.md, "Released checkpoints"; the paper's LitePose-Auto-M is
# 59.8 val), each at its architecture's own input size.
PUBLISHED_AP = {
    "yolo11n-pose": (50.0, 640, "Ultralytics docs, YOLO11 pose models table"),
    "yolov8n-pose": (50.4, 640, "Ultralytics docs, YOLOv8 pose models table"),
    "LitePose-XS": (40.6, 256, "LitePose release (COCO val2017), litepose_facts.md"),
    "LitePose-S": (56.8, 448, "LitePose release (COCO val2017), litepose_facts.md"),
    "LitePose-M": (59.8, 448, "LitePose paper / release (COCO val2017), litepose_facts.md"),
    "LitePose-L": (62.5, 512, "LitePose release (COCO val2017), litepose_facts.md"),
}


def build_yolo(name):
    """A fused, eval-mode YOLO pose network from ``ultralytics``' shipped ``NAME.yaml``."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # before the import: no downloads, no analytics
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics import YOLO
    except Exception as exc:
        raise ExportError(f"the YOLO comparison needs the ultralytics package ({_first_line(exc)}): "
                          f"pip install ultralytics --no-deps (see README)") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = YOLO(f"{name}.yaml").model
    return network.fuse().eval()


def build_litepose_arch(name, repo_root):
    """LitePose-``name`` (XS, S, M, L) for COCO with random weights, BN folded, and its input size."""
    from litepose.config import load_config
    from litepose.models import build_model
    from litepose.deploy.fuse import fuse_bn

    cfg = load_config(os.path.join(repo_root, "experiments", "coco", "mobilenet", "mobile.yaml"), [])
    torch.manual_seed(0)
    model = build_model(cfg, os.path.join(repo_root, "mobile_configs", f"search-{name}.json")).eval()
    return fuse_bn(model), int(model.arch["img_size"])


class _Tuple(torch.nn.Module):
    """A fixed output container for the exporter: tensors only (YOLO's eval output carries a dict)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        if isinstance(out, (list, tuple)):
            return tuple(o for o in out if torch.is_tensor(o))
        return (out,)


@torch.no_grad()
def onnx_bytes(model, size, opset=17):
    x = torch.zeros(1, 3, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(_Tuple(model), (x,), buffer, dynamo=False, opset_version=opset, input_names=["input"],
                              do_constant_folding=True)
        except Exception as exc:
            raise ExportError(f"ONNX export of {type(model).__name__} at {size} failed: {_first_line(exc)}") from exc
    return buffer.getvalue()


def macs(model, size):
    """MACs of one ``[1, 3, S, S]`` image by the project's counter (``litepose.models.profile``:
    the thop convention behind the paper's figures), for YOLO and LitePose alike."""
    from litepose.models.profile import profile_model

    return profile_model(_Tuple(model), size).macs  # tensors only: YOLO also returns a dict


@dataclass
class Candidate:
    """One network at one input size: ``name`` (e.g. yolo11n-pose, LitePose-XS), ``size``, its
    ONNX bytes and MACs; ``timings[(runtime, threads)]`` after ``time_candidates``."""
    name: str
    size: int
    data: bytes
    gmacs: float
    timings: dict = field(default_factory=dict)

    @property
    def published_ap(self):
        ap = PUBLISHED_AP.get(self.name)
        return ap[0] if ap and ap[1] == self.size else None


def build_candidates(repo_root, yolo=YOLO_MODELS, litepose=LITEPOSE_MODELS, yolo_sizes=("640", "litepose"),
                     log=print):
    """Candidates: each LitePose at its own input size; each YOLO at 640 and (``'litepose'`` in
    ``yolo_sizes``) at every LitePose input size, plus any explicit sizes."""
    candidates, lite_sizes = [], []
    for name in litepose:
        model, size = build_litepose_arch(name, repo_root)
        lite_sizes.append(size)
        candidates.append(Candidate(f"LitePose-{name}", size, onnx_bytes(model, size), macs(model, size) / 1e9))
        log(f"LitePose-{name}: {size} px, {candidates[-1].gmacs:.2f} GMACs")
    sizes = []
    for item in yolo_sizes:
        values = sorted(set(lite_sizes)) if item == "litepose" else [int(item)]
        sizes += [s for s in values if s not in sizes]
    for name in yolo:
        model = build_yolo(name)
        for size in sizes:
            candidates.append(Candidate(name, size, onnx_bytes(model, size), macs(model, size) / 1e9))
            log(f"{name}: {size} px, {candidates[-1].gmacs:.2f} GMACs")
    return candidates


def _runner(runtime, data, threads, work):
    x = np.zeros((1, 3) + _input_hw(data), np.float32)
    if runtime == "onnx":
        from litepose.runtime.onnx_backend import onnx_session

        session = onnx_session(data, threads=threads)
        return lambda: session.run(None, {"input": x})
    if runtime == "openvino":
        import openvino as ov

        path = os.path.join(work, f"m{abs(hash(data)) % 10**9}.onnx")
        if not os.path.exists(path):
            with open(path, "wb") as handle:
                handle.write(data)
        compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": int(threads),
                                                         "INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        return lambda: request.infer({0: x})
    raise ExportError(f"unknown runtime {runtime!r}")


def _input_hw(data):
    import onnx

    dims = onnx.load_from_string(data).graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value), int(dims[3].dim_value)


def time_candidates(candidates, runtimes=("onnx", "openvino"), threads=(1, 2), repeats=20, warmup=2):
    """Median / p90 of every candidate on every runtime, all interleaved per thread count."""
    import tempfile

    from litepose.deploy.latency import time_interleaved

    with tempfile.TemporaryDirectory(prefix="litepose-alternatives-") as work:
        for count in threads:
            runners = {}
            for index, candidate in enumerate(candidates):
                for runtime in runtimes:
                    runners[(index, runtime)] = _runner(runtime, candidate.data, count, work)
            timings = time_interleaved(runners, repeats, warmup=warmup, progress=False,
                                       description=f"{count} thread(s)")
            for (index, runtime), timing in timings.items():
                candidates[index].timings[(runtime, count)] = timing
            runners.clear()
    return candidates


RUNTIME_NAMES = {"onnx": "ONNX Runtime", "openvino": "OpenVINO"}


def markdown(candidates, runtimes, threads):
    head = ["Model", "Input", "GMACs", "COCO AP (published)"]
    keys = [(r, t) for r in runtimes for t in threads]
    head += [f"{RUNTIME_NAMES[r]} {t}T ms (p90)" for r, t in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in candidates:
        ap = f"{c.published_ap:.1f}" if c.published_ap is not None else "–"
        row = [c.name, str(c.size), f"{c.gmacs:.2f}", ap]
        row += [f"{c.timings[k].median_ms:.1f} ({c.timings[k].p90_ms:.1f})" if k in c.timings else "–" for k in keys]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(candidates, runtimes, threads, path):
    """AP (published) against measured median latency, one panel per runtime and thread count;
    candidates without a published AP at their size are left out of the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(r, t) for r in runtimes for t in threads]
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for family, colour, marker in (("LitePose", "tab:blue", "o"), ("yolo", "tab:red", "s")):
            points = [(c.timings[key].median_ms, c.published_ap, c.name) for c in candidates
                      if c.published_ap is not None and key in c.timings and c.name.startswith(family)]
            if not points:
                continue
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points], marker=marker, color=colour,
                      linestyle="-" if family == "LitePose" else "none", label=family if family == "LitePose" else "YOLO-pose (640)")
            for x, y, name in points:
                axis.annotate(name.replace("LitePose-", ""), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        axis.set_xscale("log")
        axis.set_xlabel("median latency (ms, log scale)")
        axis.set_ylabel("COCO val2017 AP (published)")
        axis.set_title(f"{RUNTIME_NAMES[key[0]]}, {key[1]} thread(s)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    import sys

    sys.exit("error: tools/alternatives.py is the module of tools/compare_alternatives.py: run that")
