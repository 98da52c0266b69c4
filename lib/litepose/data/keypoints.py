"""Keypoint metadata per dataset: joint names, the flip index, OKS sigmas and limbs.

This is the one table of each: training (flip augmentation), inference (flip test),
evaluation (OKS) and drawing all read it from here.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class KeypointInfo:
    name: str
    joints: tuple          # joint names, in annotation order
    flip_pairs: tuple      # (left, right) index pairs swapped by a horizontal flip
    sigmas: tuple          # OKS sigmas, one per joint
    skeleton: tuple        # (a, b) joint index pairs drawn as limbs (0-based)

    def __post_init__(self):
        count = len(self.joints)
        if len(self.sigmas) != count:
            raise ConfigError(f"{self.name}: {len(self.sigmas)} OKS sigmas for {count} joints")
        for a, b in tuple(self.flip_pairs) + tuple(self.skeleton):
            if not (0 <= a < count and 0 <= b < count):
                raise ConfigError(f"{self.name}: joint pair ({a}, {b}) outside 0..{count - 1}")

    @property
    def num_joints(self):
        return len(self.joints)

    @property
    def flip_index(self):
        """``flip_index[j]``: the joint that j becomes after a horizontal flip."""
        index = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    def sigmas_array(self):
        return np.array(self.sigmas, dtype=np.float64)


COCO = KeypointInfo(
    name="coco",
    joints=("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
            "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
            "left_knee", "right_knee", "left_ankle", "right_ankle"),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=tuple(s / 10.0 for s in (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62,
                                     1.07, 1.07, .87, .87, .89, .89)),
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
              (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
)

CROWDPOSE = KeypointInfo(
    name="crowdpose",
    joints=("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
            "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck"),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    sigmas=tuple(s / 10.0 for s in (.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79)),
    skeleton=((12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
              (6, 8), (8, 10), (7, 9), (9, 11)),
)

# Names used by DATASET.DATASET / DATASET.DATASET_TEST in the release's configs.
DATASET_INFOS = {
    "coco": COCO,
    "coco_kpt": COCO,
    "crowd_pose": CROWDPOSE,
    "crowd_pose_kpt": CROWDPOSE,
    "crowdpose": CROWDPOSE,
}


def get_keypoint_info(name):
    if name not in DATASET_INFOS:
        raise ConfigError(f"unknown dataset '{name}' (known: {', '.join(sorted(DATASET_INFOS))})")
    return DATASET_INFOS[name]
