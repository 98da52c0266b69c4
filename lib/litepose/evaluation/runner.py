"""Evaluate a model on a dataset's test split: the loop behind ``valid.py``, callable in-process
(architecture search evaluates sub-networks on a subset of images with it).

Every backend runs the same pipeline, ``litepose.PoseEstimator``'s (the NumPy / OpenCV
pre-processing, aggregation and grouping of ``litepose.runtime`` around the network): a PyTorch
model, a runtime network (an ONNX, OpenVINO, TFLite, ncnn or TorchScript export opened by
``litepose.runtime``), or an estimator as it stands (its preset, caps and person filter:
``benchmarks/estimator_ap.py``). For a model or a network the settings are ``valid.py``'s, the
release's: the config's ``TEST.*``, no decoding cap, no person filter.
"""

import copy
import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..arch import default_input_size
from ..data.coco_format import KeypointAnnotations, dataset_files, keypoint_info_from_config, read_image
from ..errors import DataError, LitePoseError, OutputError
from ..estimator import PRESET_FILTERS, PoseEstimator
from ..inference import DecodeLimits, InferenceSettings
from ..inference.transforms import network_input_problem
from ..runtime.network import Network
from ..runtime.people import NO_FILTER
from ..utils.device import resolve_device
from ..utils.io import atomic_write_text
from .keypoint_eval import evaluate_keypoints, metrics_table, protocol_for_dataset
from .results import PERSON_CATEGORY, image_results, write_results

TIMED_STAGES = ("network", "aggregate", "grouping")


@dataclass
class EvalResult:
    """What an evaluation produced. ``metrics`` maps the release's column names to values;
    ``ms_per_image`` the mean time per stage (network = preprocessing + forward passes,
    aggregate = flip / scale averaging and upsampling, grouping = grouping + mapping back);
    ``unreadable`` lists ``(image_id, reason)`` of images that could not be read (evaluated as
    images without detections); ``files`` names what was written; ``nonfinite`` counts the
    images on which the network produced NaN or infinite outputs (broken weights);
    ``vis_error`` says why pictures could not be saved (a full disk), if so."""
    metrics: OrderedDict
    protocol: str
    results: list
    image_ids: list
    unreadable: list = field(default_factory=list)
    ms_per_image: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    nonfinite: int = 0
    ann_file: str = ""
    vis_error: str = ""
    backend: str = ""
    input_size: int = 0
    image_times: list = field(default_factory=list)
    people: dict = field(default_factory=dict)

    @property
    def ap(self):
        return self.metrics["AP"]

    def table(self, arch=None):
        return metrics_table(self.metrics, arch)


def select_image_ids(annotations, image_ids=None, limit=None):
    """The images to evaluate: ``image_ids`` (checked) or all, in id order, first ``limit``."""
    if image_ids is None:
        ids = list(annotations.image_ids)
    else:
        ids = list(image_ids)
        unknown = [i for i in ids if i not in annotations.images]
        if unknown:
            raise DataError(f"image id {unknown[0]!r} is not in {annotations.ann_file}")
    if limit is not None:
        if limit <= 0:
            raise DataError(f"the number of images to evaluate must be positive, got {limit}")
        ids = ids[:limit]
    return ids


def evaluate(cfg, model, image_ids=None, limit=None, device=None, input_size=None, output_dir=None,
             save_vis=0, save_maps=False, progress=True, arch_name=None, write_files=True, keep_people=False):
    """Run ``model`` over the test split of ``cfg``'s dataset and evaluate it.

    Args:
        cfg: a loaded config (dataset files from ``DATASET.TEST_ANN_FILE`` / ``TEST_IMAGE_DIR``
            or ``DATASET.ROOT``; test-time settings from ``TEST.*``).
        model: what ``PoseEstimator`` runs (module doc): a PyTorch model with its weights (put
            in eval mode for the run, its mode restored after), a ``litepose.runtime`` network
            (an export), or a ``PoseEstimator`` (evaluated with its own settings).
        image_ids, limit: evaluate only these images / the first ``limit`` of them; metrics are
            computed over exactly the evaluated images.
        device: of a PyTorch model; defaults to ``resolve_device(cfg.DEVICE)``.
        input_size: override of the test input size (default: ``litepose.arch.default_input_size``,
            for an export the size it was exported at when it has one).
        output_dir: where the results JSON, the metrics table and pictures go (nothing is
            written without it). ``write_files=False`` leaves the results JSON and the table to
            ``write_outputs`` (``valid.py`` prints the metrics first, so a full disk loses none).
        save_vis: draw the predictions on the first ``save_vis`` images (needs output_dir);
            ``save_maps`` also saves their heatmaps and tag maps.
        progress: show a tqdm progress bar.
        keep_people: keep each image's people (``result.people[image_id]``, a ``People``).

    Returns:
        ``EvalResult``; ``result.ap`` is the AP.
    """
    info = keypoint_info_from_config(cfg, for_test=True)
    ann_file, image_dir = dataset_files(cfg, "test")
    annotations = KeypointAnnotations(ann_file, image_dir, info)
    ids = select_image_ids(annotations, image_ids, limit)
    protocol = protocol_for_dataset(cfg.DATASET.DATASET_TEST)
    if save_vis and not output_dir:
        raise DataError("saving pictures needs an output folder")
    vis_dir = os.path.join(output_dir, "vis") if output_dir else None
    category = (annotations.data.get("categories") or [{"id": PERSON_CATEGORY}])[0]["id"]

    torch_model = _torch_module(model)
    was_training = torch_model.training if torch_model is not None else None
    estimator = pipeline_for(cfg, model, device=device, input_size=input_size)
    watch = _FiniteWatch(estimator.network)
    estimator = copy.copy(estimator)
    estimator.network = watch
    settings = estimator.settings
    results, unreadable, people = [], [], {}
    image_times = []
    nonfinite = 0
    vis_error = ""
    try:
        bar = tqdm(ids, desc="evaluating", unit="img", disable=not progress, dynamic_ncols=True)
        for position, image_id in enumerate(bar):
            try:
                image = read_image(annotations.image_path(image_id))
                problem = network_input_problem((image.shape[1], image.shape[0]), settings.input_size,
                                                settings.scales)
                if problem:
                    raise DataError(f"image cannot be evaluated ({problem}): {annotations.image_path(image_id)}")
            except DataError as exc:
                unreadable.append((image_id, str(exc)))
                bar.set_postfix(unreadable=len(unreadable))
                continue
            keep_maps = save_maps and position < save_vis
            watch.finite = True
            found = estimator(image, color="rgb", keep_maps=keep_maps)
            nonfinite += not watch.finite
            results.extend(image_results(image_id, found.keypoints, found.scores, category))
            image_times.append({"network": found.times.get("preprocess", 0.0) + found.times["network"],
                                "aggregate": found.times["aggregate"], "grouping": found.times["grouping"]})
            if keep_people:
                people[image_id] = found
            if vis_dir and position < save_vis and not vis_error:
                try:
                    _save_pictures(vis_dir, image_id, image, found, info, keep_maps)
                except OutputError as exc:  # a full disk: the evaluation goes on, the pictures stop
                    vis_error = str(exc)
    finally:
        if torch_model is not None:
            torch_model.train(was_training)

    metrics = evaluate_keypoints(annotations.data, results, protocol, sigmas=info.sigmas_array(), image_ids=ids,
                                 source="predictions")
    ms = {stage: 1000.0 * sum(t[stage] for t in image_times) / len(image_times) if image_times else float("nan")
          for stage in TIMED_STAGES}
    outcome = EvalResult(metrics, protocol, results, ids, unreadable, ms, nonfinite=nonfinite, ann_file=ann_file,
                         vis_error=vis_error, backend=estimator.backend, input_size=settings.input_size,
                         image_times=image_times, people=people)
    if output_dir and write_files:
        outcome.files = write_outputs(output_dir, cfg, outcome, arch_name)
    return outcome


def pipeline_for(cfg, model, device=None, input_size=None):
    """The ``PoseEstimator`` that ``evaluate`` runs for ``model`` (module doc): an estimator as
    given; a PyTorch model or a runtime network with ``cfg``'s test settings, uncapped and
    unfiltered (``valid.py``'s people, the release's)."""
    if isinstance(model, PoseEstimator):
        if input_size is not None:
            raise LitePoseError("give input_size when the estimator is built, not to evaluate()")
        return model
    unfiltered = {"min_person_score": None, "person_nms": None, "max_people": None, "max_detections": None,
                  "hide_outside": False}
    if _torch_module(model) is not None:
        device = resolve_device(cfg.DEVICE) if device is None else device
        return PoseEstimator.from_model(model, cfg, preset="accurate", device=device, input_size=input_size,
                                        **unfiltered)
    if isinstance(model, Network):
        metadata = getattr(model, "metadata", None)
        if metadata is not None and int(metadata.dataset["num_joints"]) != cfg.DATASET.NUM_JOINTS:
            raise LitePoseError(f"the export predicts {metadata.dataset['num_joints']} joints "
                                f"({metadata.dataset['name']}), the config's test set has {cfg.DATASET.NUM_JOINTS} "
                                f"({cfg.DATASET.DATASET_TEST}): evaluate it with its dataset's config")
        size = input_size or export_input_size(model) or default_input_size(cfg)
        settings = InferenceSettings.from_config(cfg, None, size)
        return PoseEstimator(model, settings, DecodeLimits(), keypoint_info_from_config(cfg, for_test=True),
                             "accurate", NO_FILTER)
    raise LitePoseError(f"cannot evaluate a {type(model).__name__}: give a PyTorch model, a litepose.runtime "
                        "network (an export) or a PoseEstimator")


def export_input_size(network):
    """The side an export was made at, when it says (its metadata, or a fixed input), else None."""
    metadata = getattr(network, "metadata", None)
    if metadata is not None:
        return int(metadata.input_size)
    fixed = getattr(network, "fixed_hw", None)
    return int(min(fixed)) if fixed else None


def _torch_module(model):
    """``model`` when it is a PyTorch module (without importing PyTorch otherwise), else None."""
    import sys

    torch = sys.modules.get("torch")
    return model if torch is not None and isinstance(model, torch.nn.Module) else None


class _FiniteWatch(Network):
    """A network that notes (``finite`` False) when its outputs hold NaN or infinite values:
    broken weights, which would otherwise show only as an AP of zero."""

    def __init__(self, inner):
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        # Network's class defaults (None) would hide the inner network's own values from
        # __getattr__: a fixed-size export (TFLite, ``--fixed``) must still be letterboxed.
        for name in ("format", "fixed_hw", "metadata"):
            setattr(self, name, getattr(inner, name, None))
        self.finite = True

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(self, batch):
        outputs = self.inner(batch)
        self._check(outputs)
        return outputs

    def forward_fn(self, *args, **kwargs):
        forward = self.inner.forward_fn(*args, **kwargs)

        def watched(geometry):
            produced = forward(geometry)
            self._check(produced[0] if isinstance(produced, tuple) else produced)
            return produced

        return watched

    def _check(self, outputs):
        if self.finite and not all(np.isfinite(np.asarray(o)).all() for o in outputs):
            self.finite = False


def _save_pictures(vis_dir, image_id, image, prediction, info, with_maps):
    from ..utils.vis import draw_people, heatmap_grid, tagmap_grid, write_image

    # The picture shows the people PoseEstimator would return (its accurate preset's person
    # filter); the results evaluated keep every person, as the release's.
    keep = PRESET_FILTERS["accurate"].keep(prediction.keypoints, prediction.scores, info.sigmas)
    write_image(os.path.join(vis_dir, f"{image_id}.jpg"), draw_people(image, prediction.keypoints[keep], info.skeleton))
    if with_maps and prediction.maps is not None:
        maps = prediction.maps
        network_view = _map_view(image, maps)
        write_image(os.path.join(vis_dir, f"{image_id}_heatmaps.jpg"),
                    heatmap_grid(network_view, maps.heatmaps, info.joints))
        tags = maps.tags[..., 0]
        write_image(os.path.join(vis_dir, f"{image_id}_tags.jpg"),
                    tagmap_grid(network_view, tags, info.joints if tags.shape[0] == info.num_joints else None))


def _map_view(image, maps):
    """The image as the maps see it (resized and padded like the network input)."""
    import cv2

    to_map = np.linalg.inv(np.vstack([maps.geometry.to_image_matrix(maps.map_wh), [0, 0, 1]]))[:2]
    return cv2.warpAffine(image, to_map, maps.map_wh, flags=cv2.INTER_LINEAR)


def write_outputs(output_dir, cfg, outcome, arch_name=None):
    """Write the results JSON and the metrics table of ``outcome`` (atomically; a failure is
    one ``OutputError`` line). Returns ``{"results": path, "table": path}``."""
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {output_dir}: {exc.strerror or exc}") from None
    split = os.path.splitext(os.path.basename(outcome.ann_file))[0]
    files = {"results": os.path.join(output_dir, f"keypoints_{split}_results.json"),
             "table": os.path.join(output_dir, "metrics.md")}
    write_results(files["results"], outcome.results)
    lines = [f"# {cfg.MODEL.NAME} on {cfg.DATASET.DATASET_TEST} ({split}, {len(outcome.image_ids)} images)", "",
             outcome.table(arch_name or cfg.MODEL.NAME), "ms per image: " + ", ".join(
                 f"{stage} {value:.1f}" for stage, value in outcome.ms_per_image.items()), ""]
    if outcome.unreadable:
        lines.append(f"{len(outcome.unreadable)} images could not be read and count as images without detections:")
        lines.extend(f"- {image_id}: {reason}" for image_id, reason in outcome.unreadable)
    atomic_write_text(files["table"], "\n".join(lines) + "\n")
    return files


def summary_lines(outcome, arch=None):
    """What valid.py prints: the table, the times and the unreadable images."""
    lines = [outcome.table(arch).rstrip("\n")]
    ms = outcome.ms_per_image
    lines.append(f"ms/image over {len(outcome.image_ids) - len(outcome.unreadable)} images: network {ms['network']:.1f}"
                 f" (+ {ms['aggregate']:.1f} flip/scale aggregation), grouping {ms['grouping']:.1f}")
    if outcome.unreadable:
        lines.append(f"warning: {len(outcome.unreadable)} of {len(outcome.image_ids)} images could not be read and "
                     f"count as images without detections (first: {outcome.unreadable[0][1]})")
    if outcome.nonfinite:
        lines.append(f"warning: the network's outputs were NaN or infinite on {outcome.nonfinite} of "
                     f"{len(outcome.image_ids) - len(outcome.unreadable)} images: its weights are broken, "
                     "these metrics mean nothing")
    return lines
