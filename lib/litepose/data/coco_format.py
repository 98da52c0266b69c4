"""COCO-format keypoint datasets on disk: where the files are and what they hold.

Standard layouts (``DATASET.ROOT``):

- COCO: ``annotations/person_keypoints_{split}.json`` with images in ``images/{split}/``
- CrowdPose: ``json/crowdpose_{split}.json`` with images in ``images/``

Any other COCO-format keypoint dataset is given by ``DATASET.{TRAIN,TEST}_ANN_FILE`` and
``..._IMAGE_DIR`` plus its joints (``DATASET.FLIP_PAIRS``, ``DATASET.SIGMAS``).
Training (datasets and targets) and evaluation both read datasets through this module.
"""

import json
import os
from collections import defaultdict

import cv2
import numpy as np

from ..errors import DataError, UnreadableImageError
from .keypoints import DATASET_INFOS, KeypointInfo

COCO_NAMES = ("coco", "coco_kpt")
CROWDPOSE_NAMES = ("crowd_pose", "crowd_pose_kpt", "crowdpose")


def keypoint_info_from_config(cfg, for_test=False):
    """Joint metadata of the configured dataset (``DATASET_TEST`` when ``for_test``)."""
    name = cfg.DATASET.DATASET_TEST if for_test else cfg.DATASET.DATASET
    joints = cfg.DATASET.NUM_JOINTS
    if cfg.DATASET.FLIP_PAIRS or name not in DATASET_INFOS:
        sigmas = tuple(cfg.DATASET.SIGMAS) or (0.1,) * joints  # no OKS sigmas given: a uniform default
        return KeypointInfo(
            name=name,
            joints=tuple(f"joint_{j}" for j in range(joints)),
            flip_pairs=tuple(tuple(pair) for pair in cfg.DATASET.FLIP_PAIRS),
            sigmas=sigmas,
            skeleton=tuple(tuple(pair) for pair in cfg.DATASET.SKELETON),
        )
    info = DATASET_INFOS[name]
    if info.num_joints != joints:
        raise DataError(f"DATASET.NUM_JOINTS is {joints} but dataset '{name}' has {info.num_joints} joints")
    return info


def dataset_files(cfg, split_kind):
    """``(annotation_file, image_dir)`` for ``split_kind`` 'train' or 'test' (paths unchecked)."""
    prefix = "TRAIN" if split_kind == "train" else "TEST"
    ann_file = cfg.DATASET[f"{prefix}_ANN_FILE"]
    image_dir = cfg.DATASET[f"{prefix}_IMAGE_DIR"]
    split = cfg.DATASET[prefix]
    name = cfg.DATASET.DATASET if split_kind == "train" else cfg.DATASET.DATASET_TEST
    root = cfg.DATASET.ROOT
    if not ann_file or not image_dir:
        if not root:
            raise DataError(f"DATASET.ROOT is empty: give the dataset root or DATASET.{prefix}_ANN_FILE")
        if not os.path.isdir(root):
            raise DataError(f"dataset root not found: {root}")
        if name in CROWDPOSE_NAMES:
            default_ann = os.path.join(root, "json", f"crowdpose_{split}.json")
            default_images = os.path.join(root, "images")
        else:
            default_ann = os.path.join(root, "annotations", f"person_keypoints_{split}.json")
            default_images = os.path.join(root, "images", split)
        ann_file = ann_file or default_ann
        image_dir = image_dir or default_images
    return ann_file, image_dir


class KeypointAnnotations:
    """A COCO-format keypoint annotation file and its image folder.

    Checks up front that the file is valid JSON in COCO form and that every person's
    keypoints have the expected length; names file, annotation and field otherwise.
    """

    def __init__(self, ann_file, image_dir, keypoint_info):
        self.ann_file = os.fspath(ann_file)
        self.image_dir = os.fspath(image_dir)
        self.info = keypoint_info
        if not os.path.isfile(self.ann_file):
            raise DataError(f"annotation file not found: {self.ann_file}")
        if not os.path.isdir(self.image_dir):
            raise DataError(f"image folder not found: {self.image_dir}")
        try:
            with open(self.ann_file, "r", encoding="utf-8") as handle:
                self.data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.ann_file}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.ann_file}: cannot read annotation file: {exc}") from None
        self._index()

    def _fail(self, message):
        raise DataError(f"{self.ann_file}: {message}")

    def _index(self):
        if not isinstance(self.data, dict) or not isinstance(self.data.get("images"), list):
            self._fail("not a COCO-format annotation file (no 'images' list)")
        annotations = self.data.get("annotations", [])
        if not isinstance(annotations, list):
            self._fail("'annotations' must be a list")
        self.images = {}
        for position, image in enumerate(self.data["images"]):
            for field in ("id", "file_name", "width", "height"):
                if not isinstance(image, dict) or field not in image:
                    self._fail(f"images[{position}] has no '{field}'")
            self.images[image["id"]] = image
        self.image_ids = sorted(self.images)
        expected = 3 * self.info.num_joints
        by_image = defaultdict(list)
        for position, ann in enumerate(annotations):
            where = f"annotation {ann.get('id', position)}" if isinstance(ann, dict) else f"annotations[{position}]"
            if not isinstance(ann, dict) or "image_id" not in ann:
                self._fail(f"{where} has no 'image_id'")
            if ann["image_id"] not in self.images:
                self._fail(f"{where} refers to image_id {ann['image_id']} that is not listed in 'images'")
            keypoints = ann.get("keypoints")
            if keypoints is not None and len(keypoints) != expected:
                self._fail(f"{where} field 'keypoints' has {len(keypoints)} values, expected {expected} "
                           f"({self.info.num_joints} joints x 3)")
            by_image[ann["image_id"]].append(ann)
        self._by_image = dict(by_image)

    def __len__(self):
        return len(self.image_ids)

    def image_path(self, image_id):
        return os.path.join(self.image_dir, self.images[image_id]["file_name"])

    def image_size(self, image_id):
        """``(width, height)`` as recorded in the annotation file."""
        image = self.images[image_id]
        return int(image["width"]), int(image["height"])

    def annotations(self, image_id):
        """All annotations of an image (people, crowd regions, people without keypoints)."""
        return self._by_image.get(image_id, [])

    def keypoints(self, image_id):
        """``[N, J, 3]`` float array (x, y, visibility) of the image's annotated people."""
        people = [a for a in self.annotations(image_id) if a.get("keypoints") is not None]
        if not people:
            return np.zeros((0, self.info.num_joints, 3), dtype=np.float32)
        return np.array([a["keypoints"] for a in people], dtype=np.float32).reshape(len(people), -1, 3)

    def crowd_index(self, image_id):
        return self.images[image_id].get("crowdIndex")


def _jpeg_is_truncated(data):
    """A JPEG whose last scan has no end-of-image marker after it: OpenCV decodes such a file
    with a warning and grey rows where the data stopped. In entropy-coded data 0xFF is always
    followed by 0x00 or a restart marker, so the last start-of-scan marker begins the last scan."""
    if data[:2] != b"\xff\xd8":
        return False
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.find(b"\xff\xd9", last_scan) < 0


def read_image(path):
    """Read an image as an RGB uint8 array, or raise ``UnreadableImageError`` naming the file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise UnreadableImageError(f"image not found: {path}") from None
    except OSError as exc:
        raise UnreadableImageError(f"cannot read image: {path}: {exc.strerror or exc}") from None
    if _jpeg_is_truncated(data):
        raise UnreadableImageError(f"truncated image (no JPEG end marker): {path}")
    # Annotations are in the stored pixel grid: an EXIF rotation tag must not turn the image.
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags) if data else None
    if image is None:
        raise UnreadableImageError(f"cannot decode image (corrupt or not an image): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
