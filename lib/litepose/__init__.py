"""LitePose: efficient multi-person pose estimation (CVPR 2022) as one importable package.

Subpackages: ``config`` (yacs defaults and loading), ``models`` (LitePose, the
weight-sharing supernet and the baselines, behind a small registry), ``arch``
(architecture files), ``search`` (the search space, its sampler and the architecture search),
``utils`` (shared helpers). ``PoseEstimator`` (``litepose.estimator``): frames in, people out.
"""

import os as _os

__version__ = "0.1.0"

# OpenCV reads its decoder's pixel limit once, when it is loaded: set it to this project's image
# limit (litepose.data.image_header) unless the user set it, so that formats whose header we do
# not parse meet the same limit while they are decoded. No effect if cv2 was imported first.
_limit = _os.environ.get("LITEPOSE_MAX_IMAGE_PIXELS", "").strip()
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", _limit if _limit.isdigit() and int(_limit) > 0 else str(2**26))


def __getattr__(name):
    # ``from litepose import PoseEstimator`` loads the estimator on first use only, so that
    # ``import litepose`` stays light (and the estimator itself imports no PyTorch).
    if name in ("PoseEstimator", "People"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
