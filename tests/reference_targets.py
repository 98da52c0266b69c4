"""A loop-by-loop restatement of the release's training sample (HigherHRNet's ``CocoKeypoints`` /
``CrowdPoseKeypoints`` with ``RandomAffineTransform``, ``RandomHorizontalFlip``,
``HeatmapGenerator`` and ``JointsGenerator``, as the LitePose release runs them), written from
their published rules for given random draws.

It shares no code with ``litepose.data``: its own crop matrix (the release's ``200 x scale`` box
with the rotation about the output centre), its own mask, per-person and per-joint Python loops
as the release has them. The tests feed it the draws our dataset made and compare targets.
"""

import cv2
import numpy as np
from pycocotools import mask as mask_api


def crop_matrix(center, scale, resolution, rotation):
    """The release's training matrix: a box of ``200 * scale`` pixels about ``center`` onto a
    ``resolution`` square, rotated by ``rotation`` degrees about the output centre."""
    h = 200.0 * scale
    t = np.zeros((3, 3))
    t[0, 0] = resolution / h
    t[1, 1] = resolution / h
    t[0, 2] = resolution * (-float(center[0]) / h + 0.5)
    t[1, 2] = resolution * (-float(center[1]) / h + 0.5)
    t[2, 2] = 1
    if rotation != 0:
        angle = np.deg2rad(-rotation)
        turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        to_origin = np.eye(3)
        to_origin[:2, 2] = -resolution / 2
        back = np.eye(3)
        back[:2, 2] = resolution / 2
        t = back @ turn @ to_origin @ t
    return t[:2]


def _rles(segmentation, height, width):
    """The release decodes polygons (and COCO's uncompressed crowd RLE); the synthetic set also
    has compressed RLE strings, which it could not read: those are decoded as COCO's API does."""
    if isinstance(segmentation, dict) and isinstance(segmentation["counts"], str):
        return [{"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}]
    rles = mask_api.frPyObjects(segmentation, height, width)
    return rles if isinstance(rles, list) else [rles]


def release_mask(annotations, height, width, crowdpose):
    """True where the loss counts, at image resolution."""
    m = np.zeros((height, width))
    if crowdpose:
        return m < 0.5
    for obj in annotations:
        if obj["iscrowd"] or obj["num_keypoints"] == 0:
            for rle in _rles(obj["segmentation"], height, width):
                m += mask_api.decode(rle)
    return m < 0.5


def release_people(annotations, num_joints):
    people = [obj for obj in annotations if obj["iscrowd"] == 0 or obj["num_keypoints"] > 0]
    joints = np.zeros((len(people), num_joints, 3))
    for i, obj in enumerate(people):
        joints[i] = np.array(obj["keypoints"]).reshape(-1, 3)
    return joints


def gaussian_window(sigma):
    size = 6 * sigma + 3
    x = np.arange(0, size, 1, float)
    y = x[:, None]
    c = 3 * sigma + 1
    return np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma ** 2))


def heatmaps_of(joints, resolution, num_joints, sigma):
    hms = np.zeros((num_joints, resolution, resolution), dtype=np.float32)
    g = gaussian_window(sigma)
    for person in joints:
        for idx, pt in enumerate(person):
            if pt[2] <= 0:
                continue
            x, y = int(pt[0]), int(pt[1])
            if x < 0 or y < 0 or x >= resolution or y >= resolution:
                continue
            ul = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
            br = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
            c, d = max(0, -ul[0]), min(br[0], resolution) - ul[0]
            a, b = max(0, -ul[1]), min(br[1], resolution) - ul[1]
            cc, dd = max(0, ul[0]), min(br[0], resolution)
            aa, bb = max(0, ul[1]), min(br[1], resolution)
            hms[idx, aa:bb, cc:dd] = np.maximum(hms[idx, aa:bb, cc:dd], g[a:b, c:d])
    return hms


def joint_indices_of(joints, resolution, max_people, num_joints):
    nodes = np.zeros((max_people, num_joints, 2))
    for i, person in enumerate(joints):
        tot = 0
        for idx, pt in enumerate(person):
            x, y = int(pt[0]), int(pt[1])
            if pt[2] > 0 and 0 <= x < resolution and 0 <= y < resolution:
                nodes[i][tot] = (idx * resolution ** 2 + y * resolution + x, 1)
                tot += 1
    return nodes.astype(np.int32)


def release_sample(image, annotations, draws, input_size, flip_index, max_people=30, sigma=2.0,
                   crowdpose=False):
    """The release's sample for ``draws``: ``aug_scale``, ``rotation``, ``dx``, ``dy`` (integer
    centre shift), ``flip`` (bool). Returns ``(image, heatmaps, masks, joints)``, one entry per
    output (input / 4, input / 2) for the last three."""
    height, width = image.shape[:2]
    num_joints = len(flip_index)
    mask = release_mask(annotations, height, width, crowdpose)
    joints = release_people(annotations, num_joints)
    outputs = [input_size // 4, input_size // 2]
    scale = min(height, width) / 200 * draws["aug_scale"]
    center = np.array((width / 2, height / 2))
    center[0] += draws["dx"]
    center[1] += draws["dy"]
    masks, placed = [], []
    for resolution in outputs:
        mat = crop_matrix(center, scale, resolution, draws["rotation"])
        m = cv2.warpAffine((mask * 255).astype(np.uint8), mat, (resolution, resolution)) / 255
        masks.append((m > 0.5).astype(np.float32))
        j = joints.copy()
        flat = j[:, :, :2].reshape(-1, 2)
        j[:, :, :2] = np.dot(np.concatenate((flat, flat[:, :1] * 0 + 1), axis=1), mat.T).reshape(j[:, :, :2].shape)
        placed.append(j)
    image = cv2.warpAffine(image, crop_matrix(center, scale, input_size, draws["rotation"]), (input_size, input_size))
    if draws["flip"]:
        image = image[:, ::-1] - np.zeros_like(image)
        for i, resolution in enumerate(outputs):
            masks[i] = masks[i][:, ::-1] - np.zeros_like(masks[i])
            placed[i] = placed[i][:, flip_index]
            placed[i][:, :, 0] = resolution - placed[i][:, :, 0] - 1
    heatmaps = [heatmaps_of(j, r, num_joints, sigma) for j, r in zip(placed, outputs)]
    indices = [joint_indices_of(j, r, max_people, num_joints) for j, r in zip(placed, outputs)]
    return image, heatmaps, masks, indices
