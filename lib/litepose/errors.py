"""User-facing errors.

Every error caused by what the user gave us (a file, a config value, a checkpoint)
is raised as a ``LitePoseError`` whose message is one line naming the culprit. The
command-line scripts print that line and exit non-zero instead of a traceback.
"""


class LitePoseError(Exception):
    """Bad input from the user: the message names the file, key or value at fault. It is one
    line even when it quotes the user's text: line breaks in it are shown as ``\\n``."""

    def __init__(self, message="", *args):
        if isinstance(message, str):
            message = message.replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(message, *args)


class ArgumentError(LitePoseError, ValueError):
    """An argument of the Python API of the wrong type or outside its range (``input_size=0``,
    ``threads=-3``, ``device='tpu'``, an unknown option), refused when the object is built."""


class ConfigError(LitePoseError):
    """A config file or override that cannot be used."""


class ArchError(LitePoseError):
    """An architecture description that is malformed or outside what a model supports."""


class CheckpointError(LitePoseError):
    """A checkpoint that is missing, unreadable or made for another model."""


class DataError(LitePoseError):
    """A dataset, annotation file or image that cannot be used."""


class UnreadableImageError(DataError):
    """An image file that is missing, corrupt or truncated: training can skip it, evaluation
    counts it."""


class OutputError(LitePoseError):
    """A file or folder that cannot be written: a full disk, a read-only folder, a folder where a
    file should go, an input that would be overwritten, or an output folder another run holds."""


class Interrupted(LitePoseError):
    """Ctrl-C in a long tool after the work finished so far was kept (rows written, models
    saved): the message says what was kept; the scripts print it on one line and exit 130."""
    label = "interrupted"
    exit_code = 130


class ModelFileError(LitePoseError):
    """An exported model (ONNX, OpenVINO, TFLite, ncnn, TorchScript) that is missing, of unknown
    format, unreadable, holds non-finite weights, or cannot take the input it was given."""
