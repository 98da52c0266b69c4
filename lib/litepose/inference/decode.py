"""Aggregated maps -> people in image pixels, and ``People``, the one result type of every
path (``predict``, ``valid.py``'s evaluation, ``litepose.PoseEstimator``, tracking)."""

import dataclasses
import time

import numpy as np

from .group import NO_LIMITS, group_keypoints


@dataclasses.dataclass
class People:
    """People found in one image: ``keypoints [P, J, 3]`` (x, y in image pixels, joint score),
    ``scores [P]`` (mean joint score, the release's), ``times`` (seconds per stage: network,
    aggregate, grouping, and preprocess when the network timed it apart), ``track_ids [P]``
    once a ``litepose.tracking.PoseTracker`` has seen them, ``maps`` (the ``Maps`` grouped)
    when asked for."""
    keypoints: np.ndarray
    scores: np.ndarray
    times: dict = dataclasses.field(default_factory=dict)
    track_ids: np.ndarray = None
    maps: object = None

    def __len__(self):
        return len(self.scores)


def decode(maps, settings, limits=NO_LIMITS, keep_maps=False):
    """Group ``maps`` (``aggregate.Maps``) with ``settings.grouping`` and ``limits``
    (``group.DecodeLimits``; the default caps nothing) and map the people back to the image:
    ``People``."""
    start = time.perf_counter()
    people, scores = group_keypoints(maps.heatmaps, maps.tags, settings.grouping, limits)
    keypoints = maps.map_to_image(people[:, :, :3]) if len(people) else np.zeros((0, settings.num_joints, 3))
    grouping_s = time.perf_counter() - start
    times = {} if maps.preprocess_s is None else {"preprocess": maps.preprocess_s}
    times.update(network=maps.forward_s, aggregate=maps.aggregate_s, grouping=grouping_s)
    return People(keypoints.astype(np.float64), scores.astype(np.float64), times,
                  maps=maps if keep_maps else None)
