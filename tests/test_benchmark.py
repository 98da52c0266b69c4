"""benchmarks/benchmark.py and the interleaved timing behind it."""

import json

import pytest
import torch

from benchmarks import benchmark
from helpers import run_script_in_process
from litepose.deploy.latency import Timing, time_interleaved
from litepose.errors import ConfigError


@pytest.fixture
def benchmark_cli(capsys):
    """``python -m benchmarks.benchmark ARGS`` in the repository, run in this process (tests/helpers.py)."""
    return lambda *args: run_script_in_process("benchmarks.benchmark", args, capsys)


def test_benchmark_runs_on_xs_and_writes_table_plot_and_samples(tmp_path, benchmark_cli):
    threads = torch.get_num_threads()
    result = benchmark_cli("--models", "XS", "--repeats", "2", "--warmup", "0", "--device", "cpu",
                           "--threads", "1", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "benchmark.md").read_text()
    assert "Command: `python -m benchmarks.benchmark --models XS --repeats 2" in table
    assert "| model | input | GMACs | params (M) | PyTorch eager | PyTorch, BN folded | ONNX Runtime" in table
    assert "| LitePose-XS | 256 | 1.22 | 1.68 | " in table
    assert "1 PyTorch threads" in table                 # --threads 1 applied to the run ...
    assert torch.get_num_threads() == threads           # ... and put back for the tests after it
    assert (tmp_path / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (entry,) = json.loads((tmp_path / "benchmark.json").read_text())["results"]
    assert entry["model"] == "LitePose-XS" and entry["device"] == "cpu"
    for backend in ("eager", "fused", "onnx"):
        samples = entry["timings_ms"][backend]["samples"]
        assert len(samples) == 2 and all(s > 0 for s in samples)
    assert "| LitePose-XS | 256 |" in result.stdout
    # End to end through litepose.inference: the whole test-time pipeline, with its stage breakdown.
    assert len(entry["timings_ms"]["e2e"]["samples"]) == 2
    assert set(entry["end_to_end_stages_ms"]) == {"network", "aggregate", "grouping"}


def test_bad_arguments_exit_with_one_line(tmp_path, benchmark_cli):
    result = benchmark_cli("--models", "XS", "--input-size", "100", "--output", str(tmp_path))
    assert result.returncode == 2 and "--input-size: must be a multiple of 32 between 32 and 2048, got 100" in result.stderr
    result = benchmark_cli("--models", "LitePose-XXL", "--output", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: unknown model 'LitePose-XXL'")
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_timing_interleaves_models_and_rotates_the_order():
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    timings = time_interleaved(runners, repeats=3, warmup=1, progress=False)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(len(t.samples) == 3 for t in timings.values())


def test_timing_statistics():
    timing = Timing([0.001 * v for v in range(1, 11)])
    assert timing.median_ms == pytest.approx(5.5) and timing.p90_ms == pytest.approx(9.1)


def test_model_names_resolve_with_aliases():
    names = [e.name for e in benchmark.resolve_models(["XS", "litepose-s", "W24", "h-1", "H1", "HigherHRNet-W32"])]
    assert names == ["LitePose-XS", "LitePose-S", "HigherHRNet-W24", "EfficientHRNet-H-1", "EfficientHRNet-H-1",
                     "HigherHRNet-W32"]
    custom, = benchmark.resolve_models(["experiments/coco/mobilenet/mobile.yaml:mobile_configs/search-M.json"])
    assert custom.name == "search-M" and custom.is_litepose
    with pytest.raises(ConfigError, match="unknown model 'W99'"):
        benchmark.resolve_models(["W99"])


def _result(name, litepose, **medians):
    return benchmark.ModelResult(name, "cpu", 512, int(1e9), int(1e6), litepose,
                       {backend: Timing([ms / 1000.0]) for backend, ms in medians.items()})


def test_speedups_compare_each_litepose_with_each_reference_baseline():
    results = [_result("LitePose-S", True, eager=100.0, onnx=50.0),
               _result("HigherHRNet-W24", False, eager=400.0, onnx=100.0),
               _result("EfficientHRNet-H-1", False, eager=300.0),
               _result("HigherHRNet-W32", False, eager=900.0)]
    rows = {(backend, lite, base): factor for _, backend, lite, base, factor in benchmark.speedups(results)}
    assert rows == {("eager", "LitePose-S", "HigherHRNet-W24"): pytest.approx(4.0),
                    ("onnx", "LitePose-S", "HigherHRNet-W24"): pytest.approx(2.0),
                    ("eager", "LitePose-S", "EfficientHRNet-H-1"): pytest.approx(3.0)}
    table = benchmark.markdown_table(results)
    assert "| cpu | LitePose-S | HigherHRNet-W24 | 4.00x | 2.00x |" in table
    assert "| cpu | LitePose-S | EfficientHRNet-H-1 | 3.00x | n/a |" in table
    assert "| EfficientHRNet-H-1 | 512 | 1.00 | 1.00 | 300.0 / 300.0 | n/a |" in table
