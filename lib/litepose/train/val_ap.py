"""Keypoint AP during training: at a validation, the model evaluated as ``valid.py`` evaluates it
(``litepose.evaluation.evaluate``, the config's TEST settings) on the first
``TRAIN.VAL_AP_IMAGES`` test images, and a few of them drawn with the people it predicted.

It leaves training as it found it: the random generators (Python, NumPy, torch) are put back,
the model goes back to its mode (``evaluate`` restores it) and device, and a supernet to its
active architecture. The first process evaluates; under ``torchrun`` the others wait for it at
the epoch's barrier.
"""

import time
from dataclasses import dataclass, field

import cv2

from ..data.coco_format import KeypointAnnotations, dataset_files, keypoint_info_from_config, read_image
from ..errors import DataError
from ..estimator import PRESET_FILTERS
from ..evaluation import evaluate
from ..inference import InferenceSettings
from ..utils.vis import draw_people
from .checkpoint import capture_rng_state, restore_rng_state

DRAWN_IMAGES = 4
MAX_DRAWN_SIDE = 512  # pictures larger than this are shrunk: event files stay small
# The evaluation keeps every decoded person (up to ~100 an image, most of them faint, which AP
# needs); a picture of all of them is a tangle of lines. Drawn: the people the estimator's
# "realtime" preset keeps (score 0.2, OKS-NMS 0.9); with the accurate preset's 0.1 the
# quickstart's pictures still showed about ten faint people each.
DRAWN_FILTER = PRESET_FILTERS["realtime"]
# TensorBoard tag -> the evaluation's column (the release's names; both protocols have these).
SCALARS = {"AP": "AP", "AP50": "Ap .5", "AP75": "AP .75", "AR": "AR"}


@dataclass
class KeypointAP:
    """What one evaluation gave: ``metrics`` (TensorBoard tag -> value, see ``SCALARS``), the
    number of images evaluated and of those unreadable, the seconds it took, and ``drawn``:
    ``(image_id, RGB uint8 picture)`` pairs."""
    metrics: dict
    images: int
    unreadable: int
    seconds: float
    drawn: list = field(default_factory=list)

    def line(self):
        """The log line."""
        values = ", ".join(f"{column} {self.metrics[tag]:.3f}" for tag, column in SCALARS.items())
        unreadable = f", {self.unreadable} unreadable" if self.unreadable else ""
        return f"val AP on the first {self.images} test images{unreadable}: {values} ({self.seconds:.1f} s)"


class ValidationAP:
    """Evaluates a training model on the first ``images`` test images of ``cfg`` and draws the
    first ``drawn`` of them (the people ``DRAWN_FILTER`` keeps).
    ``input_size``: the test input (default: the architecture's).
    Given the ``model``, its test settings are checked now, not after the first epoch."""

    def __init__(self, cfg, images, drawn=DRAWN_IMAGES, input_size=None, model=None):
        self.cfg, self.images, self.drawn, self.input_size = cfg, images, drawn, input_size or None
        self.info = keypoint_info_from_config(cfg, for_test=True)
        if model is not None:
            InferenceSettings.from_config(cfg, model, self.input_size)  # a ConfigError now, on every process
        self._annotations = None

    def __call__(self, model, device, arch=None):
        generators = capture_rng_state()
        previous_arch = getattr(model, "active_arch", None)
        try:
            if arch is not None:
                model.set_active_arch(arch)
            start = time.perf_counter()
            result = evaluate(self.cfg, model, limit=self.images, device=device, input_size=self.input_size,
                              progress=False, write_files=False, keep_people=self.drawn > 0)
            seconds = time.perf_counter() - start
            drawn = self._draw(result)
        finally:
            if arch is not None and previous_arch is not None:
                model.set_active_arch(previous_arch)
            model.to(device)
            restore_rng_state(generators)
        metrics = {tag: float(result.metrics[column]) for tag, column in SCALARS.items()}
        return KeypointAP(metrics, len(result.image_ids), len(result.unreadable), seconds, drawn)

    def _draw(self, result):
        if self.drawn <= 0:
            return []
        if self._annotations is None:
            ann_file, image_dir = dataset_files(self.cfg, "test")
            self._annotations = KeypointAnnotations(ann_file, image_dir, self.info)
        drawn = []
        for image_id, people in result.people.items():  # the evaluated images, in order
            if len(drawn) == self.drawn:
                break
            try:
                image = read_image(self._annotations.image_path(image_id))
            except DataError:  # gone since the evaluation read it: nothing to draw on
                continue
            keypoints = people.keypoints[DRAWN_FILTER.keep(people.keypoints, people.scores, self.info.sigmas)]
            drawn.append((image_id, _shrunk(draw_people(image, keypoints, self.info.skeleton))))
        return drawn


def _shrunk(image, side=MAX_DRAWN_SIDE):
    scale = side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
