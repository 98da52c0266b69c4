"""Checkpoint loading for the release's files and ours, with one clear error on mismatch.

Accepted: a plain ``state_dict`` (the released models), a dict holding it under
``state_dict`` (the release's and our training checkpoints, with optimizer state beside
it), keys prefixed by ``module.`` (DataParallel / DDP) or ``1.`` (the release's FP16
wrapper). Files are read with ``weights_only=True``: a checkpoint never runs code.

``load_model`` is the one way from a config and a checkpoint to a network: build, load, refuse
non-finite weights, take a supernet's active sub-network.
"""

import os
import pickle
import re

import torch

from ..errors import CheckpointError
from ..utils.io import path_problem


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint whose weights hold NaN or infinite values: the network would give no finite
    output, so it is refused when loaded."""

WRAPPER_PREFIXES = ("module.", "1.")
_SHOWN = 3  # mismatches listed by name before the rest are counted


# What PyTorch's safe loader refuses, whatever its sentence around it (2.4 to 2.14 phrase it
# differently): the Python global it met, if any. PyTorch's text is never repeated, as it goes on
# to explain how to load the file unsafely.
_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNSAFE_MARKS = ("weights only load failed", "weightsunpickler", "weights_only", "unsupported global",
                 "unsupported operand", "can only build", "can only create new object", "trying to call reduce",
                 "persistent_load", "allowlist")
# A PyTorch checkpoint is a zip archive (PyTorch >= 1.6) or a pickle (the legacy format: a
# pickle's protocol mark, or the magic number's opcode of protocol 0/1 files).
_CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")


def _not_a_checkpoint(path):
    """Why the first bytes of ``path`` show it is no PyTorch checkpoint, or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc.strerror or exc}") from None
    if not head:
        return "the file is empty"
    if not head.startswith(_CHECKPOINT_MAGIC):
        kind = "text" if all(32 <= b < 127 or b in (9, 10, 13) for b in head) else "data"
        return f"it holds {kind} that is neither a zip archive nor a pickle"
    return None


def _refusal(path, text):
    """Our one line for what PyTorch's safe loader refused (``text``: its message), or None when
    the error is not a refusal."""
    lowered = text.lower()
    if not any(mark in lowered for mark in _UNSAFE_MARKS):
        return None
    found = _UNSAFE_GLOBAL.search(text)
    what = f"Python objects besides tensors ({found.group(1)})" if found else "Python objects besides tensors"
    return CheckpointError(f"{path}: refused: the file holds {what}, and loading it could run code; this project "
                           "reads only checkpoints of tensors and plain containers")


def read_checkpoint(path, map_location="cpu"):
    """The raw object stored at ``path`` (tensors on ``map_location``)."""
    path = os.fspath(path)
    problem = path_problem(path, "checkpoint")
    if problem:
        raise CheckpointError(problem)
    foreign = _not_a_checkpoint(path)
    if foreign:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({foreign})")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refusal = _refusal(path, str(exc))
        if refusal:
            raise refusal from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (damaged: {_first_line(str(exc))})") from None
    except MemoryError:
        raise CheckpointError(f"{path}: checkpoint does not fit in memory") from None
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        refusal = _refusal(path, str(exc))
        if refusal:
            raise refusal from None
        detail = _first_line(str(exc)) if not isinstance(exc, (KeyError, IndexError)) else ""
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (damaged or truncated: "
                              f"{type(exc).__name__}{': ' + detail if detail else ''})") from None


def _first_line(text):
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    return text.splitlines()[0][:200] if text else ""


def nonfinite_tensors(state):
    """Names of the floating-point tensors of ``state`` that hold NaN or infinite values."""
    return [key for key, value in state.items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def extract_state_dict(checkpoint, source="checkpoint"):
    """The model weights inside a loaded checkpoint, wrapper prefixes removed."""
    state = checkpoint
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        state = checkpoint["state_dict"]
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{source}: holds no model state_dict (expected a dict of tensors)")
    return strip_wrapper_prefixes(state)


def strip_wrapper_prefixes(state):
    """Remove ``module.`` / ``1.`` prefixes that every key carries (repeatedly, as nested
    wrappers stack them)."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if state and all(key.startswith(prefix) for key in state):
                state = {key[len(prefix):]: value for key, value in state.items()}
                changed = True
    return state


def _shape(tensor):
    return list(tensor.shape)


def _listing(items, total):
    text = "; ".join(items[:_SHOWN])
    return text + (f"; and {total - _SHOWN} more" if total > _SHOWN else "")


def describe_mismatch(model_state, state):
    """One line listing keys with other shapes, missing and unexpected keys, or ''."""
    shape_diffs = [
        f"{key}: checkpoint {_shape(state[key])} vs model {_shape(value)}"
        for key, value in model_state.items()
        if key in state and state[key].shape != value.shape
    ]
    # Checkpoints from older PyTorch lack BN batch counters; they carry no weights.
    missing = [k for k in model_state if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in model_state]
    parts = []
    if shape_diffs:
        parts.append(f"{len(shape_diffs)} keys with other shapes ({_listing(shape_diffs, len(shape_diffs))})")
    if missing:
        parts.append(f"{len(missing)} missing ({_listing(missing, len(missing))})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_listing(unexpected, len(unexpected))})")
    return ", ".join(parts)


def _joint_hint(model, state):
    """Name the joint counts when the output layers disagree (e.g. COCO weights, CrowdPose model)."""
    key = "final_refined.1.conv.3.weight"
    joints = getattr(model, "num_joints", None)
    if joints is None or key not in state:
        return ""
    theirs = state[key].shape[0]
    return f" [checkpoint is for {theirs} joints, model has {joints}]" if theirs != joints else ""


def load_state_dict_checked(model, state, strict=True, source="checkpoint", skip=None):
    """Load ``state`` into ``model``. With ``strict``, any mismatch is one CheckpointError;
    without, only keys present in both with equal shapes are loaded. ``skip(key)`` drops keys
    (the release skips the head when initialising from a pretrained backbone).
    Returns the list of model keys that were not loaded."""
    if skip is not None:
        state = {key: value for key, value in state.items() if not skip(key)}
    model_state = model.state_dict()
    if strict:
        problem = describe_mismatch(model_state, state)
        if problem:
            name = type(model).__name__
            raise CheckpointError(f"{source} does not fit {name}{_joint_hint(model, state)}: {problem}")
        state = {key: value for key, value in state.items() if key in model_state}
    else:
        state = {k: v for k, v in state.items() if k in model_state and v.shape == model_state[k].shape}
    model.load_state_dict(state, strict=False)
    return [key for key in model_state if key not in state]


def load_checkpoint(model, checkpoint, strict=True, skip=None):
    """Load weights into ``model`` from a path or an already loaded checkpoint object.

    Works for the released checkpoints and for ours (training checkpoints carrying
    optimizer state included). Returns the full checkpoint object, so a caller that
    resumes training finds its optimizer, scheduler and epoch there.
    """
    source = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "checkpoint"
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = read_checkpoint(checkpoint)
    state = extract_state_dict(checkpoint, source)
    load_state_dict_checked(model, state, strict=strict, source=source, skip=skip)
    return checkpoint


def check_finite(model, source="checkpoint"):
    """``NonFiniteWeightsError`` naming the first broken tensor when ``model``'s weights or
    buffers hold NaN or infinite values."""
    broken = nonfinite_tensors(model.state_dict())
    if broken:
        raise NonFiniteWeightsError(f"{source} holds NaN or infinite values in {len(broken)} tensors (first: "
                                    f"{broken[0]}): refused, the network would give no finite output")


def load_model(cfg, arch=None, checkpoint=None, subnet=True, required=True, strict=True):
    """The network of ``cfg`` with its trained weights, on the CPU in eval mode: the one loader
    of every script, tool and ``PoseEstimator.from_checkpoint``.

    Args:
        cfg: a loaded config (``MODEL.NAME``, and ``TEST.MODEL_FILE`` when ``checkpoint`` is None).
        arch: a LitePose architecture (dict or JSON path; default ``MODEL.ARCH``, else the
            search space's widest); for the supernet, the one made active.
        checkpoint: a path or a loaded checkpoint object (default ``cfg.TEST.MODEL_FILE``).
        subnet: a supernet comes back as its active sub-network (a plain ``LitePose``);
            ``False`` keeps the supernet (weight transfer, search).
        required: without a checkpoint, ``CheckpointError`` (``False``: the freshly initialised
            model, for measurements that do not depend on the weights).
        strict: every key must fit (``load_checkpoint``).

    Raises ``CheckpointError`` (unreadable, unsafe, made for another model) and its subclass
    ``NonFiniteWeightsError`` (NaN or infinite weights).
    """
    from .registry import build_model

    if checkpoint is None:
        checkpoint = cfg.TEST.MODEL_FILE or None
    if checkpoint is None and required:
        raise CheckpointError("no checkpoint given: add TEST.MODEL_FILE path/to/checkpoint.pth")
    model = build_model(cfg, arch)
    if checkpoint is not None:
        source = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "checkpoint"
        load_checkpoint(model, checkpoint, strict=strict)
        check_finite(model, source)
    if subnet and hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    return model.cpu().eval()
