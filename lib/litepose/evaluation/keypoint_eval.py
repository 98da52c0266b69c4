"""Keypoint AP with the official protocols.

- ``coco``: pycocotools ``COCOeval(iouType='keypoints')``, the standard ten numbers (OKS sigmas
  of the dataset: COCO's for COCO, ``DATASET.SIGMAS`` for other COCO-format datasets).
- ``crowdpose``: xtcocotools ``COCOeval(iouType='keypoints_crowd', use_area=False)`` with the
  CrowdPose sigmas: no area ranges (OKS scale is 0.53 x the box area), at most 20 detections
  per image, AP / AR at OKS .50:.95, .50, .75, and AP of the easy / medium / hard images.
  It reproduces the official CrowdPose API (``crowdposetools``, which no longer installs) with
  two adjustments, both to match it exactly:

  * the API splits images by ``crowdIndex`` at **0.2** and 0.8 (its code; the paper says 0.1);
    xtcocotools does the same. The split is read from the ground truth held in memory, so a
    subset of images is evaluated as the API would evaluate a file holding only that subset;
  * xtcocotools drops detections whose keypoint scores are all zero, the API keeps them; as OKS
    never reads keypoint scores, such detections are given score 1 on their keypoints here.

An empty results list scores 0 wherever there is ground truth (the APIs would crash on it).
"""

import contextlib
import copy
import io
import math
import os
from collections import OrderedDict

import numpy as np

from ..data.coco_format import CROWDPOSE_NAMES, MAX_ANNOTATION_BYTES, check_annotation_data
from ..data.keypoints import COCO, CROWDPOSE
from ..errors import DataError
from ..utils.io import load_json

PROTOCOLS = ("coco", "crowdpose")
# The release's column names (its _print_name_value tables); (E/M/H) = easy / medium / hard.
COCO_COLUMNS = ("AP", "Ap .5", "AP .75", "AP (M)", "AP (L)", "AR", "AR .5", "AR .75", "AR (M)", "AR (L)")
CROWDPOSE_COLUMNS = ("AP", "Ap .5", "AP .75", "AR", "AR .5", "AR .75", "AP (E)", "AP (M)", "AP (H)")
# crowdIndex thresholds of the official CrowdPose API's easy / medium / hard split.
CROWD_INDEX_SPLIT = (0.2, 0.8)
_REQUIRED_ANN_FIELDS = {"coco": ("image_id", "category_id", "keypoints", "iscrowd", "bbox", "area", "num_keypoints"),
                        "crowdpose": ("image_id", "category_id", "keypoints", "iscrowd", "bbox", "num_keypoints")}


def protocol_for_dataset(name):
    """``'crowdpose'`` for the CrowdPose dataset names, else ``'coco'``."""
    return "crowdpose" if name in CROWDPOSE_NAMES else "coco"


def columns(protocol):
    return CROWDPOSE_COLUMNS if protocol == "crowdpose" else COCO_COLUMNS


def load_ground_truth(path):
    """A COCO-format annotation file as a dict, or one ``DataError`` line."""
    path = os.fspath(path)
    data = load_json(path, DataError, "annotation file", max_bytes=MAX_ANNOTATION_BYTES)
    check_annotation_data(data, path)
    return data


def check_ground_truth(data, protocol, source="ground truth"):
    """The fields the protocol reads must be there: one ``DataError`` line otherwise."""
    for position, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image:
            raise DataError(f"{source}: images[{position}] has no 'id'")
        if protocol == "crowdpose" and "crowdIndex" not in image:
            raise DataError(f"{source}: image {image['id']} has no 'crowdIndex' (CrowdPose's easy/medium/hard "
                            "split needs it; use --dataset coco for other datasets)")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise DataError(f"{source}: 'annotations' must be a list")
    for position, ann in enumerate(annotations):
        for key in _REQUIRED_ANN_FIELDS[protocol]:
            if not isinstance(ann, dict) or key not in ann:
                where = ann.get("id", position) if isinstance(ann, dict) else position
                raise DataError(f"{source}: annotation {where} has no '{key}' (needed by the {protocol} protocol)")


def _num_joints(data):
    for ann in data.get("annotations", []):
        if ann.get("keypoints"):
            return len(ann["keypoints"]) // 3
    return None


def _subset(data, image_ids):
    if image_ids is None:
        return data
    keep = set(image_ids)
    known = {image["id"] for image in data["images"]}
    missing = keep - known
    if missing:
        raise DataError(f"image id {sorted(missing)[0]} is not in the ground truth")
    subset = {key: value for key, value in data.items() if key not in ("images", "annotations")}
    subset["images"] = [image for image in data["images"] if image["id"] in keep]
    subset["annotations"] = [ann for ann in data.get("annotations", []) if ann["image_id"] in keep]
    return subset


def _check_against(results, data, source):
    images = {image["id"] for image in data["images"]}
    categories = {c["id"] for c in data.get("categories", [])} or {1}
    joints = _num_joints(data)
    for position, entry in enumerate(results):
        if entry["image_id"] not in images:
            raise DataError(f"{source}: entry {position} has image_id {entry['image_id']!r}, "
                            "which is not an image of the ground truth")
        if entry["category_id"] not in categories:
            raise DataError(f"{source}: entry {position} has category_id {entry['category_id']!r}; "
                            f"the ground truth's categories are {sorted(categories)}")
        if joints is not None and len(entry["keypoints"]) != 3 * joints:
            raise DataError(f"{source}: entry {position} has {len(entry['keypoints']) // 3} joints, "
                            f"the ground truth {joints}")


def _coco_pair(module, data, results):
    """Ground-truth and result objects of ``module`` (pycocotools or xtcocotools), in memory."""
    gt = module.COCO()
    gt.dataset = data
    gt.createIndex()
    if results:
        dt = gt.loadRes(results)
    else:
        dt = module.COCO()
        dt.dataset = {"images": list(data["images"]), "annotations": [], "categories": data["categories"]}
        dt.createIndex()
        if hasattr(gt, "anno_file"):
            gt.anno_file = [None, []]
    return gt, dt


def _crowdpose_eval_class():
    from xtcocotools.cocoeval import COCOeval

    class CrowdPoseEval(COCOeval):
        """xtcocotools' CrowdPose protocol, splitting by crowdIndex from the ground truth in
        memory (the API re-reads its annotation file) with the API's thresholds."""

        def split(self, gt_file, first=CROWD_INDEX_SPLIT[0], second=CROWD_INDEX_SPLIT[1]):
            easy, medium, hard = [], [], []
            for image in self.cocoGt.dataset["images"]:
                index = image["crowdIndex"]
                (easy if index < first else medium if index < second else hard).append(image["id"])
            return easy, medium, hard

        def get_type_result(self, first=0.01, second=0.85):
            # The API's summarize() passes 0.2 / 0.8; keep them whatever the caller passes.
            return super().get_type_result(*CROWD_INDEX_SPLIT)

    return CrowdPoseEval


def evaluate_keypoints(gt, results, protocol="coco", sigmas=None, image_ids=None, source="results"):
    """Evaluate keypoint ``results`` (list of COCO entries) against ``gt`` (an annotation dict
    or file). ``image_ids`` restricts both to those images (as if the annotation file held only
    them). Returns an ``OrderedDict`` column -> value in the protocol's order (-1: no ground
    truth for that number, e.g. no hard images)."""
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown evaluation protocol '{protocol}' (use {' or '.join(PROTOCOLS)})")
    gt_source = "ground truth"
    if not isinstance(gt, dict):
        gt_source = os.fspath(gt)
        gt = load_ground_truth(gt)
    data = _subset(gt, image_ids)
    data = dict(data)
    data.setdefault("categories", [{"id": 1, "name": "person", "supercategory": "person"}])
    check_ground_truth(data, protocol, gt_source)
    if image_ids is not None:
        keep = set(image_ids)
        results = [r for r in results if r["image_id"] in keep]
    _check_against(results, data, source)
    joints = _num_joints(data)
    if sigmas is not None and joints is not None and len(sigmas) != joints:
        raise DataError(f"{len(sigmas)} OKS sigmas given for {joints} joints")
    if sigmas is not None and not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in sigmas):
        # OKS divides by the sigma: 0 makes every match perfect or impossible, silently.
        raise DataError(f"OKS sigmas must be positive finite numbers, got {list(sigmas)}")
    # The APIs annotate ground truth and results in place: work on copies.
    data = copy.deepcopy(data)
    results = copy.deepcopy(results)
    with contextlib.redirect_stdout(io.StringIO()):
        if protocol == "coco":
            import pycocotools.coco as module
            from pycocotools.cocoeval import COCOeval

            gt_api, dt_api = _coco_pair(module, data, results)
            evaluator = COCOeval(gt_api, dt_api, "keypoints")
            if sigmas is None and joints is not None and joints != COCO.num_joints:
                raise DataError(f"the ground truth has {joints} joints: give OKS sigmas for them (DATASET.SIGMAS)")
            if sigmas is not None:
                evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        else:
            import xtcocotools.coco as module

            for entry in results:
                if not any(score > 0 for score in entry["keypoints"][2::3]):
                    entry["keypoints"][2::3] = [1.0] * (len(entry["keypoints"]) // 3)
            gt_api, dt_api = _coco_pair(module, data, results)
            evaluator = _crowdpose_eval_class()(gt_api, dt_api, "keypoints_crowd",
                                                sigmas=CROWDPOSE.sigmas_array() if sigmas is None else np.asarray(sigmas),
                                                use_area=False)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return OrderedDict((name, float(value)) for name, value in zip(columns(protocol), evaluator.stats))


def metrics_table(metrics, arch=None):
    """The release's Markdown table (``| Arch | AP | Ap .5 | ...``); -1 shows as n/a."""
    names = list(metrics)
    head = (["Arch"] if arch else []) + names
    row = ([arch] if arch else []) + ["n/a" if metrics[n] < 0 else f"{metrics[n]:.3f}" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(row) + " |"]
    return "\n".join(lines) + "\n"
