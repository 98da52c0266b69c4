"""litepose.PoseEstimator: one call from a frame to people, on ONNX Runtime without PyTorch or on
PyTorch, equal to litepose.inference.predict."""

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from litepose.config import load_config
from litepose.deploy import export_onnx, fuse_bn
from litepose.inference import InferenceSettings, predict
from litepose.models import build_model

CFG = "experiments/synthetic/quickstart.yaml"
ARCH = "mobile_configs/quickstart.json"
SIZE = 64
# End to end, ONNX Runtime against PyTorch (BN folded in the export): the same people, joints
# within this many pixels (measured: under 1e-5 on the random-weight model below).
E2E_TOLERANCE_PX = 0.01


def realistic_weights_(model, size):
    from litepose.deploy.latency import realistic_weights_ as weights

    return weights(model, size)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small LitePose with random weights of a trained network's scale, its ONNX export
    (dynamic sizes, BN folded) and a frame."""
    cfg = load_config(CFG)
    torch.manual_seed(0)
    model = realistic_weights_(build_model(cfg, ARCH).eval(), SIZE)
    folder = tmp_path_factory.mktemp("onnx")
    path = folder / "tiny.onnx"
    path.write_bytes(export_onnx(fuse_bn(model), SIZE, dynamic=True))
    frame = (np.random.default_rng(0).random((50, 75, 3)) * 255).astype(np.uint8)  # BGR
    return cfg, model, path, frame


def _estimators(tiny, preset, **overrides):
    from litepose import PoseEstimator

    cfg, model, path, _ = tiny
    onnx = PoseEstimator.from_onnx(path, dataset="coco", input_size=SIZE, preset=preset, **overrides)
    pytorch = PoseEstimator.from_model(model, cfg, preset=preset, device="cpu", input_size=SIZE, **overrides)
    return onnx, pytorch


def _assert_same_people(actual, expected, atol=E2E_TOLERANCE_PX):
    assert actual.keypoints.shape == expected.keypoints.shape
    np.testing.assert_allclose(actual.keypoints[..., :2], expected.keypoints[..., :2], atol=atol, rtol=0)
    np.testing.assert_allclose(actual.keypoints[..., 2], expected.keypoints[..., 2], atol=1e-4, rtol=0)
    np.testing.assert_allclose(actual.scores, expected.scores, atol=1e-4, rtol=0)


def test_accurate_preset_without_person_filter_is_valid_py_and_equals_predict(tiny):
    cfg, model, _, frame = tiny
    frame = np.ascontiguousarray(frame[:50, :50])  # one 64 x 64 input: half the work of the full frame
    onnx, pytorch = _estimators(tiny, "accurate", max_people=40, min_person_score=None, person_nms=None,
                                hide_outside=False)
    settings = InferenceSettings.from_config(cfg, model, SIZE)
    assert onnx.settings == settings and pytorch.settings == settings
    assert onnx.limits.max_detections is None
    assert settings.flip and settings.project_to_image
    expected = predict(model, frame[:, :, ::-1].copy(), settings)
    # max_people=40 keeps the 40 best of the release's people (exactly, test_runtime); the
    # PyTorch path's people are ranked the same way here.
    best = np.sort(np.argsort(-expected.scores, kind="stable")[:40])
    expected = dataclasses.replace(expected, keypoints=expected.keypoints[best], scores=expected.scores[best])
    people = pytorch(frame)
    _assert_same_people(people, expected, atol=1e-3)
    _assert_same_people(onnx(frame), people)
    assert set(people.times) == {"preprocess", "network", "aggregate", "grouping"}


@pytest.mark.parametrize("preset", ["accurate", "realtime"])
def test_presets_filter_people_by_score_and_duplicates(tiny, preset):
    from litepose.estimator import PRESET_FILTERS

    _, pytorch = _estimators(tiny, preset)
    assert pytorch.person_filter == PRESET_FILTERS[preset] and pytorch.person_filter.active
    _, unfiltered = _estimators(tiny, preset, min_person_score=None, person_nms=None)
    frame = np.ascontiguousarray(tiny[3][:50, :50])
    everyone, kept = unfiltered(frame), pytorch(frame)
    keep = pytorch.person_filter.keep(everyone.keypoints, everyone.scores, pytorch.keypoint_info.sigmas)
    assert len(kept) == len(keep) > 0  # what the filter itself drops: tests/test_people_filter.py
    np.testing.assert_array_equal(kept.keypoints, everyone.keypoints[keep])
    assert (kept.scores >= pytorch.person_filter.min_score).all()


def test_joints_placed_outside_the_frame_are_not_visible(tiny):
    # 50 x 70 pixels: the network's input is padded on the right, where joints can peak.
    frame = np.ascontiguousarray(tiny[3][:, :70])
    for estimator, raw in zip(_estimators(tiny, "realtime"), _estimators(tiny, "realtime", hide_outside=False)):
        assert estimator.person_filter.hide_outside
        people, everyone = estimator(frame), raw(frame)
        x, y = everyone.keypoints[..., 0], everyone.keypoints[..., 1]
        outside = (x < -0.5) | (x > 69.5) | (y < -0.5) | (y > 49.5)
        assert outside.any() and (everyone.keypoints[..., 2][outside] > 0).any()
        np.testing.assert_array_equal(people.keypoints[..., :2], everyone.keypoints[..., :2])
        np.testing.assert_array_equal(people.keypoints[..., 2], np.where(outside, 0.0, everyone.keypoints[..., 2]))
        np.testing.assert_array_equal(people.scores, everyone.scores)


def test_realtime_preset_single_pass_at_output_resolution(tiny):
    onnx, pytorch = _estimators(tiny, "realtime", min_person_score=None)
    for estimator in (onnx, pytorch):
        assert not estimator.settings.flip and not estimator.settings.project_to_image
        assert estimator.settings.scales == (1.0,) and estimator.limits.max_people == 20
        assert estimator.limits.max_detections == 20
    frame = tiny[3]
    people = onnx(frame)
    assert 0 < len(people) <= 20 and people.keypoints.shape[1:] == (17, 3)
    _assert_same_people(people, pytorch(frame))


def test_colour_order_is_explicit(tiny):
    onnx, _ = _estimators(tiny, "realtime")
    frame = tiny[3]
    _assert_same_people(onnx(frame[:, :, ::-1].copy(), color="rgb"), onnx(frame), atol=0)


@pytest.mark.parametrize("frame,message", [
    (np.zeros((40, 40), np.uint8), r"\[H, W, 3\] uint8"),
    (np.zeros((40, 40, 4), np.uint8), r"\[H, W, 3\] uint8"),
    (np.zeros((40, 40, 3), np.float32), "float32"),
    ([[1, 2, 3]], "list"),
])
def test_a_bad_frame_is_one_clear_error(tiny, frame, message):
    from litepose.estimator import FrameError

    onnx, _ = _estimators(tiny, "realtime")
    with pytest.raises(FrameError, match=message) as info:
        onnx(frame)
    assert "\n" not in str(info.value)
    with pytest.raises(FrameError, match="color"):
        onnx(tiny[3], color="BGRA")


def test_release_settings_without_a_config_are_the_experiment_files():
    from litepose.estimator import release_test_config

    for dataset, path in (("coco", "experiments/coco/mobilenet/mobile.yaml"),
                          ("crowdpose", "experiments/crowd_pose/mobilenet/mobile.yaml")):
        expected = InferenceSettings.from_config(load_config(path), input_size=256)
        assert InferenceSettings.from_config(release_test_config(dataset), input_size=256) == expected


def test_from_checkpoint_loads_the_weights(tiny, tmp_path):
    from litepose import PoseEstimator

    cfg, model, _, frame = tiny
    path = tmp_path / "ckpt.pth"
    torch.save(model.state_dict(), path)
    estimator = PoseEstimator.from_checkpoint(path, CFG, arch=ARCH, preset="realtime", device="cpu")
    assert estimator.settings.input_size == 128  # the architecture's img_size
    estimator = PoseEstimator.from_checkpoint(path, CFG, arch=ARCH, preset="realtime", device="cpu", input_size=SIZE)
    expected = PoseEstimator.from_model(model, cfg, preset="realtime", device="cpu", input_size=SIZE)
    _assert_same_people(estimator(frame), expected(frame), atol=0)


def test_fixed_size_export_letterboxes_any_frame_as_if_padded(tiny, tmp_path):
    """A fixed 64x64 export on a 640x480 frame finds the people a dynamic export finds on the
    same frame padded with black below to 640x640 (the canvas the letterbox scales to 64x64),
    in frame pixels: letterboxing is padding, then the export's own size."""
    from litepose import PoseEstimator

    _, model, dynamic_path, _ = tiny
    frame = (np.random.default_rng(1).random((480, 640, 3)) * 255).astype(np.uint8)
    fixed_path = tmp_path / "fixed.onnx"
    fixed_path.write_bytes(export_onnx(fuse_bn(model), SIZE))
    for preset in ("accurate", "realtime"):
        # hide_outside off: joints below the frame lie inside the padded canvas
        fixed = PoseEstimator.from_onnx(fixed_path, dataset="coco", preset=preset, max_people=20,
                                        min_person_score=None, person_nms=None, hide_outside=False)
        assert fixed.settings.input_size == SIZE and fixed.network.fixed_hw == (SIZE, SIZE)
        dynamic = PoseEstimator.from_onnx(dynamic_path, dataset="coco", input_size=SIZE, preset=preset, max_people=20,
                                          min_person_score=None, person_nms=None, hide_outside=False)
        padded = np.zeros((640, 640, 3), np.uint8)
        padded[:480] = frame
        people = fixed(frame)
        assert len(people) > 0
        _assert_same_people(people, dynamic(padded))


def test_from_onnx_names_what_is_missing_or_wrong(tiny, tmp_path):
    from litepose import PoseEstimator
    from litepose.errors import LitePoseError

    with pytest.raises(LitePoseError, match="dynamic input size and no LitePose metadata: give input_size="):
        PoseEstimator.from_onnx(tiny[2], dataset="coco")
    with pytest.raises(LitePoseError, match="not found"):
        PoseEstimator.from_onnx(tmp_path / "missing.onnx", input_size=SIZE)
    with pytest.raises(LitePoseError, match="preset"):
        PoseEstimator.from_onnx(tiny[2], input_size=SIZE, preset="fast")


def test_onnx_estimator_runs_without_torch_and_matches_pytorch(tiny, tmp_path):
    """In a fresh interpreter where importing torch fails, the ONNX estimator runs, and its
    people equal the PyTorch backend's in this process."""
    _, _, path, frame = tiny
    np.save(tmp_path / "frame.npy", frame)
    script = textwrap.dedent(f"""
        import json, sys
        import importlib.abc

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
                return None

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from litepose import PoseEstimator

        estimator = PoseEstimator.from_onnx({str(path)!r}, dataset="coco", input_size={SIZE}, preset="realtime",
                                            threads=1)
        people = estimator(np.load({str(tmp_path / "frame.npy")!r}), color="bgr")
        assert "torch" not in sys.modules
        print(json.dumps({{"keypoints": people.keypoints.tolist(), "scores": people.scores.tolist()}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = _estimators(tiny, "realtime")[1](frame)
    actual = dataclasses.make_dataclass("P", ["keypoints", "scores"])(np.array(result["keypoints"]).reshape(-1, 17, 3),
                                                                      np.array(result["scores"]))
    _assert_same_people(actual, expected)


def test_import_litepose_stays_light():
    code = "import sys, litepose; print(sorted(m for m in ('torch', 'cv2', 'litepose.estimator') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "ncnn", "torchscript",
                                 pytest.param("tflite", marks=pytest.mark.slow)])  # LiteRT's conversion takes long
def test_from_exported_needs_only_the_path_and_finds_pytorchs_people(tiny, tmp_path, fmt):
    """Format from the file, dataset, joints, input size and test settings from the export's
    metadata: ``from_exported(path)`` equals the PyTorch estimator built from the config. A
    fixed-size export (TFLite) on a square frame: letterboxing it is the dynamic resize."""
    from litepose import PoseEstimator
    from litepose.deploy.formats import DYNAMIC_FORMATS, SUFFIXES, available, export_checked

    if not available(fmt):
        pytest.skip(f"the {fmt} runtime is not installed (pip install -e .[export])")
    cfg, model, _, frame = tiny
    if fmt not in DYNAMIC_FORMATS:
        frame = np.ascontiguousarray(frame[:, :50])
    output = tmp_path / f"tiny{SUFFIXES[fmt]}"
    export_checked(fmt, model, output, SIZE, cfg=cfg)
    for preset in ("accurate", "realtime"):
        estimator = PoseEstimator.from_exported(output, preset=preset)
        pytorch = PoseEstimator.from_model(model, cfg, preset=preset, device="cpu", input_size=SIZE)
        assert estimator.backend == {"onnx": "onnxruntime"}.get(fmt, fmt)
        assert estimator.settings == pytorch.settings and estimator.keypoint_info == pytorch.keypoint_info
        assert estimator.limits == pytorch.limits and estimator.person_filter == pytorch.person_filter
        people = estimator(frame)
        assert len(people.scores) > 0  # people were found, so the comparison compared something
        _assert_same_people(people, pytorch(frame))


def test_from_exported_refuses_settings_that_contradict_the_metadata(tiny, tmp_path):
    from litepose import PoseEstimator
    from litepose.deploy.formats import export_checked
    from litepose.errors import LitePoseError

    cfg, model, _, _ = tiny
    output = tmp_path / "tiny.onnx"
    export_checked("onnx", model, output, SIZE, cfg=cfg, dynamic=False)
    with pytest.raises(LitePoseError, match=r"is a coco model \(17 joints\), not crowdpose: leave dataset= out"):
        PoseEstimator.from_exported(output, dataset="crowdpose")
    with pytest.raises(LitePoseError, match=r"takes 64x64 inputs only \(fixed size\), not input_size=128"):
        PoseEstimator.from_exported(output, input_size=128)
    with pytest.raises(LitePoseError, match="format must be one of onnx, openvino, tflite, ncnn, torchscript, coreml, got 'keras'"):
        PoseEstimator.from_exported(output, format="keras")
    checkpoint = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), checkpoint)
    with pytest.raises(LitePoseError, match="is not an exported model"):
        PoseEstimator.from_exported(checkpoint)
