import random

import pytest
import torch

from conftest import ARCH_NAMES, JOINTS, arch_path
from helpers import max_abs_diff, random_state_from_shapes, randomize_
from litepose.arch import load_arch
from litepose.config import load_config
from litepose.errors import ArchError, CheckpointError, ConfigError
from litepose.models import LitePose, SuperLitePose, build_model, load_checkpoint
from litepose.models.space import SearchSpace
from litepose.utils.device import resolve_device
from reference_litepose import reference_forward

WIDE_SPACE = SearchSpace(kernel_sizes=(3, 5, 7), expansions=(3, 4, 6),
                         stage_blocks=((4, 5, 6), (6, 8), (8, 10), (8, 10)))


def config(dataset="crowd_pose", supernet=False):
    kind = "supermobile" if supernet else "mobile"
    return load_config(f"experiments/{dataset}/mobilenet/{kind}.yaml")


@pytest.mark.parametrize("dataset", ["crowd_pose", "coco"])
@pytest.mark.parametrize("name", ARCH_NAMES)
def test_output_shapes(name, dataset):
    joints = JOINTS[dataset]
    model = build_model(config(dataset), str(arch_path(name))).eval()
    with torch.no_grad():
        outputs = model(torch.zeros(2, 3, 128, 192))
    assert [tuple(o.shape) for o in outputs] == [(2, 2 * joints, 32, 48), (2, joints, 64, 96)]


def _official_entries(shapes):
    for key in shapes:
        dataset, name = key.split("/")
        yield key, dataset, name


def _model_for(dataset, name):
    if name == "supernet":
        return build_model(config(dataset, supernet=True))
    return build_model(config(dataset), str(arch_path(name.replace("search-", ""))))


@pytest.mark.parametrize("prefix", ["", "module.", "1."])
def test_every_official_checkpoint_format_loads_strictly(official_shapes, tmp_path, prefix):
    for key, dataset, name in _official_entries(official_shapes):
        state = random_state_from_shapes(official_shapes[key])
        path = tmp_path / f"{dataset}-{name}.pth"
        torch.save({prefix + k: v for k, v in state.items()}, path)
        model = _model_for(dataset, name)
        load_checkpoint(model, path)
        loaded = model.state_dict()
        assert set(loaded) == set(state), key
        assert all(torch.equal(loaded[k], state[k]) for k in state), key


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_outputs_equal_an_independent_reference(official_shapes, name):
    """Given the release's weights, our network computes what the facts file describes."""
    state = random_state_from_shapes(official_shapes[f"crowd_pose/search-{name}"], seed=1)
    arch = load_arch(arch_path(name))
    model = LitePose(arch, num_joints=14)
    model.load_state_dict(state)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        ours = model.eval()(x)
        reference = reference_forward(state, arch, x)
    assert max_abs_diff(ours, reference) < 1e-5


def test_supernet_with_released_arch_equals_reference_on_sliced_weights(official_shapes):
    """The supernet runs a sub-network on the first channels of every weight."""
    super_state = random_state_from_shapes(official_shapes["crowd_pose/supernet"], seed=2)
    supernet = build_model(config(supernet=True))
    supernet.load_state_dict(super_state)
    arch = load_arch(arch_path("XS"))
    supernet.set_active_arch(arch)
    sub_shapes = official_shapes["crowd_pose/search-XS"]
    sliced = {k: super_state[k][tuple(slice(0, n) for n in shape)] for k, shape in sub_shapes.items()}
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert max_abs_diff(supernet.eval()(x), reference_forward(sliced, arch, x)) < 1e-5


def test_smaller_kernels_come_from_the_transformed_centre():
    supernet = randomize_(SuperLitePose(WIDE_SPACE, num_joints=14))
    block = supernet.stage[1][2]
    for kernel, linear, start in ((5, block.Linear5x5, 1), (3, block.Linear3x3, 2)):
        block.depth_conv[0].set_active(kernel)
        centre = block.depth_conv[0].weight[:40, :, start:start + kernel, start:start + kernel]
        expected = (centre.reshape(40, 1, -1) @ linear.weight.T + linear.bias).reshape(40, 1, kernel, kernel)
        assert torch.allclose(block.depthwise_weight(40), expected)


def _check_subnet_matches(supernet, arch, train=False):
    supernet.set_active_arch(arch)
    supernet.train(train)
    subnet = supernet.get_active_subnet()
    assert isinstance(subnet, LitePose) and not isinstance(subnet, SuperLitePose)
    assert subnet.arch == arch
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        return max_abs_diff(supernet(x), subnet(x))


def test_subnet_of_xs_matches_supernet():
    supernet = randomize_(SuperLitePose(num_joints=14))
    assert _check_subnet_matches(supernet, load_arch(arch_path("XS"))) < 1e-5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subnet_of_random_sample_matches_supernet(seed):
    supernet = randomize_(SuperLitePose(WIDE_SPACE, num_joints=17), seed=seed)
    arch = WIDE_SPACE.sample(random.Random(seed))
    assert _check_subnet_matches(supernet, arch) < 1e-5


def test_subnet_matches_in_training_mode_too():
    supernet = randomize_(SuperLitePose(WIDE_SPACE, num_joints=14))
    assert _check_subnet_matches(supernet, WIDE_SPACE.sample(random.Random(5)), train=True) < 1e-5


def test_training_the_supernet_updates_only_active_statistics():
    supernet = SuperLitePose(num_joints=14)
    supernet.set_active_arch(load_arch(arch_path("XS")))
    bn = supernet.first[3]
    before = bn.running_mean.clone()
    supernet.train()(torch.randn(2, 3, 64, 64))
    assert not torch.equal(bn.running_mean[:16], before[:16])
    assert torch.equal(bn.running_mean[16:], before[16:])


def test_active_arch_must_be_in_the_search_space():
    supernet = SuperLitePose(num_joints=14)
    arch = load_arch(arch_path("XS"))
    arch["backbone_setting"][0]["block_setting"][0] = [6, 5]  # kernel 5 is not in the release's space
    with pytest.raises(ArchError, match=r"kernel = 5 is outside the search space"):
        supernet.set_active_arch(arch)


def test_reorganize_channels_preserves_the_widest_network():
    supernet = randomize_(SuperLitePose(num_joints=14)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = supernet(x)
        supernet.reorganize_channels()
        after = supernet(x)
    assert max_abs_diff(before, after) < 1e-4
    importance = supernet.stage[1][0].inv[0].weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])


def test_checkpoint_for_other_joints_names_both_counts(official_shapes, tmp_path):
    path = tmp_path / "coco-S.pth"
    torch.save(random_state_from_shapes(official_shapes["coco/search-S"]), path)
    model = build_model(config("crowd_pose"), str(arch_path("S")))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, path)
    message = str(info.value)
    assert "checkpoint is for 17 joints, model has 14" in message
    assert "final_refined.0.conv.3.weight: checkpoint [34, 24, 1, 1] vs model [28, 24, 1, 1]" in message
    assert "\n" not in message


def test_checkpoint_for_other_architecture_lists_first_mismatches_then_count(official_shapes, tmp_path):
    path = tmp_path / "crowd-L.pth"
    torch.save(random_state_from_shapes(official_shapes["crowd_pose/search-L"]), path)
    model = build_model(config("crowd_pose"), str(arch_path("XS")))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, path)
    message = str(info.value)
    assert message.startswith(f"{path} does not fit LitePose")
    assert "keys with other shapes (first.2.weight: checkpoint [24, 32, 1, 1] vs model [16, 32, 1, 1]" in message
    assert "more" in message and len(message) < 1000


def test_training_checkpoint_with_optimizer_state_loads(tmp_path):
    model = build_model(config(), str(arch_path("XS")))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(1, 3, 64, 64))[0].mean().backward()
    optimizer.step()
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"epoch": 3, "model": "pose_mobilenet", "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(), "perf": 0.5}, path)
    fresh = build_model(config(), str(arch_path("XS")))
    checkpoint = load_checkpoint(fresh, path)
    assert checkpoint["epoch"] == 3 and "optimizer" in checkpoint
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))


def test_unreadable_checkpoint_is_one_clear_error(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint at all")
    model = build_model(config(), str(arch_path("XS")))
    with pytest.raises(CheckpointError, match=r"garbage\.pth: not a PyTorch checkpoint \(it holds text"):
        load_checkpoint(model, path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(model, tmp_path / "absent.pth")


def test_registry_builds_both_families_and_rejects_unknown_names():
    fixed = build_model(config(), str(arch_path("M")))
    supernet = build_model(config(supernet=True), str(arch_path("M")))
    assert type(fixed) is LitePose and type(supernet) is SuperLitePose
    assert supernet.active_arch == fixed.arch
    default = build_model(config(supernet=True))
    assert default.active_arch == SearchSpace().widest()
    from litepose.models.registry import build_model as build

    class Fake:
        class MODEL:
            NAME = "pose_nothing"

    with pytest.raises(ConfigError, match="not a registered model"):
        build(Fake)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_requesting_a_missing_gpu_is_a_clear_error():
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        resolve_device("cuda")


# ------------------------------------------------------------------------- the one model loader
def test_load_model_builds_loads_and_returns_the_active_subnetwork(tmp_path):
    from litepose.models import load_model

    cfg = config(supernet=True)
    supernet = randomize_(build_model(cfg))
    path = tmp_path / "supernet.pth"
    torch.save({"state_dict": supernet.state_dict()}, path)
    arch = load_arch(str(arch_path("XS")))
    member = load_model(cfg, arch, path)
    assert type(member) is LitePose and member.arch == arch and not member.training
    supernet.set_active_arch(arch)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert max_abs_diff(member(x), supernet.eval()(x)) < 1e-5
    kept = load_model(cfg, arch, path, subnet=False)  # weight transfer and search keep the supernet
    assert type(kept) is SuperLitePose and kept.active_arch == arch
    from_config = load_model(load_config("experiments/crowd_pose/mobilenet/supermobile.yaml",
                                         ["TEST.MODEL_FILE", str(path)]), arch)  # TEST.MODEL_FILE: the default
    with torch.no_grad():
        assert max_abs_diff(from_config(x), member(x)) == 0


def test_load_model_refuses_nan_weights_and_a_missing_checkpoint(tmp_path):
    from litepose.estimator import PoseEstimator
    from litepose.models import NonFiniteWeightsError, load_model

    cfg = config()
    model = build_model(cfg, str(arch_path("XS")))
    state = model.state_dict()
    state["final_refined.0.conv.0.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    with pytest.raises(NonFiniteWeightsError, match=rf"^{path} holds NaN or infinite values in 1 tensors "
                                                    r"\(first: final_refined.0.conv.0.weight\)"):
        load_model(cfg, str(arch_path("XS")), path)
    assert issubclass(NonFiniteWeightsError, CheckpointError)
    with pytest.raises(NonFiniteWeightsError):  # issue 24: the one-line API refuses them too
        PoseEstimator.from_checkpoint(path, cfg, arch=str(arch_path("XS")))
    with pytest.raises(CheckpointError, match="no checkpoint given: add TEST.MODEL_FILE"):
        load_model(cfg, str(arch_path("XS")))
    untrained = load_model(cfg, str(arch_path("XS")), required=False)  # measurements that need no weights
    assert isinstance(untrained, LitePose)


def test_the_default_input_size_is_explicit_then_the_architecture_then_the_config():
    from litepose.arch import default_input_size

    cfg = config()
    xs = load_arch(str(arch_path("XS")))
    model = build_model(cfg, xs)
    assert default_input_size(cfg, model, 320) == 320
    assert default_input_size(cfg, model) == xs["img_size"] == default_input_size(cfg, xs)
    supernet = build_model(config(supernet=True), xs)  # a supernet: its active architecture
    assert default_input_size(cfg, supernet) == xs["img_size"]
    assert default_input_size(cfg) == cfg.DATASET.INPUT_SIZE == default_input_size(cfg, torch.nn.Conv2d(3, 3, 1))


@pytest.mark.parametrize("script,options", [
    ("valid.py", []),
    ("tools/demo.py", ["--input", "{image}", "--output", "{tmp}/out"]),
    ("tools/export.py", ["--format", "onnx", "--output", "{tmp}/m.onnx"]),
    ("tools/quantize.py", ["--runtime", "onnx", "--output-dir", "{tmp}/int8"]),
    ("benchmarks.estimator_ap", []),
    ("tools/calibrate_bn.py", ["--output", "{tmp}/bn.pth"]),
])
def test_every_script_refuses_a_checkpoint_with_nan_weights_in_one_line(tmp_path, capsys, script, options):
    import cv2
    import numpy as np
    from helpers import run_script_in_process

    cfg_file = "experiments/crowd_pose/mobilenet/mobile.yaml"
    model = build_model(load_config(cfg_file), str(arch_path("XS")))
    state = model.state_dict()
    state["final_refined.0.conv.0.weight"].fill_(float("nan"))
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    done = run_script_in_process(script, ["--cfg", cfg_file, "--superconfig", str(arch_path("XS")),
                                          "TEST.MODEL_FILE", str(path),
                                          *[o.format(tmp=tmp_path, image=image) for o in options]], capsys)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"error: {path} holds NaN or infinite values in 1 tensors (first: "
                                   "final_refined.0.conv.0.weight): refused, the network would give no finite output")
    # Nothing written (an output folder may have been made empty by the early output check).
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["frame.png", "nan.pth"]
