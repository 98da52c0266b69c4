"""Property-based fuzzing of every reader of user files: the config loader, the architecture
loader, the annotation reader, the results reader and the image reader. Whatever hypothesis
generates (random bytes, random JSON or YAML, valid files with a field replaced, removed or
corrupted), the reader either loads it or raises the project's one-line error type
(``LitePoseError``), never anything else. The same for the Python API: ``PoseEstimator``'s
constructor arguments and frames (shapes, dtypes, sizes, NaN), ``PoseTracker``'s arguments and
the people given to ``update``, and the scripts' numeric option types. Bounded so that the whole
file takes well under a minute."""

import contextlib
import copy
import io
import json
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import REPO, arch_path  # noqa: E402
from litepose.arch import load_arch, validate_arch  # noqa: E402
from litepose.config import load_config  # noqa: E402
from litepose.config.ranges import RANGES  # noqa: E402
from litepose.data.coco_format import KeypointAnnotations, read_image  # noqa: E402
from litepose.data.dataset import ignore_mask  # noqa: E402
from litepose.data.keypoints import CROWDPOSE  # noqa: E402
from litepose.errors import LitePoseError  # noqa: E402
from litepose.evaluation import check_results, evaluate_keypoints, load_results  # noqa: E402

QUICKSTART = REPO / "experiments" / "synthetic" / "quickstart.yaml"
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
WORKDIR = Path(tempfile.mkdtemp(prefix="litepose-fuzz-"))

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                                  st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=5)), max_leaves=25)


@st.composite
def mutated(draw, base):
    """``base`` (a JSON-like tree) with one to three fields replaced by random JSON or removed."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        node = data
        while isinstance(node, (dict, list)) and node:
            keys = sorted(node, key=str) if isinstance(node, dict) else list(range(len(node)))
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                node = child
                continue
            if draw(st.integers(0, 3)) == 0:
                del node[key]
            else:
                node[key] = draw(json_values)
            break
    return data


def loads_or_one_line(function, *args):
    """Call ``function``; a ``LitePoseError`` is fine and must be one line."""
    try:
        return function(*args)
    except LitePoseError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


def write(name, data):
    path = WORKDIR / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return path


# ------------------------------------------------------------------------ configs
BASE_CONFIG = yaml.safe_load(QUICKSTART.read_text())
CONFIG_KEYS = sorted(RANGES) + ["MODEL.NAME", "TRAIN.OPTIMIZER", "DATASET.DATASET", "TEST.FLIP_TEST", "DEVICE",
                                "LOSS.AE_LOSS_TYPE", "TEST.WITH_AE", "LOSS.NUM_STAGES", "MODEL.EXTRA.NUM_DECONV_FILTERS"]


@FUZZ
@given(st.one_of(mutated(BASE_CONFIG), json_values))
def test_config_files_load_or_fail_with_one_line(data):
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    loads_or_one_line(load_config, str(write("config.yaml", text)))


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_config_bytes_load_or_fail_with_one_line(data):
    loads_or_one_line(load_config, str(write("config.yaml", data if isinstance(data, bytes) else data.encode())))


override_values = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats().map(repr), st.text(max_size=12),
                            st.sampled_from(["[0]", "[-1, 2]", "[[1, 2]]", "()", "True", "None", "{}", "1e400",
                                             "[" * 200, "'x'"]))


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=12)), override_values), max_size=4))
def test_config_overrides_load_or_fail_with_one_line(pairs):
    loads_or_one_line(load_config, str(QUICKSTART), [item for pair in pairs for item in pair])


# ------------------------------------------------------------------------ architectures
BASE_ARCH = json.loads(arch_path("XS").read_text())


@FUZZ
@given(st.one_of(mutated(BASE_ARCH), json_values))
def test_architectures_validate_or_fail_with_one_line(data):
    loads_or_one_line(validate_arch, data)
    loads_or_one_line(load_arch, str(write("arch.json", json.dumps(data))))


@FUZZ
@given(st.binary(max_size=200))
def test_architecture_bytes_load_or_fail_with_one_line(data):
    loads_or_one_line(load_arch, str(write("arch.json", data)))


# ------------------------------------------------------------------------ annotations
BASE_ANNOTATIONS = {
    "images": [{"id": 1, "file_name": "1.jpg", "width": 64, "height": 48, "crowdIndex": 0.2},
               {"id": 2, "file_name": "2.jpg", "width": 32, "height": 32}],
    "annotations": [{"id": 10, "image_id": 1, "keypoints": [5.0, 6.0, 2] * 14, "bbox": [1, 2, 30, 40], "area": 120.0,
                     "iscrowd": 0, "num_keypoints": 14, "category_id": 1, "segmentation": [[1, 1, 20, 1, 20, 20]]},
                    {"id": 11, "image_id": 2, "iscrowd": 1, "num_keypoints": 0, "bbox": [0, 0, 8, 8],
                     "segmentation": {"size": [32, 32], "counts": [0, 100, 924]}}],
    "categories": [{"id": 1, "name": "person"}],
}


def _use_annotations(path):
    annotations = KeypointAnnotations(path, WORKDIR, CROWDPOSE)
    for image_id in annotations.image_ids:
        annotations.image_path(image_id)
        width, height = annotations.image_size(image_id)
        annotations.keypoints(image_id)
        annotations.crowd_index(image_id)
        ignore_mask(annotations.annotations(image_id), height, width, path)  # what training reads of them


@FUZZ
@given(st.one_of(mutated(BASE_ANNOTATIONS), json_values))
def test_annotation_files_load_or_fail_with_one_line(data):
    loads_or_one_line(_use_annotations, str(write("ann.json", json.dumps(data))))


# ------------------------------------------------------------------------ results
BASE_RESULTS = [{"image_id": 1, "category_id": 1, "keypoints": [5.0, 6.0, 0.9] * 14, "score": 0.8},
                {"image_id": 2, "category_id": 1, "keypoints": [3.0, 2.0, 0.1] * 14, "score": 0.2}]
GROUND_TRUTH = copy.deepcopy(BASE_ANNOTATIONS)


def _use_results(path):
    results = load_results(path, num_joints=14)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluate_keypoints(copy.deepcopy(GROUND_TRUTH), results, "coco", sigmas=[0.1] * 14)


@settings(FUZZ, max_examples=60)
@given(st.one_of(mutated(BASE_RESULTS), json_values))
def test_results_files_load_and_evaluate_or_fail_with_one_line(data):
    loads_or_one_line(check_results, data)
    loads_or_one_line(_use_results, str(write("results.json", json.dumps(data))))


# ------------------------------------------------------------------------ images
def _encoded(extension):
    image = np.random.default_rng(0).integers(0, 255, size=(12, 17, 3), dtype=np.uint8)
    ok, data = cv2.imencode(extension, image)
    assert ok
    return data.tobytes()


ENCODED = [_encoded(e) for e in (".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm", ".ras")]


def _png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 32)) + chunk(b"IEND", b""))


@st.composite
def damaged_images(draw):
    data = bytearray(draw(st.sampled_from(ENCODED)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["byte", "header", "truncate"]))
        if kind == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif data:
            limit = min(len(data), 64) if kind == "header" else len(data)
            position = draw(st.integers(0, limit - 1))
            data[position] = draw(st.integers(0, 255))
    return bytes(data)


@settings(FUZZ, max_examples=300)
@given(st.one_of(st.binary(max_size=200), damaged_images(),
                 st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(lambda wh: _png(*wh))))
def test_images_decode_or_fail_with_one_line(data):
    image = loads_or_one_line(read_image, str(write("image.bin", data)))
    if image is not None:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] * image.shape[1] <= 2**26


# ------------------------------------------------------------------------ the Python API
numbers = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(), st.text(max_size=6),
                    st.lists(st.integers(0, 3), max_size=2))


@pytest.fixture(scope="module")
def tiny_onnx():
    import torch

    from litepose.deploy import export_onnx, fuse_bn
    from litepose.models import build_model

    torch.manual_seed(0)
    model = build_model(load_config(QUICKSTART), REPO / "mobile_configs" / "quickstart.json").eval()
    path = WORKDIR / "tiny.onnx"
    path.write_bytes(export_onnx(fuse_bn(model), 64, dynamic=True))
    return path


@settings(FUZZ, max_examples=60)
@given(input_size=st.one_of(numbers, st.sampled_from([32, 64, 2048, 2080])), threads=numbers,
       device=st.one_of(st.none(), st.sampled_from(["cpu", "tpu", "cuda:x", "", " cpu"]), st.text(max_size=5)),
       preset=st.one_of(st.sampled_from(["accurate", "realtime"]), st.text(max_size=5)),
       extra=st.dictionaries(st.sampled_from(["flip", "max_people", "max_detections", "min_person_score",
                                              "person_nms", "project_to_image", "flipp", "size"]), numbers,
                             max_size=2))
def test_estimator_construction_builds_or_fails_with_one_line(tiny_onnx, input_size, threads, device, preset, extra):
    from litepose import PoseEstimator

    estimator = loads_or_one_line(lambda: PoseEstimator.from_onnx(tiny_onnx, input_size=input_size, threads=threads,
                                                                  device=device, preset=preset, **extra))
    if estimator is not None:
        assert estimator.settings.input_size in (32, 64, 2048)


@st.composite
def frames(draw):
    """Arrays of any rank, dtype and size a caller might hand over, strips of extreme aspect
    ratio, and NaN in float frames."""
    kind = draw(st.sampled_from(["small", "strip", "rank"]))
    if kind == "strip":
        long = draw(st.integers(20000, 40000))  # refused by the network-input limit before any work
        shape = draw(st.sampled_from([(1, long, 3), (long, 1, 3), (2, long, 3)]))
    elif kind == "rank":
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=5)))
    else:
        shape = (draw(st.integers(0, 120)), draw(st.integers(0, 120)), draw(st.sampled_from([3, 3, 3, 1, 4])))
    dtype = draw(st.sampled_from([np.uint8, np.uint8, np.uint8, np.float32, np.int64, np.bool_]))
    frame = np.zeros(shape, dtype)
    if frame.size and dtype == np.float32 and draw(st.booleans()):
        frame.flat[0] = np.nan
    elif frame.size and dtype == np.uint8:
        frame[...] = draw(st.integers(0, 255))
    return frame


@pytest.fixture(scope="module")
def tiny_estimator(tiny_onnx):
    from litepose import PoseEstimator

    return PoseEstimator.from_onnx(tiny_onnx, input_size=64, preset="realtime", max_people=3)


@settings(FUZZ, max_examples=50)
@given(frame=frames(), color=st.sampled_from(["bgr", "rgb", "BGR", "gray"]))
def test_estimator_frames_give_people_or_one_line(tiny_estimator, frame, color):
    estimator = tiny_estimator
    people = loads_or_one_line(estimator, frame, color)
    if people is not None:
        assert people.keypoints.ndim == 3 and people.keypoints.shape[1:] == (17, 3)
        assert np.isfinite(people.keypoints).all() and len(people.scores) == len(people.keypoints)


@settings(FUZZ, max_examples=120)
@given(kwargs=st.dictionaries(st.sampled_from(["max_lost", "min_similarity", "min_score", "min_joint_score",
                                               "velocity_momentum", "lost_growth", "damping", "fps", "min_cutoff",
                                               "beta", "association", "dataset", "sigmas"]), numbers, max_size=3),
       people=st.one_of(st.none(), st.integers(0, 3).flatmap(
           lambda p: st.tuples(st.just(p), st.sampled_from([17, 14, 1]), st.sampled_from([3, 2]),
                               st.sampled_from([np.float64, np.float32, np.int32, object]), st.booleans()))))
def test_tracker_tracks_or_fails_with_one_line(kwargs, people):
    from litepose.tracking import PoseTracker

    tracker = loads_or_one_line(lambda: PoseTracker(**kwargs))
    if tracker is None:
        return
    if people is None:
        given = None
    else:
        count, joints, fields, dtype, nan = people
        given = np.random.default_rng(0).random((count, joints, fields)).astype(dtype) * 100
        if nan and given.size and dtype in (np.float64, np.float32):
            given[0, 0, 0] = np.nan
    for _ in range(2):
        result = loads_or_one_line(tracker.update, given)
        if result is not None:
            ids, keypoints = result
            assert len(ids) == len(keypoints) and keypoints.shape[1:] == (len(tracker.sigmas), 3)


@settings(FUZZ, max_examples=200)
@given(text=st.one_of(st.text(max_size=8), st.integers(-2**70, 2**70).map(str), st.floats().map(str)),
       bounds=st.sampled_from([(0, 1), (1, 1024), (0, None), (None, 5)]), integer=st.booleans())
def test_numeric_option_types_accept_only_numbers_in_range(text, bounds, integer):
    import argparse
    import math

    from litepose.cli import int_range, number_range

    parse = int_range(*bounds) if integer else number_range(*bounds)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc)
        return
    low, high = bounds
    assert math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)
    assert isinstance(value, int) == integer
