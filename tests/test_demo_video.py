"""tools/demo.py on video (litepose.live): a generated clip through an ONNX model, headless, to a
video and per-frame JSON with track ids; outputs never onto the input; the image-folder mode."""

import json

import cv2
import numpy as np
import pytest
import torch

from helpers import load_script

demo = load_script("tools/demo.py")

from litepose.errors import DataError, OutputError  # noqa: E402

SIZE = 64


def realistic_weights_(model, size):
    from litepose.deploy.latency import realistic_weights_ as weights

    return weights(model, size)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from litepose.config import load_config
    from litepose.deploy import export_onnx, fuse_bn
    from litepose.models import build_model

    torch.manual_seed(0)
    model = realistic_weights_(build_model(load_config("experiments/synthetic/quickstart.yaml"),
                                           "mobile_configs/quickstart.json").eval(), SIZE)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    path.write_bytes(export_onnx(fuse_bn(model), SIZE, dynamic=True))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Six frames of two synthetic figures walking over a textured background."""
    from litepose.data.synthetic import draw_background, draw_person, sample_person

    rng = np.random.default_rng(0)
    background = draw_background(rng, 96, 72)
    people = [sample_person(rng, 50, (30, 50)), sample_person(rng, 45, (70, 48))]
    path = tmp_path_factory.mktemp("video") / "walk.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 72))
    for t in range(6):
        canvas = background.copy()
        for (joints, u), dx in zip(people, (2 * t, -2 * t)):
            draw_person(canvas, np.zeros((72, 96), np.uint8), joints + (dx, 0), u, np.random.default_rng(1))
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _frame_count(path):
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return count


def test_video_to_video_and_json_headless(onnx_model, clip, tmp_path, capsys):
    before = clip.read_bytes()
    out, people = tmp_path / "drawn.mp4", tmp_path / "people.json"
    argv = ["--onnx", str(onnx_model), "--input-size", str(SIZE), "--preset", "realtime", "--input", str(clip),
            "--output", str(out), "--json", str(people), "--no-show"]
    assert demo.main(argv) == 0
    assert _frame_count(out) == 6 and clip.read_bytes() == before
    records = json.loads(people.read_text())
    assert {r["frame"] for r in records} <= set(range(6)) and records
    for record in records:
        assert set(record) == {"frame", "image_id", "category_id", "keypoints", "score", "track_id"}
        assert len(record["keypoints"]) == 17 * 3 and record["track_id"] >= -1
    assert any(record["track_id"] >= 0 for record in records)
    assert "processed 6 frames" in capsys.readouterr().out
    # Existing outputs are kept unless --force; --max-frames stops early.
    with pytest.raises(OutputError, match="already exists"):
        demo.main(argv)
    assert demo.main(argv + ["--force", "--max-frames", "3", "--no-track"]) == 0
    assert _frame_count(out) == 3
    records = json.loads(people.read_text())
    assert all(record["track_id"] == -1 for record in records)


def test_video_into_a_folder_keeps_the_old_naming(onnx_model, clip, tmp_path):
    assert demo.main(["--onnx", str(onnx_model), "--input-size", str(SIZE), "--input", str(clip), "--output",
                      str(tmp_path / "out"), "--no-show", "--max-frames", "2"]) == 0
    assert _frame_count(tmp_path / "out" / "walk_pose.mp4") == 2
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["walk_pose.mp4"]  # no partial file left


def test_never_onto_the_input_and_clear_errors(onnx_model, clip, tmp_path):
    common = ["--onnx", str(onnx_model), "--input-size", str(SIZE), "--no-show"]
    before = clip.read_bytes()
    with pytest.raises(OutputError, match="is the input"):
        demo.main(common + ["--input", str(clip), "--output", str(clip), "--force"])
    with pytest.raises(OutputError, match="is the input"):
        demo.main(common + ["--input", str(clip), "--json", str(clip), "--output", str(tmp_path / "x.mp4"), "--force"])
    assert clip.read_bytes() == before
    with pytest.raises(DataError, match="cannot open camera: 7"):
        demo.main(common + ["--input", "7", "--json", str(tmp_path / "p.json")])
    assert not (tmp_path / "p.json").exists()
    with pytest.raises(DataError, match="frames of"):  # the frame-size guard runs before decoding
        from litepose.live import run_video
        from litepose import PoseEstimator

        run_video(PoseEstimator.from_onnx(onnx_model, input_size=SIZE), str(clip), show=False, progress=False,
                  frame_problem=lambda wh: f"{wh[0]}x{wh[1]} refused")


def test_image_folder_mode_still_works(onnx_model, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.jpg"), np.full((40, 50, 3), 90, np.uint8))
    assert demo.main(["--onnx", str(onnx_model), "--input-size", str(SIZE), "--input", str(photos), "--output",
                      str(tmp_path / "drawn")]) == 0
    assert cv2.imread(str(tmp_path / "drawn" / "a.jpg")).shape == (40, 50, 3)
    from litepose.errors import ConfigError

    with pytest.raises(ConfigError, match="--output is needed"):
        demo.main(["--onnx", str(onnx_model), "--input-size", str(SIZE), "--input", str(photos)])


def test_display_detection_and_the_frame_rate_overlay(monkeypatch):
    from litepose import live

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(live.sys, "platform", "linux")
    assert live.display_available() is False
    canvas = np.zeros((60, 120, 3), np.uint8)
    assert live.draw_fps(canvas, 29.97).any()
    assert [live.source_kind(s) for s in ("0", "rtsp://cam/1", "clip.mp4")] == ["camera", "stream", "file"]


def test_demo_prints_the_people_it_draws_after_the_person_filter(onnx_model, clip, tmp_path, capsys):
    from litepose import PoseEstimator
    from litepose.utils.vis import drawn_count

    capture = cv2.VideoCapture(str(clip))
    ok, frame = capture.read()
    capture.release()
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "walk.png"), frame)
    frame = cv2.imread(str(photos / "walk.png"))
    counts = {}
    for name, options in (("preset", []), ("off", ["--min-person-score", "none", "--person-nms", "none"]),
                          ("strict", ["--min-person-score", "0.5"])):
        capsys.readouterr()
        assert demo.main(["--onnx", str(onnx_model), "--input-size", str(SIZE), "--preset", "accurate", "--input",
                          str(photos), "--output", str(tmp_path / name), *options]) == 0
        line = [text for text in capsys.readouterr().out.splitlines() if "people per image" in text][0]
        counts[name] = float(line.split()[0])
    overrides = {"preset": {}, "off": {"min_person_score": None, "person_nms": None}, "strict": {"min_person_score": 0.5}}
    for name, options in overrides.items():
        people = PoseEstimator.from_onnx(onnx_model, input_size=SIZE, preset="accurate", **options)(frame)
        assert counts[name] == drawn_count(people.keypoints, 0.05), name
    assert counts["off"] > counts["preset"] >= counts["strict"]
    with pytest.raises(SystemExit):
        demo.main(["--onnx", str(onnx_model), "--input", str(photos), "--output", str(tmp_path / "x"),
                   "--person-nms", "many"])
    with pytest.raises(SystemExit):
        demo.main(["--onnx", str(tmp_path / "absent.onnx"), "--input", str(photos), "--output", str(tmp_path / "y"),
                   "--person-nms", "1.5"])  # refused by its range before anything is opened or written
    assert "--person-nms: must be between 0 and 1, got 1.5 (or 'none')" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_estimator_ap_refuses_an_out_of_range_threshold_before_any_work(tmp_path):
    from benchmarks import estimator_ap
    from litepose.errors import ConfigError

    for option, value in (("--nms-oks", "none,2"), ("--min-scores", "0.1,nan"), ("--min-scores", "low")):
        with pytest.raises(ConfigError, match="person|neither a number"):
            estimator_ap.main(["--cfg", "experiments/synthetic/quickstart.yaml", "TEST.MODEL_FILE",
                               str(tmp_path / "absent.pth"), "--sweep-filter", option, value])
