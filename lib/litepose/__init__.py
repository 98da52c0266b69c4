"""LitePose: efficient multi-person pose estimation (CVPR 2022) as one importable package.

Subpackages: ``config`` (yacs defaults and loading), ``models`` (LitePose, the
weight-sharing supernet and the baselines, behind a small registry), ``arch``
(architecture files), ``search_space`` (the supernet's search space and sampler),
``utils`` (shared helpers).
"""

__version__ = "0.1.0"
