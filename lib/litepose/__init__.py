"""LitePose: efficient multi-person pose estimation (CVPR 2022) as one importable package.

Subpackages: ``config`` (yacs defaults and loading), ``models`` (LitePose, the
weight-sharing supernet and the baselines, behind a small registry), ``arch``
(architecture files), ``search_space`` (the supernet's search space and sampler),
``utils`` (shared helpers).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # ``from litepose import PoseEstimator`` loads the estimator on first use only, so that
    # ``import litepose`` stays light (and the estimator itself imports no PyTorch).
    if name in ("PoseEstimator", "People"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
