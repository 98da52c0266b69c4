"""Atomic file writes: a crash or a full disk never leaves a half-written file behind."""

import os
import tempfile


def _default_mode():
    """The permissions a plain ``open(path, 'w')`` would give (mkstemp makes files 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, _default_mode())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def atomic_write_bytes(path, data):
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj, path):
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    import torch

    _atomic_write(path, lambda handle: torch.save(obj, handle))


def remove_stale_temporaries(directory, names):
    """Delete the temporary files that atomic writes of ``names`` (file names in ``directory``)
    left behind when their process was killed. Only for a folder no other process writes."""
    if not os.path.isdir(directory):
        return []
    prefixes = tuple(f".{name}." for name in names)
    removed = []
    for name in os.listdir(directory):
        if name.startswith(prefixes) and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def ensure_writable_dir(path, what="output folder"):
    """Create ``path`` if needed and check that files can be written there: a ``ConfigError``
    naming it otherwise, before any long work starts."""
    from ..errors import ConfigError

    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{what} is not writable: {path} ({exc.strerror or exc})") from None
    return path
