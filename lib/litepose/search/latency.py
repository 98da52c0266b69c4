"""A measured latency lookup table for LitePose architectures.

The network is cut into units (stem layers, inverted residual blocks, transposed
convolutions, the BN+ReLU after each fusion, output layers). A unit's latency depends
only on its configuration and input shape, so it is measured once per distinct
(unit, input shape) on the target device; an architecture's latency is predicted as the
sum over its units (the once-for-all / ProxylessNAS practice). Units the table has not
seen are estimated from the measured ones of the same type by their MACs, and counted.
"""

import copy
import hashlib
import json
import platform
import random
import statistics
import time
from datetime import date

import torch
import torch.nn as nn
from tqdm import tqdm

from ..arch import IMG_SIZE_DIVISOR
from ..errors import LitePoseError
from ..models.layers import InvertedResidual, SepConv
from ..models.litepose import LitePose
from ..models.profile import profile_model
from ..utils.io import atomic_write_text, check_output_file, load_json

TABLE_VERSION = 1
MAX_TABLE_BYTES = 64 * 2**20


def _units(model):
    """(name, module) of every timed unit of a LitePose."""
    units = [(f"first.{i}", layer) for i, layer in enumerate(model.first)]
    for name, module in model.named_modules():
        if isinstance(module, (InvertedResidual, SepConv, nn.ConvTranspose2d)) or name.startswith("deconv_bnrelu."):
            if name.count(".") == 1 or isinstance(module, (InvertedResidual, SepConv)):
                units.append((name, module))
    return units


def _unit_key(module, input_shape):
    """A unit's structure (its repr names every layer's widths, kernels and strides) and input."""
    text = f"{repr(module)}|{tuple(input_shape[1:])}"
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _traced_units(arch, head_config):
    """[(key, kind, module, input shape, MACs)] of an architecture's units at its img_size.

    Traced at 32x32 with allocated but uninitialised weights and scaled up: every feature
    map scales exactly with an input that is a multiple of 32 (see ``MacCounter``)."""
    with torch.device("meta"):
        model = LitePose(arch, **head_config)
    model = model.to_empty(device="cpu").eval()
    factor = arch["img_size"] // IMG_SIZE_DIVISOR
    found = []

    def hook_for(module):
        def hook(_, inputs, __):
            n, c, h, w = inputs[0].shape
            found.append((module, (n, c, h * factor, w * factor), (h, w)))
        return hook

    handles = [module.register_forward_hook(hook_for(module)) for _, module in _units(model)]
    with torch.no_grad():
        model(torch.zeros(1, 3, IMG_SIZE_DIVISOR, IMG_SIZE_DIVISOR))
    for handle in handles:
        handle.remove()
    return [(_unit_key(module, shape), type(module).__name__, module, shape,
             _unit_macs(module, shape[1], small) * factor ** 2) for module, shape, small in found]


def _unit_macs(module, channels, size):
    """MACs of a unit on a ``channels x size`` input (our MAC convention)."""
    return profile_model(_Probe(module), size, channels=channels).macs


class _Probe(nn.Module):
    """Lets ``profile_model`` count a single unit (it returns a list of outputs)."""

    def __init__(self, module):
        super().__init__()
        self.unit = module

    def forward(self, x):
        return [self.unit(x)]


@torch.no_grad()
def _measure(module, input_shape, device, repeats, warmup):
    real = copy.deepcopy(module).to(device).eval()
    for name, tensor in list(real.named_parameters()) + list(real.named_buffers()):
        if "running_var" in name:
            tensor.uniform_(0.5, 1.5)
        elif tensor.is_floating_point():
            tensor.normal_(0, 0.1)
    x = torch.randn(input_shape, device=device)
    timings = []
    for index in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        real(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index >= warmup:
            timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)


class LatencyTable:
    """Unit latencies (ms) measured on one device; ``predict(arch)`` sums them."""

    def __init__(self, entries, meta, head_config):
        self.entries = dict(entries)   # key -> {"kind", "ms", "macs"}
        self.meta = dict(meta)
        self.head_config = dict(head_config)
        self.estimated_units = 0       # units predicted from MACs because they were not measured

    @classmethod
    def build(cls, space, head_config, device, samples=300, repeats=10, warmup=3, seed=0, progress=True):
        """Measure every unit of the space's extremes and of ``samples`` random members."""
        rng = random.Random(seed)
        archs = [space.widest(), space.smallest()] + [space.sample(rng) for _ in range(samples)]
        pending = {}
        for arch in tqdm(archs, desc="collecting layer shapes", disable=not progress):
            for key, kind, module, shape, macs in _traced_units(arch, head_config):
                pending.setdefault(key, (kind, module, shape, macs))
        entries = {}
        for key, (kind, module, shape, macs) in tqdm(pending.items(), desc="timing layers", disable=not progress):
            entries[key] = {"kind": kind, "ms": _measure(module, shape, device, repeats, warmup), "macs": macs}
        meta = {
            "version": TABLE_VERSION, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
            or platform.machine(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "date": date.today().isoformat(),
            "samples": samples, "repeats": repeats,
        }
        return cls(entries, meta, head_config)

    def save(self, path, overwrite=False):
        check_output_file(path, force=overwrite, what="latency table")
        atomic_write_text(path, json.dumps({"meta": self.meta, "head_config": self.head_config,
                                            "entries": self.entries}, indent=1))

    @classmethod
    def load(cls, path):
        data = load_json(path, LitePoseError, "latency table", max_bytes=MAX_TABLE_BYTES)
        try:
            meta, entries, head = data["meta"], data["entries"], data["head_config"]
            if not all(isinstance(x, dict) for x in (meta, entries, head)):
                raise TypeError("'meta', 'entries' and 'head_config' must be objects")
            for key, entry in entries.items():
                if not isinstance(entry, dict) or not all(
                        isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool)
                        for k in ("ms", "macs")) or "kind" not in entry:
                    raise TypeError(f"entry {key[:80]!r} must hold 'kind', 'ms' and 'macs'")
        except (KeyError, TypeError) as exc:
            raise LitePoseError(f"{path}: not a latency table ({str(exc)[:200]})") from None
        if meta.get("version") != TABLE_VERSION:
            raise LitePoseError(f"{path}: latency table version {meta.get('version')} is not {TABLE_VERSION}")
        head = {key: tuple(value) if isinstance(value, list) else value for key, value in head.items()}
        return cls(entries, meta, head)

    def _ms_per_mac(self, kind):
        ratios = [e["ms"] / e["macs"] for e in self.entries.values() if e["kind"] == kind and e["macs"]]
        if not ratios:
            ratios = [e["ms"] / e["macs"] for e in self.entries.values() if e["macs"]]
        return statistics.median(ratios)

    def predict(self, arch):
        """Predicted latency of ``arch`` in ms (sum of its units)."""
        total = 0.0
        for key, kind, _, _, macs in _traced_units(arch, self.head_config):
            entry = self.entries.get(key)
            if entry is None:
                self.estimated_units += 1
                total += macs * self._ms_per_mac(kind)
            else:
                total += entry["ms"]
        return total
