"""The end-to-end comparison against YOLO-pose and RTMO (benchmarks/compare_alternatives.py and
benchmarks/alternatives.py): its frames, the outputs drawn at annotated people, LitePose's rows
through the project's PoseEstimator, the table and the plot. Timings are never asserted."""

import importlib.util
import json

import numpy as np
import pytest

from conftest import REPO, SHARED

alternatives = pytest.importorskip("benchmarks.alternatives")
HAS_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None


def crowd(people=3, seed=1):
    image, keypoints, boxes = alternatives.crowd_frame(np.random.default_rng(seed), people)
    return alternatives.Frame("crowd", image, keypoints, boxes)


def test_crowd_frames_are_640x480_bgr_with_every_person_annotated():
    frame = crowd(people=7)
    assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
    assert frame.keypoints.shape == (7, 17, 3) and frame.boxes.shape == (7, 4)
    inside = frame.keypoints[:, :, 2] > 0
    points = frame.keypoints[inside]
    assert inside.any(1).all()
    assert (points[:, 0] >= 0).all() and (points[:, 0] < 640).all() and (points[:, 1] < 480).all()


def test_photos_are_resized_with_their_annotations():
    if not (SHARED / "data" / "coco_mini").is_dir():
        pytest.skip("../shared/data/coco_mini is absent")
    frames = alternatives.comparison_frames(str(SHARED / "data"), crowds=1)
    photos = [f for f in frames if f.name.startswith("photo")]
    assert len(photos) == 4 and len(frames) == 5
    assert all(f.image.shape == (480, 640, 3) for f in frames)
    # 000000000785.jpg is 640x425 with one person: x unchanged, y scaled by 480 / 425
    data = json.loads((SHARED / "data" / "coco_mini" / "person_keypoints_mini.json").read_text())
    ann = next(a for a in data["annotations"] if a["image_id"] == 785)
    first = photos[0]
    assert first.name.endswith("000000000785.jpg") and len(first.keypoints) == 1
    x, y, w, h = ann["bbox"]
    assert np.allclose(first.boxes[0], (x, y * 480 / 425, x + w, (y + h) * 480 / 425), atol=1e-3)
    expected = np.asarray(ann["keypoints"], np.float32).reshape(17, 3) * (1, 480 / 425, 1)
    assert np.allclose(first.keypoints[0], expected, atol=1e-3)


def test_no_frames_at_all_is_one_clear_error(tmp_path):
    with pytest.raises(alternatives.CompareError, match="no frames"):
        alternatives.comparison_frames(str(tmp_path), crowds=0)


def test_yolo_outputs_fire_only_inside_annotated_people():
    frame = crowd(people=4)
    outputs = alternatives.yolo_outputs_at_people(frame, (480, 640), np.random.default_rng(0))
    assert outputs.shape == (1, 56, 80 * 60 + 40 * 30 + 20 * 15)
    scores = outputs[0, 4]
    firing = np.flatnonzero(scores >= 0.25)
    assert 4 <= len(firing) <= 4 * 3 * alternatives.YOLO_POSITIVES
    assert scores[scores < 0.25].max() < 0.05
    centres = outputs[0, :2, firing]  # [n, 2]: the advanced indices come first
    for x, y in centres:  # every firing anchor's box is centred on an annotated person
        assert any(x0 - 0.2 * (x1 - x0) <= x <= x1 + 0.2 * (x1 - x0) and y0 - 0.2 * (y1 - y0) <= y <= y1 + 0.2 * (y1 - y0)
                   for x0, y0, x1, y1 in frame.boxes)


@pytest.mark.skipif(not HAS_ULTRALYTICS, reason="ultralytics is not installed")
def test_ultralytics_nms_keeps_about_one_box_per_annotated_person():
    import torch
    from ultralytics.utils import nms

    frame = crowd(people=3, seed=4)
    outputs = alternatives.yolo_outputs_at_people(frame, (480, 640), np.random.default_rng(0))
    kept = nms.non_max_suppression(torch.from_numpy(outputs), 0.25, 0.7, nc=1)[0]
    assert 3 <= len(kept) <= 6


@pytest.fixture(scope="module")
def xs_export():
    pytest.importorskip("onnxruntime")
    return alternatives.litepose_export("XS", str(REPO))


def test_litepose_rows_time_three_stages_and_find_the_annotated_people(xs_export):
    data, size, gmacs, cfg = xs_export
    assert size == 256 and 1.1 < gmacs < 1.25  # litepose_facts.md: 1.223 G with BN, which folding removes
    frames = [crowd(people=3, seed=2), crowd(people=2, seed=3)]
    row = alternatives.LitePoseRow("XS", "realtime", data, size, gmacs, cfg, threads=1)
    alternatives.time_rows([row], frames, rounds=2, warmup=1, progress=False)
    assert set(row.samples) == {"random", "annotated"}
    for values in row.samples.values():
        assert len(values) == 2 and all(len(v) == 3 and min(v) >= 0 for v in values)
    # same network call for both kinds of outputs; perfect maps give the annotated people back
    assert [v[1] for v in row.samples["random"]] == [v[1] for v in row.samples["annotated"]]
    row.network.replacement = row.rendered[0]
    people = row.estimator(frames[0].image)
    assert len(people) == 3
    found = np.sort(people.keypoints[:, 0, 0])
    assert np.allclose(found, np.sort(frames[0].keypoints[:, 0, 0]), atol=4)


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
def test_openvino_rows_run_the_same_export_and_find_the_same_people(xs_export):
    data, size, gmacs, cfg = xs_export
    frame = crowd(people=2, seed=3)
    rows = [alternatives.LitePoseRow("XS", "realtime", data, size, gmacs, cfg, threads=1) for _ in range(2)]
    alternatives.use_openvino(rows[1], data, threads=1)
    assert rows[1].label.endswith("(OpenVINO)") and type(rows[1].network.inner.session).__name__ == "OpenVinoSession"
    onnx, openvino = (row.estimator(frame.image) for row in rows)
    assert len(onnx) == len(openvino) > 0
    np.testing.assert_allclose(openvino.keypoints[..., :2], onnx.keypoints[..., :2], atol=0.05)


def test_table_and_plot_say_the_published_ap_and_its_protocol(xs_export, tmp_path):
    data, size, gmacs, cfg = xs_export
    rows = [alternatives.LitePoseRow("XS", preset, data, size, gmacs, cfg, threads=1) for preset in ("accurate", "realtime")]
    for row in rows:
        row.record("annotated", (0.001, 0.010, 0.002))
        row.record("annotated", (0.001, 0.012, 0.004))
    results = [{"row": row, "threads": 1} for row in rows]
    table = alternatives.markdown(results, "annotated")
    assert "| LitePose-XS accurate (flip) | 1 | 256 | 2.31 | 40.6 (flip test" in table
    assert "| LitePose-XS realtime (no flip) | 1 | 256 | 1.16 | under 40.6 (published with the flip test only)" in table
    assert "| 11.0 | 1.0 | 3.0 | 15.0 |" in table  # medians of network, pre, post, total
    alternatives.plot(results, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000
    # --from-json: a finished run's table again, from its JSON
    again = alternatives.from_json(json.loads(json.dumps(alternatives.to_json(results))))
    assert alternatives.markdown(again, "annotated") == table


def test_cli_rejects_a_bad_round_count_with_one_line(capsys):
    from benchmarks import compare_alternatives

    with pytest.raises(SystemExit) as exit_info:
        compare_alternatives.main(["--output-dir", "unused", "--rounds", "0"])
    assert exit_info.value.code == 2
    assert "argument --rounds: must be between 1 and 100000, got 0" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ULTRALYTICS, reason="ultralytics is not installed")
def test_yolo_row_runs_ultralytics_own_pipeline_offline(tmp_path):
    import os

    path, gmacs = alternatives.yolo_export("yolo11n-pose", str(tmp_path))
    assert os.environ.get("YOLO_OFFLINE") == "1" and 3.3 < gmacs < 4.0
    frames = [crowd(people=3, seed=4)]
    row = alternatives.YoloRow("yolo11n-pose", path, gmacs, 1, frames)
    alternatives.time_rows([row], frames, rounds=1, warmup=0, progress=False)
    assert set(row.samples) == {"random", "annotated", "dense"}
