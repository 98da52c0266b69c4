"""Evaluation: the official COCO / CrowdPose numbers, results files, the decoding ceiling."""

import copy
import json

import numpy as np
import pytest

from conftest import REPO, SHARED
from helpers import run_script_in_process
from litepose.config import load_config
from litepose.data.keypoints import COCO, CROWDPOSE
from litepose.errors import DataError
from litepose.evaluation import (COCO_COLUMNS, CROWDPOSE_COLUMNS, evaluate_keypoints, load_results, metrics_table,
                            write_results)
from litepose.evaluation.oracle import oracle_evaluate
from reference_crowdpose_eval import reference_crowdpose_eval

COCO_ANN = SHARED / "data" / "coco_mini" / "person_keypoints_mini.json"
CROWD_ANN = SHARED / "data" / "crowdpose_mini" / "crowdpose_mini.json"
needs_fixtures = pytest.mark.skipif(not CROWD_ANN.is_file(), reason="../shared/data fixtures absent")


def perfect_results(ann_file, shift=0.0):
    """Every annotated person as a detection with score 1, moved ``shift`` pixels right."""
    data = json.loads(ann_file.read_text())
    results = []
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) > 0:
            keypoints = np.array(ann["keypoints"], float).reshape(-1, 3)
            keypoints[:, 0] += shift
            keypoints[:, 2] = 1.0
            results.append({"image_id": ann["image_id"], "category_id": 1,
                            "keypoints": keypoints.ravel().tolist(), "score": 1.0})
    return results


@pytest.fixture
def run_tool(capsys):
    """``python tools/eval_results.py ARGS`` in the repository, run in this process (tests/helpers.py)."""
    return lambda *args: run_script_in_process("tools/eval_results.py", args, capsys)


@needs_fixtures
@pytest.mark.parametrize("dataset,ann", [("coco", COCO_ANN), ("crowdpose", CROWD_ANN)])
def test_eval_results_tool_perfect_is_one_and_shifted_is_lower(tmp_path, dataset, ann, run_tool):
    perfect, shifted = tmp_path / "perfect.json", tmp_path / "shifted.json"
    write_results(perfect, perfect_results(ann))
    write_results(shifted, perfect_results(ann, shift=6.0))
    done = run_tool("--gt", ann, "--results", perfect, "--dataset", dataset, "--output", tmp_path / "table.md")
    assert done.returncode == 0, done.stderr
    header, _, values = done.stdout.splitlines()[:3]
    names = [cell.strip() for cell in header.strip("|").split("|")]
    numbers = dict(zip(names, (cell.strip() for cell in values.strip("|").split("|"))))
    assert numbers["AP"] == "1.000" and numbers["AR"] == "1.000"
    assert (tmp_path / "table.md").read_text().splitlines()[0] == header
    lower = evaluate_keypoints(ann, load_results(shifted), dataset)
    assert lower["AP"] < 0.95


@needs_fixtures
def test_crowdpose_table_has_easy_medium_hard_columns():
    metrics = evaluate_keypoints(CROWD_ANN, perfect_results(CROWD_ANN), "crowdpose")
    assert tuple(metrics) == CROWDPOSE_COLUMNS
    assert CROWDPOSE_COLUMNS[-3:] == ("AP (E)", "AP (M)", "AP (H)")
    # Both fixture images have crowdIndex 0.33 / 0.39: medium only; no easy or hard images -> -1, shown n/a.
    assert metrics["AP (M)"] == 1.0 and metrics["AP (E)"] == -1 and metrics["AP (H)"] == -1
    assert "| n/a |" in metrics_table(metrics)
    coco = evaluate_keypoints(COCO_ANN, perfect_results(COCO_ANN), "coco")
    assert tuple(coco) == COCO_COLUMNS and coco["AP (M)"] == 1.0


def synthetic_crowd(seed, crowd_indices=(0.05, 0.15, 0.3, 0.5, 0.85, 0.95)):
    """Ground truth and noisy results with everything the protocol cares about: crowd regions,
    people without visible joints, more than 20 detections, tied scores, zero keypoint scores."""
    rng = np.random.default_rng(seed)
    images, annotations, results = [], [], []
    for i, crowd_index in enumerate(crowd_indices):
        images.append({"id": 100 + i, "file_name": f"{i}.jpg", "width": 640, "height": 480, "crowdIndex": crowd_index})
        for _ in range(rng.integers(0, 6)):
            box = [rng.uniform(0, 500), rng.uniform(0, 350), rng.uniform(20, 140), rng.uniform(40, 130)]
            keypoints = np.zeros((14, 3))
            keypoints[:, 0] = box[0] + rng.uniform(0, box[2], 14)
            keypoints[:, 1] = box[1] + rng.uniform(0, box[3], 14)
            visible = rng.random(14) < rng.choice([0.0, 0.5, 0.9])
            keypoints[:, 2] = np.where(visible, 2, 0)
            keypoints[~visible, :2] = 0
            annotations.append({"id": len(annotations) + 1, "image_id": 100 + i, "category_id": 1,
                                "keypoints": keypoints.ravel().tolist(), "num_keypoints": int(visible.sum()),
                                "bbox": box, "iscrowd": int(rng.random() < 0.1)})
            for _ in range(rng.integers(0, 3)):
                guess = keypoints.copy()
                guess[:, :2] += rng.normal(0, rng.choice([1, 4, 10]), (14, 2))
                guess[:, 2] = rng.random(14) * (rng.random() > 0.2)  # some with all-zero joint scores
                results.append({"image_id": 100 + i, "category_id": 1, "keypoints": guess.ravel().tolist(),
                                "score": float(rng.choice([rng.random(), 0.5]))})
        for _ in range(rng.integers(0, 25)):
            noise = np.stack([rng.uniform(0, 640, 14), rng.uniform(0, 480, 14), rng.random(14)], axis=1)
            results.append({"image_id": 100 + i, "category_id": 1, "keypoints": noise.ravel().tolist(),
                            "score": float(rng.random() * 0.5)})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}, results


@pytest.mark.parametrize("seed", range(8))
def test_crowdpose_numbers_equal_an_independent_statement_of_the_official_api(seed):
    gt, results = synthetic_crowd(seed)
    ours = list(evaluate_keypoints(gt, results, "crowdpose").values())
    np.testing.assert_allclose(ours, reference_crowdpose_eval(gt, results), rtol=0, atol=1e-12)


def test_crowdpose_keeps_detections_whose_joint_scores_are_all_zero():
    gt, _ = synthetic_crowd(0, crowd_indices=(0.5,))
    people = [a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    results = [{"image_id": a["image_id"], "category_id": 1, "score": 0.9,
                "keypoints": [v if i % 3 != 2 else 0.0 for i, v in enumerate(a["keypoints"])]} for a in people]
    assert evaluate_keypoints(gt, results, "crowdpose")["AP"] == 1.0  # the official API counts them


def test_crowdpose_easy_images_are_those_below_crowd_index_point_two():
    """The official API's split (0.2 / 0.8): an image with crowdIndex 0.15 is easy."""
    gt, _ = synthetic_crowd(1, crowd_indices=(0.15, 0.5))
    results = []
    for ann in gt["annotations"]:
        if ann["num_keypoints"] and ann["image_id"] == 100:  # perfect on the 0.15 image only
            results.append({"image_id": 100, "category_id": 1, "keypoints": ann["keypoints"], "score": 1.0})
    metrics = evaluate_keypoints(gt, results, "crowdpose")
    assert metrics["AP (E)"] == 1.0 and metrics["AP (M)"] == 0.0 and metrics["AP (H)"] == -1


def test_a_subset_evaluates_like_a_file_holding_only_that_subset():
    gt, results = synthetic_crowd(2)
    keep = [101, 102, 104]
    restricted = copy.deepcopy(gt)
    restricted["images"] = [i for i in gt["images"] if i["id"] in keep]
    restricted["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    inside = [r for r in results if r["image_id"] in keep]
    assert evaluate_keypoints(gt, results, "crowdpose", image_ids=keep) == evaluate_keypoints(restricted, inside,
                                                                                             "crowdpose")


def test_empty_results_score_zero_and_coco_sigmas_are_pycocotools():
    from pycocotools.cocoeval import Params

    gt, _ = synthetic_crowd(3)
    assert evaluate_keypoints(gt, [], "crowdpose")["AP"] == 0.0
    np.testing.assert_array_equal(COCO.sigmas_array(), Params(iouType="keypoints").kpt_oks_sigmas)
    assert len(CROWDPOSE.sigmas) == 14


def test_bad_results_are_one_clear_error(tmp_path):
    gt, results = synthetic_crowd(4, crowd_indices=(0.5,))
    path = tmp_path / "results.json"
    path.write_text('[{"image_id": 100, ')
    with pytest.raises(DataError, match=r"results\.json: invalid JSON at line 1"):
        load_results(path)
    with pytest.raises(DataError, match="results file not found"):
        load_results(tmp_path / "absent.json")
    path.write_text(json.dumps([{"image_id": 100, "category_id": 1, "keypoints": [1, 2], "score": 1}]))
    with pytest.raises(DataError, match="entry 0 field 'keypoints' must be a list of x, y, score triples"):
        load_results(path)
    path.write_text(json.dumps({"image_id": 100}))
    with pytest.raises(DataError, match="must be a JSON list"):
        load_results(path)
    wrong = [{"image_id": 7, "category_id": 1, "keypoints": [0.0] * 42, "score": 1.0}]
    with pytest.raises(DataError, match="entry 0 has image_id 7, which is not an image of the ground truth"):
        evaluate_keypoints(gt, wrong, "crowdpose")
    wrong[0]["image_id"], wrong[0]["keypoints"] = 100, [0.0] * 51
    with pytest.raises(DataError, match="entry 0 has 17 joints, the ground truth 14"):
        evaluate_keypoints(gt, wrong, "crowdpose")
    del gt["images"][0]["crowdIndex"]
    with pytest.raises(DataError, match="has no 'crowdIndex'"):
        evaluate_keypoints(gt, [], "crowdpose")


def test_eval_results_tool_fails_with_one_line_and_status_2(tmp_path, run_tool):
    (tmp_path / "bad.json").write_text("[{")
    done = run_tool("--gt", tmp_path / "bad.json", "--results", tmp_path / "bad.json", "--dataset", "coco")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: ")
    assert "invalid JSON" in done.stderr


@needs_fixtures
@pytest.mark.parametrize("cfg_file,ann", [("experiments/crowd_pose/mobilenet/mobile.yaml", CROWD_ANN),
                                          ("experiments/coco/mobilenet/mobile.yaml", COCO_ANN)])
def test_decoding_ceiling_on_the_fixtures_reaches_098(cfg_file, ann):
    result = oracle_evaluate(load_config(str(REPO / cfg_file)), ann, input_size=512, progress=False)
    assert result.metrics["AP"] >= 0.98
    assert result.grouping_ms > 0
