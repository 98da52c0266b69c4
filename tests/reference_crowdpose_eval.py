"""An independent statement of the official CrowdPose evaluation (``crowdposetools``), written
from its published behaviour, to check ``litepose.evaluation`` against. Shares no code with it and
uses neither pycocotools nor xtcocotools.

Per image: people sorted by score, the first 20 kept; OKS against each ground-truth person
with the CrowdPose sigmas and 0.53 x box area as scale (box-distance form for people without
visible joints); greedy matching per OKS threshold .50:.05:.95, ignored people (crowd, no
visible joints) sorted last. Over images: COCO's 101-point interpolated precision; AP and AR
are means over thresholds. AP easy / medium / hard evaluate the images with crowdIndex below
0.2 / below 0.8 / the rest, averaging precision without skipping -1 (no ground truth), rounded
to 4 decimals, as the API does.
"""

import numpy as np

SIGMAS = np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79]) / 10.0
THRESHOLDS = np.linspace(.5, .95, 10)
RECALLS = np.linspace(0, 1, 101)
MAX_DETS = 20


def _oks(dt, gt):
    g = np.array(gt["keypoints"], float)
    d = np.array(dt["keypoints"], float)
    xg, yg, vg = g[0::3], g[1::3], g[2::3]
    xd, yd = d[0::3], d[1::3]
    bx, by, bw, bh = gt["bbox"]
    area = bw * bh * 0.53
    variances = (SIGMAS * 2) ** 2
    if np.count_nonzero(vg > 0):
        dx, dy = xd - xg, yd - yg
    else:
        zero = np.zeros_like(xd)
        dx = np.maximum(zero, (bx - bw) - xd) + np.maximum(zero, xd - (bx + 2 * bw))
        dy = np.maximum(zero, (by - bh) - yd) + np.maximum(zero, yd - (by + 2 * bh))
    e = (dx ** 2 + dy ** 2) / variances / (area + np.spacing(1)) / 2
    if np.count_nonzero(vg > 0):
        e = e[vg > 0]
    return np.sum(np.exp(-e)) / e.shape[0]


def _image(gts, dts):
    """Per threshold: dt scores, matched flags, ignored flags; and the count of counted gts."""
    ignore = np.array([bool(g.get("iscrowd", 0)) or g["num_keypoints"] == 0 for g in gts], bool)
    gorder = np.argsort(ignore, kind="mergesort")
    gts = [gts[i] for i in gorder]
    ignore = ignore[gorder]
    crowd = [bool(g.get("iscrowd", 0)) for g in gts]
    dorder = np.argsort([-d["score"] for d in dts], kind="mergesort")[:MAX_DETS]
    dts = [dts[i] for i in dorder]
    oks = np.array([[_oks(d, g) for g in gts] for d in dts]).reshape(len(dts), len(gts))
    matched = np.zeros((len(THRESHOLDS), len(dts)), bool)
    dt_ignored = np.zeros((len(THRESHOLDS), len(dts)), bool)
    for t, threshold in enumerate(THRESHOLDS):
        taken = np.zeros(len(gts), bool)
        for i in range(len(dts)):
            best, m = min(threshold, 1 - 1e-10), -1
            for j in range(len(gts)):
                if taken[j] and not crowd[j]:
                    continue
                if m > -1 and not ignore[m] and ignore[j]:
                    break
                if oks[i, j] < best:
                    continue
                best, m = oks[i, j], j
            if m >= 0:
                matched[t, i], dt_ignored[t, i], taken[m] = True, ignore[m], True
    return [d["score"] for d in dts], matched, dt_ignored, int(np.count_nonzero(~ignore))


def _accumulate(gt, results, image_ids):
    """``precision [T, R]`` and ``recall [T]`` (-1 where there is nothing to measure)."""
    per_image = []
    for image_id in image_ids:
        gts = [a for a in gt["annotations"] if a["image_id"] == image_id]
        dts = [r for r in results if r["image_id"] == image_id]
        if gts or dts:
            per_image.append(_image(gts, dts))
    precision = -np.ones((len(THRESHOLDS), len(RECALLS)))
    recall = -np.ones(len(THRESHOLDS))
    if not per_image:
        return precision, recall
    scores = np.concatenate([np.array(s, float) for s, _, _, _ in per_image])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([m for _, m, _, _ in per_image], axis=1)[:, order]
    ignored = np.concatenate([i for _, _, i, _ in per_image], axis=1)[:, order]
    counted = sum(n for _, _, _, n in per_image)
    if counted == 0:
        return precision, recall
    for t in range(len(THRESHOLDS)):
        tp = np.cumsum(matched[t] & ~ignored[t]).astype(float)
        fp = np.cumsum(~matched[t] & ~ignored[t]).astype(float)
        rc = tp / counted
        pr = tp / (fp + tp + np.spacing(1))
        recall[t] = rc[-1] if len(tp) else 0
        for i in range(len(pr) - 1, 0, -1):
            pr[i - 1] = max(pr[i - 1], pr[i])
        where = np.searchsorted(rc, RECALLS, side="left")
        precision[t] = [pr[w] if w < len(pr) else 0 for w in where]
    return precision, recall


def _mean(values):
    kept = values[values > -1]
    return float(np.mean(kept)) if kept.size else -1.0


def reference_crowdpose_eval(gt, results):
    """[AP, AP50, AP75, AR, AR50, AR75, AP easy, AP medium, AP hard] of ``results`` on ``gt``."""
    ids = [image["id"] for image in gt["images"]]
    precision, recall = _accumulate(gt, results, ids)
    stats = [_mean(precision), _mean(precision[0]), _mean(precision[5]),
             _mean(recall), _mean(recall[:1]), _mean(recall[5:6])]
    index = {image["id"]: image["crowdIndex"] for image in gt["images"]}
    groups = ([i for i in ids if index[i] < 0.2], [i for i in ids if 0.2 <= index[i] < 0.8],
              [i for i in ids if index[i] >= 0.8])
    for group in groups:
        stats.append(round(float(np.mean(_accumulate(gt, results, group)[0])), 4))
    return stats
