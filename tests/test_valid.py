"""valid.py, the evaluation loop behind it, and the demo, end to end on the real fixtures."""

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, SHARED, arch_path
from helpers import run_script_in_process
from litepose.config import load_config
from litepose.evaluation import evaluate
from litepose.models import build_model

CROWD = SHARED / "data" / "crowdpose_mini"
CROWD_CFG = REPO / "experiments" / "crowd_pose" / "mobilenet" / "mobile.yaml"
needs_fixtures = pytest.mark.skipif(not CROWD.is_dir(), reason="../shared/data fixtures absent")
DATA = ["DATASET.TEST_ANN_FILE", str(CROWD / "crowdpose_mini.json"), "DATASET.TEST_IMAGE_DIR", str(CROWD / "images")]


@pytest.fixture(scope="module")
def xs_checkpoint(tmp_path_factory):
    """A randomly initialised XS CrowdPose model's state_dict, as a checkpoint file."""
    torch.manual_seed(0)
    model = build_model(load_config(str(CROWD_CFG)), str(arch_path("XS")))
    path = tmp_path_factory.mktemp("ckpt") / "xs_random.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture
def run(capsys):
    """``python SCRIPT ARGS`` in the repository, run in this process (tests/helpers.py)."""
    return lambda script, *args: run_script_in_process(script, args, capsys)


@needs_fixtures
def test_valid_limit_2_writes_results_and_table_in_the_run_folder(tmp_path, xs_checkpoint, run):
    done = run("valid.py", "--cfg", CROWD_CFG, "--superconfig", arch_path("XS"), "TEST.MODEL_FILE", xs_checkpoint,
               *DATA, "OUTPUT_DIR", tmp_path, "--limit", 2, "--save-vis", 1, "--save-maps",
               "TEST.DETECTION_THRESHOLD", "0.0")  # a random network's heatmaps are weak: keep its peaks
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "crowd_pose_kpt" / "pose_mobilenet" / "mobile-search-XS"  # as training's layout
    results = json.loads((run_dir / "keypoints_crowdpose_mini_results.json").read_text())
    assert results and {r["image_id"] for r in results} <= {103319, 106848}
    assert all(len(r["keypoints"]) == 42 and r["category_id"] == 1 for r in results)
    table = (run_dir / "metrics.md").read_text()
    assert "| Arch | AP | Ap .5 | AP .75 | AR | AR .5 | AR .75 | AP (E) | AP (M) | AP (H) |" in table
    assert "| Arch | AP |" in done.stdout and "ms/image over 2 images: network" in done.stdout
    assert "grouping" in done.stdout
    pictures = sorted(p.name for p in (run_dir / "vis").iterdir())
    assert pictures == ["103319.jpg", "103319_heatmaps.jpg", "103319_tags.jpg"]


@needs_fixtures
def test_a_checkpoint_for_another_architecture_fails_clearly(tmp_path, run):
    torch.manual_seed(0)
    other = tmp_path / "s.pth"
    torch.save(build_model(load_config(str(CROWD_CFG)), str(arch_path("S"))).state_dict(), other)
    done = run("valid.py", "--cfg", CROWD_CFG, "--superconfig", arch_path("XS"), "TEST.MODEL_FILE", other,
               *DATA, "--output-dir", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "does not fit LitePose" in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()
    done = run("valid.py", "--cfg", CROWD_CFG, *DATA)
    assert done.returncode == 2 and "TEST.MODEL_FILE" in done.stderr


@needs_fixtures
def test_evaluate_counts_unreadable_images_and_evaluates_a_subset(tmp_path, xs_checkpoint):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(CROWD / "images" / "103319.jpg", images)
    (images / "106848.jpg").write_bytes(b"not a jpeg")
    cfg = load_config(str(CROWD_CFG), ["DATASET.TEST_ANN_FILE", str(CROWD / "crowdpose_mini.json"),
                                       "DATASET.TEST_IMAGE_DIR", str(images), "DEVICE", "cpu"])
    model = build_model(cfg, str(arch_path("XS")))
    model.load_state_dict(torch.load(xs_checkpoint))
    model.train()
    result = evaluate(cfg, model, progress=False)
    assert result.image_ids == [103319, 106848]
    assert [image_id for image_id, _ in result.unreadable] == [106848]
    assert "cannot decode image" in result.unreadable[0][1]
    assert model.training  # the caller's mode is restored
    assert 0.0 <= result.ap <= 1.0 and set(result.ms_per_image) == {"network", "aggregate", "grouping"}
    subset = evaluate(cfg, model, image_ids=[103319], progress=False)
    assert subset.image_ids == [103319] and not subset.unreadable


@needs_fixtures
def test_demo_draws_a_folder_of_images_and_a_video(tmp_path, xs_checkpoint, run):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (160, 120))
    for value in (0, 120):
        writer.write(np.full((120, 160, 3), value, np.uint8))
    writer.release()
    common = ["--cfg", CROWD_CFG, "--superconfig", arch_path("XS"), "TEST.MODEL_FILE", xs_checkpoint,
              "--input-size", 128, "--output", tmp_path / "out"]
    done = run("tools/demo.py", *common, "--input", CROWD / "images")
    assert done.returncode == 0, done.stderr
    drawn = cv2.imread(str(tmp_path / "out" / "103319.jpg"))
    assert drawn is not None and drawn.shape == (480, 640, 3)
    done = run("tools/demo.py", *common, "--input", video)
    assert done.returncode == 0, done.stderr
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip_pose.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    capture.release()
    done = run("tools/demo.py", *common, "--input", tmp_path / "missing.png")
    assert done.returncode == 2 and "input not found" in done.stderr


# ------------------------------------------------------- one evaluation for every backend
@pytest.fixture(scope="module")
def trained_like(tmp_path_factory):
    """``(cfg, model, checkpoint)``: an XS CrowdPose model whose random weights behave like
    trained ones (deploy.latency.realistic_weights_), so its maps hold people to group."""
    from litepose.deploy.latency import realistic_weights_

    cfg = load_config(str(CROWD_CFG), DATA + ["DEVICE", "cpu", "TEST.DETECTION_THRESHOLD", "0.05"])
    model = realistic_weights_(build_model(cfg, str(arch_path("XS"))), 128, seed=3)
    path = tmp_path_factory.mktemp("ckpt") / "xs_realistic.pth"
    torch.save(model.state_dict(), path)
    return cfg, model, path


def _people(results):
    """``{image_id: [(score, keypoints), ...]}`` of evaluation results, in the order given."""
    found = {}
    for r in results:
        found.setdefault(r["image_id"], []).append((r["score"], np.asarray(r["keypoints"]).reshape(-1, 3)))
    return found


@needs_fixtures
def test_evaluate_returns_the_release_pipelines_people_image_for_image(trained_like):
    from litepose.data.coco_format import read_image
    from litepose.inference import InferenceSettings, predict

    cfg, model, _ = trained_like
    result = evaluate(cfg, model, input_size=128, progress=False)
    settings = InferenceSettings.from_config(cfg, model, 128)
    found = _people(result.results)
    total = 0
    for image_id in result.image_ids:
        expected = predict(model.eval(), read_image(CROWD / "images" / f"{image_id}.jpg"), settings, "cpu")
        people = found.get(image_id, [])
        assert len(people) == len(expected.scores)
        for (score, keypoints), want_score, want in zip(people, expected.scores, expected.keypoints):
            assert score == pytest.approx(want_score, abs=1e-6)
            np.testing.assert_allclose(keypoints[:, :2], want[:, :2], atol=1e-4, rtol=0)
            np.testing.assert_allclose(keypoints[:, 2], want[:, 2], atol=1e-6, rtol=0)
        total += len(people)
    assert total > 0  # people were found, so the comparison compared something
    assert result.backend == "pytorch" and result.nonfinite == 0


@pytest.mark.skipif(__import__("importlib").util.find_spec("onnxruntime") is None, reason="onnxruntime absent")
@needs_fixtures
def test_an_onnx_export_evaluates_to_the_checkpoints_results(trained_like, tmp_path, run):
    from litepose.deploy import export_onnx, fuse_bn
    from litepose.runtime.exported import open_network

    cfg, model, checkpoint = trained_like
    onnx_file = tmp_path / "xs.onnx"
    onnx_file.write_bytes(export_onnx(fuse_bn(model), 128, dynamic=True))
    expected = evaluate(cfg, model, input_size=128, progress=False)
    exported = evaluate(cfg, open_network(onnx_file), input_size=128, progress=False)
    assert exported.backend == "onnxruntime"
    assert abs(exported.ap - expected.ap) <= 1e-3
    assert [len(p) for p in _people(exported.results).values()] == [len(p) for p in _people(expected.results).values()]
    # valid.py takes the export as TEST.MODEL_FILE (told apart from a checkpoint by its content)
    # and gives the checkpoint's table.
    tables = {}
    for name, model_file in (("checkpoint", checkpoint), ("export", onnx_file)):
        done = run("valid.py", "--cfg", CROWD_CFG, "--superconfig", arch_path("XS"), "TEST.MODEL_FILE", model_file,
                   *DATA, "TEST.DETECTION_THRESHOLD", "0.05", "--input-size", 128, "--output-dir", tmp_path / name)
        assert done.returncode == 0, done.stderr
        tables[name] = next(line for line in done.stdout.splitlines() if line.startswith("| pose_mobilenet"))
    assert "backend onnxruntime" in done.stdout
    assert tables["export"] == tables["checkpoint"]


@pytest.mark.skipif(__import__("importlib").util.find_spec("onnxruntime") is None, reason="onnxruntime absent")
@needs_fixtures
def test_a_fixed_size_export_is_evaluated_letterboxed_as_the_estimator_runs_it(trained_like, tmp_path):
    """A fixed-size export (TFLite always, others with --fixed) takes only its own input size:
    evaluate letterboxes each image to it, giving the people that the export's PoseEstimator
    (valid.py's settings: uncapped, unfiltered) finds, instead of refusing the image's size."""
    from litepose import PoseEstimator
    from litepose.data.coco_format import read_image
    from litepose.deploy import export_onnx, fuse_bn
    from litepose.runtime.exported import open_network

    cfg, model, _ = trained_like
    fixed = tmp_path / "fixed.onnx"
    fixed.write_bytes(export_onnx(fuse_bn(model), 128))  # input fixed to 1x3x128x128
    network = open_network(fixed)
    assert network.fixed_hw == (128, 128)
    result = evaluate(cfg, network, progress=False)
    assert result.input_size == 128 and result.nonfinite == 0 and not result.unreadable
    estimator = PoseEstimator.from_exported(fixed, cfg=cfg, max_people=None, max_detections=None,
                                            min_person_score=None, person_nms=None, hide_outside=False)
    found = _people(result.results)
    total = 0
    for image_id in result.image_ids:
        image = read_image(CROWD / "images" / f"{image_id}.jpg")
        assert max(image.shape[:2]) > 128  # the image is letterboxed, not given at its size
        expected = estimator(image, color="rgb")
        people = found.get(image_id, [])
        assert len(people) == len(expected.scores)
        for (score, keypoints), want_score, want in zip(people, expected.scores, expected.keypoints):
            assert score == pytest.approx(want_score, abs=1e-6)
            np.testing.assert_allclose(keypoints, want, atol=1e-4, rtol=0)
        total += len(people)
    assert total > 0


@needs_fixtures
def test_evaluate_counts_the_images_on_which_a_network_gives_nan(trained_like):
    from litepose.runtime.network import Network

    class Broken(Network):
        name = "broken"

        def __call__(self, batch):
            height, width = batch.shape[2] // 4, batch.shape[3] // 4
            return [np.full((len(batch), 28, height, width), np.nan, np.float32),
                    np.full((len(batch), 14, 2 * height, 2 * width), np.nan, np.float32)]

    cfg, _, _ = trained_like
    result = evaluate(cfg, Broken(), input_size=128, progress=False)
    assert result.nonfinite == 2 and result.results == [] and result.backend == "broken"
    from litepose.evaluation import summary_lines

    assert any(line.startswith("warning: the network's outputs were NaN or infinite on 2 of 2 images")
               for line in summary_lines(result))
    with pytest.raises(Exception, match="cannot evaluate a str"):
        evaluate(cfg, "model.onnx", progress=False)


@needs_fixtures
def test_an_export_of_another_dataset_is_one_error_before_any_image(trained_like):
    import types

    from litepose.errors import LitePoseError
    from litepose.runtime.network import Network

    class CocoExport(Network):
        metadata = types.SimpleNamespace(dataset={"num_joints": 17, "name": "coco"}, input_size=128)

        def __call__(self, batch):
            raise AssertionError("no image may run")

    cfg, _, _ = trained_like  # CrowdPose: 14 joints
    with pytest.raises(LitePoseError, match=r"^the export predicts 17 joints \(coco\), the config's test set has 14"):
        evaluate(cfg, CocoExport(), progress=False)
