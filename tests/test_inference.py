"""The test-time pipeline: resize and align, flip test, aggregation, back to the image."""

import numpy as np
import pytest
import torch

from litepose.config import load_config
from litepose.data.keypoints import CROWDPOSE
from litepose.data.normalize import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor, tensor_to_image
from litepose.data.targets import render_heatmaps
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
    # The short side fills the input exactly; the long side keeps the aspect ratio and is centred:
    # every long side here is even, so the release's centre int(long / 2 + 0.5) is its exact middle
    # (an odd one would sit half a source pixel off). 500x333 overhangs its 768 input by 0.38 px
    # on each side (768.8 px, the rounding above).
    corners = transform_points(np.array([[0.0, 0.0], [width, height]]), geometry.matrix)
    short_axis, long_axis = int(width > height), int(width <= height)
    size = (width, height)
    assert corners[1, short_axis] - corners[0, short_axis] == pytest.approx(512)
    assert corners[1, long_axis] - corners[0, long_axis] == pytest.approx(size[long_axis] * 512 / size[short_axis])
    assert corners[0, long_axis] + corners[1, long_axis] == pytest.approx(expected[long_axis])


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
    heatmaps = torch.from_numpy(maps.heatmaps)
    mirrored = heatmaps.flip(-1)[list(CROWDPOSE.flip_index)]
    tags = torch.from_numpy(maps.tags)
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


def _training_heatmaps(points, stride, width, height, channels):
    """A network output of ``channels`` maps at 1/``stride`` of a ``width`` x ``height`` input,
    holding the training target of ``points`` (input pixels) in its first channels: the release's
    Gaussian (sigma 2, window 6 sigma + 3) at ``int(x / stride), int(y / stride)``."""
    keypoints = torch.zeros(1, 1, len(points), 3, dtype=torch.float64)
    keypoints[0, 0, :, :2] = torch.from_numpy(points[:, :2] / stride)
    keypoints[0, 0, :, 2] = 2
    w, h = width // stride, height // stride
    maps = render_heatmaps(keypoints, max(w, h), torch.full((1, 1), 2.0))[..., :h, :w]  # square, cut to h x w
    out = torch.zeros(1, channels, h, w)
    out[:, :len(points)] = maps
    return out


@pytest.mark.parametrize("project", [True, False])
def test_a_training_target_decodes_to_known_image_pixels(project):
    """Outputs holding the training targets of one person decode to positions known exactly.

    The fine (1/2) output peaks at c = int(x / 2), which covers input pixels 2c and 2c + 1, centre
    2c + 1; the coarse (1/4) output peaks at int(x / 4), which bilinear upsampling spreads equally
    over fine pixels 2 int(x / 4) and 2 int(x / 4) + 1: the fine pixel's right (down) neighbour when
    c is even, its left (up) one when c is odd. With heatmaps of both outputs averaged, grouping's
    quarter-pixel step toward the higher neighbour (group.adjust_people) therefore points toward
    the coarse peak. Without PROJECT2IMAGE grouping works on the 1/2 map: c + 0.5 +- 0.25, input
    pixel 2c + 1 +- 0.5. With it the map is upsampled to the input: the coarse term tips the
    maximum to the one of 2c, 2c + 1 on the coarse side, and the step then points back into the
    fine pixel (its other input pixel, at 0.75 fine weight, beats the one beyond it, at 0.25):
    2c + 1 +- 0.25. Both are a quarter of the grouping map's pixel from the fine pixel's centre;
    their image pixels follow through the inverse of the resize. Quarter pixels are exact in
    float32 and the mapping back is float64, so the expected values hold to 1e-6 px (the
    continuous Gaussians this test used to render needed 3 px)."""
    cfg = load_config(CROWD_CFG, ["TEST.FLIP_TEST", "False", "TEST.PROJECT2IMAGE", str(project)])
    settings = InferenceSettings.from_config(cfg, None, 256)
    person = np.array([[100 + 20 * j, 50 + 13 * j, 2] for j in range(14)], np.float64)
    geometry = resize_geometry((640, 480), 256)
    on_input = transform_points(person, geometry.matrix)

    def forward(geometry):
        width, height = geometry.input_wh
        points = transform_points(person, geometry.matrix)
        return [_training_heatmaps(points, 4, width, height, 28), _training_heatmaps(points, 2, width, height, 14)]

    maps = compute_maps(forward, (640, 480), settings)
    assert maps.map_wh == (geometry.input_wh if project else (geometry.input_wh[0] // 2, geometry.input_wh[1] // 2))
    prediction = decode(maps, settings)
    assert prediction.keypoints.shape == (1, 14, 3)
    fine = np.floor(on_input[:, :2] / 2)                        # int(): the joints lie at positive pixels
    toward_coarse = np.where(fine % 2 == 0, 1.0, -1.0)
    assert all(set(axis) == {-1.0, 1.0} for axis in toward_coarse.T)  # both cases, in x and in y
    quarter = 0.25 if project else 0.5                          # a quarter of the grouping map's pixel
    expected_input = 2 * fine + 1 + quarter * toward_coarse
    to_image = np.linalg.inv(np.vstack([geometry.matrix, [0, 0, 1]]))[:2]
    np.testing.assert_allclose(prediction.keypoints[0, :, :2], transform_points(expected_input, to_image),
                               rtol=0, atol=1e-6)
    assert prediction.scores[0] == pytest.approx(prediction.keypoints[0, :, 2].mean(), abs=1e-6)
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
