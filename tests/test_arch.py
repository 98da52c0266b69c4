import json
import random

import pytest

from conftest import ARCH_NAMES, arch_path
from litepose.arch import describe_arch, load_arch, save_arch, validate_arch
from litepose.errors import ArchError
from litepose.models.space import ArchManager, SearchSpace

# litepose_facts.md: img_size, input_channel, stage channels, deconv_setting.
RELEASED = {
    "XS": (256, 16, [16, 32, 48, 80], [16, 24, 24]),
    "S": (448, 16, [16, 32, 48, 120], [32, 24, 32]),
    "M": (448, 16, [24, 48, 72, 120], [64, 40, 32]),
    "L": (512, 24, [24, 64, 96, 160], [64, 40, 32]),
}


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_released_architectures_match_the_facts(name):
    arch = load_arch(arch_path(name))
    img, stem, channels, deconv = RELEASED[name]
    assert arch["img_size"] == img and arch["input_channel"] == stem
    assert [s["channel"] for s in arch["backbone_setting"]] == channels
    assert arch["deconv_setting"] == deconv
    assert [s["num_blocks"] for s in arch["backbone_setting"]] == [6, 8, 10, 10]
    assert [s["stride"] for s in arch["backbone_setting"]] == [2, 2, 2, 1]
    assert all(b == [6, 7] for s in arch["backbone_setting"] for b in s["block_setting"])


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_released_architectures_are_in_the_search_space(name):
    assert SearchSpace().contains(load_arch(arch_path(name)))


def _xs():
    return json.loads(arch_path("XS").read_text())


def _broken(mutate):
    arch = _xs()
    mutate(arch)
    return arch


BAD = [
    ("kernel", lambda a: a["backbone_setting"][1]["block_setting"].__setitem__(2, [6, 4]),
     r"backbone_setting\[1\]\.block_setting\[2\] kernel must be one of 3, 5, 7, got 4"),
    ("expansion", lambda a: a["backbone_setting"][0]["block_setting"].__setitem__(0, [8, 7]),
     r"backbone_setting\[0\]\.block_setting\[0\] expansion must be between 1 and 6, got 8"),
    ("channel", lambda a: a["backbone_setting"][2].__setitem__("channel", 20),
     r"backbone_setting\[2\]\.channel must be a positive multiple of 8, got 20"),
    ("stages", lambda a: a["backbone_setting"].pop(),
     r"backbone_setting must list 4 stages, got 3"),
    ("deconv", lambda a: a.__setitem__("deconv_setting", [16, 24]),
     r"deconv_setting must list 3 widths"),
    ("img_size", lambda a: a.__setitem__("img_size", 100),
     r"img_size must be a positive multiple of 32, got 100"),
    ("num_blocks", lambda a: a["backbone_setting"][3].__setitem__("num_blocks", 9),
     r"backbone_setting\[3\]\.block_setting has 10 entries but num_blocks is 9"),
    ("stride", lambda a: a["backbone_setting"][3].__setitem__("stride", 2),
     r"backbone_setting\[3\]\.stride must be 1"),
    ("missing", lambda a: a.pop("input_channel"), r"missing field 'input_channel'"),
    ("negative", lambda a: a.__setitem__("input_channel", -8), r"input_channel must be a positive multiple of 8"),
]


@pytest.mark.parametrize("name, mutate, message", BAD, ids=[b[0] for b in BAD])
def test_bad_architecture_file_gives_one_line_naming_the_field(tmp_path, name, mutate, message):
    path = tmp_path / f"bad-{name}.json"
    path.write_text(json.dumps(_broken(mutate)))
    with pytest.raises(ArchError, match=message) as info:
        load_arch(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_malformed_and_missing_files(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"img_size": 256,')
    with pytest.raises(ArchError, match=r"invalid JSON at line 1"):
        load_arch(path)
    with pytest.raises(ArchError, match="architecture file not found"):
        load_arch(tmp_path / "absent.json")


def test_save_round_trip_and_no_silent_overwrite(tmp_path):
    path = tmp_path / "arch.json"
    save_arch(_xs(), path)
    assert load_arch(path) == validate_arch(_xs())
    with pytest.raises(ArchError, match="already exists"):
        save_arch(_xs(), path)


def test_search_space_membership_names_the_field():
    arch = _xs()
    arch["backbone_setting"][3]["channel"] = 96  # a multiple of 8, but not a width choice of 160
    with pytest.raises(ArchError, match=r"backbone_setting\[3\]\.channel = 96 is outside the search space"):
        SearchSpace().check(arch)


def test_sampler_draws_members_reproducibly():
    space = SearchSpace(kernel_sizes=(3, 5, 7), expansions=(3, 4, 6), stage_blocks=((4, 6), (6, 8), (8, 10), (8, 10)))
    first = [ArchManager(space, seed=3).random_sample() for _ in range(1)]
    again = [ArchManager(space, seed=3).random_sample() for _ in range(1)]
    assert first == again
    rng = random.Random(0)
    samples = [space.sample(rng) for _ in range(50)]
    assert all(space.contains(a) for a in samples)
    # The sampler explores every dimension.
    assert len({a["img_size"] for a in samples}) > 1
    assert len({b[1] for a in samples for s in a["backbone_setting"] for b in s["block_setting"]}) == 3
    assert len({s["num_blocks"] for a in samples for s in a["backbone_setting"][:1]}) == 2


def test_fixed_mode_returns_the_fixed_architecture():
    manager = ArchManager(seed=0)
    manager.fix(load_arch(arch_path("S")))
    assert manager.random_sample() == load_arch(arch_path("S"))


def test_widest_and_smallest_bound_the_space():
    space = SearchSpace()
    widest, smallest = space.widest(), space.smallest()
    assert widest["input_channel"] == 24 and [s["channel"] for s in widest["backbone_setting"]] == [32, 64, 96, 160]
    assert widest["deconv_setting"] == [64, 48, 32]
    assert smallest["input_channel"] == 8 and smallest["img_size"] == 256
    assert "img 256" in describe_arch(smallest)
