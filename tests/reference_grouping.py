"""A plain, loop-by-loop restatement of the release's grouping (HigherHRNet's ``HeatmapParser``
as the LitePose release runs it), written from the algorithm's description.

It shares no code with ``litepose.inference.group`` and does what the release does the way the
release does it: max-pool NMS and top-k in torch, joint-by-joint matching with dictionaries
keyed by tag value and the release's own solver (``munkres.Munkres().compute`` from the
pure-Python ``munkres`` package, version 1.1.4, so that equal-cost assignments resolve as the
release resolves them), Python loops for the quarter-pixel adjustment, per-person refinement
over the full maps in torch, then point-by-point mapping back to the image. Two uses: the
tests check that the library's vectorised grouping finds the same people, and
``benchmarks/oracle_eval.py --baseline`` times both side by side. Never used by the library.
"""

import numpy as np
import torch
from munkres import Munkres

from litepose.inference.group import joint_order


def _top_k(det, tag, kernel, k):
    pool = torch.nn.MaxPool2d(kernel, 1, (kernel - 1) // 2)
    suppressed = det * torch.eq(pool(det), det).float()
    joints, height, width = det.shape[1:]
    val_k, ind = suppressed.view(1, joints, -1).topk(k, dim=2)
    flat_tag = tag.reshape(1, tag.shape[1], height * width, -1)
    if flat_tag.shape[1] == 1:
        flat_tag = flat_tag.expand(-1, joints, -1, -1)
    tag_k = torch.stack([torch.gather(flat_tag[:, :, :, i], 2, ind) for i in range(flat_tag.shape[3])], dim=3)
    loc_k = torch.stack((ind % width, ind // width), dim=3)
    return tag_k[0].numpy(), loc_k[0].numpy(), val_k[0].numpy()


def _match(tag_k, loc_k, val_k, p):
    num_joints = p.num_joints
    empty = np.zeros((num_joints, 3 + tag_k.shape[2]))
    joint_dict, tag_dict = {}, {}
    for i, idx in enumerate(joint_order(num_joints)):
        tags = tag_k[idx]
        joints = np.concatenate((loc_k[idx], val_k[idx, :, None], tags), 1)
        mask = joints[:, 2] > p.detection_threshold
        tags, joints = tags[mask], joints[mask]
        if joints.shape[0] == 0:
            continue
        if i == 0 or len(joint_dict) == 0:
            for tag, joint in zip(tags, joints):
                joint_dict.setdefault(tag[0], np.copy(empty))[idx] = joint
                tag_dict[tag[0]] = [tag]
            continue
        grouped_keys = list(joint_dict.keys())[:p.max_num_people]
        grouped_tags = [np.mean(tag_dict[key], axis=0) for key in grouped_keys]
        if p.ignore_too_much and len(grouped_keys) == p.max_num_people:
            continue
        diff = joints[:, None, 3:] - np.array(grouped_tags)[None, :, :]
        diff_normed = np.linalg.norm(diff, ord=2, axis=2)
        diff_saved = np.copy(diff_normed)
        if p.use_detection_val:
            diff_normed = np.round(diff_normed) * 100 - joints[:, 2:3]
        num_added, num_grouped = diff.shape[0], diff.shape[1]
        if num_added > num_grouped:
            diff_normed = np.concatenate((diff_normed, np.zeros((num_added, num_added - num_grouped)) + 1e10), axis=1)
        # The release hands the array itself to compute(); as lists the pairs are the same
        # and the solver is faster, which keeps the baseline timings conservative.
        for row, col in Munkres().compute(diff_normed.tolist()):
            if row < num_added and col < num_grouped and diff_saved[row][col] < p.tag_threshold:
                key = grouped_keys[col]
                joint_dict[key][idx] = joints[row]
                tag_dict[key].append(tags[row])
            else:
                key = tags[row][0]
                joint_dict.setdefault(key, np.copy(empty))[idx] = joints[row]
                tag_dict[key] = [tags[row]]
    return np.array([joint_dict[key] for key in joint_dict]).astype(np.float32).reshape(
        -1, num_joints, 3 + tag_k.shape[2])


def _adjust(people, det):
    for person in people:
        for joint_id, joint in enumerate(person):
            if joint[2] > 0:
                x, y = joint[0:2]
                col, row = int(x), int(y)
                plane = det[joint_id]
                x += 0.25 if plane[row, min(col + 1, plane.shape[1] - 1)] > plane[row, max(col - 1, 0)] else -0.25
                y += 0.25 if plane[min(row + 1, plane.shape[0] - 1), col] > plane[max(0, row - 1), col] else -0.25
                person[joint_id, 0:2] = (x + 0.5, y + 0.5)
    return people


def _refine(det, tag, keypoints):
    """One person, over the full maps (det [J, H, W], tag [J, H, W, D] torch)."""
    tags = []
    for i in range(keypoints.shape[0]):
        if keypoints[i, 2] > 0:
            x, y = keypoints[i][:2].astype(np.int32)
            tags.append(tag[i, y, x].unsqueeze(0))
    prev_tag = torch.mean(torch.cat(tags, dim=0), dim=0)
    distance = ((tag - prev_tag[None, None, None, :]) ** 2).sum(dim=3) ** 0.5
    joints, height, width = distance.shape
    positions = (det - torch.round(distance)).view(joints, -1).argmax(dim=1).tolist()
    for i in range(keypoints.shape[0]):
        plane = det[i]
        y, x = positions[i] // width, positions[i] % width
        val = float(plane[y, x])
        fx = x + 0.5 + (0.25 if plane[y, min(x + 1, width - 1)] > plane[y, max(x - 1, 0)] else -0.25)
        fy = y + 0.5 + (0.25 if plane[min(y + 1, height - 1), x] > plane[max(0, y - 1), x] else -0.25)
        if val > 0 and keypoints[i, 2] == 0:
            keypoints[i, :3] = (fx, fy, val)
    return keypoints


def reference_group(heatmaps, tags, params):
    """The release's parse: ``heatmaps [J, H, W]``, ``tags [J, H, W, D]`` (torch or numpy)
    -> (people ``[P, J, 3 + D]``, scores ``[P]``)."""
    det = torch.as_tensor(np.asarray(heatmaps, dtype=np.float32))[None]
    tag = torch.as_tensor(np.ascontiguousarray(np.asarray(tags, dtype=np.float32)))[None]
    people = _match(*_top_k(det, tag, params.nms_kernel, params.max_num_people), params)
    if params.adjust:
        people = _adjust(people, det[0])
    scores = [person[:, 2].mean() for person in people]
    if params.refine:
        full_tag = tag[0] if tag.shape[1] > 1 else tag[0].expand(det.shape[1], -1, -1, -1)
        for i in range(len(people)):
            people[i] = _refine(det[0], full_tag, people[i])
    return people, np.array(scores, dtype=np.float32)


def reference_to_image(people, inverse_matrix):
    """Point by point, as the release maps predictions back."""
    out = []
    for person in people:
        mapped = person.copy()
        for j in range(person.shape[0]):
            point = np.array([person[j, 0], person[j, 1], 1.0])
            mapped[j, 0:2] = np.dot(inverse_matrix, point)[:2]
        out.append(mapped)
    return out
