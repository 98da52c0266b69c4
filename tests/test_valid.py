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
