"""Training data: augmentation moves image, joints and masks together; targets sit on the joints;
flips swap sides; crowds are ignored; the synthetic dataset is deterministic."""

import json

import cv2
import numpy as np
import pytest
import torch

from litepose.data.coco_format import KeypointAnnotations
from litepose.data.dataset import KeypointDataset, collate_samples, ignore_mask
from litepose.data.keypoints import COCO
from litepose.data.synthetic import generate_synthetic_dataset
from litepose.data.targets import TargetConfig, TrainBatch, joint_indices, prepare_batch, render_heatmaps
from litepose.data.transforms import AugmentConfig
from litepose.utils.affine import get_affine_transform

SIGMA = TargetConfig(2.0, False, 256.0, 2.0, False)
NO_AUGMENT = dict(max_rotation=0.0, min_scale=1.0, max_scale=1.0, max_translate=0.0)
L_WRIST, R_WRIST = 9, 10


def write_dataset(tmp_path, people, extra_annotations=(), size=(200, 160), markers=None):
    """One image with ``people`` (``{joint: (x, y)}`` dicts) and optional coloured markers."""
    width, height = size
    image = np.full((height, width, 3), 40, np.uint8)
    for (x, y), colour in (markers or {}).items():
        cv2.circle(image, (x, y), 2, colour, -1)
    (tmp_path / "images").mkdir(exist_ok=True)
    cv2.imwrite(str(tmp_path / "images" / "a.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    annotations = []
    for i, joints in enumerate(people):
        keypoints = [0] * 51
        for j, (x, y) in joints.items():
            keypoints[3 * j: 3 * j + 3] = [x, y, 2]
        annotations.append({"id": i + 1, "image_id": 1, "iscrowd": 0, "keypoints": keypoints,
                            "num_keypoints": len(joints), "bbox": [0, 0, 50, 100]})
    for k, ann in enumerate(extra_annotations):
        annotations.append({"id": 100 + k, "image_id": 1, **ann})
    content = {"images": [{"id": 1, "file_name": "a.png", "width": width, "height": height}],
               "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "ann.json").write_text(json.dumps(content))
    return KeypointAnnotations(tmp_path / "ann.json", tmp_path / "images", COCO)


def sample_batch(dataset, index=0, size=None):
    batch = collate_samples([dataset[index]])
    return batch, prepare_batch(batch, SIGMA, size or dataset.input_size)


def peak(heatmap):
    """(x, y) of a heatmap's maximum."""
    y, x = np.unravel_index(int(torch.argmax(heatmap)), heatmap.shape)
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_heatmap_peak_lands_on_the_transformed_joint(tmp_path, seed):
    # After a random affine (and maybe a flip) each joint's heatmap at each output peaks (value 1,
    # the Gaussian's centre, at one pixel only) exactly where the release's rule puts it: the
    # source joint through that output's own affine matrix (mirrored x -> R - 1 - x when flipped),
    # truncated toward zero. A red dot drawn on the left wrist checks that the image moved with it.
    source = {L_WRIST: (120, 70), R_WRIST: (60, 90)}
    annotations = write_dataset(tmp_path, [source], markers={(120, 70): (255, 0, 0)})
    dataset = KeypointDataset(annotations, 128, augment=AugmentConfig(max_rotation=30, min_scale=0.8, max_scale=1.2,
                                                                     max_translate=20, flip=0.5), seed=seed)
    raw, batch = sample_batch(dataset)
    center_x, center_y, box, rotation, flip, _ = raw["placement"][0].tolist()
    # The flipped image shows the person's left wrist where the right one's label now is.
    labels = {R_WRIST: L_WRIST, L_WRIST: R_WRIST} if flip else {L_WRIST: L_WRIST, R_WRIST: R_WRIST}
    for heatmaps in batch.heatmaps:
        resolution = heatmaps.shape[-1]
        matrix = get_affine_transform((center_x, center_y), box, rotation, (resolution, resolution))
        for joint, person_joint in labels.items():
            x, y = matrix @ np.array([*source[person_joint], 1.0])
            if flip:
                x = resolution - 1 - x
            x, y = int(x), int(y)                                   # toward zero, as the release
            assert 0 <= x < resolution and 0 <= y < resolution      # both wrists stay in view at these seeds
            heatmap = heatmaps[0, joint]
            assert heatmap[y, x] == 1 and int((heatmap == 1).sum()) == 1
    # The dot's centroid (redness-weighted): a bilinear warp is linear in the image, so only
    # sampling the disk on the pixel grid moves it off the joint (under 0.1 px in 40 seeds).
    image = raw["images"][0].permute(1, 2, 0).numpy().astype(float)
    redness = np.clip(image[..., 0] - image[..., 1], 0, None)
    ys, xs = np.mgrid[:redness.shape[0], :redness.shape[1]]
    centroid = [(redness * xs).sum() / redness.sum(), (redness * ys).sum() / redness.sum()]
    wrist = R_WRIST if flip else L_WRIST
    np.testing.assert_allclose(batch.keypoints[0, 0, wrist, :2].numpy(), centroid, rtol=0, atol=0.25)


def test_flipped_sample_swaps_left_and_right(tmp_path):
    annotations = write_dataset(tmp_path, [{L_WRIST: (150, 60), R_WRIST: (50, 100)}], size=(200, 200))
    plain = KeypointDataset(annotations, 200, augment=AugmentConfig(**NO_AUGMENT, flip=0.0))[0]
    flipped = KeypointDataset(annotations, 200, augment=AugmentConfig(**NO_AUGMENT, flip=1.0))[0]
    assert flipped["flipped"] and not plain["flipped"]
    # The person's left wrist (image x 150) is drawn at x 199 - 150 = 49 and is now labelled right.
    at_input = prepare_batch(collate_samples([flipped]), SIGMA).keypoints[0]
    np.testing.assert_allclose(at_input[0, R_WRIST, :2], [199 - 150, 60], atol=1e-9)
    np.testing.assert_allclose(at_input[0, L_WRIST, :2], [199 - 50, 100], atol=1e-9)
    at_input = prepare_batch(collate_samples([plain]), SIGMA).keypoints[0]
    np.testing.assert_allclose(at_input[0, L_WRIST, :2], [150, 60], atol=1e-9)
    assert torch.equal(flipped["images"], plain["images"].flip(-1))


def test_ignore_masks_cover_crowds_and_people_without_keypoints(tmp_path):
    crowd = {"iscrowd": 1, "segmentation": [[10, 10, 60, 10, 60, 60, 10, 60]], "bbox": [10, 10, 50, 50],
             "keypoints": [0] * 51, "num_keypoints": 0}
    no_joints = {"iscrowd": 0, "bbox": [120, 100, 40, 40], "keypoints": [0] * 51, "num_keypoints": 0}
    annotations = write_dataset(tmp_path, [{L_WRIST: (100, 20)}], [crowd, no_joints], size=(200, 200))
    dataset = KeypointDataset(annotations, 200, augment=AugmentConfig(**NO_AUGMENT, flip=0.0))
    _, batch = sample_batch(dataset)
    for mask in batch.masks:
        r = mask.shape[-1] / 200
        m = mask[0]
        assert m[int(15 * r):int(55 * r), int(15 * r):int(55 * r)].sum() == 0          # crowd polygon
        assert m[int(105 * r):int(135 * r), int(125 * r):int(155 * r)].sum() == 0      # box of the person
        assert m[int(70 * r):int(95 * r), int(70 * r):int(110 * r)].min() == 1         # elsewhere counts
    # The person with keypoints stays a target: (100, 20) is pixel (25, 5) of the 1/4 output.
    assert batch.heatmaps[0][0, L_WRIST, 5, 25] == 1 and batch.heatmaps[0][0, L_WRIST].max() == 1


def test_padding_outside_the_image_is_ignored_unless_the_switch_says_background(tmp_path):
    # The release ignores the padding (no loss there); DATASET.PAD_AS_BACKGROUND counts it as
    # background, so a network learns that test-time padding holds no one.
    crowd = {"iscrowd": 1, "segmentation": [[0, 0, 200, 0, 200, 200, 0, 200]], "keypoints": [0] * 51}
    annotations = write_dataset(tmp_path, [{L_WRIST: (100, 20)}], [crowd], size=(200, 200))
    augment = AugmentConfig(max_rotation=0.0, min_scale=1.5, max_scale=1.5, max_translate=0.0, flip=0.0)
    for switch, padding in ((False, 0), (True, 1)):
        masks = KeypointDataset(annotations, 300, augment=augment, pad_as_background=switch)[0]["masks"]
        mask = masks[1]                                     # 150 px: the image at 25..125
        assert mask.shape == (150, 150) and masks[0].shape == (75, 75)
        for region in (mask[:20], mask[-20:], mask[:, :20], mask[:, -20:]):
            assert (region == padding).all()
        assert mask[30:120, 30:120].max() == 0              # the crowd


def test_ignore_mask_reads_rle_segmentations(tmp_path):
    from pycocotools import mask as mask_api

    region = np.zeros((40, 50), np.uint8)
    region[5:15, 20:30] = 1
    compressed = mask_api.encode(np.asfortranarray(region))
    compressed["counts"] = compressed["counts"].decode("ascii")
    flat = region.flatten(order="F")        # COCO's uncompressed RLE: column-major runs, zeros first
    changes = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    uncompressed = {"size": [40, 50], "counts": counts}
    for segmentation in (compressed, uncompressed):
        ignored = ignore_mask([{"iscrowd": 1, "segmentation": segmentation}], 40, 50)
        assert ignored[5:15, 20].all() and not ignored[0, 0] and not ignored[20, 40]


def test_resized_batch_equals_a_batch_loaded_at_that_size(tmp_path):
    # The supernet trains each sub-network at its own size from one batch: the rebuilt targets
    # must be those of loading at that size directly.
    people = [{L_WRIST: (150, 60), R_WRIST: (50, 100), 0: (100, 30)}, {11: (30, 150), 12: (60, 170)}]
    annotations = write_dataset(tmp_path, people, size=(200, 200))
    augment = AugmentConfig(**NO_AUGMENT, flip=0.0)
    _, big = sample_batch(KeypointDataset(annotations, 256, augment=augment), size=128)
    _, small = sample_batch(KeypointDataset(annotations, 128, augment=augment))
    assert big.images.shape == small.images.shape == (1, 3, 128, 128)
    for a, b in zip(big.heatmaps, small.heatmaps):  # the same placement at the same resolution: the same targets
        assert torch.equal(a, b)
    for a, b in zip(big.joints, small.joints):
        assert torch.equal(a, b)


def test_targets_vectorised_over_people_and_batch():
    keypoints = torch.zeros(2, 3, 17, 3)
    keypoints[0, 0, 5] = torch.tensor([10.0, 20.0, 2])
    keypoints[0, 2, 5] = torch.tensor([40.0, 20.0, 1])     # an occluded joint still counts
    keypoints[1, 1, 3] = torch.tensor([63.0, 0.0, 2])
    keypoints[1, 0, 4] = torch.tensor([70.0, 5.0, 2])      # outside a 64 px output: no target
    heatmaps = render_heatmaps(keypoints, 64, torch.full((2, 3), 2.0))
    assert peak(heatmaps[0, 5]) in ((10, 20), (40, 20)) and heatmaps[0, 5, 20, 40] == heatmaps[0, 5, 20, 10] == 1
    assert heatmaps[1, 3, 0, 63] == 1 and heatmaps[1, 4].max() == 0
    assert heatmaps[0, 5, 20, 25] == 0          # beyond 3 sigma + 1 from both peaks
    joints = joint_indices(keypoints, 64)
    # Per person, the joints inside the output packed first (the release's layout).
    assert joints[0, 0, 0].tolist() == [5 * 64 * 64 + 20 * 64 + 10, 1] and joints[0, 0, 1:].sum() == 0
    assert joints[1, 1, 0].tolist() == [3 * 64 * 64 + 0 * 64 + 63, 1]
    assert joints[1, 0].sum() == 0 and joints[0, 1].sum() == 0


def test_train_batch_is_a_tuple_with_images_first(tmp_path):
    annotations = write_dataset(tmp_path, [{L_WRIST: (100, 80)}])
    _, batch = sample_batch(KeypointDataset(annotations, 64))
    assert isinstance(batch, TrainBatch) and batch[0] is batch.images
    assert batch.images.dtype == torch.float32 and abs(float(batch.images.mean())) < 3


def test_synthetic_dataset_is_deterministic_and_coco_shaped(tmp_path):
    generate_synthetic_dataset(tmp_path / "a", {"train": 6, "val": 2}, seed=3, show_progress=False)
    generate_synthetic_dataset(tmp_path / "b", {"train": 6, "val": 2}, seed=3, show_progress=False)
    generate_synthetic_dataset(tmp_path / "c", {"train": 6}, seed=4, show_progress=False)
    ann = "annotations/person_keypoints_train.json"
    assert (tmp_path / "a" / ann).read_bytes() == (tmp_path / "b" / ann).read_bytes()
    assert (tmp_path / "a" / ann).read_bytes() != (tmp_path / "c" / ann).read_bytes()
    first = sorted((tmp_path / "a" / "images" / "train").iterdir())[0]
    assert first.read_bytes() == (tmp_path / "b" / "images" / "train" / first.name).read_bytes()
    data = KeypointAnnotations(tmp_path / "a" / ann, tmp_path / "a" / "images" / "train", COCO)
    assert len(data) == 6
    people = [data.keypoints(i) for i in data.image_ids]
    assert sum(len(p) for p in people) >= 6
    visibility = set(np.concatenate([p[..., 2].ravel() for p in people]).tolist())
    assert visibility <= {0.0, 1.0, 2.0} and 2.0 in visibility


def test_synthetic_generation_never_leaves_a_partial_dataset(tmp_path, monkeypatch):
    import litepose.data.synthetic as synthetic

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_split", fail)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_dataset(tmp_path / "d", {"train": 2}, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_loader_workers_start_after_opencv_ran_in_the_parent(tmp_path):
    # Generating the synthetic data runs OpenCV's thread pool in this process; forked loader
    # workers used to hang in their first OpenCV call (the quickstart hung on its first epoch).
    import subprocess
    import sys

    from conftest import REPO

    script = f"""
from litepose.config import load_config
from litepose.data.build import training_batches
from litepose.data.synthetic import generate_synthetic_dataset
generate_synthetic_dataset({str(tmp_path / 'syn')!r}, {{'train': 8, 'val': 2}}, show_progress=False)
cfg = load_config('experiments/synthetic/quickstart.yaml', ['DATASET.ROOT', {str(tmp_path / 'syn')!r}, 'WORKERS', '2',
                                                            'TRAIN.IMAGES_PER_GPU', '2'])
print(sum(1 for _ in training_batches(cfg, 64, num_batches=3)))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "3", result.stderr


def test_synthetic_generation_where_it_cannot_write_is_one_line(tmp_path):
    from litepose.errors import DataError

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match=r"^cannot create the synthetic dataset at .*a_file/data: "):
        generate_synthetic_dataset(blocker / "data", {"train": 2}, show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_coco_scale_rehearsal_has_cocos_statistics_and_encodings(tmp_path):
    from litepose.data.synthetic import COCO_STATISTICS

    generate_synthetic_dataset(tmp_path / "c", {"train": 1000, "val": 50}, seed=0, show_progress=False,
                               coco_scale=True, pool_images=4)
    data = json.loads((tmp_path / "c" / "annotations" / "person_keypoints_train.json").read_text())
    stats, scale = COCO_STATISTICS["train"], 1000 / COCO_STATISTICS["train"]["images"]
    annotations = data["annotations"]
    assert len(data["images"]) == 1000 and len({i["file_name"] for i in data["images"]}) == 4
    assert len(annotations) == round(stats["annotations"] * scale)
    assert sum(a["num_keypoints"] > 0 for a in annotations) == round(stats["with_keypoints"] * scale)
    assert len({a["image_id"] for a in annotations}) == round(stats["images_with_people"] * scale)
    crowds = [a for a in annotations if a["iscrowd"]]
    people = [a for a in annotations if not a["iscrowd"]]
    assert crowds and all(isinstance(a["segmentation"]["counts"], list) for a in crowds)  # uncompressed RLE
    assert all(isinstance(a["segmentation"], list) and len(a["segmentation"][0]) >= 6 for a in people)  # polygons
    for a in people:
        assert a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
    on_disk = {p.name: cv2.imread(str(p)).shape[:2] for p in (tmp_path / "c" / "images" / "train").iterdir()}
    assert all(on_disk[i["file_name"]] == (i["height"], i["width"]) for i in data["images"])
    assert max(max(shape) for shape in on_disk.values()) == 640


def test_the_drawn_synthetic_set_uses_cocos_encodings(synthetic_root):
    data = json.loads((synthetic_root / "annotations" / "person_keypoints_train.json").read_text())
    for ann in data["annotations"]:
        if ann["iscrowd"]:
            assert isinstance(ann["segmentation"]["counts"], list)
        else:
            assert isinstance(ann["segmentation"], list)


def test_training_reads_a_packed_index_with_the_files_annotations(synthetic_root):
    """Loader workers share NumPy buffers, not the parsed file's objects; each image's
    annotations come back equal (segmentations kept where training decodes them)."""
    from litepose.data.coco_format import PackedAnnotations
    from litepose.data.coco_format import keypoint_count

    parsed = KeypointAnnotations(synthetic_root / "annotations" / "person_keypoints_train.json",
                                 synthetic_root / "images" / "train", COCO)
    dataset = KeypointDataset(parsed, 128)
    packed = dataset.annotations
    assert isinstance(packed, PackedAnnotations) and not hasattr(packed, "data")
    assert dataset.image_ids == [i for i in parsed.image_ids if parsed.annotations(i)]
    for image_id in dataset.image_ids:
        assert packed.image_path(image_id) == parsed.image_path(image_id)
        for ours, theirs in zip(packed.annotations(image_id), parsed.annotations(image_id), strict=True):
            masked = theirs["iscrowd"] or keypoint_count(theirs) == 0
            assert ours == (theirs if masked else {k: v for k, v in theirs.items() if k != "segmentation"})


def test_a_loader_resumed_mid_epoch_loads_the_uninterrupted_runs_next_batch(synthetic_root):
    from litepose.data.build import build_loader, set_loader_epoch

    parsed = KeypointAnnotations(synthetic_root / "annotations" / "person_keypoints_train.json",
                                 synthetic_root / "images" / "train", COCO)
    dataset = KeypointDataset(parsed, 64, augment=AugmentConfig(), seed=5)
    for rank in range(2):
        whole = build_loader(dataset, 2, seed=7, rank=rank, world_size=2)
        set_loader_epoch(whole, 3)
        batches = list(whole)
        resumed = build_loader(dataset, 2, seed=7, rank=rank, world_size=2)
        set_loader_epoch(resumed, 3, start_step=1)
        first = next(iter(resumed))
        assert first["image_id"].tolist() == batches[1]["image_id"].tolist()
        for key in ("images", "source_keypoints", "placement"):
            assert torch.equal(first[key], batches[1][key])


def test_data_scale_benchmark_resumes_on_the_same_batch(tmp_path):
    """``python -m benchmarks.data_scale --only resume``'s check, on a 300-image rehearsal."""
    from benchmarks.data_scale import resumed_batch_digest

    generate_synthetic_dataset(tmp_path / "c", {"train": 300}, seed=1, show_progress=False, coco_scale=True,
                               pool_images=3)
    args = (str(tmp_path / "c"), 2, 5, 1, 2, 4, 64)
    uninterrupted, resumed = (resumed_batch_digest(*args, flag) for flag in (True, False))
    assert uninterrupted == resumed and len(uninterrupted["image_ids"]) == 4
    other = resumed_batch_digest(*args[:2], 6, *args[3:], False)
    assert other["image_ids"] != resumed["image_ids"]  # the check can tell batches apart


@pytest.mark.parametrize("variant", [[], ["--annotation-only", "--no-index-cache"]], ids=["cached", "annotations"])
def test_data_scale_memory_runs_one_whole_epoch_in_every_torchrun_process(tmp_path, capsys, variant):
    """``python -m benchmarks.data_scale --only memory``: each of 2 torchrun processes loads its
    whole share of the epoch with its workers, and the node total adds up every process."""
    from benchmarks.data_scale import dataset_config, main
    from litepose.cli import run_cli
    from litepose.data.build import build_dataset

    root = tmp_path / "c"
    generate_synthetic_dataset(root, {"train": 300}, seed=1, show_progress=False, coco_scale=True, pool_images=3)
    out = tmp_path / "rows.jsonl"
    with pytest.raises(SystemExit) as done:
        run_cli(main, ["--root", str(root), "--only", "memory", "--workers", "2", "--input-size", "64",
                       "--points", "2", "--output", str(out), *variant])
    assert done.value.code == 0, capsys.readouterr().out[-2000:]
    row = json.loads(out.read_text().splitlines()[-1])
    images = len(build_dataset(dataset_config(root), 64))
    per_rank = images // 2 // 16 * 16
    assert [r["rank"] for r in row["processes_rows"]] == [0, 1]
    assert [r["images"] for r in row["processes_rows"]] == [per_rank, per_rank]
    for rank in row["processes_rows"]:
        halfway, end = (point["batches"] for point in rank["curve"])
        assert 0 < halfway < end == per_rank // 16  # sampled along the epoch, and at its last batch
        assert all(len(point["worker_uss_mb"]) == 2 and min(point["worker_rss_mb"]) > 0 for point in rank["curve"])
    agent = row["processes_rows"][0]["agent"]["pss_mb"]
    assert row["node_total_pss_mb"][-1] == agent + sum(r["curve"][-1]["total_pss_mb"] for r in row["processes_rows"])
