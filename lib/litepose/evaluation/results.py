"""COCO keypoint results: building, writing and reading them with clear errors.

A results file is the COCO format the release writes: a JSON list of
``{"image_id", "category_id", "keypoints": [x, y, score] * J, "score"}`` per person.
"""

import json
import math
import os

import numpy as np

from ..errors import DataError
from ..utils.io import atomic_write_text, load_json

# Results of COCO test-dev (about 20k images) take a few hundred MB.
MAX_RESULTS_BYTES = 4 * 2**30

PERSON_CATEGORY = 1


def image_results(image_id, keypoints, scores, category_id=PERSON_CATEGORY):
    """Result entries of one image from ``keypoints [P, J, 3]`` (image pixels, joint score) and
    ``scores [P]``."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    return [{"image_id": image_id, "category_id": category_id,
             "keypoints": [float(v) for v in person.reshape(-1)], "score": float(score)}
            for person, score in zip(keypoints, scores)]


def write_results(path, results):
    """Write results atomically (never a half-written file)."""
    atomic_write_text(path, json.dumps(results))


def load_results(path, num_joints=None):
    """Read and check a results file: one ``DataError`` line naming the file, entry and field."""
    path = os.fspath(path)
    results = load_json(path, DataError, "results file", max_bytes=MAX_RESULTS_BYTES)
    check_results(results, num_joints, source=path)
    return results


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_results(results, num_joints=None, source="results"):
    """Raise ``DataError`` unless ``results`` is a list of well-formed keypoint entries."""
    if not isinstance(results, list):
        raise DataError(f"{source}: a results file must be a JSON list of detections, got {type(results).__name__}")
    for position, entry in enumerate(results):
        where = f"{source}: entry {position}"
        if not isinstance(entry, dict):
            raise DataError(f"{where} is not an object")
        for key in ("image_id", "category_id", "keypoints", "score"):
            if key not in entry:
                raise DataError(f"{where} has no '{key}'")
        for key in ("image_id", "category_id"):
            if type(entry[key]) not in (int, str):
                shown = repr(entry[key])
                raise DataError(f"{where} field '{key}' must be a number or a string, got "
                                f"{shown if len(shown) <= 60 else shown[:60] + '...'}")
        if not _number(entry["score"]):
            raise DataError(f"{where} field 'score' is not a finite number: {entry['score']!r}")
        keypoints = entry["keypoints"]
        if not isinstance(keypoints, list) or not keypoints or len(keypoints) % 3:
            raise DataError(f"{where} field 'keypoints' must be a list of x, y, score triples")
        if num_joints is not None and len(keypoints) != 3 * num_joints:
            raise DataError(f"{where} field 'keypoints' has {len(keypoints)} values, expected {3 * num_joints} "
                            f"({num_joints} joints x 3)")
        if not all(_number(v) for v in keypoints):
            raise DataError(f"{where} field 'keypoints' holds a value that is not a finite number")
