"""Evaluate a model on a dataset's test split: the loop behind ``valid.py``, callable in-process
(architecture search evaluates sub-networks on a subset of images with it)."""

import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..data.coco_format import KeypointAnnotations, dataset_files, keypoint_info_from_config, read_image
from ..errors import DataError, OutputError
from ..inference import InferenceSettings, predict
from ..inference.transforms import network_input_problem
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
             save_vis=0, save_maps=False, progress=True, arch_name=None, write_files=True):
    """Run ``model`` over the test split of ``cfg``'s dataset and evaluate it.

    Args:
        cfg: a loaded config (dataset files from ``DATASET.TEST_ANN_FILE`` / ``TEST_IMAGE_DIR``
            or ``DATASET.ROOT``; test-time settings from ``TEST.*``).
        model: a built model with its weights; put in eval mode for the run, restored after.
        image_ids, limit: evaluate only these images / the first ``limit`` of them; metrics are
            computed over exactly the evaluated images.
        device: defaults to ``resolve_device(cfg.DEVICE)``.
        input_size: override of the test input size (default: the model's ``img_size``).
        output_dir: where the results JSON, the metrics table and pictures go (nothing is
            written without it). ``write_files=False`` leaves the results JSON and the table to
            ``write_outputs`` (``valid.py`` prints the metrics first, so a full disk loses none).
        save_vis: draw the predictions on the first ``save_vis`` images (needs output_dir);
            ``save_maps`` also saves their heatmaps and tag maps.
        progress: show a tqdm progress bar.

    Returns:
        ``EvalResult``; ``result.ap`` is the AP.
    """
    info = keypoint_info_from_config(cfg, for_test=True)
    ann_file, image_dir = dataset_files(cfg, "test")
    annotations = KeypointAnnotations(ann_file, image_dir, info)
    ids = select_image_ids(annotations, image_ids, limit)
    protocol = protocol_for_dataset(cfg.DATASET.DATASET_TEST)
    device = resolve_device(cfg.DEVICE) if device is None else device
    settings = InferenceSettings.from_config(cfg, model, input_size)
    if save_vis and not output_dir:
        raise DataError("saving pictures needs an output folder")
    vis_dir = os.path.join(output_dir, "vis") if output_dir else None
    category = (annotations.data.get("categories") or [{"id": PERSON_CATEGORY}])[0]["id"]

    was_training = model.training
    model.to(device).eval()
    results, unreadable = [], []
    totals = dict.fromkeys(TIMED_STAGES, 0.0)
    timed = 0
    nonfinite = {"images": 0, "this image": False}
    vis_error = ""

    def watch_outputs(module, inputs, outputs):
        tensors = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        if not all(bool(t.isfinite().all()) for t in tensors if hasattr(t, "isfinite")):
            nonfinite["this image"] = True

    hook = model.register_forward_hook(watch_outputs)
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
            nonfinite["this image"] = False
            prediction = predict(model, image, settings, device, keep_maps=keep_maps)
            nonfinite["images"] += nonfinite["this image"]
            results.extend(image_results(image_id, prediction.keypoints, prediction.scores, category))
            for stage in TIMED_STAGES:
                totals[stage] += prediction.times[stage]
            timed += 1
            if vis_dir and position < save_vis and not vis_error:
                try:
                    _save_pictures(vis_dir, image_id, image, prediction, info, keep_maps)
                except OutputError as exc:  # a full disk: the evaluation goes on, the pictures stop
                    vis_error = str(exc)
    finally:
        hook.remove()
        model.train(was_training)

    metrics = evaluate_keypoints(annotations.data, results, protocol, sigmas=info.sigmas_array(), image_ids=ids,
                                 source="predictions")
    ms = {stage: 1000.0 * totals[stage] / timed if timed else float("nan") for stage in TIMED_STAGES}
    outcome = EvalResult(metrics, protocol, results, ids, unreadable, ms, nonfinite=nonfinite["images"],
                         ann_file=ann_file, vis_error=vis_error)
    if output_dir and write_files:
        outcome.files = write_outputs(output_dir, cfg, outcome, arch_name)
    return outcome


def _save_pictures(vis_dir, image_id, image, prediction, info, with_maps):
    from ..estimator import PRESET_FILTERS
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
