"""Latency figures the run cannot vouch for get a warning: repeats that spread too far, and
comparisons inside that spread (litepose.deploy.latency, benchmarks/benchmark.py's timing_warnings).
Known timings only: nothing is timed here."""

import pytest

from benchmarks import benchmark
from litepose.deploy.latency import SPREAD_LIMIT, Timing, comparison_warning, repeat_spread, spread_warning


def seconds(*ms):
    return [value / 1000.0 for value in ms]


def test_the_busy_run_of_two_repeats_is_flagged_with_its_range_and_spread():
    line = spread_warning("LitePose-XS eager", seconds(3100, 6900))
    assert line == ("warning: LitePose-XS eager: repeats range 3100-6900 ms (spread 76 % of the median) > 20 %: "
                    "the machine was busy; rerun on a quiet machine or with more --repeats")


def test_steady_repeats_and_a_single_repeat_are_not_flagged():
    assert spread_warning("LitePose-XS eager", seconds(100, 104, 98, 101, 110)) is None  # 12 % of the median
    assert spread_warning("LitePose-XS eager", seconds(100, 100)) is None
    assert spread_warning("LitePose-XS eager", seconds(3450)) is None
    assert spread_warning("LitePose-XS eager", seconds(100, 125), limit=0.3) is None
    assert spread_warning("LitePose-XS eager", seconds(100, 125)) is not None  # 22 % > 20 %
    assert SPREAD_LIMIT == 0.20


def test_one_hiccup_in_many_repeats_does_not_count():
    steady = [10.0 + 0.1 * i for i in range(19)]  # 10.0 .. 11.8 ms
    spread = repeat_spread(seconds(*steady, 40.0))
    assert spread.trimmed and spread.high_ms == pytest.approx(11.8) and spread.low_ms == pytest.approx(10.1)
    assert spread_warning("S onnx", seconds(*steady, 40.0)) is None
    few = repeat_spread(seconds(10, 11, 40))  # up to 10 repeats every one counts
    assert not few.trimmed and few.high_ms == pytest.approx(40.0)
    two_slow = seconds(*steady[:18], 40.0, 41.0)  # more than a tenth slow: the load, not a hiccup
    assert "middle 80 % of the repeats range" in spread_warning("S onnx", two_slow)


def test_a_ratio_inside_the_spread_is_flagged_and_one_outside_is_not():
    noisy_a, noisy_b = seconds(90, 100, 130), seconds(100, 110, 140)  # spreads 40 % and 36 %
    line = comparison_warning("HigherHRNet-W24 / LitePose-S eager", noisy_a, noisy_b)
    assert line == ("warning: HigherHRNet-W24 / LitePose-S eager: ratio 0.91 is within the spread of their repeats "
                    "(40 % of the median): not a measured difference; rerun on a quiet machine or with more --repeats")
    assert comparison_warning("A / B", seconds(400, 410, 420), seconds(100, 130, 140)) is None  # 4.1x, spread 31 %
    assert comparison_warning("A / B", seconds(100, 102), seconds(110, 111)) is None  # 10 % apart, 2 % spread
    assert comparison_warning("A / B", seconds(100), seconds(101)) is None  # no spread known


def _result(name, litepose, device="cpu", **samples_ms):
    return benchmark.ModelResult(name, device, 256, int(1e9), int(1e6), litepose,
                                 {backend: Timing(seconds(*ms)) for backend, ms in samples_ms.items()})


def test_the_benchmark_names_every_unreliable_row_and_comparison():
    # The busy run: eager 3450 ms against BN folded 6206 ms, both far apart from call to call.
    results = [_result("LitePose-XS", True, eager=(2000, 4900), fused=(5000, 7412), onnx=(900, 905)),
               _result("HigherHRNet-W24", False, eager=(9000, 9100), fused=(8000, 8100), onnx=(950, 960))]
    lines = benchmark.timing_warnings(results)
    assert lines == [
        "warning: LitePose-XS eager: repeats range 2000-4900 ms (spread 84 % of the median) > 20 %: the machine was "
        "busy; rerun on a quiet machine or with more --repeats",
        "warning: LitePose-XS fused: repeats range 5000-7412 ms (spread 39 % of the median) > 20 %: the machine was "
        "busy; rerun on a quiet machine or with more --repeats",
        "warning: LitePose-XS eager / fused: ratio 0.56 is within the spread of their repeats (84 % of the median): "
        "not a measured difference; rerun on a quiet machine or with more --repeats",
        "warning: HigherHRNet-W24 / LitePose-XS fused: ratio 1.30 is within the spread of their repeats (39 % of the "
        "median): not a measured difference; rerun on a quiet machine or with more --repeats",
    ]  # the eager speed-up (2.62x) stands out of even an 84 % spread; onnx is 6 % apart, but steady (1 %)
    assert all("\n" not in line for line in lines)


def test_a_steady_benchmark_has_no_warnings_and_several_devices_are_named():
    steady = [_result("LitePose-S", True, eager=(100, 101, 102), fused=(80, 81, 80)),
              _result("EfficientHRNet-H-1", False, eager=(300, 301, 303), fused=(250, 251, 250))]
    assert benchmark.timing_warnings(steady) == []
    both = steady + [_result("LitePose-S", True, "cuda", eager=(5, 9))]
    (line,) = benchmark.timing_warnings(both)
    assert line.startswith("warning: LitePose-S eager on cuda: repeats range 5-9 ms (spread 57 % of the median)")
