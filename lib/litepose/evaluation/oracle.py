"""The decoding ceiling: the AP that the test-time pipeline and grouping reach on perfect maps.

For every image of an annotation file (only its size is needed, not its pixels) this renders
what a perfect network would output for the resized input: the training targets of every
output (``litepose.data.targets.render_heatmaps``, ``DATASET.SIGMA`` in that output's pixels) and
perfect tags (each pixel of joint j's tag map holds the tag of the person whose joint j is
nearest, person k's tag being k + 1), for the mirrored input too when flip testing. These go
through the same aggregation, upsampling, grouping and mapping back as network outputs, and
are evaluated with the dataset's protocol.
"""

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ..data.coco_format import keypoint_info_from_config
from ..data.targets import TargetConfig, render_heatmaps
from ..errors import DataError
from ..inference import InferenceSettings, compute_maps, decode
from ..utils.affine import transform_points
from .keypoint_eval import check_ground_truth, evaluate_keypoints, load_ground_truth, protocol_for_dataset
from .results import PERSON_CATEGORY, image_results


def output_strides(cfg):
    """Stride of each network output: 4, then 2 (LitePose's and HigherHRNet's 1/4 and 1/2)."""
    return [4 // 2 ** i for i in range(cfg.LOSS.NUM_STAGES)]


def _tag_map(keypoints, height, width):
    """``[J, h, w]``: per joint, the tag (person index + 1) of the person whose joint is nearest."""
    people, joints = keypoints.shape[:2]
    tags = np.zeros((joints, height, width), np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for j in range(joints):
        present = np.flatnonzero(keypoints[:, j, 2] > 0)
        if present.size == 0:
            continue
        dx = xs[None] - np.trunc(keypoints[present, j, 0])[:, None, None]   # the training targets' pixel
        dy = ys[None] - np.trunc(keypoints[present, j, 1])[:, None, None]
        tags[j] = (present[np.argmin(dx * dx + dy * dy, axis=0)] + 1).astype(np.float32)
    return tags


def render_outputs(keypoints, geometry, cfg, settings, sigma_config):
    """Perfect network outputs (the layout of ``model(batch)``) for an image whose people are
    ``keypoints [P, J, 3]`` in image pixels, resized by ``geometry``."""
    in_w, in_h = geometry.input_wh
    points = transform_points(keypoints, geometry.matrix)
    views = [points]
    if settings.flip:  # what the network sees in the mirrored input: x -> w - 1 - x, joints swapped
        mirrored = points[:, list(settings.flip_index)].copy()
        mirrored[..., 0] = in_w - 1 - mirrored[..., 0]
        views.append(mirrored)
    outputs = []
    for i, stride in enumerate(output_strides(cfg)):
        height, width = in_h // stride, in_w // stride
        per_view = []
        for view in views:
            scaled = view.copy()
            scaled[..., :2] /= stride
            channels = []
            if cfg.LOSS.WITH_HEATMAPS_LOSS[i]:
                side = max(height, width)  # the renderer draws squares
                sigmas = torch.full((1, len(points)), sigma_config.sigma if sigma_config.sigma > 0 else side / 64)
                channels.append(render_heatmaps(torch.from_numpy(scaled)[None], side, sigmas)[0, :, :height, :width])
            if cfg.LOSS.WITH_AE_LOSS[i]:
                tags = torch.from_numpy(_tag_map(scaled, height, width))
                channels.append(tags if settings.tag_per_joint else tags[:1])
            per_view.append(torch.cat(channels, dim=0))
        outputs.append(torch.stack(per_view))
    return outputs


@dataclass
class OracleResult:
    metrics: dict
    protocol: str
    results: list
    image_ids: list
    grouping_ms: float
    aggregate_ms: float
    baseline: dict = field(default_factory=dict)


def oracle_evaluate(cfg, ann_file, input_size=None, limit=None, progress=True, baseline=None, repeat=1):
    """The decoding ceiling of ``cfg``'s test-time settings on ``ann_file`` at ``input_size``
    (default ``DATASET.INPUT_SIZE``).

    ``baseline(heatmaps, tags, params) -> (people, scores)``, if given, is another grouping run
    on the same maps, timed side by side (alternating with ours) and evaluated too
    (``OracleResult.baseline``). With ``repeat`` > 1 every image is decoded that many times
    and its fastest time kept, which steadies timings on a shared machine."""
    info = keypoint_info_from_config(cfg, for_test=True)
    protocol = protocol_for_dataset(cfg.DATASET.DATASET_TEST)
    data = load_ground_truth(ann_file)
    check_ground_truth(data, protocol, source=str(ann_file))
    settings = InferenceSettings.from_config(cfg, None, input_size)
    sigma_config = TargetConfig.from_config(cfg)
    if sigma_config.scale_aware:
        raise DataError("the decoding ceiling renders fixed-sigma targets; DATASET.SCALE_AWARE_SIGMA is not supported")
    people = {}
    for ann in data.get("annotations", []):
        keypoints = ann.get("keypoints")
        if keypoints and not ann.get("iscrowd", 0) and any(v > 0 for v in keypoints[2::3]):
            if len(keypoints) != 3 * info.num_joints:
                raise DataError(f"{ann_file}: annotation {ann.get('id', '?')} has {len(keypoints) // 3} joints, "
                                f"the config {info.num_joints}")
            people.setdefault(ann["image_id"], []).append(np.asarray(keypoints, np.float32).reshape(-1, 3))
    images = sorted(data["images"], key=lambda image: image["id"])[:limit]
    results, baseline_results = [], []
    grouping_s = aggregate_s = baseline_s = 0.0
    same = 0
    for image in tqdm(images, desc="decoding ceiling", unit="img", disable=not progress, dynamic_ncols=True):
        if "width" not in image or "height" not in image:
            raise DataError(f"{ann_file}: image {image['id']} has no width/height")
        keypoints = np.stack(people.get(image["id"], [np.zeros((info.num_joints, 3), np.float32)]))
        maps = compute_maps(lambda geometry: render_outputs(keypoints, geometry, cfg, settings, sigma_config),
                            (image["width"], image["height"]), settings)
        aggregate_s += maps.aggregate_s
        fastest = fastest_baseline = float("inf")
        for _ in range(repeat):
            prediction = decode(maps, settings)
            fastest = min(fastest, prediction.times["grouping"])
            if baseline is not None:
                start = time.perf_counter()
                base_people, base_scores = baseline(maps.heatmaps, maps.tags, settings.grouping)
                base_keypoints = maps.map_to_image(np.asarray(base_people)[..., :3]) if len(base_people) else \
                    np.zeros((0, info.num_joints, 3))
                fastest_baseline = min(fastest_baseline, time.perf_counter() - start)
        grouping_s += fastest
        results.extend(image_results(image["id"], prediction.keypoints, prediction.scores, PERSON_CATEGORY))
        if baseline is not None:
            baseline_s += fastest_baseline
            baseline_results.extend(image_results(image["id"], base_keypoints, base_scores, PERSON_CATEGORY))
            same += int(base_keypoints.shape == prediction.keypoints.shape
                        and np.allclose(base_keypoints, prediction.keypoints, atol=1e-3))
    ids = [image["id"] for image in images]
    sigmas = info.sigmas_array()
    metrics = evaluate_keypoints(data, results, protocol, sigmas=sigmas, image_ids=ids, source="decoded ground truth")
    count = max(len(images), 1)
    outcome = OracleResult(metrics, protocol, results, ids, 1000 * grouping_s / count, 1000 * aggregate_s / count)
    if baseline is not None:
        outcome.baseline = {
            "metrics": evaluate_keypoints(data, baseline_results, protocol, sigmas=sigmas, image_ids=ids,
                                          source="baseline decoding"),
            "grouping_ms": 1000 * baseline_s / count, "identical_images": same}
    return outcome
