"""Sizes a command accepts, so that no input can make it exhaust the machine.

- ``MAX_INPUT_SIZE`` (2048 pixels): the largest test or training input size (``--input-size``,
  ``TRAIN.INPUT_SIZE``, ``DATASET.INPUT_SIZE``, an architecture's ``img_size``); the largest
  legitimate use, 1024, fits. Input sizes are multiples of ``INPUT_SIZE_MULTIPLE`` (32, the
  granularity of the architectures' ``img_size``), so the smallest is 32.
- ``MAX_NETWORK_INPUT_PIXELS`` (16.8 megapixels, 4096 x 4096): the largest network input one
  image may need at test time. The test-time resize keeps the aspect ratio with the short side
  at the input size, so a 16 x 16000 pixel strip would ask for a 512 x 512000 input; such an
  image is refused (counted as unreadable by ``valid.py``, skipped by the demo):
  ``litepose.inference.transforms.network_input_problem``, beside the resize it measures.
"""

MAX_INPUT_SIZE = 2048
INPUT_SIZE_MULTIPLE = 32
MAX_NETWORK_INPUT_PIXELS = 4096 * 4096


def input_size_problem(size, what="--input-size"):
    """Why ``size`` is not a usable input size, or None."""
    if not isinstance(size, int) or isinstance(size, bool):
        return f"{what} must be a whole number of pixels, got {size!r}"
    if size < INPUT_SIZE_MULTIPLE or size % INPUT_SIZE_MULTIPLE or size > MAX_INPUT_SIZE:
        return (f"{what} must be a multiple of {INPUT_SIZE_MULTIPLE} between {INPUT_SIZE_MULTIPLE} and "
                f"{MAX_INPUT_SIZE}, got {size}")
    return None

