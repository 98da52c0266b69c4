"""benchmarks/benchmark_e2e.py: frames per second and per-stage times, end to end, on a tiny model."""

import json

import pytest
import torch

from benchmarks import benchmark_e2e, estimator_ap


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from litepose.config import load_config
    from litepose.models import build_model

    torch.manual_seed(0)
    model = build_model(load_config("experiments/synthetic/quickstart.yaml"), "mobile_configs/quickstart.json")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save(model.state_dict(), path)
    return path


def test_end_to_end_benchmark_reports_stages_per_backend_and_thread_count(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "e2e.json"
    threads = torch.get_num_threads()
    try:
        rows = benchmark_e2e.main(["--models", "none", "--checkpoint", str(tiny_checkpoint), "--cfg",
                                   "experiments/synthetic/quickstart.yaml", "--arch", "mobile_configs/quickstart.json",
                                   "--input-size", "64", "--frames", "3", "--repeat", "2", "--frame-size", "96x64",
                                   "--threads", "1", "2", "--no-progress", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert [(r["backend"], r["threads"]) for r in rows] == [("onnx", 1), ("onnx", 2), ("torch", 1), ("torch", 2)]
    for row in rows:
        assert row["frames"] == 6 and row["fps"] > 0 and row["max_people"] == 20
        assert set(row["stages_ms"]) == {"preprocess", "network", "aggregate", "grouping", "total"}
        assert row["stages_ms"]["network"]["median"] <= row["stages_ms"]["network"]["max"]
    assert "pre+post/network" in capsys.readouterr().out
    assert json.loads(out.read_text())[0]["input_size"] == 64
    capsys.readouterr()
    for argv, message in ((["--frames", "1", "--json", str(out)], "exists"),
                          (["--frames", "1", "--max-people", "-3"], "--max-people must be"),
                          (["--models", "ZZ"], "unknown model 'ZZ'")):
        with pytest.raises(SystemExit) as stopped:
            benchmark_e2e.main(argv)
        err = capsys.readouterr()
        assert stopped.value.code == 2 and message in err.err and err.out == ""   # before any work


def test_disagreeing_passes_are_flagged():
    fast = {s: [0.010] * 4 for s in benchmark_e2e.STAGES + ("total",)}
    slow = {s: [0.020] * 4 for s in benchmark_e2e.STAGES + ("total",)}
    assert benchmark_e2e.summarise([fast, slow])["warning"].startswith("passes disagree")
    assert benchmark_e2e.summarise([fast, fast])["warning"] is None


def test_estimator_ap_tool_evaluates_every_variant(tiny_checkpoint, synthetic_root, tmp_path, capsys):
    out = tmp_path / "ap.json"
    code = estimator_ap.main(["--cfg", "experiments/synthetic/quickstart.yaml", "TEST.MODEL_FILE", str(tiny_checkpoint),
                              "DATASET.ROOT", str(synthetic_root), "DEVICE", "cpu", "--input-size", "64", "--limit", "2",
                              "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows][0] == "accurate" and len(rows) == len(estimator_ap.VARIANTS)
    assert rows[0]["max_people"] is None and rows[-1]["max_people"] == 20 and rows[-1]["max_detections"] == 20
    assert all(0.0 <= r["metrics"]["AP"] <= 1.0 or r["metrics"]["AP"] == -1 for r in rows)
    assert "realtime" in capsys.readouterr().out
    assert rows[0]["min_person_score"] is None and rows[-1]["min_person_score"] == 0.2

    sweep = tmp_path / "sweep.json"
    code = estimator_ap.main(["--cfg", "experiments/synthetic/quickstart.yaml", "TEST.MODEL_FILE", str(tiny_checkpoint),
                              "DATASET.ROOT", str(synthetic_root), "DEVICE", "cpu", "--input-size", "64", "--limit", "2",
                              "--sweep-filter", "--min-scores", "none,0.5", "--nms-oks", "none,0.8", "--json", str(sweep)])
    assert code == 0
    grid = json.loads(sweep.read_text())
    assert [(r["preset"], r["min_person_score"], r["person_nms"]) for r in grid][:4] == [
        ("accurate", None, None), ("accurate", None, 0.8), ("accurate", 0.5, None), ("accurate", 0.5, 0.8)]
    assert len(grid) == 8
    # No filter is the unfiltered variant's AP; filters never return more people.
    assert grid[0]["metrics"]["AP"] == rows[0]["metrics"]["AP"]
    assert all(r["people_per_image"] <= grid[0]["people_per_image"] for r in grid[:4])


def test_ctrl_c_exits_130_in_one_line_and_keeps_the_finished_rows(tiny_checkpoint, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "e2e.json"
    configurations = 200  # short ones: the run is interrupted after the first, long before the last
    argv = [sys.executable, "-m", "benchmarks.benchmark_e2e", "--models", "none", "--checkpoint", str(tiny_checkpoint),
            "--cfg", "experiments/synthetic/quickstart.yaml", "--arch", "mobile_configs/quickstart.json",
            "--input-size", "64", "--frame-size", "96x64", "--backends", "torch", "--frames", "3", "--repeat", "1",
            "--no-progress", "--json", str(out), "--threads", *["1"] * configurations]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        header, first = process.stdout.readline(), process.stdout.readline()
        assert first.startswith("tiny.pth"), process.stderr.read()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    printed = [first] + stdout.splitlines()
    assert process.returncode == 130
    assert stderr.strip().splitlines() == [f"interrupted: {len(printed)} finished row(s) written to {out}"]
    rows = json.loads(out.read_text())
    assert 1 <= len(rows) == len(printed) < configurations  # every printed row is kept, and only those
    assert all(row["backend"] == "torch" and row["frames"] == 3 for row in rows)
