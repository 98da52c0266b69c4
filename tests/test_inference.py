"""The test-time pipeline: resize and align, flip test, aggregation, back to the image."""

import numpy as np
import pytest
import torch

from litepose.config import load_config
from litepose.data.keypoints import CROWDPOSE
from litepose.data.normalize import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor, tensor_to_image
from litepose.errors import ConfigError
from litepose.inference import InferenceSettings, compute_maps, decode, predict, resize_geometry
from litepose.models import build_model
from litepose.utils.affine import transform_points
from conftest import arch_path

CROWD_CFG = "experiments/crowd_pose/mobilenet/mobile.yaml"


# (500, 333): the release's (x + 63) // 64 * 64 on a fractional 768.8 gives 768, not 832.
@pytest.mark.parametrize("width,height,expected", [(640, 480, (704, 512)), (480, 640, (512, 704)),
                                                   (500, 333, (768, 512)), (512, 512, (512, 512))])
def test_short_side_to_input_size_long_side_aligned_to_64(width, height, expected):
    geometry = resize_geometry((width, height), 512)
    assert geometry.input_wh == expected
    # The short side fills the input exactly; the long side, centred, fits within a pixel.
    corners = transform_points(np.array([[0.0, 0.0], [width, height]]), geometry.matrix)
    short_axis = int(width > height)
    assert corners[1, short_axis] - corners[0, short_axis] == pytest.approx(512)
    assert corners[0, 1 - short_axis] + corners[1, 1 - short_axis] == pytest.approx(expected[1 - short_axis], abs=1)
    assert corners[0, 1 - short_axis] >= -1


def test_scales_resize_around_the_smallest_and_map_back_exactly():
    big = resize_geometry((640, 480), 512, scale=2.0, min_scale=0.5)
    small = resize_geometry((640, 480), 512, scale=0.5, min_scale=0.5)
    assert small.input_wh == (384, 256) and big.input_wh == (1536, 1024)
    points = np.array([[10.0, 20.0], [600.0, 400.0]])
    for geometry in (big, small):
        on_map = transform_points(points, geometry.matrix) / 2  # a map at half the input size
        back = transform_points(on_map, geometry.to_image_matrix((geometry.input_wh[0] / 2, geometry.input_wh[1] / 2)))
        np.testing.assert_allclose(back, points, atol=1e-6)


def test_normalisation_is_imagenet_on_rgb_in_unit_range():
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = (255, 0, 0)
    tensor = image_to_tensor(image)
    assert tensor[0, 0, 0] == pytest.approx((1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0])
    assert tensor[1, 0, 0] == pytest.approx(-IMAGENET_MEAN[1] / IMAGENET_STD[1])
    np.testing.assert_array_equal(tensor_to_image(tensor), image)


@pytest.fixture(scope="module")
def xs_model():
    cfg = load_config(CROWD_CFG)
    torch.manual_seed(0)
    return cfg, build_model(cfg, str(arch_path("XS"))).eval()


def _mirrored(image):
    return np.concatenate([image, image[:, ::-1]], axis=1)


@pytest.mark.parametrize("flip", [True, False])
def test_flip_test_on_a_symmetric_input_gives_symmetric_heatmaps(xs_model, flip):
    cfg, model = xs_model
    cfg = load_config(CROWD_CFG, ["TEST.FLIP_TEST", str(flip)])
    settings = InferenceSettings.from_config(cfg, model)
    rng = np.random.default_rng(0)
    image = _mirrored((rng.random((256, 128, 3)) * 255).astype(np.uint8))  # 256x256: no resampling
    maps = predict(model, image, settings, keep_maps=True).maps
    heatmaps = maps.heatmaps
    mirrored = heatmaps.flip(-1)[list(CROWDPOSE.flip_index)]
    tags = maps.tags
    difference = (heatmaps - mirrored).abs().max().item()
    if flip:
        assert difference < 1e-5
        assert tags.shape[-1] == 2  # the flipped pass contributes its own tag dimension
        np.testing.assert_allclose(tags[..., 1], tags[..., 0].flip(-1)[list(CROWDPOSE.flip_index)], atol=1e-5)
    else:
        assert difference > 1e-3  # a random network is not symmetric by itself: the test has teeth
        assert tags.shape[-1] == 1


def _fake_forward(settings, joints=14, value=0.5):
    """Outputs of LitePose's layout: [B, 2J, H/4, W/4] (heatmaps, tags) and [B, J, H/2, W/2]."""
    def forward(geometry):
        width, height = geometry.input_wh
        batch = 2 if settings.flip else 1
        coarse = torch.full((batch, 2 * joints, height // 4, width // 4), value)
        coarse[:, joints:] = 1.0 + torch.arange(batch).view(batch, 1, 1, 1) * 10  # tags differ per pass
        fine = torch.full((batch, joints, height // 2, width // 2), value * 3)
        return [coarse, fine]
    return forward


def test_aggregation_averages_heatmaps_of_both_outputs_and_projects_to_the_input():
    cfg = load_config(CROWD_CFG)
    settings = InferenceSettings.from_config(cfg, None, 512)
    maps = compute_maps(_fake_forward(settings), (640, 480), settings)
    assert tuple(maps.heatmaps.shape) == (14, 512, 704)
    assert maps.heatmaps.mean().item() == pytest.approx((0.5 + 1.5) / 2)
    assert tuple(maps.tags.shape) == (14, 512, 704, 2)
    assert maps.tags[..., 0].mean().item() == pytest.approx(1.0) and maps.tags[..., 1].mean().item() == pytest.approx(11.0)


def test_without_projection_maps_stay_at_the_finest_output_and_multiscale_tags_come_from_scale_one():
    cfg = load_config(CROWD_CFG, ["TEST.PROJECT2IMAGE", "False", "TEST.SCALE_FACTOR", "[2, 1]", "TEST.FLIP_TEST", "False"])
    settings = InferenceSettings.from_config(cfg, None, 256)
    maps = compute_maps(_fake_forward(settings), (640, 480), settings)
    # The largest scale sets the size (input 768x512 at scale 2, maps at 1/2); scale 1 is resized onto it.
    assert tuple(maps.heatmaps.shape) == (14, 256, 384)
    assert tuple(maps.tags.shape) == (14, 256, 384, 1)
    assert maps.heatmaps.mean().item() == pytest.approx(1.0)


def test_predictions_are_mapped_back_to_image_pixels():
    """A perfect single-person output decodes to that person in image pixels."""
    cfg = load_config(CROWD_CFG, ["TEST.FLIP_TEST", "False"])
    settings = InferenceSettings.from_config(cfg, None, 256)
    person = np.array([[100 + 20 * j, 50 + 15 * j, 2] for j in range(14)], np.float32)

    def forward(geometry):
        width, height = geometry.input_wh
        points = transform_points(person, geometry.matrix)
        outputs = []
        for stride, channels in ((4, 28), (2, 14)):
            out = torch.zeros(1, channels, height // stride, width // stride)
            ys, xs = np.mgrid[0:height // stride, 0:width // stride]
            for j, (x, y, _) in enumerate(points):
                g = np.exp(-((xs - x / stride) ** 2 + (ys - y / stride) ** 2) / 8)
                out[0, j] = torch.from_numpy(g)
            outputs.append(out)
        return outputs

    prediction = decode(compute_maps(forward, (640, 480), settings), settings)
    assert prediction.keypoints.shape == (1, 14, 3)
    # Within the release's decoding error: the +0.5 pixel convention and quarter steps at 1/2 scale.
    np.testing.assert_allclose(prediction.keypoints[0, :, :2], person[:, :2], atol=3.0)
    assert prediction.scores[0] == pytest.approx(prediction.keypoints[0, :, 2].mean(), abs=1e-5)
    assert set(prediction.times) == {"network", "aggregate", "grouping"}


def test_input_size_comes_from_the_architecture_unless_given(xs_model):
    cfg, model = xs_model
    assert InferenceSettings.from_config(cfg, model).input_size == 256
    assert InferenceSettings.from_config(cfg, model, 320).input_size == 320
    assert InferenceSettings.from_config(cfg, None).input_size == cfg.DATASET.INPUT_SIZE


def test_settings_reject_unusable_test_configs():
    with pytest.raises(ConfigError, match="must include 1"):
        InferenceSettings.from_config(load_config(CROWD_CFG, ["TEST.SCALE_FACTOR", "[0.5, 2]"]))
    with pytest.raises(ConfigError, match="TEST.WITH_HEATMAPS selects no output"):
        InferenceSettings.from_config(load_config(CROWD_CFG, ["TEST.WITH_HEATMAPS", "(False, False)"]))
    with pytest.raises(ConfigError, match="TEST.WITH_AE selects no output"):
        InferenceSettings.from_config(load_config(CROWD_CFG, ["TEST.WITH_AE", "(False, True)"]))
