import json

import pytest

from conftest import SHARED
from litepose.config import load_config
from litepose.data.coco_format import KeypointAnnotations, dataset_files, keypoint_info_from_config, read_image
from litepose.data.keypoints import COCO, CROWDPOSE
from litepose.errors import DataError

COCO_MINI = SHARED / "data" / "coco_mini"
CROWD_MINI = SHARED / "data" / "crowdpose_mini"
needs_fixtures = pytest.mark.skipif(not COCO_MINI.is_dir(), reason="../shared/data fixtures absent")


@needs_fixtures
def test_reads_the_real_fixtures():
    coco = KeypointAnnotations(COCO_MINI / "person_keypoints_mini.json", COCO_MINI / "images", COCO)
    assert len(coco) == 4
    people = sum(len(coco.keypoints(i)) for i in coco.image_ids)
    assert people == 14
    image = read_image(coco.image_path(coco.image_ids[0]))
    assert image.shape[2] == 3 and (image.shape[1], image.shape[0]) == coco.image_size(coco.image_ids[0])
    crowd = KeypointAnnotations(CROWD_MINI / "crowdpose_mini.json", CROWD_MINI / "images", CROWDPOSE)
    assert sorted(crowd.crowd_index(i) for i in crowd.image_ids) == [0.33, 0.39]
    assert crowd.keypoints(crowd.image_ids[0]).shape[1:] == (14, 3)


def test_flip_index_tables():
    assert COCO.flip_index == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert CROWDPOSE.flip_index == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13]


def test_wrong_keypoint_count_names_file_annotation_and_field(tmp_path):
    ann = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
           "annotations": [{"id": 77, "image_id": 1, "keypoints": [0] * 42}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(ann))
    with pytest.raises(DataError, match=r"ann\.json: annotation 77 field 'keypoints' has 42 values, expected 51"):
        KeypointAnnotations(path, tmp_path, COCO)


def test_truncated_json_and_missing_paths(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{"images": [')
    with pytest.raises(DataError, match=r"ann\.json: invalid JSON at line 1"):
        KeypointAnnotations(path, tmp_path, COCO)
    with pytest.raises(DataError, match="annotation file not found"):
        KeypointAnnotations(tmp_path / "absent.json", tmp_path, COCO)
    path.write_text('{"images": []}')
    with pytest.raises(DataError, match="image folder not found"):
        KeypointAnnotations(path, tmp_path / "nope", COCO)


def test_corrupt_and_missing_images(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=r"cannot decode image .*bad\.jpg"):
        read_image(str(bad))
    with pytest.raises(DataError, match=r"image not found: .*none\.jpg"):
        read_image(str(tmp_path / "none.jpg"))


def test_standard_layouts_and_custom_datasets(tmp_path):
    crowd = load_config("experiments/crowd_pose/mobilenet/mobile.yaml", ["DATASET.ROOT", str(tmp_path)])
    assert dataset_files(crowd, "train") == (str(tmp_path / "json" / "crowdpose_trainval.json"),
                                             str(tmp_path / "images"))
    coco = load_config("experiments/coco/mobilenet/mobile.yaml", ["DATASET.ROOT", str(tmp_path)])
    assert dataset_files(coco, "test") == (str(tmp_path / "annotations" / "person_keypoints_val2017.json"),
                                           str(tmp_path / "images" / "val2017"))
    missing = load_config("experiments/coco/mobilenet/mobile.yaml", ["DATASET.ROOT", str(tmp_path / "x")])
    with pytest.raises(DataError, match="dataset root not found"):
        dataset_files(missing, "train")
    custom = load_config("experiments/coco/mobilenet/mobile.yaml", [
        "DATASET.DATASET", "ochuman", "DATASET.NUM_JOINTS", "3", "MODEL.NUM_JOINTS", "3",
        "DATASET.FLIP_PAIRS", "[[1, 2]]", "DATASET.SIGMAS", "[0.1, 0.2, 0.2]"])
    info = keypoint_info_from_config(custom)
    assert info.flip_index == [0, 2, 1] and info.sigmas == (0.1, 0.2, 0.2)


def test_exif_orientation_is_ignored(tmp_path):
    """Keypoints are annotated in the stored pixel grid; a rotation tag must not turn the image."""
    import cv2
    import numpy as np
    from PIL import Image

    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes())
    assert cv2.imread(str(path)).shape[:2] == (40, 20)  # OpenCV would rotate it by default
    assert read_image(str(path)).shape[:2] == (20, 40)


def _person(ann_id=5, **fields):
    person = {"id": ann_id, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 1, "bbox": [1, 1, 5, 5],
              "keypoints": [3.0, 4.0, 2] + [0] * 48, "segmentation": [[1, 1, 6, 1, 6, 6]]}
    person.update(fields)
    return person


@pytest.mark.parametrize("annotations, message", [
    ([_person(category_id="1")], r"annotation 5 field 'category_id' must be a whole number .*'1'"),
    ([_person(category_id=3)], r"annotation 5 field 'category_id' is 3, which is not an id in 'categories'"),
    ([_person(), _person()], r"annotation 5 field 'id': an earlier annotation has id 5 too"),
    ([_person(keypoints=[3.0, 4.0, -7] + [0] * 48)], r"annotation 5 field 'keypoints' has visibility -7"),
    ([_person(keypoints=[1e300, 4.0, 2] + [0] * 48)], r"annotation 5 field 'keypoints' has coordinate 1e\+300"),
    ([_person(bbox=[1e300, 0, 1, 1])], r"annotation 5 field 'bbox' has coordinate 1e\+300"),
    ([_person(segmentation=[[1, 1, 1e300, 1, 6, 6]])], r"annotation 5 field 'segmentation' has a polygon coordinate"),
    ([_person(iscrowd=1, num_keypoints=0, segmentation=[[1, 2, 3, 4]])],
     r"annotation 5 field 'segmentation': this crowd region is masked in training but none of its polygons"),
    ([_person(num_keypoints=0, keypoints=[0] * 51, segmentation=[[]])],
     r"annotation 5 field 'segmentation': this person without keypoints is masked"),
])
def test_impossible_annotation_values_name_file_annotation_and_field(tmp_path, annotations, message):
    """Values that were taken silently (or crashed inside pycocotools in a training worker) are
    one line at load, before any training step."""
    ann = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}], "annotations": annotations,
           "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(ann))
    with pytest.raises(DataError, match=r"ann\.json: " + message):
        KeypointAnnotations(path, tmp_path, COCO)


def test_short_polygons_of_people_with_keypoints_are_kept(tmp_path):
    """A person with keypoints is not masked, so its segmentation is never decoded: a degenerate
    polygon there (COCO has a few) loads as before."""
    ann = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
           "annotations": [_person(segmentation=[[1, 2, 3, 4]])], "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(ann))
    assert KeypointAnnotations(path, tmp_path, COCO).keypoints(1).shape == (1, 17, 3)
