"""The embedded synthetic dataset: stick-figure people on textured backgrounds, in COCO format.

A newcomer without COCO can train and evaluate on it (``experiments/synthetic/quickstart.yaml``).
Every image is drawn from its own seeded random generator, so the dataset is identical on every
machine and for any generation order. Layout (the COCO layout ``coco_format.dataset_files`` reads)::

    ROOT/annotations/person_keypoints_{train,val}.json
    ROOT/images/{train,val}/NNNNNN.jpg
    ROOT/manifest.json            # generator version, seed and counts

People have the 17 COCO joints and are seen from the front (their left side on the image's
right), with random limb angles, sizes, clothing colours and partial overlaps; joints hidden
behind a person drawn later are labelled occluded (v=1), joints outside the image are absent
(v=0). As in COCO, tiny background figures are annotated without keypoints and some images hold
an ``iscrowd`` region of tiny figures: both become ignore regions for training and are ignored by
the COCO evaluation.
"""

import json
import math
import os
import shutil
import sys
import tempfile

import cv2
import numpy as np

from ..errors import DataError
from .keypoints import COCO

GENERATOR_VERSION = 3  # 3: COCO's encodings (polygons, uncompressed crowd RLE)
DEFAULT_COUNTS = {"train": 1500, "val": 100}
DEFAULT_SEED = 0
MAX_IMAGES = 2_000_000  # per split; COCO's training split has 118,287
SPLITS = ("train", "val")
IMAGE_SIZE_RANGE = (224, 320)
JPEG_QUALITY = 92

# Joint order of COCO (litepose.data.keypoints.COCO).
(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI,
 L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK) = range(17)


def _unit(angle_deg):
    a = math.radians(angle_deg)
    return np.array([math.sin(a), -math.cos(a)])  # 0 degrees points up (image y grows down)


def _random_colour(rng, low=40, high=255):
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def sample_person(rng, height, pelvis):
    """Joint positions ``[17, 2]`` and limb thickness of one frontal figure ``height`` px tall."""
    u = height / 8.0  # a head's height; the figure is about eight heads tall
    lean = rng.uniform(-15, 15)
    up = _unit(lean)
    side = np.array([-up[1], up[0]])  # towards the person's left = the image's right
    pelvis = np.asarray(pelvis, dtype=np.float64)
    neck = pelvis + up * 3.0 * u * rng.uniform(0.9, 1.1)
    joints = np.zeros((17, 2))
    shoulder, hip = 1.0 * u * rng.uniform(0.9, 1.15), 0.7 * u * rng.uniform(0.9, 1.1)
    joints[L_SHO], joints[R_SHO] = neck + side * shoulder, neck - side * shoulder
    joints[L_HIP], joints[R_HIP] = pelvis + side * hip, pelvis - side * hip
    head = neck + up * 1.0 * u
    joints[NOSE] = head - up * 0.12 * u
    joints[L_EYE], joints[R_EYE] = head + up * 0.15 * u + side * 0.27 * u, head + up * 0.15 * u - side * 0.27 * u
    joints[L_EAR], joints[R_EAR] = head + side * 0.6 * u, head - side * 0.6 * u

    def limb(start, outward, angle, bend, first, second):
        # angle: from straight down, positive away from the body; bend: the joint's flexion.
        down_angle = lean + 180.0
        direction = _unit(down_angle - outward * angle)
        middle = start + direction * first
        direction = _unit(down_angle - outward * (angle + bend))
        return middle, middle + direction * second

    # Limbs stay on their own side of the body, so left and right follow from the layout
    # (figures face the camera; horizontal flips keep that true).
    for sign, (sho, elb, wri) in ((1, (L_SHO, L_ELB, L_WRI)), (-1, (R_SHO, R_ELB, R_WRI))):
        angle = rng.uniform(-5, 150)
        bend = rng.uniform(-100, 100)
        joints[elb], joints[wri] = limb(joints[sho], sign, angle, bend, 1.5 * u, 1.3 * u)
    for sign, (hip_j, knee, ankle) in ((1, (L_HIP, L_KNEE, L_ANK)), (-1, (R_HIP, R_KNEE, R_ANK))):
        angle = rng.uniform(-5, 45)
        bend = rng.uniform(-70, 70)
        joints[knee], joints[ankle] = limb(joints[hip_j], sign, angle, bend, 2.0 * u, 2.0 * u)
    return joints, u


def draw_person(canvas, mask, joints, u, rng):
    """Draw a figure on ``canvas`` (RGB) and its silhouette on ``mask`` (uint8)."""
    shirt, trousers = _random_colour(rng), _random_colour(rng)
    skin = tuple(int(c) for c in np.clip(np.array([224, 172, 140]) * rng.uniform(0.55, 1.1), 0, 255))
    limb = max(2, int(round(0.5 * u)))
    caps = tuple(int(c * 0.6) for c in shirt), tuple(int(c * 0.6) for c in trousers)

    def line(a, b, colour, thickness):
        pa, pb = tuple(int(round(v)) for v in joints[a]), tuple(int(round(v)) for v in joints[b])
        cv2.line(canvas, pa, pb, colour, thickness, cv2.LINE_AA)
        cv2.line(mask, pa, pb, 255, thickness)

    def dot(centre, radius, colour, on_mask=True):
        c = tuple(int(round(v)) for v in centre)
        cv2.circle(canvas, c, max(1, int(round(radius))), colour, -1, cv2.LINE_AA)
        if on_mask:
            cv2.circle(mask, c, max(1, int(round(radius))), 255, -1)

    # Joints are drawn as darker caps (a jointed mannequin), hands and shoes as discs.
    for hip_j, knee, ankle in ((L_HIP, L_KNEE, L_ANK), (R_HIP, R_KNEE, R_ANK)):
        line(hip_j, knee, trousers, limb + 1)
        line(knee, ankle, trousers, limb)
        dot(joints[knee], 0.3 * u, caps[1])
        dot(joints[ankle], 0.3 * u, (40, 40, 40))
    torso = np.round(joints[[L_SHO, R_SHO, R_HIP, L_HIP]]).astype(np.int32)
    cv2.fillConvexPoly(canvas, torso, shirt, cv2.LINE_AA)
    cv2.fillConvexPoly(mask, torso, 255)
    for hip_j in (L_HIP, R_HIP):
        dot(joints[hip_j], 0.28 * u, caps[1])
    for sho, elb, wri in ((L_SHO, L_ELB, L_WRI), (R_SHO, R_ELB, R_WRI)):
        line(sho, elb, shirt, limb)
        line(elb, wri, skin, max(2, limb - 1))
        dot(joints[sho], 0.28 * u, caps[0])
        dot(joints[elb], 0.26 * u, caps[0])
        dot(joints[wri], 0.26 * u, skin)
    neck = (joints[L_SHO] + joints[R_SHO]) / 2
    head = joints[NOSE] + (neck - joints[NOSE]) * -0.12
    cv2.line(canvas, tuple(int(v) for v in neck), tuple(int(v) for v in joints[NOSE]), skin, limb, cv2.LINE_AA)
    dot(head, 0.6 * u, skin)
    ear = tuple(int(c * 0.8) for c in skin)
    dot(joints[L_EAR], 0.16 * u, ear)
    dot(joints[R_EAR], 0.16 * u, ear)
    for eye in (L_EYE, R_EYE):
        dot(joints[eye], max(1.0, 0.09 * u), (20, 20, 20), on_mask=False)
    dot(joints[NOSE], max(1.0, 0.08 * u), (170, 50, 40), on_mask=False)


def draw_background(rng, width, height):
    """A cluttered texture: a colour gradient, low-frequency blotches, shapes and noise."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    t = (xs * math.cos(angle) + ys * math.sin(angle)) / max(width, height)
    t = (t - t.min()) / max(1e-6, t.max() - t.min())
    image = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    blotches = cv2.resize(rng.uniform(-60, 60, (4, 4, 3)).astype(np.float32), (width, height),
                          interpolation=cv2.INTER_CUBIC)
    image = np.clip(image + blotches, 0, 255).astype(np.uint8)
    image = np.ascontiguousarray(image)
    for _ in range(int(rng.integers(4, 14))):
        colour = _random_colour(rng, 0, 256)
        kind = rng.integers(0, 3)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(8, max(9, min(width, height) // 3)))
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), colour, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), size // 2, colour, -1, cv2.LINE_AA)
        else:
            end = (x + int(rng.integers(-size, size)), y + int(rng.integers(-size, size)))
            cv2.line(image, (x, y), end, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def uncompressed_rle(mask):
    """COCO's encoding of a crowd region: ``{"size": [h, w], "counts": [runs]}``, runs of 0s and
    1s alternating (0s first) down the columns (column-major), as COCO's files hold them."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat.size and flat[0]:
        runs.insert(0, 0)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(r) for r in runs]}


def polygons(mask):
    """COCO's encoding of a person: the outlines of the mask's parts as ``[[x0, y0, x1, y1, ...]]``
    (at least 3 points each); a mask too thin for an outline gives its box."""
    contours, _ = cv2.findContours(np.asarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outlines = [[float(v) for v in c.reshape(-1)] for c in contours if len(c) >= 3]
    if outlines:
        return outlines
    x, y, w, h = _bbox(mask)
    return [[x, y, x + w, y, x + w, y + h, x, y + h]] if w and h else []


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def _overlap(box, boxes):
    """Largest fraction of ``box`` covered by any of ``boxes`` (x0, y0, x1, y1)."""
    best = 0.0
    area = (box[2] - box[0]) * (box[3] - box[1])
    for other in boxes:
        w = min(box[2], other[2]) - max(box[0], other[0])
        h = min(box[3], other[3]) - max(box[1], other[1])
        if w > 0 and h > 0:
            best = max(best, w * h / area)
    return best


def make_image(rng):
    """One synthetic image: ``(rgb uint8 [H, W, 3], annotations)``; annotations are COCO dicts
    without ids (keypoints as ``[17, 3]`` lists are flattened by the caller)."""
    width, height = (int(v) for v in rng.integers(IMAGE_SIZE_RANGE[0], IMAGE_SIZE_RANGE[1] + 1, size=2))
    canvas = draw_background(rng, width, height)
    annotations = []

    # Background: tiny figures annotated without keypoints, sometimes a crowd region.
    if rng.random() < 0.25:
        crowd_mask = np.zeros((height, width), np.uint8)
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.6) * height
        for _ in range(int(rng.integers(5, 10))):
            tiny = rng.uniform(12, 18)
            joints, u = sample_person(rng, tiny, (cx + rng.uniform(-30, 30), cy + rng.uniform(-12, 12)))
            draw_person(canvas, crowd_mask, joints, u, rng)
        annotations.append({"iscrowd": 1, "mask": crowd_mask > 0})
    for _ in range(int(rng.integers(0, 3))):
        tiny_mask = np.zeros((height, width), np.uint8)
        joints, u = sample_person(rng, rng.uniform(14, 22), (rng.uniform(0.05, 0.95) * width, rng.uniform(0.2, 0.8) * height))
        draw_person(canvas, tiny_mask, joints, u, rng)
        annotations.append({"iscrowd": 0, "mask": tiny_mask > 0})

    # Main people: 1 to 4, larger when fewer, overlapping at most partially.
    count = int(rng.choice((1, 2, 3, 4), p=(0.3, 0.35, 0.2, 0.15)))
    people, boxes = [], []
    for _ in range(count):
        for _attempt in range(20):
            person_height = rng.uniform(0.4, 0.95 if count == 1 else 0.75) * height
            pelvis = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.35, 0.75) * height)
            joints, u = sample_person(rng, person_height, pelvis)
            box = (*(joints.min(0) - u * 0.5), *(joints.max(0) + u * 0.5))
            if _overlap(box, boxes) < 0.35:
                break
        boxes.append(box)
        people.append((joints, u))
    masks = []
    for joints, u in people:
        mask = np.zeros((height, width), np.uint8)
        draw_person(canvas, mask, joints, u, rng)
        masks.append(mask > 0)
    for index, (joints, _u) in enumerate(people):
        covered = np.zeros((height, width), bool)
        for later in masks[index + 1:]:
            covered |= later
        visible_mask = masks[index] & ~covered
        keypoints = np.zeros((17, 3))
        for j, (x, y) in enumerate(joints):
            xi, yi = int(round(x)), int(round(y))
            if 0 <= xi < width and 0 <= yi < height:
                keypoints[j] = (round(float(x), 2), round(float(y), 2), 1 if covered[yi, xi] else 2)
        if visible_mask.sum() < 20 or (keypoints[:, 2] > 0).sum() == 0:
            continue
        annotations.append({"iscrowd": 0, "mask": visible_mask, "keypoints": keypoints})
    return canvas, annotations


def _coco_annotation(ann, ann_id, image_id):
    keypoints = ann.get("keypoints")
    if keypoints is None:
        keypoints = np.zeros((17, 3))
    mask = ann["mask"]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": int(ann["iscrowd"]),
        # COCO's own encodings: uncompressed RLE for crowds, polygons for people.
        "segmentation": uncompressed_rle(mask) if ann["iscrowd"] else polygons(mask),
        "area": float(mask.sum()),
        "bbox": _bbox(mask),
        "num_keypoints": int((keypoints[:, 2] > 0).sum()),
        "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(keypoints.reshape(-1))],
    }


def _categories():
    return [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(COCO.joints),
        "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton],
    }]


def write_split(root, split, count, seed, progress=None):
    """Draw ``count`` images of ``split`` under ``root`` and write their annotation file."""
    split_index = SPLITS.index(split)
    image_dir = os.path.join(root, "images", split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        rng = np.random.default_rng([seed, split_index, index])
        canvas, anns = make_image(rng)
        image_id = split_index * 1_000_000 + index + 1
        file_name = f"{image_id:07d}.jpg"
        _write_jpeg(os.path.join(image_dir, file_name), canvas)
        images.append({"id": image_id, "file_name": file_name, "width": canvas.shape[1], "height": canvas.shape[0]})
        for ann in anns:
            annotations.append(_coco_annotation(ann, len(annotations) + 1 + split_index * 10_000_000, image_id))
        if progress is not None:
            progress.update(1)
    return _write_annotations(root, split, f"LitePose synthetic keypoints, split {split}, seed {seed}", images,
                              annotations)


def _write_annotations(root, split, description, images, annotations):
    """The split's COCO annotation file; returns ``(images, people with keypoints)``."""
    content = {
        "info": {"description": description, "version": GENERATOR_VERSION},
        "licenses": [],
        "categories": _categories(),
        "images": images,
        "annotations": annotations,
    }
    with open(os.path.join(root, "annotations", f"person_keypoints_{split}.json"), "w", encoding="utf-8") as handle:
        json.dump(content, handle)
    return len(images), sum(1 for a in annotations if a["num_keypoints"] > 0)


def _write_jpeg(path, canvas):
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DataError(f"cannot encode synthetic image {os.path.basename(path)}")
    data.tofile(path)


# ---------------------------------------------------------------------------- COCO-scale rehearsal
# COCO 2017 person keypoints (person_keypoints_{train,val}2017.json): images listed, images with at
# least one person annotation, person annotations, annotations with keypoints (num_keypoints > 0).
COCO_STATISTICS = {
    "train": {"images": 118_287, "images_with_people": 64_115, "annotations": 262_465, "with_keypoints": 149_813},
    "val": {"images": 5_000, "images_with_people": 2_693, "annotations": 11_004, "with_keypoints": 6_352},
}
# Assumed, not counted from COCO: the share of person annotations that are crowd regions (COCO
# marks about 1 % of its instances iscrowd), and the chance a person with keypoints has all 17
# labelled (otherwise 1 to 16, uniformly).
COCO_CROWD_SHARE = 0.01
COCO_FULL_SKELETON_SHARE = 0.25
# COCO's image sizes: the long side is 640 in almost every image.
COCO_IMAGE_SIZES = ((640, 480), (640, 427), (480, 640), (640, 426), (427, 640), (640, 360), (500, 375))
COCO_IMAGE_SIZE_SHARES = (0.45, 0.2, 0.12, 0.08, 0.06, 0.05, 0.04)
DEFAULT_POOL_IMAGES = 300


def _people_per_image(rng, images, total):
    """``images`` counts >= 1 summing to ``total``: a geometric tail (a few crowded images, most
    with one to three people) with the mean ``total / images``, as COCO's."""
    mean = total / images
    counts = rng.geometric(1 / mean, size=images)
    counts = np.minimum(counts, 60)
    difference = total - int(counts.sum())
    while difference:
        chosen = rng.integers(0, images, size=abs(difference))
        if difference > 0:
            np.add.at(counts, chosen, 1)
        else:
            np.subtract.at(counts, chosen, 1)
            counts = np.maximum(counts, 1)
        difference = total - int(counts.sum())
    return counts


def _pool_image(rng, width, height):
    canvas = draw_background(rng, width, height)
    for _ in range(int(rng.integers(1, 5))):
        joints, u = sample_person(rng, rng.uniform(0.3, 0.8) * height,
                                  (rng.uniform(0.1, 0.9) * width, rng.uniform(0.4, 0.7) * height))
        draw_person(canvas, np.zeros((height, width), np.uint8), joints, u, rng)
    return canvas


def _coco_scale_person(rng, ann_id, image_id, width, height, labelled):
    """A person annotation of COCO's shape: a polygon outline (an octagon in its box), and
    ``labelled`` joints of a frontal figure (visible 90 %, else occluded)."""
    if labelled:
        tall = float(np.exp(rng.uniform(np.log(40), np.log(0.95 * height))))
    else:
        tall = rng.uniform(8, 40)
    pelvis = (rng.uniform(0.05, 0.95) * width, rng.uniform(0.3, 0.8) * height)
    joints, u = sample_person(rng, tall, pelvis)
    joints = np.clip(joints, 0, [width - 1, height - 1])
    x0, y0 = np.clip(joints.min(0) - u * 0.5, 0, None)
    x1, y1 = np.minimum(joints.max(0) + u * 0.5, [width, height])
    w, h = max(1.0, x1 - x0), max(1.0, y1 - y0)
    cx, cy = x0 + w / 2, y0 + h / 2
    angles = np.arange(8) * (np.pi / 4)
    outline = np.stack([cx + np.cos(angles) * w / 2, cy + np.sin(angles) * h / 2], 1).round(2)
    keypoints = np.zeros((17, 3))
    if labelled:
        chosen = rng.choice(17, size=labelled, replace=False)
        keypoints[chosen, :2] = joints[chosen].round(2)
        keypoints[chosen, 2] = np.where(rng.random(labelled) < 0.9, 2, 1)
    return {
        "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
        "segmentation": [outline.reshape(-1).tolist()],
        "area": round(float(w * h * 0.8), 2), "bbox": [round(float(v), 2) for v in (x0, y0, w, h)],
        "num_keypoints": int(labelled),
        "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(keypoints.reshape(-1))],
    }


def _coco_scale_crowd(rng, ann_id, image_id, width, height):
    """A crowd region as COCO writes one: uncompressed RLE, no keypoints."""
    w, h = int(rng.integers(width // 6, width // 2)), int(rng.integers(height // 8, height // 3))
    x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
    mask = np.zeros((height, width), bool)
    mask[y:y + h, x:x + w] = True
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 1,
            "segmentation": uncompressed_rle(mask), "area": float(w * h),
            "bbox": [float(x), float(y), float(w), float(h)],
            "num_keypoints": 0, "keypoints": [0] * 51}


def write_coco_scale_split(root, split, count, seed, pool_images=DEFAULT_POOL_IMAGES, progress=None):
    """A COCO-sized annotation file for ``split`` whose ``count`` images reuse ``pool_images``
    real-size JPEGs (many image ids share a file): COCO's counts scaled to ``count``
    (``COCO_STATISTICS``), people per image, keypoints per person, crowd regions and image
    sizes as COCO's. The pixels do not show the annotated people: it rehearses the data
    pipeline's time and memory at scale, it does not teach a network."""
    split_index = SPLITS.index(split)
    stats = COCO_STATISTICS[split]
    scale = count / stats["images"]
    with_people = max(1, round(stats["images_with_people"] * scale))
    total = max(with_people, round(stats["annotations"] * scale))
    crowds = round(total * COCO_CROWD_SHARE)
    with_keypoints = min(total - crowds, round(stats["with_keypoints"] * scale))
    rng = np.random.default_rng([seed, split_index, 1_000_003])
    image_dir = os.path.join(root, "images", split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    pool = []
    for index in range(min(pool_images, count)):
        width, height = COCO_IMAGE_SIZES[rng.choice(len(COCO_IMAGE_SIZES), p=COCO_IMAGE_SIZE_SHARES)]
        file_name = f"pool_{index:04d}.jpg"
        canvas = _pool_image(np.random.default_rng([seed, split_index, 2_000_003, index]), width, height)
        _write_jpeg(os.path.join(image_dir, file_name), canvas)
        pool.append((file_name, width, height))
    images = []
    for index in range(count):
        file_name, width, height = pool[index % len(pool)]
        images.append({"id": split_index * 1_000_000 + index + 1, "file_name": file_name, "width": width,
                       "height": height})
    # Which images have people, how many each, which annotations are crowds or have keypoints.
    people_images = np.sort(rng.choice(count, size=with_people, replace=False))
    per_image = _people_per_image(rng, with_people, total)
    kinds = np.zeros(total, np.int8)                      # 0: person without keypoints
    order = rng.permutation(total)
    kinds[order[:crowds]] = 2                              # 2: crowd region
    kinds[order[crowds:crowds + with_keypoints]] = 1       # 1: person with keypoints
    labelled = np.where(rng.random(total) < COCO_FULL_SKELETON_SHARE, 17, rng.integers(1, 17, size=total))
    annotations, position = [], 0
    for image_index, people in zip(people_images, per_image):
        image = images[image_index]
        for _ in range(int(people)):
            ann_id = len(annotations) + 1 + split_index * 10_000_000
            if kinds[position] == 2:
                ann = _coco_scale_crowd(rng, ann_id, image["id"], image["width"], image["height"])
            else:
                ann = _coco_scale_person(rng, ann_id, image["id"], image["width"], image["height"],
                                         int(labelled[position]) if kinds[position] == 1 else 0)
            annotations.append(ann)
            position += 1
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.update(count - len(people_images))
    return _write_annotations(root, split, f"LitePose COCO-scale rehearsal, split {split}, seed {seed}", images,
                              annotations)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or a pid we cannot ask about: leave its folder alone
    return True


def remove_stale_partials(root, max_age_s=24 * 3600):
    """Delete the hidden ``.<name>.<pid>.*.partial`` folders beside ``root`` that generations
    killed before their end left behind: those of processes that no longer run (and, from
    versions that did not record the process, those older than ``max_age_s``). Returns their names."""
    import time

    root = os.path.abspath(os.fspath(root))
    parent, prefix = os.path.dirname(root), f".{os.path.basename(root)}."
    if not os.path.isdir(parent):
        return []
    removed = []
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        if not (name.startswith(prefix) and name.endswith(".partial") and os.path.isdir(path)):
            continue
        owner = name[len(prefix):].split(".", 1)[0]
        if owner.startswith("pid") and owner[3:].isdigit():
            stale = not _alive(int(owner[3:]))
        else:
            try:
                stale = time.time() - os.path.getmtime(path) > max_age_s
            except OSError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


def generate_synthetic_dataset(root, counts=None, seed=DEFAULT_SEED, overwrite=False, show_progress=True,
                               coco_scale=False, pool_images=DEFAULT_POOL_IMAGES):
    """Write the dataset to ``root``. With ``coco_scale`` it is the COCO-sized rehearsal
    (``write_coco_scale_split``; ``counts`` default to COCO's 118,287 and 5,000 images) instead
    of the drawn one. It is drawn in a temporary folder beside ``root`` and
    renamed into place at the end, so an interrupted run never leaves a partial dataset; the
    folders of killed generations are removed by the next one (``remove_stale_partials``).
    Returns the manifest (a dict)."""
    from tqdm import tqdm

    if counts is None:
        counts = {split: COCO_STATISTICS[split]["images"] for split in SPLITS} if coco_scale else DEFAULT_COUNTS
    counts = dict(counts)
    if coco_scale and not 1 <= pool_images <= 100_000:
        raise DataError(f"the COCO-scale rehearsal needs 1 to 100000 pool images, got {pool_images}")
    for split, count in counts.items():
        if split not in SPLITS:
            raise DataError(f"unknown synthetic split '{split}' (known: {', '.join(SPLITS)})")
        if not 0 < count <= MAX_IMAGES:
            raise DataError(f"synthetic split '{split}' needs 1 to {MAX_IMAGES} images, got {count}")
    root = os.path.abspath(os.fspath(root))
    if os.path.exists(root) and not overwrite:
        raise DataError(f"{root} already exists (pass --force to replace it)")
    parent = os.path.dirname(root)
    try:
        os.makedirs(parent, exist_ok=True)
        remove_stale_partials(root)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.pid{os.getpid()}.", suffix=".partial",
                                   dir=parent)
    except OSError as exc:
        raise DataError(f"cannot create the synthetic dataset at {root}: {exc.strerror or exc}") from None
    try:
        manifest = {"generator_version": GENERATOR_VERSION, "seed": seed, "joints": "coco", "splits": {}}
        if coco_scale:
            manifest.update(kind="coco_scale", pool_images=pool_images)
        with tqdm(total=sum(counts.values()), desc="synthetic dataset", unit="img", disable=not show_progress,
                  file=sys.stdout) as bar:
            for split in SPLITS:
                if split in counts:
                    if coco_scale:
                        images, people = write_coco_scale_split(staging, split, counts[split], seed, pool_images, bar)
                    else:
                        images, people = write_split(staging, split, counts[split], seed, bar)
                    manifest["splits"][split] = {"images": images, "people_with_keypoints": people}
        with open(os.path.join(staging, "manifest.json"), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2)
        if os.path.exists(root):
            old = root + ".old"
            os.replace(root, old) if not os.path.exists(old) else shutil.rmtree(root)
            os.replace(staging, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, root)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile: nothing half-written stays
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"cannot write the synthetic dataset at {root}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def ensure_synthetic_dataset(root, show_progress=True):
    """Generate the default dataset at ``root`` unless it is there already (the quickstart's
    on-demand step). Returns True when it was generated now."""
    if os.path.isfile(os.path.join(root, "manifest.json")):
        return False
    if os.path.exists(root) and os.listdir(root):
        raise DataError(f"{root} exists but holds no synthetic dataset (no manifest.json); "
                        "remove it or point DATASET.ROOT elsewhere")
    if os.path.isdir(root):
        os.rmdir(root)
    generate_synthetic_dataset(root, show_progress=show_progress)
    return True
