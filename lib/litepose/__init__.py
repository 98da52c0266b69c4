"""LitePose: efficient multi-person pose estimation (CVPR 2022) as one importable package.

Subpackages and modules:

- ``config``: yacs defaults, loading with strict keys, value ranges;
- ``arch``: architecture files (the release's JSON schema) and their validation;
- ``models``: LitePose, the weight-sharing supernet and the baselines, behind a registry;
  checkpoints and weight transfer; the supernet's search space and its sampler, BN recalibration;
- ``search``: architecture search: cost models, evolution, scoring;
- ``data``: COCO-format datasets, the release's augmentation and training targets;
- ``loss``: heatmap and associative-embedding losses;
- ``train``: the training loop, distributed setup, checkpoints;
- ``inference``: the test-time decoder, NumPy / OpenCV without PyTorch: map aggregation (flip,
  scales, projection), AE grouping, ``People``; ``predict`` runs a PyTorch model through it;
- ``runtime``: pre-processing and the networks (ONNX Runtime, edge exports, PyTorch) the
  decoder reads, and the person filter (no PyTorch unless the PyTorch backend is chosen);
- ``evaluation``: COCO and CrowdPose protocols, the evaluation loop, the decoding ceiling;
- ``deploy``: BN folding, exports, quantisation, latency;
- ``estimator`` (``PoseEstimator``: frames in, people out), ``tracking``, ``live``;
- ``cli``: the scripts' command-line plumbing (arguments, configs, exit statuses);
- ``utils``: the one affine transform, I/O, devices, drawing, sizes and number ranges.

Importing the package changes no process-wide state (threads, backends, environment); the
scripts do that (``litepose.cli``, ``litepose.train.process``).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # ``from litepose import PoseEstimator`` loads the estimator on first use only, so that
    # ``import litepose`` stays light (and the estimator itself imports no PyTorch).
    if name in ("PoseEstimator", "People"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
