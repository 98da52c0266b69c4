"""COCO-format keypoint datasets on disk: where the files are and what they hold.

Standard layouts (``DATASET.ROOT``):

- COCO: ``annotations/person_keypoints_{split}.json`` with images in ``images/{split}/``
- CrowdPose: ``json/crowdpose_{split}.json`` with images in ``images/``

Any other COCO-format keypoint dataset is given by ``DATASET.{TRAIN,TEST}_ANN_FILE`` and
``..._IMAGE_DIR`` plus its joints (``DATASET.FLIP_PAIRS``, ``DATASET.SIGMAS``).
Training (datasets and targets) and evaluation both read datasets through this module.
"""

import io
import math
import os
import pickle
import stat
from collections import defaultdict

import cv2
import numpy as np

from ..errors import DataError, UnreadableImageError
from ..utils.io import load_json, path_problem
from .image_header import MAX_IMAGE_SIDE, header_size, max_image_pixels, size_problem
from .keypoints import DATASET_INFOS, KeypointInfo

COCO_NAMES = ("coco", "coco_kpt")
CROWDPOSE_NAMES = ("crowd_pose", "crowd_pose_kpt", "crowdpose")
# COCO 2017's person_keypoints_train2017.json is 238 MB.
MAX_ANNOTATION_BYTES = 4 * 2**30
# An uncompressed 64-megapixel 16-bit TIFF is 400 MB.
MAX_IMAGE_FILE_BYTES = 2**30


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


def check_dataset_paths(ann_file, image_dir):
    """A ``DataError`` naming the annotation file or image folder that is missing or of the wrong kind."""
    problem = path_problem(ann_file, "annotation file")
    if problem:
        raise DataError(problem)
    if not os.path.isdir(image_dir):
        raise DataError(f"image folder not found: {image_dir}"
                        if not os.path.exists(image_dir) else f"image folder is not a folder: {image_dir}")


class KeypointAnnotations:
    """A COCO-format keypoint annotation file and its image folder.

    Checks up front that the file is valid JSON in COCO form and that every person's
    keypoints have the expected length; names file, annotation and field otherwise.
    """

    def __init__(self, ann_file, image_dir, keypoint_info):
        self.ann_file = os.fspath(ann_file)
        self.image_dir = os.fspath(image_dir)
        self.info = keypoint_info
        check_dataset_paths(self.ann_file, self.image_dir)
        self.data = load_json(self.ann_file, DataError, "annotation file", max_bytes=MAX_ANNOTATION_BYTES)
        self._index()

    def _fail(self, message):
        raise DataError(f"{self.ann_file}: {message}")

    def _index(self):
        self.images = check_annotation_data(self.data, self.ann_file, self.info.num_joints)
        self.image_ids = sorted(self.images, key=_id_order)
        by_image = defaultdict(list)
        for ann in self.data.get("annotations", []):
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

    def has_annotations(self, image_id):
        return image_id in self._by_image

    def keypoints(self, image_id):
        """``[N, J, 3]`` float array (x, y, visibility) of the image's annotated people."""
        people = [a for a in self.annotations(image_id) if a.get("keypoints") is not None]
        if not people:
            return np.zeros((0, self.info.num_joints, 3), dtype=np.float32)
        return np.array([a["keypoints"] for a in people], dtype=np.float32).reshape(len(people), -1, 3)

    def crowd_index(self, image_id):
        return self.images[image_id].get("crowdIndex")

    def packed(self, image_ids=None):
        """The part training reads, packed for loader workers (``PackedAnnotations``)."""
        return PackedAnnotations(self, self.image_ids if image_ids is None else image_ids)


class IndexFileError(ValueError):
    """A saved ``PackedAnnotations`` that cannot be used (missing, truncated, altered, of another
    format or another annotation file): the message says what is wrong."""


class PackedAnnotations:
    """What a training sample reads of a ``KeypointAnnotations``, packed once into NumPy buffers.

    A parsed COCO file is millions of small Python objects (COCO's training file: 262,465
    annotation dicts, each with a list of 51 numbers). Forked loader workers share them
    copy-on-write, but every read changes an object's reference count, so over an epoch each
    worker copies the pages it touched: gigabytes per process at COCO's size. Here an image's
    annotations are one pickled byte string in a shared buffer, unpickled when a sample is
    loaded: the same dicts in the same order, except that segmentations are kept only where
    training decodes them (crowd regions and people without keypoints, ``dataset.ignore_mask``).

    Images are found by id through a sorted array (``np.searchsorted``) where every id is an
    integer, through a dict otherwise (string ids). ``save`` writes the buffers as ``.npy`` files
    and ``load`` memory-maps them read-only, so the processes of a node share one copy in the
    page cache (``litepose.data.index_cache``). The pickles are read back by an unpickler that
    builds JSON values only: a saved index that names a class or function is refused.
    """

    FORMAT = 1  # of the saved files; a saved index of another format is not read
    _ARRAYS = ("ids", "names", "counts", "ends", "blob")

    def __init__(self, annotations, image_ids):
        self.ann_file, self.image_dir, self.info = annotations.ann_file, annotations.image_dir, annotations.info
        image_ids = list(image_ids)
        names = [annotations.images[i]["file_name"].encode("utf-8") for i in image_ids]
        blobs, counts = [], np.zeros(len(image_ids), dtype=np.int32)
        for row, image_id in enumerate(image_ids):
            anns = annotations.annotations(image_id)
            counts[row] = len(anns)
            kept = [ann if ann.get("iscrowd", 0) or keypoint_count(ann) == 0
                    else {k: v for k, v in ann.items() if k != "segmentation"} for ann in anns]
            blobs.append(pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL) if anns else b"")
        self._arrays = {"names": np.array(names, dtype=bytes), "counts": counts,
                        "ends": np.cumsum([len(b) for b in blobs], dtype=np.int64),
                        "blob": np.frombuffer(b"".join(blobs), dtype=np.uint8)}
        self._set_ids(image_ids, _int64_ids(image_ids))

    def _set_ids(self, image_ids, ids):
        """``image_ids`` (a list), and ``ids``, the same as an int64 array or None (not all integers)."""
        self.image_ids = image_ids
        self._names, self._counts = self._arrays["names"], self._arrays["counts"]
        self._ends, self._blob = self._arrays["ends"], self._arrays["blob"]
        self._lookup = self._order = self._sorted = None
        if ids is None:
            self._lookup = {image_id: row for row, image_id in enumerate(image_ids)}
        else:
            self._arrays["ids"] = ids
            if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
                self._order = np.argsort(ids, kind="stable")
                self._sorted = ids[self._order]
            else:
                self._sorted = ids

    def _row(self, image_id):
        if self._lookup is not None:
            return self._lookup[image_id]
        if type(image_id) is not int and not isinstance(image_id, np.integer):
            raise KeyError(image_id)
        try:
            position = int(np.searchsorted(self._sorted, image_id))
        except OverflowError:  # beyond int64: not an id here
            raise KeyError(image_id) from None
        if position == len(self._sorted) or self._sorted[position] != image_id:
            raise KeyError(image_id)
        return position if self._order is None else int(self._order[position])

    def __len__(self):
        return len(self.image_ids)

    def _rows(self, image_ids):
        """Rows of a list of ids at once (``KeyError`` for one not here)."""
        wanted = None
        if self._lookup is None and len(self._sorted) and all(type(i) is int for i in image_ids):
            try:
                wanted = np.array(image_ids, dtype=np.int64)
            except OverflowError:
                pass
        if wanted is None:
            return np.array([self._row(i) for i in image_ids], dtype=np.int64)
        positions = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        found = self._sorted[positions] == wanted
        if not found.all():
            raise KeyError(image_ids[int(np.argmin(found))])
        return positions if self._order is None else self._order[positions]

    def image_path(self, image_id):
        return os.path.join(self.image_dir, self._names[self._row(image_id)].decode("utf-8"))

    def image_paths(self, image_ids):
        """``image_path`` of each of ``image_ids`` (a list), at once."""
        names = self._names[self._rows(image_ids)].tolist()
        return [os.path.join(self.image_dir, name.decode("utf-8")) for name in names]

    def has_annotations(self, image_id):
        return bool(self._counts[self._row(image_id)])

    def annotated_ids(self):
        """The ids of the images with at least one annotation, in this index's order."""
        return [self.image_ids[row] for row in np.flatnonzero(np.asarray(self._counts)).tolist()]

    def annotations(self, image_id):
        """The image's annotations as ``KeypointAnnotations.annotations`` gives them (fresh dicts)."""
        row = self._row(image_id)
        if not self._counts[row]:
            return []
        start = int(self._ends[row - 1]) if row else 0
        try:
            return _JsonUnpickler(io.BytesIO(self._blob[start:int(self._ends[row])].tobytes())).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataError(f"{self.ann_file}: the annotation index of image {_short(image_id)} holds something "
                            f"other than its annotations ({exc})") from None

    def save(self, folder, key=None):
        """Write the index into the existing ``folder``: one ``.npy`` file per buffer (the ids
        too where they are all integers), then ``index.json`` with the rest (string ids), each
        buffer's CRC-32 and ``key`` (what the index was built from), each file flushed to disk.
        ``OSError`` where a file cannot be written."""
        import json
        import zlib

        arrays = {}
        for name, array in self._arrays.items():
            path = os.path.join(folder, f"{name}.npy")
            with open(path, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            arrays[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "crc32": zlib.crc32(array)}
        meta = {"format": self.FORMAT, "key": key, "images": len(self.image_ids), "arrays": arrays,
                "image_ids": None if "ids" in self._arrays else self.image_ids}
        with open(os.path.join(folder, "index.json"), "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, folder, ann_file, image_dir, info, key=None):
        """The index ``save`` wrote in ``folder``, its buffers memory-mapped read-only, for
        ``ann_file`` and its images in ``image_dir``. ``IndexFileError`` saying what is wrong
        when a file is missing, truncated or altered (CRC-32), of another format, or when its
        key is not ``key``."""
        import zlib

        try:
            meta = load_json(os.path.join(folder, "index.json"), IndexFileError, "index", MAX_ANNOTATION_BYTES)
            if not isinstance(meta, dict) or meta.get("format") != cls.FORMAT:
                raise IndexFileError(f"format {meta.get('format') if isinstance(meta, dict) else '?'}, "
                                     f"expected {cls.FORMAT}")
            if meta.get("key") != key:
                raise IndexFileError("built from another annotation file or with other settings")
            count, specs, image_ids = meta["images"], meta["arrays"], meta["image_ids"]
            expected = set(cls._ARRAYS) - ({"ids"} if image_ids is not None else set())
            if set(specs) != expected or (image_ids is not None and len(image_ids) != count):
                raise IndexFileError("index.json lists other buffers")
            arrays = {}
            for name, spec in specs.items():
                array = np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r", allow_pickle=False)
                if array.dtype.str != spec["dtype"] or list(array.shape) != spec["shape"]:
                    raise IndexFileError(f"{name}.npy holds {array.dtype.str} {list(array.shape)}, "
                                         f"not {spec['dtype']} {spec['shape']}")
                if array.size and zlib.crc32(array) != spec["crc32"]:
                    raise IndexFileError(f"{name}.npy is altered (CRC-32)")
                arrays[name] = array
        except IndexFileError:
            raise
        except FileNotFoundError as exc:
            raise IndexFileError(f"{os.path.basename(exc.filename or '?')} is missing") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # truncated, not JSON, ...
            raise IndexFileError(f"unreadable ({type(exc).__name__}: {str(exc)[:120]})") from None
        ends = arrays["ends"]
        if any(arrays[name].shape != (count,) for name in ("names", "counts", "ends", "ids") if name in arrays) \
                or arrays["blob"].shape != ((int(ends[-1]),) if count else (0,)):
            raise IndexFileError("buffers of inconsistent sizes")
        packed = cls.__new__(cls)
        packed.ann_file, packed.image_dir, packed.info = os.fspath(ann_file), os.fspath(image_dir), info
        packed._arrays = arrays
        ids = arrays.get("ids")
        packed._set_ids(ids.tolist() if ids is not None else image_ids, ids)
        return packed


class _JsonUnpickler(pickle.Unpickler):
    """Unpickles JSON values only (dicts, lists, strings, numbers, None, booleans): a pickle that
    names any class or function, as an altered index file could, is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it names {module}.{name}")


def _int64_ids(image_ids):
    """``image_ids`` as an int64 array when all are integers that fit, else None."""
    if not all(type(i) is int for i in image_ids):
        return None
    try:
        return np.array(image_ids, dtype=np.int64)
    except OverflowError:
        return None


_NUMBER_TYPES = frozenset((int, float))


def _id_order(image_id):
    return (isinstance(image_id, str), image_id)


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_id(value):
    return type(value) in (int, str)


def _numbers(values):
    """Whether ``values`` is a list of finite JSON numbers (not booleans, not strings)."""
    if not isinstance(values, list) or not set(map(type, values)) <= _NUMBER_TYPES:
        return False
    try:
        return math.isfinite(float(sum(values)))
    except OverflowError:  # an integer beyond float range
        return False


def _check_dimension(value, image, field, fail):
    if type(value) not in _NUMBER_TYPES or not math.isfinite(value) or value != int(value) or value <= 0:
        fail(f"image {_short(image.get('id'))} field '{field}' must be a positive whole number, got {_short(value)}")
    if value > MAX_IMAGE_SIDE:
        fail(f"image {_short(image.get('id'))} field '{field}' is {int(value)}, more than the {MAX_IMAGE_SIDE} pixels "
             "an image may have")


def check_annotation_data(data, source, num_joints=None):
    """Check the fields of a COCO-format keypoint annotation dict that training and evaluation
    read; return its images by id. One ``DataError`` naming ``source``, the entry and the field:
    a missing or duplicated image id, an id that is not a number or a string, keypoints, bbox,
    area or a segmentation of the wrong JSON type or length, a non-finite coordinate."""
    def fail(message):
        raise DataError(f"{source}: {message}")

    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        fail("not a COCO-format annotation file (no 'images' list)")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        fail("'annotations' must be a list")
    categories = data.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, dict) and _is_id(c.get("id")) for c in categories):
        fail("'categories' must be a list of objects with an 'id' number")
    images = {}
    for position, image in enumerate(data["images"]):
        if not isinstance(image, dict):
            fail(f"images[{position}] is not an object")
        for field in ("id", "file_name", "width", "height"):
            if field not in image:
                fail(f"images[{position}] has no '{field}'")
        image_id = image["id"]
        if not _is_id(image_id):
            fail(f"images[{position}] field 'id' must be a number or a string, got {_short(image_id)}")
        if image_id in images:
            fail(f"images[{position}] has id {_short(image_id)}, which an earlier entry of 'images' has too "
                 "(image ids must be unique)")
        if not isinstance(image["file_name"], str) or not image["file_name"]:
            fail(f"image {_short(image_id)} field 'file_name' must be a file name, got {_short(image['file_name'])}")
        _check_dimension(image["width"], image, "width", fail)
        _check_dimension(image["height"], image, "height", fail)
        crowd_index = image.get("crowdIndex")
        if crowd_index is not None and (type(crowd_index) not in _NUMBER_TYPES or not math.isfinite(crowd_index)):
            fail(f"image {_short(image_id)} field 'crowdIndex' must be a number, got {_short(crowd_index)}")
        images[image_id] = image
    expected = 3 * num_joints if num_joints else None
    category_ids = {c["id"] for c in categories}
    annotation_ids = set()
    for position, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            fail(f"annotations[{position}] is not an object")
        where = f"annotation {_short(ann['id'])}" if _is_id(ann.get("id")) else f"annotations[{position}]"
        if _is_id(ann.get("id")):
            if ann["id"] in annotation_ids:
                fail(f"{where} field 'id': an earlier annotation has id {_short(ann['id'])} too "
                     "(annotation ids must be unique)")
            annotation_ids.add(ann["id"])
        if "image_id" not in ann:
            fail(f"{where} has no 'image_id'")
        image_id = ann["image_id"]
        if not _is_id(image_id):
            fail(f"{where} field 'image_id' must be a number or a string, got {_short(image_id)}")
        if image_id not in images:
            fail(f"{where} refers to image_id {_short(image_id)} that is not listed in 'images'")
        keypoints = ann.get("keypoints")
        if keypoints is not None:
            if not isinstance(keypoints, list):
                fail(f"{where} field 'keypoints' must be a list of numbers, got {type(keypoints).__name__}")
            if expected is not None and len(keypoints) != expected:
                fail(f"{where} field 'keypoints' has {len(keypoints)} values, expected {expected} "
                     f"({num_joints} joints x 3)")
            if len(keypoints) % 3 or not _numbers(keypoints):
                fail(f"{where} field 'keypoints' must be x, y, visibility triples of finite numbers")
            visibility = set(keypoints[2::3])
            if not visibility <= _VISIBILITIES:
                wrong = sorted(visibility - _VISIBILITIES)[0]
                fail(f"{where} field 'keypoints' has visibility {_short(wrong)}; it must be 0 (absent), "
                     "1 (occluded) or 2 (visible)")
            _check_coordinates(keypoints, where, "keypoints", fail)  # visibilities are 0 to 2: within range
        box = ann.get("bbox")
        if box is not None and (not _numbers(box) or len(box) != 4 or box[2] < 0 or box[3] < 0):
            fail(f"{where} field 'bbox' must be [x, y, width, height] with a width and height >= 0, got {_short(box)}")
        if box is not None:
            _check_coordinates(box, where, "bbox", fail)
        for field in ("area", "num_keypoints", "iscrowd"):
            value = ann.get(field)
            if value is not None and not (type(value) in _NUMBER_TYPES or type(value) is bool):
                fail(f"{where} field '{field}' must be a number, got {_short(value)}")
            if field in ("area", "num_keypoints") and value is not None and not (math.isfinite(value) and value >= 0):
                fail(f"{where} field '{field}' must be a finite number >= 0, got {_short(value)}")
        category = ann.get("category_id")
        if category is not None and type(category) is not int:
            fail(f"{where} field 'category_id' must be a whole number (the id of a category), got {_short(category)}")
        if category is not None and category_ids and category not in category_ids:
            fail(f"{where} field 'category_id' is {category}, which is not an id in 'categories'")
        segmentation = ann.get("segmentation")
        _check_segmentation(segmentation, where, fail)
        if isinstance(segmentation, list):
            for polygon in segmentation:
                if polygon and (not _numbers(polygon) or max(map(abs, polygon)) > MAX_COORDINATE):
                    fail(f"{where} field 'segmentation' has a polygon coordinate that is not finite or beyond "
                         f"+-{MAX_COORDINATE} pixels")
            masked = ann.get("iscrowd") or keypoint_count(ann) == 0
            if masked and segmentation and not any(len(polygon) >= 6 for polygon in segmentation):
                # pycocotools fails on these with an IndexError; nothing says where the region is.
                kind = "crowd region" if ann.get("iscrowd") else "person without keypoints"
                fail(f"{where} field 'segmentation': this {kind} is masked in training but none of its polygons "
                     "has 3 points (6 numbers)")
    return images


# COCO's visibility flags: 0 not labelled, 1 labelled but occluded, 2 visible.
_VISIBILITIES = frozenset((0, 1, 2))
# No image side exceeds MAX_IMAGE_SIDE; a coordinate 64 times beyond it (2**20) is an error, not a
# pixel. Joints far outside an image are legal (and ignored), so the bound is generous.
MAX_COORDINATE = 64 * MAX_IMAGE_SIDE


def _check_coordinates(values, where, field, fail):
    if values and max(map(abs, values)) > MAX_COORDINATE:
        wrong = max(values, key=abs)
        fail(f"{where} field '{field}' has coordinate {_short(wrong)}, beyond the +-{MAX_COORDINATE} pixels "
             "any image reaches")


def keypoint_count(ann):
    """The annotation's ``num_keypoints`` (what the release reads), else its labelled joints."""
    if ann.get("num_keypoints") is not None:
        return int(ann["num_keypoints"])
    return sum(1 for v in (ann.get("keypoints") or [])[2::3] if v > 0)


def _check_segmentation(segmentation, where, fail):
    if segmentation is None or isinstance(segmentation, list) and all(
            isinstance(polygon, list) and set(map(type, polygon)) <= _NUMBER_TYPES for polygon in segmentation):
        return
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int and 0 < v <= MAX_IMAGE_SIDE
                                                                    for v in size)):
            fail(f"{where} field 'segmentation' has a 'size' that is not [height, width] of at most "
                 f"{MAX_IMAGE_SIDE} pixels each: {_short(size)}")
        if isinstance(counts, str) or isinstance(counts, list) and all(type(v) is int and v >= 0 for v in counts):
            return
        fail(f"{where} field 'segmentation' has 'counts' that are neither a string nor a list of counts")
    fail(f"{where} field 'segmentation' must be a list of polygons or a run-length encoding, got {_short(segmentation)}")


def _jpeg_is_truncated(data):
    """A JPEG whose last scan has no end-of-image marker after it: OpenCV decodes such a file
    with a warning and grey rows where the data stopped. In entropy-coded data 0xFF is always
    followed by 0x00 or a restart marker, so the last start-of-scan marker begins the last scan."""
    if data[:2] != b"\xff\xd8":
        return False
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.find(b"\xff\xd9", last_scan) < 0


def read_image(path, max_pixels=None):
    """Read an image as an RGB uint8 array, or raise ``UnreadableImageError`` naming the file.

    The size in the file's header is checked before decoding (``image_header``): an image of
    more than ``max_pixels`` (default ``LITEPOSE_MAX_IMAGE_PIXELS`` or 64 megapixels) or with a
    side above 16384 pixels is refused, as is a file larger than ``MAX_IMAGE_FILE_BYTES``."""
    max_pixels = max_image_pixels() if max_pixels is None else max_pixels
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableImageError(f"not an image file (a folder or a device): {path}")
            if info.st_size > MAX_IMAGE_FILE_BYTES:
                raise UnreadableImageError(f"image file of {info.st_size / 2**20:.0f} MiB is larger than the "
                                           f"{MAX_IMAGE_FILE_BYTES // 2**20} MiB this project reads: {path}")
            data = handle.read()
    except FileNotFoundError:
        raise UnreadableImageError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise UnreadableImageError(f"not an image file (a folder or a device): {path}") from None
    except OSError as exc:
        raise UnreadableImageError(f"cannot read image: {path}: {exc.strerror or exc}") from None
    size = header_size(data)
    if size == "damaged":
        raise UnreadableImageError(f"cannot decode image (corrupt or not an image): {path}")
    if size is not None:
        problem = size_problem(*size, max_pixels=max_pixels)
        if problem:
            raise UnreadableImageError(f"image too large to read safely ({problem}): {path}")
    if _jpeg_is_truncated(data):
        raise UnreadableImageError(f"truncated image (no JPEG end marker): {path}")
    # Annotations are in the stored pixel grid: an EXIF rotation tag must not turn the image.
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags) if data else None
    except cv2.error:  # OpenCV's own pixel limit (litepose/__init__.py), for formats not parsed above
        image = None
    if image is None:
        raise UnreadableImageError(f"cannot decode image (corrupt or not an image): {path}")
    problem = size_problem(image.shape[1], image.shape[0], max_pixels=max_pixels)
    if problem:
        raise UnreadableImageError(f"image too large to read safely ({problem}): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
