"""The training dataset: any COCO-format keypoint dataset, sampled as the release samples it.

A sample is the augmented image at ``input_size``, the loss masks at each output size, and the
people's source keypoints with the sample's ``Placement``; ``litepose.data.targets`` turns
them into heatmaps and joint indices at whatever resolution the network trains at.

The release's rules (HigherHRNet's ``CocoKeypoints`` / ``CrowdPoseKeypoints``):

- people are the annotations that are not crowd regions or that have keypoints, in file order;
  the first ``MAX_NUM_PEOPLE`` are kept (the release fails on a later one with joints);
- COCO-style datasets ignore crowd regions and people without keypoints (their segmentation);
  CrowdPose ignores nothing; outside the source image nothing counts either.
"""

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError, LitePoseError, UnreadableImageError
from .coco_format import KeypointAnnotations, keypoint_count, read_image
from .targets import output_sizes
from .transforms import flip_joint_order, sample_placement, warp_image, warp_loss_mask


def is_person(ann):
    """An annotation the release takes as a person: not a crowd region, or with keypoints."""
    return not ann.get("iscrowd", 0) or keypoint_count(ann) > 0


def ignore_mask(annotations, height, width, source="annotation file"):
    """Boolean ``[H, W]``: True over crowd regions and people without keypoints (their polygon or
    RLE segmentation), as the release's COCO dataset masks them. Where an annotation has no
    ``segmentation`` at all (the release fails there) its box is masked."""
    from pycocotools import mask as mask_api

    ignored = np.zeros((height, width), dtype=bool)
    for ann in annotations:
        if not ann.get("iscrowd", 0) and keypoint_count(ann) > 0:
            continue
        segmentation = ann.get("segmentation")
        where = f"{source}: annotation {ann.get('id', '?')}"
        try:
            if isinstance(segmentation, list):
                if not segmentation:
                    continue  # an empty polygon list masks nothing, as in the release
                rles = mask_api.frPyObjects([p for p in segmentation if len(p) >= 6], height, width)
                region = mask_api.decode(mask_api.merge(rles)).astype(bool) if rles else None
            elif isinstance(segmentation, dict):
                counts = segmentation.get("counts")
                if isinstance(counts, list):
                    rle = mask_api.frPyObjects(segmentation, *segmentation["size"])
                else:
                    rle = {"size": segmentation["size"],
                           "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
                region = mask_api.decode(rle).astype(bool)
            else:
                region = None
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where} has an unreadable segmentation ({exc})") from None
        if region is None:
            if "segmentation" in ann:
                continue  # an empty segmentation masks nothing, as in the release
            box = ann.get("bbox")
            if not box or len(box) != 4:
                continue  # nothing says where it is
            x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
            x1, y1 = min(width, int(np.ceil(box[0] + box[2]))), min(height, int(np.ceil(box[1] + box[3])))
            region = np.zeros((height, width), dtype=bool)
            region[y0:y1, x0:x1] = True
        elif region.shape != (height, width):
            import cv2

            region = cv2.resize(region.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        ignored |= region
    return ignored


class KeypointDataset(Dataset):
    """Samples of a ``KeypointAnnotations`` set at ``input_size`` (square).

    Args:
        annotations: a ``litepose.data.coco_format.KeypointAnnotations``, or its
            ``PackedAnnotations`` (``litepose.data.index_cache`` loads one from a cache).
        input_size: side of the network input in pixels.
        max_people: people kept per image (``DATASET.MAX_NUM_PEOPLE``): the first ones, in file
            order, as the release.
        augment: an ``AugmentConfig``, or None for the plain centred view (validation).
        ignore_regions: mask crowd regions and people without keypoints (the release's COCO
            rule); False masks nothing (its CrowdPose rule).
        pad_as_background: count the padding outside the source image as background
            (``DATASET.PAD_AS_BACKGROUND``; the release ignores it).
        seed: with the epoch and the index, seeds each sample's augmentation, so a run is
            reproducible whatever the number of workers or processes.
        require_people: keep only images with at least one annotation (HigherHRNet's training
            rule); validation keeps every image.
        max_unreadable: how many listed images may be unreadable. Missing files are left out
            up front (``self.missing`` lists them); an image that fails to load later is replaced
            by the next readable one and reported in the sample's ``skipped`` list. More than
            this many missing files is a ``DataError`` at once; the trainer applies the same
            limit to the skips it sees.
    """

    def __init__(self, annotations, input_size, max_people=30, augment=None, seed=0, require_people=True,
                 max_unreadable=0, ignore_regions=True, pad_as_background=False):
        self.annotations = annotations
        self.input_size = int(input_size)
        self.output_sizes = output_sizes(self.input_size)
        self.ignore_regions = bool(ignore_regions)
        self.pad_as_background = bool(pad_as_background)
        self.max_people = int(max_people)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.flip_index = list(annotations.info.flip_index)
        self.num_joints = annotations.info.num_joints
        # Workers share the packed index instead of copying the parsed file's objects.
        if isinstance(annotations, KeypointAnnotations):
            annotations = self.annotations = annotations.packed()
        ids = annotations.annotated_ids() if require_people else annotations.image_ids
        self.max_unreadable = int(max_unreadable)
        paths = annotations.image_paths(ids)
        missing = [i for i, path in zip(ids, paths) if not os.path.isfile(path)]
        if len(missing) > self.max_unreadable:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            limit = f"; at most {self.max_unreadable} may be missing" if self.max_unreadable else ""
            raise DataError(f"image not found: {annotations.image_path(missing[0])}{more}{limit}")
        self.missing = [annotations.image_path(i) for i in missing]
        absent = set(missing)
        self.image_ids = [i for i in ids if i not in absent]

    def set_epoch(self, epoch):
        """Select the epoch's augmentation (call before iterating; workers copy the dataset)."""
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.image_ids)

    def __getitem__(self, index):
        skipped = []
        try:
            # An unreadable image gives way to the next one, the same one on every run, so that
            # batches keep their size and a resumed run sees the data an uninterrupted one does.
            for attempt in range(len(self)):
                position = (index + attempt) % len(self)
                try:
                    sample = self.load(position)
                except UnreadableImageError as exc:
                    skipped.append(str(exc))
                    if len(skipped) > self.max_unreadable:
                        break
                    continue
                sample["skipped"] = skipped
                return sample
            raise DataError(f"{skipped[-1]} (unreadable images are skipped up to DATASET.MAX_UNREADABLE_IMAGES, "
                            f"{self.max_unreadable})")
        except LitePoseError as exc:
            # Travels to the main process as data: the loader's own exception wrapping would
            # turn the one-line message into a traceback.
            return {"error": f"{exc}"}

    def people(self, image_id):
        """``(annotations, keypoints [max_people, J, 3] float64, sizes [max_people])`` of an
        image: the people the release takes, in file order, zero rows after them."""
        anns = self.annotations.annotations(image_id)
        people = [a for a in anns if is_person(a)][: self.max_people]
        keypoints = np.zeros((self.max_people, self.num_joints, 3), dtype=np.float64)
        sizes = np.zeros(self.max_people, dtype=np.float64)
        for p, person in enumerate(people):
            if person.get("keypoints") is not None:
                keypoints[p] = np.asarray(person["keypoints"], dtype=np.float64).reshape(self.num_joints, 3)
            box = person.get("bbox") or [0, 0, 0, 0]
            sizes[p] = max(box[2], box[3])
        return anns, keypoints, sizes

    def load(self, index):
        image_id = self.image_ids[index]
        ann = self.annotations
        image = read_image(ann.image_path(image_id))
        height, width = image.shape[:2]
        anns, keypoints, sizes = self.people(image_id)
        if self.ignore_regions:
            valid = (~ignore_mask(anns, height, width, ann.ann_file)).astype(np.uint8)
        else:
            valid = np.ones((height, width), np.uint8)

        rng = np.random.default_rng([self.seed, self.epoch, index])
        placement = sample_placement(width, height, self.augment, rng)
        if placement.flip:
            keypoints = flip_joint_order(keypoints, self.flip_index)
        image = warp_image(image, placement, self.input_size)
        masks = [torch.from_numpy(warp_loss_mask(valid, placement, r, self.pad_as_background))
                 for r in self.output_sizes]
        return {
            "images": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
            "masks": masks,
            "source_keypoints": torch.from_numpy(keypoints),
            "person_sizes": torch.from_numpy(sizes),
            "placement": torch.from_numpy(placement.as_array()),
            "image_id": int(image_id),
            "flipped": placement.flip,
        }


def collate_samples(samples):
    """Stack samples; a sample that failed to load makes the batch an ``{"error": message}``.
    ``batch["skipped"]`` lists the reasons of the unreadable images the samples replaced."""
    for sample in samples:
        if "error" in sample:
            return {"error": sample["error"]}
    skipped = [reason for sample in samples for reason in sample.pop("skipped", [])]
    batch = torch.utils.data.default_collate(samples)
    batch["skipped"] = skipped
    return batch


def check_batch(batch):
    """Raise the ``DataError`` a worker reported instead of a batch."""
    if "error" in batch:
        raise DataError(batch["error"])
    return batch
