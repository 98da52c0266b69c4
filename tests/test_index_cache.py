"""The annotation index built once per run and memory-mapped: the same samples as a parsed file,
never parsed twice, never trusted when stale or damaged, one entry when processes race."""

import json
import multiprocessing
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from litepose.data import coco_format, index_cache
from litepose.data.build import build_dataset
from litepose.data.coco_format import KeypointAnnotations, PackedAnnotations
from litepose.data.dataset import KeypointDataset
from litepose.data.index_cache import cached_annotation_index
from litepose.data.keypoints import COCO
from litepose.data.synthetic import generate_synthetic_dataset
from litepose.data.transforms import AugmentConfig
from litepose.errors import DataError

from training_support import QUICKSTART, tiny_cfg


@pytest.fixture(scope="module")
def coco_like(tmp_path_factory):
    """A small rehearsal set with COCO's encodings: crowd RLEs, people without keypoints, images
    without people."""
    root = tmp_path_factory.mktemp("cache") / "c"
    generate_synthetic_dataset(root, {"train": 40}, seed=3, show_progress=False, coco_scale=True, pool_images=3)
    return root / "annotations" / "person_keypoints_train.json", root / "images" / "train"


def entries(folder):
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def assert_same_samples(a, b, count=None):
    assert a.image_ids == b.image_ids
    for index in range(len(a) if count is None else count):
        x, y = a[index], b[index]
        assert x.keys() == y.keys()
        for key, value in x.items():
            if key == "masks":
                assert all(torch.equal(p, q) for p, q in zip(value, y[key], strict=True))
            elif isinstance(value, torch.Tensor):
                assert torch.equal(value, y[key]), key
            else:
                assert value == y[key], key


def test_samples_from_the_cached_index_equal_the_parsed_files(coco_like, tmp_path):
    ann_file, image_dir = coco_like
    parsed = KeypointAnnotations(ann_file, image_dir, COCO)
    cached = cached_annotation_index(ann_file, image_dir, COCO, tmp_path / "cache")
    assert isinstance(cached._blob, np.memmap) and cached._lookup is None
    # The buffers are the ones packed from the parsed file, byte for byte.
    fresh = parsed.packed()
    for name in ("ids", "names", "counts", "ends", "blob"):
        assert np.array_equal(cached._arrays[name], fresh._arrays[name]) and \
            cached._arrays[name].dtype == fresh._arrays[name].dtype, name
    assert cached.image_ids == parsed.image_ids
    for image_id in parsed.image_ids:
        assert cached.has_annotations(image_id) == parsed.has_annotations(image_id)
        assert cached.annotations(image_id) == fresh.annotations(image_id)
    augment = AugmentConfig()
    assert_same_samples(KeypointDataset(parsed, 64, augment=augment, seed=4),
                        KeypointDataset(cached, 64, augment=augment, seed=4))
    assert_same_samples(KeypointDataset(parsed, 64, require_people=False),
                        KeypointDataset(cached, 64, require_people=False), count=12)


def test_build_dataset_with_a_cache_folder_gives_the_uncached_samples(synthetic_root, tmp_path, tiny_arch):
    cfg = tiny_cfg(tmp_path, synthetic_root, tiny_arch)
    for split, augment in (("train", True), ("test", False)):
        plain = build_dataset(cfg, 64, split, augment=augment)
        cached = build_dataset(cfg, 64, split, augment=augment, index_cache=tmp_path / "index")
        assert isinstance(cached.annotations._blob, np.memmap) and not isinstance(plain.annotations._blob, np.memmap)
        assert_same_samples(plain, cached)
    assert len(entries(tmp_path / "index")) == 2  # one per annotation file


def test_a_second_process_maps_the_cache_without_reading_the_annotation_file(coco_like, tmp_path, monkeypatch):
    ann_file, image_dir = coco_like
    first = cached_annotation_index(ann_file, image_dir, COCO, tmp_path)

    read_json = coco_format.load_json

    def no_parsing(path, *args, **kwargs):
        if os.path.samefile(path, ann_file):
            raise AssertionError("the annotation file was parsed")
        return read_json(path, *args, **kwargs)  # the cache's own small index.json

    monkeypatch.setattr(coco_format, "load_json", no_parsing)
    second = cached_annotation_index(ann_file, image_dir, COCO, tmp_path)
    assert isinstance(second._blob, np.memmap)
    assert second.image_ids == first.image_ids
    assert [second.annotations(i) for i in second.image_ids] == [first.annotations(i) for i in first.image_ids]
    with pytest.raises(AssertionError, match="parsed"):  # the patch does stop a parse
        KeypointAnnotations(ann_file, image_dir, COCO)


def test_a_changed_annotation_file_is_indexed_again_and_its_old_entry_removed(coco_like, tmp_path):
    ann_file, image_dir = coco_like
    data = json.loads(ann_file.read_text())
    copy = tmp_path / "ann.json"
    copy.write_text(json.dumps(data))
    cache = tmp_path / "cache"
    before = cached_annotation_index(copy, image_dir, COCO, cache)
    old = entries(cache)
    person = next(a for a in data["annotations"] if a.get("num_keypoints"))
    person["keypoints"][0] += 1.5
    copy.write_text(json.dumps(data))
    # What killed builders of this host left behind goes too; a live builder's folder stays.
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    dead, alive = (cache / f".{old[0]}.{host}.{pid}.x1y2.tmp" for pid in (int(ended.stdout), os.getpid()))
    dead.mkdir()
    alive.mkdir()
    after = cached_annotation_index(copy, image_dir, COCO, cache)
    assert len(entries(cache)) == 1 and entries(cache) != old  # bounded: the old entry is gone
    assert not dead.exists() and alive.exists()
    moved = next(a for a in after.annotations(person["image_id"]) if a["id"] == person["id"])
    assert moved["keypoints"][0] == person["keypoints"][0]
    assert next(a for a in before.annotations(person["image_id"]) if a["id"] == person["id"])["keypoints"][0] \
        == person["keypoints"][0] - 1.5  # the mapped old index of a running process stays readable
    # Another joint count checks the file differently: its own entry.
    assert index_cache.cache_key(copy, 17) != index_cache.cache_key(copy, 14)


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove", "meta"])
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(coco_like, tmp_path, damage):
    ann_file, image_dir = coco_like
    cached_annotation_index(ann_file, image_dir, COCO, tmp_path)
    (entry,) = entries(tmp_path)
    blob = tmp_path / entry / "blob.npy"
    content = blob.read_bytes()
    if damage == "truncate":
        blob.write_bytes(content[:len(content) // 2])
    elif damage == "flip":
        blob.write_bytes(content[:-10] + bytes([content[-10] ^ 1]) + content[-9:])
    elif damage == "remove":
        blob.unlink()
    else:
        (tmp_path / entry / "index.json").write_text("{")
    with pytest.warns(UserWarning, match=r"annotation index cache .* cannot be used \(.*\); rebuilding it"):
        rebuilt = cached_annotation_index(ann_file, image_dir, COCO, tmp_path)
    assert entries(tmp_path) == [entry] and blob.read_bytes() == content
    parsed = KeypointAnnotations(ann_file, image_dir, COCO).packed()
    assert [rebuilt.annotations(i) for i in rebuilt.image_ids] == [parsed.annotations(i) for i in parsed.image_ids]


def _race(ann_file, image_dir, cache, start, parses, lock, out):
    if not lock:
        index_cache._BuildLock.__enter__ = lambda self: self
        index_cache._BuildLock.__exit__ = lambda self, *exc: False
    packed = KeypointAnnotations.packed

    def counting(self, *args):
        with open(parses, "a") as handle:
            handle.write("parse\n")
        return packed(self, *args)

    KeypointAnnotations.packed = counting
    start.wait()
    index = cached_annotation_index(ann_file, image_dir, COCO, cache)
    out.write_bytes(pickle.dumps([index.annotations(i) for i in index.image_ids]))


@pytest.mark.parametrize("lock", [True, False])
def test_processes_racing_on_an_empty_cache_leave_one_valid_entry(coco_like, tmp_path, lock):
    """With the lock one process builds and the others wait; without it (a file system without
    flock) each builds and one rename wins: one valid entry and no temporaries either way."""
    ann_file, image_dir = coco_like
    context = multiprocessing.get_context("fork")
    start = context.Barrier(3)
    racers = [context.Process(target=_race, args=(ann_file, image_dir, tmp_path / "cache", start, tmp_path / "parses",
                                                  lock, tmp_path / f"result{k}")) for k in range(3)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
    assert [racer.exitcode for racer in racers] == [0, 0, 0]
    results = [pickle.loads((tmp_path / f"result{k}").read_bytes()) for k in range(3)]
    expected = [KeypointAnnotations(ann_file, image_dir, COCO).packed()]
    expected = [expected[0].annotations(i) for i in expected[0].image_ids]
    assert all(result == expected for result in results)
    (entry,) = entries(tmp_path / "cache")
    assert [n for n in os.listdir(tmp_path / "cache") if not n.endswith(".lock")] == [entry]  # no temporaries
    key = index_cache.cache_key(ann_file, COCO.num_joints)
    assert PackedAnnotations.load(tmp_path / "cache" / entry, ann_file, image_dir, COCO, key).image_ids
    parses = (tmp_path / "parses").read_text().count("parse")
    assert parses == 1 if lock else 1 <= parses <= 3


def test_string_and_unsorted_image_ids(tmp_path):
    (tmp_path / "images").mkdir()
    import cv2

    for name in ("a", "b", "c"):
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), np.full((40, 50, 3), 90, np.uint8))
    keypoints = [10, 12, 2] + [0] * 48
    images = [{"id": i, "file_name": f"{n}.png", "width": 50, "height": 40}
              for i, n in (("x9", "a"), (7, "b"), ("x1", "c"))]
    annotations = [{"id": k, "image_id": i, "iscrowd": 0, "keypoints": keypoints, "num_keypoints": 1,
                    "bbox": [0, 0, 20, 30]} for k, i in enumerate(("x9", 7, "x1", "x1"))]
    (tmp_path / "ann.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                    "categories": [{"id": 1}]}))
    ann_file, image_dir = tmp_path / "ann.json", tmp_path / "images"
    parsed = KeypointAnnotations(ann_file, image_dir, COCO)
    cached = cached_annotation_index(ann_file, image_dir, COCO, tmp_path / "cache")
    assert cached.image_ids == parsed.image_ids == [7, "x1", "x9"] and cached._lookup is not None
    for image_id in parsed.image_ids:
        assert cached.image_path(image_id) == parsed.image_path(image_id)
        assert cached.annotations(image_id) == parsed.annotations(image_id)
    assert cached.image_paths(["x9", 7]) == [parsed.image_path("x9"), parsed.image_path(7)]
    with pytest.raises(KeyError):
        cached.annotations("x2")
    # Integer ids in any order are found through the sorted array.
    data = json.loads(ann_file.read_text())
    for image, ann in zip(data["images"], data["annotations"]):
        ann["image_id"] = image["id"] = {"x9": 2**40, 7: 7, "x1": -3}[image["id"]]
    data["annotations"] = data["annotations"][:3]
    (tmp_path / "int.json").write_text(json.dumps(data))
    numbers = KeypointAnnotations(tmp_path / "int.json", image_dir, COCO)
    shuffled = numbers.packed([7, 2**40, -3])
    assert shuffled._lookup is None and shuffled._order is not None
    for image_id in (7, 2**40, -3):
        assert shuffled.image_path(image_id) == numbers.image_path(image_id)
        assert shuffled.annotations(image_id) == numbers.annotations(image_id)
    assert shuffled.image_paths([-3, 2**40, 7]) == [numbers.image_path(i) for i in (-3, 2**40, 7)]
    for absent in (8, "7", 2**70, 7.0):
        with pytest.raises(KeyError):
            shuffled.has_annotations(absent)
        with pytest.raises(KeyError):
            shuffled.image_paths([7, absent])


def test_an_unusable_cache_folder_costs_a_warning_not_the_run(coco_like, tmp_path):
    ann_file, image_dir = coco_like
    (tmp_path / "file").write_text("")
    with pytest.warns(UserWarning, match="cannot create the annotation index cache"):
        index = cached_annotation_index(ann_file, image_dir, COCO, tmp_path / "file" / "cache")
    assert len(index) == len(KeypointAnnotations(ann_file, image_dir, COCO).image_ids)
    assert (tmp_path / "file").read_text() == ""


def test_training_maps_its_index_from_the_run_folder_unless_switched_off(tmp_path, synthetic_root, tiny_arch):
    from litepose.train.checkpoint import run_dirs
    from litepose.train.distributed import DistContext
    from litepose.train.trainer import Trainer

    for switch in ("True", "False"):
        cfg = tiny_cfg(tmp_path / switch, synthetic_root, tiny_arch, "DATASET.INDEX_CACHE", switch)
        trainer = Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)
        folder = os.path.join(run_dirs(cfg, QUICKSTART)[0], index_cache.CACHE_DIR_NAME)
        mapped = [isinstance(loader.dataset.annotations._blob, np.memmap)
                  for loader in (trainer.train_loader, trainer.val_loader)]
        assert mapped == [switch == "True"] * 2
        assert os.path.isdir(folder) == (switch == "True")
        assert not any(p.name == index_cache.CACHE_DIR_NAME for p in synthetic_root.rglob("*"))


class _Call:
    def __reduce__(self):
        return str.upper, ("not an annotation",)


def test_an_index_file_whose_pickle_names_a_function_is_refused(coco_like, tmp_path):
    """A saved index is read by an unpickler of JSON values: a forged one (with matching CRCs)
    runs nothing and is one ``DataError`` line."""
    ann_file, image_dir = coco_like
    parsed = KeypointAnnotations(ann_file, image_dir, COCO)
    image_id = next(i for i in parsed.image_ids if parsed.has_annotations(i))
    forged = parsed.packed([image_id])
    payload = pickle.dumps(_Call())
    forged._arrays.update(blob=np.frombuffer(payload, np.uint8), ends=np.array([len(payload)], np.int64))
    key = index_cache.cache_key(ann_file, COCO.num_joints)
    forged.save(tmp_path, key)
    loaded = PackedAnnotations.load(tmp_path, ann_file, image_dir, COCO, key)
    with pytest.raises(DataError, match=r"holds something other than its annotations \(it names builtins\."):
        loaded.annotations(image_id)


def test_the_index_cache_benchmark_measures_parsing_and_mapping_processes(coco_like, tmp_path):
    """``python -m benchmarks.index_cache``'s fresh processes: the first of a run builds the
    cache, the next maps it, one without a cache parses; all index the same images."""
    from benchmarks.index_cache import measure_one

    root = str(coco_like[0].parent.parent)
    built, mapped, parsed = (measure_one(root, cache, input_size=64)
                             for cache in (str(tmp_path / "cache"), str(tmp_path / "cache"), None))
    assert (built["mapped"], mapped["mapped"], parsed["mapped"]) == (True, True, False)
    assert built["training_images"] == mapped["training_images"] == parsed["training_images"] > 0
    assert entries(tmp_path / "cache")
