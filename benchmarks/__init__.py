"""Measurement and drill harnesses of LitePose: not part of the library and not installed.

Run each from the repository root as a module, e.g. ``python -m benchmarks.benchmark --output bench/``:

- ``benchmark``: latency of LitePose against HigherHRNet and EfficientHRNet, every backend interleaved
- ``benchmark_e2e``: frames per second and per-stage times of ``PoseEstimator`` end to end
- ``benchmark_train``: the training step against the data pipeline, and the cost of the fault guards
- ``device_check``: the GPU figures in one prepared run (``tools/device_check.py`` is its alias)
- ``crash_drill``: random SIGKILLs during training, each restart checked against an uninterrupted run
- ``oracle_eval``: the decoding ceiling, AP of the test-time pipeline on perfect maps
- ``track_eval``: identity switches of ``PoseTracker`` on generated crossing sequences
- ``estimator_ap``: AP of ``PoseEstimator`` with its person filter presets

They import each other as ``from benchmarks import benchmark_train`` and the library as ``litepose``;
the library never imports them.
"""
