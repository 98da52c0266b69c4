"""benchmarks/device_check.py (issue 17), through its ``--dry-run`` on the CPU: the report has every
section with real figures, a failed check makes the exit status non-zero, bad input is one line."""

import math
import re
import subprocess
import sys

import pytest
import torch

from benchmarks import device_check
from conftest import REPO
from litepose.data.build import available_cores
from litepose.errors import LitePoseError


@pytest.fixture(scope="module")
def tool():
    return device_check


@pytest.fixture(scope="module")
def dry_run(tool, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "device_check.md"
    code = tool.main(["--dry-run", "--no-progress", "--output", str(path)])
    return code, path.read_text()


def _section(report, title):
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", report, re.S | re.M)
    assert match, f"no section '{title}' in the report:\n{report}"
    return match.group(1)


def _tables(text):
    """Every Markdown table in ``text`` as a list of {header: cell} rows."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, (c.strip() for c in row.strip("|").split("|")))))
            tables.append(rows)
    return tables


def _median_p90(cell):
    median, p90 = (float(v) for v in cell.split(" / "))
    return median, p90


def test_dry_run_passes_and_says_it_is_not_gpu_figures(dry_run):
    code, report = dry_run
    assert code == 0, report
    assert "dry run on CPU: figures are not GPU figures" in report
    assert "Result: all checks passed." in report and "Incomplete" not in report
    summary = _tables(_section(report, "Summary"))[0]
    assert [r["check"] for r in summary] == ["CUDA tests", "Training throughput", "Data loader throughput",
                                             "Inference latency"]
    assert all(r["status"] == "ok" and r["errors"] == "0" for r in summary), summary


def test_cuda_tests_are_listed_and_skipped_with_the_reason_on_the_cpu(dry_run):
    rows = _tables(_section(dry_run[1], "CUDA tests"))[0]
    names = {r["test"].split("[")[0] for r in rows}
    assert {"test_amp_step_runs_in_float16_and_an_overflow_is_skipped_with_a_lower_scale",
            "test_sync_batchnorm_under_torchrun_with_nccl", "test_checkpoint_saved_on_cuda_resumes_on_cuda",
            "test_inference_on_cuda_equals_the_cpu", "test_model_and_training_targets_on_the_device"} <= names
    assert all(r["outcome"] == "skipped" and "needs a CUDA GPU" in r["detail"] for r in rows), rows


def test_every_training_row_is_a_real_step_with_a_positive_rate(dry_run):
    rows = _tables(_section(dry_run[1], "Training throughput"))[0]
    assert [(r["model"], r["AMP"]) for r in rows] == [("supernet", "off"), ("supernet", "bfloat16"),
                                                      ("XS", "off"), ("XS", "bfloat16")]
    for r in rows:
        assert r["input"] == "64" and r["batch"] == "2" and r["steps"] == "2"
        assert float(r["images/s"]) > 0 and float(r["ms/step"]) > 0
        assert math.isfinite(float(r["loss"])) and float(r["loss"]) > 0  # the project's loss was computed
        assert r["peak memory (MiB)"] == "n/a"  # CPU: no CUDA allocator to ask


def test_loader_rows_use_one_worker_per_core_with_both_target_placements(dry_run):
    rows = _tables(_section(dry_run[1], "Data loader throughput"))[0]
    assert [r["targets"] for r in rows] == ["cpu", "workers"]  # on the device (here the CPU), in the workers
    for row in rows:
        assert row["input"] == "64" and int(row["workers"]) == available_cores()
        assert float(row["images/s"]) > 0


def test_latency_rows_have_positive_times_and_agree_with_float32(dry_run):
    latency, agreement = _tables(_section(dry_run[1], "Inference latency"))
    assert [r["model"] for r in latency] == ["LitePose-XS", "EfficientHRNet-H-1"]
    for r in latency:
        for column in ("PyTorch float32", "PyTorch float16", "ONNX Runtime CPU EP (dry-run stand-in)"):
            median, p90 = _median_p90(r[column])
            assert 0 < median <= p90, (r["model"], column)
        assert r["ONNX Runtime TensorRT EP"] == "n/a"
    assert "TensorRT EP skipped: TensorRT needs a CUDA device" in dry_run[1]
    for r in agreement:
        assert float(r["ONNX Runtime CPU EP (dry-run stand-in)"]) < 1e-3  # the BN-folded export, float32
        assert float(r["PyTorch float16"]) < 0.1


def test_a_check_that_breaks_fails_the_run_and_is_named(tool, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("loader broken on purpose")

    monkeypatch.setattr(tool, "check_loader", broken)
    path = tmp_path / "report.md"
    assert tool.main(["--dry-run", "--no-progress", "--checks", "loader", "--output", str(path)]) == 1
    report = path.read_text()
    assert "| Data loader throughput | failed |" in report
    assert "RuntimeError: loader broken on purpose" in report
    assert "Result: FAILED: Data loader throughput failed." in report


def test_one_failed_measurement_fails_its_check_and_the_others_still_run(tool, tmp_path, monkeypatch):
    measured = []

    def measure(plan, model_name, amp, data_root, workdir):
        if model_name == "supernet":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        measured.append((model_name, amp))
        return dict(model=model_name, input="64", batch=2, amp="bfloat16" if amp else "off", steps=2,
                    images_per_s=5.0, ms_per_step=400.0, peak_mib=None, loss=0.3, loss_scale=None)

    monkeypatch.setattr(tool, "measure_training", measure)
    path = tmp_path / "report.md"
    assert tool.main(["--dry-run", "--no-progress", "--checks", "training", "--output", str(path)]) == 1
    report = path.read_text()
    assert measured == [("XS", False), ("XS", True)]
    assert "- supernet, AMP off: OutOfMemoryError: CUDA out of memory (simulated)" in report
    assert len(_tables(_section(report, "Training throughput"))[0]) == 2


def test_time_budget_leaves_measurements_out_and_says_so(tool, tmp_path):
    path = tmp_path / "report.md"
    code = tool.main(["--dry-run", "--no-progress", "--checks", "latency", "--time-budget", "1e-9",
                      "--output", str(path)])
    report = path.read_text()
    assert code == 1
    assert "LitePose-XS: not measured, --time-budget 0 s was spent" in report
    assert "| Inference latency | incomplete |" in report


def test_an_existing_report_is_kept_without_force(tool, tmp_path):
    path = tmp_path / "report.md"
    path.write_text("previous figures")
    with pytest.raises(LitePoseError, match=r"already exists \(pass --force to overwrite it\)"):
        tool.main(["--dry-run", "--output", str(path)])
    assert path.read_text() == "previous figures"


@pytest.mark.parametrize("args, message", [
    (["--latency-models", "W99"], "unknown model 'W99'"),
    (["--data-root", str(REPO / "README.md")], "--data-root is not a folder"),
])
def test_bad_input_is_one_line_error(tool, tmp_path, args, message):
    with pytest.raises(LitePoseError, match=re.escape(message)):
        tool.main(["--dry-run", "--output", str(tmp_path / "r.md"), *args])
    assert not (tmp_path / "r.md").exists()


def test_bad_sizes_are_usage_errors(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--dry-run", "--output", str(tmp_path / "r.md"), "--loader-sizes", "100"])
    assert exit_info.value.code == 2
    assert "argument --loader-sizes: must be a multiple of 32 between 32 and 2048, got 100" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_without_a_gpu_the_real_run_stops_at_once(tool, tmp_path):
    with pytest.raises(LitePoseError, match="no CUDA GPU here: .*--dry-run"):
        tool.main(["--output", str(tmp_path / "r.md")])
    assert not (tmp_path / "r.md").exists()


def test_help_shows_the_defaults(tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("--dry-run", "(default: 20; with --dry-run: 2)", "(default: 420)",
                     "(default: supernet XS S M L; with --dry-run: supernet XS)"):
        assert expected in text


def test_tools_device_check_runs_the_benchmark_from_any_folder(tmp_path):
    """``python tools/device_check.py``, the path the project brief names, is an alias of
    ``python -m benchmarks.device_check``: same arguments, same one-line error and exit status."""
    existing = tmp_path / "report.md"
    existing.write_text("previous figures")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "device_check.py"), "--dry-run", "--output",
                           "report.md"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == "error: --output report.md already exists (pass --force to overwrite it)"
    assert existing.read_text() == "previous figures"
