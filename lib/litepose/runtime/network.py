"""What the runtime needs of a network: ``__call__(batch [B, 3, H, W] float32) -> list of
[B, C, h, w] float32 arrays`` (the model's outputs in order), plus ``forward_fn``."""

import time

from .preprocess import network_input


class Network:
    """Base of the backends: ``forward_fn`` turns a network into the ``forward(geometry)`` that
    ``inference.compute_maps`` calls, timing pre-processing apart from the network."""

    name = "network"

    def __call__(self, batch):
        raise NotImplementedError

    def forward_fn(self, image, flip, bgr=False):
        def forward(geometry):
            start = time.perf_counter()
            batch = network_input(image, geometry, flip, bgr)
            preprocess_s = time.perf_counter() - start
            return self(batch), preprocess_s

        return forward
