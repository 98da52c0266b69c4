"""Training targets follow the release's rules: sample by sample equal to a loop-by-loop
restatement of the release's dataset code (tests/reference_targets.py) for the same random
draws, on real COCO and CrowdPose images and on the synthetic set; a hand-computed case pins
the conventions (integer pixel, flip at each output, packed AE indices, masks)."""

import math

import numpy as np
import pytest
import torch

from conftest import REPO, SHARED
from litepose.data.coco_format import KeypointAnnotations, read_image
from litepose.data.dataset import KeypointDataset, collate_samples
from litepose.data.keypoints import COCO, CROWDPOSE
from litepose.data.targets import TargetConfig, prepare_batch
from litepose.data.transforms import AugmentConfig, Placement
from reference_targets import release_sample

TARGETS = TargetConfig(2.0, False, 256.0, 2.0, False)
RELEASE_AUGMENT = AugmentConfig(max_rotation=30, min_scale=0.75, max_scale=1.5, max_translate=40, flip=0.5)
FIXTURES = {
    "coco": (SHARED / "data" / "coco_mini" / "person_keypoints_mini.json", SHARED / "data" / "coco_mini" / "images",
             COCO),
    "crowdpose": (SHARED / "data" / "crowdpose_mini" / "crowdpose_mini.json",
                  SHARED / "data" / "crowdpose_mini" / "images", CROWDPOSE),
}


def fixture(name):
    ann_file, image_dir, info = FIXTURES[name]
    if not ann_file.is_file():
        pytest.skip(f"{ann_file} not present (../shared is absent)")
    return KeypointAnnotations(ann_file, image_dir, info)


def draws_of(sample, width, height):
    placement = Placement.from_array(sample["placement"].numpy())
    return {"aug_scale": placement.aug_scale, "rotation": placement.rotation,
            "dx": placement.center_x - width / 2, "dy": placement.center_y - height / 2, "flip": placement.flip}


def assert_same_as_release(annotations, dataset, index, crowdpose):
    sample = dataset[index]
    image_id = dataset.image_ids[index]
    image = read_image(annotations.image_path(image_id))
    height, width = image.shape[:2]
    draws = draws_of(sample, width, height)
    assert float(draws["dx"]).is_integer() and float(draws["dy"]).is_integer()
    ref_image, ref_heatmaps, ref_masks, ref_joints = release_sample(
        image, annotations.annotations(image_id), draws, dataset.input_size, annotations.info.flip_index,
        dataset.max_people, TARGETS.sigma, crowdpose)
    batch = prepare_batch(collate_samples([sample]), TARGETS)
    for ours, ref in zip(batch.heatmaps, ref_heatmaps):
        # float32 of the same float64 Gaussian: equal, or one float32 step apart where two exp
        # implementations round differently.
        np.testing.assert_allclose(ours[0].numpy(), ref, rtol=2 ** -23, atol=0)
    for ours, ref in zip(batch.masks, ref_masks):
        np.testing.assert_array_equal(ours[0].numpy(), ref)
    for ours, ref in zip(batch.joints, ref_joints):
        np.testing.assert_array_equal(ours[0].numpy(), ref)
    # The image: the same warp up to OpenCV's fixed-point rounding of two equal matrices.
    difference = np.abs(sample["images"].permute(1, 2, 0).numpy().astype(int) - ref_image.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01
    return draws


@pytest.mark.parametrize("name", ["coco", "crowdpose"])
def test_targets_equal_the_releases_on_real_images(name):
    annotations = fixture(name)
    flips = set()
    for seed in range(6):
        dataset = KeypointDataset(annotations, 256, augment=RELEASE_AUGMENT, seed=seed,
                                  ignore_regions=name != "crowdpose")
        for index in range(len(dataset)):
            draws = assert_same_as_release(annotations, dataset, index, crowdpose=name == "crowdpose")
            flips.add(draws["flip"])
    assert flips == {True, False}   # both branches were compared


def test_targets_equal_the_releases_on_synthetic_images(synthetic_root):
    annotations = KeypointAnnotations(synthetic_root / "annotations" / "person_keypoints_train.json",
                                      synthetic_root / "images" / "train", COCO)
    for seed in range(2):
        dataset = KeypointDataset(annotations, 128, augment=RELEASE_AUGMENT, seed=seed)
        for index in range(len(dataset)):
            assert_same_as_release(annotations, dataset, index, crowdpose=False)


def test_only_the_first_people_in_the_file_are_kept(tmp_path):
    from test_data import write_dataset

    people = [{0: (20 + 10 * i, 50)} for i in range(5)]
    annotations = write_dataset(tmp_path, people, size=(200, 160))
    dataset = KeypointDataset(annotations, 128, max_people=3, augment=None)
    kept = dataset[0]["source_keypoints"][:, 0, 0].tolist()
    assert kept == [20.0, 30.0, 40.0]


def test_translation_is_drawn_from_minus_limit_up_to_but_not_including_limit():
    from litepose.data.transforms import sample_placement

    augment = AugmentConfig(max_rotation=0, min_scale=1.0, max_scale=1.0, max_translate=40, flip=0)
    rng = np.random.default_rng(0)
    shifts = {sample_placement(100, 100, augment, rng).center_x - 50 for _ in range(2000)}
    assert min(shifts) == -20 and max(shifts) == 19      # L = int(40 * 100 / 200) = 20


def _hand_case(tmp_path):
    """A 200 x 100 image, a 128 px box (scale 1.28 of the short side), rotated 90 degrees,
    flipped, at input 64 (outputs 16 and 32). The release's matrix at output R maps a source
    point p to (R/2 + s (p_y - 50), R/2 - s (p_x - 100)), s = R / 128, then x -> R - 1 - x."""
    from test_data import write_dataset

    crowd = {"iscrowd": 1, "num_keypoints": 0, "keypoints": [0] * 51, "bbox": [100, 0, 100, 40],
             "segmentation": [[100, 0, 200, 0, 200, 40, 100, 40]]}
    annotations = write_dataset(tmp_path, [{9: (110, 60), 0: (101, 110)}], [crowd], size=(200, 100))
    dataset = KeypointDataset(annotations, 64, augment=None)
    placement = Placement(100.0, 50.0, 128.0, 90.0, True, 1.28)
    sample = dataset[0]
    sample["placement"] = torch.from_numpy(placement.as_array())
    sample["source_keypoints"] = sample["source_keypoints"][:, list(COCO.flip_index)]
    from litepose.data.transforms import warp_loss_mask

    valid = np.ones((100, 200), np.uint8)
    valid[0:40, 100:200] = 0
    sample["masks"] = [torch.from_numpy(warp_loss_mask(valid, placement, r)) for r in (16, 32)]
    return prepare_batch(collate_samples([sample]), TARGETS)


def test_a_flipped_rotated_scaled_sample_computed_by_hand(tmp_path):
    batch = _hand_case(tmp_path)
    heatmap16, heatmap32 = batch.heatmaps[0][0], batch.heatmaps[1][0]
    # Left wrist (9) at (110, 60): R=16 -> (9.25, 6.75) -> flipped x 5.75 -> pixel (5, 6), now the
    # right wrist (10); R=32 -> (18.5, 13.5) -> flipped 12.5 -> pixel (12, 13).
    assert heatmap16[10, 6, 5] == 1 and heatmap16[9].max() == 0
    assert heatmap16[10, 6, 6] == pytest.approx(math.exp(-1 / 8), rel=1e-6)
    assert heatmap16[10, 7, 6] == pytest.approx(math.exp(-2 / 8), rel=1e-6)
    assert heatmap16[10, 6, 12] == pytest.approx(math.exp(-49 / 8), rel=1e-6)   # the window's edge ...
    assert heatmap16[10, 6, 13] == 0                                             # ... and beyond it
    assert heatmap32[10, 13, 12] == 1
    # The nose at (101, 110): R=16 -> (15.5, 7.875) -> flipped x -0.5 -> int 0, inside (the
    # release truncates toward zero); R=32 -> (31, 15.75) -> flipped 0.
    assert heatmap16[0, 7, 0] == 1 and heatmap32[0, 15, 0] == 1
    # AE indices: packed in joint order (nose, then right wrist), j R^2 + y R + x.
    joints16 = batch.joints[0][0, 0].tolist()
    assert joints16[:2] == [[0 * 256 + 7 * 16 + 0, 1], [10 * 256 + 6 * 16 + 5, 1]]
    assert all(entry == [0, 0] for entry in joints16[2:])
    assert batch.joints[1][0, 0, :2].tolist() == [[15 * 32 + 0, 1], [10 * 1024 + 13 * 32 + 12, 1]]
    # Masks warped straight to 16: source y < 0 lands in unflipped columns 0-1 (flipped 14-15): no
    # loss outside the image. The crowd box (x >= 100, y < 40) lands in unflipped rows <= 8 and
    # columns 2..5 (flipped 10..13).
    mask16 = batch.masks[0][0]
    assert mask16[:, 14:].max() == 0 and mask16[9:, 13].min() == 1
    assert mask16[2:7, 10:13].max() == 0 and mask16[10:, 2:13].min() == 1


def test_padding_switch_counts_the_outside_as_background(tmp_path):
    from litepose.data.transforms import warp_loss_mask

    placement = Placement(100.0, 50.0, 128.0, 90.0, True, 1.28)
    valid = np.ones((100, 200), np.uint8)
    release = warp_loss_mask(valid, placement, 16)
    padded = warp_loss_mask(valid, placement, 16, pad_as_background=True)
    assert release[:, 14:].max() == 0 and padded.min() == 1


def _grid_people(size, images=8):
    """One person per image whose joints' sub-pixel phases are spread evenly over [0, 4) input
    pixels in x and in y (both output strides), so mean biases carry no sampling noise."""
    joint = np.arange(17)
    for k in range(images):
        phase = (k * 17 + joint) / (images * 17)
        keypoints = np.zeros((1, 17, 3))
        keypoints[0, :, 0] = 0.2 * size + 0.6 * size * joint / 16 + 4 * phase
        keypoints[0, :, 1] = 0.2 * size + 0.6 * size * ((joint * 7) % 17) / 16 + 4 * ((7 * phase + 0.5) % 1)
        keypoints[0, :, 2] = 2
        yield keypoints


def decoding_bias(size, flip):
    from litepose.config import load_config
    from litepose.evaluation.oracle import render_outputs
    from litepose.inference import InferenceSettings, compute_maps, decode

    cfg = load_config("experiments/synthetic/quickstart.yaml", ["TEST.FLIP_TEST", str(flip)])
    settings = InferenceSettings.from_config(cfg, None, size)
    targets = TargetConfig.from_config(cfg)
    errors = []
    for keypoints in _grid_people(size):
        maps = compute_maps(lambda geometry: render_outputs(keypoints, geometry, cfg, settings, targets),
                            (size, size), settings)
        prediction = decode(maps, settings)
        assert len(prediction.keypoints) == 1
        errors.append(prediction.keypoints[0, :, :2] - keypoints[0, :, :2])
    return np.concatenate(errors).mean(axis=0)


@pytest.mark.parametrize("size", [128, 256, 512])
def test_perfect_targets_decode_onto_the_joints(size, monkeypatch):
    monkeypatch.chdir(REPO)
    bias_x, bias_y = decoding_bias(size, flip=False)
    assert abs(bias_x) < 0.05 and abs(bias_y) < 0.05
    # With the flip test the release mirrors the input at input resolution (x -> S - 1 - x) but
    # the maps at output resolution (i -> R - 1 - i): the mirrored pass lands S / R - 1 input
    # pixels (3 at 1/4, 1 at 1/2) right of the direct one, and the average decodes ~0.6 px right.
    # valid.py keeps this by default, as the release; y is untouched.
    flip_x, flip_y = decoding_bias(size, flip=True)
    assert abs(flip_y) < 0.05 and 0.5 < flip_x < 0.75


def test_targets_equal_the_releases_on_the_coco_scale_rehearsal(tmp_path):
    """COCO's encodings (people as polygons, crowds as uncompressed RLE) read as the release's
    mask code reads them, in a rehearsal set scaled down to 400 images."""
    from litepose.data.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(tmp_path / "c", {"train": 400}, seed=2, show_progress=False, coco_scale=True,
                               pool_images=3)
    annotations = KeypointAnnotations(tmp_path / "c" / "annotations" / "person_keypoints_train.json",
                                      tmp_path / "c" / "images" / "train", COCO)
    dataset = KeypointDataset(annotations, 128, augment=RELEASE_AUGMENT, seed=0)
    crowded = [i for i, image_id in enumerate(dataset.image_ids)
               if any(a["iscrowd"] for a in annotations.annotations(image_id))]
    unlabelled = [i for i, image_id in enumerate(dataset.image_ids)
                  if any(a["num_keypoints"] == 0 and not a["iscrowd"] for a in annotations.annotations(image_id))]
    assert crowded and unlabelled
    for index in crowded[:2] + unlabelled[:2] + [0]:
        assert_same_as_release(annotations, dataset, index, crowdpose=False)


def test_targets_rendered_by_loader_workers_equal_those_of_the_training_process(synthetic_root):
    """The CPU trainer's placement (``build_loader(worker_targets=...)``) changes no value."""
    from litepose.data.build import build_loader, set_loader_epoch

    annotations = KeypointAnnotations(synthetic_root / "annotations" / "person_keypoints_train.json",
                                      synthetic_root / "images" / "train", COCO)
    dataset = KeypointDataset(annotations, 128, augment=RELEASE_AUGMENT, seed=0)
    plain, rendered = (build_loader(dataset, 4, workers=1, worker_targets=targets) for targets in (None, TARGETS))
    for loader in (plain, rendered):
        set_loader_epoch(loader, 1)
    for ours, theirs in zip(plain, rendered):
        assert "targets" not in ours and theirs["targets"]["input_size"] == 128
        here, there = prepare_batch(ours, TARGETS), prepare_batch(theirs, TARGETS)
        for a, b in zip(here.heatmaps + here.joints + here.masks, there.heatmaps + there.joints + there.masks):
            assert a.dtype == b.dtype and torch.equal(a, b)
        # Another size (a supernet's sub-network) is rendered by the training process.
        assert all(torch.equal(a, b) for a, b in zip(prepare_batch(ours, TARGETS, 64).heatmaps,
                                                     prepare_batch(theirs, TARGETS, 64).heatmaps))
