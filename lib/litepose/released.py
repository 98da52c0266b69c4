"""The models the authors released, by name, and the configuration files the package ships.

The release's checkpoints (LitePose-Auto-XS/S/M/L trained on COCO and on CrowdPose) were linked
from its README on Google Drive; those links are dead (two were never given), so this repository
ships no weights. A user who has one of the files names it as in ``RELEASED`` (for example
``litepose-xs-coco.pth``) and ``PoseEstimator.from_checkpoint("litepose-xs-coco.pth")`` finds its
architecture, input size and test settings here; ``load_checkpoint`` refuses a file whose tensors
do not fit that architecture.

The package data under ``litepose/configs`` are the repository's ``experiments/`` and
``mobile_configs/`` (symbolic links in the source tree, copied into a wheel), so an installed
package has the release's architectures and experiment configs wherever it runs.

PyTorch-free.
"""

import dataclasses
import os
from importlib import resources

from .errors import LitePoseError

_CONFIGS = {"coco": "experiments/coco/mobilenet/mobile.yaml",
            "crowdpose": "experiments/crowd_pose/mobilenet/mobile.yaml"}
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt")


@dataclasses.dataclass(frozen=True)
class ReleasedModel:
    """One released checkpoint: ``name`` (the file's stem), ``dataset`` (coco or crowdpose),
    ``arch`` (``mobile_configs/<arch>.json``), ``input_size`` (the architecture's img_size),
    ``macs`` (G, the release's table) and ``paper_ap`` (mAP in the release's table: COCO val2017,
    CrowdPose test)."""
    name: str
    dataset: str
    arch: str
    input_size: int
    macs: float
    paper_ap: float

    @property
    def filename(self):
        return self.name + ".pth"

    @property
    def config_file(self):
        """The packaged experiment config holding this model's dataset and test settings."""
        return packaged_file(_CONFIGS[self.dataset])

    @property
    def arch_file(self):
        """The packaged architecture JSON."""
        return packaged_file(f"mobile_configs/{self.arch}.json")


def _table():
    # MACs and mAP: the release's "Result Models" table (../shared/reference/litepose_facts.md).
    rows = [("xs", "search-XS", 256, {"coco": (1.2, 40.6), "crowdpose": (1.2, 49.5)}),
            ("s", "search-S", 448, {"coco": (5.0, 56.8), "crowdpose": (5.0, 58.3)}),
            ("m", "search-M", 448, {"coco": (7.8, 59.8), "crowdpose": (7.8, 59.9)}),
            ("l", "search-L", 512, {"coco": (13.8, 62.5), "crowdpose": (13.7, 61.9)})]
    table = {}
    for size, arch, input_size, results in rows:
        for dataset, (macs, ap) in results.items():
            name = f"litepose-{size}-{dataset}"
            table[name] = ReleasedModel(name, dataset, arch, input_size, macs, ap)
    return table


RELEASED = _table()


def released_model(path):
    """The ``ReleasedModel`` a checkpoint file is named after (its file name without folder and
    suffix, any case: ``weights/LitePose-XS-COCO.pth`` is ``litepose-xs-coco``), else None."""
    stem = os.path.basename(os.fspath(path)).lower()
    for suffix in CHECKPOINT_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    return RELEASED.get(stem)


def packaged_file(relative):
    """The path of a file the package ships under ``litepose/configs`` (``relative`` as from the
    repository root: ``experiments/...`` or ``mobile_configs/...``)."""
    path = resources.files("litepose").joinpath("configs", *relative.split("/"))
    if not path.is_file():
        raise LitePoseError(f"{relative} is not among the configuration files this package ships")
    return os.fspath(path)
