"""Pictures: people drawn as skeletons, and heatmap / tag-map debug images.

Images are RGB uint8 arrays; ``write_image`` stores them (atomically) in the format the
file name asks for. The limb table is the dataset's (``litepose.data.keypoints``).
"""

import colorsys
import os

import cv2
import numpy as np

from .io import atomic_write_bytes


def person_colors(count):
    """``count`` well-separated RGB colours (golden-ratio hues), stable across calls."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb((0.61803398875 * i) % 1.0, 0.85, 1.0))
            for i in range(count)]


def drawn_count(keypoints, min_score=0.05):
    """How many people of ``keypoints [P, J, 3]`` ``draw_people`` draws: those with a joint
    scoring above ``min_score`` (the count a picture's caption should give)."""
    if len(keypoints) == 0:
        return 0
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(len(keypoints), -1, 3)
    return int((keypoints[:, :, 2] > min_score).any(axis=1).sum())


def draw_people(image, keypoints, skeleton, min_score=0.05, colors=None, thickness=None):
    """A copy of ``image`` with every person of ``keypoints [P, J, 3]`` (x, y, score) drawn:
    limbs of ``skeleton`` between joints scoring above ``min_score``, then the joints, one
    colour per person."""
    canvas = np.ascontiguousarray(image).copy()
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(len(keypoints), -1, 3) if len(keypoints) else \
        np.zeros((0, 0, 3))
    colors = colors or person_colors(len(keypoints))
    scale = max(canvas.shape[:2]) / 640.0
    thickness = thickness or max(1, int(round(2 * scale)))
    radius = max(2, int(round(3 * scale)))
    for person, color in zip(keypoints, colors):
        shown = person[:, 2] > min_score
        points = [(int(round(x)), int(round(y))) for x, y in person[:, :2]]
        for a, b in skeleton:
            if shown[a] and shown[b]:
                cv2.line(canvas, points[a], points[b], color, thickness, cv2.LINE_AA)
        for j in np.flatnonzero(shown):
            cv2.circle(canvas, points[j], radius, color, -1, cv2.LINE_AA)
            cv2.circle(canvas, points[j], radius, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def _resize(image, width, height):
    return cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)


def heatmap_grid(image, heatmaps, names=None, tile_width=192):
    """One row per joint group: the image, then each joint's heatmap (``[J, H, W]``) in red over
    the image, labelled; as one RGB picture for debugging."""
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    joints, height, width = heatmaps.shape
    tile_height = max(1, int(round(tile_width * height / width)))
    base = _resize(image, tile_width, tile_height).astype(np.float32)
    tiles = [base.astype(np.uint8)]
    for j in range(joints):
        heat = np.clip(_resize(heatmaps[j], tile_width, tile_height), 0, 1)
        overlay = base * (1 - 0.7 * heat[..., None]) + np.array([255, 0, 0], np.float32) * 0.7 * heat[..., None]
        tile = overlay.clip(0, 255).astype(np.uint8)
        label = names[j] if names else str(j)
        cv2.putText(tile, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return _grid(tiles, columns=6)


def tagmap_grid(image, tags, names=None, tile_width=192):
    """Tag maps ``[J, H, W]`` (one tag dimension) as colour images, each map's range spread over
    a colour scale, after the image; as one RGB picture for debugging."""
    tags = np.asarray(tags, dtype=np.float32)
    joints, height, width = tags.shape
    tile_height = max(1, int(round(tile_width * height / width)))
    tiles = [_resize(image, tile_width, tile_height)]
    for j in range(joints):
        plane = _resize(tags[j], tile_width, tile_height)
        low, high = float(plane.min()), float(plane.max())
        scaled = ((plane - low) / (high - low + 1e-6) * 255).astype(np.uint8)
        tile = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        label = f"{names[j] if names else j} [{low:.2f}, {high:.2f}]"
        cv2.putText(tile, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return _grid(tiles, columns=6)


def _grid(tiles, columns):
    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    canvas = np.zeros((rows * height, columns * width, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[r * height:(r + 1) * height, c * width:(c + 1) * width] = tile
    return canvas


def write_image(path, image):
    """Write an RGB image; the extension picks the format. Atomic: no half-written file."""
    extension = os.path.splitext(path)[1] or ".jpg"
    ok, data = cv2.imencode(extension, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode an image as {extension}: {path}")
    atomic_write_bytes(path, data.tobytes())
