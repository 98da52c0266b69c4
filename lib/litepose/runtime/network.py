"""What the runtime needs of a network: ``__call__(batch [B, 3, H, W] float32) -> list of
[B, C, h, w] float32 arrays`` (the model's outputs in order), plus ``forward_fn``.

Every backend also says ``fixed_hw`` (the ``(height, width)`` a fixed-size export takes, None
when any size works), ``metadata`` (the export's ``litepose.runtime.metadata.ExportMetadata``,
None when it carries none) and ``format`` (onnx, openvino, tflite, ncnn, torchscript, pytorch)."""

import time

from ..errors import ModelFileError
from .preprocess import network_input


class Network:
    """Base of the backends: ``forward_fn`` turns a network into the ``forward(geometry)`` that
    ``inference.compute_maps`` calls, timing pre-processing apart from the network."""

    name = "network"
    format = None
    fixed_hw = None
    metadata = None

    def __call__(self, batch):
        raise NotImplementedError

    def check_input(self, batch):
        """One ``ModelFileError`` line unless ``batch`` is ``[B, 3, H, W]`` and, for a fixed-size
        export, ``H x W`` is its size (instead of the runtime's own error)."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ModelFileError(f"the {self.format} model takes [B, 3, H, W] inputs, got {list(batch.shape)}")
        if self.fixed_hw is not None and tuple(batch.shape[2:]) != tuple(self.fixed_hw):
            height, width = self.fixed_hw
            raise ModelFileError(
                f"this {self.format} model takes {width}x{height} inputs only, got {batch.shape[3]}x{batch.shape[2]} "
                f"(PoseEstimator letterboxes frames to it; export without --fixed for any size)")

    def forward_fn(self, image, flip, bgr=False, input_hw=None):
        """``forward(geometry)``: the network on ``image`` warped by ``geometry``. ``input_hw``
        (a fixed-size network's ``(h, w)``): the same region of the image is warped to exactly
        that size instead of ``geometry.input_wh`` (the maps then cover the same region, at
        another resolution: ``geometry.to_image_matrix`` maps them back all the same)."""
        def forward(geometry):
            start = time.perf_counter()
            if input_hw is not None and tuple(geometry.input_wh) != (input_hw[1], input_hw[0]):
                geometry = fixed_geometry(geometry, input_hw)
            batch = network_input(image, geometry, flip, bgr)
            preprocess_s = time.perf_counter() - start
            return self(batch), preprocess_s

        return forward


def fixed_geometry(geometry, input_hw):
    """``geometry`` with its network input resized to ``input_hw = (h, w)`` (same centre and box)."""
    from ..inference.transforms import ResizeGeometry
    from ..utils.affine import get_affine_transform

    input_wh = (int(input_hw[1]), int(input_hw[0]))
    return ResizeGeometry(geometry.center, geometry.box, input_wh,
                          get_affine_transform(geometry.center, geometry.box, 0, input_wh))
